"""vthreads: deterministic virtual threads on anyio, one running at a time.

The engine under wddmemu, and nothing of Direct3D or WDDM: emulated threads are coroutines of
which exactly one runs at a time (one host task resumes the chosen one; under ``free`` they are
anyio tasks); at every scheduling point a :class:`Strategy` picks who runs
next, so the same program, strategy and seed make the same decisions and the same trace, on
asyncio and on trio. Synchronisation objects carry happens-before edges (vector clocks), so a
:class:`SharedCell` reports unordered conflicting accesses as races on any schedule.
See ``docs/engine.md``.

    import vthreads as vt

    async def main():
        cell = vt.SharedCell("counter", 0)
        async def bump():
            await cell.update(lambda v: v + 1, "bump")
        a, b = vt.spawn("a", bump), vt.spawn("b", bump)
        await a.join(); await b.join()

    result = vt.Engine("pct", seed=7).run(main)

People who build their own primitives use :mod:`vthreads.lowlevel`; tests that want the events
of a run use :mod:`vthreads.testing`. Everything else is private (``_engine``, ``_sync``…): a user
never needs a ``_`` name.
"""

# submodules, reachable as vthreads.lowlevel / vthreads.testing (not in __all__: the names
# below are the ones runtime still re-exports for old code)
from . import lowlevel as lowlevel
from . import testing as testing
from ._api import (
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
from ._decisions import Decisions
from ._dpor import DporStrategy, explore_dpor, explore_dpor_with
from ._engine import Engine
from ._errors import Divergence, EngineUsageError, LoopRunningError, WouldBlock
from ._host import run_many
from ._pos import POS
from ._results import EngineStatistics, Failure, RunResult, Violation
from ._split_dpor import DporSubtree, DporSubtreeRun, SplitDpor, explore_dpor_subtree
from ._strategies import (
    PCT,
    STRATEGIES,
    STRATEGY_NAMES,
    Choice,
    Fifo,
    FifoWithOverrides,
    Free,
    PrefixThenFifo,
    Random,
    Recorder,
    Replay,
    Strategy,
    make_strategy,
)
from ._sync import Condition, Event, Mutex, Queue, SharedCell
from ._systematic import (
    SYSTEMATIC,
    DfsStrategy,
    SplitDfs,
    Subtree,
    SubtreeRun,
    SystematicResult,
    explore_dfs,
    explore_dfs_with,
    explore_subtree,
    program_runner,
)
from ._threads import VThread

__all__ = [
    "PCT",
    "POS",
    "STRATEGIES",
    "STRATEGY_NAMES",
    "SYSTEMATIC",
    "Choice",
    "Condition",
    "Decisions",
    "DfsStrategy",
    "Divergence",
    "DporStrategy",
    "DporSubtree",
    "DporSubtreeRun",
    "Engine",
    "EngineStatistics",
    "EngineUsageError",
    "Event",
    "Failure",
    "Fifo",
    "FifoWithOverrides",
    "Free",
    "LoopRunningError",
    "Mutex",
    "PrefixThenFifo",
    "Queue",
    "Random",
    "Recorder",
    "Replay",
    "RunResult",
    "SharedCell",
    "SplitDfs",
    "SplitDpor",
    "Strategy",
    "Subtree",
    "SubtreeRun",
    "SystematicResult",
    "VThread",
    "Violation",
    "WouldBlock",
    "checkpoint",
    "current_engine",
    "current_thread",
    "explore_dfs",
    "explore_dfs_with",
    "explore_dpor",
    "explore_dpor_subtree",
    "explore_dpor_with",
    "explore_subtree",
    "log",
    "make_strategy",
    "now",
    "program_runner",
    "run_many",
    "sleep",
    "spawn",
    "tracing",
    "violation",
]
