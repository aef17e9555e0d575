"""Low-level building blocks for people who write their own synchronisation primitives.

vthreads' own :class:`~vthreads.Mutex`, :class:`~vthreads.Event`, :class:`~vthreads.Queue`,
:class:`~vthreads.Condition` and :class:`~vthreads.SharedCell` are built on exactly these names
and nothing private, so a primitive written on them gets the same deadlock reports, the same
happens-before ordering and the same deterministic replay. See ``docs/engine.md`` ("Writing a
primitive") for a semaphore in twenty lines.

* :class:`WaitQueue` — ``await q.park(what)``, ``q.unpark_one()``, ``q.unpark_all()`` (FIFO).
* :func:`arm_timer` → :class:`Timer` — a cancellable virtual-time wake-up (timeouts).
* :class:`HBClock`, :func:`release`, :func:`acquire` — happens-before edges.
* :class:`RaceDetector`, :func:`record_access` — race-check accesses to your own shared state.
* :func:`same_run` — refuse a thread your primitive remembers (a holder) that an earlier run
  left in it. Every block above is bound to the first run that uses it and refuses a second
  (docs/engine.md, "One run, one set of primitives").
* :func:`current_engine`, :func:`current_thread`, :func:`checkpoint`, :func:`emit`,
  :func:`tracing` — the running engine, a scheduling point, trace events.
* :class:`Watchdog`, :func:`check_timeout`, :func:`fail_run`, :class:`Hang`,
  :func:`running_thread`, :func:`result_of` — stopping a run from outside it (the wall-clock
  watchdog behind ``timeout=``; ``vthreads/_watchdog.py``); :func:`set_last_resort`,
  :func:`last_resort` — what an application does with a run nothing can stop.
* :func:`watching_sigint` — whether a run is watching Ctrl-C now (it then stops itself and
  raises ``KeyboardInterrupt``; ``vthreads/_origin.py``).
* :func:`safe_repr`, :func:`safe_str`, :func:`describe_exception`, :func:`strip_addresses` —
  format what emulated code raised or returned: never raising, no ``at 0x…`` addresses.
"""

from __future__ import annotations

from ._api import (
    checkpoint,
    current_engine,
    current_thread,
    touch,
    tracing,
)
from ._api import log as emit
from ._engine import Engine
from ._hb import RaceDetector
from ._host import check_backend, refuse_running_loop
from ._lowlevel import (
    HBClock,
    WaitQueue,
    WaitQueueStatistics,
    acquire,
    arm_timer,
    release,
)
from ._origin import watching_sigint
from ._safe import describe_exception, safe_repr, safe_str, strip_addresses, type_name
from ._tasks import parker_for
from ._threads import VThread, _engine_var, same_run
from ._timers import Timer
from ._watchdog import (
    Hang,
    Watchdog,
    check_timeout,
    fail_run,
    last_resort,
    result_of,
    running_thread,
    set_last_resort,
)


def parker_class(backend: str) -> type:
    """The parker the engine wakes and parks a ``free``-mode thread with on ``backend``
    (``"asyncio"`` or ``"trio"``): ``wake()`` / ``await park()``, a wake may come before the
    park. Exposed so a benchmark can time the bare handoff on that primitive; controlled
    strategies hand over through the trampoline instead (see docs/engine.md)."""
    check_backend(backend)
    return parker_for(backend)


def record_access(detector: RaceDetector, site: str, *, write: bool) -> None:
    """Race-check one access by the calling thread to the state ``detector`` guards (not a
    scheduling point: put :func:`checkpoint` before it, as :class:`~vthreads.SharedCell` does).
    A conflicting access that happens-before does not order is a ``RACE`` violation."""
    if not isinstance(detector, RaceDetector):  # an AttributeError '_run' from inside before
        raise TypeError(f"record_access takes a RaceDetector, not {type(detector).__name__}")
    (_engine_var.get(None) or current_engine()).access(detector, site, write)


__all__ = [
    "Engine",
    "HBClock",
    "Hang",
    "RaceDetector",
    "Timer",
    "VThread",
    "WaitQueue",
    "WaitQueueStatistics",
    "Watchdog",
    "acquire",
    "arm_timer",
    "check_timeout",
    "checkpoint",
    "current_engine",
    "current_thread",
    "describe_exception",
    "emit",
    "fail_run",
    "last_resort",
    "parker_class",
    "record_access",
    "refuse_running_loop",
    "release",
    "result_of",
    "running_thread",
    "safe_repr",
    "safe_str",
    "same_run",
    "set_last_resort",
    "strip_addresses",
    "touch",
    "tracing",
    "type_name",
    "watching_sigint",
]
