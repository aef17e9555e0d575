"""Whose exception is it: the host's (a real Ctrl-C, a real cancellation) or emulated code's?

Every exception emulated code raises is a finding, whatever its type — ``SystemExit``,
``KeyboardInterrupt``, ``GeneratorExit``, a cancellation, a ``BaseException`` of its own. Two
kinds must still reach the host untouched, and they are told apart by where they came from,
not by their type (a driver can raise any type):

- **a real Ctrl-C**: a ``SIGINT`` delivered to the process. While a run is on the main thread,
  :func:`watch_sigint` puts a handler in front of whatever handler is installed (Python's
  default, asyncio's runner, trio's, wddmemu's): it calls that handler unchanged and remembers
  the exception it raised, or, when it raised nothing (asyncio cancels its main task, trio
  defers to a checkpoint), that an interrupt is pending. :func:`from_host` then knows a
  ``KeyboardInterrupt`` for the real one. Off the main thread no signal handler runs at all,
  so a ``KeyboardInterrupt`` there is emulated code's.
- **a real cancellation** (``free`` mode only, where threads are real tasks): the host is
  cancelling the task (asyncio ``Task.cancelling()``, trio's effective deadline is -inf).
  Under a controlled strategy emulated code never awaits the event loop, so no cancellation
  of the host can be delivered into it: there every cancellation is emulated code's.
"""

from __future__ import annotations

import _signal
import _thread
import sys
import threading
from typing import Any

_MAIN = threading.main_thread().ident

#: runs on the main thread that are watching (nested runs install the handler once)
_depth = 0
_previous: Any = None
#: the exceptions the previous handler raised for a real SIGINT during the watched runs
_raised: list[BaseException] = []
#: SIGINTs whose handler raised nothing (the KeyboardInterrupt comes later, from the loop)
_pending = 0
#: the engines whose runs are watching, outermost first
_engines: list[Any] = []


def _handler(signum: int, frame: Any) -> None:
    global _pending
    for eng in _engines:  # even if the code under test swallows the interrupt, the run stops
        eng._interrupt()
    try:
        _previous(signum, frame)
    except BaseException as e:
        _raised.append(e)
        raise
    _pending += 1


def watch_sigint(engine: Any) -> bool:
    """A run starts: remember which ``KeyboardInterrupt`` a real SIGINT raises until
    :func:`unwatch_sigint` (pass it what this returned). Nested runs install the handler once.
    Raw ``_signal`` calls: ``signal.signal``'s enum conversions cost more than a small run."""
    global _depth, _previous, _pending
    if _depth:
        _depth += 1
        _engines.append(engine)
        return True
    if _thread.get_ident() != _MAIN:
        return False
    current = _signal.getsignal(_signal.SIGINT)
    if not callable(current):  # SIG_DFL, SIG_IGN, a C handler: no Python exception comes
        return False
    _previous, _pending = current, 0
    _raised.clear()
    _engines.append(engine)
    _signal.signal(_signal.SIGINT, _handler)
    _depth = 1
    return True


def watching_sigint() -> bool:
    """Whether a run on the main thread is watching SIGINT now. A real Ctrl-C has then told
    its engine to stop before any other handler ran, and the run raises ``KeyboardInterrupt``
    once it has unwound, even where the handler's own exception was swallowed (a
    ``__del__``, a ``gc`` callback): a harness that re-sends a swallowed interrupt need not."""
    return _depth > 0


def unwatch_sigint(watched: bool) -> None:
    """The run has ended: the handler before :func:`watch_sigint` is back (outermost run)."""
    global _depth, _previous
    if not watched:
        return
    _engines.pop()
    _depth -= 1
    if _depth:
        return
    # back whatever the code under test made of it: a driver that set SIG_IGN left Ctrl-C
    # dead for every later run and the host's whole session (sweep E D5); only emulated code
    # and the engine ran since watch_sigint, so no handler of the host's is undone here
    if _signal.getsignal(_signal.SIGINT) is not _previous:
        _signal.signal(_signal.SIGINT, _previous)
    _previous = None
    _raised.clear()


def _is_cancellation(e: BaseException) -> bool:
    mod = type(e).__module__
    if mod.startswith("asyncio"):
        import asyncio

        return isinstance(e, asyncio.CancelledError)
    if mod.startswith("trio"):
        trio = sys.modules.get("trio")
        return trio is not None and isinstance(e, trio.Cancelled)
    return False


def _host_cancelling() -> bool:
    """Whether the running task is being cancelled by the host (free mode)."""
    try:
        import sniffio

        lib = sniffio.current_async_library()
    except BaseException:
        return False
    if lib == "trio":
        import trio

        return trio.current_effective_deadline() == float("-inf")
    import asyncio

    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def from_host(e: BaseException, controlled: bool) -> bool:
    """Whether ``e``, which left an emulated thread, is the host's: a real Ctrl-C, or (not
    ``controlled``) a real cancellation of the thread's task; in a group, any member."""
    if isinstance(e, BaseExceptionGroup):
        return any(from_host(x, controlled) for x in e.exceptions)
    if isinstance(e, KeyboardInterrupt):
        return _pending > 0 or any(x is e for x in _raised)
    if not controlled and _is_cancellation(e):
        return _host_cancelling()
    return False
