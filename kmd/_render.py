"""Submission: the kernel side of D3DKMTRender (pfnRenderCb).

A render runs in steps, each complete before the next: check the context and the allocation list
(RCB-1, RCB-4, RD-6, RD-9, LCB-9; nothing happens on a bad one), let the miniport validate and
translate the command buffer (DxgkDdiRender, RD-2), check instance order over its patch list
(LCB-9, RCB-6), make every listed instance resident — locked ones only in an aperture (RCB-5,
LA-15, LCB-4; SCH-2) —, submit the DMA buffer with a new fence (SCH-1, SCH-3, SCH-5) and retire
the instances older than the newest one referenced (LCB-9).
"""

from __future__ import annotations

from collections.abc import Sequence

import vthreads

from ._core import (
    INVALID,
    REMOVED,
    SUCCESS,
    Context,
    Device,
    KernelCore,
    Refusal,
    handle_field,
    is_seq,
    is_uint,
    miniport_status,
)
from ._gpu import DmaBuffer
from ._handles import HandleType
from ._trace import code_fields, klog, kviolation, kwants
from ._vidmm import Instance
from .miniport import DXGK_ALLOCATIONLIST, DXGKARG_RENDER, DXGKARG_SUBMITCOMMAND
from .status import NT_SUCCESS, NTSTATUS
from .structs import D3DDDI_ALLOCATIONLIST, D3DKMT_RENDER

__all__ = ["RenderMixin"]

S = NTSTATUS
EV_RENDER = "kmd.render"
WRONG_INSTANCE = S.STATUS_GRAPHICS_INVALID_ALLOCATION_INSTANCE


