"""OS threads started by emulated code: refused, and a ``foreign-thread`` failure.

An OS thread runs Python code beside the emulated threads, where the engine cannot schedule
it: what it does to shared state lands at a different step in every run (the same seed would
not give the same run), and a thread that outlives its run goes on touching the objects of the
next one. The emulated code under test is untrusted, so this is one of its failures, reported
like the others rather than left to show up as flaky results:

- ``threading.Thread.start`` called from inside an emulated thread (the caller's context
  carries the thread: every emulated thread runs in a copy of its spawner's context) fails the
  run as ``foreign-thread`` naming the emulated thread and what it tried to run, and raises
  :class:`RuntimeError` into the caller instead of starting the OS thread. Nothing is left
  running after the run, which keeps the next run sound. A ``ThreadPoolExecutor`` and
  ``threading.Timer`` start their threads through it and are refused alike.
- A thread started anywhere else (the host's code, pytest's, a Dask worker's) has no emulated
  thread in its context and starts as before.

Why wrap ``Thread.start`` rather than watch for new threads: CPython 3.11 raises no audit
event when a thread starts, and a look at ``threading.enumerate()`` after a run would miss a
thread that has ended already and could not tell who started a thread that has not (another
OS thread of the process, say a Dask worker's, may start one meanwhile). The wrapper is put in
place once, by the first run, and stays: for a caller outside every emulated thread it costs
one context-variable read. Not covered: ``_thread.start_new_thread`` called directly.
"""

from __future__ import annotations

import threading
from typing import Any

from ._safe import safe_str, type_name
from ._threads import _engine_var, _thread_var

_original_start: Any = None


def _qualified(obj: Any) -> str | None:
    """``module.qualname`` of a function or class, or None; never raising (untrusted code's
    objects may have properties that raise)."""
    try:
        name, module = getattr(obj, "__qualname__", None), getattr(obj, "__module__", None)
    except BaseException:
        return None
    if not isinstance(name, str):
        return None
    return safe_str(f"{module}.{name}" if isinstance(module, str) else name)


def _what(thread: threading.Thread) -> str:
    """What the refused OS thread would have run, the same in every process: its target's
    name (a Thread's own name carries a process-wide counter, ``Thread-7``)."""
    target = getattr(thread, "_target", None)  # threading keeps the target here, 3.8 to 3.13
    if target is None:  # a subclass's own run (threading.Timer's, say)
        return f"{_qualified(type(thread)) or type_name(thread)}.run"
    return _qualified(target) or type_name(target)


def _guarded_start(self: threading.Thread) -> None:
    t = _thread_var.get(None)
    if t is None:  # not emulated code: the host's, a test runner's, a worker's
        return _original_start(self)
    eng = _engine_var.get(None)
    what = _what(self)
    if eng is not None:
        eng._fail(
            "foreign-thread",
            f"thread {t.name} started an OS thread (to run {what}), which would run beside "
            "every emulated thread, where the engine cannot schedule it: use vthreads.spawn "
            "for a thread; the OS thread was not started",
            t,
            {"target": what},
        )
    raise RuntimeError(f"foreign-thread: emulated code cannot start an OS thread (to run "
                       f"{what}): use vthreads.spawn")


def guard_os_threads() -> None:
    """Make ``threading.Thread.start`` refuse callers inside an emulated thread (once per
    process; later calls do nothing)."""
    global _original_start
    if _original_start is not None:
        return
    _original_start = threading.Thread.start
    threading.Thread.start = _guarded_start  # type: ignore[method-assign]
