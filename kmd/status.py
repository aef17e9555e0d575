"""Status codes: ``NTSTATUS`` (kernel) and ``HRESULT`` (user mode), with their real values.

A public "header" module. Values come from kernel-contract.md §13 (ntstatus.h / d3d9.h /
D3DUMDDI.H copies); the few not in that table are noted where they are defined. Both enums hold
the unsigned 32-bit value (``0xC01E0102``); every helper also accepts the signed ``int32`` form.
Every member is re-exported as a module constant (``STATUS_SUCCESS``, ``E_INVALIDARG``…).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

__all__ = [  # every NTSTATUS / HRESULT member name is added below, after the enums
    "CALLBACKS",
    "FAILED",
    "HRESULT",
    "NTSTATUS",
    "NT_SUCCESS",
    "SUCCEEDED",
    "graphics_hresult",
    "hex32",
    "hresult_from_nt",
    "hresult_name",
    "ntstatus_to_hresult_for_callback",
    "status_name",
]


class NTSTATUS(IntEnum):
    """Kernel status codes (unsigned 32-bit values)."""

    STATUS_SUCCESS = 0x00000000
    STATUS_INVALID_HANDLE = 0xC0000008
    STATUS_INVALID_PARAMETER = 0xC000000D
    STATUS_NO_MEMORY = 0xC0000017
    STATUS_ILLEGAL_INSTRUCTION = 0xC000001D
    # not in the reference table; read in public ntstatus.h copies (Wine, ReactOS)
    STATUS_PRIVILEGED_INSTRUCTION = 0xC0000096
    STATUS_INVALID_USER_BUFFER = 0xC00000E8
    STATUS_DEVICE_REMOVED = 0xC00002B6
    STATUS_GRAPHICS_NO_VIDEO_MEMORY = 0xC01E0100
    STATUS_GRAPHICS_CANT_LOCK_MEMORY = 0xC01E0101
    STATUS_GRAPHICS_ALLOCATION_BUSY = 0xC01E0102
    STATUS_GRAPHICS_TOO_MANY_REFERENCES = 0xC01E0103
    STATUS_GRAPHICS_TRY_AGAIN_LATER = 0xC01E0104
    STATUS_GRAPHICS_TRY_AGAIN_NOW = 0xC01E0105
    STATUS_GRAPHICS_ALLOCATION_INVALID = 0xC01E0106
    STATUS_GRAPHICS_UNSWIZZLING_APERTURE_UNAVAILABLE = 0xC01E0107
    STATUS_GRAPHICS_UNSWIZZLING_APERTURE_UNSUPPORTED = 0xC01E0108
    STATUS_GRAPHICS_CANT_EVICT_PINNED_ALLOCATION = 0xC01E0109
    STATUS_GRAPHICS_INVALID_ALLOCATION_USAGE = 0xC01E0110
    STATUS_GRAPHICS_CANT_RENDER_LOCKED_ALLOCATION = 0xC01E0111
    STATUS_GRAPHICS_ALLOCATION_CLOSED = 0xC01E0112
    STATUS_GRAPHICS_INVALID_ALLOCATION_INSTANCE = 0xC01E0113
    STATUS_GRAPHICS_INVALID_ALLOCATION_HANDLE = 0xC01E0114
    STATUS_GRAPHICS_WRONG_ALLOCATION_DEVICE = 0xC01E0115
    STATUS_GRAPHICS_ALLOCATION_CONTENT_LOST = 0xC01E0116
    STATUS_GRAPHICS_GPU_EXCEPTION_ON_DEVICE = 0xC01E0200


class HRESULT(IntEnum):
    """User-mode result codes (unsigned 32-bit values). D3DERR_* and D3DDDIERR_* share facility
    0x876, so several names alias one value (``D3DDDIERR_WASSTILLDRAWING is
    D3DERR_WASSTILLDRAWING``)."""

    S_OK = 0x00000000
    E_NOTIMPL = 0x80004001
    E_OUTOFMEMORY = 0x8007000E
    E_INVALIDARG = 0x80070057
    # winerror.h's generic codes: no DDI documents them, but a driver may return them, and a
    # finding names them (h7: E_FAIL was printed as 0x80004005)
    E_NOINTERFACE = 0x80004002
    E_POINTER = 0x80004003
    E_ABORT = 0x80004004
    E_FAIL = 0x80004005
    E_UNEXPECTED = 0x8000FFFF
    E_ACCESSDENIED = 0x80070005
    E_HANDLE = 0x80070006
    D3DERR_OUTOFVIDEOMEMORY = 0x8876017C
    D3DERR_WASSTILLDRAWING = 0x8876021C
    D3DERR_DRIVERINTERNALERROR = 0x88760827  # d3d9.h MAKE_D3DHRESULT(2087)
    D3DERR_DEVICELOST = 0x88760868
    D3DERR_NOTAVAILABLE = 0x8876086A
    D3DDDIERR_INVALIDCALL = 0x8876086C
    D3DDDIERR_DEVICEREMOVED = 0x88760870
    D3DDDIERR_PRIVILEGEDINSTRUCTION = 0x88760871
    D3DDDIERR_INVALIDINSTRUCTION = 0x88760872
    D3DDDIERR_INVALIDHANDLE = 0x88760873
    D3DDDIERR_INVALIDUSERBUFFER = 0x88760879
    D3DDDIERR_INCOMPATIBLEPRIVATEFORMAT = 0x8876087A
    # aliases (same value, facility 0x876)
    D3DDDIERR_OUTOFVIDEOMEMORY = 0x8876017C
    D3DDDIERR_WASSTILLDRAWING = 0x8876021C
    D3DDDIERR_NOTAVAILABLE = 0x8876086A
    D3DERR_DEVICEREMOVED = 0x88760870
    D3DDDIERR_ILLEGALINSTRUCTION = 0x88760872  # pfnRenderCb page's name for 2162 (UMD Q-19)
    # D3DUMDDI.H: #define D3DDDIERR_CANTEVICTPINNEDALLOCATION ERROR_GRAPHICS_CANT_EVICT_PINNED_…
    D3DDDIERR_CANTEVICTPINNEDALLOCATION = 0xC0262109
    D3DDDIERR_CANTRENDERLOCKEDALLOCATION = 0xC0262111
    # FACILITY_GRAPHICS HRESULTs (winerror.h ERROR_GRAPHICS_*), values read in golang.org/x/sys
    # windows/zerrors_windows.go; NTSTATUS 0xC01E0xyz <-> HRESULT 0xC0262xyz (see docs/kmd.md)
    ERROR_GRAPHICS_NO_VIDEO_MEMORY = 0xC0262100
    ERROR_GRAPHICS_CANT_LOCK_MEMORY = 0xC0262101
    ERROR_GRAPHICS_ALLOCATION_BUSY = 0xC0262102
    ERROR_GRAPHICS_TOO_MANY_REFERENCES = 0xC0262103
    ERROR_GRAPHICS_TRY_AGAIN_LATER = 0xC0262104
    ERROR_GRAPHICS_TRY_AGAIN_NOW = 0xC0262105
    ERROR_GRAPHICS_ALLOCATION_INVALID = 0xC0262106
    ERROR_GRAPHICS_UNSWIZZLING_APERTURE_UNAVAILABLE = 0xC0262107
    ERROR_GRAPHICS_UNSWIZZLING_APERTURE_UNSUPPORTED = 0xC0262108
    ERROR_GRAPHICS_CANT_EVICT_PINNED_ALLOCATION = 0xC0262109
    ERROR_GRAPHICS_INVALID_ALLOCATION_USAGE = 0xC0262110
    ERROR_GRAPHICS_CANT_RENDER_LOCKED_ALLOCATION = 0xC0262111
    ERROR_GRAPHICS_ALLOCATION_CLOSED = 0xC0262112
    ERROR_GRAPHICS_INVALID_ALLOCATION_INSTANCE = 0xC0262113
    ERROR_GRAPHICS_INVALID_ALLOCATION_HANDLE = 0xC0262114
    ERROR_GRAPHICS_WRONG_ALLOCATION_DEVICE = 0xC0262115
    ERROR_GRAPHICS_ALLOCATION_CONTENT_LOST = 0xC0262116
    ERROR_GRAPHICS_GPU_EXCEPTION_ON_DEVICE = 0xC0262200


# ---- module constants: every member, e.g. ``STATUS_SUCCESS``, ``E_INVALIDARG`` -------------

globals().update(NTSTATUS.__members__)
globals().update(HRESULT.__members__)
__all__ += list(NTSTATUS.__members__) + list(HRESULT.__members__)

# ---- helpers ---------------------------------------------------------------------------------


def _u32(value: int) -> int:
    # a plain int (the common case: every code the layers pass) skips the int() conversion
    if value.__class__ is int:
        return value & 0xFFFFFFFF
    return int(value) & 0xFFFFFFFF


def NT_SUCCESS(status: int) -> bool:
    """True for success and informational NTSTATUS values (the ``NT_SUCCESS`` macro: ``>= 0``
    as a signed 32-bit value)."""
    return (status if status.__class__ is int else int(status)) & 0xFFFFFFFF < 0x80000000


def SUCCEEDED(hr: int) -> bool:
    """True when the HRESULT's severity bit is clear (``SUCCEEDED`` macro)."""
    return (hr if hr.__class__ is int else int(hr)) & 0xFFFFFFFF < 0x80000000


