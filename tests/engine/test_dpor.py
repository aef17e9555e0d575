"""Systematic exploration: DPOR (source sets + sleep sets, optional preemption bound) and dfs in
iterative-preemption-bounding order.

Ground truth for the class counts comes from brute force: every schedule enumerated, each run's
steps grouped by the partial order of its dependent steps (computed here, independently of the
engine's own analysis). Soundness is checked against the raw engine: the set of outcomes DPOR
reaches equals the set reached by enumerating every engine decision (including threads that
immediately block)."""

from __future__ import annotations

import itertools

import pytest

import vthreads as vt
from tests.support.models import models
from vthreads._footprint import CLOCK, END, READ_MODES, Step

BACKENDS = ["asyncio", "trio"]



def crashed(r: vt.RunResult) -> bool:
    return r.failure is not None


# ---- tiny programs with known structure ---------------------------------------------------


async def write_two_reads():
    x = vt.SharedCell("x", 0)
    seen = {}

    async def w():
        await x.write(1, "w")

    async def r(name):
        seen[name] = await x.read(name)

    ts = [vt.spawn("w", w), vt.spawn("r1", r, "r1"), vt.spawn("r2", r, "r2")]
    for t in ts:
        await t.join()
    return (seen["r1"], seen["r2"])


async def try_lock():
    """``acquire_nowait`` against ``acquire``: it takes the mutex first, takes it after the other
    section, or fails inside it — three outcomes, the last reached only by running the try
    before the holder's release (a failed try depends on that release too)."""
    m = vt.Mutex("m")
    log = []

    async def a():
        await vt.checkpoint("a")
        try:
            m.acquire_nowait()
        except vt.WouldBlock:
            log.append("blocked")
            return
        log.append("took")
        await vt.checkpoint("a2")
        m.release()

    async def b():
        await m.acquire()
        log.append("b")
        await vt.checkpoint("b1")
        m.release()

    ts = [vt.spawn("a", a), vt.spawn("b", b)]
    for t in ts:
        await t.join()
    return tuple(log)


async def mutex_sections():
    m = vt.Mutex("m")
    x = vt.SharedCell("x", "")

    async def worker(name):
        async with m:
            v = await x.read(name)
            await x.write(v + name, name)

    ts = [vt.spawn(n, worker, n) for n in ("a", "b", "c")]
    for t in ts:
        await t.join()
    return x.peek()


async def queue_and_event():
    q: vt.Queue[str] = vt.Queue("q", 1)
    ev = vt.Event("go")
    x = vt.SharedCell("x", 0)
    got = []

    async def producer(name):
        await q.put(name + ".1")
        await q.put(name + ".2")

    async def consumer():
        got.append(await q.get())
        got.append(await q.get())
        ev.set()
        await x.write(1, "consumer")

    async def watcher():
        await ev.wait()
        got.append(await x.read("watcher"))

    ts = [vt.spawn("p", producer, "p"), vt.spawn("c", consumer), vt.spawn("w", watcher)]
    for t in ts:
        await t.join()
    return (tuple(got), x.peek())


async def timers():
    x = vt.SharedCell("x", 0)
    out = []

    async def sleeper(name, ns, v):
        await vt.sleep(ns)
        await x.write(v, name)

    async def reader():
        await vt.sleep(10)
        out.append(await x.read("reader"))

    ts = [vt.spawn("s1", sleeper, "s1", 10, 1), vt.spawn("s2", sleeper, "s2", 5, 2),
          vt.spawn("r", reader), vt.spawn("now", sleeper, "now", 0, 3)]
    for t in ts:
        await t.join()
    return (tuple(out), x.peek(), vt.now())


async def condition_handoff():
    c = vt.Condition("c")
    x = vt.SharedCell("x", 0)
    state = {"ready": False}
    out = []

    async def waiter():
        await c.wait_for(lambda: state["ready"])
        out.append(await x.read("waiter"))

    async def setter():
        await x.write(1, "setter")
        state["ready"] = True
        c.notify_all()

    async def bumper():
        await x.write(2, "bumper")

    ts = [vt.spawn("w", waiter), vt.spawn("s", setter), vt.spawn("b", bumper)]
    for t in ts:
        await t.join()
    return (tuple(out), x.peek())


