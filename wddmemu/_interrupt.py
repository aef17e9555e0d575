"""Ctrl-C for every command that runs schedules (``run``, ``replay``, ``explore``,
``campaign``): exit 130 and keep what was found.

Under asyncio a SIGINT arriving inside ``asyncio.run`` becomes a cancellation of the running
task, which the engine absorbs as the end of one run: the exploration would simply go on with
the next schedule. trio's own handler only flags the interrupt for the next checkpoint. Both
act only at a checkpoint, and a driver stuck in a CPU loop never reaches one: ``run`` of such a
driver ignored Ctrl-C for good. While a command runs schedules, :func:`ctrl_c` installs a
handler that raises ``KeyboardInterrupt`` wherever the code is — in the spinning driver too —
so the command unwinds at once; it then reports what ran (explore and campaign: each failure
was saved the moment it was found) and exits 130. :func:`is_interrupt` recognises the
interrupt however the event loop passed it on.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any


def _raise_interrupt(signum: int, frame: Any) -> None:
    # asyncio would log the run's unwinding task at shutdown as "unhandled": it is not
    logging.getLogger("asyncio").disabled = True
    raise KeyboardInterrupt


@contextlib.contextmanager
def ctrl_c() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt wherever the run is. asyncio's runner would otherwise
    turn it into a cancellation of the run, which the engine absorbs: the exploration would go
    on. (A handler other than Python's default is left alone by asyncio.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
        logging.getLogger("asyncio").disabled = False


def is_interrupt(e: BaseException) -> bool:
    """Whether ``e`` is Ctrl-C: alone, inside an exception group (a task group unwinding), or
    as the cause of trio's ``TrioInternalError`` (the interrupt landed in trio's own scheduler
    code, which trio reports that way)."""
    if isinstance(e, KeyboardInterrupt):
        return True
    if isinstance(e, BaseExceptionGroup):
        return any(is_interrupt(x) for x in e.exceptions)
    cause = e.__cause__
    return (type(e).__name__ == "TrioInternalError" and cause is not None
            and is_interrupt(cause))


def quiet_after_interrupt() -> None:
    """The console command is about to exit 130: objects of the run Ctrl-C abandoned are
    finalised from here on without a word. An interrupt can land inside an event loop's
    constructor, and CPython then prints "Exception ignored in … Traceback" when the
    half-built loop is collected at exit: the interrupt's debris, not a finding and not our
    bug, so the promise of no traceback holds. Only the console entry point calls it, just
    before it exits."""
    sys.unraisablehook = lambda _unraisable: None
