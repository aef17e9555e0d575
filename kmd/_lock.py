"""CPU access: the kernel side of D3DKMTLock, D3DKMTLock2, D3DKMTUnlock and D3DKMTUnlock2.

A lock runs in four steps: check every argument against the allocation (KL-2…KL-19, LCB-11;
nothing changes on a bad one), synchronise with the GPU (Discard renames, DonotWait fails, else
wait: KL-7, KL-8, KL-21, LCB-5, LCB-6), make the instance CPU-accessible (an unswizzling
aperture, a move or an eviction: SEG-10, SW-2, KL-20, KL-22) and map it (a ``CpuPointer``).
The order of the checks is docs/kmd.md §4.3.

The seeded kernel bug ``donotwait-waits`` lives here, beside the decision it breaks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._core import (
    INVALID,
    REMOVED,
    SUCCESS,
    Device,
    KernelCore,
    flags_field,
    handle_field,
    is_seq,
    is_uint,
)
from ._hooks import KERNEL_BUG_REGISTRY, KernelHooks
from ._trace import code_fields, klog, kwants
from ._vidmm import CpuPointer, Instance, LockRecord
from .flags import D3DDDICB_LOCKFLAGS, int_masks, validate_lock2_flags, validate_lock_flags
from .miniport import DXGKARG_ACQUIRESWIZZLINGRANGE
from .status import NT_SUCCESS, NTSTATUS
from .structs import D3DKMT_LOCK, D3DKMT_LOCK2, D3DKMT_UNLOCK, D3DKMT_UNLOCK2

__all__ = ["CpuAccessMixin", "DonotWaitWaits", "LockMixin", "LockRequest"]

S = NTSTATUS
EV_LOCK = "kmd.lock"
BUSY = S.STATUS_GRAPHICS_ALLOCATION_BUSY
#: the lock flags as plain ints (bit tests on every lock; see kmd.flags.int_masks)
LF = int_masks(D3DDDICB_LOCKFLAGS)


@KERNEL_BUG_REGISTRY.register(
    "donotwait-waits",
    rules=("KL-21",),
    summary="a DonotWait lock of a busy allocation waits instead of failing with "
    "STATUS_GRAPHICS_ALLOCATION_BUSY (KL-21)",
)
class DonotWaitWaits(KernelHooks):
    """Seeded bug: DonotWait is ignored, so a lock of a busy allocation blocks (KL-21)."""

    def busy_lock_fails_at_once(self, flags: int) -> bool:
        return False


@dataclass(frozen=True)
class LockRequest:
    """A D3DKMT_LOCK whose arguments passed every check: its flags and page list (None for a
    whole-allocation lock)."""

    flags: int
    pages: tuple[int, ...] | None


class CpuAccessMixin(KernelCore):
    """What a lock does to the allocation itself: Discard renames (LCB-5, LCB-6) and making an
    instance CPU-accessible — an unswizzling aperture, a relocation or an eviction (SEG-10,
    SW-2, KL-20, KL-22)."""

    async def _discard(
        self, dev: Device, inst: Instance, flags: int, base: dict[str, Any]
    ) -> tuple[NTSTATUS, Instance, bool]:
        """Discard (LCB-5, LCB-6, KL-7, KL-8, Q-17): a new instance unless NoExistingReference
        lets VidMm reuse the idle current one. Rename failure → ALLOCATION_BUSY."""
        alloc = inst.alloc
        while True:
            cur = alloc.current
            assert cur is not None
            if flags & LF.NoExistingReference and not cur.busy():
                return SUCCESS, cur, False  # reuse any instance, even the current one (LCB-6)
            new, why = self._rename(dev, cur)
            if new is not None:
                return SUCCESS, new, True
            if not flags & LF.NoExistingReference:
                self._bump("rename_failures")
                self._bump("busy_failures")
                return self._fail(EV_LOCK, BUSY, "LCB-6", **base, why=why), inst, False
            st = await self._wait_for_rename_room(dev, cur, base, why)
            if st != SUCCESS:
                return st, inst, False

    def _rename(self, dev: Device, cur: Instance) -> tuple[Instance | None, str]:
        """A new placed current instance of ``cur``'s allocation (LCB-5), or None and why not
        (the instance cap, or no memory: nothing is left behind then)."""
        alloc = cur.alloc
        limit = self.config.max_rename_instances
        if len(alloc.instances) >= limit:
            return None, f"{limit} instances live"
        new = self._new_instance(alloc)
        if not self.vidmm.place_new(new):
            alloc.instances.remove(new)
            alloc.current = cur
            self.handles.close(new.handle)
            return None, "no memory for a new instance"
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
        return new, ""

    def _undo_rename(self, new: Instance, old: Instance) -> None:
        """A lock that renamed and then failed leaves the allocation as it was: the new (idle,
        unlocked, never referenced) instance is freed and ``old`` is current again."""
        self.handles.close(new.handle)
        self.vidmm.free_instance(new)
        new.alloc.current = old

    async def _wait_for_rename_room(
        self, dev: Device, cur: Instance, base: dict[str, Any], why: str
    ) -> NTSTATUS:
        """NoExistingReference: stall until the current instance is idle or an old one frees
        (LCB-6); STATUS_DEVICE_REMOVED on removal (TDR-12)."""
        assert self.vidsch.cond is not None
        alloc = cur.alloc
        n = len(alloc.instances)
        self._bump("lock_waits")
        klog("kmd.lock.wait", **base, fence=cur.last_fence(), why=why)
        await self.vidsch.cond.wait_for(
            lambda: (
                not cur.busy()
                or len(alloc.instances) < n
                or dev.removed is not None
                or alloc.destroyed
                or dev.destroyed
            ),
            f"fence {cur.last_fence()} on {self.name}.gpu",
        )
        if dev.removed is not None:
            return self._fail(EV_LOCK, REMOVED, "TDR-12", **base)
        if alloc.destroyed or dev.destroyed:
            return self._fail(EV_LOCK, INVALID, "KL-2", **base)
        return SUCCESS

    def _prepare_cpu_access(
        self, inst: Instance, flags: int, private_driver_data: int
    ) -> tuple[NTSTATUS, bool]:
        """Make the instance CPU-accessible (SEG-10, SW-2, KL-20, KL-22). Returns the status and
        whether a swizzling range is held."""
        alloc = inst.alloc
        seg = inst.segment
        needs_unswizzle = alloc.swizzled and seg is not None
        needs_move = seg is not None and not seg.cpu_visible
        # A pinned allocation can't move (SW-6), so an unswizzling aperture is its only way to
        # the CPU: KL-22 fails it only when no aperture is free, whether or not it is swizzled
        # and whether or not the lock asked for one (AcquireAperture).
        wants_range = needs_unswizzle or flags & LF.AcquireAperture or (needs_move and alloc.pinned)
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


class LockMixin(CpuAccessMixin):
    """Lock / Lock2 / Unlock / Unlock2 (KL-*, KL2-*, KU-*, LCB-*, SEG-10, SW-2)."""

    # ---- D3DKMTLock ----------------------------------------------------------------------------

    async def dxgk_lock(self, a: D3DKMT_LOCK) -> NTSTATUS:
        """D3DKMTLock (KL-1…KL-23; order of checks in docs/kmd.md §4.3). Out fields are written
        only on success (KL-1)."""
        target = self._lock_target(EV_LOCK, a, "KL-23")
        if isinstance(target, NTSTATUS):
            return target
        dev, inst, base = target
        req = self._check_lock_args(inst, a)
        if not isinstance(req, LockRequest):
            return self._fail(EV_LOCK, *req, **base)
        flags, page_list = req.flags, req.pages
        current = inst.alloc.current
        st, inst, renamed = await self._synchronize(dev, inst, flags, base)
        if st != SUCCESS:
            return st
        st, has_range = self._prepare_cpu_access(inst, flags, a.private_driver_data)
        if st != SUCCESS:
            if renamed and current is not None:
                self._undo_rename(inst, current)
            rule = {
                S.STATUS_GRAPHICS_CANT_EVICT_PINNED_ALLOCATION: "KL-22",
                S.STATUS_GRAPHICS_UNSWIZZLING_APERTURE_UNAVAILABLE: "KL-20",
            }.get(st, "SEG-10")
            return self._fail(EV_LOCK, st, rule, **base)
        a.data = self._map(inst, flags, page_list, has_range)
        a.allocation = inst.handle
        klog(
            EV_LOCK,
            **base,
            instance=inst.index,
            renamed=renamed,
            pages=list(page_list) if page_list is not None else None,
            segment="system" if inst.segment is None else inst.segment.desc.name,
            swizzle_range=has_range,
            **code_fields(SUCCESS),
        )
        return SUCCESS

    def _lock_target(
        self, ev: str, a: D3DKMT_LOCK | D3DKMT_LOCK2, removed_rule: str
    ) -> tuple[Device, Instance, dict[str, Any]] | NTSTATUS:
        """The live device and instance a lock names, with the trace fields every later event
        carries; or the failure: a bad handle (KL-2), a removed device (``removed_rule``)."""
        dev = self._device(a.device)
        if dev is None:
            return self._fail(ev, INVALID, "KL-2", device=handle_field(a.device))
        if dev.removed:
            return self._fail(ev, REMOVED, removed_rule, device=dev.handle)
        inst = self._instance(a.allocation, dev)
        if inst is None:
            bad = handle_field(a.allocation)
            return self._fail(ev, INVALID, "KL-2", device=dev.handle, allocation=bad)
        return dev, inst, {"device": dev.handle, "allocation": inst.handle,
                           "flags": flags_field(a.flags)}

    def _check_lock_args(
        self, inst: Instance, a: D3DKMT_LOCK
    ) -> LockRequest | tuple[NTSTATUS, str]:
        """Every D3DKMT_LOCK field against ``inst``: the checked request, or ``(status, rule)``
        for the first one that is wrong."""
        alloc = inst.alloc
        if inst.retired:
            return INVALID, "KL-11"
        if not alloc.cpu_visible:
            return INVALID, "KL-12"
        if not is_uint(a.gpu_virtual_address) or a.gpu_virtual_address != 0:
            return INVALID, "KL-5"
        rule = validate_lock_flags(a.flags)
        if rule is not None:
            return INVALID, rule
        flags = int(a.flags)
        if not is_uint(a.private_driver_data) or not is_uint(a.num_pages):
            return INVALID, "KL-2"
        pages = self._check_pages(inst, a, flags)
        if isinstance(pages, str):
            return INVALID, pages
        rule = self._check_placement_flags(inst, flags)
        if rule is not None:
            return INVALID, rule
        if not flags & LF.LockEntire and pages is None:
            return S.STATUS_GRAPHICS_CANT_LOCK_MEMORY, "LCB-11"
        return LockRequest(flags, pages)

    def _check_pages(
        self, inst: Instance, a: D3DKMT_LOCK, flags: int
    ) -> tuple[int, ...] | str | None:
        """The page list (KL-3, KL-4): sorted, unique, inside the allocation; None for a whole
        lock; the broken rule otherwise."""
        ps = self.config.page_size
        npages = (inst.alloc.size + ps - 1) // ps
        pages = a.pages
        if flags & LF.LockEntire:
            if pages is not None or a.num_pages != 0:
                return "KL-3"
            return None
        if pages is None:
            return "KL-4" if a.num_pages != 0 else None
        if not is_seq(pages) or len(pages) != a.num_pages or not pages:
            return "KL-4"
        if any(not is_uint(p) or p >= npages for p in pages):
            return "KL-4"
        if any(pages[i] >= pages[i + 1] for i in range(len(pages) - 1)):
            return "KL-4"
        return tuple(int(p) for p in pages)

    def _check_placement_flags(self, inst: Instance, flags: int) -> str | None:
        """Flags that depend on where the allocation may live (KL-15, KL-16, KL-17, KL-19)."""
        alloc = inst.alloc
        aperture_ok = self.vidmm.aperture_placeable(alloc)
        aperture_only = all(self.vidmm.segments[s - 1].is_aperture for s in alloc.supported)
        if flags & (LF.IgnoreSync | LF.IgnoreReadSync) and (alloc.swizzled or not aperture_ok):
            return "KL-15"
        if flags & LF.AcquireAperture:
            if aperture_only:
                return "KL-17"
            if any(not rec.swizzle_range for rec in inst.locks):
                return "KL-16"
        if alloc.primary and alloc.use_alternate_va != bool(flags & LF.UseAlternateVA):
            return "KL-19"
        return None

    async def _synchronize(
        self, dev: Device, inst: Instance, flags: int, base: dict[str, Any]
    ) -> tuple[NTSTATUS, Instance, bool]:
        """GPU synchronisation of a lock: the status, the instance to map (a new one after a
        Discard rename) and whether it was renamed. Discard skips the sync logic (KL-7, KL-8);
        IgnoreSync counts only with DonotWait (Q-10)."""
        alloc = inst.alloc
        renamed = False
        discard = bool(flags & LF.Discard) and not (alloc.pinned or alloc.existing_sysmem)  # KL-18
        if discard:
            st, inst, renamed = await self._discard(dev, inst, flags, base)
            if st != SUCCESS:
                return st, inst, renamed
            base["allocation"] = inst.handle
        if inst.exclusive_lock is not None:
            return self._fail(EV_LOCK, BUSY, "KL-14", **base), inst, renamed
        if inst.pending_references >= self.config.max_pending_references:
            too_many = S.STATUS_GRAPHICS_TOO_MANY_REFERENCES
            return self._fail(EV_LOCK, too_many, "Q3", **base), inst, renamed
        if discard or (flags & LF.IgnoreSync and flags & LF.DonotWait):
            return SUCCESS, inst, renamed
        writes_only = bool(flags & LF.IgnoreReadSync)
        if not inst.busy(writes_only):
            return SUCCESS, inst, renamed
        if self.hooks.busy_lock_fails_at_once(flags):  # KL-21
            self._bump("busy_failures")
            return self._fail(EV_LOCK, BUSY, "KL-21", **base), inst, renamed
        st = await self._wait_idle(dev, inst, writes_only, base)
        if st == SUCCESS and inst.exclusive_lock is not None:
            st = self._fail(EV_LOCK, BUSY, "KL-14", **base)
        return st, inst, renamed

    def _keep_pointer(self, ptr: CpuPointer) -> None:
        """Remember ``ptr`` for the invariant check (no pointer maps a freed instance). Only a
        ``mapped`` or ``detached`` pointer can break it; ``unlocked`` and ``freed`` are final
        states, so those are dropped whenever the list has doubled since the last sweep: a long
        run keeps only its live locks' pointers (amortised O(1) per lock)."""
        pointers = self._pointers
        pointers.append(ptr)
        if len(pointers) >= self._pointers_sweep:
            pointers[:] = [p for p in pointers if p.state in ("mapped", "detached")]
            self._pointers_sweep = 2 * len(pointers) + 64

    def _map(
        self, inst: Instance, flags: int, page_list: tuple[int, ...] | None, has_range: bool
    ) -> CpuPointer:
        """Record the lock and hand out its pointer (KL-4: at the first listed page)."""
        ps = self.config.page_size
        offset = 0 if page_list is None else page_list[0] * ps
        ptr = CpuPointer(
            inst,
            offset,
            inst.alloc.size - offset,
            None if page_list is None else frozenset(page_list),
            ps,
            read_only=bool(flags & LF.ReadOnly),
        )
        exclusive = has_range or bool(flags & LF.UseAlternateVA)
        inst.locks.append(LockRecord(ptr, "lock", exclusive=exclusive, swizzle_range=has_range))
        self._keep_pointer(ptr)
        self.vidmm.touch(inst)
        self._bump("locks")
        return ptr

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
            return self._fail(EV_LOCK, REMOVED, "TDR-12", **base)
        if dev.destroyed or inst.freed or inst.alloc.destroyed:
            return self._fail(EV_LOCK, INVALID, "KL-2", **base)
        if inst.retired:
            return self._fail(EV_LOCK, INVALID, "KL-11", **base)
        return SUCCESS

    # ---- D3DKMTLock2 ---------------------------------------------------------------------------

    async def dxgk_lock2(self, a: D3DKMT_LOCK2) -> NTSTATUS:
        """D3DKMTLock2 (KL2-1…KL2-6): whole allocation, no flags, always waits; maps the instance
        where it is (KL2-3), so it never evicts."""
        ev = "kmd.lock2"
        target = self._lock_target(ev, a, "KL2-5")
        if isinstance(target, NTSTATUS):
            return target
        dev, inst, base = target
        refused = self._check_lock2_args(inst, a.flags)
        if refused is not None:
            return self._fail(ev, *refused, **base)
        if inst.busy():
            st = await self._wait_idle(dev, inst, False, base)
            if st != SUCCESS:
                return st
            if inst.exclusive_lock is not None:
                return self._fail(ev, BUSY, "KL-14", **base)
        ptr = CpuPointer(inst, 0, inst.alloc.size, None, self.config.page_size, read_only=False)
        inst.locks.append(LockRecord(ptr, "lock2", exclusive=False, swizzle_range=False))
        self._keep_pointer(ptr)
        self._bump("locks")
        a.data = ptr
        klog(ev, **base, instance=inst.index, **code_fields(SUCCESS))
        return SUCCESS

    def _check_lock2_args(self, inst: Instance, flags: object) -> tuple[NTSTATUS, str] | None:
        """D3DKMT_LOCK2 against ``inst`` (KL2-1, KL-11, KL-12, KL-19, KL-14, Q3)."""
        rule = validate_lock2_flags(flags)
        if rule is not None:
            return INVALID, rule
        if inst.retired:
            return INVALID, "KL-11"
        if not inst.alloc.cpu_visible:
            return INVALID, "KL-12"
        if inst.alloc.primary and inst.alloc.use_alternate_va:
            return INVALID, "KL-19"
        if inst.exclusive_lock is not None:
            return BUSY, "KL-14"
        if inst.pending_references >= self.config.max_pending_references:
            return S.STATUS_GRAPHICS_TOO_MANY_REFERENCES, "Q3"
        return None

    # ---- unlock --------------------------------------------------------------------------------

    def dxgk_unlock(self, a: D3DKMT_UNLOCK) -> NTSTATUS:
        """D3DKMTUnlock (KU-1…KU-5): never waits; SUCCESS after removal too (Q1)."""
        hs = a.allocations
        if a.num_allocations is not None and (
            not is_uint(a.num_allocations) or not is_seq(hs) or a.num_allocations != len(hs)
        ):
            return self._fail("kmd.unlock", INVALID, "KU-1", device=handle_field(a.device))
        return self._unlock_many("kmd.unlock", a.device, hs, "lock")

    def dxgk_unlock2(self, a: D3DKMT_UNLOCK2) -> NTSTATUS:
        """D3DKMTUnlock2 (KU-6, KL2-6)."""
        return self._unlock_many("kmd.unlock2", a.device, [a.allocation], "lock2")

    def _unlock_many(self, ev: str, device: object, handles: object, via: str) -> NTSTATUS:
        """Unlock each listed instance once, newest lock first (Q5); every handle is checked
        before any lock ends (KU-1, KU-2, KU-3)."""
        dev = self._device(device)
        if dev is None:
            return self._fail(ev, INVALID, "KU-2", device=handle_field(device))
        if not is_seq(handles) or not handles:
            return self._fail(ev, INVALID, "KU-1", device=dev.handle)
        wanted: dict[int, int] = {}
        insts: list[Instance] = []
        for h in handles:  # type: ignore[attr-defined]
            inst = self._instance(h, dev)
            if inst is None:
                bad = handle_field(h)
                return self._fail(ev, INVALID, "KU-2", device=dev.handle, allocation=bad)
            wanted[inst.handle] = wanted.get(inst.handle, 0) + 1
            held = sum(1 for r in inst.locks if r.via == via)
            if held < wanted[inst.handle]:
                rule = "KL2-6" if inst.locks else "KU-3"
                return self._fail(ev, INVALID, rule, device=dev.handle, allocation=inst.handle)
            insts.append(inst)
        traced = kwants(ev)
        for inst in insts:
            idx = max(i for i, r in enumerate(inst.locks) if r.via == via)  # LIFO (Q5)
            rec = inst.locks.pop(idx)
            self._release_range(inst, rec)
            rec.pointer.state = "unlocked"
            self._bump("unlocks")
            if traced:
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