async def two_sections():
    m = vt.Mutex("m")
    x = vt.SharedCell("x", "")

    async def worker(name):
        async with m:
            await x.write(x.peek() + name, name)

    ts = [vt.spawn(n, worker, n) for n in ("a", "b")]
    for t in ts:
        await t.join()
    return x.peek()


async def small_queue():
    q: vt.Queue[int] = vt.Queue("q", 1)
    x = vt.SharedCell("x", 0)

    async def producer():
        await q.put(1)
        await q.put(2)
        await x.write(-1, "producer")

    async def consumer():
        await x.write(await q.get() + await q.get(), "consumer")

    ts = [vt.spawn("p", producer), vt.spawn("c", consumer)]
    for t in ts:
        await t.join()
    return x.peek()


async def small_timers():
    x = vt.SharedCell("x", 0)

    async def sleeper(name, ns, v):
        await vt.sleep(ns)
        await x.write(v, name)

    ts = [vt.spawn("s1", sleeper, "s1", 10, 1), vt.spawn("s2", sleeper, "s2", 10, 2),
          vt.spawn("s3", sleeper, "s3", 5, 3)]
    for t in ts:
        await t.join()
    return (x.peek(), vt.now())


#: small enough for the raw engine's every decision to be enumerated
async def section_then_try():
    """h8: a thread leaves its section and takes the mutex again at once (``release()`` then
    ``acquire_nowait()``, no scheduling point between them): the other thread's section can
    only come before the first one, which DPOR must still try (it pointed the race at the
    second acquire, where the mutex is held, and claimed one class)."""
    m, x = vt.Mutex("m"), vt.SharedCell("x", "init")
    seen = []

    async def t0():
        async with m:
            seen.append(await x.read("t0.r"))
        m.acquire_nowait()
        m.release()

    async def t1():
        async with m:
            await x.write("t1", "t1.w")

    for t in [vt.spawn("t0", t0), vt.spawn("t1", t1)]:
        await t.join()
    return tuple(seen)


async def nowait_ops():
    """h8: a failed ``get_nowait``, ``put_nowait`` or ``wait_nowait`` depends on the ``put``,
    ``get`` or ``set`` that would have made it succeed, and used to record nothing: DPOR saw
    the steps as independent and never ran the other order."""
    q, full, e = vt.Queue("q", maxsize=2), vt.Queue("full", maxsize=1), vt.Event("e")
    full.put_nowait("x")
    log = []

    async def tryer():
        for what, op in (("get", q.get_nowait), ("put", lambda: full.put_nowait("y")),
                         ("wait", e.wait_nowait)):
            try:
                op()
                log.append(what)
            except vt.WouldBlock:
                log.append(f"no {what}")

    async def enabler():
        await q.put("item")
        full.get_nowait()
        e.set()

    for t in [vt.spawn("tryer", tryer), vt.spawn("enabler", enabler)]:
        await t.join()
    return tuple(log)


async def get_behind_an_asleep_write():
    """One put, two gets: whoever gets second blocks for good (a deadlock either way). The
    class where the other thread gets the item and reads the cell before the writer writes
    starts with the writer asleep and the putter taking its own item back; the other thread's
    get is then never taken, and its race with that get was only seen once never-taken steps
    were analysed in such a cut run too, each apart from the others (found by fuzzing dpor
    against dfs: 2 classes against 3)."""
    c, q = vt.SharedCell("c", 0), vt.Queue("q", maxsize=2)

    async def writer():
        await c.write(1, "writer")

    async def putter():
        await q.put("item")
        await q.get()

    async def other():
        await q.get()
        await c.read("other")

    for t in [vt.spawn("writer", writer), vt.spawn("putter", putter), vt.spawn("other", other)]:
        await t.join()


#: what the daemon programs below left behind when their run ended (their outcome: a run
#: ends with main, so a daemon's progress shows only in the state it leaves)
END_STATE: dict[str, object] = {}


