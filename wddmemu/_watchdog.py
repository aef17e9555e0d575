"""The wall-clock watchdog behind ``--timeout SECONDS`` (issue 14; ``docs/explore.md``).

The engine's :class:`vthreads.lowlevel.Watchdog` stops a run that has not ended after SECONDS of
wall time as ``hang`` (a CPU-bound loop in driver code, which never reaches a scheduling point;
under the uncontrolled ``free`` strategy, a raw ``anyio.sleep_forever()``), and never changes a
decision: a run that ends in time is untouched, so every outcome under the limit is
deterministic. ``0`` turns it off. The harness's watchdog adds what the emulated stack knows:
the DDI each emulated thread is in, so that the ``hang`` names the thread that held the baton
*and* the DDI it was stuck in (``run.failure`` goes to the trace like any failure).
"""

from __future__ import annotations

from typing import Any

from vthreads.lowlevel import Watchdog as EngineWatchdog
from vthreads.lowlevel import check_timeout as engine_check_timeout

#: explore's default limit for one schedule (seconds); ``run`` and ``replay`` default to off
EXPLORE_TIMEOUT = 60.0


def check_timeout(seconds: float) -> float:
    """``seconds`` if it is a usable ``--timeout`` (finite, >= 0); ``ValueError`` otherwise."""
    return engine_check_timeout(seconds, "--timeout")


class Watchdog(EngineWatchdog):
    """Watches one run: tracks which DDI each emulated thread is in, and stops the run when
    the limit passes."""

    # only the DDI boundaries (and the start, for the loop): a catch-all would build every
    # event of every run
    events = ("run.start", "ddi.enter", "ddi.exit")

    def __init__(self, seconds: float) -> None:
        super().__init__(check_timeout(seconds))
        self._in: dict[str, list[str]] = {}

    def on_event(self, ev: dict[str, Any]) -> None:
        super().on_event(ev)
        kind = ev["event"]
        if kind == "ddi.enter":
            self._in.setdefault(ev.get("thread") or "?", []).append(str(ev.get("ddi")))
        elif kind == "ddi.exit":
            stack = self._in.get(ev.get("thread") or "?")
            if stack:
                stack.pop()

    def where(self, thread: str) -> tuple[str, dict[str, Any]]:
        stack = self._in.get(thread)
        return (f"in DDI {stack[-1]}" if stack else "outside any DDI",
                {"ddi": stack[-1] if stack else None})
