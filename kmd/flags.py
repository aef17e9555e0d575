"""Flag words with their documented bit masks, and validators that name the broken rule.

A public "header" module. Each validator returns ``None`` when the value is acceptable, else the
id of the first rule it breaks (``"KL-6"``…), so callers can return ``STATUS_INVALID_PARAMETER``
and cite the rule in the trace.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag
from typing import Final

__all__ = [
    "D3DDDICB_LOCK2FLAGS",
    "D3DDDICB_LOCKFLAGS",
    "D3DDDI_ALLOCATIONINFO_FLAGS",
    "D3DDDI_ID_NOTAPPLICABLE",
    "D3DKMT_DEVICEEXECUTION_STATE",
    "DXGK_ALLOCATIONINFOFLAGS",
    "DXGK_HANDLE_TYPE",
    "LOCK_FLAG_RULE_WORDS",
    "SegmentKind",
    "as_flag_value",
    "int_masks",
    "lock_flag_breach",
    "validate_allocationinfo_flags",
    "validate_dxgk_allocation_flags",
    "validate_lock2_flags",
    "validate_lock_flags",
]

D3DDDI_ID_NOTAPPLICABLE: Final = 0
"""d3dukmdt.h ``(UINT)(0)``: the VidPnSourceId of a non-primary allocation (AC-7, Q12)."""


class D3DDDICB_LOCKFLAGS(IntFlag):
    """D3DDDICB_LOCKFLAGS (kernel-contract §1)."""

    ReadOnly = 0x001
    WriteOnly = 0x002
    DonotWait = 0x004
    IgnoreSync = 0x008
    LockEntire = 0x010
    DonotEvict = 0x020
    AcquireAperture = 0x040
    Discard = 0x080
    NoExistingReference = 0x100
    UseAlternateVA = 0x200
    IgnoreReadSync = 0x400


LOCK_RESERVED: Final = 0xFFFFF800


class D3DDDICB_LOCK2FLAGS(IntFlag):
    """D3DDDICB_LOCK2FLAGS: "Lock2 has none"; ``Value`` must be 0 (KL2-1)."""


class D3DDDI_ALLOCATIONINFO_FLAGS(IntFlag):
    """D3DDDI_ALLOCATIONINFO.Flags (kernel-contract §4)."""

    Primary = 0x1
    Stereo = 0x2


ALLOCATIONINFO_RESERVED: Final = 0xFFFFFFFC


class DXGK_ALLOCATIONINFOFLAGS(IntFlag):
    """DXGK_ALLOCATIONINFOFLAGS, set by the miniport in DxgkDdiCreateAllocation (§6)."""

    CpuVisible = 0x00001
    PermanentSysMem = 0x00002
    Cached = 0x00004
    Protected = 0x00008
    ExistingSysMem = 0x00010
    ExistingKernelSysMem = 0x00020
    FromEndOfSegment = 0x00040
    Swizzled = 0x00080
    Overlay = 0x00100
    Capture = 0x00200
    UseAlternateVA = 0x00400
    SynchronousPaging = 0x00800
    LinkMirrored = 0x01000
    LinkInstanced = 0x02000
    HistoryBuffer = 0x04000
    AccessedPhysically = 0x08000
    ExplicitResidencyNotification = 0x10000


class DXGK_HANDLE_TYPE(IntEnum):
    """DXGK_HANDLE_TYPE for DxgkCbGetHandleData."""

    DXGK_HANDLE_ALLOCATION = 1
    DXGK_HANDLE_RESOURCE = 2


class D3DKMT_DEVICEEXECUTION_STATE(IntEnum):
    """D3DKMT_DEVICEEXECUTION_STATE (d3dkmthk.h), answered by D3DKMTGetDeviceState."""

    D3DKMT_DEVICEEXECUTION_ACTIVE = 1
    D3DKMT_DEVICEEXECUTION_RESET = 2
    D3DKMT_DEVICEEXECUTION_HUNG = 3


class SegmentKind:
    """DXGK_SEGMENTDESCRIPTOR kinds (SEG table): linear memory-space, linear aperture, AGP."""

    MEMORY: Final = "memory"
    APERTURE: Final = "aperture"
    AGP: Final = "agp"
    ALL: Final = ("memory", "aperture", "agp")


def int_masks(flags: type[IntFlag]) -> type:
    """A class whose attributes are the members of ``flags`` as plain ints
    (``int_masks(D3DDDICB_LOCKFLAGS).Discard == 0x80``). Hot paths test bits with it: ``int &
    IntFlag`` builds an enum member per operation (``Enum.__call__``), several per DDI call.
    The IntFlag classes stay the API and what the trace names."""
    return type(f"{flags.__name__}_masks", (), {n: int(m) for n, m in flags.__members__.items()})


def as_flag_value(value: object) -> int | None:
    """The flag word as a plain int, or ``None`` when it is not a 32-bit unsigned int (bools
    and other types are refused: a flag word is a UINT)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    v = int(value)
    if v < 0 or v > 0xFFFFFFFF:
        return None
    return v