async def daemon_cut_by_the_end():
    """A daemon writes a cell twice while main checkpoints twice; the run ends with main, so
    the cell ends at 0, 1 or 2. DPOR used to see main's finish as independent of the daemon's
    writes and reached only 0 (h8's F4: the end takes the daemon's later steps away)."""
    c = vt.SharedCell("c", 0)
    END_STATE["cell"] = c

    async def daemon():
        await c.write(1, "d1")
        await c.write(2, "d2")

    vt.spawn("d", daemon, daemon=True)
    await vt.checkpoint("m1")
    await vt.checkpoint("m2")


async def daemon_behind_a_lock():
    """A daemon takes a mutex main also takes, and appends to a log inside it: how much of
    its work is done when main ends depends on who took the mutex first."""
    m, log = vt.Mutex("m"), vt.SharedCell("log", ())
    END_STATE["cell"] = log

    async def daemon():
        for i in range(2):
            async with m:
                await log.write((*log.peek(), f"d{i}"), "daemon")

    vt.spawn("d", daemon, daemon=True)
    async with m:
        await log.write((*log.peek(), "main"), "main")


class _Contents:
    """A queue's items as an end state (``end_state`` reads ``peek()``)."""

    def __init__(self, q: vt.Queue) -> None:
        self.q = q

    def peek(self) -> tuple:
        return tuple(self.q.items())


async def daemon_put_before_the_last_put():
    """A daemon puts once into a queue of two that a worker fills; the worker's second put
    blocks for good when the daemon's put comes before either of its own (a deadlock with
    [d, w1] or [w1, d] queued). The run that reaches the end (main's, after its join) had the
    worker's puts first and the daemon's never taken: a pass that ordered that step after the
    end saw it race only with the end and missed the daemon's put between the worker's two
    (found by fuzzing dpor against dfs: 3 classes against 4)."""
    q = vt.Queue("q", maxsize=2)
    END_STATE["cell"] = _Contents(q)

    async def daemon():
        await q.put("d")

    async def worker():
        await q.put("w1")
        await vt.checkpoint("w")
        await q.put("w2")

    vt.spawn("d", daemon, daemon=True)
    await vt.spawn("w", worker).join()  # the end is main's step, after the worker's last put


def end_state(r: vt.RunResult):
    return (END_STATE["cell"].peek(), r.failure.kind if r.failure else None)


DAEMONS = {"daemon cut by the end": daemon_cut_by_the_end,
           "daemon behind a lock": daemon_behind_a_lock,
           "daemon put before the last put": daemon_put_before_the_last_put}


RAW = {
    "lost update": models.lost_update,
    "write, two reads": write_two_reads,
    "two sections": two_sections,
    "small queue": small_queue,
    "small timers": small_timers,
    "condition": condition_handoff,
    "lock order": models.lock_order,
    "try lock": try_lock,
    "section then try": section_then_try,
    "nowait operations": nowait_ops,
    "get behind an asleep write": get_behind_an_asleep_write,
    **DAEMONS,
}

TINY = {
    "lost update": models.lost_update,
    "write, two reads": write_two_reads,
    "mutex sections": mutex_sections,
    "queue and event": queue_and_event,
    "timers": timers,
    "condition": condition_handoff,
    "lock order": models.lock_order,
    "try lock": try_lock,
    "section then try": section_then_try,
    "nowait operations": nowait_ops,
    "get behind an asleep write": get_behind_an_asleep_write,
    **DAEMONS,
}


# ---- brute force ------------------------------------------------------------------------


def _dep(a: Step, b: Step) -> bool:
    if a.fp == CLOCK or b.fp == CLOCK or END in a.fp or END in b.fp:  # the clock, the end
        return True
    return any(ka == kb and not (ma in READ_MODES and mb in READ_MODES)
               for ka, ma in a.fp for kb, mb in b.fp)


