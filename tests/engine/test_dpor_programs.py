"""DPOR against brute force on random small programs (h8 F4 and its follow-ups): two or three
threads, some of them daemons, each doing one to three operations on two cells, two mutexes,
an event, a queue of two and a condition (``World``), blocking, nowait and timed. For every
program hypothesis draws, an exhausted DPOR search reaches exactly the end states (the threads'
logs, the cells, the queue, the failure kind) that dfs over every non-blocking choice reaches,
and counts exactly its Mazurkiewicz classes.

This is the fuzzer that found the end of a run cutting daemons off, a never-taken step hidden
behind the end, never-taken steps ordering one another, blocked tries ordering one another, a
put before a sleep taken for a try, and a failure's end cutting the other threads off (its
programs raise, and break rules under ``stop_on_violation`` as wddmemu's explore runs them:
docs/engine.md, "Steps, footprints and the dependency relation"). The default run draws 4
programs, ``--slow`` 300; both are derandomized (the same programs on every run), and the
programs the fuzzer found are pinned below. The same programs also check that DPOR split into
subtrees, as the cluster runs it, merges to exactly the one-process search; and, under
``--slow``, smaller ones check dfs itself against every raw engine decision."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import vthreads as vt
from tests.engine.test_dpor import engine_outcomes, trace_class
from tests.engine.test_split_dpor import _same, one_process, split_run
from vthreads import _systematic


class World:
    """What one run's threads share: two cells, two mutexes, an event, a queue of two, a
    condition over a flag (set in the same step as its ``notify_all``, so the predicate reads
    only what notifying steps change), and the log of what each operation saw."""

    def __init__(self) -> None:
        self.c = [vt.SharedCell("c0", 0), vt.SharedCell("c1", 0)]
        self.m, self.m2 = vt.Mutex("m"), vt.Mutex("m2")
        self.e, self.q = vt.Event("e"), vt.Queue("q", maxsize=2)
        self.cond, self.flag = vt.Condition("cond"), False
        self.log: list = []

    def end_state(self, r: vt.RunResult) -> tuple:
        return (r.failure.kind if r.failure else None, tuple(sorted(map(repr, self.log))),
                tuple(repr(c.peek()) for c in self.c), tuple(self.q.items()))

    async def nowait(self, tag: str, op, busy: str) -> None:
        """``op()`` without waiting: what it returned, or ``busy`` if it would block."""
        try:
            self.log.append((tag, op()))
        except vt.WouldBlock:
            self.log.append((tag, busy))

    async def locked(self, tag: str, *locks: vt.Mutex) -> None:
        for lock in locks:
            await lock.acquire()
        self.log.append((tag, await self.c[0].read(tag)))
        for lock in reversed(locks):
            lock.release()

    async def try_lock(self, tag: str) -> None:
        try:
            self.m.acquire_nowait()
        except vt.WouldBlock:
            self.log.append((tag, "busy"))
            return
        self.log.append((tag, await self.c[1].read(tag)))
        self.m.release()

    async def notify(self) -> None:
        self.flag = True
        self.cond.notify_all()

    async def now(self, op) -> None:
        op()

    async def logged(self, tag: str, aw) -> None:
        self.log.append((tag, await aw))

    async def boom(self, tag: str) -> None:
        """Raise after a read: the run ends inside this step, cutting the others off."""
        self.log.append((tag, await self.c[0].read(tag)))
        raise RuntimeError(f"boom at {tag}")

    async def rule(self, tag: str) -> None:
        """Break a rule after a read: runs stop at their first violation, as explore's do."""
        self.log.append((tag, await self.c[1].read(tag)))
        vt.violation("EARLY", f"broken at {tag}")


#: each operation: (world, tag) -> awaitable
OPERATIONS = {
    "r0": lambda w, t: w.logged(t, w.c[0].read(t)),
    "r1": lambda w, t: w.logged(t, w.c[1].read(t)),
    "w0": lambda w, t: w.c[0].write(t, t),
    "w1": lambda w, t: w.c[1].write(t, t),
    "lock": lambda w, t: w.locked(t, w.m),
    "ab": lambda w, t: w.locked(t, w.m, w.m2),  # "ab" and "ba": a lock-order deadlock
    "ba": lambda w, t: w.locked(t, w.m2, w.m),
    "try": lambda w, t: w.try_lock(t),
    "cp": lambda w, t: vt.checkpoint(t),
    "sleep": lambda w, t: vt.sleep(5),
    "set": lambda w, t: w.now(w.e.set),
    "wait": lambda w, t: w.logged(t, w.e.wait()),
    "waitnw": lambda w, t: w.nowait(t, w.e.wait_nowait, "unset"),
    "put": lambda w, t: w.q.put(t),
    "get": lambda w, t: w.logged(t, w.q.get()),
    "getnw": lambda w, t: w.nowait(t, w.q.get_nowait, "empty"),
    "notify": lambda w, t: w.notify(),
    "cwait": lambda w, t: w.logged(t, w.cond.wait_for(lambda: w.flag)),
    "ctime": lambda w, t: w.logged(t, w.cond.wait_for(lambda: w.flag, timeout_ns=7)),
    # the run ends early, with other threads cut off (sweep F's D1)
    "boom": lambda w, t: w.boom(t),
    "rule": lambda w, t: w.rule(t),
}
OPS = tuple(OPERATIONS)

def _with_daemons(threads: list[list[str]]):
    """The program ``threads``, with which of them are daemons (never all of them)."""
    n = len(threads)
    return st.tuples(st.just(threads), st.sets(st.integers(0, n - 1), max_size=n - 1))


