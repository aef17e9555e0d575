"""vthreads.lowlevel: a primitive built on it alone behaves like the built-in ones.

The semaphore below uses nothing but ``vthreads.lowlevel`` (and the public ``vthreads`` names a
program uses). It must deadlock-report, order accesses for the race detector, and replay byte for
byte, on both backends.
"""

from __future__ import annotations

import io
import re

import pytest

import vthreads as vt
from vthreads import lowlevel as ll
from vthreads.testing import capture_events

BACKENDS = ["asyncio", "trio"]


class Semaphore:
    """A counting semaphore in twenty lines (the example of docs/engine.md)."""

    def __init__(self, name: str, value: int) -> None:
        self.name, self.value = name, value
        self._waiters = ll.WaitQueue(f"semaphore {name}")
        self._hb = ll.HBClock()

    async def acquire(self) -> None:
        await ll.checkpoint("semaphore.acquire")
        while self.value == 0:
            await self._waiters.park(f"semaphore {self.name} at 0")
        self.value -= 1
        ll.acquire(self._hb)  # release -> this acquire is a happens-before edge
        if ll.tracing():
            ll.emit("semaphore.acquire", semaphore=self.name, value=self.value)

    def release(self) -> None:
        self.value += 1
        ll.release(self._hb)
        self._waiters.unpark_one()


async def _worker(sem: Semaphore, cell: vt.SharedCell, rounds: int) -> None:
    for _ in range(rounds):
        await sem.acquire()
        await cell.update(lambda v: v + 1, "worker.bump")
        sem.release()


