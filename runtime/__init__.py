"""wddmemu's ``runtime`` layer: the emulated Direct3D 9 runtime and the engine it runs on.

The engine half (this module's public surface so far) runs emulated threads as anyio tasks of
which exactly one runs at a time, under a scheduling strategy; see ``docs/engine.md``.
"""

from ._engine import (
    Engine,
    VThread,
    checkpoint,
    current_engine,
    current_thread,
    log,
    now,
    sleep,
    spawn,
    tracing,
    violation,
)
from ._errors import Divergence, EngineUsageError, WouldBlock
from ._results import EngineStatistics, Failure, RunResult, Violation
from ._strategies import PCT, STRATEGY_NAMES, Fifo, Free, Random, Replay, Strategy, make_strategy
from ._sync import Condition, Event, Mutex, Queue, SharedCell

__all__ = [
    "PCT",
    "STRATEGY_NAMES",
    "Condition",
    "Divergence",
    "Engine",
    "EngineStatistics",
    "EngineUsageError",
    "Event",
    "Failure",
    "Fifo",
    "Free",
    "Mutex",
    "Queue",
    "Random",
    "Replay",
    "RunResult",
    "SharedCell",
    "Strategy",
    "VThread",
    "Violation",
    "WouldBlock",
    "checkpoint",
    "current_engine",
    "current_thread",
    "log",
    "make_strategy",
    "now",
    "sleep",
    "spawn",
    "tracing",
    "violation",
]
