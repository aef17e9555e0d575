"""Exploring your own program on the engine: :func:`check_program`.

The harness's scenarios run the whole emulated stack; ``check_program`` runs any async function
on the deterministic engine instead (your own threads, mutexes, shared cells, or a rig that
builds a kernel and a driver itself) under many schedules, and reports the first that breaks a
rule, races, deadlocks or raises. The pytest fixture's ``wddmemu.check_program`` wraps it and
fails the test.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from vthreads import SYSTEMATIC, Engine, RunResult, program_runner
from vthreads.lowlevel import Watchdog, check_timeout, refuse_running_loop

from ._errors import SpecError, check_backend, check_int, check_seed_span
from ._explore import OPTION_RANGES
from ._watchdog import EXPLORE_TIMEOUT


@dataclass(frozen=True)
class ProgramResult:
    """What :func:`check_program` saw: ``runs`` schedules; the first failing one (``index``,
    ``seed``, its :class:`vthreads.RunResult`) or None. ``replay`` is the line that reruns it."""

    runs: int
    strategy: str
    index: int | None = None
    seed: int | None = None
    run: RunResult | None = None
    #: pct: ``k``, the steps of a fifo probe run of the program (PCT's change points are drawn
    #: from 1..k; a fixed guess would waste most of them, issue 12)
    pct_steps: int | None = None
    #: dfs / dpor: what the search proved (``SystematicResult.claim()``)
    claim: str | None = None

    @property
    def ok(self) -> bool:
        return self.run is None

    @property
    def replay(self) -> str:
        if self.run is None:
            return ""
        return f"Engine('replay', decisions={list(self.run.decisions)}).run(program)"

    def describe(self) -> str:
        """One paragraph for a test failure: the schedule, what broke, the replay line."""
        if self.run is None:
            return self.claim or f"{self.runs} schedules ({self.strategy}) ran clean"
        what = self.run.failure or self.run.violations[0]
        return (f"schedule {self.index} ({self.strategy}, seed {self.seed}) failed: {what}\n"
                f"replay: {self.replay}")


def check_program(program: Callable[[], Awaitable[Any]], *, schedules: int = 200,
                  strategy: str = "random", seed: int = 0, depth: int = 3,
                  backend: str = "asyncio", timeout: float = EXPLORE_TIMEOUT) -> ProgramResult:
    """Run ``program`` (called afresh for every schedule) under ``schedules`` schedules of
    ``strategy`` (schedule *i* uses seed ``seed + i``) and stop at the first that breaks a rule,
    races (RACE), deadlocks or raises (``strategy``: random, pct, pos, fifo, free, dfs, dpor).
    ``pct`` measures its ``k`` with a fifo probe run first; ``dfs`` and ``dpor`` search
    systematically, ``schedules`` executions at most, and say in ``claim`` whether they
    exhausted the program. ``timeout`` (seconds per schedule, as explore's ``--timeout``; 0:
    off) stops a schedule that has not ended in that much wall time — a CPU-bound loop never
    reaches a scheduling point — as a ``hang`` failure; it decides nothing else, so a schedule
    that ends in time runs exactly as without it. Bad arguments raise :class:`SpecError`;
    inside a running event loop it raises ``LoopRunningError`` (it is synchronous)."""
    refuse_running_loop("wddmemu.check_program()", "wddmemu.check_program_async")
    _check_arguments(program, schedules, strategy, seed, depth, backend, timeout)
    if strategy in SYSTEMATIC:
        return _systematic(program, strategy, schedules, backend, timeout)
    k = None
    if strategy == "pct":
        k = max(10, _watched(Engine("fifo", backend=backend), program, timeout).statistics.steps)
    for i in range(schedules):
        try:
            eng = Engine(strategy, seed=seed + i, depth=depth, backend=backend,
                         stop_on_violation=True, pct_steps=k or 1000)
        except ValueError as e:
            raise SpecError(str(e)) from None
        r = _watched(eng, program, timeout)
        if not r.ok:
            return ProgramResult(i + 1, strategy, i, seed + i, r, pct_steps=k)
    return ProgramResult(schedules, strategy, pct_steps=k)


#: what ``check_program``'s ``strategy`` takes: the samplers, fifo (one schedule's worth of
#: the deterministic order), free (the host loop's own order) and the systematic searches
PROGRAM_STRATEGIES = ("random", "pct", "pos", "fifo", "free", "dfs", "dpor")


def _check_arguments(program: Any, schedules: Any, strategy: Any, seed: Any, depth: Any,
                     backend: Any, timeout: Any) -> None:
    """Refuse what ``check_program`` cannot run with a one-line :class:`SpecError`, the
    ranges being explore's (``ExploreOptions``): never a TypeError from inside a run."""
    if not callable(program):
        raise SpecError(f"check_program takes an async function (async def main(): ...), not "
                        f"{type(program).__name__}")
    for name, value in (("schedules", schedules), ("depth", depth), ("seed", seed)):
        check_int(name, value, *OPTION_RANGES[name])
    check_seed_span(seed, schedules)
    if not isinstance(strategy, str) or strategy not in PROGRAM_STRATEGIES:
        raise SpecError(f"unknown strategy {strategy!r}: use {', '.join(PROGRAM_STRATEGIES)}")
    check_backend(backend)
    try:
        check_timeout(timeout)
    except ValueError as e:
        raise SpecError(str(e)) from None


def _watched(eng: Engine, program: Callable[[], Awaitable[Any]], timeout: float) -> RunResult:
    """``eng.run(program)`` under a wall-clock watchdog of ``timeout`` seconds (0: none)."""
    if not timeout:
        return eng.run(program)
    return Watchdog(timeout).attach(eng).run(eng, program)


def _systematic(program: Callable[[], Awaitable[Any]], strategy: str, schedules: int,
                backend: str, timeout: float) -> ProgramResult:
    run_one = program_runner(program, backend=backend, timeout=timeout)
    res = SYSTEMATIC[strategy](run_one, max_executions=schedules, preemption_bound=None,
                               stop_on_failure=True, failing=lambda r: not r.ok)
    if res.failure is not None:
        index = (res.failing_execution or 1) - 1
        return ProgramResult(res.executions, strategy, index, None, res.failure,
                             claim=res.claim())
    return ProgramResult(res.executions, strategy, claim=res.claim())
