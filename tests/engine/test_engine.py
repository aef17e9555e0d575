"""The engine: determinism, deadlock, races, strategies, replay, failures, the clock."""

from __future__ import annotations

import io
import itertools

import orjson
import pytest
import structlog

import vthreads as vt
from vthreads.testing import capture_events

BACKENDS = ["asyncio", "trio"]


# ---- a small producer/consumer program with some shared state ------------------------------


async def _producer(q: vt.Queue, cell: vt.SharedCell, m: vt.Mutex) -> None:
    for i in range(4):
        await q.put(i)
        async with m:
            v = await cell.read("producer.read")
            await cell.write(v + 1, "producer.write")
        await vt.sleep(10)


async def _consumer(q: vt.Queue, cell: vt.SharedCell, m: vt.Mutex, out: list) -> None:
    for _ in range(4):
        item = await q.get()
        async with m:
            v = await cell.read("consumer.read")
            await cell.write(v + item, "consumer.write")
        out.append(item)
        vt.log("consumed", item=item)


async def prodcons() -> list:
    q: vt.Queue[int] = vt.Queue("q", 2)
    cell = vt.SharedCell("counter", 0)
    m = vt.Mutex("m")
    out: list[int] = []
    p = vt.spawn("producer", _producer, q, cell, m)
    c = vt.spawn("consumer", _consumer, q, cell, m, out)
    await p.join()
    await c.join()
    return out


def _traced(strategy: str, seed: int, backend: str, **kw) -> tuple[vt.RunResult, bytes]:
    buf = io.BytesIO()
    r = vt.Engine(strategy, seed=seed, backend=backend, trace=buf, **kw).run(prodcons)
    return r, buf.getvalue()


@pytest.mark.parametrize("strategy", ["fifo", "random", "pct"])
def test_same_seed_same_decisions_and_byte_identical_trace(strategy: str) -> None:
    runs = {b: [_traced(strategy, 11, b) for _ in range(2)] for b in BACKENDS}
    (ra1, ta1), (ra2, ta2) = runs["asyncio"]
    (rt1, tt1), (rt2, tt2) = runs["trio"]
    assert ra1.ok, ra1.summary()
    assert ra1.decisions == ra2.decisions == rt1.decisions == rt2.decisions
    assert ta1 == ta2 and tt1 == tt2
    # across backends only the value of the `backend` field may differ (docs/engine.md)
    assert ta1.replace(b'"backend":"asyncio"', b'"backend":"trio"') == tt1
    assert ta1 != tt1
    lines = [orjson.loads(x) for x in ta1.splitlines()]
    assert all(list(d)[:4] == ["step", "t", "thread", "event"] for d in lines)
    assert all(d["seed"] == 11 and d["strategy"] == strategy for d in lines)


def test_different_seeds_give_different_schedules() -> None:
    decs = {vt.Engine("random", seed=s).run(prodcons).decisions for s in range(20)}
    assert len(decs) > 5


# ---- deadlock ----------------------------------------------------------------------------


async def _lock_both(first: vt.Mutex, second: vt.Mutex) -> None:
    async with first:
        await vt.checkpoint("between")
        async with second:
            pass


async def lock_order_inversion() -> None:
    a, b = vt.Mutex("A"), vt.Mutex("B")
    t1 = vt.spawn("t1", _lock_both, a, b)
    t2 = vt.spawn("t2", _lock_both, b, a)
    await t1.join()
    await t2.join()


@pytest.mark.parametrize("backend", BACKENDS)
def test_lock_order_deadlock_is_reported_with_both_waits(backend: str) -> None:
    found = None
    for seed in range(50):
        r = vt.Engine("random", seed=seed, backend=backend).run(lock_order_inversion)
        if r.failure is not None:
            found = r
            break
    assert found is not None, "no schedule of 50 deadlocked"
    f = found.failure
    assert f.kind == "deadlock"
    assert f.details["waits"]["t1"] == "mutex B held by t2"
    assert f.details["waits"]["t2"] == "mutex A held by t1"
    assert "t1 waits on mutex B held by t2" in f.message
    assert not found.ok


def test_fifo_does_not_deadlock_the_same_program() -> None:
    # fifo runs t1 to completion before t2: the inversion needs a preemption
    assert vt.Engine("fifo").run(lock_order_inversion).ok


def test_deadlock_on_a_queue_nobody_fills() -> None:
    async def main() -> None:
        q: vt.Queue[int] = vt.Queue("never", 1)
        await q.get()

    r = vt.Engine().run(main)
    assert r.failure is not None and r.failure.kind == "deadlock"
    assert r.failure.details["waits"] == {"main": "queue never empty"}


# ---- races -------------------------------------------------------------------------------


