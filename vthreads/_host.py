"""Many engine runs in one event loop.

An exploration runs thousands of short schedules. Under a controlled strategy a run needs no
task group and no event-loop iteration of its own (the trampoline drives it from the calling
task), so what is left of a fresh ``anyio.run`` per schedule — building and tearing down a loop —
would be most of a small schedule's cost. :func:`run_many` opens the loop once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

import anyio
import anyio.lowlevel
import sniffio

from ._errors import LoopRunningError

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
    """``anyio.run(fn, backend=backend)``, refused first by :func:`refuse_running_loop`."""
    refuse_running_loop(what)
    return anyio.run(fn, backend=backend)


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
