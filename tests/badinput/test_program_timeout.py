"""h10 F14: ``check_program`` and ``vthreads.explore_dpor`` / ``explore_dfs`` take ``timeout=``,
the wall-clock watchdog ``run_scenario`` and explore have (``vthreads.lowlevel.Watchdog``): a
program stuck in a CPU-bound loop is a ``hang`` failure instead of a caller hung for ever, and
a program that ends in time runs exactly as without the watchdog."""

from __future__ import annotations

import gc
import signal
import time
import warnings
from collections.abc import Callable
from typing import Any

import pytest

import vthreads as vt
import wddmemu

#: far more than any test waits: only the watchdog ends the spin in time
SPIN = 10**10


async def _spin() -> None:
    total = 0
    for i in range(SPIN):  # bounded, but a CPU-bound loop: no scheduling point is reached
        total += i


async def spins_in_a_worker() -> None:
    cell = vt.SharedCell("c", 0)
    lock = vt.Mutex("m")
    async with lock:
        await cell.write(1, "main")
    t = vt.spawn("worker", _spin)
    await t.join()


async def ends_with_a_race() -> None:
    cell = vt.SharedCell("c", 0)

    async def bump() -> None:
        await cell.write(await cell.read("bump") + 1, "bump")

    for t in [vt.spawn("a", bump), vt.spawn("b", bump)]:
        await t.join()


def _timed(call: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.monotonic()
    out = call()
    return out, time.monotonic() - t0


def _assert_hang(run: vt.RunResult | None, limit: float) -> None:
    assert run is not None and run.failure is not None and run.failure.kind == "hang", run
    assert run.failure.thread == "worker"
    assert (f"did not end within {limit:g} s of wall time: thread worker was running"
            in run.failure.message)


@pytest.mark.parametrize("strategy", ["random", "pct", "dpor", "dfs"])
def test_check_program_stops_a_spinning_program_as_a_hang(strategy: str) -> None:
    res, took = _timed(lambda: wddmemu.check_program(spins_in_a_worker, schedules=5,
                                                     strategy=strategy, timeout=0.2))
    assert not res.ok and res.runs == 1 and res.index == 0
    _assert_hang(res.run, 0.2)
    assert took < 2.0  # pct's probe run is watched too


@pytest.mark.parametrize("search", [vt.explore_dpor, vt.explore_dfs])
def test_the_systematic_searches_stop_a_spinning_execution_as_a_hang(search: Any) -> None:
    res, took = _timed(lambda: search(spins_in_a_worker, timeout=0.2))
    assert not res.ok and res.executions == 1 and took < 2.0
    _assert_hang(res.failure, 0.2)
    assert res.claim().startswith("stopped at the first failure, execution 1 of 1: hang")


def test_the_watchdog_works_on_trio_too() -> None:
    res, took = _timed(lambda: wddmemu.check_program(spins_in_a_worker, schedules=2,
                                                     backend="trio", timeout=0.2))
    _assert_hang(res.run, 0.2)
    assert took < 2.0


@pytest.mark.parametrize("search", [vt.explore_dpor, vt.explore_dfs])
def test_a_program_that_ends_in_time_is_searched_exactly_as_without_a_watchdog(
        search: Any) -> None:
    plain = search(ends_with_a_race, stop_on_failure=False)
    watched = search(ends_with_a_race, stop_on_failure=False, timeout=30)
    assert (watched.executions, watched.classes, watched.failing_executions) == (
        plain.executions, plain.classes, plain.failing_executions)
    assert [r.decisions for r in watched.failures] == [r.decisions for r in plain.failures]
    assert plain.failures  # the race is found, so the decisions compared are not empty


def test_check_program_with_a_watchdog_finds_the_same_schedule() -> None:
    plain = wddmemu.check_program(ends_with_a_race, schedules=50, timeout=0)
    watched = wddmemu.check_program(ends_with_a_race, schedules=50, timeout=30)
    assert not plain.ok and (watched.index, watched.seed) == (plain.index, plain.seed)
    assert watched.run.decisions == plain.run.decisions


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), "5", None, True])
def test_a_nonsense_timeout_is_refused_in_one_line(bad: Any) -> None:
    with pytest.raises(wddmemu.SpecError, match=r"^timeout takes seconds >= 0 \(0: off"):
        wddmemu.check_program(ends_with_a_race, timeout=bad)
    with pytest.raises(ValueError, match=r"^timeout takes seconds >= 0 \(0: off"):
        vt.explore_dpor(ends_with_a_race, timeout=bad)


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs POSIX signal.setitimer")
@pytest.mark.parametrize("program", ["spins", "ends"])
def test_the_callers_own_alarm_and_its_handler_are_left_alone(program: str) -> None:
    # the caller's real-time alarm is armed across the search: the watchdog takes the timer
    # thread instead of SIGALRM, so the alarm still counts down and its handler stays (ours)
    fired: list[int] = []

    def mine(signum: int, frame: Any) -> None:
        fired.append(signum)

    old = signal.signal(signal.SIGALRM, mine)
    signal.setitimer(signal.ITIMER_REAL, 60.0)
    try:
        if program == "spins":
            res, _ = _timed(lambda: vt.explore_dfs(spins_in_a_worker, timeout=0.2))
            _assert_hang(res.failure, 0.2)
        else:
            res = vt.explore_dfs(ends_with_a_race, stop_on_failure=False, timeout=30)
            assert res.exhausted
        left, interval = signal.getitimer(signal.ITIMER_REAL)
        assert signal.getsignal(signal.SIGALRM) is mine
        assert 50.0 < left <= 60.0 and interval == 0.0 and not fired
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


class _Held:
    """An async context manager of plain Python: no scheduling point, like _state._Held."""

    async def __aenter__(self) -> _Held:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


async def _spins_in_async_with() -> None:
    held = _Held()
    for _ in range(SPIN):  # CPU-bound: each turn makes two coroutines and awaits them
        async with held:
            pass


def test_a_hang_raised_into_an_async_with_leaves_no_coroutine_never_awaited() -> None:
    """CPython runs a signal handler right after a call returns: an alarm that came after
    ``held.__aexit__()`` made its coroutine and before the ``await`` dropped the coroutine,
    and ``RuntimeWarning: coroutine '_Held.__aexit__' was never awaited`` came out of a run
    stopped as ``hang`` (CI55, tests/explore/test_async_run.py). Most of this loop's time is
    spent at such points, so without the watchdog's check (``_between_call_and_await``) most
    of these runs warn."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(6):
            res = wddmemu.check_program(_spins_in_async_with, schedules=1, timeout=0.05)
            assert res.run is not None and res.run.failure is not None
            assert res.run.failure.kind == "hang"
        gc.collect()
    assert [str(w.message) for w in caught if "never awaited" in str(w.message)] == []
