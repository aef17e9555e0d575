"""The async forms of the harness's synchronous entry points, for callers inside a running event
loop (a pytest-trio test, a notebook, a service): ``await explore_async(...)``,
``await replay_async(...)``, ``await check_program_async(...)``.

Each runs its synchronous twin in a worker thread (``anyio.to_thread.run_sync``), where it
starts event loops of its own, one after another, as it does when called from plain code: the
same schedules, the same decisions, the same result. The caller's loop goes on meanwhile. Why
a thread rather than the caller's loop: an exploration's schedules are controlled runs that
never yield (docs/explore.md, "Running inside an event loop"), so on the caller's loop they
would hold it for the whole search. What a thread costs: the host's cancellation (a cancel
scope, ``fail_after``) is seen only once the call returns — a worker thread cannot be stopped
from outside; bound the work with ``ExploreOptions.schedules`` and the ``timeout`` of each
schedule instead. ``progress`` and ``on_found`` callbacks run in the worker thread.
:func:`run_scenario_async` is the one exception: one run, on the caller's loop itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

import anyio.to_thread

from ._explore import (
    ExploreOptions,
    ExploreResult,
    FailureFile,
    Found,
    ReplayOutcome,
    explore,
    replay,
)
from ._program import ProgramResult, check_program
from ._runner import RunSpec


async def explore_async(base: RunSpec, opts: ExploreOptions, *,
                        progress: Callable[[int, int], None] | None = None,
                        on_found: Callable[[Found], None] | None = None) -> ExploreResult:
    """:func:`explore` from inside a running event loop, in a worker thread (see the module
    docstring): the same result, the caller's loop free meanwhile."""
    return await anyio.to_thread.run_sync(
        partial(explore, base, opts, progress=progress, on_found=on_found))


async def replay_async(ff: FailureFile, *, trace: Any = None, backend: str | None = None,
                       inject: Sequence[str] = (), timeout: float | None = None
                       ) -> ReplayOutcome:
    """:func:`replay` from inside a running event loop, in a worker thread."""
    return await anyio.to_thread.run_sync(
        partial(replay, ff, trace=trace, backend=backend, inject=inject, timeout=timeout))


async def check_program_async(program: Callable[[], Awaitable[Any]], **options: Any
                              ) -> ProgramResult:
    """:func:`check_program` (the same keyword options) from inside a running event loop, in
    a worker thread."""
    return await anyio.to_thread.run_sync(partial(check_program, program, **options))