def FAILED(hr: int) -> bool:
    """True when the HRESULT's severity bit is set (``FAILED`` macro)."""
    return (hr if hr.__class__ is int else int(hr)) & 0xFFFFFFFF >= 0x80000000


#: value -> its hex32 text, for the codes a run keeps returning (bounded: see hex32)
_HEX: dict[int, str] = {}


def hex32(value: int) -> str:
    """``"0xC01E0102"``: the unsigned 32-bit value in upper-case hex, 8 digits."""
    if isinstance(value, int):  # an int or a member, hashed as its value
        text = _HEX.get(value)  # any unsigned code seen before (a negative int misses)
        if text is not None:
            return text
    v = (value if value.__class__ is int else int(value)) & 0xFFFFFFFF
    text = _HEX.get(v)
    if text is None:
        text = f"0x{v:08X}"
        if len(_HEX) < 4096:  # codes, not data: a driver returning arbitrary ints stays bounded
            _HEX[v] = text
    return text


_NT_BY_VALUE: dict[int, str] = {m.value: m.name for m in NTSTATUS}
_HR_BY_VALUE: dict[int, str] = {}
for _name, _member in HRESULT.__members__.items():
    # canonical names first (enum order puts the first-defined name on the member)
    _HR_BY_VALUE.setdefault(_member.value, _member.name)


