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

from runtime import innermost_ddi
from vthreads.lowlevel import Watchdog as EngineWatchdog
from vthreads.lowlevel import check_timeout as engine_check_timeout

from ._giving_up import current_task_resort

#: explore's default limit for one schedule (seconds); ``run`` and ``replay`` default to off
EXPLORE_TIMEOUT = 60.0
#: the watchdog (seconds) of a replay of a saved hang, for its explanation and for ``replay``
#: without ``--timeout``: the replay reaches the stuck code in the time the run took to get
#: there, far less than explore's limit
HANG_REPLAY_S = 3.0
#: the explanation of a hang replays under this limit first (seconds), and under
#: :data:`HANG_REPLAY_S` only when that replay stopped short of the stuck step: a schedule
#: reaches its stuck code in milliseconds, and each hang explained cost the whole 3 s
HANG_QUICK_S = 0.5


def stopped_short(run: Any, step: int) -> bool:
    """Whether ``run`` (a replay's ``RunResult``) is a hang its limit stopped before ``step``,
    the saved hang's: it is run again under :data:`HANG_REPLAY_S` (a replay that reached the
    step, or failed otherwise, would end the same under any limit)."""
    f = run.failure
    return f is not None and f.kind == "hang" and f.step < step


def check_timeout(seconds: float) -> float:
    """``seconds`` if it is a usable ``--timeout`` (finite, >= 0); ``ValueError`` otherwise."""
    return engine_check_timeout(seconds, "--timeout")


class Watchdog(EngineWatchdog):
    """Watches one run, and stops it when the limit passes, naming the DDI the stuck thread was
    in (``hang``'s message and its ``ddi`` detail)."""

    def __init__(self, seconds: float) -> None:
        # a remote cluster's task gives its runs a last resort of their own (_giving_up.py)
        super().__init__(check_timeout(seconds), resort=current_task_resort())
        #: thread → the DDIs it is in, innermost last (followed under ``free`` only)
        self._in: dict[str, list[str]] = {}

    def attach(self, engine: Any) -> Watchdog:
        # Under a controlled strategy the stuck code is the frame the alarm interrupts, and its
        # stack says which DDI it is in (runtime.innermost_ddi): no event is needed, where
        # following every DDI boundary cost 3 % of a schedule. Under free a thread stuck in a
        # wait the emulator does not control idles on the loop, whose frame says nothing: the
        # DDI boundaries are followed there
        if not engine.strategy.controlled:
            self.events = ("run.start", "ddi.enter", "ddi.exit")
        super().attach(engine)
        return self

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
        ddi = innermost_ddi(self.stuck_frame)
        if ddi is None:
            stack = self._in.get(thread)
            ddi = stack[-1] if stack else None
        return (f"in DDI {ddi}" if ddi is not None else "outside any DDI", {"ddi": ddi})
