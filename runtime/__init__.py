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

# The emulated Direct3D runtime (``_device``) imports ``kmd`` and ``umd``, which import the
# engine from this package: it is loaded on first use to keep the import order one-way.
_D3D = {
    "Adapter", "Device", "DeviceConfig", "DeviceStatistics", "LockedView", "Resource",
    "RUNTIME_BUGS", "open_adapter", "DrawRecord",
}


def __getattr__(name: str):
    if name in _D3D:
        from . import _device

        return getattr(_device, name)
    raise AttributeError(f"module 'runtime' has no attribute {name!r}")


__all__ = [
    "PCT",
    "RUNTIME_BUGS",
    "STRATEGY_NAMES",
    "Adapter",
    "Condition",
    "Device",
    "DeviceConfig",
    "DeviceStatistics",
    "Divergence",
    "DrawRecord",
    "Engine",
    "EngineStatistics",
    "EngineUsageError",
    "Event",
    "Failure",
    "Fifo",
    "Free",
    "LockedView",
    "Mutex",
    "Queue",
    "Random",
    "Replay",
    "Resource",
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
    "open_adapter",
    "sleep",
    "spawn",
    "tracing",
    "violation",
]