def status_name(value: int) -> str:
    """A readable name for any code: the NTSTATUS name if ``value`` is one (or an NTSTATUS
    member), else the HRESULT name, else its hex form. ``0`` is ``STATUS_SUCCESS`` unless an
    ``HRESULT`` member is passed (then ``S_OK``)."""
    if isinstance(value, HRESULT):
        return value.name
    try:
        v = _u32(value)
    except (TypeError, ValueError):
        return repr(value)
    name = _NT_BY_VALUE.get(v) or _HR_BY_VALUE.get(v)
    return name if name is not None else hex32(v)


def hresult_name(value: int) -> str:
    """A readable name for an ``HRESULT``: ``S_OK`` for 0, else the HRESULT name, else
    :func:`status_name`."""
    if isinstance(value, int):  # the common case: a named code, an int or a member (hashed as
        name = _HR_BY_VALUE.get(value)  # its value)
        if name is not None:
            return name
    try:
        v = (value if value.__class__ is int else int(value)) & 0xFFFFFFFF
    except (TypeError, ValueError):
        return repr(value)
    name = _HR_BY_VALUE.get(v)
    return name if name is not None else status_name(v)


def hresult_from_nt(status: int) -> int:
    """``HRESULT_FROM_NT``: the NTSTATUS with the FACILITY_NT_BIT (0x10000000) set."""
    return _u32(status) | 0x10000000


