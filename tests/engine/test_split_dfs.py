"""dfs split into subtrees (issue 15): subtrees run in any order, by budgets, and merged, give
exactly the one-process search's result — executions, classes, claim, failing execution."""

from __future__ import annotations

import random

import pytest

import vthreads as vt
from tests.support.models import models
from vthreads import _systematic


def crashed(r: vt.RunResult) -> bool:
    return r.failure is not None


def split_run(program, *, budget, order_seed, **kw):
    """Work stealing on one process: pick one or two random untried subtrees, run ``budget``
    schedules of them, hand their untried subtrees back; merge after every part."""
    run_one = vt.program_runner(program)
    merged = vt.SplitDfs(**{k: v for k, v in kw.items() if k != "failing"})
    todo = [vt.Subtree((), 0)]
    rng = random.Random(order_seed)
    ran = 0
    while todo and not merged.finished:
        subs = [todo.pop(rng.randrange(len(todo))) for _ in range(min(len(todo), 2))]
        part = vt.explore_subtree(run_one, subs, preemption_bound=kw.get("preemption_bound"),
                                  budget=budget, failing=kw["failing"])
        ran += len(part.executed)
        todo += part.untried
        merged.add(part)
        merged.merge()
    assert merged.finished, "the subtrees did not cover the search"
    # the very classes the one-process search explored, not just as many
    one = _systematic.SearchRun(_systematic._DfsSearch(kw.get("preemption_bound")),
                                max_executions=kw.get("max_executions", 10_000),
                                stop_on_failure=kw["stop_on_failure"],
                                preemption_bound=kw.get("preemption_bound"))
    while not one.finished:
        one.record(_systematic.observe(one.pending, run_one(one.pending), kw["failing"]))
    assert merged.run.keys == one.keys and len(one.keys) >= 2
    return merged.result(), ran


def _same(a: vt.SystematicResult, b: vt.SystematicResult) -> None:
    assert (a.executions, a.classes, a.redundant, a.exhausted, a.pruned, a.claim(),
            a.failing_execution, a.failing_executions) == \
           (b.executions, b.classes, b.redundant, b.exhausted, b.pruned, b.claim(),
            b.failing_execution, b.failing_executions)
    assert [f.decisions for f in a.failures] == [f.decisions for f in b.failures]


@pytest.mark.parametrize("kw, order_seed", [
    ({"preemption_bound": 1, "stop_on_failure": False}, 0),
    ({"preemption_bound": 1, "stop_on_failure": True}, 1),
    ({"preemption_bound": 2, "stop_on_failure": False, "max_executions": 12}, 2),
    pytest.param({"preemption_bound": 2, "stop_on_failure": False}, 3, marks=pytest.mark.slow),
])
def test_split_subtrees_merge_to_the_one_process_search(kw, order_seed):
    program = models.flag_model(2, 1)
    one = vt.explore_dfs(program, failing=crashed, **kw)
    got, ran = split_run(program, budget=3, order_seed=order_seed, failing=crashed, **kw)
    _same(got, one)
    assert ran >= got.executions


@pytest.mark.slow
def test_the_flag_bug_is_found_by_every_split_and_the_claim_says_exhausted():
    program = models.flag_model(2, 1)
    one = vt.explore_dfs(program, failing=crashed, preemption_bound=2, stop_on_failure=False)
    assert one.exhausted and one.failing_executions and one.failure is not None
    assert one.failing_executions[0] == one.failing_execution
    got, _ = split_run(program, budget=1, order_seed=5, failing=crashed, preemption_bound=2,
                       stop_on_failure=False)
    assert got.failure is not None
    _same(got, one)


def test_a_subtree_within_its_budget_leaves_nothing_untried():
    part = vt.explore_subtree(vt.program_runner(models.correct), [vt.Subtree((), 0)],
                              preemption_bound=0, budget=10_000)
    assert not part.untried and part.executed[0].prefix == ()
    small = vt.explore_subtree(vt.program_runner(models.correct), [vt.Subtree((), 0)],
                               preemption_bound=0, budget=1)
    assert len(small.executed) == 1 and small.untried
    assert {s.cost for s in small.untried} == {0}
    with pytest.raises(ValueError, match="budget"):
        vt.explore_subtree(vt.program_runner(models.correct), [vt.Subtree((), 0)],
                           preemption_bound=0, budget=0)