async def _rmw(cell: vt.SharedCell, m: vt.Mutex | None) -> None:
    if m is None:
        v = await cell.read("rmw.read")
        await cell.write(v + 1, "rmw.write")
    else:
        async with m:
            v = await cell.read("rmw.read")
            await cell.write(v + 1, "rmw.write")


def _two_incrementers(locked: bool):
    async def main() -> int:
        cell = vt.SharedCell("counter", 0)
        m = vt.Mutex("m") if locked else None
        a = vt.spawn("a", _rmw, cell, m)
        b = vt.spawn("b", _rmw, cell, m)
        await a.join()
        await b.join()
        return cell.peek()

    return main


@pytest.mark.parametrize("backend", BACKENDS)
def test_unsynchronised_read_modify_write_is_a_race_even_under_fifo(backend: str) -> None:
    r = vt.Engine("fifo", backend=backend).run(_two_incrementers(locked=False))
    assert r.value == 2  # fifo did no harm...
    assert r.failure is None
    assert r.rules() == ["RACE"]  # ...and the race is reported anyway
    v = r.violations[0]
    assert v.fields["cell"] == "counter"
    assert {v.fields["first"]["thread"], v.fields["second"]["thread"]} == {"a", "b"}
    assert v.fields["first"]["site"].startswith("rmw.")
    assert v.fields["second"]["step"] > v.fields["first"]["step"]


@pytest.mark.parametrize("strategy", ["fifo", "random", "pct"])
def test_the_same_with_a_mutex_is_not_a_race(strategy: str) -> None:
    for seed in range(30):
        r = vt.Engine(strategy, seed=seed).run(_two_incrementers(locked=True))
        assert r.ok, r.summary()
        assert r.value == 2


def test_queue_put_get_orders_accesses() -> None:
    async def consumer(q: vt.Queue, cell: vt.SharedCell) -> None:
        await q.get()
        await cell.write(await cell.read("consumer.read") + 1, "consumer.write")

    async def main() -> None:
        q: vt.Queue[int] = vt.Queue("q")
        cell = vt.SharedCell("c", 0)
        c = vt.spawn("consumer", consumer, q, cell)
        await cell.write(1, "main.write")
        await q.put(1)
        await c.join()
        assert await cell.read("main.after-join") == 2

    for seed in range(20):
        vt.Engine("random", seed=seed).run(main).check()


def test_lost_update_happens_on_some_schedule() -> None:
    values = {
        vt.Engine("random", seed=s).run(_two_incrementers(locked=False)).value for s in range(40)
    }
    assert values == {1, 2}


# ---- strategies reach interleavings --------------------------------------------------------


def _three_step_model():
    order: list[str] = []

    async def body(tag: str) -> None:
        for i in range(3):
            await vt.checkpoint(f"{tag}{i}")
            order.append(tag)

    async def main() -> None:
        a = vt.spawn("A", body, "A")
        b = vt.spawn("B", body, "B")
        await a.join()
        await b.join()

    return main, order


def _interleavings(strategy: str, seeds: range, **kw) -> set[str]:
    seen = set()
    for s in seeds:
        main, order = _three_step_model()
        vt.Engine(strategy, seed=s, **kw).run(main).check()
        seen.add("".join(order))
    return seen


def test_random_reaches_all_20_interleavings_of_2x3() -> None:
    expected = {"".join(p) for p in set(itertools.permutations("AAABBB"))}
    assert len(expected) == 20
    assert _interleavings("random", range(500)) == expected


def test_fifo_reaches_one_interleaving_and_pct_more() -> None:
    assert _interleavings("fifo", range(50)) == {"AAABBB"}
    pct = _interleavings("pct", range(200), depth=2, pct_steps=10)
    assert len(pct) > 1
    assert "AAABBB" in pct or "BBBAAA" in pct


# ---- replay ------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_replay_of_a_pct_run_gives_the_same_trace(backend: str) -> None:
    r1, t1 = _traced("pct", 5, backend, depth=3, pct_steps=40)
    r2, t2 = _traced("replay", 5, backend, decisions=r1.decisions)
    assert r2.ok and r2.decisions == r1.decisions

    def body(t: bytes) -> list[dict]:
        out = []
        for line in t.splitlines():
            d = orjson.loads(line)
            d.pop("strategy")
            if d["event"] == "run.start":
                continue
            out.append(d)
        return out

    assert body(t1) == body(t2)
    assert len(body(t1)) > 20


