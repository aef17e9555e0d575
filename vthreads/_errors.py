"""Exceptions of the engine's public surface."""

from __future__ import annotations


class WouldBlock(Exception):
    """A ``*_nowait`` operation could not complete without blocking."""


class LoopRunningError(RuntimeError):
    """A synchronous entry point (``Engine.run``, ``run_many`` and what is built on them) was
    called from inside a running event loop, which cannot start another in the same thread."""


class EngineUsageError(RuntimeError):
    """Emulated code used the engine wrongly (outside a run, releasing a mutex it does not hold…).

    Raised into the emulated thread, where it ends the run as an ``exception`` failure."""


class Divergence(Exception):
    """A replayed run asked for a decision the recording cannot give.

    ``kind`` says why (:class:`vthreads.Replay` sets it): ``"ran-out"`` (the program asked for
    more decisions than the recording has), ``"not-runnable"`` (the decision names a thread
    that exists but cannot run there), ``"unknown-thread"`` (it names a thread id the run has
    not started by then: no program change that keeps the earlier decisions explains it unless
    the program now starts fewer threads), ``"left-over"`` (the run finished with decisions
    left); ``"mismatch"`` for every other strategy's divergence."""

    def __init__(self, message: str, step: int, *, kind: str = "mismatch") -> None:
        super().__init__(message)
        self.step = step
        self.kind = kind


class _Abort(BaseException):
    """Internal: unwinds an emulated thread after the run has been stopped.

    A BaseException so that emulated code's ``except Exception`` cannot swallow it."""
