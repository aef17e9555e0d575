"""Argument structures of the D3DKMT thunks, the miniport's private-data format and the
command-buffer format. A public "header" module.

Structs are mutable dataclasses mirroring the C structs with snake_case domain names
(``hDevice`` → ``device``, ``hAllocation`` → ``allocation``, ``pPages`` → ``pages``,
``pData`` → ``data``). ``[out]`` fields are written by the thunk only on success (KL-1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "COMMAND_HEADER_BYTES",
    "D3DDDI_ALLOCATIONINFO",
    "D3DDDI_ALLOCATIONLIST",
    "D3DKMT_CLOSEADAPTER",
    "D3DKMT_CREATEALLOCATION",
    "D3DKMT_CREATECONTEXT",
    "D3DKMT_CREATEDEVICE",
    "D3DKMT_DESTROYALLOCATION",
    "D3DKMT_DESTROYCONTEXT",
    "D3DKMT_DESTROYDEVICE",
    "D3DKMT_GETDEVICESTATE",
    "D3DKMT_LOCK",
    "D3DKMT_LOCK2",
    "D3DKMT_OPENADAPTER",
    "D3DKMT_RENDER",
    "D3DKMT_UNLOCK",
    "D3DKMT_UNLOCK2",
    "AllocationDesc",
    "CmdDraw",
    "CmdNop",
    "CmdSpin",
    "CmdWrite",
    "Command",
    "command_length",
    "plain_int",
]

# ---- adapter / device / context --------------------------------------------------------------


@dataclass
class D3DKMT_OPENADAPTER:
    """Open the emulated adapter. ``adapter`` [out]."""

    adapter: int = 0


@dataclass
class D3DKMT_CLOSEADAPTER:
    adapter: int = 0


@dataclass
class D3DKMT_CREATEDEVICE:
    """``adapter`` [in]; ``device`` [out]."""

    adapter: int = 0
    device: int = 0


@dataclass
class D3DKMT_DESTROYDEVICE:
    device: int = 0


@dataclass
class D3DKMT_CREATECONTEXT:
    """``device``, ``node_ordinal`` (0: the one engine) [in]; ``context`` [out]."""

    device: int = 0
    node_ordinal: int = 0
    context: int = 0


@dataclass
class D3DKMT_DESTROYCONTEXT:
    context: int = 0


@dataclass
class D3DKMT_GETDEVICESTATE:
    """``device`` [in]; ``execution_state`` [out] (D3DKMT_DEVICEEXECUTION_STATE)."""

    device: int = 0
    execution_state: int = 0


# ---- allocations -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AllocationDesc:
    """Private driver data of one allocation: the reference UMD's description, read by the
    reference miniport in DxgkDdiCreateAllocation (CA-2). Opaque to dxgkrnl.

    ``segments``: ``"any"`` (memory segments first, then apertures), ``"local"`` (memory
    segments only) or ``"aperture"`` (aperture/AGP segments only). ``overlay``/``capture`` pin
    the allocation (CA-15). ``use_alternate_va`` is valid only on a primary (CA-14)."""

    size: int
    segments: str = "any"
    cpu_visible: bool = True
    swizzled: bool = False
    overlay: bool = False
    capture: bool = False
    cached: bool = False
    alignment: int = 0
    use_alternate_va: bool = False
    kind: str = "buffer"


@dataclass
class D3DDDI_ALLOCATIONINFO:
    """One allocation to create (AC table). ``system_mem``: a caller-owned ``bytearray`` whose
    length is a non-zero page multiple (CA-16); it becomes the backing store. ``allocation``
    [out]: the kernel allocation handle."""

    private_driver_data: Any = None
    system_mem: bytearray | None = None
    vidpn_source_id: int = 0
    flags: int = 0
    allocation: int = 0


@dataclass
class D3DKMT_CREATEALLOCATION:
    """D3DKMTCreateAllocation (the kernel half of pfnAllocateCb).

    ``create_resource=True`` makes a kernel resource and returns it in ``resource`` [out];
    ``resource`` = an existing kernel resource handle adds the allocations to it (AC-5);
    ``resource=0`` without ``create_resource``: device-owned allocations (AC-3).
    ``private_driver_data`` is the per-resource data (replaces the old one, AC-5)."""

    device: int = 0
    allocation_info: Sequence[D3DDDI_ALLOCATIONINFO] = ()
    private_driver_data: Any = None
    create_resource: bool = False
    resource: int = 0
    num_allocations: int | None = None


@dataclass
class D3DKMT_DESTROYALLOCATION:
    """``resource`` ≠ 0: free the resource and all its allocations (DA-1); else each handle of
    ``allocations`` (``num_allocations`` None or equal to its length)."""

    device: int = 0
    resource: int = 0
    allocations: Sequence[int] = ()
    num_allocations: int | None = None


# ---- lock / unlock ---------------------------------------------------------------------------


@dataclass
class D3DKMT_LOCK:
    """D3DKMT_LOCK. ``allocation`` is in/out here (D3DDDICB_LOCK semantics): after a renaming
    Discard lock it holds the new instance's handle (LCB-5). ``data`` [out]: a ``CpuPointer``."""

    device: int = 0
    allocation: int = 0
    flags: int = 0
    pages: Sequence[int] | None = None
    num_pages: int = 0
    private_driver_data: int = 0
    gpu_virtual_address: int = 0
    data: Any = None