def trace_class(steps: list[Step]) -> frozenset:
    """The Mazurkiewicz trace of a step sequence, as its events (thread, k-th step, footprint)
    and every dependent pair between different threads, oriented as the run ordered it."""
    ids, count = [], {}
    for s in steps:
        count[s.tid] = count.get(s.tid, 0) + 1
        ids.append((s.tid, count[s.tid], s.fp))
    pairs = {(ids[i], ids[j]) for i, j in itertools.combinations(range(len(steps)), 2)
             if steps[i].tid != steps[j].tid and _dep(steps[i], steps[j])}
    return frozenset(ids) | frozenset(pairs)


def brute_force_classes(program, backend="asyncio") -> tuple[int, int]:
    """(schedules, Mazurkiewicz classes): every schedule over the non-blocking choices."""
    classes = set()

    def run_one(strategy):
        r = vt.Engine(strategy, backend=backend).run(program)
        classes.add(trace_class(strategy.observer.steps))
        return r

    res = vt.explore_dfs_with(run_one, max_executions=50_000, stop_on_failure=False)
    assert res.exhausted
    return res.executions, len(classes)


def engine_outcomes(program, cap=50_000, outcome=None, stop_on_violation=False) -> set:
    """Every outcome of the raw engine: depth-first over every decision, every runnable thread
    a choice (also those that will block at once)."""

    class Rec(vt.Strategy):
        def __init__(self, prefix):
            self.prefix, self.opts = prefix, []

        def choose(self, runnable, step, *, current):
            cands = sorted(runnable, key=lambda t: t.tid)
            d = len(self.opts)
            self.opts.append([t.tid for t in cands])
            tid = self.prefix[d] if d < len(self.prefix) else cands[0].tid
            return next(t for t in cands if t.tid == tid)

    outcomes, stack = set(), [([], 0)]
    runs = 0
    while stack:
        prefix, _ = stack.pop()
        strat = Rec(prefix)
        r = vt.Engine(strat, stop_on_violation=stop_on_violation).run(program)
        runs += 1
        assert runs < cap
        outcomes.add((outcome or _outcome)(r))
        chosen = list(prefix) + [o[0] for o in strat.opts[len(prefix):]]
        for d in range(len(prefix), len(strat.opts)):
            stack.extend(([*chosen[:d], a], 0) for a in strat.opts[d][1:])
    return outcomes


def _outcome(r: vt.RunResult):
    return (r.value, r.failure.kind if r.failure else None)


def dpor_outcomes(program, backend="asyncio", outcome=None
                  ) -> tuple[set, vt.SystematicResult]:
    outcomes = set()

    def run_one(strategy):
        r = vt.Engine(strategy, backend=backend).run(program)
        if not strategy.redundant:
            outcomes.add((outcome or _outcome)(r))
        return r

    return outcomes, vt.explore_dpor_with(run_one, stop_on_failure=False)


# ---- the targets --------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_dpor_exhausts_the_correct_model_within_twice_its_classes(backend):
    res = vt.explore_dpor(models.correct, backend=backend, stop_on_failure=False)
    assert res.exhausted and res.ok
    assert res.classes == 6  # 3! orders of the three mutex sections
    assert res.executions <= 12
    assert res.claim().startswith("exhausted: every interleaving of 6 equivalence classes")


def test_dfs_alone_does_not_exhaust_the_correct_model():
    res = vt.explore_dfs(models.correct, max_executions=500, stop_on_failure=False)
    assert not res.exhausted
    assert res.claim().startswith("stopped after 500 executions (limit 500)")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name,limit,kind", [
    ("lost update", 2, "exception"),
    ("lock-order deadlock", 2, "deadlock"),
    ("flag 5x10 (depth 2)", 5, "exception"),
])
def test_dpor_finds_each_bug_within_the_target(backend, name, limit, kind):
    res = vt.explore_dpor(models.MODELS[name], backend=backend, failing=crashed)
    assert res.failure is not None and res.failure.failure is not None
    assert res.failure.failure.kind == kind
    assert res.failing_execution is not None and res.failing_execution <= limit
    assert res.claim().startswith(f"stopped at the first failure, execution "
                                  f"{res.failing_execution}")


