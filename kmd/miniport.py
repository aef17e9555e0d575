"""The reference display miniport (KMD) and the DXGKARG_* structures of its DDIs.

dxgkrnl reaches the miniport only through these ``dxgk_ddi_*`` functions (synchronous:
PASSIVE_LEVEL code, no scheduling points), and the miniport reaches dxgkrnl only through the
``DxgkCb*`` callbacks object it was given (``dxgk_cb_get_handle_data``,
``dxgk_cb_enum_handle_children``, ``dxgk_cb_get_handle_parent``, ``dxgk_cb_notify_interrupt``).
The GPU hardware (``kmd/_gpu.py``) is programmed through ``dxgk_ddi_submit_command`` and
reports completion through ``dxgk_ddi_interrupt_routine``.

Subclass :class:`ReferenceMiniport` (pass ``miniport_factory`` to ``Kernel``) to plug in a
different miniport, e.g. a buggy one for regression tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .config import SegmentDesc
from .flags import DXGK_ALLOCATIONINFOFLAGS as AF
from .flags import DXGK_HANDLE_TYPE
from .status import NTSTATUS
from .structs import (
    AllocationDesc,
    CmdDraw,
    CmdNop,
    CmdSpin,
    CmdWrite,
    command_length,
    plain_int,
)

__all__ = [
    "D3DDDI_ALLOCATIONPRIORITY_NORMAL",
    "DXGKARG_ACQUIRESWIZZLINGRANGE",
    "DXGKARG_CREATEALLOCATION",
    "DXGKARG_DESTROYALLOCATION",
    "DXGKARG_RELEASESWIZZLINGRANGE",
    "DXGKARG_RENDER",
    "DXGKARG_SUBMITCOMMAND",
    "DXGK_ALLOCATIONINFO",
    "DXGK_ALLOCATIONLIST",
    "DxgkCallbacks",
    "MiniportAllocation",
    "MiniportResource",
    "ReferenceMiniport",
]

D3DDDI_ALLOCATIONPRIORITY_NORMAL = 0x28000000
#: the largest page-multiple 32-bit size: private data asking for more is the caller's mistake,
#: refused here (STATUS_INVALID_PARAMETER, CA-2) rather than answered with a size dxgkrnl must
#: reject as a broken miniport answer (CA-6)
MAX_ALLOCATION_SIZE = 0xFFFFF000
MAX_SPIN_NS = 10**15


class DxgkCallbacks(Protocol):
    """The DXGKRNL_INTERFACE subset the miniport may call (kernel-contract §8, SCH-1)."""

    def dxgk_cb_get_handle_data(
        self, h_object: int, handle_type: int, device_specific: bool = False
    ) -> Any: ...

    def dxgk_cb_enum_handle_children(self, h_object: int, index: int) -> int: ...

    def dxgk_cb_get_handle_parent(self, h_allocation: int) -> int: ...

    def dxgk_cb_notify_interrupt(self, fence: int) -> None: ...


class GpuHardware(Protocol):
    """What the miniport programs: the GPU's ring and fence register."""

    fence_register: int

    def ring_push(self, dma: Any) -> None: ...


# ---- DDI argument structures -----------------------------------------------------------------


@dataclass
class DXGK_ALLOCATIONINFO:
    """One allocation of DXGKARG_CREATEALLOCATION. [in]: ``private_driver_data``, and (emulator
    convenience, taken from D3DDDI_ALLOCATIONINFO) ``primary``, ``vidpn_source_id``,
    ``existing_sys_mem_size`` (> 0 when dxgkrnl backs it with caller system memory).
    [out]: everything else, filled by the miniport (CA-2)."""

    private_driver_data: Any = None
    primary: bool = False
    vidpn_source_id: int = 0
    existing_sys_mem_size: int = 0
    h_allocation: Any = None
    size: int = 0
    alignment: int = 0
    pitch_aligned_size: int = 0
    preferred_segments: tuple[int, ...] = ()
    supported_read_segment_set: int = 0
    supported_write_segment_set: int = 0
    eviction_segment_set: int = 0
    maximum_renaming_list_length: int = 0
    flags: int = 0
    allocation_priority: int = 0


@dataclass
class DXGKARG_CREATEALLOCATION:
    private_driver_data: Any = None
    allocation_info: list[DXGK_ALLOCATIONINFO] = field(default_factory=list)
    h_resource: Any = None  # in/out (CA-4)
    resource: bool = False  # DXGK_CREATEALLOCATIONFLAGS.Resource


