"""The DDI entry decorator, for any driver's device class: :func:`ddi_entry`.

A DDI is called by the runtime with whatever it has: a runtime bug may hand a stale device
handle, the wrong structure, ``None`` in an int field, a float, a huge int. In C those are
garbage the driver validates before it acts; here they would surface as Python exceptions from
deep inside the driver (a ``TypeError`` from a dict lookup, an ``OverflowError`` from a struct)
— with state half changed. :func:`ddi_entry` checks everything a DDI receives **before** the
DDI body runs and answers ``E_INVALIDARG`` for any of it (an emulator decision: a runtime bug
gets a code, never an exception out of a DDI). Exceptions the body itself raises are *not*
mapped: a driver bug that raises is a failure of the run, not a code.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from ..ddi import (
    D3DDDI_POOL,
    D3DDDI_SURFACEINFO,
    D3DDDIARG_CREATERESOURCE,
    D3DDDIARG_DESTROYRESOURCE,
    D3DDDIARG_DRAWPRIMITIVE,
    D3DDDIARG_LOCK,
    D3DDDIARG_LOCKASYNC,
    D3DDDIARG_PRESENT,
    D3DDDIARG_RENAME,
    D3DDDIARG_SETSTREAMSOURCE,
    D3DDDIARG_UNLOCK,
    D3DDDIARG_UNLOCKASYNC,
    D3DDDIRANGE,
)
from ._config import E_INVALIDARG

__all__ = ["ddi_entry", "invalid_ddi_field"]

#: a C ``INT``/``UINT``/``HANDLE``/``SIZE_T``-sized value: what any int field can hold
_INT_MIN, _INT_MAX = -(1 << 63), 1 << 64
#: limits of one surface dimension (a ``UINT``), so sizes stay well inside a 64-bit SIZE_T
_DIM_MAX = 1 << 32
_POOLS = frozenset(int(p) for p in D3DDDI_POOL)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and _INT_MIN <= v < _INT_MAX


def _is_flags(v: Any) -> bool:
    """A 32-bit flag word (reserved bits are the DDI's own check: LA-7, UA-7, LK-5)."""
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 0xFFFFFFFF


def _is_range(v: Any) -> bool:
    return v is None or (isinstance(v, D3DDDIRANGE) and _is_int(v.offset) and _is_int(v.size))


def _is_dim(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < _DIM_MAX


def _is_surface(s: Any) -> bool:
    return (
        isinstance(s, D3DDDI_SURFACEINFO)
        and all(_is_dim(d) for d in (s.width, s.height, s.depth, s.bytes_per_pixel, s.pitch))
        and (s.system_mem is None or isinstance(s.system_mem, bytearray))
    )


def _is_surfaces(v: Any) -> bool:
    return isinstance(v, list) and all(_is_surface(s) for s in v)


def _is_pool(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v in _POOLS


_Check = Callable[[Any], bool]

#: the in-fields of every ``umd.ddi`` argument structure and what each may hold (out-fields
#: are the driver's to write and are not looked at)
_IN_FIELDS: dict[type, dict[str, _Check]] = {
    D3DDDIARG_CREATERESOURCE: {"rt_resource": _is_int, "pool": _is_pool, "flags": _is_flags,
                               "surfaces": _is_surfaces},
    D3DDDIARG_DESTROYRESOURCE: {"resource": _is_int},
    D3DDDIARG_LOCKASYNC: {"resource": _is_int, "subresource_index": _is_int,
                          "flags": _is_flags, "range": _is_range},
    D3DDDIARG_UNLOCKASYNC: {"resource": _is_int, "subresource_index": _is_int,
                            "flags": _is_flags},
    D3DDDIARG_RENAME: {"resource": _is_int, "subresource_index": _is_int, "cookie": _is_int},
    D3DDDIARG_LOCK: {"resource": _is_int, "subresource_index": _is_int, "flags": _is_flags,
                     "range": _is_range},
    D3DDDIARG_UNLOCK: {"resource": _is_int, "subresource_index": _is_int, "flags": _is_flags},
    D3DDDIARG_SETSTREAMSOURCE: {"stream": _is_int, "resource": _is_int, "offset": _is_int,
                                "stride": _is_int},
    D3DDDIARG_DRAWPRIMITIVE: {"primitive_type": _is_int, "start_vertex": _is_int,
                              "vertex_count": _is_int, "draw_id": _is_int},
    D3DDDIARG_PRESENT: {"src_resource": _is_int, "frame": _is_int},
}


#: the same, as tuples of (field, check) pairs for the per-call loop
_IN_FIELD_ITEMS: dict[type, tuple[tuple[str, _Check], ...]] = {
    t: tuple(checks.items()) for t, checks in _IN_FIELDS.items()
}


def invalid_ddi_field(args: Any) -> str | None:
    """The name of the first in-field of a ``umd.ddi`` argument structure whose value no C
    caller could pass (``None`` where an int belongs, a float, a bool, an int wider than 64
    bits, a flag word wider than 32 bits, a pool outside ``D3DDDI_POOL``, a surface list that
    is not a list of ``D3DDDI_SURFACEINFO``…), or None when every field is well-formed.
    Structures this module does not know are not looked into (None)."""
    checks = _IN_FIELD_ITEMS.get(type(args))
    if checks is None:
        return None
    for name, ok in checks:
        v = getattr(args, name, None)
        # the common case inline (a plain int in an int or flag field): a call less per field
        if v.__class__ is int and ((ok is _is_int and _INT_MIN <= v < _INT_MAX)
                                   or (ok is _is_flags and 0 <= v <= 0xFFFFFFFF)):
            continue
        if not ok(v):
            return name
    return None


class _DdiEntry:
    """The descriptor :func:`ddi_entry` returns: reading it from the class gives the entry
    function (what a ``D3DDDI_DEVICEFUNCS`` table holds); from an instance, a bound method.
    ``__set_name__`` learns the class it is defined in: hDevice must be one of those."""

    def __init__(self, fn: Callable[..., Awaitable[int]], argtype: type | None,
                 device_type: type | None) -> None:
        self.argtype = argtype
        self.device_type = device_type
        if argtype is not None and not isinstance(argtype, type):
            raise TypeError(f"ddi_entry takes an argument structure type, not {argtype!r}")
        if inspect.isfunction(fn) and not inspect.iscoroutinefunction(fn):
            # said where the class is defined (at --load), not at the first call deep in a run
            raise TypeError(f"ddi_entry marks an async def, and {fn.__qualname__} is a plain "
                            "def: write it as async def (the runtime awaits every DDI)")

        @functools.wraps(fn)
        async def entry(device: Any, args: Any = None) -> int:
            owner = self.device_type
            if owner is not None and not isinstance(device, owner):
                return E_INVALIDARG
            if argtype is not None and (
                not isinstance(args, argtype) or invalid_ddi_field(args) is not None
            ):
                return E_INVALIDARG
            return await fn(device, args)

        self.entry = entry
        functools.update_wrapper(self, fn)

    def __set_name__(self, owner: type, name: str) -> None:
        if self.device_type is None:
            self.device_type = owner

    async def __call__(self, device: Any, args: Any = None) -> int:
        # used outside a class (a module-level entry, ``device_type=`` names the class)
        return await self.entry(device, args)

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return self.entry
        return self.entry.__get__(obj, objtype)


def ddi_entry(argtype: type | None, *, device_type: type | None = None
              ) -> Callable[[Callable[..., Awaitable[int]]], Any]:
    """Mark ``async def pfn_x(self, args) -> HRESULT`` of a device class as a DDI entry point
    taking ``argtype`` (a ``umd.ddi`` ``D3DDDIARG_*``, any dataclass, or None for DDIs like
    Flush that take nothing). Works for any device class — the reference device's or one
    written from scratch.

    Before the body runs, the entry answers ``E_INVALIDARG`` when ``hDevice`` is not an
    instance of ``device_type`` (default: the class the method is defined in — "not one of this
    driver's devices"), when ``args`` is not an ``argtype``, or when an in-field of a
    ``umd.ddi`` structure holds a value no C caller could pass (:func:`invalid_ddi_field`).
    It adds no scheduling point and logs nothing; exceptions the body raises propagate.

    Read from the class (``MyDevice.pfn_lock``) the entry is the plain function a
    ``D3DDDI_DEVICEFUNCS`` table holds: ``await MyDevice.pfn_lock(hDevice, args)``."""

    def deco(fn: Callable[..., Awaitable[int]]) -> Any:
        return _DdiEntry(fn, argtype, device_type)

    return deco