def test_race_violations_count_as_failures_by_default():
    res = vt.explore_dpor(models.lost_update)
    assert res.failing_execution == 1 and res.failure is not None
    assert "RACE" in res.failure.rules()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_failing_execution_replays_to_the_same_failure(backend):
    res = vt.explore_dpor(models.flag, backend=backend, failing=crashed)
    f = res.failure
    assert f is not None and f.failure is not None
    again = vt.Engine("replay", decisions=f.decisions, backend=backend).run(models.flag)
    assert again.failure is not None
    assert (again.failure.kind, again.failure.message, again.failure.step) == (
        f.failure.kind, f.failure.message, f.failure.step)
    assert again.decisions == f.decisions


# ---- completeness and optimality against brute force --------------------------------------


_SLOW = {"mutex sections", "timers"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in _SLOW else n
                                  for n in TINY])
def test_dpor_explores_exactly_the_brute_force_classes(name):
    program = TINY[name]
    schedules, truth = brute_force_classes(program)
    classes: set = set()

    def run_one(strategy):
        r = vt.Engine(strategy).run(program)
        if not strategy.redundant:
            classes.add(trace_class(strategy.observer.steps))
        return r

    res = vt.explore_dpor_with(run_one, stop_on_failure=False)
    assert res.exhausted
    assert len(classes) == truth == res.classes
    # sleep sets: no completed execution repeats a class
    assert res.executions - res.redundant == truth
    assert res.executions <= schedules


def test_brute_force_counts_are_what_the_programs_say():
    assert brute_force_classes(models.lost_update)[1] == 4  # reads commute: 6 orders, 4 traces
    assert brute_force_classes(write_two_reads)[1] == 4  # the write before or after each read
    assert brute_force_classes(two_sections)[1] == 2  # the two section orders


#: programs whose raw-engine enumeration takes seconds (10 s for the asleep write's 3 threads),
#: or most of one (the other two): slow here; the default run keeps each in the brute-force
#: class test below (TINY), and the fuzzed programs against dfs (tests/engine/test_dpor_programs.py)
_RAW_SLOW = {"get behind an asleep write", "write, two reads", "condition"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in _RAW_SLOW
                                  else n for n in RAW])
def test_dpor_reaches_every_outcome_of_the_raw_engine(name):
    program = RAW[name]
    assert name in TINY or program in (two_sections, small_queue, small_timers)
    found, res = dpor_outcomes(program)
    assert res.exhausted
    assert found == engine_outcomes(program)


def test_dpor_outcomes_are_the_same_on_both_backends():
    for program in TINY.values():
        a, ra = dpor_outcomes(program, "asyncio")
        b, rb = dpor_outcomes(program, "trio")
        assert a == b and ra.executions == rb.executions


# ---- determinism --------------------------------------------------------------------------


def _schedules(explore, program, backend="asyncio", **kw):
    seen = []

    def run_one(strategy):
        r = vt.Engine(strategy, backend=backend).run(program)
        seen.append(r.decisions)
        return r

    res = explore(run_one, stop_on_failure=False, **kw)
    return seen, res


@pytest.mark.parametrize("explore", [vt.explore_dpor_with, vt.explore_dfs_with])
def test_two_searches_run_identical_execution_sequences(explore):
    a, ra = _schedules(explore, models.flag_model(3, 2), max_executions=300)
    b, rb = _schedules(explore, models.flag_model(3, 2), max_executions=300)
    c, _ = _schedules(explore, models.flag_model(3, 2), "trio", max_executions=300)
    assert a == b == c and len(a) > 10
    assert ra == rb


# ---- preemption bound ---------------------------------------------------------------------


@pytest.mark.parametrize("explore", [vt.explore_dpor, vt.explore_dfs])
def test_the_preemption_bound_limits_the_search_and_says_so(explore):
    # the flag bug needs one preemption: between a thread's check and its set
    program = models.flag_model(2, 1)
    none = explore(program, preemption_bound=0, failing=crashed)
    assert none.failure is None and none.exhausted and none.pruned
    if explore is vt.explore_dfs:  # every schedule within the bound: exact
        assert "preemption bound 0, schedules needing more preemptions not explored" in (
            none.claim())
    else:  # bounded DPOR prunes by a heuristic: it claims no proof (h8's F3)
        assert none.claim().startswith("bounded: ") and "not a proof" in none.claim()
    one = explore(program, preemption_bound=1, failing=crashed)
    assert one.failure is not None
    full = explore(program, stop_on_failure=False, failing=crashed)
    bounded = explore(program, preemption_bound=1, stop_on_failure=False, failing=crashed)
    assert bounded.executions < full.executions