@dataclass
class DXGKARG_DESTROYALLOCATION:
    allocations: list[Any] = field(default_factory=list)  # miniport allocation objects
    h_resource: Any = None
    destroy_resource: bool = False


@dataclass
class DXGK_ALLOCATIONLIST:
    """One slot of the kernel allocation list (RD-6): the miniport's allocation object (None for
    a NULL slot), WriteOperation, and where VidMm last placed it (RD-7)."""

    h_device_specific_allocation: Any = None
    write_operation: bool = False
    segment_id: int = 0


@dataclass
class DXGKARG_RENDER:
    """[in] ``commands`` (the UMD's untrusted command buffer, RD-2), ``command_length``,
    ``allocation_list``; [out] ``dma_buffer`` (translated packets), ``patch_locations``
    (allocation-list slot of every reference, in command order, RD-8)."""

    commands: Any = None
    command_length: Any = None
    allocation_list: list[DXGK_ALLOCATIONLIST] = field(default_factory=list)
    dma_buffer: list[tuple[Any, ...]] = field(default_factory=list)
    patch_locations: list[int] = field(default_factory=list)


@dataclass
class DXGKARG_ACQUIRESWIZZLINGRANGE:
    h_allocation: Any = None
    private_driver_data: int = 0
    range_id: int = 0


@dataclass
class DXGKARG_RELEASESWIZZLINGRANGE:
    h_allocation: Any = None
    range_id: int = 0


@dataclass
class DXGKARG_SUBMITCOMMAND:
    dma_buffer: Any = None
    submission_fence_id: int = 0


# ---- the miniport's private objects ----------------------------------------------------------


@dataclass
class MiniportAllocation:
    """What the miniport returns as ``hAllocation`` (CA-3) and gets back from
    DxgkCbGetHandleData (HD-5)."""

    desc: AllocationDesc | None
    size: int
    flags: int
    primary: bool
    vidpn_source_id: int


@dataclass
class MiniportResource:
    """The miniport's ``hResource`` object; ``private_driver_data`` is replaced when allocations
    are added to the resource (AC-5)."""

    private_driver_data: Any
    allocations_created: int = 0


def _is_int(x: object) -> bool:
    """An exact built-in int (RD-2: the command buffer and private data are untrusted). An int
    subclass is not: its comparisons and hash are the UMD's code, which may raise; the
    commands' fields go through :func:`_int` first, which reads one's plain value."""
    return type(x) is int


def _int(x: object) -> object:
    """``x``'s plain value when it is an int subclass (an ``IntEnum`` member, or a class with
    hostile dunders: ``int.__index__`` calls none of its methods), else ``x`` unchanged."""
    n = plain_int(x)
    return x if n is None else n


def _render_slot(slots: Any, idx: object) -> MiniportAllocation | NTSTATUS:
    """The allocation behind allocation-list slot ``idx`` of a DxgkDdiRender call, or
    INVALID_HANDLE for an index out of range or a NULL slot (RD-9)."""
    if not _is_int(idx) or not 0 <= idx < len(slots):  # type: ignore[operator]
        return NTSTATUS.STATUS_INVALID_HANDLE
    mp = slots[idx].h_device_specific_allocation
    if mp is None:
        return NTSTATUS.STATUS_INVALID_HANDLE  # RD-9: NULL slot
    return mp


def _in_bounds(mp: MiniportAllocation, off: object, n: object) -> bool:
    """Whether ``n`` bytes at ``off`` lie inside the allocation (both untrusted integers)."""
    return _is_int(off) and _is_int(n) and off >= 0 and n >= 0 and off + n <= mp.size  # type: ignore[operator]