class RenderMixin(KernelCore):
    """D3DKMTRender and the miniport submission (RD-*, RCB-*, LCB-9, SCH-*; docs/kmd.md §4.4)."""

    def dxgk_render(self, a: D3DKMT_RENDER) -> NTSTATUS:
        """D3DKMTRender (RD-*, RCB-5/6, LCB-9, SCH-1…SCH-5; docs/kmd.md §4.4). ``a.fence`` and
        ``a.queued_buffer_count`` are written only on success."""
        ctx = self.handles.get(a.context, HandleType.CONTEXT)
        if ctx is None or ctx.destroyed or ctx.device.destroyed:
            return self._fail(EV_RENDER, INVALID, "RCB-4", context=handle_field(a.context))
        dev = ctx.device
        base = {"device": dev.handle, "context": ctx.handle}
        listed = self._check_render_args(dev, a)
        if not isinstance(listed, list):
            st, rule, extra = listed
            return self._fail(EV_RENDER, st, rule, **base, **extra)
        slots = [inst for inst, _ in listed]
        writes = [w for _, w in listed]
        darg = self._translate(ctx, a, listed)
        if isinstance(darg, NTSTATUS):
            return self._fail(EV_RENDER, darg, "RD-2", **base)
        newest = self._instance_order(slots, darg.patch_locations)
        if isinstance(newest, Instance):
            return self._fail(EV_RENDER, WRONG_INSTANCE, "LCB-9", **base, allocation=newest.handle)
        refused = self._make_resident(slots)
        if refused is not None:
            st, rule, extra = refused
            return self._fail(EV_RENDER, st, rule, **base, **extra)
        dma = DmaBuffer(dev.handle, ctx.handle, darg.dma_buffer, slots, writes, vthreads.now())
        fence = self.vidsch.submit(dma, ctx.queue)
        self._retire_older_instances(slots, newest)
        a.fence = fence
        a.queued_buffer_count = len(ctx.queue)
        if kwants(EV_RENDER):
            klog(
                EV_RENDER,
                **base,
                fence=fence,
                commands=len(a.commands),
                draws=[c[1] for c in darg.dma_buffer if c[0] == "draw"],
                allocations=[0 if i is None else i.handle for i in slots],
                queued=len(ctx.queue),
                **code_fields(SUCCESS),
            )
        return SUCCESS

    def _check_render_args(
        self, dev: Device, a: D3DKMT_RENDER
    ) -> list[tuple[Instance | None, bool]] | Refusal:
        """The device state and the allocation list (TDR-10, RCB-1, RD-6, RD-9, LCB-9): one
        ``(instance or None for a NULL slot, write)`` per entry, or the refusal."""
        if dev.removed:
            return REMOVED, "TDR-10", {}
        if not is_seq(a.commands) or not is_seq(a.allocation_list):
            return INVALID, "RCB-1", {}
        if len(a.allocation_list) > self.config.max_allocation_list:
            return INVALID, "RCB-1", {}
        listed: list[tuple[Instance | None, bool]] = []
        for entry in a.allocation_list:
            if not isinstance(entry, D3DDDI_ALLOCATIONLIST):
                return INVALID, "RD-6", {}
            if not isinstance(entry.write_operation, bool):
                return INVALID, "RD-6", {}
            if is_uint(entry.allocation) and entry.allocation == 0:
                listed.append((None, False))  # RD-9
                continue
            inst = self._instance(entry.allocation, dev)
            if inst is None:
                return INVALID, "RD-6", {"allocation": handle_field(entry.allocation)}
            if any(inst is other for other, _ in listed):
                return INVALID, "RD-6", {"allocation": inst.handle}
            if inst.retired:
                return WRONG_INSTANCE, "LCB-9", {"allocation": inst.handle}
            listed.append((inst, entry.write_operation))
        return listed

    def _translate(
        self, ctx: Context, a: D3DKMT_RENDER, listed: Sequence[tuple[Instance | None, bool]]
    ) -> DXGKARG_RENDER | NTSTATUS:
        """DxgkDdiRender: the miniport validates the command buffer and writes the DMA buffer
        and the patch list (RD-2, RD-3, RD-6, RD-8, RD-9), or its failure status."""
        darg = DXGKARG_RENDER(
            commands=a.commands,
            command_length=a.command_length,
            allocation_list=[
                DXGK_ALLOCATIONLIST(
                    h_device_specific_allocation=None if i is None else i.alloc.private,
                    write_operation=w,
                    segment_id=0 if i is None or i.segment is None else i.segment.id,
                )
                for i, w in listed
            ],
        )
        st = self.miniport.dxgk_ddi_render(ctx, darg)
        if not NT_SUCCESS(st):
            return miniport_status(st)
        return darg

    @staticmethod
    def _instance_order(
        slots: Sequence[Instance | None], patch_locations: Sequence[int]
    ) -> dict[int, int] | Instance:
        """LCB-9 / RCB-6 over the patch list: per allocation (by id) the newest instance index
        referenced, or the first instance referenced out of order."""
        newest: dict[int, int] = {}
        for slot in patch_locations:
            inst = slots[slot]
            assert inst is not None
            key = id(inst.alloc)
            if inst.index < max(newest.get(key, -1), inst.alloc.newest_referenced):
                return inst
            newest[key] = max(newest.get(key, -1), inst.index)
        return newest

    def _make_resident(self, slots: Sequence[Instance | None]) -> Refusal | None:
        """Locked instances must be (or move to) an aperture segment (RCB-5, LA-15, LCB-4);
        every other listed instance is paged in before the buffer (SCH-2)."""
        protect = {i.handle for i in slots if i is not None}
        for inst in slots:
            if inst is None or not inst.locks:
                continue
            if any(r.swizzle_range for r in inst.locks) or not self.vidmm.make_resident(
                inst, protect, aperture_only=True
            ):
                locked = S.STATUS_GRAPHICS_CANT_RENDER_LOCKED_ALLOCATION
                return locked, "RCB-5", {"allocation": inst.handle}
        for inst in slots:
            if (
                inst is not None
                and not inst.locks
                and not self.vidmm.make_resident(inst, protect, aperture_only=False)
            ):
                return S.STATUS_GRAPHICS_NO_VIDEO_MEMORY, "SCH-2", {"allocation": inst.handle}
        return None

    def _retire_older_instances(
        self, slots: Sequence[Instance | None], newest: dict[int, int]
    ) -> None:
        """Once an instance is referenced, older ones can't be (LCB-9): retire them."""
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

    def _submit_to_miniport(self, dma: DmaBuffer) -> None:
        """VidSch hands a DMA buffer to DxgkDdiSubmitCommand (SCH-1, SCH-3)."""
        st = self.miniport.dxgk_ddi_submit_command(
            self.h_adapter, DXGKARG_SUBMITCOMMAND(dma_buffer=dma, submission_fence_id=dma.fence)
        )
        if not NT_SUCCESS(st):  # pragma: no cover - the reference miniport always accepts
            kviolation("SCH-1", f"DxgkDdiSubmitCommand failed for fence {dma.fence}")
