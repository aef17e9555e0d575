"""Many engine runs in one event loop.

An exploration runs thousands of short schedules. Under a controlled strategy a run needs no
task group and no event-loop iteration of its own (the trampoline drives it from the calling
task), so what is left of a fresh ``anyio.run`` per schedule — building and tearing down a loop —
would be most of a small schedule's cost. :func:`run_many` opens the loop once.
"""

from __future__ import annotations

import _signal
import _thread
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import anyio
import anyio.lowlevel
import sniffio

from ._errors import LoopRunningError
from ._origin import _MAIN

A = TypeVar("A")
T = TypeVar("T")

#: the event loops a run can be hosted on
BACKENDS = ("asyncio", "trio")


def check_backend(backend: object) -> None:
    """Refuse a backend other than :data:`BACKENDS`' with a one-line ``ValueError``."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}: use asyncio or trio")


def run_many(
    run: Callable[[A], Awaitable[T]],
    items: Iterable[A],
    *,
    backend: str = "asyncio",
    stop: Callable[[A, T], bool] | None = None,
) -> list[T]:
    """``await run(item)`` for each of ``items`` in order, all inside one event loop of
    ``backend``, and return the results. ``run`` typically builds an :class:`~vthreads.Engine`
    and awaits its :meth:`~vthreads.Engine.run_async`. After each run ``stop(item, result)``, if
    given, sees the result as it comes (report progress there) and ends the series by returning
    true; the results so far are returned. Synchronous."""
    check_backend(backend)
    try:
        items = iter(items)
    except TypeError:  # raised inside the loop's series before, as the loop's own error
        raise TypeError(f"run_many takes an iterable of items, not {type(items).__name__}"
                        ) from None

    async def series() -> list[T]:
        out: list[T] = []
        for item in items:
            result = await run(item)
            out.append(result)
            if stop is not None and stop(item, result):
                break
            # a controlled run never yields to the loop: let the host breathe between runs
            # (a cancel scope around run_many, a signal) at one checkpoint per run
            await anyio.lowlevel.checkpoint()
        return out

    return run_sync(series, backend, "run_many()")


def run_sync(fn: Callable[[], Awaitable[T]], backend: str, what: str) -> T:
    """``anyio.run(fn, backend=backend)``, refused first by :func:`refuse_running_loop`; on
    asyncio, a Ctrl-C raises ``KeyboardInterrupt`` at once, as it does on trio
    (:func:`_prompt_sigint`)."""
    refuse_running_loop(what)
    if backend != "asyncio":
        return anyio.run(fn, backend=backend)
    with _prompt_sigint():
        return anyio.run(fn, backend=backend)


_DEFAULT = _signal.default_int_handler


def _interrupt_now(signum: int, frame: Any) -> None:
    # what default_int_handler does, under another identity: asyncio replaces only that one
    raise KeyboardInterrupt


@contextmanager
def _prompt_sigint() -> Iterator[None]:
    """Python's own Ctrl-C behaviour for the loop about to start, where asyncio's would replace
    it. asyncio's runner, finding ``default_int_handler`` installed, puts in a handler that
    only cancels the main task at the first Ctrl-C and raises at the second. A controlled run
    never yields to the loop (the trampoline drives every emulated thread from that one task),
    so the cancellation waits for the run to end, and a driver stuck in a CPU loop (which
    never reaches a scheduling point either) held a single Ctrl-C off for ever. Any other
    handler found (the application's, wddmemu's) is one asyncio leaves alone, and so do we.
    trio raises at once in code not protected from ``KeyboardInterrupt``, which emulated code
    is not. The raw ``_signal`` calls: ``signal.signal``'s enum conversions cost more than a
    small run (a plain ``Engine.run`` comes here once a run)."""
    if _thread.get_ident() != _MAIN or _signal.getsignal(_signal.SIGINT) is not _DEFAULT:
        yield
        return
    _signal.signal(_signal.SIGINT, _interrupt_now)
    try:
        yield
    finally:
        if _signal.getsignal(_signal.SIGINT) is _interrupt_now:
            _signal.signal(_signal.SIGINT, _DEFAULT)


def refuse_running_loop(what: str, instead: str | None = "Engine.run_async") -> None:
    """Raise a one-line :class:`LoopRunningError` naming ``what`` (a synchronous entry point)
    and ``instead`` (its async form, if it has one) when this thread already runs an event
    loop: anyio's own refusal is a bare RuntimeError that says neither who called nor what to
    do instead."""
    try:
        running = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return
    hint = f"await {instead}(...), or call it" if instead else "call it"
    raise LoopRunningError(
        f"{what} starts an event loop and {running} is already running in this thread: "
        f"{hint} from a worker thread (await anyio.to_thread.run_sync(...))")