class ReferenceMiniport:
    """A display miniport that follows the documented contract."""

    def __init__(
        self,
        callbacks: DxgkCallbacks,
        segments: Sequence[SegmentDesc],
        page_size: int,
        gpu: GpuHardware,
    ) -> None:
        self.callbacks = callbacks
        self.segments = tuple(segments)
        self.page_size = page_size
        self.gpu = gpu
        self.ddi_calls: dict[str, int] = {}
        self.in_reset = False
        self._next_range = 0

    def _count(self, name: str) -> None:
        self.ddi_calls[name] = self.ddi_calls.get(name, 0) + 1

    # ---- DxgkDdiCreateAllocation / DxgkDdiDestroyAllocation ----------------------------------

    def _segment_ids(self, desc: AllocationDesc | None, cpu_only: bool) -> list[int]:
        memory = [i + 1 for i, s in enumerate(self.segments) if not s.is_aperture]
        aperture = [i + 1 for i, s in enumerate(self.segments) if s.is_aperture]
        want_cpu = desc is None or desc.cpu_visible
        memory.sort(key=lambda i: (self.segments[i - 1].cpu_visible != want_cpu, i))
        where = "aperture" if desc is None else desc.segments
        ids = {"local": memory, "aperture": aperture, "any": memory + aperture}[where]
        if cpu_only:
            ids = [i for i in ids if self.segments[i - 1].cpu_visible]
        return ids

    @staticmethod
    def _valid_desc(desc: object) -> bool:
        if not isinstance(desc, AllocationDesc):
            return False
        # exact types: the private data is the UMD's, and a subclass's ==, < or str() is its
        # code (an int subclass as size, an object as segments raised here: issue 14)
        if not _is_int(desc.size) or not 0 < desc.size <= MAX_ALLOCATION_SIZE:
            return False
        if type(desc.segments) is not str or desc.segments not in ("any", "local", "aperture"):
            return False
        if type(desc.kind) is not str:
            return False
        if not _is_int(desc.alignment) or desc.alignment < 0:
            return False
        if desc.alignment and desc.alignment & (desc.alignment - 1):
            return False
        flags = (
            desc.cpu_visible,
            desc.swizzled,
            desc.overlay,
            desc.capture,
            desc.cached,
            desc.use_alternate_va,
        )
        return all(isinstance(b, bool) for b in flags)

    def dxgk_ddi_create_allocation(
        self, h_adapter: Any, args: DXGKARG_CREATEALLOCATION
    ) -> NTSTATUS:
        """DxgkDdiCreateAllocation: read each allocation's private data and answer its size,
        alignment, segments and flags (CA-2…CA-16). Bad private data → INVALID_PARAMETER."""
        self._count("DxgkDdiCreateAllocation")
        # every allocation is answered before any is written back: one bad private data fails
        # the whole call and leaves every DXGK_ALLOCATIONINFO as the kernel passed it
        answers: list[tuple[DXGK_ALLOCATIONINFO, dict[str, Any]]] = []
        for info in args.allocation_info:
            out = self._answer_allocation(info)
            if isinstance(out, NTSTATUS):
                return out
            answers.append((info, out))
        for info, out in answers:
            for k, v in out.items():
                setattr(info, k, v)
        if args.resource:
            self._answer_resource(args, len(answers))
        return NTSTATUS.STATUS_SUCCESS

    def _answer_allocation(self, info: DXGK_ALLOCATIONINFO) -> dict[str, Any] | NTSTATUS:
        """The fields DxgkDdiCreateAllocation fills in one DXGK_ALLOCATIONINFO (a new
        :class:`MiniportAllocation` as its handle), or the code that fails the call."""
        desc = info.private_driver_data
        sysmem = info.existing_sys_mem_size
        primary = info.primary
        size = self._allocation_size(desc, sysmem, primary)
        if isinstance(size, NTSTATUS):
            return size
        flags = self._allocation_flags(desc, primary, sysmem)
        if sysmem:
            segs = [i + 1 for i, s in enumerate(self.segments) if s.is_aperture]
        else:
            segs = self._segment_ids(desc, cpu_only=primary)  # SEG-8 for primaries
        if not segs:
            return NTSTATUS.STATUS_INVALID_PARAMETER
        mask = 0
        for sid in segs:
            mask |= 1 << (sid - 1)
        eviction = 0
        for i, s in enumerate(self.segments):
            if s.is_aperture:
                eviction |= 1 << i
        mp = MiniportAllocation(desc, size, flags, primary, info.vidpn_source_id)
        return {
            "h_allocation": mp,
            "size": size,
            "alignment": (desc.alignment if desc is not None else 0) or self.page_size,
            "preferred_segments": tuple(segs),
            "supported_read_segment_set": mask,
            "supported_write_segment_set": mask,
            "eviction_segment_set": eviction,
            "flags": flags,
            "allocation_priority": D3DDDI_ALLOCATIONPRIORITY_NORMAL,
        }

    def _allocation_size(
        self, desc: AllocationDesc | None, sysmem: int, primary: bool
    ) -> int | NTSTATUS:
        """Check one allocation's private data and return its size: the existing system
        memory's when the runtime gave some (the private data is then optional), else the
        private data's. A combination the driver does not create → INVALID_PARAMETER."""
        if sysmem:
            if desc is not None and not self._valid_desc(desc):
                return NTSTATUS.STATUS_INVALID_PARAMETER
            size = sysmem
        else:
            if not self._valid_desc(desc):
                return NTSTATUS.STATUS_INVALID_PARAMETER
            size = desc.size  # type: ignore[union-attr]
        if desc is not None:
            if desc.cached and not desc.cpu_visible:
                return NTSTATUS.STATUS_INVALID_PARAMETER  # CA-11
            if primary and desc.cached:
                return NTSTATUS.STATUS_INVALID_PARAMETER  # CA-13
            if desc.use_alternate_va and not primary:
                return NTSTATUS.STATUS_INVALID_PARAMETER  # CA-14: not created
        return size

    @staticmethod
    def _allocation_flags(desc: AllocationDesc | None, primary: bool, sysmem: int) -> int:
        """The DXGK_ALLOCATIONINFOFLAGS answered for one (already checked) allocation."""
        flags = 0
        if desc is None or desc.cpu_visible or primary:
            flags |= AF.CpuVisible  # a primary is implicitly CPU accessible (§4)
        if desc is not None:
            if desc.swizzled:
                flags |= AF.Swizzled
            if desc.overlay:
                flags |= AF.Overlay
            if desc.capture:
                flags |= AF.Capture
            if desc.cached:
                flags |= AF.Cached
            if desc.use_alternate_va:
                flags |= AF.UseAlternateVA
        if sysmem:
            flags |= AF.ExistingSysMem
        return flags

    @staticmethod
    def _answer_resource(args: DXGKARG_CREATEALLOCATION, created: int) -> None:
        """The resource half of the call: a new MiniportResource handle, or the existing one's
        private data refreshed (AC-5); either way it counts the ``created`` allocations."""
        if args.h_resource is None:
            args.h_resource = MiniportResource(args.private_driver_data)
        elif isinstance(args.h_resource, MiniportResource):
            args.h_resource.private_driver_data = args.private_driver_data  # AC-5
        args.h_resource.allocations_created += created

    def dxgk_ddi_destroy_allocation(
        self, h_adapter: Any, args: DXGKARG_DESTROYALLOCATION
    ) -> NTSTATUS:
        """DxgkDdiDestroyAllocation: drop the private objects (nothing to free in Python)."""
        self._count("DxgkDdiDestroyAllocation")
        return NTSTATUS.STATUS_SUCCESS

    # ---- DxgkDdiRender -----------------------------------------------------------------------

    def dxgk_ddi_render(self, h_context: Any, args: DXGKARG_RENDER) -> NTSTATUS:
        """DxgkDdiRender: validate the untrusted command buffer (RD-2) and translate it into DMA
        packets plus the patch-location list (RD-4, RD-8). Codes per the RD return table:
        unknown command → ILLEGAL_INSTRUCTION; slot out of range or NULL → INVALID_HANDLE;
        out-of-bounds access or wrong ``command_length`` → INVALID_USER_BUFFER; a write to a slot
        without WriteOperation → PRIVILEGED_INSTRUCTION (RD-3); bad parameters →
        INVALID_PARAMETER."""
        self._count("DxgkDdiRender")
        cmds = args.commands
        if not isinstance(cmds, list | tuple):
            return NTSTATUS.STATUS_INVALID_PARAMETER
        dma: list[tuple[Any, ...]] = []
        patches: list[int] = []
        for c in cmds:
            packet = self._render_command(c, args.allocation_list)
            if isinstance(packet, NTSTATUS):
                return packet
            dma.append(packet)
            if packet[0] in ("draw", "write"):  # the commands that reference an allocation
                patches.append(packet[2] if packet[0] == "draw" else packet[1])
        expected = command_length(cmds)
        if args.command_length is not None and (
            not _is_int(args.command_length) or args.command_length != expected
        ):
            return NTSTATUS.STATUS_INVALID_USER_BUFFER
        args.dma_buffer = dma
        args.patch_locations = patches
        return NTSTATUS.STATUS_SUCCESS

    @staticmethod
    def _render_command(c: object, slots: Any) -> tuple[Any, ...] | NTSTATUS:
        """One command of the untrusted buffer, checked, as its DMA packet; or the code of the
        RD return table that fails the whole DxgkDdiRender."""
        # every field is read once, as a plain value (_int), before it is compared or copied
        if isinstance(c, CmdDraw):
            draw_id, slot, off, n = _int(c.draw_id), _int(c.alloc_index), _int(c.offset), \
                _int(c.length)
            if not _is_int(draw_id):
                return NTSTATUS.STATUS_INVALID_PARAMETER
            mp = _render_slot(slots, slot)
            if isinstance(mp, NTSTATUS):
                return mp
            if not _in_bounds(mp, off, n):
                return NTSTATUS.STATUS_INVALID_USER_BUFFER
            return ("draw", draw_id, slot, off, n)
        if isinstance(c, CmdWrite):
            slot, off, data = _int(c.alloc_index), _int(c.offset), c.data
            if type(data) is not bytes and type(data) is not bytearray:
                return NTSTATUS.STATUS_INVALID_PARAMETER
            mp = _render_slot(slots, slot)
            if isinstance(mp, NTSTATUS):
                return mp
            if not _in_bounds(mp, off, len(data)):
                return NTSTATUS.STATUS_INVALID_USER_BUFFER
            if not slots[slot].write_operation:  # type: ignore[index]
                return NTSTATUS.STATUS_PRIVILEGED_INSTRUCTION
            return ("write", slot, off, bytes(data))
        if isinstance(c, CmdSpin):
            ns = _int(c.ns)
            if not _is_int(ns) or not 0 <= ns <= MAX_SPIN_NS:  # type: ignore[operator]
                return NTSTATUS.STATUS_INVALID_PARAMETER
            return ("spin", ns)
        if isinstance(c, CmdNop):
            return ("nop",)
        return NTSTATUS.STATUS_ILLEGAL_INSTRUCTION

    # ---- submission and interrupts (SCH-1) ---------------------------------------------------

    def dxgk_ddi_submit_command(self, h_adapter: Any, args: DXGKARG_SUBMITCOMMAND) -> NTSTATUS:
        """DxgkDdiSubmitCommand: queue the DMA buffer on the GPU ring; the fence is written at its
        end (SCH-3)."""
        self._count("DxgkDdiSubmitCommand")
        self.gpu.ring_push(args.dma_buffer)
        return NTSTATUS.STATUS_SUCCESS

    def dxgk_ddi_interrupt_routine(self, h_adapter: Any, message_number: int = 0) -> bool:
        """DxgkDdiInterruptRoutine: read the completed fence and report it with
        DxgkCbNotifyInterrupt (SCH-4; the DPC work is folded into the callback)."""
        self._count("DxgkDdiInterruptRoutine")
        self.callbacks.dxgk_cb_notify_interrupt(self.gpu.fence_register)
        return True

    # ---- swizzling ranges (SW-2) -------------------------------------------------------------

    def dxgk_ddi_acquire_swizzling_range(
        self, h_adapter: Any, args: DXGKARG_ACQUIRESWIZZLINGRANGE
    ) -> NTSTATUS:
        """DxgkDdiAcquireSwizzlingRange: program an unswizzling aperture for the allocation;
        receives the lock's PrivateDriverData (e.g. a MIP level)."""
        self._count("DxgkDdiAcquireSwizzlingRange")
        if not isinstance(args.h_allocation, MiniportAllocation):
            return NTSTATUS.STATUS_INVALID_PARAMETER
        self._next_range += 1
        args.range_id = self._next_range
        return NTSTATUS.STATUS_SUCCESS

    def dxgk_ddi_release_swizzling_range(
        self, h_adapter: Any, args: DXGKARG_RELEASESWIZZLINGRANGE
    ) -> NTSTATUS:
        self._count("DxgkDdiReleaseSwizzlingRange")
        return NTSTATUS.STATUS_SUCCESS

    # ---- TDR (TDR-3, TDR-8) ------------------------------------------------------------------

    def dxgk_ddi_reset_from_timeout(self, h_adapter: Any) -> NTSTATUS:
        """DxgkDdiResetFromTimeout: stop touching memory, reset the hardware (TDR-3)."""
        self._count("DxgkDdiResetFromTimeout")
        self.in_reset = True
        return NTSTATUS.STATUS_SUCCESS

    def dxgk_ddi_restart_from_timeout(self, h_adapter: Any) -> NTSTATUS:
        """DxgkDdiRestartFromTimeout: cleanup is over, rendering may resume (TDR-8)."""
        self._count("DxgkDdiRestartFromTimeout")
        self.in_reset = False
        return NTSTATUS.STATUS_SUCCESS

    # ---- a helper any miniport may use -------------------------------------------------------

    def private_data_of(self, h_allocation: int) -> MiniportAllocation | None:
        """DxgkCbGetHandleData for an allocation handle (HD-1: None means a bad handle)."""
        data = self.callbacks.dxgk_cb_get_handle_data(
            h_allocation, DXGK_HANDLE_TYPE.DXGK_HANDLE_ALLOCATION
        )
        return data if isinstance(data, MiniportAllocation) else None
