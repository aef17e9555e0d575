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

A Python signal handler runs in whatever Python frame the main thread is in, and some frames
cannot pass an exception on: a ``__del__``, a weakref callback, a ``gc`` callback (dask's
``GCDiagnosis`` installs one in every process that holds a scheduler, so ``--cluster local:N``
is full of them). CPython prints "Exception ignored in …" and the interrupt is gone: a
campaign on a local cluster went on running for good after a Ctrl-C. While :func:`ctrl_c` is
in force, an interrupt of ours that is swallowed so is sent again, from a helper thread, a
moment later, until it lands where it can unwind the command. Inside a run it is not: the
engine heard of the Ctrl-C first and raises ``KeyboardInterrupt`` itself once its run has
unwound (``vthreads.lowlevel.watching_sigint``).
"""

from __future__ import annotations

import _thread
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from ._errors import EXIT_FAIL, EXIT_INTERRUPTED
from ._files import printable

#: the interrupts this module raised while :func:`ctrl_c` is in force: only these are sent
#: again when swallowed (a driver's ``__del__`` raising a KeyboardInterrupt of its own is the
#: driver's, and stays an ignored exception)
_ours: list[KeyboardInterrupt] = []
#: how long the helper thread waits before it sends a swallowed interrupt again: long enough
#: for the finaliser that swallowed it to have returned, short against a person's patience
_RESEND_AFTER_S = 0.01


#: a person's Ctrl-C this long (seconds) after the first one of ours, which has not unwound
#: the command yet, ends the process (:func:`_end_interrupted`)
FORCE_AFTER_S = 1.0
#: when the first interrupt of ``_ours`` was raised (monotonic), and how many SIGINTs the
#: helper thread has sent that the handler has not seen yet (its own, not a person's)
_first_at: list[float] = []
_resent: list[int] = [0]


def _raise_interrupt(signum: int, frame: Any) -> None:
    if _resent[0]:
        _resent[0] -= 1  # the helper's: the interrupt swallowed before, sent again
    elif _ours and time.monotonic() - _first_at[0] >= FORCE_AFTER_S:
        _end_interrupted()
    # asyncio would log the run's unwinding task at shutdown as "unhandled": it is not
    logging.getLogger("asyncio").disabled = True
    interrupt = KeyboardInterrupt()
    if not _ours:
        _first_at[:] = [time.monotonic()]
    _ours.append(interrupt)
    raise interrupt


def _end_interrupted() -> None:
    """A second Ctrl-C, :data:`FORCE_AFTER_S` after a first one that has not unwound the
    command: the code under test swallows it (an ``except BaseException`` in a CPU loop, with
    ``--timeout 0``, where no watchdog's last resort comes; sweep E D6). The process ends,
    exit 130, as Ctrl-C always does; what was saved stays."""
    _exit_now("wddmemu: interrupted again, and the first is not through yet: the code under "
              "test swallows Ctrl-C (an except BaseException in a CPU loop?): the process ends "
              "here, exit 130\n", EXIT_INTERRUPTED)


def _exit_now(text: str, code: int) -> None:
    """End the process with ``code`` after ``text`` on stderr, from whatever thread, while the
    main thread spins in code that swallows every exception: stdout is flushed, and ``text``
    goes straight to fd 2, past any lock the spinning code may hold."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    with contextlib.suppress(OSError):
        os.write(2, text.encode("utf-8", "replace"))
    os._exit(code)


def _send_again(main: int) -> None:
    time.sleep(_RESEND_AFTER_S)
    if not _ours:  # the command has unwound meanwhile (a second Ctrl-C): nothing to send
        return
    _resent[0] += 1
    if hasattr(signal, "pthread_kill"):
        # a real signal, so a main thread blocked in a wait (dask's ``wait``) wakes up for it
        signal.pthread_kill(main, signal.SIGINT)
    else:  # Windows: the handler runs at the main thread's next bytecode
        _thread.interrupt_main()


def _resend_swallowed(previous: Any, watching_sigint: Callable[[], bool]) -> Any:
    """An unraisable hook: an interrupt of ours that a finaliser swallowed is sent again;
    anything else goes to ``previous``. The hook itself starts a thread and returns: a signal
    landing inside the hook would be lost the same way."""
    main = threading.main_thread().ident

    def hook(unraisable: Any) -> None:
        exc = unraisable.exc_value
        if any(exc is mine for mine in _ours):
            # inside a run the engine was told first and raises KeyboardInterrupt itself once
            # the run has unwound: a second one would land in that unwinding
            if not watching_sigint():
                _thread.start_new_thread(_send_again, (main,))
            return
        previous(unraisable)

    return hook


def end_the_process(line: str) -> None:
    """The watchdog's last resort while a command runs schedules (``set_last_resort``): the
    run is still going ``LAST_RESORT_S`` after its limit, because the code under test
    swallows every stop — the watchdog's ``Hang`` and Ctrl-C alike, an ``except
    BaseException`` in a CPU loop — and nothing inside the process can end it (sweep E D6).
    Say so, and end the process, exit 1 (a hang is a finding), from the watchdog thread it
    runs on (:func:`_exit_now`). What was saved stays (explore saves each failure as it finds
    it; files are written atomically)."""
    _exit_now(f"wddmemu: {printable(line, 2000)}\n"
              "wddmemu: the code under test swallows every stop, Ctrl-C too (an except "
              "BaseException in a CPU loop?): the process ends here, exit 1\n", EXIT_FAIL)


@contextlib.contextmanager
def ctrl_c() -> Iterator[None]:
    """While a command runs schedules: Ctrl-C raises KeyboardInterrupt wherever the run is, and
    a run that cannot be stopped ends the process (:func:`end_the_process`)."""
    # here, not at the top: the CLI starts without the engine (row 6 of issue 13), and a
    # command that runs schedules has imported it by now
    from vthreads.lowlevel import set_last_resort, watching_sigint

    before = set_last_resort(end_the_process)
    try:
        with _interrupting(watching_sigint):
            yield
    finally:
        set_last_resort(before)


@contextlib.contextmanager
def _interrupting(watching_sigint: Callable[[], bool]) -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt wherever the run is. asyncio's runner would otherwise
    turn it into a cancellation of the run, which the engine absorbs: the exploration would go
    on. (A handler other than Python's default is left alone by asyncio.)"""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is signal.SIG_IGN):
        # SIG_IGN: started with Ctrl-C ignored (a background job of a script, nohup), as a
        # POSIX command leaves it
        yield
        return
    old = signal.signal(signal.SIGINT, _raise_interrupt)
    old_hook = sys.unraisablehook
    hook = sys.unraisablehook = _resend_swallowed(old_hook, watching_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
        if sys.unraisablehook is hook:
            sys.unraisablehook = old_hook
        _ours.clear()
        _resent[0] = 0
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
