"""Tests written for the mutants of the engine core (vthreads/_engine.py, _trampoline.py,
_reports.py) that bench/mutants.py found alive (issue 16): each fails on its mutant. They go
through the public surface (Engine, spawn, SharedCell, subscribe, the RunResult) and assert
what a user sees — verdicts, the fields of a report, the trace events — so that they hold
whatever shape the engine's code takes. Equivalent mutants are listed, with the reason, in
bench/mutants_equivalent.toml."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import vthreads as vt
from vthreads.testing import capture_events

BACKENDS = ["asyncio", "trio"]


def _run(main: Any, events: tuple[str, ...], backend: str = "asyncio",
         **kw: Any) -> tuple[vt.RunResult, list[dict[str, Any]]]:
    """Run ``main`` and return its result and the events named ``events``, in order."""
    seen: list[dict[str, Any]] = []
    eng = vt.Engine(backend=backend, **kw)
    eng.subscribe(seen.append, events=events)
    return eng.run(main), seen


# ---- failures and their trace events ------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_failure_is_traced_with_its_kind_and_message_and_ends_the_trace(backend: str) -> None:
    async def main() -> None:
        await vt.checkpoint()
        raise ValueError("boom")

    r, evs = _run(main, ("run.failure", "run.end"), backend)
    assert r.failure is not None and r.failure.kind == "exception"
    fail, end = evs
    assert (fail["event"], fail["kind"], fail["message"]) == (
        "run.failure", "exception", "ValueError: boom")
    assert end["event"] == "run.end"
    assert end["ok"] is False
    assert end["failure"] == {"kind": "exception", "message": "ValueError: boom",
                              "step": r.failure.step}
    assert end["violations"] == []
    assert end["decisions"] == len(r.decisions)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_run_without_failure_ends_its_trace_with_its_violations_and_decision_count(
        backend: str) -> None:
    async def main() -> None:
        async def other() -> None:
            await vt.checkpoint()
            vt.violation("X-2", "second")

        t = vt.spawn("other", other)
        vt.violation("X-1", "first")
        await vt.checkpoint()
        await t.join()

    r, evs = _run(main, ("run.end",), backend, strategy="random", seed=3)
    (end,) = evs
    assert r.failure is None
    assert end["failure"] is None
    assert end["ok"] is False and r.ok is False  # violations make a run not ok
    assert end["violations"] == ["X-1", "X-2"]
    assert len(r.decisions) > 0  # a real choice was made: the count is not trivially 0
    assert end["decisions"] == len(r.decisions)


# ---- violations -----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_violation_names_its_thread_step_and_virtual_time(backend: str) -> None:
    async def main() -> None:
        async def worker() -> None:
            await vt.sleep(250)
            vt.violation("X-9", "late", where="worker")

        await vt.spawn("the-worker", worker).join()

    r, evs = _run(main, ("violation",), backend)
    (v,) = r.violations
    assert (v.rule, v.message, v.thread, v.t) == ("X-9", "late", "the-worker", 250)
    assert v.step == r.statistics.steps  # the worker's last step: nothing ran after it
    assert v.step > 0
    assert dict(v.fields) == {"where": "worker"}
    (ev,) = evs
    assert (ev["rule"], ev["message"], ev["where"], ev["thread"]) == (
        "X-9", "late", "worker", "the-worker")


def test_a_violation_outside_every_emulated_thread_is_on_thread_dash() -> None:
    # a subscriber reporting at run.start runs before the first thread exists
    eng = vt.Engine()
    eng.subscribe(lambda ev: eng.violation("X-0", "before any thread"), events=["run.start"])

    async def main() -> None:
        await vt.checkpoint()

    r = eng.run(main)
    (v,) = r.violations
    assert (v.rule, v.thread) == ("X-0", "-")


@pytest.mark.parametrize("backend", BACKENDS)
def test_stop_on_violation_fails_the_run_naming_rule_message_and_thread(backend: str) -> None:
    async def main() -> None:
        async def worker() -> None:
            await vt.checkpoint()
            vt.violation("X-7", "the broken thing")
            await vt.checkpoint()

        await vt.spawn("w1", worker).join()

    r, _ = _run(main, (), backend, stop_on_violation=True)
    f = r.failure
    assert f is not None
    assert (f.kind, f.message, f.thread) == ("violation", "X-7: the broken thing", "w1")
    assert dict(f.details) == {"rule": "X-7"}
    assert [v.rule for v in r.violations] == ["X-7"]


# ---- races: each (cell, site, site) once per run --------------------------------------------


async def _two_racy_cells() -> None:
    """Two cells, each written by two threads that nothing orders, twice from each site."""
    a, b = vt.SharedCell("cell-a", 0), vt.SharedCell("cell-b", 0)

    async def child() -> None:
        for _ in range(2):
            await a.write(1, "child-a")
            await b.write(1, "child-b")

    t = vt.spawn("child", child)
    for _ in range(2):
        await a.write(2, "main-a")
        await b.write(2, "main-b")
    await t.join()


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_racing_pair_of_sites_is_reported_once_and_every_pair_is(backend: str) -> None:
    r, evs = _run(_two_racy_cells, ("run.end",), backend)
    races = [v for v in r.violations if v.rule == "RACE"]
    pairs = [(v.fields["cell"], v.fields["first"]["site"], v.fields["second"]["site"])
             for v in races]
    # fifo: main writes both cells twice, then the child does: one pair per cell, each once
    assert pairs == [("cell-a", "main-a", "child-a"), ("cell-b", "main-b", "child-b")]
    for v in races:
        assert v.fields["first"]["thread"] == "main"
        assert v.fields["second"]["thread"] == "child"
        assert v.fields["first"]["write"] is True and v.fields["second"]["write"] is True
    assert evs[0]["violations"] == ["RACE", "RACE"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_clean_run_ends_its_trace_ok(backend: str) -> None:
    async def main() -> int:
        await vt.checkpoint()
        return 7

    r, evs = _run(main, ("run.end",), backend)
    assert r.ok and r.value == 7
    assert evs[0]["ok"] is True and evs[0]["failure"] is None and evs[0]["violations"] == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_race_repeated_between_the_same_two_sites_is_one_finding(backend: str) -> None:
    # the writes alternate in virtual time (sleeps order nothing): main, child, main, child…
    # so the pair (main-a, child-a) races at t=5 and again at t=15, (child-a, main-a) at t=10
    async def main() -> None:
        cell = vt.SharedCell("cell", 0)

        async def child() -> None:
            await vt.sleep(5)
            for _ in range(3):
                await cell.write(1, "child-a")
                await vt.sleep(10)

        t = vt.spawn("child", child)
        for _ in range(3):
            await cell.write(2, "main-a")
            await vt.sleep(10)
        await t.join()

    r, _ = _run(main, (), backend)
    pairs = [(v.fields["first"]["site"], v.fields["second"]["site"], v.t)
             for v in r.violations if v.rule == "RACE"]
    assert pairs == [("main-a", "child-a", 5), ("child-a", "main-a", 10)]


# ---- threads: spawn, sleep, wake-ups ----------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_thread_spawned_through_the_engine_is_not_a_daemon_by_default(backend: str) -> None:
    done: list[int] = []

    async def main() -> None:
        async def late() -> None:
            await vt.sleep(100)
            done.append(vt.now())

        vt.current_engine().spawn("late", late)  # not joined: the run still waits for it

    r, evs = _run(main, ("spawn",), backend)
    assert r.ok, r.failure
    assert done == [100]
    assert [(e["child"], e["tid"], e["daemon"]) for e in evs] == [("late", 1, False)]


def test_a_second_thread_of_one_name_is_refused_saying_names_are_unique() -> None:
    async def main() -> None:
        async def idle() -> None:
            await vt.checkpoint()

        vt.spawn("twin", idle)
        vt.spawn("twin", idle)

    r = vt.Engine().run(main)
    assert r.failure is not None and r.failure.kind == "exception"
    assert r.failure.message == (
        "EngineUsageError: a thread named 'twin' already exists: names are unique")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_sleep_blocks_as_sleeping_and_says_until_when(backend: str) -> None:
    seen: dict[str, Any] = {}

    async def main() -> None:
        async def sleeper() -> None:
            await vt.sleep(40)

        t = vt.spawn("sleeper", sleeper)
        await vt.checkpoint()  # fifo: the sleeper runs and parks in its sleep
        seen["state"] = t.state
        await t.join()

    r, evs = _run(main, ("block", "unblock"), backend, strategy="random", seed=0)
    assert r.ok, r.failure
    assert seen["state"] in ("sleeping", "ready")  # ready: random ran main first
    mine = [(e["event"], e.get("waits", e.get("waited"))) for e in evs
            if e["thread"] == "sleeper"]
    assert mine == [("block", "sleep until t=40"), ("unblock", "sleep until t=40")]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_sleeping_thread_is_in_state_sleeping(backend: str) -> None:
    seen: list[str] = []

    async def main() -> None:
        async def sleeper() -> None:
            await vt.sleep(40)

        t = vt.spawn("sleeper", sleeper)
        while t.state != "sleeping" and t.state != "finished":
            seen.append(t.state)
            await vt.sleep(1)
        seen.append(t.state)
        await t.join()

    r, _ = _run(main, (), backend)
    assert r.ok, r.failure
    assert seen[-1] == "sleeping"


@pytest.mark.parametrize("backend", BACKENDS)
def test_sleep_zero_is_a_scheduling_point_not_a_timed_block(backend: str) -> None:
    async def main() -> int:
        await vt.sleep(0)
        await vt.sleep(0)
        return vt.now()

    r, evs = _run(main, ("block", "clock"), backend)
    assert r.ok and r.value == 0
    assert evs == []  # no block, no timer, no clock jump
    assert r.statistics.timers_fired == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_timer_may_be_armed_for_now_but_not_for_the_past(backend: str) -> None:
    from vthreads import lowlevel as ll

    async def main() -> str:
        timer = ll.arm_timer(0)  # due at once: legal
        timer.cancel()
        try:
            ll.arm_timer(-1)
        except ValueError as e:
            return str(e)
        return "accepted"

    r, _ = _run(main, (), backend)
    assert r.ok, r.failure
    assert r.value == "a timer cannot be armed in the past: ns must be >= 0"


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_timers_due_together_wake_their_thread_once(backend: str) -> None:
    # both timers fire at t=100: the second finds the sleeper already ready and must not queue
    # it twice (a stale ready entry would resume it in the middle of its next sleep)
    from vthreads import lowlevel as ll

    times: list[int] = []

    async def main() -> None:
        q = ll.WaitQueue("q")

        async def sleeper() -> None:
            ll.arm_timer(100)
            ll.arm_timer(100)
            await q.park("two timers")
            times.append(vt.now())
            await vt.sleep(50)
            times.append(vt.now())

        await vt.spawn("sleeper", sleeper).join()

    r, _ = _run(main, (), backend)
    assert r.ok, r.failure
    assert times == [100, 150]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_timer_for_a_thread_that_has_finished_wakes_nobody(backend: str) -> None:
    from vthreads import lowlevel as ll

    async def main() -> int:
        async def quick() -> None:
            await vt.sleep(10)

        t = vt.spawn("quick", quick)
        ll.arm_timer(100, thread=t)  # never cancelled; fires after quick has finished
        await vt.sleep(200)
        await t.join()
        return vt.now()

    r, _ = _run(main, (), backend)
    assert r.ok, r.failure
    assert r.value == 200


def test_a_deadlock_names_every_waiting_thread_and_what_it_waits_on() -> None:
    async def main() -> None:
        ev = vt.Event("never")

        async def waiter() -> None:
            await ev.wait()

        await vt.spawn("waiter", waiter).join()

    r = vt.Engine().run(main)
    f = r.failure
    assert f is not None and f.kind == "deadlock"
    assert f.message == "no thread can run: main waits on join waiter; waiter waits on event never"
    assert f.details["waits"] == {"main": "join waiter", "waiter": "event never"}


# ---- the trace: emit, subscribe ------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_engine_emit_delivers_exactly_the_events_a_subscriber_named(backend: str) -> None:
    async def main() -> None:
        eng = vt.current_engine()
        eng.emit("custom", a=1)
        eng.emit("other", b=2)

    r, evs = _run(main, ("custom",), backend)
    assert r.ok, r.failure
    assert [(e["event"], e["a"]) for e in evs] == [("custom", 1)]


def test_subscribing_turns_tracing_on_and_is_refused_once_the_run_started() -> None:
    eng = vt.Engine()
    assert eng.tracing is False
    eng.subscribe(lambda ev: None, events=["custom"])
    assert eng.tracing is True

    async def main() -> None:
        await vt.checkpoint()

    eng.run(main)
    with pytest.raises(vt.EngineUsageError) as err:
        eng.subscribe(lambda ev: None)
    assert str(err.value) == "subscribe before the run starts"


# ---- DPOR sees a spawn as ordering the child after its parent -----------------------------------


async def _two_spawners() -> tuple[int, int]:
    """Threads a and b each spawn a leaf; tids go in spawn order, so who spawns first decides
    which leaf is tid 3: two outcomes that only the order of the two spawns tells apart."""
    out: dict[str, int] = {}

    async def leaf() -> None:
        await vt.checkpoint()

    async def spawner(n: str) -> None:
        await vt.checkpoint()
        out[n] = vt.spawn(f"leaf-{n}", leaf).tid

    a, b = vt.spawn("a", spawner, "a"), vt.spawn("b", spawner, "b")
    await a.join()
    await b.join()
    return out["a"], out["b"]


def test_dpor_orders_two_spawns_and_reaches_both_tid_assignments() -> None:
    outcomes: set[Any] = set()

    def run_one(strategy: Any) -> vt.RunResult:
        r = vt.Engine(strategy).run(_two_spawners)
        outcomes.add(r.value)
        return r

    res = vt.explore_dpor_with(run_one, stop_on_failure=False)
    assert res.exhausted and res.failure is None
    assert outcomes == {(3, 4), (4, 3)}


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_thread_waits_on_nothing_once_it_runs_again_or_finishes(backend: str) -> None:
    seen: dict[str, Any] = {}

    async def main() -> None:
        ev = vt.Event("go")

        async def child() -> None:
            await ev.wait()
            await vt.checkpoint()
            await vt.sleep(10)

        t = vt.spawn("child", child)
        await vt.sleep(1)  # the child parks on the event
        seen["parked"] = t.waiting
        ev.set()
        await vt.sleep(5)  # the child runs, passes its checkpoint and sleeps until t=1+10
        seen["sleeping"] = t.waiting
        await t.join()
        seen["finished"] = t.waiting

    r, _ = _run(main, (), backend)
    assert r.ok, r.failure
    assert seen == {"parked": "event go", "sleeping": "sleep until t=11", "finished": None}


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_resumed_thread_waits_on_nothing(backend: str) -> None:
    seen: list[Any] = []
    flags = {"woke": False, "done": False}

    async def main() -> None:
        ev = vt.Event("go")

        async def child() -> None:
            await ev.wait()
            flags["woke"] = True
            while not flags["done"]:
                await vt.checkpoint()

        t = vt.spawn("child", child)
        await vt.sleep(1)  # the child parks on the event
        ev.set()
        while not flags["woke"]:
            await vt.checkpoint()  # random: sooner or later the child is handed the baton
        seen.append((t.state, t.waiting))  # it ran, and now waits at a checkpoint, ready
        flags["done"] = True
        await t.join()

    r, _ = _run(main, (), backend, strategy="random", seed=1)
    assert r.ok, r.failure
    assert seen == [("ready", None)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_switch_count_is_one_per_handoff(backend: str) -> None:
    # fifo hands the baton at each block and at each finish: main → child (main joins),
    # child → main (child finishes)
    async def main() -> None:
        async def child() -> None:
            await vt.checkpoint()

        await vt.spawn("child", child).join()

    r, _ = _run(main, (), backend)
    assert r.ok, r.failure
    assert r.statistics.switches == 2
    assert r.statistics.threads == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_real_choice_is_traced_with_the_chosen_thread_and_the_choice_size(
        backend: str) -> None:
    async def main() -> None:
        async def child() -> None:
            await vt.checkpoint()

        t = vt.spawn("child", child)
        await vt.checkpoint()  # a choice between main and child
        await t.join()

    r, evs = _run(main, ("sched",), backend)
    assert r.ok, r.failure
    assert len(evs) == len(r.decisions) > 0
    assert (evs[0]["event"], evs[0]["runnable"]) == ("sched", 2)
    assert [e["next"] for e in evs] == [
        "main" if d == 0 else "child" for d in r.decisions]


def test_a_replay_that_diverges_at_a_point_names_the_thread_that_was_running() -> None:
    async def main() -> None:
        async def child() -> None:
            await vt.checkpoint()

        t = vt.spawn("child", child)
        await vt.checkpoint()  # the first choice: the recording names a thread that is not here
        await t.join()

    r = vt.Engine("replay", decisions=[7]).run(main)
    f = r.failure
    assert f is not None and f.kind == "divergence", r.failure
    assert f.thread == "main"
    assert dict(f.details) == {}


# ---- the constructor: defaults, checks, what run.start says (the rerun's survivors) ------------


def _start_event(eng: vt.Engine) -> dict[str, Any]:
    async def main() -> None:
        await vt.checkpoint()

    with capture_events() as events:
        eng.run(main).check()
    assert events[0]["event"] == "run.start"
    return events[0]


def test_run_start_gives_the_default_engine_s_seed_budget_and_context() -> None:
    eng = vt.Engine()
    assert eng.seed == 0
    ev = _start_event(eng)
    assert (ev["step"], ev["t"], ev["thread"]) == (0, 0, None)
    assert ev["step_budget"] == 200_000
    assert (ev["seed"], ev["strategy"], ev["backend"]) == (0, "fifo", "asyncio")


def test_run_start_gives_pct_s_default_depth_and_steps_and_any_given_ones() -> None:
    ev = _start_event(vt.Engine("pct"))
    assert (ev["strategy"], ev["seed"], ev["depth"], ev["pct_steps"]) == ("pct", 0, 3, 1000)
    eng = vt.Engine("pct", seed=9, depth=2, pct_steps=50, step_budget=77)
    assert eng.seed == 9
    ev = _start_event(eng)
    assert (ev["seed"], ev["depth"], ev["pct_steps"], ev["step_budget"]) == (9, 2, 50, 77)


def test_run_start_is_traced_with_the_strategy_s_own_fields() -> None:
    async def main() -> None:
        await vt.checkpoint()

    r, evs = _run(main, ("run.start",), strategy="random", seed=4, step_budget=12)
    assert r.ok, r.failure
    (ev,) = evs
    assert {k: ev[k] for k in ("strategy", "seed", "step_budget")} == {
        "strategy": "random", "seed": 4, "step_budget": 12}


def test_the_constructor_refuses_an_unknown_backend_and_a_budget_below_one() -> None:
    with pytest.raises(ValueError) as err:
        vt.Engine(backend="curio")
    assert str(err.value) == "unknown backend 'curio': use asyncio or trio"
    with pytest.raises(ValueError) as err:
        vt.Engine(step_budget=0)
    assert str(err.value) == "step_budget must be >= 1"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_budget_of_one_step_allows_exactly_one_step(backend: str) -> None:
    # a sleep counts one step, a checkpoint one: budget n passes n steps and fails the n+1st
    async def one() -> None:
        await vt.sleep(5)

    async def two() -> None:
        await vt.sleep(5)
        await vt.checkpoint()

    r = vt.Engine(backend=backend, step_budget=1).run(one)
    assert r.ok, r.failure
    assert r.statistics.steps == 1
    r = vt.Engine(backend=backend, step_budget=1).run(two)
    f = r.failure
    assert f is not None and f.kind == "step-budget"
    assert f.message == ("step budget of 1 exhausted (livelock?); raise step_budget if the "
                         "program is just long")
    assert (f.thread, f.step, dict(f.details)) == ("main", 2, {})


@pytest.mark.parametrize("backend", BACKENDS)
def test_sleeps_count_one_step_each_and_the_budget_stops_the_first_sleep_past_it(
        backend: str) -> None:
    async def sleeper(n: int) -> None:
        for _ in range(n):
            await vt.sleep(3)

    r = vt.Engine(backend=backend, step_budget=3).run(sleeper, 3)
    assert r.ok, r.failure
    assert (r.statistics.steps, r.statistics.time_ns) == (3, 9)
    r = vt.Engine(backend=backend, step_budget=3).run(sleeper, 4)
    f = r.failure
    assert f is not None and f.kind == "step-budget"
    assert (f.thread, f.step) == ("main", 4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_step_count_starts_at_zero(backend: str) -> None:
    async def nothing() -> int:
        return 1

    async def two() -> int:
        await vt.checkpoint()
        await vt.checkpoint()
        return 2

    assert vt.Engine(backend=backend).run(nothing).statistics.steps == 0
    assert vt.Engine(backend=backend).run(two).statistics.steps == 2


@pytest.mark.parametrize("strategy", ["fifo", "free"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_violation_under_stop_on_violation_at_run_start_fails_the_run_cleanly(
        backend: str, strategy: str) -> None:
    # a run.start subscriber may report before any thread exists (then the runner is not
    # there yet): the run fails as a violation on no thread, and the first thread never runs
    ran: list[int] = []
    eng = vt.Engine(strategy, backend=backend, stop_on_violation=True)
    eng.subscribe(lambda ev: eng.violation("X-0", "at start"), events=["run.start"])

    async def main() -> None:
        ran.append(1)
        await vt.checkpoint()

    r = eng.run(main)
    f = r.failure
    assert f is not None
    assert (f.kind, f.message, f.thread, f.step) == ("violation", "X-0: at start", None, 0)
    assert ran == []


# ---- running: names, backends, running once, the value, divergence at the end ---------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_first_thread_is_named_main_unless_named_and_is_not_a_daemon(backend: str) -> None:
    async def main() -> tuple[str, bool, int]:
        me = vt.current_thread()
        return me.name, me.daemon, me.tid

    assert vt.Engine(backend=backend).run(main).value == ("main", False, 0)
    assert vt.Engine(backend=backend).run(main, name="boss").value == ("boss", False, 0)
    r = anyio.run(vt.Engine(backend=backend).run_async, main, backend=backend)
    assert r.value == ("main", False, 0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_daemon_thread_finishing_first_does_not_end_the_run(backend: str) -> None:
    async def main() -> tuple[bool, bool, int]:
        async def quick() -> None:
            await vt.checkpoint()

        d = vt.spawn("d", quick, daemon=True)
        n = vt.spawn("n", quick)
        await d.join()
        await vt.sleep(10)  # the run goes on after the daemon has finished
        await n.join()
        return d.daemon, n.daemon, vt.now()

    r = vt.Engine(backend=backend).run(main)
    assert r.ok, r.failure
    assert r.value == (True, False, 10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_engine_made_for_one_backend_run_on_the_other_records_the_one_it_ran_on(
        backend: str) -> None:
    other = "trio" if backend == "asyncio" else "asyncio"
    eng = vt.Engine(backend=other)

    async def main() -> None:
        await vt.checkpoint()

    with capture_events() as events:
        r = anyio.run(eng.run_async, main, backend=backend)
    assert r.ok, r.failure
    assert eng.backend == backend
    assert {e["backend"] for e in events} == {backend}


def test_an_engine_runs_once() -> None:
    eng = vt.Engine()
    eng.run(vt.checkpoint).check()
    with pytest.raises(vt.EngineUsageError) as err:
        eng.run(vt.checkpoint)
    assert str(err.value) == "an Engine runs once: make a new one for the next run"


def test_current_thread_outside_every_emulated_thread_says_so() -> None:
    with pytest.raises(vt.EngineUsageError) as err:
        vt.Engine().current_thread()
    assert str(err.value) == "not inside an emulated thread of this engine"


def test_a_watchdog_before_the_first_thread_names_no_running_thread() -> None:
    from vthreads._watchdog import running_thread

    assert running_thread(vt.Engine()) is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_failed_run_has_no_value_and_its_failure_carries_the_exception_and_traceback(
        backend: str) -> None:
    async def main() -> int:
        await vt.checkpoint()
        raise KeyError("gone")

    r = vt.Engine(backend=backend).run(main)
    f = r.failure
    assert r.value is None
    assert f is not None and f.message == "KeyError: 'gone'"
    assert f.details["exception"] == "KeyError"
    tb = f.details["traceback"].splitlines()
    assert tb[0] == "Traceback (most recent call last):"
    assert tb[1].startswith("  File ")
    assert tb[-1] == "KeyError: 'gone'"
    assert 'raise KeyError("gone")' in f.details["traceback"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_replay_with_decisions_left_over_diverges_at_the_step_it_finished(backend: str) -> None:
    async def main() -> None:
        await vt.checkpoint()
        await vt.checkpoint()
        await vt.checkpoint()

    r = vt.Engine("replay", decisions=[0, 0], backend=backend).run(main)
    f = r.failure
    assert f is not None and f.kind == "divergence"
    assert f.message == "the program finished after 0 decisions; the recording has 2"
    assert f.step == r.statistics.steps == 3
    assert f.thread is None


def test_dpor_sees_a_thread_block_in_a_sleep_and_reaches_both_orders_after_it() -> None:
    # systematic strategies never pick a thread whose announced operation would block, but a
    # sleep always blocks: its footprint is closed at the block, and both wake-up orders are
    # explored
    async def main() -> tuple[str, ...]:
        order: list[str] = []
        m = vt.Mutex("m")

        async def sleeper(n: str) -> None:
            await vt.sleep(5)
            async with m:
                order.append(n)

        a, b = vt.spawn("a", sleeper, "a"), vt.spawn("b", sleeper, "b")
        await a.join()
        await b.join()
        return tuple(order)

    outcomes: set[Any] = set()

    def run_one(strategy: Any) -> vt.RunResult:
        r = vt.Engine(strategy).run(main)
        assert r.failure is None, r.failure
        outcomes.add(r.value)
        return r

    res = vt.explore_dpor_with(run_one, stop_on_failure=False)
    assert res.exhausted and res.failure is None
    assert outcomes == {("a", "b"), ("b", "a")}


def test_a_race_reported_through_the_engine_is_a_race_violation_once() -> None:
    # Engine.report_race is how a race detector of one's own reports: the same finding as the
    # built-in cells', each (cell, site, site) once
    from vthreads._hb import Access, Race

    async def main() -> None:
        eng = vt.current_engine()
        a = Access(0, "main", 1, "w1", 1, True)
        b = Access(1, "other", 1, "r1", 2, False)
        eng.report_race(Race("mine", a, b))
        eng.report_race(Race("mine", a, b))

    r = vt.Engine().run(main)
    (v,) = r.violations
    assert v.rule == "RACE"
    assert v.message == ("write-read race on mine: main at w1 (step 1) and other at r1 (step 2) "
                         "are not ordered by happens-before")
    assert v.fields["second"] == {"thread": "other", "site": "r1", "step": 2, "write": False}
