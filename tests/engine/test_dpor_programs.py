"""DPOR against brute force on random small programs (h8 F4 and its follow-ups): two or three
threads, some of them daemons, each doing one to three operations on two cells, a mutex, an
event and a queue of two. For every program hypothesis draws, an exhausted DPOR search reaches
exactly the end states (the threads' logs, the cells, the queue, the failure kind) that dfs
over every non-blocking choice reaches, and counts exactly its Mazurkiewicz classes.

This is the fuzzer that found the end of a run cutting daemons off, a never-taken step hidden
behind the end, and never-taken steps ordering one another (docs/engine.md, "Steps,
footprints and the dependency relation"). The default run draws 4 programs, ``--slow`` 100;
both are derandomized (the same programs on every run), and the programs the fuzzer found are
pinned below."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import vthreads as vt
from tests.engine.test_dpor import trace_class

OPS = ("r0", "w0", "r1", "w1", "lock", "cp", "set", "wait", "put", "get")

#: a program: per thread its operations, and which threads are daemons (never all of them)
PROGRAMS = st.lists(st.lists(st.sampled_from(OPS), min_size=1, max_size=3),
                    min_size=2, max_size=3).flatmap(
    lambda threads: st.tuples(st.just(threads), st.sets(st.integers(1, len(threads) - 1))))


def _program(threads: list[list[str]], daemons: set[int]):
    """The program, and a box its end state is read from after each run."""
    box: dict = {}

    async def main():
        c = [vt.SharedCell("c0", 0), vt.SharedCell("c1", 0)]
        m, e, q = vt.Mutex("m"), vt.Event("e"), vt.Queue("q", maxsize=2)
        log: list = []
        box.update(cells=c, queue=q, log=log)

        def body(name: str, ops: list[str]):
            async def run():
                for i, op in enumerate(ops):
                    tag = f"{name}{i}"
                    if op in ("r0", "r1"):
                        log.append((tag, await c[int(op[1])].read(tag)))
                    elif op in ("w0", "w1"):
                        await c[int(op[1])].write(tag, tag)
                    elif op == "lock":
                        async with m:
                            log.append((tag, await c[0].read(tag)))
                    elif op == "cp":
                        await vt.checkpoint(tag)
                    elif op == "set":
                        e.set()
                    elif op == "wait":
                        await e.wait()
                        log.append((tag, "woke"))
                    elif op == "put":
                        await q.put(tag)
                    else:
                        log.append((tag, await q.get()))
            return run

        ts = [vt.spawn(f"T{k}", body(f"T{k}", ops), daemon=k in daemons)
              for k, ops in enumerate(threads)]
        for k, t in enumerate(ts):
            if k not in daemons:
                await t.join()

    def end_state(r: vt.RunResult) -> tuple:
        return (r.failure.kind if r.failure else None, tuple(sorted(map(repr, box["log"]))),
                tuple(repr(c.peek()) for c in box["cells"]), tuple(box["queue"].items()))

    return main, end_state


#: dfs's budget: a program it cannot exhaust in this many executions is not a test (hypothesis
#: draws another); 3 threads of 3 non-blocking operations each run about 34,000
DFS_BUDGET = 3_000


def _search(explore, threads, daemons, budget: int) -> tuple[set, set, vt.SystematicResult]:
    main, end_state = _program(threads, daemons)
    states, classes = set(), set()

    def run_one(strategy):
        r = vt.Engine(strategy, step_budget=500).run(main)
        if not getattr(strategy, "redundant", False):
            states.add(end_state(r))
            classes.add(trace_class(strategy.observer.steps))
        return r

    res = explore(run_one, stop_on_failure=False, max_executions=budget)
    return states, classes, res


def _check(program, *, pinned: bool = False) -> None:
    threads, daemons = program
    truth, truth_classes, brute = _search(vt.explore_dfs_with, threads, daemons, DFS_BUDGET)
    if pinned:
        assert brute.exhausted
    else:
        assume(brute.exhausted)
    found, found_classes, res = _search(vt.explore_dpor_with, threads, daemons, DFS_BUDGET)
    assert res.exhausted, "dpor ran more executions than dfs"
    assert found == truth, f"dpor missed end states {sorted(truth - found)}"
    assert found_classes == truth_classes and res.classes == len(truth_classes)


_COMMON = dict(deadline=None, derandomize=True, database=None,
               suppress_health_check=list(HealthCheck))


@settings(max_examples=4, **_COMMON)
@given(PROGRAMS)
def test_dpor_reaches_every_end_state_and_class_of_a_random_program(program) -> None:
    _check(program)


@pytest.mark.slow  # a long one (docs/testing.md); CI runs it with --slow
@settings(max_examples=100, **_COMMON)
@given(PROGRAMS)
def test_dpor_reaches_every_end_state_and_class_of_many_random_programs(program) -> None:
    _check(program)


@pytest.mark.parametrize("program", [
    ([["put"], ["put", "lock", "put"], ["set"]], {0}),  # a daemon's put behind the end
    ([["w1", "r0", "cp"], ["put", "get", "cp"], ["get", "r1", "set"]], set()),  # never taken
    ([["w0", "wait"], ["cp", "get"], ["put", "get"]], {0, 2}),  # ... in a cut run
    ([["put", "put", "put"], ["put", "r1", "put"], ["r1"]], {0, 2}),  # blocked tries (BLOCKED)
])
def test_dpor_on_the_programs_the_fuzzer_found(program) -> None:
    _check(program, pinned=True)
