"""The trampoline (controlled strategies), run_many, and the timer heap (issue 13).

Controlled runs drive the emulated threads' coroutines from one host task; these tests pin what
that must keep from "one anyio task per thread" (contexts, unwinding) and what it adds: a
foreign await is a finding, many runs share one event loop, and a cancelled timer leaves the
heap at once.
"""

from __future__ import annotations

import contextvars
import random
from typing import Any

import anyio
import pytest
import sniffio

import vthreads as vt
from vthreads import lowlevel as ll
from vthreads.testing import capture_events

BACKENDS = ["asyncio", "trio"]


# ---- a foreign await is a finding ------------------------------------------------------------

FOREIGN = {
    "anyio.sleep(1)": lambda: anyio.sleep(1),
    "anyio.sleep_forever()": anyio.sleep_forever,
    "anyio.sleep(0)": lambda: anyio.sleep(0),
}


def _foreign_program(awaitable, cleaned: list[str]):
    async def driver() -> None:
        await vt.checkpoint("driver.start")
        try:
            await awaitable()
        finally:
            cleaned.append("driver")

    async def bystander() -> None:
        try:
            await vt.Event("never").wait()
        finally:
            cleaned.append("bystander")

    async def main() -> None:
        vt.spawn("bystander", bystander)
        await vt.spawn("driver", driver).join()

    return main


@pytest.mark.parametrize("what", sorted(FOREIGN))
def test_a_foreign_await_is_a_foreign_await_failure_naming_the_thread(what: str) -> None:
    # Nothing would ever resume a thread that awaits a raw anyio/asyncio/trio object under the
    # trampoline: the run must end at once (no wall-clock sleep, no hang) with a finding, the
    # same on both backends, and every thread must be unwound (its finally blocks run).
    outcomes = []
    for backend in BACKENDS:
        cleaned: list[str] = []
        r = vt.Engine("fifo", backend=backend).run(_foreign_program(FOREIGN[what], cleaned))
        assert r.failure is not None and r.failure.kind == "foreign-await"
        assert r.failure.thread == "driver"
        assert "vthreads.sleep" in r.failure.message and r.failure.details["awaited"]
        assert sorted(cleaned) == ["bystander", "driver"]
        outcomes.append((r.failure.message, r.failure.step, r.decisions, r.time_ns))
    assert outcomes[0] == outcomes[1]


def test_free_mode_keeps_real_tasks_so_a_foreign_await_just_runs(backend: str) -> None:
    async def main() -> str:
        await anyio.sleep(0)
        return sniffio.current_async_library()

    assert vt.Engine("free", backend=backend).run(main).value == backend


# ---- what the trampoline keeps from anyio tasks --------------------------------------------

_VAR: contextvars.ContextVar[str] = contextvars.ContextVar("test_trampoline_var", default="-")


def test_each_thread_runs_in_its_own_copy_of_its_spawners_context(backend: str) -> None:
    seen: dict[str, str] = {}

    async def child(name: str) -> None:
        seen[f"{name} at start"] = _VAR.get()  # inherited from the spawner at spawn time
        _VAR.set(name)
        await vt.checkpoint()
        seen[name] = _VAR.get()

    async def main() -> None:
        _VAR.set("main")
        a = vt.spawn("a", child, "a")
        _VAR.set("main-later")
        b = vt.spawn("b", child, "b")
        await a.join()
        await b.join()
        seen["main"] = _VAR.get()

    vt.Engine("random", seed=3, backend=backend).run(main).check()
    assert seen == {"a at start": "main", "b at start": "main-later", "a": "a", "b": "b",
                    "main": "main-later"}
    assert _VAR.get() == "-"


def test_the_engine_is_unbound_after_its_run() -> None:
    async def host() -> None:
        await vt.Engine().run_async(vt.checkpoint)
        with pytest.raises(vt.EngineUsageError, match="no engine is running"):
            vt.now()

    anyio.run(host)


# ---- run_many: many runs, one event loop -----------------------------------------------------


async def _contended(n: int) -> int:
    m, total = vt.Mutex("m"), vt.SharedCell("total", 0)

    async def bump() -> None:
        for _ in range(n):
            async with m:
                await total.update(lambda v: v + 1, "bump")

    ts = [vt.spawn(f"t{i}", bump) for i in range(3)]
    for t in ts:
        await t.join()
    return total.peek()


