"""Allocations and resources: the kernel side of D3DKMTCreateAllocation (pfnAllocateCb) and
D3DKMTDestroyAllocation (pfnDeallocateCb), and freeing what a device owns.

Creation runs in four steps, each complete before the next starts: check every caller argument
(nothing is created on a bad one), ask the miniport (DxgkDdiCreateAllocation, AC-1), check every
answer (a bad one is the miniport's fault: a kernel violation, CA-*), then place every first
instance (all or nothing, AC-12). Host memory for an instance is allocated only when the CPU or
the GPU first touches it, so a request VidMm refuses costs nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._core import (
    INVALID,
    REMOVED,
    SUCCESS,
    Device,
    KernelCore,
    Refusal,
    handle_field,
    is_seq,
    is_uint,
    miniport_status,
)
from ._handles import HandleType
from ._trace import code_fields, klog, kviolation
from ._vidmm import Allocation, Instance, Resource
from .flags import D3DDDI_ALLOCATIONINFO_FLAGS as AIF
from .flags import (
    D3DDDI_ID_NOTAPPLICABLE,
    validate_allocationinfo_flags,
    validate_dxgk_allocation_flags,
)
from .miniport import DXGK_ALLOCATIONINFO, DXGKARG_CREATEALLOCATION, DXGKARG_DESTROYALLOCATION
from .status import NT_SUCCESS, NTSTATUS
from .structs import D3DDDI_ALLOCATIONINFO, D3DKMT_CREATEALLOCATION, D3DKMT_DESTROYALLOCATION

__all__ = ["AllocationMixin"]

EV_CREATE = "kmd.alloc.create"
EV_DESTROY = "kmd.alloc.destroy"


class AllocationMixin(KernelCore):
    """pfnAllocateCb / pfnDeallocateCb (AC-*, CA-*, DA-*; docs/kmd.md §4.1)."""

    # ---- create ----------------------------------------------------------------------------

    def dxgk_create_allocation(self, a: D3DKMT_CREATEALLOCATION) -> NTSTATUS:
        """The kernel half of pfnAllocateCb (AC-1…AC-13; CA-1, CA-2, CA-3,
        CA-4, CA-6, CA-7, CA-8, CA-9, CA-10, CA-11, CA-12, CA-13, CA-14, CA-15, CA-16, CA-17;
        docs/kmd.md §4.1). Every argument is checked before the miniport is called; the
        miniport's answers are all checked before anything is placed; placement is all or
        nothing (AC-12)."""
        dev = self._device(a.device)
        if dev is None:
            return self._fail(EV_CREATE, INVALID, "KL-2", device=handle_field(a.device))
        if dev.removed:
            return self._fail(EV_CREATE, REMOVED, "AC-10", device=dev.handle)  # no miniport call
        refused = self._check_create_args(dev, a)
        if isinstance(refused, tuple):
            st, rule, extra = refused
            return self._fail(EV_CREATE, st, rule, device=dev.handle, **extra)
        existing = refused
        dinfos, darg = self._describe_for_miniport(a, existing)
        st = self.miniport.dxgk_ddi_create_allocation(self.h_adapter, darg)
        if not NT_SUCCESS(st):
            return self._fail(EV_CREATE, miniport_status(st), "CA-2", device=dev.handle)
        built = self._build_allocations(dev, a.allocation_info, dinfos)
        if isinstance(built, str):
            kviolation(built, f"miniport answered DxgkDdiCreateAllocation badly ({built})")
            self._miniport_destroy(dinfos, darg, a.create_resource)
            return self._fail(EV_CREATE, INVALID, built, device=dev.handle)
        placed = self._place_first_instances([alloc for alloc, _ in built])
        if isinstance(placed, Allocation):
            self._miniport_destroy(dinfos, darg, a.create_resource)
            return self._fail(
                EV_CREATE,
                NTSTATUS.STATUS_GRAPHICS_NO_VIDEO_MEMORY,
                "AC-11",
                device=dev.handle,
                size=placed.size,
            )
        self._publish(dev, a, existing, darg, built, placed)
        return SUCCESS

    def _check_create_args(
        self, dev: Device, a: D3DKMT_CREATEALLOCATION
    ) -> Resource | Refusal | None:
        """The call-level arguments (AC-2, AC-3, CA-4), then every allocation's: the existing
        resource to add to (or None), or the refusal."""
        infos = a.allocation_info
        if not is_seq(infos) or not infos or len(infos) > self.config.max_allocations_per_call:
            return INVALID, "AC-2", {}
        if a.num_allocations is not None and (
            not is_uint(a.num_allocations) or a.num_allocations != len(infos)
        ):
            return INVALID, "AC-2", {}
        if not isinstance(a.create_resource, bool):
            return INVALID, "AC-3", {}
        existing: Resource | None = None
        if a.create_resource:
            if a.resource != 0:
                return INVALID, "CA-4", {}
        elif a.resource != 0:
            existing = self.handles.get(a.resource, HandleType.RESOURCE)
            if existing is None or existing.device is not dev or existing.destroyed:
                return INVALID, "AC-3", {"resource": handle_field(a.resource)}
        seen_mem: list[int] = []
        for info in infos:
            rule = self._check_allocation_info(info, seen_mem)
            if rule is not None:
                return INVALID, rule, {}
        return existing

    def _check_allocation_info(self, info: object, seen_mem: list[int]) -> str | None:
        """One D3DDDI_ALLOCATIONINFO (AC-7, AC-8, AC-9, CA-16): the broken rule, or None.
        ``seen_mem`` collects the caller buffers already used in this call (one each)."""
        if not isinstance(info, D3DDDI_ALLOCATIONINFO):
            return "AC-2"
        rule = validate_allocationinfo_flags(info.flags)
        if rule is not None:
            return rule
        primary = bool(info.flags & AIF.Primary)
        if not is_uint(info.vidpn_source_id):
            return "AC-7"
        if not primary and info.vidpn_source_id != D3DDDI_ID_NOTAPPLICABLE:
            return "AC-7"
        if primary and info.vidpn_source_id >= self.config.vidpn_sources:
            return "AC-7"
        mem = info.system_mem
        if mem is not None:
            if not isinstance(mem, bytearray) or not mem or len(mem) % self.config.page_size:
                return "CA-16"
            if primary:
                return "AC-9"
            if id(mem) in seen_mem:
                return "CA-16"
            seen_mem.append(id(mem))
        return None

    def _describe_for_miniport(
        self, a: D3DKMT_CREATEALLOCATION, existing: Resource | None
    ) -> tuple[list[DXGK_ALLOCATIONINFO], DXGKARG_CREATEALLOCATION]:
        """The DxgkDdiCreateAllocation arguments: the miniport interprets the private data
        (AC-1, CA-2)."""
        dinfos = [
            DXGK_ALLOCATIONINFO(
                private_driver_data=info.private_driver_data,
                primary=bool(info.flags & AIF.Primary),
                vidpn_source_id=info.vidpn_source_id,
                existing_sys_mem_size=0 if info.system_mem is None else len(info.system_mem),
            )
            for info in a.allocation_info
        ]
        darg = DXGKARG_CREATEALLOCATION(
            private_driver_data=a.private_driver_data,
            allocation_info=dinfos,
            h_resource=None if existing is None else existing.private,
            resource=a.create_resource or existing is not None,
        )
        return dinfos, darg

    def _build_allocations(
        self,
        dev: Device,
        infos: Sequence[D3DDDI_ALLOCATIONINFO],
        dinfos: Sequence[DXGK_ALLOCATIONINFO],
    ) -> list[tuple[Allocation, D3DDDI_ALLOCATIONINFO]] | str:
        """Kernel allocations from the miniport's answers, or the first rule an answer breaks
        (nothing is kept then)."""
        nseg = len(self.vidmm.segments)
        built: list[tuple[Allocation, D3DDDI_ALLOCATIONINFO]] = []
        for info, d in zip(infos, dinfos):
            rule = self._check_miniport_answer(d, info, nseg)
            if rule is not None:
                return rule
            supported = tuple(i + 1 for i in range(nseg) if d.supported_write_segment_set >> i & 1)
            desc = info.private_driver_data
            size = (
                len(info.system_mem)
                if info.system_mem is not None
                else self.vidmm.round_size(d.size)
            )
            alloc = Allocation(
                device=dev,
                resource=None,
                private=d.h_allocation,
                size=size,
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
        return built

    def _check_miniport_answer(
        self, d: DXGK_ALLOCATIONINFO, info: D3DDDI_ALLOCATIONINFO, nseg: int
    ) -> str | None:
        """One DxgkDdiCreateAllocation answer (CA-3, CA-6…CA-14, CA-16, SEG-8): the broken rule,
        or None."""
        if d.h_allocation is None:
            return "CA-3"
        if not is_uint(d.size) or d.size == 0:
            return "CA-6"
        if info.system_mem is not None and d.size > len(info.system_mem):
            return "CA-16"
        full = (1 << nseg) - 1
        sup = d.supported_write_segment_set
        if not is_uint(sup) or sup == 0 or sup & ~full:
            return "CA-7"
        prefs = d.preferred_segments
        if not is_seq(prefs) or any(
            not is_uint(p) or not 1 <= p <= nseg or not sup >> (p - 1) & 1 for p in prefs
        ):
            return "CA-7"
        aperture_mask = sum(1 << i for i, s in enumerate(self.vidmm.segments) if s.is_aperture)
        if not is_uint(d.eviction_segment_set) or d.eviction_segment_set & ~aperture_mask:
            return "CA-8"
        if not is_uint(d.allocation_priority) or d.allocation_priority == 0:
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

    def _place_first_instances(self, allocs: Sequence[Allocation]) -> list[Instance] | Allocation:
        """VidMm places every first instance (AC-11), all or nothing (AC-12): the instances, or
        the allocation that could not be placed (every handle is closed again then)."""
        placed: list[Instance] = []
        for alloc in allocs:
            inst = self._new_instance(alloc)
            if not self.vidmm.place_new(inst):
                for p in [*placed, inst]:
                    self.handles.close(p.handle)
                    if p.handle in self.vidmm.instances:
                        self.vidmm.free_instance(p)
                return alloc
            placed.append(inst)
        return placed

    def _publish(
        self,
        dev: Device,
        a: D3DKMT_CREATEALLOCATION,
        existing: Resource | None,
        darg: DXGKARG_CREATEALLOCATION,
        built: Sequence[tuple[Allocation, D3DDDI_ALLOCATIONINFO]],
        placed: Sequence[Instance],
    ) -> None:
        """Give the created allocations (and resource) to the device and the caller (AC-2,
        AC-3, AC-5)."""
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
                EV_CREATE,
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

    def _miniport_destroy(
        self, dinfos: Sequence[DXGK_ALLOCATIONINFO], darg: DXGKARG_CREATEALLOCATION, res: bool
    ) -> None:
        """Undo a DxgkDdiCreateAllocation whose result the kernel could not use."""
        self.miniport.dxgk_ddi_destroy_allocation(
            self.h_adapter,
            DXGKARG_DESTROYALLOCATION(
                allocations=[d.h_allocation for d in dinfos if d.h_allocation is not None],
                h_resource=darg.h_resource if res else None,
                destroy_resource=res,
            ),
        )

    # ---- destroy ---------------------------------------------------------------------------

    def dxgk_destroy_allocation(self, a: D3DKMT_DESTROYALLOCATION) -> NTSTATUS:
        """The kernel half of pfnDeallocateCb (DA-1…DA-4; Q8: implicit unlock, deferred free).
        Works on a removed device (DA-4). All handles are validated before anything is freed."""
        dev = self._device(a.device)
        if dev is None:
            return self._fail(EV_DESTROY, INVALID, "DA-3", device=handle_field(a.device))
        res: Resource | None = None
        if a.resource != 0:
            res = self.handles.get(a.resource, HandleType.RESOURCE)
            if res is None or res.device is not dev or res.destroyed:
                bad = handle_field(a.resource)
                return self._fail(EV_DESTROY, INVALID, "DA-3", device=dev.handle, resource=bad)
            allocs = list(res.children)
        else:
            listed = self._listed_allocations(dev, a)
            if isinstance(listed, tuple):
                rule, extra = listed
                return self._fail(EV_DESTROY, INVALID, rule, device=dev.handle, **extra)
            allocs = listed
        for alloc in allocs:
            self._destroy_allocation(alloc)
        if res is not None:
            self._destroy_resource(res)
        self.vidsch.notify()
        return SUCCESS

    def _listed_allocations(
        self, dev: Device, a: D3DKMT_DESTROYALLOCATION
    ) -> list[Allocation] | tuple[str, dict[str, Any]]:
        """The allocations of a HandleList (DA-1, DA-3), each once, or the refusal."""
        hs = a.allocations
        if not is_seq(hs) or not hs:
            return "DA-1", {}
        if a.num_allocations is not None and (
            not is_uint(a.num_allocations) or a.num_allocations != len(hs)
        ):
            return "DA-1", {}
        allocs: list[Allocation] = []
        for h in hs:
            inst = self._instance(h, dev)
            if inst is None or inst.alloc in allocs:
                return "DA-3", {"allocation": handle_field(h)}
            allocs.append(inst.alloc)
        return allocs

    def _destroy_allocation(self, alloc: Allocation) -> None:
        """Free ``alloc``: its locks end (pointers ``freed``), idle instances go now, in-flight
        ones when their DMA buffers complete (Q8)."""
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
            EV_DESTROY,
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
