"""``explore --strategy portfolio`` and the minimiser (issue 12).

The portfolio runs its strategies round-robin over schedule indices and records the concrete
one in each failure; the minimiser truncates, removes chunks down to a local minimum, answers
repeats from its prefix cache, and stays deterministic unless its budget stops it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from vthreads import FifoWithOverrides, Recorder, Replay
from wddmemu import ExploreOptions, explore
from wddmemu._explore import (
    PORTFOLIO,
    Finding,
    _schedule_spec,
    failure_document,
    load_failure,
    minimise,
    save_failure,
)
from wddmemu._runner import RunSpec, run_scenario

DEADLOCK = RunSpec("reentrant-lockasync", driver="lock-order-deadlock", ddi_version=0xB)


def test_portfolio_rotates_its_strategies_over_schedule_indices() -> None:
    opts = ExploreOptions(strategy="portfolio", seed=40)
    specs = [_schedule_spec(DEADLOCK, opts, 77, i) for i in range(2 * len(PORTFOLIO))]
    got = [(s.strategy, s.depth, s.seed) for s in specs]
    want = [(*PORTFOLIO[i % len(PORTFOLIO)], 40 + i) for i in range(2 * len(PORTFOLIO))]
    assert got == want
    assert {s.pct_steps for s in specs} == {77}


def test_a_portfolio_failure_names_its_concrete_strategy_and_replays(tmp_path: Path) -> None:
    opts = ExploreOptions(schedules=40, strategy="portfolio", seed=1, minimise=False)
    res = explore(DEADLOCK, opts)
    again = explore(DEADLOCK, opts)
    assert res.failures and again.failures
    fd = res.failures[0]
    assert fd.index == again.failures[0].index and fd.spec == again.failures[0].spec
    strategy, depth = PORTFOLIO[fd.index % len(PORTFOLIO)]
    found_by = failure_document(fd)["found_by"]
    assert found_by["strategy"] == strategy == fd.original_spec.strategy
    assert found_by["depth"] == depth and found_by["seed"] == 1 + fd.index
    # the concrete strategy and seed alone find it again (no portfolio needed)
    r = run_scenario(fd.original_spec, stop_on_violation=True).run
    assert Finding.of(r).rule == fd.finding.rule == "deadlock"
    ff = load_failure(save_failure(fd, tmp_path))
    assert ff.rule == "deadlock"


def _deviations(spec: RunSpec) -> dict[int, int]:
    rec = Recorder(Replay(spec.decisions or ()))
    run_scenario(spec, strategy=rec, stop_on_violation=True)
    return {k: c.chosen for k, c in enumerate(rec.choices) if c.chosen != c.fifo}


def _breaks(spec: RunSpec, overrides: dict[int, int], rule: str) -> bool:
    r = run_scenario(replace(spec, strategy="fifo"), strategy=FifoWithOverrides(overrides),
                     stop_on_violation=True).run
    f = Finding.of(r)
    return f is not None and f.rule == rule


@pytest.fixture(scope="module")
def raw_deadlock():
    res = explore(DEADLOCK, ExploreOptions(schedules=50, strategy="random", minimise=False))
    return res.failures[0]


def test_minimise_reaches_a_local_minimum_deterministically(raw_deadlock) -> None:
    m1 = minimise(raw_deadlock, seconds=None)
    m2 = minimise(raw_deadlock, seconds=None)
    assert m1.spec == m2.spec and m1.minimised == m2.minimised
    rep = m1.minimised
    assert not rep["budget_hit"]
    assert rep["deviations_after"] < rep["deviations_before"]
    assert rep["cached"] >= 0 and rep["replays"] >= 1
    left = _deviations(m1.spec)
    assert len(left) == rep["deviations_after"]
    assert _breaks(m1.spec, left, "deadlock")
    for k in left:  # a local minimum: no single remaining deviation can go
        assert not _breaks(m1.spec, {j: t for j, t in left.items() if j != k}, "deadlock"), k


def test_a_spent_budget_stops_the_search_and_says_so(raw_deadlock) -> None:
    m = minimise(raw_deadlock, max_replays=2, seconds=None)
    assert m.minimised["budget_hit"] and m.minimised["replays"] <= 2
    r = run_scenario(m.spec, strategy=Replay(m.spec.decisions), stop_on_violation=True).run
    assert Finding.of(r).rule == "deadlock"
    timed = minimise(raw_deadlock, seconds=0.0)
    assert timed.minimised["budget_hit"]