def test_run_many_gives_each_run_what_a_run_of_its_own_gives(backend: str) -> None:
    loops: set[int] = set()

    async def one(seed: int) -> tuple[tuple[int, ...], int]:
        loops.add(id(_current_loop()))
        r = await vt.Engine("pct", seed=seed, backend=backend).run_async(_contended, 4)
        return r.decisions, r.value

    stopped: list[int] = []

    def stop(seed: int, result: tuple[tuple[int, ...], int]) -> bool:
        stopped.append(seed)
        return seed == 5

    many = vt.run_many(one, range(10), backend=backend, stop=stop)
    assert stopped == [0, 1, 2, 3, 4, 5] and len(many) == 6
    assert len(loops) == 1  # one event loop for all of them
    for seed, (decisions, value) in enumerate(many):
        alone = vt.Engine("pct", seed=seed, backend=backend).run(_contended, 4)
        assert (alone.decisions, alone.value) == (decisions, value) == (alone.decisions, 12)
    assert len({d for d, _ in many}) > 1  # the seeds really are different schedules


def _current_loop() -> object:
    if sniffio.current_async_library() == "trio":
        import trio

        return trio.lowlevel.current_root_task()
    import asyncio

    return asyncio.get_running_loop()


def test_run_many_rejects_an_unknown_backend() -> None:
    with pytest.raises(ValueError, match="use asyncio or trio"):
        vt.run_many(vt.checkpoint, [], backend="curio")


# ---- cancelled timers leave the heap ---------------------------------------------------------


def test_a_cancelled_timer_leaves_the_heap_at_once() -> None:
    # 60 timers at shuffled times, every third one cancelled: the heap must hold exactly the
    # pending ones after every cancel (a lingering cancelled timer fails the length check), and
    # sleeping past them all must fire exactly the others, by (time, arming order).
    rng = random.Random(13)
    fired: list[int] = []
    sizes: list[tuple[int, int]] = []

    async def main() -> None:
        eng, me = ll.current_engine(), ll.current_thread()
        timers = [(i, ll.arm_timer(rng.randrange(1, 40) * 10, me)) for i in range(60)]
        pending = len(timers)
        for i, timer in timers:
            if i % 3 == 0:
                assert timer.cancel()
                pending -= 1
                sizes.append((len(eng._timers), pending))
        q = ll.WaitQueue("timers")  # nobody unparks it: only the timers wake us
        while any(timer.pending for _, timer in timers):
            await q.park("the next timer")
            fired.extend(i for i, timer in timers if timer.fired and i not in fired)
            assert vt.now() == max(timers[i][1].when for i in fired)
        sizes.append((len(eng._timers), 0))

    vt.Engine().run(main).check()
    assert all(have == want for have, want in sizes) and len(sizes) == 21
    assert sorted(fired) == [i for i in range(60) if i % 3]


def test_condition_timeouts_leave_no_timer_behind() -> None:
    # 200 timed waits that each end by a notify well before their timeout: the heap must not
    # grow (one dead timer per wait is the leak issue 13 names).
    heights: list[int] = []

    async def notifier(c: vt.Condition, box: list[int]) -> None:
        for i in range(200):
            await vt.sleep(1)
            box[0] = i + 1
            c.notify_all()

    async def main() -> None:
        c, box = vt.Condition("c"), [0]
        vt.spawn("n", notifier, c, box)
        for i in range(200):
            assert await c.wait_for(lambda i=i: box[0] > i, "tick", timeout_ns=1_000_000)
            heights.append(len(ll.current_engine()._timers))

    with capture_events() as events:
        vt.Engine().run(main).check()
    assert len(heights) == 200 and max(heights) <= 1  # at most the notifier's own sleep
    assert [e for e in events if e["event"] == "clock"][-1]["to"] == 200


def test_a_real_ctrl_c_leaves_the_run_and_the_other_threads_are_unwound(backend: str) -> None:
    # a SIGINT delivered to the process while an emulated thread runs must reach the caller
    # (the CLI makes it 130), and the parked threads must still be unwound on the way out
    import signal

    cleaned: list[str] = []

    async def parked() -> None:
        try:
            await vt.Event("never").wait()
        finally:
            cleaned.append("parked")

    async def main() -> None:
        vt.spawn("parked", parked)
        await vt.sleep(1)  # "parked" runs and parks meanwhile
        signal.raise_signal(signal.SIGINT)
        await vt.checkpoint()

    with pytest.raises(KeyboardInterrupt):
        vt.Engine("fifo", backend=backend).run(main)
    assert cleaned == ["parked"]


