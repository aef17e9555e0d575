"""Trace helpers: ``kmd.*`` events and violations that are no-ops outside an engine run.

Codes are logged as ``status="0xC01E0102", status_name="STATUS_GRAPHICS_ALLOCATION_BUSY"``;
handles as JSON ints (docs/kmd.md §5)."""

from __future__ import annotations

from typing import Any

import vthreads
from vthreads import EngineUsageError

from .status import NTSTATUS, hex32, status_name


def _engine() -> Any:
    try:
        return vthreads.current_engine()
    except EngineUsageError:
        return None


def klog(event: str, **fields: Any) -> None:
    """One ``kmd.*`` trace event (nothing when no engine runs or tracing is off)."""
    eng = _engine()
    if eng is not None:  # emit builds the event only if it is wanted
        eng.emit(event, **fields)


def kwants(event: str) -> bool:
    """Whether ``kmd.*`` event ``event`` is built in this run: guard fields that cost."""
    eng = _engine()
    return eng is not None and eng.wants(event)


def kviolation(rule: str, message: str, **fields: Any) -> None:
    """Record a broken rule on the running engine (nothing when none runs)."""
    eng = _engine()
    if eng is not None:
        eng.violation(rule, message, **fields)


#: code -> its ``code_fields``: a run logs the same few codes over and over
_CODE_FIELDS: dict[int, dict[str, Any]] = {}


def code_fields(status: int) -> dict[str, Any]:
    """``{"status": "0x…", "status_name": "…"}`` for a trace event. The dict may be shared:
    splat it (``**code_fields(st)``), never change it."""
    if status.__class__ is not NTSTATUS:  # ints, HRESULT members (named differently), garbage
        return {"status": hex32(status), "status_name": status_name(status)}
    fields = _CODE_FIELDS.get(status)
    if fields is None:
        fields = _CODE_FIELDS[status] = {"status": hex32(status),
                                         "status_name": status_name(status)}
    return fields


def now_ns() -> int:
    eng = _engine()
    return 0 if eng is None else int(eng.clock)
