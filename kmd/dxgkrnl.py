"""dxgkrnl for one adapter: the ``Kernel`` object behind the D3DKMT thunks.

``Kernel.dxgk_*`` methods are the kernel side of each thunk (``kmd/thunks.py`` is the user→kernel
transition): they validate every argument (bad input → the documented code, never an exception),
apply VidMm/VidSch policy, call the miniport only through its ``dxgk_ddi_*`` DDIs, and log one
``kmd.*`` trace event per kernel event. The miniport calls back only through
:class:`DxgkrnlCallbacks`. Rule ids cite kernel-contract.md / umd-runtime-contract.md; the
decisions on the open questions are in docs/kmd.md §6.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import vthreads

from ._gpu import DmaBuffer, DmaRecord, GpuEngine
from ._handles import HandleTable, HandleType, is_handle_value
from ._trace import code_fields, klog, kviolation
from ._vidmm import Allocation, CpuPointer, Instance, LockRecord, Resource, VidMm
from ._vidsch import VidSch
from .config import KernelConfig
from .flags import D3DDDI_ALLOCATIONINFO_FLAGS as AIF
from .flags import (
    D3DDDI_ID_NOTAPPLICABLE,
    DXGK_HANDLE_TYPE,
    as_flag_value,
    validate_allocationinfo_flags,
    validate_dxgk_allocation_flags,
    validate_lock2_flags,
    validate_lock_flags,
)
from .flags import D3DDDICB_LOCKFLAGS as LF
from .flags import D3DKMT_DEVICEEXECUTION_STATE as EXEC
from .miniport import (
    DXGK_ALLOCATIONINFO,
    DXGK_ALLOCATIONLIST,
    DXGKARG_ACQUIRESWIZZLINGRANGE,
    DXGKARG_CREATEALLOCATION,
    DXGKARG_DESTROYALLOCATION,
    DXGKARG_RELEASESWIZZLINGRANGE,
    DXGKARG_RENDER,
    DXGKARG_SUBMITCOMMAND,
    ReferenceMiniport,
)
from .status import NT_SUCCESS, NTSTATUS
from .structs import (
    D3DDDI_ALLOCATIONINFO,
    D3DDDI_ALLOCATIONLIST,
    D3DKMT_CLOSEADAPTER,
    D3DKMT_CREATEALLOCATION,
    D3DKMT_CREATECONTEXT,
    D3DKMT_CREATEDEVICE,
    D3DKMT_DESTROYALLOCATION,
    D3DKMT_DESTROYCONTEXT,
    D3DKMT_DESTROYDEVICE,
    D3DKMT_GETDEVICESTATE,
    D3DKMT_LOCK,
    D3DKMT_LOCK2,
    D3DKMT_OPENADAPTER,
    D3DKMT_RENDER,
    D3DKMT_UNLOCK,
    D3DKMT_UNLOCK2,
)

__all__ = ["DxgkrnlCallbacks", "Kernel", "KernelStatistics"]

S = NTSTATUS
INVALID = NTSTATUS.STATUS_INVALID_PARAMETER
SUCCESS = NTSTATUS.STATUS_SUCCESS
REMOVED = NTSTATUS.STATUS_DEVICE_REMOVED


def _uint(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= 0xFFFFFFFF


def _seq(x: object) -> bool:
    return isinstance(x, list | tuple)


# ---- kernel objects ---------------------------------------------------------------------------


class Device:
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
    __slots__ = ("destroyed", "device", "handle", "node_ordinal", "queue")

    def __init__(self, device: Device, node_ordinal: int) -> None:
        self.handle = 0
        self.device = device
        self.node_ordinal = node_ordinal
        self.queue: deque[DmaBuffer] = deque()
        self.destroyed = False


@dataclass(frozen=True)
class KernelStatistics:
    """A snapshot of what the kernel did (``Kernel.statistics()``)."""

    thunk_calls: int
    adapters_open: int
    devices: int
    contexts: int
    resources: int
    allocations: int
    live_instances: int
    renames: int
    rename_failures: int
    locks: int
    unlocks: int
    lock_waits: int
    busy_failures: int
    submitted_fence: int
    completed_fence: int
    dma_completed: int
    dma_aborted: int
    evictions: int
    page_ins: int
    tdrs: int
    removed_devices: int
    system_memory_used: int
    segment_usage: tuple[tuple[str, int, int], ...]
    ddi_calls: tuple[tuple[str, int], ...]


class DxgkrnlCallbacks:
    """The ``DxgkCb*`` functions dxgkrnl gives the miniport (kernel-contract §8, SCH-1)."""

    def __init__(self, kernel: Kernel) -> None:
        self._k = kernel

    def dxgk_cb_get_handle_data(
        self, h_object: int, handle_type: int, device_specific: bool = False
    ) -> Any:
        """The private object the miniport returned for ``h_object`` in DxgkDdiCreateAllocation
        (HD-5), or ``None`` when unresolvable (HD-1). ``device_specific`` only with allocations
        (HD-4)."""
        k = self._k
        if handle_type == DXGK_HANDLE_TYPE.DXGK_HANDLE_ALLOCATION:
            inst = k.handles.get(h_object, HandleType.ALLOCATION)
            return None if inst is None else inst.alloc.private
        if handle_type == DXGK_HANDLE_TYPE.DXGK_HANDLE_RESOURCE and not device_specific:
            res = k.handles.get(h_object, HandleType.RESOURCE)
            return None if res is None else res.private
        return None

    def dxgk_cb_enum_handle_children(self, h_object: int, index: int) -> int:
        """Handle of child allocation ``index`` of resource ``h_object``; 0 (NULL) when
        ``index`` ≥ the child count or the parent is unresolvable (HD-2)."""
        res = self._k.handles.get(h_object, HandleType.RESOURCE)
        if res is None or not _uint(index) or index >= len(res.children):
            return 0
        return res.children[index].handle

    def dxgk_cb_get_handle_parent(self, h_allocation: int) -> int:
        """The parent resource of an allocation handle; 0 for device-owned allocations or an
        unresolvable handle (HD-3)."""
        inst = self._k.handles.get(h_allocation, HandleType.ALLOCATION)
        if inst is None or inst.alloc.resource is None:
            return 0
        return inst.alloc.resource.handle

    def dxgk_cb_notify_interrupt(self, fence: int) -> None:
        """DxgkCbNotifyInterrupt (+ the DPC): ``fence`` completed (SCH-4)."""
        self._k.vidsch.notify_interrupt(fence)


# ---- the kernel -------------------------------------------------------------------------------


class Kernel:
    """dxgkrnl + VidMm + VidSch + GPU + miniport of one adapter. See docs/kmd.md §1.1."""

    def __init__(
        self,
        config: KernelConfig | None = None,
        *,
        name: str = "kmd",
        miniport_factory: Callable[..., ReferenceMiniport] | None = None,
    ) -> None:
        self.config = config if config is not None else KernelConfig()
        self.name = name
        self.handles = HandleTable()
        self.vidmm = VidMm(self.config)
        self.gpu = GpuEngine(f"{name}.gpu", self.config)
        self.callbacks = DxgkrnlCallbacks(self)
        factory = miniport_factory or ReferenceMiniport
        self.miniport = factory(
            self.callbacks, self.config.segments, self.config.page_size, self.gpu
        )
        self.h_adapter = object()  # the MiniportDeviceContext handed to adapter-level DDIs
        self.vidsch = VidSch(
            name,
            self.gpu,
            self._submit_to_miniport,
            self._instance_idle,
            self.config.tdr_timeout_ns,
        )
        self.vidsch.on_timeout = self._on_timeout
        self.gpu.interrupt = lambda: self.miniport.dxgk_ddi_interrupt_routine(self.h_adapter)
        self.devices: dict[int, Device] = {}
        self.stopped = False  # TDR-2
        self.started = False
        self._engine: Any = None
        self.thunk_calls = 0
        self._removal_at_call: tuple[int, int | None] | None = None
        self._tdr_times: list[int] = []
        self._pointers: list[CpuPointer] = []
        self._counts: dict[str, int] = {}

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Create the conditions and spawn the GPU and watchdog daemon threads (idempotent;
        inside an engine run)."""
        eng = vthreads.current_engine()
        if self.started:
            if eng is not self._engine:
                raise vthreads.EngineUsageError(
                    f"Kernel {self.name!r} was started by another Engine run: create one Kernel "
                    "per run"
                )
            return
        self.started = True
        self._engine = eng
        self.gpu.start()
        self.vidsch.start()
        vthreads.spawn(f"{self.name}.gpu", self.gpu.run, daemon=True)
        vthreads.spawn(f"{self.name}.watchdog", self.vidsch.watchdog, daemon=True)

    def _bump(self, what: str, n: int = 1) -> None:
        self._counts[what] = self._counts.get(what, 0) + n

    @property
    def completed_fence(self) -> int:
        return self.vidsch.completed_fence

    @property
    def submitted_fence(self) -> int:
        return self.vidsch.submitted_fence

    @property
    def dma_records(self) -> list[DmaRecord]:
        return self.vidsch.records

    async def wait_for_fence(self, fence: int) -> NTSTATUS:
        """Block the calling emulated thread until ``fence`` completed: STATUS_SUCCESS, or
        STATUS_DEVICE_REMOVED if a reset aborted it. A fence that was never submitted (or not an
        int) gives STATUS_INVALID_PARAMETER at once instead of waiting forever."""
        self.start()
        assert self.vidsch.cond is not None
        if not _uint(fence) or fence > self.vidsch.submitted_fence:
            return INVALID
        aborted_before = self._counts.get("resets", 0)
        await self.vidsch.cond.wait_for(
            lambda: self.vidsch.completed_fence >= fence, f"fence {fence} on {self.name}.gpu"
        )
        for rec in reversed(self.vidsch.records):
            if rec.fence == fence:
                return SUCCESS if rec.status == "completed" else REMOVED
        return SUCCESS if self._counts.get("resets", 0) == aborted_before else REMOVED

    async def wait_idle(self) -> None:
        """Block until every submitted DMA buffer completed or was aborted."""
        await self.wait_for_fence(self.vidsch.submitted_fence)

    # ---- thunk entry (called by kmd/thunks.py) ----------------------------------------------

    async def enter(self, thunk: str) -> None:
        """Every thunk's entry: start the threads, one scheduling point, count the call and fire
        an armed removal (``inject_removal_at_call``)."""
        self.start()
        await vthreads.checkpoint(f"kmd.{thunk}")
        self.thunk_calls += 1
        armed = self._removal_at_call
        if armed is not None and self.thunk_calls >= armed[0]:
            self._removal_at_call = None
            self.inject_removal(armed[1], reason=f"injected at thunk call {self.thunk_calls}")

    def _fail(self, event: str, status: NTSTATUS, rule: str | None, **fields: Any) -> NTSTATUS:
        if rule is not None:
            fields["rule"] = rule
        klog(event, **fields, **code_fields(status))
        return status

    # ---- lookups -------------------------------------------------------------------------------

    def _device(self, h: object) -> Device | None:
        dev = self.handles.get(h, HandleType.DEVICE)
        return None if dev is None or dev.destroyed else dev

    def _instance(self, h: object, dev: Device) -> Instance | None:
        inst = self.handles.get(h, HandleType.ALLOCATION)
        if inst is None or inst.freed or inst.alloc.destroyed or inst.alloc.device is not dev:
            return None
        return inst

    # ---- adapters, devices, contexts -----------------------------------------------------------

    def dxgk_open_adapter(self, a: D3DKMT_OPENADAPTER) -> NTSTATUS:
        if self.stopped:
            return self._fail("kmd.adapter.open", REMOVED, "TDR-2")
        h = self.handles.new(HandleType.ADAPTER, self)
        a.adapter = h
        klog("kmd.adapter.open", adapter=h, **code_fields(SUCCESS))
        return SUCCESS

    def dxgk_close_adapter(self, a: D3DKMT_CLOSEADAPTER) -> NTSTATUS:
        if self.handles.get(a.adapter, HandleType.ADAPTER) is None:
            return self._fail("kmd.adapter.close", INVALID, None, adapter=_h(a.adapter))
        self.handles.close(a.adapter)
        klog("kmd.adapter.close", adapter=a.adapter, **code_fields(SUCCESS))
        return SUCCESS

    def dxgk_create_device(self, a: D3DKMT_CREATEDEVICE) -> NTSTATUS:
        if self.handles.get(a.adapter, HandleType.ADAPTER) is None:
            return self._fail("kmd.device.create", INVALID, None, adapter=_h(a.adapter))
        if self.stopped:
            return self._fail("kmd.device.create", REMOVED, "TDR-2", adapter=a.adapter)
        dev = Device(a.adapter)
        dev.handle = self.handles.new(HandleType.DEVICE, dev)
        self.devices[dev.handle] = dev
        a.device = dev.handle
        klog("kmd.device.create", adapter=a.adapter, device=dev.handle, **code_fields(SUCCESS))
        return SUCCESS

    def dxgk_destroy_device(self, a: D3DKMT_DESTROYDEVICE) -> NTSTATUS:
        """Frees everything the device owns; works after removal (TDR-11)."""
        dev = self._device(a.device)
        if dev is None:
            return self._fail("kmd.device.destroy", INVALID, "KL-2", device=_h(a.device))
        for alloc in list(dev.allocations.values()):
            self._destroy_allocation(alloc)
        for res in list(dev.resources.values()):
            self._destroy_resource(res)
        for ctx in dev.contexts:
            ctx.destroyed = True
            self.handles.close(ctx.handle)
        dev.destroyed = True
        self.handles.close(dev.handle)
        self.devices.pop(dev.handle, None)
        self.vidsch.notify()
        klog("kmd.device.destroy", device=dev.handle, **code_fields(SUCCESS))
        return SUCCESS

    def dxgk_create_context(self, a: D3DKMT_CREATECONTEXT) -> NTSTATUS:
        dev = self._device(a.device)
        if dev is None:
            return self._fail("kmd.context.create", INVALID, "RCB-4", device=_h(a.device))
        if dev.removed:
            return self._fail("kmd.context.create", REMOVED, "TDR-10", device=dev.handle)
        if not _uint(a.node_ordinal) or a.node_ordinal != 0:
            return self._fail("kmd.context.create", INVALID, "RCB-4", device=dev.handle)
        ctx = Context(dev, 0)
        ctx.handle = self.handles.new(HandleType.CONTEXT, ctx)
        dev.contexts.append(ctx)
        a.context = ctx.handle
        klog("kmd.context.create", device=dev.handle, context=ctx.handle, **code_fields(SUCCESS))
        return SUCCESS

    def dxgk_destroy_context(self, a: D3DKMT_DESTROYCONTEXT) -> NTSTATUS:
        ctx = self.handles.get(a.context, HandleType.CONTEXT)
        if ctx is None or ctx.destroyed:
            return self._fail("kmd.context.destroy", INVALID, "RCB-4", context=_h(a.context))
        ctx.destroyed = True
        self.handles.close(ctx.handle)
        if ctx in ctx.device.contexts:
            ctx.device.contexts.remove(ctx)
        klog("kmd.context.destroy", context=ctx.handle, **code_fields(SUCCESS))
        return SUCCESS

    def dxgk_get_device_state(self, a: D3DKMT_GETDEVICESTATE) -> NTSTATUS:
        dev = self._device(a.device)
        if dev is None:
            return self._fail("kmd.device.state", INVALID, "KL-2", device=_h(a.device))
        state = (
            EXEC.D3DKMT_DEVICEEXECUTION_RESET if dev.removed else EXEC.D3DKMT_DEVICEEXECUTION_ACTIVE
        )
        a.execution_state = state
        klog("kmd.device.state", device=dev.handle, state=state.name, **code_fields(SUCCESS))
        return SUCCESS

    # ---- allocations (pfnAllocateCb / pfnDeallocateCb) -----------------------------------------

    def dxgk_create_allocation(self, a: D3DKMT_CREATEALLOCATION) -> NTSTATUS:
        """The kernel half of pfnAllocateCb (AC-1…AC-13; CA-1, CA-2, CA-3,
        CA-4, CA-6, CA-7, CA-8, CA-9, CA-10, CA-11, CA-12, CA-13, CA-14, CA-15, CA-16, CA-17;
        docs/kmd.md §4.1)."""
        ev = "kmd.alloc.create"
        dev = self._device(a.device)
        if dev is None:
            return self._fail(ev, INVALID, "KL-2", device=_h(a.device))
        if dev.removed:
            return self._fail(ev, REMOVED, "AC-10", device=dev.handle)  # miniport not called
        infos = a.allocation_info
        if not _seq(infos) or not infos or len(infos) > self.config.max_allocations_per_call:
            return self._fail(ev, INVALID, "AC-2", device=dev.handle)
        if a.num_allocations is not None and (
            not _uint(a.num_allocations) or a.num_allocations != len(infos)
        ):
            return self._fail(ev, INVALID, "AC-2", device=dev.handle)
        if not isinstance(a.create_resource, bool):
            return self._fail(ev, INVALID, "AC-3", device=dev.handle)
        existing: Resource | None = None
        if a.create_resource:
            if a.resource != 0:
                return self._fail(ev, INVALID, "CA-4", device=dev.handle)
        elif a.resource != 0:
            existing = self.handles.get(a.resource, HandleType.RESOURCE)
            if existing is None or existing.device is not dev or existing.destroyed:
                return self._fail(ev, INVALID, "AC-3", device=dev.handle, resource=_h(a.resource))
        seen_mem: list[int] = []
        for info in infos:
            if not isinstance(info, D3DDDI_ALLOCATIONINFO):
                return self._fail(ev, INVALID, "AC-2", device=dev.handle)
            rule = validate_allocationinfo_flags(info.flags)
            if rule is not None:
                return self._fail(ev, INVALID, rule, device=dev.handle)
            primary = bool(info.flags & AIF.Primary)
            if not _uint(info.vidpn_source_id):
                return self._fail(ev, INVALID, "AC-7", device=dev.handle)
            if not primary and info.vidpn_source_id != D3DDDI_ID_NOTAPPLICABLE:
                return self._fail(ev, INVALID, "AC-7", device=dev.handle)
            if primary and info.vidpn_source_id >= self.config.vidpn_sources:
                return self._fail(ev, INVALID, "AC-7", device=dev.handle)
            mem = info.system_mem
            if mem is not None:
                if not isinstance(mem, bytearray) or not mem or len(mem) % self.config.page_size:
                    return self._fail(ev, INVALID, "CA-16", device=dev.handle)
                if primary:
                    return self._fail(ev, INVALID, "AC-9", device=dev.handle)
                if id(mem) in seen_mem:
                    return self._fail(ev, INVALID, "CA-16", device=dev.handle)
                seen_mem.append(id(mem))
        # AC-1: dxgkrnl asks the miniport to interpret the private data
        dinfos = [
            DXGK_ALLOCATIONINFO(
                private_driver_data=info.private_driver_data,
                primary=bool(info.flags & AIF.Primary),
                vidpn_source_id=info.vidpn_source_id,
                existing_sys_mem_size=0 if info.system_mem is None else len(info.system_mem),
            )
            for info in infos
        ]
        darg = DXGKARG_CREATEALLOCATION(
            private_driver_data=a.private_driver_data,
            allocation_info=dinfos,
            h_resource=None if existing is None else existing.private,
            resource=a.create_resource or existing is not None,
        )
        st = self.miniport.dxgk_ddi_create_allocation(self.h_adapter, darg)
        if not NT_SUCCESS(st):
            return self._fail(ev, _nt(st), "CA-2", device=dev.handle)
        # check the miniport's answer (CA-3, CA-6…CA-14, SEG-8)
        nseg = len(self.vidmm.segments)
        built: list[tuple[Allocation, D3DDDI_ALLOCATIONINFO]] = []
        for info, d in zip(infos, dinfos):
            rule = self._check_miniport_answer(d, info, nseg)
            if rule is not None:
                kviolation(rule, f"miniport answered DxgkDdiCreateAllocation badly ({rule})")
                self._miniport_destroy([x for x in dinfos], darg, a.create_resource)
                return self._fail(ev, INVALID, rule, device=dev.handle)
            supported = tuple(i + 1 for i in range(nseg) if d.supported_write_segment_set >> i & 1)
            desc = info.private_driver_data
            alloc = Allocation(
                device=dev,
                resource=None,
                private=d.h_allocation,
                size=len(info.system_mem)
                if info.system_mem is not None
                else self.vidmm.round_size(d.size),
                alignment=d.alignment,
                flags=int(d.flags),
                preferred=tuple(d.preferred_segments),
                supported=supported,
                primary=bool(info.flags & AIF.Primary),
                vidpn_source_id=info.vidpn_source_id,
                system_mem=info.system_mem,
                kind=str(getattr(desc, "kind", "sysmem"))[:40],
            )
            built.append((alloc, info))
        # VidMm places every first instance; all or nothing (AC-12)
        placed: list[Instance] = []
        for alloc, _info in built:
            inst = self._new_instance(alloc)
            if not self.vidmm.place_new(inst):
                for p in [*placed, inst]:
                    self.handles.close(p.handle)
                    if p.handle in self.vidmm.instances:
                        self.vidmm.free_instance(p)
                self._miniport_destroy(dinfos, darg, a.create_resource)
                return self._fail(
                    ev,
                    S.STATUS_GRAPHICS_NO_VIDEO_MEMORY,
                    "AC-11",
                    device=dev.handle,
                    size=alloc.size,
                )
            placed.append(inst)
        res = existing
        if a.create_resource:
            res = Resource(0, dev, darg.h_resource, a.private_driver_data)
            res.handle = self.handles.new(HandleType.RESOURCE, res)
            dev.resources[res.handle] = res
        elif existing is not None:
            existing.private = darg.h_resource
            existing.private_driver_data = a.private_driver_data  # AC-5
        for (alloc, info), inst in zip(built, placed):
            alloc.resource = res
            if res is not None:
                res.children.append(alloc)
            dev.allocations[alloc.handle] = alloc
            info.allocation = inst.handle
            klog(
                ev,
                device=dev.handle,
                allocation=inst.handle,
                resource=0 if res is None else res.handle,
                size=alloc.size,
                kind=alloc.kind,
                flags=f"0x{alloc.flags:05X}",
                segment="system" if inst.segment is None else inst.segment.desc.name,
                primary=alloc.primary,
                sysmem=alloc.existing_sysmem,
                **code_fields(SUCCESS),
            )
        if a.create_resource and res is not None:
            a.resource = res.handle
        return SUCCESS

    def _check_miniport_answer(
        self, d: DXGK_ALLOCATIONINFO, info: D3DDDI_ALLOCATIONINFO, nseg: int
    ) -> str | None:
        if d.h_allocation is None:
            return "CA-3"
        if not _uint(d.size) or d.size == 0:
            return "CA-6"
        if info.system_mem is not None and d.size > len(info.system_mem):
            return "CA-16"
        full = (1 << nseg) - 1
        sup = d.supported_write_segment_set
        if not _uint(sup) or sup == 0 or sup & ~full:
            return "CA-7"
        prefs = d.preferred_segments
        if not _seq(prefs) or any(
            not _uint(p) or not 1 <= p <= nseg or not sup >> (p - 1) & 1 for p in prefs
        ):
            return "CA-7"
        aperture_mask = sum(1 << i for i, s in enumerate(self.vidmm.segments) if s.is_aperture)
        if not _uint(d.eviction_segment_set) or d.eviction_segment_set & ~aperture_mask:
            return "CA-8"
        if not _uint(d.allocation_priority) or d.allocation_priority == 0:
            return "CA-9"
        primary = bool(info.flags & AIF.Primary)
        rule = validate_dxgk_allocation_flags(d.flags, primary)
        if rule is not None:
            return rule
        if primary:
            for i, seg in enumerate(self.vidmm.segments):
                if sup >> i & 1 and not seg.cpu_visible:
                    return "SEG-8"
        return None

    def _miniport_destroy(
        self, dinfos: Sequence[DXGK_ALLOCATIONINFO], darg: DXGKARG_CREATEALLOCATION, res: bool
    ) -> None:
        self.miniport.dxgk_ddi_destroy_allocation(
            self.h_adapter,
            DXGKARG_DESTROYALLOCATION(
                allocations=[d.h_allocation for d in dinfos if d.h_allocation is not None],
                h_resource=darg.h_resource if res else None,
                destroy_resource=res,
            ),
        )

    def _new_instance(self, alloc: Allocation) -> Instance:
        backing = alloc.system_mem if alloc.system_mem is not None else bytearray(alloc.size)
        inst = Instance(alloc, alloc.next_index, backing)
        alloc.next_index += 1
        inst.handle = self.handles.new(HandleType.ALLOCATION, inst)
        if alloc.handle == 0:
            alloc.handle = inst.handle
        alloc.instances.append(inst)
        alloc.current = inst
        return inst

    def dxgk_destroy_allocation(self, a: D3DKMT_DESTROYALLOCATION) -> NTSTATUS:
        """The kernel half of pfnDeallocateCb (DA-1…DA-4; Q8: implicit unlock, deferred free).
        Works on a removed device (DA-4). All handles are validated before anything is freed."""
        ev = "kmd.alloc.destroy"
        dev = self._device(a.device)
        if dev is None:
            return self._fail(ev, INVALID, "DA-3", device=_h(a.device))
        res: Resource | None = None
        if a.resource != 0:
            res = self.handles.get(a.resource, HandleType.RESOURCE)
            if res is None or res.device is not dev or res.destroyed:
                return self._fail(ev, INVALID, "DA-3", device=dev.handle, resource=_h(a.resource))
            allocs = list(res.children)
        else:
            hs = a.allocations
            if not _seq(hs) or not hs:
                return self._fail(ev, INVALID, "DA-1", device=dev.handle)
            if a.num_allocations is not None and (
                not _uint(a.num_allocations) or a.num_allocations != len(hs)
            ):
                return self._fail(ev, INVALID, "DA-1", device=dev.handle)
            allocs = []
            for h in hs:
                inst = self._instance(h, dev)
                if inst is None or inst.alloc in allocs:
                    return self._fail(ev, INVALID, "DA-3", device=dev.handle, allocation=_h(h))
                allocs.append(inst.alloc)
        for alloc in allocs:
            self._destroy_allocation(alloc)
        if res is not None:
            self._destroy_resource(res)
        self.vidsch.notify()
        return SUCCESS

    def _destroy_allocation(self, alloc: Allocation) -> None:
        alloc.destroyed = True
        for inst in list(alloc.instances):
            self._drop_locks(inst, "freed")
            self.handles.close(inst.handle)
            if not inst.pending:
                self.vidmm.free_instance(inst)
        alloc.device.allocations.pop(alloc.handle, None)
        if alloc.resource is not None and alloc in alloc.resource.children:
            alloc.resource.children.remove(alloc)
        self.miniport.dxgk_ddi_destroy_allocation(
            self.h_adapter, DXGKARG_DESTROYALLOCATION(allocations=[alloc.private])
        )
        klog(
            "kmd.alloc.destroy",
            device=alloc.device.handle,
            allocation=alloc.handle,
            in_flight=sum(1 for i in alloc.instances if i.pending),
            **code_fields(SUCCESS),
        )

    def _destroy_resource(self, res: Resource) -> None:
        for alloc in list(res.children):
            self._destroy_allocation(alloc)
        res.destroyed = True
        self.handles.close(res.handle)
        res.device.resources.pop(res.handle, None)
        self.miniport.dxgk_ddi_destroy_allocation(
            self.h_adapter,
            DXGKARG_DESTROYALLOCATION(h_resource=res.private, destroy_resource=True),
        )
        klog("kmd.resource.destroy", device=res.device.handle, resource=res.handle)

    def _drop_locks(self, inst: Instance, state: str) -> None:
        for rec in inst.locks:
            self._release_range(inst, rec)
            rec.pointer.state = state
        inst.locks.clear()

    def _release_range(self, inst: Instance, rec: LockRecord) -> None:
        if rec.swizzle_range:
            rec.swizzle_range = False
            self.vidmm.free_swizzle_ranges += 1
            self.miniport.dxgk_ddi_release_swizzling_range(
                self.h_adapter, DXGKARG_RELEASESWIZZLINGRANGE(h_allocation=inst.alloc.private)
            )

    def _instance_idle(self, inst: Instance) -> None:
        """Called when an instance's last DMA reference completed."""
        self._maybe_free(inst)

    def _maybe_free(self, inst: Instance) -> None:
        if inst.freed or inst.pending or inst.locks:
            return
        if inst.retired or inst.alloc.destroyed:
            self.handles.close(inst.handle)
            self.vidmm.free_instance(inst)

    # ---- lock ----------------------------------------------------------------------------------

    async def dxgk_lock(self, a: D3DKMT_LOCK) -> NTSTATUS:
        """D3DKMTLock (KL-1…KL-23; order of checks in docs/kmd.md §4.3)."""
        ev = "kmd.lock"
        dev = self._device(a.device)
        if dev is None:
            return self._fail(ev, INVALID, "KL-2", device=_h(a.device))
        if dev.removed:
            return self._fail(ev, REMOVED, "KL-23", device=dev.handle)
        inst = self._instance(a.allocation, dev)
        if inst is None:
            return self._fail(ev, INVALID, "KL-2", device=dev.handle, allocation=_h(a.allocation))
        alloc = inst.alloc
        base = {"device": dev.handle, "allocation": inst.handle, "flags": _flags_repr(a.flags)}
        if inst.retired:
            return self._fail(ev, INVALID, "KL-11", **base)
        if not alloc.cpu_visible:
            return self._fail(ev, INVALID, "KL-12", **base)
        if not _uint(a.gpu_virtual_address) or a.gpu_virtual_address != 0:
            return self._fail(ev, INVALID, "KL-5", **base)
        rule = validate_lock_flags(a.flags)
        if rule is not None:
            return self._fail(ev, INVALID, rule, **base)
        flags = int(a.flags)
        if not _uint(a.private_driver_data) or not _uint(a.num_pages):
            return self._fail(ev, INVALID, "KL-2", **base)
        ps = self.config.page_size
        npages = (alloc.size + ps - 1) // ps
        pages = a.pages
        page_list: tuple[int, ...] | None = None
        if flags & LF.LockEntire:
            if pages is not None or a.num_pages != 0:
                return self._fail(ev, INVALID, "KL-3", **base)
        elif pages is not None:
            if not _seq(pages) or len(pages) != a.num_pages or not pages:
                return self._fail(ev, INVALID, "KL-4", **base)
            if any(not _uint(p) or p >= npages for p in pages):
                return self._fail(ev, INVALID, "KL-4", **base)
            if any(pages[i] >= pages[i + 1] for i in range(len(pages) - 1)):
                return self._fail(ev, INVALID, "KL-4", **base)
            page_list = tuple(int(p) for p in pages)
        elif a.num_pages != 0:
            return self._fail(ev, INVALID, "KL-4", **base)
        aperture_ok = any(self.vidmm.segments[s - 1].is_aperture for s in alloc.supported)
        aperture_only = all(self.vidmm.segments[s - 1].is_aperture for s in alloc.supported)
        if flags & (LF.IgnoreSync | LF.IgnoreReadSync) and (alloc.swizzled or not aperture_ok):
            return self._fail(ev, INVALID, "KL-15", **base)
        if flags & LF.AcquireAperture:
            if aperture_only:
                return self._fail(ev, INVALID, "KL-17", **base)
            if any(not rec.swizzle_range for rec in inst.locks):
                return self._fail(ev, INVALID, "KL-16", **base)
        if alloc.primary and alloc.use_alternate_va != bool(flags & LF.UseAlternateVA):
            return self._fail(ev, INVALID, "KL-19", **base)
        if not flags & LF.LockEntire and page_list is None:
            return self._fail(ev, S.STATUS_GRAPHICS_CANT_LOCK_MEMORY, "LCB-11", **base)

        renamed = False
        discard = bool(flags & LF.Discard) and not (alloc.pinned or alloc.existing_sysmem)  # KL-18
        if discard:
            st, inst, renamed = await self._discard(dev, inst, flags, base)
            if st != SUCCESS:
                return st
            base["allocation"] = inst.handle
        if inst.exclusive_lock is not None:
            return self._fail(ev, S.STATUS_GRAPHICS_ALLOCATION_BUSY, "KL-14", **base)
        if inst.pending_references >= self.config.max_pending_references:
            return self._fail(ev, S.STATUS_GRAPHICS_TOO_MANY_REFERENCES, "Q3", **base)
        if not discard:
            honour_ignore = bool(flags & LF.IgnoreSync) and bool(flags & LF.DonotWait)
            if not honour_ignore:
                writes_only = bool(flags & LF.IgnoreReadSync)
                if inst.busy(writes_only):
                    if flags & LF.DonotWait and "donotwait-waits" not in self.config.bugs:
                        self._bump("busy_failures")
                        return self._fail(ev, S.STATUS_GRAPHICS_ALLOCATION_BUSY, "KL-21", **base)
                    st = await self._wait_idle(dev, inst, writes_only, base)
                    if st != SUCCESS:
                        return st
                    if inst.exclusive_lock is not None:
                        return self._fail(ev, S.STATUS_GRAPHICS_ALLOCATION_BUSY, "KL-14", **base)
        st, has_range = self._prepare_cpu_access(inst, flags, a.private_driver_data)
        if st != SUCCESS:
            rule = {
                S.STATUS_GRAPHICS_CANT_EVICT_PINNED_ALLOCATION: "KL-22",
                S.STATUS_GRAPHICS_UNSWIZZLING_APERTURE_UNAVAILABLE: "KL-20",
            }.get(st, "SEG-10")
            return self._fail(ev, st, rule, **base)
        offset = 0 if page_list is None else page_list[0] * ps
        ptr = CpuPointer(
            inst,
            offset,
            alloc.size - offset,
            None if page_list is None else frozenset(page_list),
            ps,
            read_only=bool(flags & LF.ReadOnly),
        )
        exclusive = has_range or bool(flags & LF.UseAlternateVA)
        inst.locks.append(LockRecord(ptr, "lock", exclusive=exclusive, swizzle_range=has_range))
        self._pointers.append(ptr)
        self.vidmm.touch(inst)
        self._bump("locks")
        a.data = ptr
        a.allocation = inst.handle
        klog(
            ev,
            **base,
            instance=inst.index,
            renamed=renamed,
            pages=list(page_list) if page_list is not None else None,
            segment="system" if inst.segment is None else inst.segment.desc.name,
            swizzle_range=has_range,
            **code_fields(SUCCESS),
        )
        return SUCCESS

    async def _wait_idle(
        self, dev: Device, inst: Instance, writes_only: bool, base: dict[str, Any]
    ) -> NTSTATUS:
        """Block on the fence condition until ``inst`` is idle (KL-21 without DonotWait); wakes
        with STATUS_DEVICE_REMOVED if the device is removed meanwhile (Q2)."""
        assert self.vidsch.cond is not None
        fence = inst.last_fence(writes_only)
        self._bump("lock_waits")
        klog("kmd.lock.wait", **base, fence=fence)
        await self.vidsch.cond.wait_for(
            lambda: (
                not inst.busy(writes_only)
                or dev.removed is not None
                or dev.destroyed
                or inst.freed
                or inst.retired
            ),
            f"fence {fence} on {self.name}.gpu",
        )
        if dev.removed is not None:
            return self._fail("kmd.lock", REMOVED, "TDR-12", **base)
        if dev.destroyed or inst.freed or inst.alloc.destroyed:
            return self._fail("kmd.lock", INVALID, "KL-2", **base)
        if inst.retired:
            return self._fail("kmd.lock", INVALID, "KL-11", **base)
        return SUCCESS

    async def _discard(
        self, dev: Device, inst: Instance, flags: int, base: dict[str, Any]
    ) -> tuple[NTSTATUS, Instance, bool]:
        """Discard (LCB-5, LCB-6, KL-7, KL-8, Q-17): a new instance unless NoExistingReference
        lets VidMm reuse the idle current one. Rename failure → ALLOCATION_BUSY."""
        alloc = inst.alloc
        limit = self.config.max_rename_instances
        while True:
            cur = alloc.current
            assert cur is not None
            if flags & LF.NoExistingReference and not cur.busy():
                return SUCCESS, cur, False  # reuse any instance, even the current one (LCB-6)
            if len(alloc.instances) < limit:
                new = self._new_instance(alloc)
                if self.vidmm.place_new(new):
                    self._bump("renames")
                    klog(
                        "kmd.rename",
                        device=dev.handle,
                        allocation=alloc.handle,
                        old=cur.handle,
                        new=new.handle,
                        index=new.index,
                        live=len(alloc.instances),
                        segment="system" if new.segment is None else new.segment.desc.name,
                    )
                    return SUCCESS, new, True
                # memory pressure: undo
                alloc.instances.remove(new)
                alloc.current = cur
                self.handles.close(new.handle)
                why = "no memory for a new instance"
            else:
                why = f"{limit} instances live"
            if not flags & LF.NoExistingReference:
                self._bump("rename_failures")
                self._bump("busy_failures")
                st = self._fail(
                    "kmd.lock", S.STATUS_GRAPHICS_ALLOCATION_BUSY, "LCB-6", **base, why=why
                )
                return st, inst, False
            # NoExistingReference: stall until the current instance is idle or an old one frees
            assert self.vidsch.cond is not None
            n = len(alloc.instances)
            self._bump("lock_waits")
            klog("kmd.lock.wait", **base, fence=cur.last_fence(), why=why)
            await self.vidsch.cond.wait_for(
                lambda cur=cur, n=n: (
                    not cur.busy()
                    or len(alloc.instances) < n
                    or dev.removed is not None
                    or alloc.destroyed
                    or dev.destroyed
                ),
                f"fence {cur.last_fence()} on {self.name}.gpu",
            )
            if dev.removed is not None:
                return self._fail("kmd.lock", REMOVED, "TDR-12", **base), inst, False
            if alloc.destroyed or dev.destroyed:
                return self._fail("kmd.lock", INVALID, "KL-2", **base), inst, False

    def _prepare_cpu_access(
        self, inst: Instance, flags: int, private_driver_data: int
    ) -> tuple[NTSTATUS, bool]:
        """Make the instance CPU-accessible (SEG-10, SW-2, KL-20, KL-22). Returns the status and
        whether a swizzling range is held."""
        alloc = inst.alloc
        seg = inst.segment
        needs_unswizzle = alloc.swizzled and seg is not None
        needs_move = seg is not None and not seg.cpu_visible
        wants_range = needs_unswizzle or flags & LF.AcquireAperture
        if wants_range and self.vidmm.free_swizzle_ranges > 0:
            arg = DXGKARG_ACQUIRESWIZZLINGRANGE(
                h_allocation=alloc.private, private_driver_data=private_driver_data
            )
            st = self.miniport.dxgk_ddi_acquire_swizzling_range(self.h_adapter, arg)
            if NT_SUCCESS(st):
                self.vidmm.free_swizzle_ranges -= 1
                return SUCCESS, True
        if not (needs_unswizzle or needs_move):
            return SUCCESS, False
        if alloc.pinned:
            return S.STATUS_GRAPHICS_CANT_EVICT_PINNED_ALLOCATION, False
        if flags & LF.DonotEvict:
            return S.STATUS_GRAPHICS_UNSWIZZLING_APERTURE_UNAVAILABLE, False
        if not alloc.swizzled:
            visible = [s for s in self.vidmm.candidates(alloc) if s.cpu_visible]
            if self.vidmm.place(inst, visible, set(), "relocate for CPU access"):
                return SUCCESS, False
        if self.vidmm.evict_to_system(inst, "evict for CPU access"):
            return SUCCESS, False
        return S.STATUS_NO_MEMORY, False

    # ---- lock2 ---------------------------------------------------------------------------------

    async def dxgk_lock2(self, a: D3DKMT_LOCK2) -> NTSTATUS:
        """D3DKMTLock2 (KL2-1…KL2-6): whole allocation, no flags, always waits; maps the instance
        where it is (KL2-3), so it never evicts."""
        ev = "kmd.lock2"
        dev = self._device(a.device)
        if dev is None:
            return self._fail(ev, INVALID, "KL-2", device=_h(a.device))
        if dev.removed:
            return self._fail(ev, REMOVED, "KL2-5", device=dev.handle)
        inst = self._instance(a.allocation, dev)
        if inst is None:
            return self._fail(ev, INVALID, "KL-2", device=dev.handle, allocation=_h(a.allocation))
        base = {"device": dev.handle, "allocation": inst.handle, "flags": _flags_repr(a.flags)}
        rule = validate_lock2_flags(a.flags)
        if rule is not None:
            return self._fail(ev, INVALID, rule, **base)
        if inst.retired:
            return self._fail(ev, INVALID, "KL-11", **base)
        if not inst.alloc.cpu_visible:
            return self._fail(ev, INVALID, "KL-12", **base)
        if inst.alloc.primary and inst.alloc.use_alternate_va:
            return self._fail(ev, INVALID, "KL-19", **base)
        if inst.exclusive_lock is not None:
            return self._fail(ev, S.STATUS_GRAPHICS_ALLOCATION_BUSY, "KL-14", **base)
        if inst.pending_references >= self.config.max_pending_references:
            return self._fail(ev, S.STATUS_GRAPHICS_TOO_MANY_REFERENCES, "Q3", **base)
        if inst.busy():
            st = await self._wait_idle(dev, inst, False, base)
            if st != SUCCESS:
                return st
            if inst.exclusive_lock is not None:
                return self._fail(ev, S.STATUS_GRAPHICS_ALLOCATION_BUSY, "KL-14", **base)
        ptr = CpuPointer(inst, 0, inst.alloc.size, None, self.config.page_size, read_only=False)
        inst.locks.append(LockRecord(ptr, "lock2", exclusive=False, swizzle_range=False))
        self._pointers.append(ptr)
        self._bump("locks")
        a.data = ptr
        klog(ev, **base, instance=inst.index, **code_fields(SUCCESS))
        return SUCCESS

    # ---- unlock --------------------------------------------------------------------------------

    def _unlock_many(self, ev: str, device: object, handles: object, via: str) -> NTSTATUS:
        dev = self._device(device)
        if dev is None:
            return self._fail(ev, INVALID, "KU-2", device=_h(device))
        if not _seq(handles) or not handles:
            return self._fail(ev, INVALID, "KU-1", device=dev.handle)
        wanted: dict[int, int] = {}
        insts: list[Instance] = []
        for h in handles:  # type: ignore[attr-defined]
            inst = self._instance(h, dev)
            if inst is None:
                return self._fail(ev, INVALID, "KU-2", device=dev.handle, allocation=_h(h))
            wanted[inst.handle] = wanted.get(inst.handle, 0) + 1
            held = sum(1 for r in inst.locks if r.via == via)
            if held < wanted[inst.handle]:
                rule = "KL2-6" if inst.locks else "KU-3"
                return self._fail(ev, INVALID, rule, device=dev.handle, allocation=inst.handle)
            insts.append(inst)
        for inst in insts:
            idx = max(i for i, r in enumerate(inst.locks) if r.via == via)  # LIFO (Q5)
            rec = inst.locks.pop(idx)
            self._release_range(inst, rec)
            rec.pointer.state = "unlocked"
            self._bump("unlocks")
            klog(
                ev,
                device=dev.handle,
                allocation=inst.handle,
                instance=inst.index,
                remaining=len(inst.locks),
                **code_fields(SUCCESS),
            )
            self._maybe_free(inst)
        return SUCCESS

    def dxgk_unlock(self, a: D3DKMT_UNLOCK) -> NTSTATUS:
        """D3DKMTUnlock (KU-1…KU-5): never waits; SUCCESS after removal too (Q1)."""
        hs = a.allocations
        if a.num_allocations is not None and (
            not _uint(a.num_allocations) or not _seq(hs) or a.num_allocations != len(hs)
        ):
            return self._fail("kmd.unlock", INVALID, "KU-1", device=_h(a.device))
        return self._unlock_many("kmd.unlock", a.device, hs, "lock")

    def dxgk_unlock2(self, a: D3DKMT_UNLOCK2) -> NTSTATUS:
        """D3DKMTUnlock2 (KU-6, KL2-6)."""
        return self._unlock_many("kmd.unlock2", a.device, [a.allocation], "lock2")

    # ---- render --------------------------------------------------------------------------------

    def dxgk_render(self, a: D3DKMT_RENDER) -> NTSTATUS:
        """D3DKMTRender (RD-*, RCB-5/6, LCB-9, SCH-1…SCH-5; docs/kmd.md §4.4)."""
        ev = "kmd.render"
        ctx = self.handles.get(a.context, HandleType.CONTEXT)
        if ctx is None or ctx.destroyed or ctx.device.destroyed:
            return self._fail(ev, INVALID, "RCB-4", context=_h(a.context))
        dev = ctx.device
        base = {"device": dev.handle, "context": ctx.handle}
        if dev.removed:
            return self._fail(ev, REMOVED, "TDR-10", **base)
        if not _seq(a.commands) or not _seq(a.allocation_list):
            return self._fail(ev, INVALID, "RCB-1", **base)
        if len(a.allocation_list) > self.config.max_allocation_list:
            return self._fail(ev, INVALID, "RCB-1", **base)
        slots: list[Instance | None] = []
        writes: list[bool] = []
        for entry in a.allocation_list:
            if not isinstance(entry, D3DDDI_ALLOCATIONLIST):
                return self._fail(ev, INVALID, "RD-6", **base)
            if not isinstance(entry.write_operation, bool):
                return self._fail(ev, INVALID, "RD-6", **base)
            if _uint(entry.allocation) and entry.allocation == 0:
                slots.append(None)  # RD-9
                writes.append(False)
                continue
            inst = self._instance(entry.allocation, dev)
            if inst is None:
                return self._fail(ev, INVALID, "RD-6", **base, allocation=_h(entry.allocation))
            if inst in slots:
                return self._fail(ev, INVALID, "RD-6", **base, allocation=inst.handle)
            if inst.retired:
                return self._fail(
                    ev,
                    S.STATUS_GRAPHICS_INVALID_ALLOCATION_INSTANCE,
                    "LCB-9",
                    **base,
                    allocation=inst.handle,
                )
            slots.append(inst)
            writes.append(entry.write_operation)
        darg = DXGKARG_RENDER(
            commands=a.commands,
            command_length=a.command_length,
            allocation_list=[
                DXGK_ALLOCATIONLIST(
                    h_device_specific_allocation=None if i is None else i.alloc.private,
                    write_operation=w,
                    segment_id=0 if i is None or i.segment is None else i.segment.id,
                )
                for i, w in zip(slots, writes)
            ],
        )
        st = self.miniport.dxgk_ddi_render(ctx, darg)
        if not NT_SUCCESS(st):
            return self._fail(ev, _nt(st), "RD-2", **base)
        # LCB-9 / RCB-6: instance order over the patch list
        newest: dict[int, int] = {}
        for slot in darg.patch_locations:
            inst = slots[slot]
            assert inst is not None
            key = id(inst.alloc)
            if inst.index < max(newest.get(key, -1), inst.alloc.newest_referenced):
                return self._fail(
                    ev,
                    S.STATUS_GRAPHICS_INVALID_ALLOCATION_INSTANCE,
                    "LCB-9",
                    **base,
                    allocation=inst.handle,
                )
            newest[key] = max(newest.get(key, -1), inst.index)
        # RCB-5 / LA-15 / LCB-4: locked allocations must be (or move to) an aperture segment
        protect = {i.handle for i in slots if i is not None}
        for inst in slots:
            if inst is None or not inst.locks:
                continue
            if any(r.swizzle_range for r in inst.locks) or not self.vidmm.make_resident(
                inst, protect, aperture_only=True
            ):
                return self._fail(
                    ev,
                    S.STATUS_GRAPHICS_CANT_RENDER_LOCKED_ALLOCATION,
                    "RCB-5",
                    **base,
                    allocation=inst.handle,
                )
        # SCH-2: page every listed instance in
        for inst in slots:
            if (
                inst is not None
                and not inst.locks
                and not self.vidmm.make_resident(inst, protect, aperture_only=False)
            ):
                return self._fail(
                    ev,
                    S.STATUS_GRAPHICS_NO_VIDEO_MEMORY,
                    "SCH-2",
                    **base,
                    allocation=inst.handle,
                )
        dma = DmaBuffer(dev.handle, ctx.handle, darg.dma_buffer, slots, writes, vthreads.now())
        fence = self.vidsch.submit(dma, ctx.queue)
        # retire instances older than the newest one referenced (LCB-9)
        for inst in slots:
            if inst is None:
                continue
            alloc = inst.alloc
            idx = newest.get(id(alloc))
            if idx is None or idx <= alloc.newest_referenced:
                continue
            alloc.newest_referenced = idx
            for old in list(alloc.instances):
                if old.index < idx and not old.retired:
                    old.retired = True
                    klog("kmd.instance.retire", allocation=alloc.handle, instance=old.handle)
                    self._maybe_free(old)
        a.fence = fence
        a.queued_buffer_count = len(ctx.queue)
        klog(
            ev,
            **base,
            fence=fence,
            commands=len(a.commands),
            draws=[c[1] for c in darg.dma_buffer if c[0] == "draw"],
            allocations=[0 if i is None else i.handle for i in slots],
            queued=len(ctx.queue),
            **code_fields(SUCCESS),
        )
        return SUCCESS

    def _submit_to_miniport(self, dma: DmaBuffer) -> None:
        st = self.miniport.dxgk_ddi_submit_command(
            self.h_adapter, DXGKARG_SUBMITCOMMAND(dma_buffer=dma, submission_fence_id=dma.fence)
        )
        if not NT_SUCCESS(st):  # pragma: no cover - the reference miniport always accepts
            kviolation("SCH-1", f"DxgkDdiSubmitCommand failed for fence {dma.fence}")

    # ---- TDR and removal -----------------------------------------------------------------------

    def _on_timeout(self, dma: DmaBuffer) -> None:
        now = vthreads.now()
        window = self.config.tdr_window_ns
        self._tdr_times = [t for t in self._tdr_times if now - t < window] + [now]
        self._bump("tdrs")
        klog(
            "kmd.tdr",
            fence=dma.fence,
            device=dma.device,
            context=dma.context,
            started=dma.started_ns,
            timeout=self.config.tdr_timeout_ns,
            count=len(self._tdr_times),
        )
        self._reset_adapter(f"TDR: fence {dma.fence} ran past {self.config.tdr_timeout_ns} ns")
        if len(self._tdr_times) >= self.config.tdr_limit and not self.stopped:
            self.stopped = True
            kviolation(
                "TDR-2",
                f"{len(self._tdr_times)} TDRs within {window} ns: the adapter is stopped",
                count=len(self._tdr_times),
            )

    def _reset_adapter(self, reason: str) -> None:
        """ResetFromTimeout → abort DMA → purge video memory → release apertures → devices
        removed → RestartFromTimeout, all in one step (TDR-3…TDR-10, Q14)."""
        self._bump("resets")
        self.miniport.dxgk_ddi_reset_from_timeout(self.h_adapter)
        self.gpu.reset()
        self.vidsch.abort_all()
        for inst in list(self.vidmm.instances.values()):
            seg = inst.segment
            for rec in inst.locks:
                self._release_range(inst, rec)
                if rec.pointer.state == "mapped":
                    rec.pointer.state = "detached"  # Q1, TDR-4
            if seg is not None:
                if not seg.is_aperture and inst.backing is not None:
                    inst.backing[:] = bytes(len(inst.backing))  # TDR-5: content lost
                    inst.content_lost = True
                self.vidmm.move(inst, None, "TDR purge")  # TDR-5, TDR-6, TDR-9 (pinned too)
        for dev in self.devices.values():
            if dev.removed is None:
                self._mark_removed(dev, reason)
        for inst in list(self.vidmm.instances.values()):
            self._maybe_free(inst)
        self.miniport.dxgk_ddi_restart_from_timeout(self.h_adapter)
        self.vidsch.notify()

    def _mark_removed(self, dev: Device, reason: str) -> None:
        dev.removed = reason
        for alloc in dev.allocations.values():
            for inst in alloc.instances:
                for rec in inst.locks:
                    if rec.pointer.state == "mapped":
                        rec.pointer.state = "detached"
        klog("kmd.device.removed", device=dev.handle, reason=reason)

    def inject_removal(self, device: int | None = None, reason: str = "injected") -> bool:
        """Remove ``device`` now (or, with None, reset the whole adapter like a PnP stop: every
        device removed, DMA aborted, video memory purged). Waiters wake with
        STATUS_DEVICE_REMOVED. Returns False if ``device`` is not a live device."""
        self.start()
        if device is None:
            klog("kmd.inject.removal", device=None, reason=reason)
            self._reset_adapter(reason)
            return True
        dev = self._device(device)
        if dev is None:
            return False
        klog("kmd.inject.removal", device=dev.handle, reason=reason)
        if dev.removed is None:
            self._mark_removed(dev, reason)
        self.vidsch.notify()
        return True

    def inject_removal_at_call(self, n: int, device: int | None = None) -> None:
        """Arm a removal that fires on entry of the ``n``-th thunk call from now (n ≥ 1)."""
        if n < 1:
            raise ValueError("n must be >= 1")
        self._removal_at_call = (self.thunk_calls + n, device)

    def inject_hang(self, fence: int | None = None) -> None:
        """The next DMA buffer submitted (or the one with ``fence``) hangs on the GPU; the
        watchdog declares a TDR after ``tdr_timeout_ns``."""
        if fence is None:
            self.gpu.hang_next = True
        else:
            self.gpu.hang_fence = fence

    # ---- statistics and invariants --------------------------------------------------------------

    def statistics(self) -> KernelStatistics:
        c = self._counts
        recs = self.vidsch.records
        return KernelStatistics(
            thunk_calls=self.thunk_calls,
            adapters_open=len(self.handles.live(HandleType.ADAPTER)),
            devices=len(self.devices),
            contexts=len(self.handles.live(HandleType.CONTEXT)),
            resources=len(self.handles.live(HandleType.RESOURCE)),
            allocations=sum(len(d.allocations) for d in self.devices.values()),
            live_instances=len(self.vidmm.instances),
            renames=c.get("renames", 0),
            rename_failures=c.get("rename_failures", 0),
            locks=c.get("locks", 0),
            unlocks=c.get("unlocks", 0),
            lock_waits=c.get("lock_waits", 0),
            busy_failures=c.get("busy_failures", 0),
            submitted_fence=self.vidsch.submitted_fence,
            completed_fence=self.vidsch.completed_fence,
            dma_completed=sum(1 for r in recs if r.status == "completed"),
            dma_aborted=sum(1 for r in recs if r.status == "aborted"),
            evictions=self.vidmm.evictions,
            page_ins=self.vidmm.page_ins,
            tdrs=c.get("tdrs", 0),
            removed_devices=sum(1 for d in self.devices.values() if d.removed),
            system_memory_used=self.vidmm.system_used,
            segment_usage=tuple((s.desc.name, s.used, s.desc.size) for s in self.vidmm.segments),
            ddi_calls=tuple(sorted(self.miniport.ddi_calls.items())),
        )

    def check_invariants(self) -> list[str]:
        """The kernel's own invariants; an empty list when they hold."""
        problems = self.vidmm.check()
        vs = self.vidsch
        if vs.completed_fence > vs.submitted_fence:
            problems.append(
                f"completed fence {vs.completed_fence} > submitted {vs.submitted_fence}"
            )
        hist = vs.fence_history
        if any(hist[i] >= hist[i + 1] for i in range(len(hist) - 1)):
            problems.append(f"fences not monotonic: {hist}")
        for inst in self.vidmm.instances.values():
            for f in inst.pending:
                if f <= vs.completed_fence:
                    problems.append(f"{inst!r} still references completed fence {f}")
            for rec in inst.locks:
                if rec.pointer.state not in ("mapped", "detached"):
                    problems.append(f"{inst!r} holds a lock whose pointer is {rec.pointer.state}")
        for dma in vs.inflight:
            for inst in dma.slots:
                if inst is not None and inst.freed:
                    problems.append(f"in-flight fence {dma.fence} references freed {inst!r}")
        for ptr in self._pointers:
            if ptr._inst.freed and ptr.state in ("mapped", "detached"):
                problems.append(f"{ptr!r} still maps a freed instance")
        for dev in self.devices.values():
            for alloc in dev.allocations.values():
                if not alloc.instances or alloc.current not in alloc.instances:
                    problems.append(f"{alloc!r} has no current instance")
        if self.vidmm.free_swizzle_ranges > self.config.swizzling_apertures:
            problems.append("more free swizzle ranges than exist")
        return problems


def _h(x: object) -> Any:
    """A handle for a trace field: the int, or the repr of garbage."""
    return int(x) if is_handle_value(x) else repr(x)[:40]  # type: ignore[call-overload]


def _flags_repr(x: object) -> str:
    v = as_flag_value(x)
    return repr(x)[:40] if v is None else f"0x{v:X}"


def _nt(st: int) -> NTSTATUS:
    try:
        return NTSTATUS(int(st) & 0xFFFFFFFF)
    except ValueError:
        kviolation("RD-2", f"miniport returned an unknown status 0x{int(st) & 0xFFFFFFFF:08X}")
        return INVALID
