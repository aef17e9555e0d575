"""Exceptions of the engine's public surface."""

from __future__ import annotations


class WouldBlock(Exception):
    """A ``*_nowait`` operation could not complete without blocking."""


class EngineUsageError(RuntimeError):
    """Emulated code used the engine wrongly (outside a run, releasing a mutex it does not hold…).

    Raised into the emulated thread, where it ends the run as an ``exception`` failure."""


class Divergence(Exception):
    """A replayed run asked for a decision the recording cannot give."""

    def __init__(self, message: str, step: int) -> None:
        super().__init__(message)
        self.step = step


class _Abort(BaseException):
    """Internal: unwinds an emulated thread after the run has been stopped.

    A BaseException so that emulated code's ``except Exception`` cannot swallow it."""
