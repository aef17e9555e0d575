"""Tests written for the mutants of the engine's event side (vthreads/_events.py) and of the
trampoline (vthreads/_trampoline.py) that bench/mutants.py found alive (issue 16): each fails
on its mutant. They go through the public surface (Engine, subscribe, wants, a trace file, the
RunResult) and assert what a user sees. Equivalent mutants are listed, with the reason, in
bench/mutants_equivalent.toml."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

import vthreads as vt

BACKENDS = ["asyncio", "trio"]


async def _chooser() -> None:
    """Two threads and a few real choices (sched events), a block on join, a sleep (a clock
    jump, a block and an unblock)."""
    async def child() -> None:
        await vt.checkpoint()
        await vt.sleep(30)
        await vt.checkpoint()

    t = vt.spawn("child", child)
    await vt.checkpoint()
    await vt.checkpoint()
    await t.join()


async def _late_choices() -> None:
    """Two threads that wake together at t=10 and then choose between each other."""
    async def worker() -> None:
        await vt.sleep(10)
        for _ in range(3):
            await vt.checkpoint()

    t = vt.spawn("worker", worker)
    await worker()
    await t.join()


def _lines(buf: io.BytesIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def _strip(ev: dict[str, Any]) -> tuple[Any, ...]:
    return (ev["step"], ev["t"], ev["thread"], ev["event"], ev.get("next"), ev.get("runnable"))


# ---- which events are built: _settle_wanted ----------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_subscriber_of_unblock_alone_gets_every_unblock(backend: str) -> None:
    # block and unblock share one guard: naming either builds both
    got: list[dict[str, Any]] = []
    eng = vt.Engine(backend=backend)
    eng.subscribe(got.append, events=["unblock"])
    r = eng.run(_chooser)
    assert r.ok, r.failure
    assert [(e["event"], e["thread"], e["waited"], e["t"]) for e in got] == [
        ("unblock", "child", "sleep until t=30", 30), ("unblock", "main", "join child", 30)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_subscriber_of_clock_alone_gets_every_clock_jump(backend: str) -> None:
    got: list[dict[str, Any]] = []
    eng = vt.Engine(backend=backend)
    eng.subscribe(got.append, events=["clock"])
    r = eng.run(_chooser)
    assert r.ok, r.failure
    assert [(e["event"], e["to"], e["t"]) for e in got] == [("clock", 30, 30)]


def test_two_subscribers_of_different_events_each_get_theirs() -> None:
    customs: list[dict[str, Any]] = []
    others: list[dict[str, Any]] = []
    eng = vt.Engine()
    eng.subscribe(customs.append, events=["custom"])
    eng.subscribe(others.append, events=["other"])

    async def main() -> None:
        vt.log("custom", a=1)
        vt.log("other", b=2)
        assert vt.current_engine().wants("custom") and vt.current_engine().wants("other")

    r = eng.run(main)
    assert r.ok, r.failure
    assert [(e["event"], e["a"]) for e in customs] == [("custom", 1)]
    assert [(e["event"], e["b"]) for e in others] == [("other", 2)]


def test_a_fresh_engine_wants_no_event_and_builds_none_before_its_run() -> None:
    eng = vt.Engine()
    assert eng.wants("sched") is False
    assert eng.wants("custom") is False
    assert eng.tracing is False


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("events", [["sched"], None], ids=["named", "catch-all"])
def test_with_a_trace_file_a_sched_subscriber_still_gets_every_sched_event(
        backend: str, events: list[str] | None) -> None:
    # sched lines go straight to the file only when no subscriber takes them; a subscriber that
    # names sched, or takes everything, gets each one, and the file has the same lines
    buf = io.BytesIO()
    got: list[dict[str, Any]] = []
    eng = vt.Engine("random", seed=2, backend=backend, trace=buf)
    eng.subscribe(got.append, events=events)
    r = eng.run(_chooser)
    assert r.ok, r.failure
    scheds = [_strip(e) for e in got if e["event"] == "sched"]
    assert len(scheds) == len(r.decisions) > 0
    assert scheds == [_strip(e) for e in _lines(buf) if e["event"] == "sched"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_raw_sched_lines_of_a_trace_file_are_the_events_a_subscriber_sees(
        backend: str) -> None:
    # a file and no sched subscriber: the raw path writes the lines; the same run with a
    # subscriber (the dict path) sees the same step, time, threads and choice sizes
    buf = io.BytesIO()
    vt.Engine("random", seed=5, backend=backend, trace=buf).run(_late_choices).check()
    got: list[dict[str, Any]] = []
    eng = vt.Engine("random", seed=5, backend=backend)
    eng.subscribe(got.append, events=["sched"])
    eng.run(_late_choices).check()
    raw = [_strip(e) for e in _lines(buf) if e["event"] == "sched"]
    assert raw == [_strip(e) for e in got]
    assert any(s[1] > 0 for s in raw)  # a choice after the clock moved: t is written
    assert {s[2] for s in raw} == {"main", "worker"}


# ---- the trampoline: a foreign await, and unwinding -----------------------------------------

_FOREIGN_MESSAGE = (
    "thread {} awaited something that is not a vthreads operation (anyio, asyncio or trio "
    "directly?), which the engine cannot resume: await vthreads.sleep for time and "
    "vthreads.checkpoint to yield")


@pytest.mark.parametrize(("backend", "seconds", "awaited"), [
    ("asyncio", 0, "a bare asyncio yield (asyncio.sleep(0), anyio.lowlevel.checkpoint())"),
    ("asyncio", 1, "_asyncio.Future"),
    ("trio", 0, "trio._core._traps.CancelShieldedCheckpoint"),  # trio yields this one as a class
    ("trio", 1, "trio._core._traps.WaitTaskRescheduled"),
])
def test_a_foreign_await_names_the_thread_and_what_it_awaited(
        backend: str, seconds: int, awaited: str) -> None:
    import anyio

    async def main() -> None:
        async def stray() -> None:
            await vt.checkpoint()
            await anyio.sleep(seconds)

        await vt.spawn("stray", stray).join()

    r = vt.Engine(backend=backend).run(main)
    f = r.failure
    assert f is not None and f.kind == "foreign-await"
    assert f.thread == "stray"
    assert f.message == _FOREIGN_MESSAGE.format("stray")  # the same on every backend
    assert dict(f.details) == {"awaited": awaited}


class _Ranked(vt.Strategy):
    """Runs the runnable thread whose name comes first in ``order`` (a fixed preference)."""

    name = "ranked"

    def __init__(self, order: list[str]) -> None:
        self.order = order

    def choose(self, runnable: Any, step: int, *, current: Any) -> Any:
        return min(runnable, key=lambda t: self.order.index(t.name))


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_unfinished_thread_is_unwound_in_its_own_context_in_spawn_order(
        backend: str) -> None:
    # threads in spawn order: main, parked "p", never-started "c", parked "q". At the end of the
    # run p and q get the unwinding at their park, as themselves (their own context): an
    # `except Exception` does not swallow it, their finally blocks run and see their thread;
    # c is closed without running
    seen: list[tuple[str, str]] = []

    async def parked(name: str) -> None:
        try:
            await vt.Event("never").wait()
        except Exception:  # the unwinding is not an Exception a thread can swallow
            seen.append((name, "caught"))
        finally:
            seen.append((name, vt.current_thread().name))

    async def never_run() -> None:
        seen.append(("c", "ran"))

    async def main() -> None:
        vt.spawn("p", parked, "p", daemon=True)
        vt.spawn("c", never_run, daemon=True)
        vt.spawn("q", parked, "q", daemon=True)
        await vt.checkpoint()  # p and q run and park; c, last in the preference, never does
        await vt.checkpoint()

    r = vt.Engine(_Ranked(["p", "q", "main", "c"]), backend=backend).run(main)
    assert r.ok, r.failure
    assert seen == [("p", "p"), ("q", "q")]
    assert dict(r.threads) == {"main": "finished", "p": "blocked", "c": "ready",
                               "q": "blocked"}


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_thread_that_awaits_again_while_unwinding_is_closed_and_the_run_still_returns(
        backend: str) -> None:
    import anyio

    cleaned: list[str] = []

    async def stubborn() -> None:
        try:
            await vt.Event("never").wait()
        finally:
            cleaned.append("stubborn")
            await anyio.sleep(0)  # a foreign await inside the unwinding: closed there
            cleaned.append("never reached")

    async def after() -> None:
        try:
            await vt.Event("never").wait()
        finally:
            cleaned.append("after")

    async def main() -> None:
        vt.spawn("stubborn", stubborn, daemon=True)
        vt.spawn("after", after, daemon=True)
        await vt.checkpoint()
        await vt.checkpoint()

    r = vt.Engine(_Ranked(["stubborn", "after", "main"]), backend=backend).run(main)
    assert r.ok, r.failure
    assert cleaned == ["stubborn", "after"]


def test_the_park_marker_says_what_it_is() -> None:
    # the object a thread yields to the trampoline to give the baton back: if it ever shows up
    # in a debugger or a stray await's report, its repr names it (no public name reaches it)
    from vthreads._trampoline import PARK

    assert repr(PARK) == "<vthreads park>"