def test_tampered_recording_reports_divergence_with_step() -> None:
    r1 = vt.Engine("random", seed=9).run(prodcons)
    assert len(r1.decisions) > 3
    bad = list(r1.decisions)
    bad[2] = 7  # there is no thread 7
    r2 = vt.Engine("replay", decisions=bad).run(prodcons)
    assert r2.failure is not None and r2.failure.kind == "divergence"
    assert "tid 7" in r2.failure.message
    assert r2.failure.step > 0

    short = vt.Engine("replay", decisions=r1.decisions[:2]).run(prodcons)
    assert short.failure.kind == "divergence"
    assert "recording has only 2" in short.failure.message

    long = vt.Engine("replay", decisions=[*r1.decisions, 0, 0]).run(prodcons)
    assert long.failure.kind == "divergence"
    assert "finished" in long.failure.message


def test_replay_with_fallback_extends_a_prefix() -> None:
    r1 = vt.Engine("random", seed=4).run(prodcons)
    strat = vt.Replay(r1.decisions[:3], fallback=vt.Fifo())
    r2 = vt.Engine(strat).run(prodcons)
    assert r2.ok and r2.decisions[:3] == r1.decisions[:3]


# ---- failures ----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_exception_in_a_thread_fails_the_run_and_cancels_the_others(backend: str) -> None:
    async def waits_forever() -> None:
        await vt.Event("never").wait()

    async def boom() -> None:
        await vt.checkpoint("x")
        raise ValueError("bad thing")

    async def main() -> None:
        vt.spawn("waiter", waits_forever)
        b = vt.spawn("boom", boom)
        await b.join()

    r = vt.Engine(backend=backend).run(main)
    assert r.failure is not None
    assert r.failure.kind == "exception"
    assert r.failure.thread == "boom"
    assert r.failure.message == "ValueError: bad thing"
    assert r.failure.step >= 1
    assert "Traceback" in r.failure.details["traceback"]


def test_step_budget_stops_a_livelock() -> None:
    async def spin() -> None:
        while True:
            await vt.checkpoint("spin")

    r = vt.Engine(step_budget=500).run(spin)
    assert r.failure.kind == "step-budget"
    assert r.failure.step == 501
    assert "500" in r.failure.message


def test_engine_usage_errors_fail_the_run_cleanly() -> None:
    async def main() -> None:
        m = vt.Mutex("m")
        m.release()

    r = vt.Engine().run(main)
    assert r.failure.kind == "exception"
    assert "release only what you acquired" in r.failure.message


def test_calls_outside_a_run_say_so() -> None:
    with pytest.raises(vt.EngineUsageError, match=r"inside Engine\.run"):
        vt.now()


def test_stop_on_violation_ends_at_the_first_rule_break() -> None:
    async def main() -> None:
        vt.violation("LA-5", "NoOverwrite and Discard both set", flags=3)
        await vt.checkpoint("after")
        vt.violation("LA-6", "never reached")

    r = vt.Engine(stop_on_violation=True).run(main)
    assert r.rules() == ["LA-5"]
    assert r.failure.kind == "violation"


# ---- clock, timers, sync objects ---------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_virtual_clock_advances_only_when_all_sleep(backend: str) -> None:
    log: list[tuple[str, int]] = []

    async def sleeper(name: str, ns: int) -> None:
        await vt.sleep(ns)
        log.append((name, vt.now()))

    async def main() -> None:
        plan = [("s300", 300), ("s100", 100), ("t100", 100)]
        ts = [vt.spawn(n, sleeper, n, ns) for n, ns in plan]
        for t in ts:
            await t.join()

    r = vt.Engine(backend=backend).run(main)
    assert r.ok
    assert log == [("s100", 100), ("t100", 100), ("s300", 300)]  # ties in the order they slept
    assert r.time_ns == 300


def test_bounded_queue_blocks_the_producer() -> None:
    events: list[str] = []

    async def consumer(q: vt.Queue) -> None:
        await vt.sleep(50)
        while True:
            x = await q.get()
            events.append(f"get{x}@{vt.now()}")
            if x == 2:
                return

    async def main() -> None:
        q: vt.Queue[int] = vt.Queue("q", 1)
        c = vt.spawn("c", consumer, q)
        for i in range(3):
            await q.put(i)
            events.append(f"put{i}@{vt.now()}")
        with pytest.raises(vt.WouldBlock):
            q.put_nowait(9)
        await c.join()
        assert q.high_water == 1

    vt.Engine().run(main).check()
    assert events[:2] == ["put0@0", "get0@50"]
    assert events[-1] == "get2@50"


def test_condition_and_event() -> None:
    async def waiter(c: vt.Condition, box: list, done: vt.Event) -> None:
        await c.wait_for(lambda: box[0] >= 2, what="box >= 2")
        done.set()

    async def main() -> None:
        c, box, done = vt.Condition("c"), [0], vt.Event("done")
        vt.spawn("w", waiter, c, box, done)
        for _ in range(2):
            await vt.sleep(10)
            box[0] += 1
            c.notify_all()
        await done.wait()
        assert vt.now() == 20

    vt.Engine().run(main).check()


