"""The module-level API for emulated code: it finds the running engine through a context
variable (see :mod:`vthreads._threads`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ._results import Violation
from ._safe import safe_repr
from ._threads import VThread, _engine, _engine_var, _thread_var

# defined beside the context variables they read, and the package's own modules call them by
# their private names there; here for the API's sake, as the same function objects
from ._threads import current_engine as current_engine
from ._threads import current_thread as current_thread
from ._trace import ONE_FIELD


def spawn(
    name: str, fn: Callable[..., Awaitable[Any]], *args: Any, daemon: bool = False
) -> VThread:
    """Start emulated thread ``name`` running ``fn(*args)``. Not a scheduling point."""
    return _engine().spawn(name, fn, *args, daemon=daemon)


async def checkpoint(label: str = "", op: tuple[Any, str] | None = None) -> None:
    """A scheduling point: another thread may run here. ``op`` names the operation on a shared
    object that follows the point, as ``(object, mode)`` — ``"read"``/``"write"`` of a cell,
    ``"acquire"`` of a mutex, … — so systematic search (DPOR) knows which steps depend on each
    other; a primitive built on :mod:`vthreads.lowlevel` passes it at every point. An ``op``
    of another shape raises ``TypeError`` under every strategy (before, only DPOR failed on it,
    later and from inside the search, sweep F D10)."""
    # one context-variable read on the hot path; _engine() only to raise its error
    if op is not None and (type(op) is not tuple or len(op) != 2 or type(op[1]) is not str):
        raise TypeError(f"checkpoint takes op=(object, mode), mode a str such as \"read\", "
                        f"not {safe_repr(op, 80)}")
    await (_engine_var.get(None) or _engine()).point(label, op)


def touch(obj: Any, mode: str) -> None:
    """Record an operation on a shared object that has no scheduling point of its own (a
    release, a set, a notify, a nowait queue operation): part of the running step's footprint
    for DPOR. Primitives call it; a no-op unless the strategy observes footprints."""
    if type(mode) is not str:  # under every strategy, not only those that observe (DPOR)
        raise TypeError(f"touch takes a mode str such as \"release\", not {safe_repr(mode, 80)}")
    eng = _engine_var.get(None) or _engine()
    if eng._observer is not None:  # Engine.touch's own test, without its call
        eng.touch(obj, mode)


async def sleep(ns: int) -> None:
    """Sleep ``ns`` nanoseconds of virtual time."""
    await _engine().sleep(ns)


def now() -> int:
    """Virtual time in nanoseconds."""
    return _engine().clock


def log(event: str, **fields: Any) -> None:
    """One trace event; ``step``, ``t``, ``thread`` and the run context are added."""
    eng = _engine_var.get(None) or _engine()
    if eng._all or event in eng._wanted:
        if type(event) is not str:  # a line's reader refuses one (sweep F D8)
            raise TypeError(f"log takes an event name, a str, not {type(event).__name__}")
        eng._event(event, fields)


def log_one(event: str, value: Any) -> None:
    """``log(event, **{ONE_FIELD[event]: value})`` for an event of one string field
    (:data:`vthreads._trace.ONE_FIELD`: the mutexes'), without the keyword dict."""
    # Engine._emit_one's body, here rather than called: a mutex's acquire and release are a
    # third of a traced run's lines, and the call was ~15 % of what tracing adds to them
    eng = _engine_var.get(None) or _engine()
    if eng._all:
        if event in eng._raw_one and type(value) is str:
            eng._sink.write_name(eng.step, eng.clock, _thread_var.get(None), event, value)
            return
    elif event not in eng._wanted:
        return
    eng._event(event, {ONE_FIELD[event]: value})


def tracing(event: str | None = None) -> bool:
    """Whether trace events are built at all, or (given a name) whether ``event`` is: a guard
    for fields that cost to build."""
    eng = _engine_var.get(None) or _engine()
    if event is None:
        return eng._tracing
    return eng._all or event in eng._wanted


def violation(rule: str, message: str, **fields: Any) -> Violation:
    """Record that ``rule`` broke; the run's result is then not ok."""
    return _engine().violation(rule, message, **fields)
