"""Emulated threads and how emulated code finds its engine and thread.

Two context variables carry "which engine, which thread": the engine is bound in the host's
context when a run starts, and every emulated thread runs in its own copy of its spawner's
context with the thread bound in it — whether it is driven by the trampoline (controlled
strategies) or is an anyio task (``free``).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from ._errors import EngineUsageError, WouldBlock
from ._hb import vc_join

if TYPE_CHECKING:
    from ._engine import Engine

_engine_var: ContextVar[Engine] = ContextVar("wddmemu_engine")
_thread_var: ContextVar[VThread] = ContextVar("wddmemu_thread")

READY, RUNNING, BLOCKED, SLEEPING, FINISHED = "ready", "running", "blocked", "sleeping", "finished"


def current_engine() -> Engine:
    """The engine running the calling emulated thread (``EngineUsageError`` outside a run)."""
    eng = _engine_var.get(None)
    if eng is None:
        raise EngineUsageError("no engine is running: call this inside Engine.run()")
    return eng


def current_thread() -> VThread:
    """The emulated thread that is running (``EngineUsageError`` outside one): what
    ``current_engine().current_thread()`` returns, in one context-variable read."""
    # a thread's context always holds its engine too: it is a copy of a context the engine
    # was bound in, so "no thread" is checked first and "no engine" only to word the error
    t = _thread_var.get(None)
    if t is None:
        current_engine()  # no engine at all: that error first
        raise EngineUsageError("not inside an emulated thread of this engine")
    return t


#: where the rule that a primitive serves one run is written, and what every refusal of a
#: second run's use says (bind_run, same_run, VThread.join)
ONE_RUN_DOC = 'docs/engine.md, "One run, one set of primitives"'
ONE_RUN = ("a primitive serves one run, the first that uses it; make it inside the program, "
           f"once a run ({ONE_RUN_DOC})")


def bind_run(obj: Any, me: VThread, what: str) -> None:
    """``obj`` (its ``_run`` is not ``me``'s run) is used by ``me``: bind it to ``me``'s run
    if no run has used it yet, else refuse. Why refuse rather than start afresh: a primitive
    that served another run carries that run's state — a holder, parked threads, queued items,
    clocks, an access history — and a run that inherits it no longer depends on its program
    and seed alone (a false race naming a thread of the earlier run, a deadlock on a mutex its
    dead holder kept). Callers test ``obj._run is not me._run`` first, inline: this is the
    rare path."""
    if obj._run is None:
        obj._run = me._run
        return
    raise EngineUsageError(f"{what} was used by another run: {ONE_RUN}")


def same_run(thread: VThread, what: str) -> None:
    """Refuse a thread ``what`` (a primitive) remembers — its holder, a waiter — that belongs
    to another run than the calling thread's (see :func:`bind_run`)."""
    if thread._run is not current_thread()._run:
        raise EngineUsageError(f"{what} is held by {thread.name} of another run: {ONE_RUN}")


# the names the package's own modules call them by; vthreads re-exports the public ones (the
# same functions, so the public calls cost no extra frame: ~800 calls a schedule)
_engine = current_engine
_current = current_thread


class VThread:
    """An emulated thread. ``tid`` is its spawn index (0 for the first thread of the run)."""

    __slots__ = (
        "_coro",
        "_ctx",
        "_joiners",
        "_parker",
        "_run",
        "daemon",
        "name",
        "state",
        "tid",
        "vc",
        "waiting",
    )

    def __init__(self, name: str, tid: int, daemon: bool, parker: Any = None,
                 run: object = None) -> None:
        self.name = name
        self.tid = tid
        self.daemon = daemon
        self.state = READY
        self.waiting: str | None = None
        self.vc: list[int] = [0] * (tid + 1)
        self.vc[tid] = 1
        # how the thread is run: a parker (free mode, an anyio task) or a coroutine and its
        # context (controlled mode, driven by the trampoline)
        self._parker = parker
        self._coro: Any = None
        self._ctx: Any = None
        self._joiners: list[VThread] = []
        # the token of the run the thread belongs to (the engine's): what a primitive is bound
        # to (see bind_run)
        self._run = run

    def tick(self) -> None:
        """Advance this thread's own clock component (after a release-type operation)."""
        self.vc[self.tid] += 1

    async def join(self) -> None:
        """Wait until this thread has finished; its whole history happens-before what follows."""
        eng = _engine()
        me = eng.current_thread()
        if me is self:
            raise EngineUsageError(f"thread {self.name} cannot join itself")
        self._joinable(me)
        await eng.point("join", op=(self, "join"))
        while self.state != FINISHED:
            self._joiners.append(me)
            await eng._block(me, f"join {self.name}")
        vc_join(me.vc, self.vc)

    def join_nowait(self) -> None:
        """Take the join edge if this thread has finished; raise :class:`WouldBlock`
        otherwise."""
        me = _current()
        self._joinable(me)
        if self.state != FINISHED:
            raise WouldBlock(f"thread {self.name} has not finished")
        vc_join(me.vc, self.vc)

    def _joinable(self, me: VThread) -> None:
        # a thread of an earlier run: its clock would order this run's accesses after that
        # run's, and one that never finished would be waited for forever
        if self._run is not me._run:
            raise EngineUsageError(f"thread {self.name} is of another run: join only threads "
                                   f"this run spawned ({ONE_RUN_DOC})")

    def __repr__(self) -> str:
        return f"<VThread {self.name} tid={self.tid} {self.state}>"