def test_an_unreached_bound_is_no_limit():
    res = vt.explore_dpor(models.correct, preemption_bound=5, stop_on_failure=False)
    assert res.exhausted and not res.pruned and res.classes == 6
    assert "preemption bound 5, never reached" in res.claim()


# ---- dfs order ----------------------------------------------------------------------------


def test_dfs_runs_schedules_in_order_of_preemptions():
    program = models.flag_model(2, 2)
    costs = []

    def run_one(strategy):
        r = vt.Engine(strategy).run(program)
        n = 0
        for c in strategy.choices:
            n += c.cost(c.chosen)
        costs.append(n)
        return r

    res = vt.explore_dfs_with(run_one, stop_on_failure=False, preemption_bound=2)
    assert res.exhausted and res.pruned
    assert costs == sorted(costs) and costs[0] == 0 and costs[-1] == 2
    # every schedule is run once
    schedules, _ = _schedules(vt.explore_dfs_with, program, preemption_bound=2)
    assert len(set(schedules)) == len(schedules)


def test_dfs_finds_the_flag_bug_at_the_first_preemption_level():
    res = vt.explore_dfs(models.flag, failing=crashed)
    assert res.failure is not None and res.failing_execution is not None
    assert res.failing_execution < 1000  # the old depth-first order needed 20 414


def test_registry_names_the_searches():
    assert vt.SYSTEMATIC.names() == ("dfs", "dpor")
    res = vt.SYSTEMATIC["dpor"](vt.program_runner(models.correct), stop_on_failure=False)
    assert res.exhausted and res.classes == 6


def test_max_executions_must_be_positive():
    with pytest.raises(ValueError, match="max_executions"):
        vt.explore_dpor(models.correct, max_executions=0)


def test_a_nondeterministic_program_is_reported():
    calls = itertools.count()

    async def flaky():
        x = vt.SharedCell("x", 0)

        async def w(name):
            await x.write(1, name)

        n = 2 + next(calls) % 2  # a different number of threads each run
        ts = [vt.spawn(f"t{i}", w, f"t{i}") for i in range(n)]
        for t in ts:
            await t.join()

    with pytest.raises(RuntimeError, match="not deterministic"):
        vt.explore_dpor(flaky, stop_on_failure=False)


def test_the_harness_seam_runs_a_scenario_and_never_counts_a_class_twice():
    # a real scenario through explore_dpor_with: its watchdog thread blocks on a condition, so
    # an asleep thread can be run without a choice (the only runnable one); such runs are
    # redundant and not counted as classes
    from wddmemu._runner import run_scenario
    from wddmemu.corpus import CORPUS

    spec = next(b for b in CORPUS if b.name == "no-driver-lock").spec()
    res = vt.explore_dpor_with(lambda s: run_scenario(spec, strategy=s).run,
                               max_executions=24, stop_on_failure=False)
    assert res.executions == 24 and not res.exhausted
    assert res.redundant > 0 and res.classes == res.executions - res.redundant


# ---- going on after failures ---------------------------------------------------------------


async def read_then_raise():
    """The reader raises in the step that read: that step's footprint must count (h8's F2)."""
    x = vt.SharedCell("x", 0)

    async def writer():
        await x.write(1, "w")

    async def reader():
        v = await x.read("r")
        raise RuntimeError(f"BUG-{v}")

    for t in [vt.spawn("writer", writer), vt.spawn("reader", reader)]:
        await t.join()


async def try_then_raise():
    m = vt.Mutex("m")

    async def holder():
        async with m:
            await vt.checkpoint("in")

    async def trier():
        try:
            m.acquire_nowait()
        except vt.WouldBlock:
            raise RuntimeError("BUG-busy") from None
        m.release()
        raise RuntimeError("BUG-free")

    for t in [vt.spawn("holder", holder), vt.spawn("trier", trier)]:
        await t.join()