@dataclass
class D3DKMT_LOCK2:
    """D3DKMT_LOCK2: no page list, ``flags`` must be 0 (KL2-1). ``data`` [out]."""

    device: int = 0
    allocation: int = 0
    flags: int = 0
    data: Any = None


@dataclass
class D3DKMT_UNLOCK:
    """D3DKMT_UNLOCK: a list of allocations of one device (KU-1, KU-2)."""

    device: int = 0
    allocations: Sequence[int] = ()
    num_allocations: int | None = None


@dataclass
class D3DKMT_UNLOCK2:
    device: int = 0
    allocation: int = 0


# ---- command buffers -------------------------------------------------------------------------

COMMAND_HEADER_BYTES = 16


@dataclass(frozen=True)
class CmdDraw:
    """GPU reads ``length`` bytes at ``offset`` of the instance in allocation-list slot
    ``alloc_index`` and records them under ``draw_id``."""

    draw_id: int
    alloc_index: int
    offset: int
    length: int


@dataclass(frozen=True)
class CmdWrite:
    """GPU writes ``data`` at ``offset`` of slot ``alloc_index`` (slot needs
    ``write_operation``)."""

    alloc_index: int
    offset: int
    data: bytes


@dataclass(frozen=True)
class CmdSpin:
    """GPU stays busy ``ns`` nanoseconds (a long spin triggers TDR)."""

    ns: int


@dataclass(frozen=True)
class CmdNop:
    """Does nothing (costs ``dma_cost_per_command_ns``)."""


Command = CmdDraw | CmdWrite | CmdSpin | CmdNop


def command_length(commands: Sequence[Command]) -> int:
    """Byte length of a command buffer: 16 per command, plus a ``CmdWrite``'s payload rounded up
    to 4 bytes. Raises ``TypeError`` for a non-command (use in UMD code, not on untrusted
    input)."""
    n = 0
    for c in commands:
        if isinstance(c, CmdWrite):
            n += COMMAND_HEADER_BYTES + (len(c.data) + 3) // 4 * 4
        elif isinstance(c, CmdDraw | CmdSpin | CmdNop):
            n += COMMAND_HEADER_BYTES
        else:
            raise TypeError(f"not a command: {c!r}")
    return n


@dataclass
class D3DDDI_ALLOCATIONLIST:
    """One allocation-list slot: a kernel allocation (instance) handle, 0 for a NULL slot (RD-9),
    and whether the DMA buffer writes it."""

    allocation: int = 0
    write_operation: bool = False


@dataclass
class D3DKMT_RENDER:
    """Submit a command buffer on ``context``. ``command_length`` None = computed, else must
    equal :func:`command_length`. [out]: ``fence`` (the DMA buffer's fence id, an emulator
    extension for traces and oracles) and ``queued_buffer_count`` (DMA buffers queued to the
    context after this one)."""

    context: int = 0
    commands: Sequence[Command] = ()
    allocation_list: Sequence[D3DDDI_ALLOCATIONLIST] = ()
    command_length: int | None = None
    fence: int = 0
    queued_buffer_count: int = 0


def plain_int(v: object) -> int | None:
    """``v`` as an exact built-in int, or None when it is not an int (a bool is not).

    The driver is untrusted: an int subclass — an ``IntFlag`` or ``IntEnum`` member, used
    legitimately for flag words, or a class whose ``__lt__``/``__index__``/``__hash__`` raise —
    is converted once with ``int.__index__``, which reads the value without calling any method
    the subclass defines (``type()``, because ``__class__`` can lie). Every later comparison,
    hash and format of the value is then the caller's own (the runtime's callbacks and the
    miniport both read driver values through it)."""
    t = type(v)
    if t is int:
        return v  # type: ignore[no-any-return]
    if issubclass(t, int) and t is not bool:
        return int.__index__(v)  # type: ignore[arg-type]
    return None
