"""The ``free`` strategy's runner: every emulated thread is an anyio task.

Under ``free`` the backend's scheduler interleaves the threads, so they must be real tasks; a
thread parks only while it is blocked (on a mutex, a queue, a timer…) and is woken through its
*parker* when it becomes ready. Controlled strategies do not come here: the trampoline
(:mod:`vthreads._trampoline`) drives their threads' coroutines directly.

Parkers are the one place that touches a backend's low-level task API. Why not anyio.Event: an
anyio.Event builds a backend event object per wait; a bare asyncio future or trio's
wait_task_rescheduled/reschedule pair does the same job with less machinery, and lets a wake
arrive *before* the thread parks (a freshly spawned thread may be woken before its task has
started).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio

from ._errors import _Abort
from ._threads import RUNNING, VThread, _thread_var

if TYPE_CHECKING:
    from ._engine import Engine


class _AsyncioParker:
    __slots__ = ("_fut", "_loop")

    def __init__(self) -> None:
        import asyncio

        self._loop = asyncio.get_running_loop()
        self._fut = self._loop.create_future()

    def wake(self) -> None:
        if not self._fut.done():
            self._fut.set_result(None)

    async def park(self) -> None:
        fut = self._fut
        try:
            await fut
        finally:
            self._fut = self._loop.create_future()


class _TrioParker:
    __slots__ = ("_pending", "_task")

    def __init__(self) -> None:
        self._task: Any = None
        self._pending = False

    def wake(self) -> None:
        import trio

        task, self._task = self._task, None
        if task is not None:
            trio.lowlevel.reschedule(task)
        else:
            self._pending = True

    async def park(self) -> None:
        import trio

        if self._pending:
            self._pending = False
            return
        self._task = trio.lowlevel.current_task()

        def abort(_: Any) -> Any:
            self._task = None
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)


def parker_for(backend: str) -> type:
    return _TrioParker if backend == "trio" else _AsyncioParker


class TaskRunner:
    """Runs one engine's threads as anyio tasks of one task group (``free`` mode)."""

    __slots__ = ("_eng", "_parker_cls", "_tg")

    def __init__(self, eng: Engine, backend: str) -> None:
        self._eng = eng
        self._parker_cls = parker_for(backend)
        self._tg: Any = None

    async def run(self, begin: Callable[[], None]) -> None:
        """Start the first thread (``begin``) and return when every thread has ended."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            begin()

    def start(self, t: VThread, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> None:
        t._parker = self._parker_cls()
        self._tg.start_soon(self._task, t, fn, args, name=f"wddmemu:{t.name}")

    async def _task(self, t: VThread, fn: Callable[..., Awaitable[Any]], args: Any) -> None:
        _thread_var.set(t)
        await t._parker.park()  # until the engine lets it run
        if self._eng._aborted:
            return
        await self._eng._thread_main(t, fn, args)

    def wake(self, t: VThread) -> None:
        t._parker.wake()

    def ready(self, t: VThread) -> None:
        """``t`` may run again: under ``free`` that means its task is woken now."""
        t.state = RUNNING
        t.waiting = None
        self._eng._active += 1
        t._parker.wake()

    spawned = ready  # a new thread's task starts at once

    async def block(self, me: VThread) -> None:
        eng = self._eng
        eng._active -= 1
        if eng._active == 0:
            eng._idle()
        await me._parker.park()

    def finished(self) -> None:
        eng = self._eng
        eng._active -= 1
        if eng._active == 0:
            try:
                eng._idle()
            except _Abort:
                return

    def stop(self) -> None:
        """The run is over: the threads still parked are cancelled (nothing hangs)."""
        self._tg.cancel_scope.cancel()
