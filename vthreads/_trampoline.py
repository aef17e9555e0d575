"""The controlled strategies' runner: one host task resumes the chosen thread's coroutine.

Under a controlled strategy exactly one emulated thread runs at a time and the engine alone
decides which, so there is nothing for an event loop to schedule. The trampoline keeps every
emulated thread as a bare coroutine and, from inside one host task, resumes whichever thread the
engine made current (``coro.send(None)``, in the thread's own context). A thread gives the baton
back by awaiting :data:`TO_HOST`, which yields the private :data:`PARK` marker up to the
trampoline; the trampoline then resumes the engine's new current thread. A handoff therefore
costs a generator round trip, not an event-loop iteration, and a run needs no task group — many
runs can share one event loop (:func:`vthreads.run_many`).

A thread that awaits anything else — ``anyio.sleep(1)``, an asyncio future, a trio trap —
yields a foreign object to the trampoline instead of :data:`PARK`. Nobody would ever resume it
(the host is not waiting on that object), so the trampoline ends the run with a
``foreign-await`` failure naming the thread and what it awaited, and unwinds every thread.

A thread that starts a task of the event loop (``asyncio.get_running_loop().create_task``)
would run code outside every emulated thread, where nothing can schedule it: while the
trampoline runs on asyncio it installs a task factory that ends the run with a
``foreign-task`` failure naming the thread, and cancels the task before it ever runs.

A thread that swallows the engine's abort and goes on calling the engine is parked for good
by the engine (:func:`vthreads._engine._aborting`); the trampoline then *abandons* its
coroutine: closing it would only run the driver's loop again. It is kept alive for the rest
of the process (a coroutine finalised later would run that loop again too, or print "coroutine
ignored GeneratorExit"), its finalisation at exit silenced.
"""

from __future__ import annotations

import atexit
import contextvars
import gc
import inspect
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ._errors import _Abort
from ._threads import VThread, _thread_var

if TYPE_CHECKING:
    from ._engine import Engine


class _Park:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<vthreads park>"


PARK = _Park()


class _ToHost:
    """``await TO_HOST``: hand control back to the trampoline (the engine has already set the
    thread that runs next)."""

    __slots__ = ()

    def __await__(self) -> Any:
        yield PARK


TO_HOST = _ToHost()


async def park_forever(controlled: bool) -> None:
    """Where a thread the engine gave up on stays: a park nobody resumes (controlled), or a
    real sleep (``free``, where the backend owns the task and only cancellation ends it)."""
    if not controlled:
        import anyio

        while True:
            await anyio.sleep_forever()
    while True:
        await TO_HOST


def _abandoner() -> Callable[[Any], None]:
    """``abandon(coro)``: keep ``coro`` alive, and drop the unraisable-exception report of its
    finalisation if the process ever finalises it (at exit)."""
    kept: dict[int, Any] = {}  # held by the closure, not a module global: it outlives them

    def hook(unraisable: Any, previous: Any) -> None:
        if id(unraisable.object) in kept:
            return
        previous(unraisable)

    def keep_for_good() -> None:
        # At exit the interpreter clears every module and collects every cycle: this dict
        # would go and each coroutine in it be closed. Closing throws GeneratorExit into the
        # driver's loop, which swallows it and calls the engine again — by then with no engine
        # in its context and half-cleared modules, so every call raises at once, is swallowed,
        # and the loop spins for ever (a test process hung at exit that way). A cycle keeps the
        # dict alive once the closure is gone, and freezing moves it out of the collector's
        # reach: the coroutines are never finalised, the process simply ends.
        kept[-1] = kept
        gc.freeze()

    def abandon(coro: Any) -> None:
        if not kept:
            atexit.register(keep_for_good)
        kept[id(coro)] = coro
        current = sys.unraisablehook
        if getattr(current, "_vthreads_abandoned", False):
            return
        chained = lambda u: hook(u, current)  # noqa: E731
        chained._vthreads_abandoned = True  # type: ignore[attr-defined]
        sys.unraisablehook = chained

    return abandon


abandon = _abandoner()


def _foreign_task_factory(previous: Any) -> Callable[..., Any]:
    """A task factory that refuses tasks started from inside an emulated thread."""
    import asyncio

    def factory(loop: Any, coro: Any, **kwargs: Any) -> Any:
        task = (asyncio.Task(coro, loop=loop, **kwargs) if previous is None
                else previous(loop, coro, **kwargs))
        t = _thread_var.get(None)
        if t is not None:
            from ._threads import _engine_var

            eng = _engine_var.get(None)
            task.cancel()  # before its first step: the coroutine's body never runs
            if eng is not None:
                eng._fail(
                    "foreign-task",
                    f"thread {t.name} started a task of the event loop (create_task), which "
                    "would run outside every emulated thread, where the engine cannot "
                    "schedule it: use vthreads.spawn for a thread",
                    t,
                    {},
                )
        return task

    return factory


def foreign_await_message(thread: str) -> str:
    """The ``foreign-await`` failure's message: the same on every backend (it reaches the
    trace); what was awaited is backend-specific, so it goes to the details only."""
    return (f"thread {thread} awaited something that is not a vthreads operation (anyio, "
            "asyncio or trio directly?), which the engine cannot resume: await vthreads.sleep "
            "for time and vthreads.checkpoint to yield")


#: what the event-loop libraries raise, before anything is yielded, when called where their
#: own loop does not run: (a part of the raising file's path, the message). Under the trio
#: backend ``asyncio.sleep`` raises the first, under asyncio ``trio.sleep`` the second; where
#: the library's loop does run, the same call yields to it (a foreign await). Both are one
#: mistake, so both are ``foreign-await`` (sweep E D7: the kind, the message and the trace
#: depended on --backend). A message not listed here stays an ``exception``
_NO_LOOP = (
    ("/asyncio/", "no running event loop"),
    ("/trio/", "must be called from async context"),
    ("/sniffio/", "unknown async library, or not in async context"),
)


