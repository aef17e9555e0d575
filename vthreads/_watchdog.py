"""Stopping a run from outside it: the hook a wall-clock watchdog uses (``wddmemu --timeout``).

Kept apart from the scheduling loop on purpose: it is the only code that fails a run from a
signal handler, and the only engine code that a wall clock can reach. :func:`fail_run` records
the failure exactly as the engine records its own (``run.failure`` in the trace, the run
stopped); :class:`Hang` is then raised into whatever Python code was running — a driver's CPU
loop, or the event loop idling under a raw ``anyio.sleep_forever()`` — and :func:`result_of`
gives the run's result once it has unwound.
"""

from __future__ import annotations

from typing import Any

from ._engine import Engine
from ._results import RunResult
from ._threads import _thread_var


class Hang(BaseException):
    """Raised into the running code when a watchdog stops the run. A ``BaseException`` so that
    emulated code's ``except Exception`` cannot swallow it."""


def running_thread(engine: Engine) -> str | None:
    """The name of the emulated thread whose code is running: the one whose context the caller
    (a signal handler) interrupted, else the one that holds the baton."""
    t = _thread_var.get(None) or engine._current
    return t.name if t is not None else None


def fail_run(engine: Engine, kind: str, message: str, details: dict[str, Any]) -> None:
    """Fail the run as ``kind`` on the running thread and stop it (first failure wins)."""
    engine._fail(kind, message, _thread_var.get(None) or engine._current, details)


def result_of(engine: Engine) -> RunResult:
    """The result of a run stopped by :func:`fail_run` whose ``run`` raised :class:`Hang`."""
    return engine._reports.result()