def graphics_hresult(status: int) -> int:
    """Map a FACILITY_GRAPHICS_KERNEL NTSTATUS ``0xC01E0xyz`` to its winerror.h
    ``ERROR_GRAPHICS_*`` HRESULT ``0xC0262xyz`` (facility 0x26, code + 0x2000); other values go
    through :func:`hresult_from_nt`."""
    s = _u32(status)
    if (s >> 16) & 0x0FFF == 0x01E and (s & 0xFFFF) < 0x2000:
        return (s & 0xC0000000) | 0x00260000 | (0x2000 + (s & 0xFFFF))
    return hresult_from_nt(s)


CALLBACKS: Final = (
    "pfnAllocateCb",
    "pfnDeallocateCb",
    "pfnLockCb",
    "pfnLock2Cb",
    "pfnUnlockCb",
    "pfnUnlock2Cb",
    "pfnRenderCb",
)

_COMMON: dict[int, HRESULT] = {
    NTSTATUS.STATUS_DEVICE_REMOVED: HRESULT.D3DDDIERR_DEVICEREMOVED,
    NTSTATUS.STATUS_INVALID_PARAMETER: HRESULT.E_INVALIDARG,
    NTSTATUS.STATUS_INVALID_HANDLE: HRESULT.E_INVALIDARG,
    NTSTATUS.STATUS_NO_MEMORY: HRESULT.E_OUTOFMEMORY,
    NTSTATUS.STATUS_GRAPHICS_NO_VIDEO_MEMORY: HRESULT.D3DERR_OUTOFVIDEOMEMORY,
    NTSTATUS.STATUS_GRAPHICS_ALLOCATION_BUSY: HRESULT.D3DERR_WASSTILLDRAWING,
    NTSTATUS.STATUS_GRAPHICS_CANT_LOCK_MEMORY: HRESULT.D3DERR_NOTAVAILABLE,
    NTSTATUS.STATUS_GRAPHICS_UNSWIZZLING_APERTURE_UNAVAILABLE: HRESULT.D3DERR_NOTAVAILABLE,
    NTSTATUS.STATUS_GRAPHICS_CANT_EVICT_PINNED_ALLOCATION: (
        HRESULT.D3DDDIERR_CANTEVICTPINNEDALLOCATION
    ),
    NTSTATUS.STATUS_GRAPHICS_CANT_RENDER_LOCKED_ALLOCATION: (
        HRESULT.D3DDDIERR_CANTRENDERLOCKEDALLOCATION
    ),
}

_RENDER: dict[int, HRESULT] = {
    NTSTATUS.STATUS_ILLEGAL_INSTRUCTION: HRESULT.D3DDDIERR_INVALIDINSTRUCTION,
    NTSTATUS.STATUS_PRIVILEGED_INSTRUCTION: HRESULT.D3DDDIERR_PRIVILEGEDINSTRUCTION,
    NTSTATUS.STATUS_INVALID_HANDLE: HRESULT.D3DDDIERR_INVALIDHANDLE,
    NTSTATUS.STATUS_INVALID_USER_BUFFER: HRESULT.D3DDDIERR_INVALIDUSERBUFFER,
}


def ntstatus_to_hresult_for_callback(status: int, call: str) -> int:
    """The HRESULT a runtime callback (``call``, one of :data:`CALLBACKS`) returns to the UMD
    for the kernel's ``status``, per kernel-contract §13 "which code goes with which layer" and
    the pfn*Cb return tables (AC-10/AC-11, KL-21, LCB-11, LCB-16, RCB-5, RD return table).

    Returns an :class:`HRESULT` member when the value has a name, else a plain int
    (``ERROR_GRAPHICS_*`` pattern or ``HRESULT_FROM_NT``). An unknown ``call`` is a programming
    error and raises ``ValueError``."""
    if call not in CALLBACKS:
        raise ValueError(f"unknown callback {call!r}; expected one of {', '.join(CALLBACKS)}")
    s = _u32(status)
    if s < 0x80000000:  # NT_SUCCESS
        return HRESULT.S_OK
    if call == "pfnRenderCb" and s in _RENDER:
        return _RENDER[s]
    if s in _COMMON:
        return _COMMON[s]
    hr = graphics_hresult(s)
    try:
        return HRESULT(hr)
    except ValueError:
        return hr