def _program(permits: int, workers: int = 3, rounds: int = 2):
    async def main() -> int:
        sem, cell = Semaphore("s", permits), vt.SharedCell("counter", 0)
        ts = [vt.spawn(f"w{i}", _worker, sem, cell, rounds) for i in range(workers)]
        for t in ts:
            await t.join()
        return cell.peek()

    return main


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_binary_semaphore_orders_accesses_on_every_schedule(backend: str) -> None:
    for seed in range(15):
        r = vt.Engine("random", seed=seed, backend=backend).run(_program(permits=1))
        assert r.ok, r.summary()
        assert r.value == 6


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_semaphore_with_two_permits_lets_the_race_through(backend: str) -> None:
    r = vt.Engine("random", seed=1, backend=backend).run(_program(permits=2))
    assert r.rules() == ["RACE"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_semaphore_nobody_releases_is_a_reported_deadlock(backend: str) -> None:
    async def main() -> None:
        sem = Semaphore("empty", 0)
        t = vt.spawn("taker", sem.acquire)
        await t.join()

    r = vt.Engine(backend=backend).run(main)
    assert r.failure is not None and r.failure.kind == "deadlock"
    assert r.failure.details["waits"] == {"main": "join taker", "taker": "semaphore empty at 0"}


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_semaphore_program_replays_byte_for_byte(backend: str) -> None:
    def traced(strategy: str, **kw) -> tuple[vt.RunResult, bytes]:
        buf = io.BytesIO()
        r = vt.Engine(strategy, backend=backend, trace=buf, **kw).run(_program(permits=1))
        return r, buf.getvalue()

    r1, t1 = traced("pct", seed=3, depth=3, pct_steps=60)
    r2, t2 = traced("replay", seed=3, decisions=r1.decisions)
    assert r1.ok and r2.ok and r2.decisions == r1.decisions and len(r1.decisions) > 5

    def body(t: bytes) -> list[bytes]:
        return [x.replace(b'"strategy":"replay"', b'"strategy":"pct"') for x in t.splitlines()
                if b'"run.start"' not in x]

    assert body(t1) == body(t2)
    assert b'"semaphore.acquire"' in t1


# ---- WaitQueue ---------------------------------------------------------------------------


def test_wait_queue_unparks_in_park_order_and_reports_who_waits() -> None:
    order: list[str] = []
    stats: list[ll.WaitQueueStatistics] = []

    async def parker(q: ll.WaitQueue, name: str) -> None:
        await q.park(f"{name} on q")
        order.append(name)

    async def main() -> None:
        q = ll.WaitQueue("q")
        assert q.unpark_one() is None and not q
        ts = [vt.spawn(n, parker, q, n) for n in ("c", "a", "b")]
        await vt.sleep(1)  # everybody parks
        stats.append(q.statistics())
        assert q.unpark_one() is ts[0]
        assert [t.name for t in q.unpark_all()] == ["a", "b"]
        assert len(q) == 0
        for t in ts:
            await t.join()

    vt.Engine("fifo").run(main).check()  # fifo: they park in spawn order
    assert order == ["c", "a", "b"]
    assert stats == [ll.WaitQueueStatistics("q", ("c", "a", "b"))]
    with pytest.raises(AttributeError):
        stats[0].name = "x"  # type: ignore[misc]  # a frozen record


# ---- timers ------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_cancelled_timer_does_not_move_the_clock(backend: str) -> None:
    # The waiter's 1000 ns timeout is cancelled when it is notified at t=100; then every thread
    # waits forever. The deadlock must be found at t=100: a cancelled timer still in the heap
    # would first jump the clock to 1000 (and wake the waiter for nothing).
    async def notifier(c: vt.Condition, box: list) -> None:
        await vt.sleep(100)
        box[0] = True
        c.notify_all()

    async def main() -> None:
        c, box = vt.Condition("c"), [False]
        vt.spawn("n", notifier, c, box)
        assert await c.wait_for(lambda: box[0], "box", timeout_ns=1000)
        await vt.Event("never").wait()

    with capture_events() as events:
        r = vt.Engine(backend=backend).run(main)
    assert r.failure is not None and r.failure.kind == "deadlock"
    assert r.time_ns == 100
    assert [e["to"] for e in events if e["event"] == "clock"] == [100]
    assert r.statistics.timers_fired == 1


def test_timer_states_and_cancel_are_idempotent() -> None:
    seen: list[tuple[str, ...]] = []

    async def main() -> None:
        me = ll.current_thread()
        a = ll.arm_timer(50)
        b = ll.arm_timer(20, me)
        assert a.pending and b.cancel() and not b.cancel() and not b.pending
        q = ll.WaitQueue("timed")
        await q.park("timer a")  # only a can wake us
        seen.append((a.state, b.state, str(vt.now())))
        assert not a.cancel()
        with pytest.raises(ValueError, match="past"):
            ll.arm_timer(-1)

    vt.Engine().run(main).check()
    assert seen == [("fired", "cancelled", "50")]


# ---- happens-before clocks ---------------------------------------------------------------


@pytest.mark.parametrize("with_edge", [True, False])
def test_release_acquire_is_the_edge_the_race_detector_sees(with_edge: bool) -> None:
    async def writer(cell: vt.SharedCell, hb: ll.HBClock, done: ll.WaitQueue) -> None:
        await cell.write(1, "writer")
        ll.release(hb)
        done.unpark_all()

    async def main() -> None:
        cell, hb, done = vt.SharedCell("x", 0), ll.HBClock(), ll.WaitQueue("done")
        vt.spawn("w", writer, cell, hb, done)
        await done.park("writer done")
        if with_edge:
            ll.acquire(hb)
        await cell.read("reader")

    r = vt.Engine().run(main)
    assert r.failure is None
    assert r.rules() == ([] if with_edge else ["RACE"])


def test_record_access_checks_a_home_made_shared_state() -> None:
    async def bump(det: ll.RaceDetector) -> None:
        await ll.checkpoint("bump")
        ll.record_access(det, "bump", write=True)

    async def main() -> None:
        det = ll.RaceDetector("home-made")
        a, b = vt.spawn("a", bump, det), vt.spawn("b", bump, det)
        await a.join()
        await b.join()

    r = vt.Engine().run(main)
    assert r.rules() == ["RACE"] and r.violations[0].fields["cell"] == "home-made"


def test_lowlevel_public_surface() -> None:
    assert sorted(ll.__all__) == sorted(
        ["Engine", "HBClock", "RaceDetector", "Timer", "VThread", "WaitQueue",
         "WaitQueueStatistics", "acquire", "arm_timer", "checkpoint", "current_engine",
         "current_thread", "emit", "parker_class", "record_access", "release", "touch", "tracing",
         "Hang", "Watchdog", "check_timeout", "fail_run", "result_of", "running_thread",
         "describe_exception", "safe_repr", "safe_str", "strip_addresses", "type_name",
         "refuse_running_loop", "same_run", "watching_sigint", "set_last_resort",
         "last_resort"])
    assert all(not n.startswith("_") for n in ll.__all__)


def test_sync_objects_use_no_private_engine_name() -> None:
    import inspect

    from vthreads import _sync

    src = inspect.getsource(_sync)
    # whole names: current_engine (public) is no _engine
    for private in ("_make_ready", "_block", "_emit", "_emit_one", "_event", "_tracing", "._vc",
                    "vc_join", "_engine", "_engine_var", "_thread_var", "_current", "_reports",
                    "_sink"):
        lead = "" if private.startswith(".") else r"(?<!\w)"
        assert not re.search(lead + re.escape(private) + r"(?!\w)", src), private


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_release_puts_the_threads_clock_in_then_ticks_it_by_one(backend: str) -> None:
    """``HBClock``'s repr shows the vector it carries: each release joins the caller's clock
    into it and then ticks the caller's own entry by exactly one (so what the caller does next
    is not covered); a child spawned after them starts from the parent's clock."""
    seen: list[str] = []

    async def main() -> None:
        c = ll.HBClock()
        seen.append(repr(c))
        ll.release(c)
        seen.append(repr(c))
        ll.release(c)
        seen.append(repr(c))

        async def child() -> None:
            ll.acquire(c)
            ll.release(c)
            seen.append(repr(c))

        await vt.spawn("t", child).join()

    assert vt.Engine("fifo", backend=backend).run(main).ok
    assert seen == ["<HBClock []>", "<HBClock [1]>", "<HBClock [2]>", "<HBClock [3, 1]>"]