@pytest.mark.parametrize("program", [read_then_raise, try_then_raise],
                         ids=lambda p: p.__name__)
def test_dpor_going_on_after_failures_finds_every_failure_dfs_finds(program):
    def messages(res):
        return {f.failure.message for f in res.failures}

    kw = dict(stop_on_failure=False, failing=lambda r: r.failure is not None)
    dfs, dpor = vt.explore_dfs(program, **kw), vt.explore_dpor(program, **kw)
    assert dfs.exhausted and dpor.exhausted
    assert len(messages(dfs)) == 2 and messages(dpor) == messages(dfs)


async def raise_before_two_writers():
    """main raises while two writers it spawned have not run: the end cuts them off."""
    cell = vt.SharedCell("x", 0)

    async def w(v):
        await cell.write(v, f"w{v}")  # the two writes race when both run

    vt.spawn("a", w, 1)
    vt.spawn("b", w, 2)
    await vt.checkpoint("main.check")
    raise RuntimeError("main fails")


async def break_a_rule_before_two_writers():
    cell = vt.SharedCell("x", 0)

    async def w(v):
        await cell.write(v, f"w{v}")

    a, b = vt.spawn("a", w, 1), vt.spawn("b", w, 2)
    await vt.checkpoint("main.check")
    vt.violation("EARLY", "main's own rule broke")  # stops the run (stop_on_violation)
    await a.join()
    await b.join()


@pytest.mark.parametrize("program", [raise_before_two_writers, break_a_rule_before_two_writers],
                         ids=lambda p: p.__name__)
def test_a_failure_that_ends_the_run_cuts_the_other_threads_off(program):
    """The failing step is the end of the run (``StepObserver.cut``): DPOR runs the cut-off
    writers before it, meets their race, and counts dfs's classes (sweep F's D1: it ran one
    execution and called the search exhausted)."""
    def search(explore):
        rules, classes = set(), set()

        def run_one(strategy):
            r = vt.Engine(strategy, stop_on_violation=True).run(program)
            if not getattr(strategy, "redundant", False):
                rules.update(v.rule for v in r.violations)
                classes.add(trace_class(strategy.observer.steps))
            return r

        res = explore(run_one, stop_on_failure=False, max_executions=1000)
        return res, rules, classes

    dfs, dfs_rules, dfs_classes = search(vt.explore_dfs_with)
    dpor, dpor_rules, dpor_classes = search(vt.explore_dpor_with)
    assert dfs.exhausted and dpor.exhausted
    assert "RACE" in dfs_rules and dpor_rules == dfs_rules
    assert dpor.classes == len(dfs_classes) == 10 and dpor_classes == dfs_classes


@pytest.mark.parametrize("name", list(DAEMONS))
def test_dpor_reaches_every_end_state_of_a_run_with_daemons(name):
    """The end of the run is a step that conflicts with every daemon step it cuts off
    (``_footprint.END``): DPOR reaches every state the raw engine can leave behind."""
    program = DAEMONS[name]
    found, res = dpor_outcomes(program, outcome=end_state)
    assert res.exhausted
    truth = engine_outcomes(program, outcome=end_state)
    assert found == truth and len(truth) >= 3


def test_a_daemon_woken_last_runs_before_the_end_in_some_execution():
    """A daemon made runnable by main's last step, never run before main ended (pending at the
    end: no executed step shows the race), gets its step explored before the end too."""
    async def main():
        ev, c = vt.Event("go"), vt.SharedCell("c", 0)
        END_STATE["cell"] = c

        async def waiter():
            await ev.wait()
            await c.write(1, "waiter")

        vt.spawn("w", waiter, daemon=True)
        await vt.checkpoint("m")
        ev.set()
        await vt.checkpoint("m2")  # the waiter can run from here on; main ends after it

    found, res = dpor_outcomes(main, outcome=end_state)
    assert res.exhausted and found == {(0, None), (1, None)}
