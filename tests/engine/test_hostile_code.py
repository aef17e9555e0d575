"""Emulated code is untrusted: whatever it raises, returns or swallows, the run ends with a
finding, deterministically, on both backends — never an exception out of ``Engine.run``
(except a real Ctrl-C, tests/engine/test_trampoline.py), never a hang, never an address in a
message (docs/engine.md, "Untrusted code")."""

from __future__ import annotations

import asyncio
import concurrent.futures
import subprocess
import sys
import threading
import warnings
from typing import Any

import pytest
import trio

import vthreads as vt
from vthreads import lowlevel as ll
from vthreads._engine import ABORT_LIMIT, MAX_TIME

from .test_engine import BACKENDS


class _Mine(BaseException):
    pass


class _EvilStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("evil __str__")


class _EvilRepr:
    def __repr__(self) -> str:
        raise SystemExit(3)


class _Plain:  # the default repr: "<…_Plain object at 0x7f…>"
    pass


def _base_exceptions() -> list[BaseException]:
    return [SystemExit(0), SystemExit(3), KeyboardInterrupt(), GeneratorExit(),
            asyncio.CancelledError(), trio.Cancelled._create(), _Mine("mine"),
            BaseExceptionGroup("group", [_Mine(), KeyboardInterrupt()])]


