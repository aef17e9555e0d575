"""What every part of dxgkrnl shares: the kernel objects (``Device``, ``Context``), the argument
predicates, and :class:`KernelCore` — the state of one adapter plus the instance-lifetime helpers
that the allocation, lock, render and TDR paths all use.

The ``Kernel`` (kmd/dxgkrnl.py) is this core plus one mixin per responsibility:
``DeviceMixin`` (kmd/_devices.py), ``AllocationMixin`` (kmd/_allocation.py), ``LockMixin``
(kmd/_lock.py), ``RenderMixin`` (kmd/_render.py) and ``TdrMixin`` (kmd/_tdr.py). A mixin reaches
the others only through the methods declared here, so each file can be read on its own.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from ._handles import HandleTable, HandleType, is_handle_value
from ._trace import code_fields, klog, kviolation, kwants
from ._vidmm import Allocation, CpuPointer, Instance, LockRecord, Resource, VidMm
from .flags import as_flag_value
from .miniport import DXGKARG_RELEASESWIZZLINGRANGE, ReferenceMiniport
from .status import NTSTATUS

if TYPE_CHECKING:
    from ._gpu import DmaBuffer, GpuEngine
    from ._hooks import KernelHooks
    from ._vidsch import VidSch
    from .config import KernelConfig

__all__ = [
    "INVALID",
    "REMOVED",
    "SUCCESS",
    "Context",
    "Device",
    "KernelCore",
    "Refusal",
    "flags_field",
    "handle_field",
    "is_seq",
    "is_uint",
    "miniport_status",
]

INVALID = NTSTATUS.STATUS_INVALID_PARAMETER
SUCCESS = NTSTATUS.STATUS_SUCCESS
REMOVED = NTSTATUS.STATUS_DEVICE_REMOVED

#: a failed argument check: (status, rule, extra trace fields)
Refusal = tuple[NTSTATUS, str, dict[str, Any]]


def is_uint(x: object) -> bool:
    """A C ``UINT``: a non-bool int in 0..0xFFFFFFFF."""
    if x.__class__ is int:
        return 0 <= x <= 0xFFFFFFFF  # type: ignore[operator]
    return isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= 0xFFFFFFFF


def is_seq(x: object) -> bool:
    """A C array argument: a list or a tuple (anything else is garbage from the caller)."""
    return isinstance(x, list | tuple)


def handle_field(x: object) -> Any:
    """A handle for a trace field: the int, or the repr of garbage."""
    return int(x) if is_handle_value(x) else repr(x)[:40]  # type: ignore[call-overload]


def flags_field(x: object) -> str:
    """Lock flags for a trace field: ``0x…``, or the repr of garbage."""
    v = as_flag_value(x)
    return repr(x)[:40] if v is None else f"0x{v:X}"


def miniport_status(st: int) -> NTSTATUS:
    """A status a miniport DDI returned, as an NTSTATUS; an unknown one is a kernel violation
    RD-2 and becomes STATUS_INVALID_PARAMETER."""
    try:
        return NTSTATUS(int(st) & 0xFFFFFFFF)
    except ValueError:
        kviolation("RD-2", f"miniport returned an unknown status 0x{int(st) & 0xFFFFFFFF:08X}")
        return INVALID


# ---- kernel objects ---------------------------------------------------------------------------


class Device:
    """A dxgkrnl device: its contexts, allocations and resources; ``removed`` is the reason once
    the device is lost (TDR-10)."""

    __slots__ = (
        "adapter",
        "allocations",
        "contexts",
        "destroyed",
        "handle",
        "removed",
        "resources",
    )

    def __init__(self, adapter: int) -> None:
        self.handle = 0
        self.adapter = adapter
        self.removed: str | None = None
        self.destroyed = False
        self.contexts: list[Context] = []
        self.allocations: dict[int, Allocation] = {}  # first handle -> allocation
        self.resources: dict[int, Resource] = {}


class Context:
    """A GPU context (node 0) and its queue of submitted DMA buffers."""

    __slots__ = ("destroyed", "device", "handle", "node_ordinal", "queue")

    def __init__(self, device: Device, node_ordinal: int) -> None:
        self.handle = 0
        self.device = device
        self.node_ordinal = node_ordinal
        self.queue: deque[DmaBuffer] = deque()
        self.destroyed = False


# ---- the shared core ----------------------------------------------------------------------------


class KernelCore:
    """The adapter state (set up by ``Kernel.__init__``) and the helpers every path uses: the
    failure logger, counters, handle lookups and the instance lifetime (create, release a
    swizzling range, drop locks, free when nothing holds it)."""

    config: KernelConfig
    name: str
    handles: HandleTable
    vidmm: VidMm
    gpu: GpuEngine
    vidsch: VidSch
    miniport: ReferenceMiniport
    hooks: KernelHooks
    h_adapter: object
    devices: dict[int, Device]
    stopped: bool
    thunk_calls: int
    _pointers: list[CpuPointer]
    _pointers_sweep: int
    _counts: dict[str, int]

    if TYPE_CHECKING:  # provided by Kernel (kmd/dxgkrnl.py) and AllocationMixin

        def start(self) -> None: ...
        def _destroy_allocation(self, alloc: Allocation) -> None: ...
        def _destroy_resource(self, res: Resource) -> None: ...
        def _device_created(self, dev: Device) -> None: ...

    def _bump(self, what: str, n: int = 1) -> None:
        self._counts[what] = self._counts.get(what, 0) + n

    def _fail(self, event: str, status: NTSTATUS, rule: str | None, **fields: Any) -> NTSTATUS:
        """Log the failing ``event`` (with the rule it enforces) and return ``status``."""
        if kwants(event):
            if rule is not None:
                fields["rule"] = rule
            klog(event, **fields, **code_fields(status))
        return status

    # ---- lookups -------------------------------------------------------------------------------

    def _device(self, h: object) -> Device | None:
        dev = self.handles.get(h, HandleType.DEVICE)
        return None if dev is None or dev.destroyed else dev

    def _instance(self, h: object, dev: Device) -> Instance | None:
        """The live instance ``h`` of an allocation ``dev`` owns, else None (KL-2)."""
        inst = self.handles.get(h, HandleType.ALLOCATION)
        if inst is None or inst.freed or inst.alloc.destroyed or inst.alloc.device is not dev:
            return None
        return inst

    # ---- instance lifetime ---------------------------------------------------------------------

    def _new_instance(self, alloc: Allocation) -> Instance:
        """A new current instance of ``alloc`` with a handle. Its bytes are not allocated yet:
        they appear on the first CPU or GPU touch (an allocation VidMm refuses never costs host
        memory)."""
        inst = Instance(alloc, alloc.next_index, alloc.system_mem)
        alloc.next_index += 1
        inst.handle = self.handles.new(HandleType.ALLOCATION, inst)
        if alloc.handle == 0:
            alloc.handle = inst.handle
        alloc.instances.append(inst)
        alloc.current = inst
        return inst

    def _release_range(self, inst: Instance, rec: LockRecord) -> None:
        """Give back the swizzling range ``rec`` holds (DxgkDdiReleaseSwizzlingRange)."""
        if rec.swizzle_range:
            rec.swizzle_range = False
            self.vidmm.free_swizzle_ranges += 1
            self.miniport.dxgk_ddi_release_swizzling_range(
                self.h_adapter, DXGKARG_RELEASESWIZZLINGRANGE(h_allocation=inst.alloc.private)
            )

    def _drop_locks(self, inst: Instance, state: str) -> None:
        """End every lock of ``inst``; their pointers go to ``state``."""
        for rec in inst.locks:
            self._release_range(inst, rec)
            rec.pointer.state = state
        inst.locks.clear()

    def _instance_idle(self, inst: Instance) -> None:
        """Called when an instance's last DMA reference completed."""
        self._maybe_free(inst)

    def _maybe_free(self, inst: Instance) -> None:
        """Free a retired instance (or one of a destroyed allocation) once no DMA buffer and no
        lock holds it."""
        if inst.freed or inst.pending or inst.locks:
            return
        if inst.retired or inst.alloc.destroyed:
            self.handles.close(inst.handle)
            self.vidmm.free_instance(inst)