def validate_lock_flags(value: object) -> str | None:
    """D3DDDICB_LOCKFLAGS combination rules. Returns the broken rule id or ``None``:

    - ``KL-5``: not a UINT, or a Reserved bit (0xFFFFF800) set (Q11: rejected).
    - ``KL-6``: ReadOnly and WriteOnly together.
    - ``KL-9``: IgnoreSync together with AcquireAperture.
    - ``KL-10``: UseAlternateVA without AcquireAperture.
    - ``LCB-7``: NoExistingReference without Discard.

    KL-7/KL-8 (IgnoreSync/DonotWait with Discard) are legal: the flags just have no effect."""
    v = as_flag_value(value)
    if v is None or v & LOCK_RESERVED:
        return "KL-5"
    if v & _RO and v & _WO:
        return "KL-6"
    if v & _IGNORE_SYNC and v & _ACQUIRE_APERTURE:
        return "KL-9"
    if v & _ALTERNATE_VA and not v & _ACQUIRE_APERTURE:
        return "KL-10"
    if v & _NO_EXISTING_REFERENCE and not v & _DISCARD:
        return "LCB-7"
    return None


#: the combination each id of :func:`validate_lock_flags` forbids, in the contract's words
#: (kernel-contract.md KL-5…KL-10, umd-runtime-contract.md LCB-7), for messages
LOCK_FLAG_RULE_WORDS: Final = {
    "KL-5": "the flag word is a 32-bit UINT whose Reserved bits (0xFFFFF800) are zero",
    "KL-6": "ReadOnly and WriteOnly together are invalid",
    "KL-9": "IgnoreSync together with AcquireAperture is invalid",
    "KL-10": "UseAlternateVA requires AcquireAperture to be set too",
    "LCB-7": "NoExistingReference is only used with Discard",
}


def lock_flag_breach(rule: str, value: object) -> str:
    """What the flag word ``value`` breaks of ``rule`` (an id :func:`validate_lock_flags`
    returned for it), in words: the combination rule, and for KL-5 which bits are wrong."""
    if rule != "KL-5":
        return LOCK_FLAG_RULE_WORDS.get(rule, rule)
    v = as_flag_value(value)
    if v is None:
        return "the flag word is not a 32-bit UINT"
    return f"Reserved bits {v & LOCK_RESERVED:#x} are set; all of 0xFFFFF800 must be zero"


# plain ints for validate_lock_flags (every lock): ``int & IntFlag`` builds an enum member
_RO, _WO = int(D3DDDICB_LOCKFLAGS.ReadOnly), int(D3DDDICB_LOCKFLAGS.WriteOnly)
_IGNORE_SYNC = int(D3DDDICB_LOCKFLAGS.IgnoreSync)
_ACQUIRE_APERTURE = int(D3DDDICB_LOCKFLAGS.AcquireAperture)
_ALTERNATE_VA = int(D3DDDICB_LOCKFLAGS.UseAlternateVA)
_NO_EXISTING_REFERENCE = int(D3DDDICB_LOCKFLAGS.NoExistingReference)
_DISCARD = int(D3DDDICB_LOCKFLAGS.Discard)


def validate_lock2_flags(value: object) -> str | None:
    """D3DDDICB_LOCK2FLAGS: ``Value`` must be 0 (``KL2-1``)."""
    v = as_flag_value(value)
    if v is None or v != 0:
        return "KL2-1"
    return None


def validate_allocationinfo_flags(value: object) -> str | None:
    """D3DDDI_ALLOCATIONINFO.Flags: reserved bits zero, Stereo only with Primary (``AC-8``)."""
    v = as_flag_value(value)
    if v is None or v & ALLOCATIONINFO_RESERVED:
        return "AC-8"
    if v & D3DDDI_ALLOCATIONINFO_FLAGS.Stereo and not v & D3DDDI_ALLOCATIONINFO_FLAGS.Primary:
        return "AC-8"
    return None


_EXCLUSIVE_BACKING = (
    DXGK_ALLOCATIONINFOFLAGS.Protected
    | DXGK_ALLOCATIONINFOFLAGS.PermanentSysMem
    | DXGK_ALLOCATIONINFOFLAGS.ExistingSysMem
    | DXGK_ALLOCATIONINFOFLAGS.ExistingKernelSysMem
)
_NOT_ON_PRIMARY = _EXCLUSIVE_BACKING | DXGK_ALLOCATIONINFOFLAGS.Cached


def validate_dxgk_allocation_flags(value: object, primary: bool) -> str | None:
    """What dxgkrnl checks in the miniport's DXGK_ALLOCATIONINFO.Flags answer:

    - ``CA-11``: PermanentSysMem, Cached or HistoryBuffer without CpuVisible.
    - ``CA-12``: more than one of Protected / PermanentSysMem / ExistingSysMem /
      ExistingKernelSysMem.
    - ``CA-13``: any of those or Cached on a primary.
    - ``CA-14``: UseAlternateVA on a non-primary.
    - ``CA-17``: ExplicitResidencyNotification without AccessedPhysically."""
    v = as_flag_value(value)
    if v is None:
        return "CA-2"
    f = DXGK_ALLOCATIONINFOFLAGS
    needs_cpu = f.PermanentSysMem | f.Cached | f.HistoryBuffer
    if v & needs_cpu and not v & f.CpuVisible:
        return "CA-11"
    if bin(v & _EXCLUSIVE_BACKING).count("1") > 1:
        return "CA-12"
    if primary and v & _NOT_ON_PRIMARY:
        return "CA-13"
    if v & f.UseAlternateVA and not primary:
        return "CA-14"
    if v & f.ExplicitResidencyNotification and not v & f.AccessedPhysically:
        return "CA-17"
    return None