_IDS = ["SystemExit0", "SystemExit3", "KeyboardInterrupt", "GeneratorExit", "CancelledError",
        "trio.Cancelled", "custom", "group"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("where", ["main", "spawned"])
@pytest.mark.parametrize("index", range(len(_IDS)), ids=_IDS)
def test_every_base_exception_raised_by_emulated_code_is_a_finding(backend: str, where: str,
                                                                   index: int) -> None:
    exc = _base_exceptions()[index]
    cleaned: list[str] = []

    async def raiser() -> None:
        await vt.checkpoint("before")
        raise exc

    async def parked() -> None:
        try:
            await vt.Event("never").wait()
        finally:
            cleaned.append("parked")

    async def main() -> None:
        vt.spawn("parked", parked)
        await vt.sleep(1)  # "parked" runs and parks meanwhile
        if where == "main":
            await raiser()
        await vt.spawn("raiser", raiser).join()

    r = vt.Engine("pct", seed=3, backend=backend).run(main)
    assert r.failure is not None and r.failure.kind == "exception", r.failure
    assert r.failure.details["exception"] == type(exc).__name__
    name = type(exc).__name__  # the name alone when the message is empty, as Python's own
    assert r.failure.message == name or r.failure.message.startswith(f"{name}: "), r.failure
    assert r.failure.thread == ("main" if where == "main" else "raiser")
    assert cleaned == ["parked"]  # the others were unwound all the same


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_base_exception_in_free_mode_is_a_finding_too(backend: str) -> None:
    async def main() -> None:
        await vt.checkpoint()
        raise asyncio.CancelledError()  # not a cancellation of the host: the code's own

    r = vt.Engine("free", backend=backend).run(main)
    assert r.failure is not None and r.failure.kind == "exception"
    assert r.failure.details["exception"] == "CancelledError"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_real_cancellation_in_free_mode_is_the_hosts(backend: str) -> None:
    import anyio

    async def main() -> None:
        await vt.checkpoint()  # free mode: a real checkpoint, where the cancel lands

    async def host() -> Any:
        with anyio.CancelScope() as scope:
            scope.cancel()
            return await vt.Engine("free", backend=backend).run_async(main)
        return None

    r = anyio.run(host, backend=backend)
    assert r is None or r.failure is None or r.failure.kind != "exception"


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_exception_raised_while_a_failed_run_unwinds_leaves_the_first_failure(
        backend: str) -> None:
    async def stubborn() -> None:
        try:
            await vt.Event("never").wait()
        finally:
            raise SystemExit(3)  # during the unwinding (used to leave Engine.run: exit 3)

    async def main() -> None:
        vt.spawn("stubborn", stubborn)
        await vt.checkpoint()
        raise ValueError("first")

    r = vt.Engine("fifo", backend=backend).run(main)
    assert r.failure is not None and r.failure.message == "ValueError: first"


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_exception_raised_while_daemons_unwind_after_a_clean_end_is_a_finding(
        backend: str) -> None:
    async def daemon() -> None:
        try:
            await vt.Event("never").wait()
        finally:
            raise SystemExit(0)

    async def main() -> None:
        vt.spawn("d", daemon, daemon=True)
        await vt.sleep(1)  # the daemon runs and parks

    r = vt.Engine("fifo", backend=backend).run(main)
    assert r.failure is not None and r.failure.kind == "exception" and r.failure.thread == "d"


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_exception_whose_str_raises_is_reported_not_raised(backend: str) -> None:
    async def main() -> None:
        raise _EvilStr()

    r = vt.Engine("fifo", backend=backend).run(main)
    assert r.failure is not None and r.failure.kind == "exception"
    assert r.failure.message == "_EvilStr: <_EvilStr object: its __str__ raised RuntimeError>"


def test_the_safe_formatters_never_raise_and_drop_addresses() -> None:
    assert ll.safe_repr(_Plain()) == "<tests.engine.test_hostile_code._Plain object>"
    assert ll.safe_repr(_EvilRepr()) == "<_EvilRepr object: its __repr__ raised SystemExit>"
    assert ll.safe_repr(10**5000) == "an int of 16610 bits"
    assert ll.safe_repr("x" * 500, 10) == "'xxxxxx..."
    assert ll.safe_str(_EvilStr()) == "<_EvilStr object: its __str__ raised RuntimeError>"
    coro = _coro()
    assert " at 0x" not in ll.safe_repr(coro)
    coro.close()
    assert ll.strip_addresses("<f at 0x7F00aa> at 0xzz") == "<f> at 0xzz"
    name, message, tb = ll.describe_exception(_EvilStr())
    assert (name, message) == ("_EvilStr", "_EvilStr: <_EvilStr object: its __str__ raised "
                                           "RuntimeError>")
    assert "_EvilStr" in tb


async def _coro() -> None:
    pass


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_message_about_an_object_is_the_same_in_every_process(backend: str) -> None:
    async def main() -> None:
        raise ValueError(_Plain())  # the message holds the object's default repr

    r = vt.Engine("fifo", backend=backend).run(main)
    assert r.failure is not None
    assert r.failure.message == "ValueError: <tests.engine.test_hostile_code._Plain object>"
    assert " at 0x" not in r.failure.details["traceback"]


# ---- swallowing the engine's abort -----------------------------------------------------------


async def _swallow_wait() -> None:
    while True:
        try:
            await vt.Event("never").wait()
        except BaseException:
            pass


async def _swallow_checkpoint() -> None:
    while True:
        try:
            await vt.checkpoint("swallow")
        except BaseException:
            pass


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_thread_that_swallows_the_abort_in_a_wait_loop_does_not_hang_the_run(
        backend: str) -> None:
    async def main() -> None:
        vt.spawn("swallower", _swallow_wait)
        await vt.Event("never either").wait()

    eng = vt.Engine("fifo", backend=backend)
    r = eng.run(main)
    assert r.failure is not None and r.failure.kind == "deadlock"  # the first failure stands
    assert [t.name for t in eng.abandoned] == ["swallower"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_thread_that_swallows_the_abort_at_a_checkpoint_does_not_hang_the_run(
        backend: str) -> None:
    eng = vt.Engine("random", seed=1, backend=backend, step_budget=500)
    r = eng.run(_swallow_checkpoint)
    assert r.failure is not None and r.failure.kind == "step-budget"
    assert [t.name for t in eng.abandoned] == ["main"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_daemon_that_swallows_the_abort_after_a_clean_end_is_reported(backend: str) -> None:
    async def main() -> None:
        vt.spawn("daemon", _swallow_wait, daemon=True)
        await vt.sleep(1)

    r = vt.Engine("fifo", backend=backend).run(main)
    assert r.failure is not None and r.failure.kind == "swallowed-abort"
    assert r.failure.thread == "daemon" and f"{ABORT_LIMIT} times" in r.failure.message
    # and the same on a second run: the decision is the engine's, not the timing's
    again = vt.Engine("fifo", backend=backend).run(main)
    assert (again.failure, again.decisions) == (r.failure, r.decisions)


def test_an_abandoned_thread_prints_nothing_when_the_process_exits() -> None:
    code = (
        "import vthreads as vt\n"
        "from tests.engine.test_hostile_code import _swallow_wait\n"
        "async def main():\n"
        "    vt.spawn('daemon', _swallow_wait, daemon=True)\n"
        "    await vt.sleep(1)\n"
        "r = vt.Engine('fifo').run(main)\n"
        "print(r.failure.kind)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (p.returncode, p.stdout, p.stderr) == (0, "swallowed-abort\n", "")


# ---- code outside every emulated thread ---------------------------------------------------------


def test_a_task_of_the_event_loop_started_by_emulated_code_is_a_finding() -> None:
    ran: list[str] = []

    async def outside() -> None:
        ran.append("outside")  # would run with no emulated thread holding the baton

    async def main() -> None:
        asyncio.get_running_loop().create_task(outside())
        await vt.checkpoint()

    async def host() -> vt.RunResult:
        r = await vt.Engine("fifo").run_async(main)
        for _ in range(3):
            await asyncio.sleep(0)  # the task would have run here
        return r

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "never awaited", no "never retrieved"
        r = asyncio.run(host())
    assert r.failure is not None and r.failure.kind == "foreign-task"
    assert r.failure.thread == "main" and ran == []


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("strategy", ["pct", "free"])
@pytest.mark.parametrize("how", ["thread", "executor", "timer"])
def test_an_os_thread_started_by_emulated_code_is_refused_and_a_finding(
        backend: str, strategy: str, how: str) -> None:
    ran: list[str] = []
    raised: list[str] = []

    def beside() -> None:
        ran.append("beside")  # would run beside the emulated threads, unscheduled

    async def worker() -> None:
        await vt.checkpoint("before")
        try:
            if how == "thread":
                threading.Thread(target=beside).start()
            elif how == "executor":
                concurrent.futures.ThreadPoolExecutor(1).submit(beside)
            else:
                threading.Timer(0, beside).start()
        except RuntimeError as e:
            raised.append(str(e))
        await vt.checkpoint("after")

    async def main() -> None:
        await vt.spawn("worker", worker).join()

    before = threading.active_count()
    r = vt.Engine(strategy, seed=1, backend=backend).run(main)
    assert r.failure is not None and r.failure.kind == "foreign-thread", r.failure
    assert r.failure.thread == "worker"
    target = {"thread": f"{__name__}.test_an_os_thread_started_by_emulated_code_is_refused_"
                        "and_a_finding.<locals>.beside",
              "executor": "concurrent.futures.thread._worker",  # the pool's own loop
              "timer": "threading.Timer.run"}[how]
    assert r.failure.details["target"] == target and target in r.failure.message
    assert "use vthreads.spawn" in r.failure.message
    assert len(raised) == 1 and raised[0].startswith("foreign-thread: ")
    assert ran == [] and threading.active_count() == before  # nothing outlives the run


def test_an_os_thread_started_by_the_host_starts_as_before() -> None:
    ran: list[str] = []

    async def main() -> None:
        await vt.checkpoint()

    vt.Engine("pct", seed=1).run(main)  # the guard is in place from the first run on
    t = threading.Thread(target=ran.append, args=("host",))
    t.start()
    t.join()
    assert ran == ["host"]


def test_the_task_factory_is_the_hosts_again_after_the_run() -> None:
    async def host() -> bool:
        loop = asyncio.get_running_loop()
        await vt.Engine("fifo").run_async(vt.checkpoint)
        return loop.get_task_factory() is None

    assert asyncio.run(host())


# ---- virtual time --------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ns, error", [
    (-5, "ValueError: sleep cannot go back in time: ns must be >= 0"),
    (2**80, "ValueError: sleep of an int of 81 bits ns from t=7 ends past the largest virtual "
            "time (2**63-1 ns)"),
    (MAX_TIME, f"ValueError: sleep of {MAX_TIME} ns from t=7 ends past the largest virtual "
               "time (2**63-1 ns)"),
    (1.5, "TypeError: sleep takes an int of nanoseconds, not float"),
    (True, "TypeError: sleep takes an int of nanoseconds, not bool"),
], ids=["negative", "80-bit", "past-63-bits", "float", "bool"])
def test_a_sleep_out_of_range_is_an_exception_in_the_thread(backend: str, ns: Any,
                                                            error: str) -> None:
    async def main() -> None:
        await vt.sleep(7)
        await vt.sleep(ns)

    r = vt.Engine("fifo", backend=backend).run(main)
    assert r.failure is not None and r.failure.kind == "exception"
    assert r.failure.message == error


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_sleep_to_the_last_nanosecond_is_fine(backend: str) -> None:
    async def main() -> int:
        await vt.sleep(7)
        await vt.sleep(MAX_TIME - 7)
        return vt.now()

    assert vt.Engine("fifo", backend=backend).run(main).check().value == MAX_TIME


def test_an_abandoned_coroutine_is_never_closed_at_exit() -> None:
    # closing it at exit would throw GeneratorExit into a loop that swallows everything and
    # then only raises (no engine in its context any more): the process would spin for ever.
    # A test process hung at exit that way (pytest over tests/cli, badinput, engine and
    # runtime, three times in three); abandon() keeps such coroutines out of reach of the
    # interpreter's final collection. This small process exits on the old code too: it pins
    # the mechanism, the four-directory run is the reproduction.
    code = (
        "import vthreads as vt\n"
        "from vthreads._trampoline import abandon\n"
        "class Yield:\n"
        "    def __await__(self):\n"
        "        yield\n"
        "async def spins_when_closed():\n"
        "    try:\n"
        "        await Yield()\n"
        "    except BaseException:\n"
        "        pass\n"
        "    while True:\n"
        "        try:\n"
        "            vt.now()\n"
        "        except BaseException:\n"
        "            pass\n"
        "c = spins_when_closed()\n"
        "c.send(None)\n"
        "abandon(c)\n"
        "print('exiting')\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert (p.returncode, p.stdout, p.stderr) == (0, "exiting\n", "")