#: a program: per thread its operations, and which threads are daemons
PROGRAMS = st.lists(st.lists(st.sampled_from(OPS), min_size=1, max_size=3),
                    min_size=2, max_size=3).flatmap(_with_daemons)


def _program(threads: list[list[str]], daemons: set[int]):
    """The program, and a function of a run's result to its end state."""
    box: list[World] = []

    def body(world: World, name: str, ops: list[str]):
        async def run():
            for i, op in enumerate(ops):
                await OPERATIONS[op](world, f"{name}{i}")
        return run

    async def main():
        box[:] = [world := World()]
        ts = [vt.spawn(f"T{k}", body(world, f"T{k}", ops), daemon=k in daemons)
              for k, ops in enumerate(threads)]
        for k, t in enumerate(ts):
            if k not in daemons:
                await t.join()

    return main, lambda r: box[0].end_state(r)


#: dfs's budget: a program it cannot exhaust in this many executions is not a test (hypothesis
#: draws another); 3 threads of 3 non-blocking operations each run about 34,000
DFS_BUDGET = 3_000


def _search(explore, threads, daemons, budget: int) -> tuple[set, set, vt.SystematicResult]:
    main, end_state = _program(threads, daemons)
    states, classes = set(), set()

    def run_one(strategy):
        r = vt.Engine(strategy, step_budget=500, stop_on_violation=True).run(main)
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


def _check_split(program, order_seed: int, bound: int | None = None) -> None:
    """The search split into subtrees (the cluster's, issue 15), run in a shuffled order with
    made-up root states mixed in, merges to the one-process search: the very same classes,
    bounded (bounded POR: what the bound cuts, and the claim) or not."""
    main, _ = _program(*program)
    kw = {"preemption_bound": bound, "stop_on_failure": False, "failing": _systematic.not_ok}
    ref = vt.explore_dpor_with(vt.program_runner(main), **kw)
    assume(ref.exhausted and ref.executions <= 300)
    merged, _ = split_run(main, budget=2, order_seed=order_seed, wrong=0.3, **kw)
    _same(merged.result(), ref)
    assert merged.run.keys == one_process(main, **kw).keys


_COMMON = dict(deadline=None, derandomize=True, database=None,
               suppress_health_check=list(HealthCheck))


@settings(max_examples=4, **_COMMON)
@given(PROGRAMS)
def test_dpor_reaches_every_end_state_and_class_of_a_random_program(program) -> None:
    _check(program)


@pytest.mark.slow  # a long one (docs/testing.md); CI runs it with --slow
@settings(max_examples=300, **_COMMON)
@given(PROGRAMS)
def test_dpor_reaches_every_end_state_and_class_of_many_random_programs(program) -> None:
    _check(program)


@settings(max_examples=4, **_COMMON)
@given(PROGRAMS, st.integers(0, 3))
def test_split_dpor_merges_to_one_process_on_a_random_program(program, order_seed) -> None:
    _check_split(program, order_seed)


@pytest.mark.slow  # a long one (docs/testing.md); CI runs it with --slow
@settings(max_examples=300, **_COMMON)
@given(PROGRAMS, st.integers(0, 3), st.sampled_from([None, 0, 1, 2]))
def test_split_dpor_merges_to_one_process_on_many_random_programs(program, order_seed,
                                                                   bound) -> None:
    _check_split(program, order_seed, bound)


#: programs small enough to run every raw engine decision (the blocking ones too)
SMALL_PROGRAMS = st.one_of(
    st.lists(st.lists(st.sampled_from(OPS), min_size=1, max_size=2), min_size=2, max_size=2),
    st.lists(st.lists(st.sampled_from(OPS), min_size=1, max_size=1), min_size=3, max_size=3),
).flatmap(_with_daemons)


@pytest.mark.slow  # a long one (docs/testing.md); CI runs it with --slow
@settings(max_examples=60, **_COMMON)
@given(SMALL_PROGRAMS)
def test_dfs_the_oracle_reaches_every_end_state_of_the_raw_engine(program) -> None:
    """The brute force the properties above trust leaves out choices that would only block at
    once: it reaches every end state that running every raw decision reaches."""
    truth, _, brute = _search(vt.explore_dfs_with, *program, DFS_BUDGET)
    assume(brute.exhausted)
    main, end_state = _program(*program)
    try:
        # the runs stop at their first violation, as _search's do
        raw = engine_outcomes(main, cap=20_000, outcome=end_state, stop_on_violation=True)
    except AssertionError:  # its only assert: more than cap raw schedules
        assume(False)
    assert raw == truth


@pytest.mark.parametrize("program", [
    ([["put"], ["put", "lock", "put"], ["set"]], {0}),  # a daemon's put behind the end
    ([["w1", "r0", "cp"], ["put", "get", "cp"], ["get", "r1", "set"]], set()),  # never taken
    ([["w0", "wait"], ["cp", "get"], ["put", "get"]], {0, 2}),  # ... in a cut run
    ([["put", "put", "put"], ["put", "r1", "put"], ["r1"]], {0, 2}),  # blocked tries (BLOCKED)
    ([["put"], ["put", "put", "sleep"]], set()),  # a put before a sleep is no mere try
    ([["r0", "getnw"], ["put"], ["w0", "put"]], set()),  # a race's stop, a get after it (END)
    ([["boom"], ["w0"], ["w0"]], set()),  # an exception cuts the writers off (sweep F's D1)
    ([["cp", "rule"], ["w1", "put"], ["r1"]], set()),  # ... and so does a broken rule
])
def test_dpor_on_the_programs_the_fuzzer_found(program) -> None:
    _check(program, pinned=True)