def foreign_loop_call(e: BaseException) -> str | None:
    """What ``e`` says, when it is an event-loop library refusing a call made outside its
    loop (``_NO_LOOP``), as ``"module.function raised RuntimeError: …"``; None otherwise."""
    if not isinstance(e, RuntimeError) or e.__traceback__ is None:
        return None
    tb = e.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code
    where = code.co_filename.replace("\\", "/")
    text = str(e.args[0]) if len(e.args) == 1 and type(e.args[0]) is str else None
    for part, message in _NO_LOOP:
        if part in where and text == message:
            module = tb.tb_frame.f_globals.get("__name__", "?")
            return f"{module}.{code.co_name} raised {type(e).__name__}: {message}"
    return None


def _describe(obj: Any) -> str:
    if obj is None:
        return "a bare asyncio yield (asyncio.sleep(0), anyio.lowlevel.checkpoint())"
    kind = obj if isinstance(obj, type) else type(obj)  # trio yields some traps as classes
    return f"{kind.__module__}.{kind.__qualname__}"


class Trampoline:
    """Drives one engine's threads as coroutines (controlled mode)."""

    __slots__ = ("_eng",)

    def __init__(self, eng: Engine) -> None:
        self._eng = eng

    async def run(self, begin: Callable[[], None]) -> None:
        """Start the first thread (``begin``) and drive the threads until the run ends."""
        loop = previous = None
        if self._eng.backend == "asyncio":
            import asyncio

            loop = asyncio.get_running_loop()
            previous = loop.get_task_factory()
            loop.set_task_factory(_foreign_task_factory(previous))
        try:
            begin()
            self._drive()
            if self._eng._observer is not None:  # before the unwinding's finally blocks run
                self._eng._observer.end_run()
        finally:
            try:
                self._unwind()
            finally:
                if loop is not None:
                    loop.set_task_factory(previous)
        # no await here, on purpose: a controlled run never yields to the event loop, so it can
        # even run inside another engine's emulated thread (run_many checkpoints between runs)

    def start(self, t: VThread, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> None:
        # the thread's context is a copy of its spawner's, as an anyio task's would be
        ctx = contextvars.copy_context()
        ctx.run(_thread_var.set, t)
        t._ctx = ctx
        t._coro = self._eng._thread_main(t, fn, args)
        self._eng._ready.append(t)

    def wake(self, t: VThread) -> None:
        """Nothing to do: the thread runs when the engine makes it current."""

    def spawned(self, t: VThread) -> None:
        """Nothing to do: a new thread is ready (:meth:`start`) and runs when chosen."""

    def ready(self, t: VThread) -> None:
        self._eng._ready.append(t)

    async def block(self, me: VThread) -> None:
        """``me`` can no longer run: hand the baton to the next thread and yield to the host."""
        eng = self._eng
        eng._handoff(eng._pick(None))
        await TO_HOST

    def finished(self) -> None:
        """The current thread has finished (others are alive): hand the baton on."""
        eng = self._eng
        try:
            nxt = eng._pick(None)
        except _Abort:
            return  # the pick ended the run (a deadlock)
        eng._handoff(nxt)

    def stop(self) -> None:
        """Nothing to do: :meth:`_drive` sees the engine's ``_aborted`` flag."""

    def _drive(self) -> None:
        eng = self._eng
        while not eng._aborted:
            t = eng._current
            coro = t._coro if t is not None else None
            if coro is None:
                raise RuntimeError(f"vthreads bug: no runnable coroutine for {t!r}")
            try:
                got = t._ctx.run(coro.send, None)
            except StopIteration:
                t._coro = None  # finished: _thread_main handed the baton on or ended the run
                continue
            if got is not PARK:
                eng._fail("foreign-await", foreign_await_message(t.name), t,
                          {"awaited": _describe(got)})

    def _unwind(self) -> None:
        """End every thread that has not finished, in spawn order (also when a BaseException
        such as a real Ctrl-C leaves a thread): one never started is closed without running;
        one parked gets :class:`_Abort` at its park (its ``finally`` blocks run, as they would
        under cancellation). What the host raised out of one (a Ctrl-C landing there) is
        raised once every thread is unwound, so no coroutine is left for the collector."""
        pending: BaseException | None = None
        for t in self._eng._threads:
            try:
                self._end(t)
            except BaseException as e:  # only the host's gets out of _thread_main
                pending = pending or e
        if pending is not None:
            raise pending

    def _end(self, t: VThread) -> None:
        abandoned = self._eng.abandoned
        coro, t._coro = t._coro, None
        state = None if coro is None else inspect.getcoroutinestate(coro)
        if state is None or state == inspect.CORO_CLOSED:  # finished, or raised out
            return
        if state == inspect.CORO_CREATED:
            coro.close()
            return
        if t not in abandoned:
            try:
                t._ctx.run(coro.throw, _Abort())
            except (StopIteration, _Abort):
                return
        if t in abandoned:  # it swallowed the abort: resuming it would only loop again
            abandon(coro)
            return
        # it awaited again while unwinding: GeneratorExit ends it for good (the engine's own,
        # not a finding: _thread_main lets it through)
        self._eng._closing = t
        try:
            t._ctx.run(coro.close)
        except RuntimeError:  # it awaited once more
            if t in abandoned:
                abandon(coro)
        finally:
            self._eng._closing = None