def test_daemon_threads_do_not_keep_the_run_alive() -> None:
    async def engine_loop(c: vt.Condition) -> None:
        while True:
            await c.wait_for(lambda: False, what="work")

    async def main() -> int:
        vt.spawn("gpu", engine_loop, vt.Condition("work"), daemon=True)
        await vt.sleep(5)
        return 42

    r = vt.Engine().run(main)
    assert r.ok and r.value == 42
    assert dict(r.threads)["gpu"] == "blocked"


def test_free_strategy_runs_the_same_programs() -> None:
    for backend in BACKENDS:
        r = vt.Engine("free", backend=backend).run(prodcons)
        assert r.ok and r.value == [0, 1, 2, 3]
        assert r.decisions == ()


def test_free_strategy_still_detects_deadlock() -> None:
    async def main() -> None:
        await vt.Event("never").wait()

    r = vt.Engine("free").run(main)
    assert r.failure.kind == "deadlock"


# ---- trace ---------------------------------------------------------------------------------


def test_trace_events_through_capture_events() -> None:
    with capture_events() as logs:
        r = vt.Engine(context={"scenario": "unit"}).run(prodcons)
    assert r.ok
    consumed = [e for e in logs if e["event"] == "consumed"]
    assert [e["item"] for e in consumed] == [0, 1, 2, 3]
    assert all(e["thread"] == "consumer" for e in consumed)
    assert all(e["scenario"] == "unit" for e in logs)
    events = {e["event"] for e in logs}
    assert {"run.start", "spawn", "block", "unblock", "finish", "run.end", "clock"} <= events


def test_tracing_off_builds_no_events() -> None:
    seen: list[dict] = []
    eng = vt.Engine()
    eng.run(prodcons).check()
    assert not eng.tracing
    # and a subscriber alone turns event building on, without a sink
    eng2 = vt.Engine()
    eng2.subscribe(seen.append)
    eng2.run(prodcons).check()
    assert eng2.tracing and seen and "scenario" not in seen[0]


def test_the_engine_never_logs_through_the_host_structlog_configuration(tmp_path) -> None:
    # structlog.testing.capture_logs swaps the *global* chain: a library that used it (or
    # called structlog.configure) would show up here. The trace file is still complete.
    path = tmp_path / "t.jsonl"
    with structlog.testing.capture_logs() as logs:
        vt.Engine(trace=path).run(prodcons).check()
    assert logs == []
    assert path.read_bytes().count(b"\n") > 20


def test_trace_to_a_file_is_complete_even_on_failure(tmp_path) -> None:
    path = tmp_path / "t.jsonl"
    r = vt.Engine("random", seed=0, trace=path).run(_two_incrementers(locked=False))
    lines = [orjson.loads(x) for x in path.read_bytes().splitlines()]
    assert lines[0]["event"] == "run.start"
    assert lines[-1]["event"] == "run.end"
    assert lines[-1]["violations"] == [v.rule for v in r.violations]
    assert r.rules() == ["RACE"]
    assert any(d["event"] == "violation" and d["rule"] == "RACE" for d in lines)


# ---- pytest-trio: the engine inside an existing trio loop ---------------------------------


@pytest.mark.trio
async def test_run_async_inside_trio() -> None:
    r = await vt.Engine(backend="trio").run_async(prodcons)
    assert r.ok and r.value == [0, 1, 2, 3]


# ---- timed condition waits ---------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_timed_wait_times_out_at_exactly_the_deadline(backend: str) -> None:
    async def main() -> tuple[bool, int]:
        c = vt.Condition("never")
        got = await c.wait_for(lambda: False, "nothing", timeout_ns=500)
        return got, vt.now()

    r = vt.Engine(backend=backend).run(main)
    assert r.ok and r.value == (False, 500)


def test_a_notified_timed_wait_leaves_no_stale_timer() -> None:
    log: list[tuple[str, int]] = []

    async def notifier(c: vt.Condition, box: list, ev: vt.Event) -> None:
        await vt.sleep(100)
        box[0] = True
        c.notify_all()
        await vt.sleep(900)  # well past the waiter's old deadline (t=300)
        ev.set()

    async def main() -> None:
        c, box, ev = vt.Condition("c"), [False], vt.Event("later")
        vt.spawn("n", notifier, c, box, ev)
        got = await c.wait_for(lambda: box[0], "box", timeout_ns=300)
        log.append(("notified", vt.now()))
        assert got is True
        await ev.wait()  # the cancelled timer must not wake this wait at t=300
        log.append(("event", vt.now()))

    r = vt.Engine().run(main)
    assert r.ok, r.summary()
    assert log == [("notified", 100), ("event", 1000)]
    assert r.statistics.timers_fired == 2  # the notifier's two sleeps, not the waiter's timeout