def test_a_real_ctrl_c_that_emulated_code_swallows_still_stops_the_run(backend: str) -> None:
    # the driver's except BaseException eats the KeyboardInterrupt: the run stops all the same
    import signal

    async def main() -> None:
        ctrl_c = [True]
        while True:
            try:
                if ctrl_c.pop() if ctrl_c else False:
                    signal.raise_signal(signal.SIGINT)  # once, as a user presses Ctrl-C
                await vt.Event("never").wait()
            except BaseException:
                pass

    with pytest.raises(KeyboardInterrupt):
        vt.Engine("fifo", backend=backend).run(main)


def _spin_until_interrupted(seconds: float) -> tuple[list[str], Any]:
    """A program whose thread spins in a CPU loop (never a scheduling point) and one real
    SIGINT sent once it spins (by an OS thread started here: emulated code may start none);
    the loop gives up after ``seconds`` and notes that it did."""
    import signal
    import threading
    import time

    gave_up: list[str] = []
    spinning = threading.Event()

    def send() -> None:
        if spinning.wait(seconds):
            time.sleep(0.1)
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    async def spinner() -> None:
        spinning.set()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass
        gave_up.append("spinner")

    async def main() -> None:
        await vt.spawn("spinner", spinner).join()

    threading.Thread(target=send, daemon=True).start()
    return gave_up, main


@pytest.mark.parametrize("many", [False, True], ids=["run", "run_many"])
def test_one_ctrl_c_stops_a_thread_in_a_cpu_loop(backend: str, many: bool) -> None:
    # asyncio's runner would only cancel its main task at a first Ctrl-C, which a controlled
    # run never lets the loop deliver: run_sync keeps Python's own handler (vthreads/_host.py)
    import signal

    gave_up, main = _spin_until_interrupted(20.0)
    with pytest.raises(KeyboardInterrupt):
        if many:
            vt.run_many(lambda _: vt.Engine("fifo", backend=backend).run_async(main), [0],
                        backend=backend)
        else:
            vt.Engine("fifo", backend=backend).run(main)
    assert gave_up == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_applications_own_sigint_handler_is_left_in_place() -> None:
    import signal

    seen: list[int] = []

    def mine(signum: int, frame: object) -> None:
        seen.append(signum)

    async def main() -> None:
        signal.raise_signal(signal.SIGINT)
        await vt.checkpoint()

    old = signal.signal(signal.SIGINT, mine)
    try:
        with pytest.raises(KeyboardInterrupt):  # the engine's own: a run stops at a Ctrl-C
            vt.Engine("fifo", backend="asyncio").run(main)
        assert signal.getsignal(signal.SIGINT) is mine
    finally:
        signal.signal(signal.SIGINT, old)
    assert seen == [signal.SIGINT]  # the application's handler ran: nothing stood in for it


@pytest.mark.parametrize("handler", ["SIG_IGN", "SIG_DFL", "own"])
def test_a_sigint_handler_the_code_under_test_installs_does_not_outlive_the_run(
        backend: str, handler: str) -> None:
    """The host's handler is back after the run whatever the emulated code did to it (sweep E
    D5: a driver's SIG_IGN left Ctrl-C dead for every later run and the pytest session)."""
    import signal

    async def main() -> None:
        signal.signal(signal.SIGINT, getattr(signal, handler, lambda *a: None))
        await vt.checkpoint()

    before = signal.getsignal(signal.SIGINT)
    vt.Engine("pct", seed=1, backend=backend).run(main).check()
    assert signal.getsignal(signal.SIGINT) is before


def test_a_controlled_run_inside_an_emulated_thread_is_not_a_foreign_await(backend: str) -> None:
    # a controlled run never yields to the event loop, so one may run inside another's thread
    async def inner() -> int:
        t = vt.spawn("x", vt.checkpoint)
        await vt.checkpoint()
        await t.join()
        return 5

    async def outer() -> int:
        r = await vt.Engine("random", seed=2).run_async(inner)
        await vt.checkpoint()
        return r.value

    assert vt.Engine("pct", backend=backend).run(outer).check().value == 5
