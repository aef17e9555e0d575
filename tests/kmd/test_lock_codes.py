"""D3DKMTLock's six documented codes, D3DKMTLock2's five, and the lock rules around them
(KL-*, KL2-*, KU-*, Q3, Q4, Q5, Q15). Each test sets up the documented condition and checks the
exact value."""

from __future__ import annotations

import kmd
import vthreads as vt
from kmd import D3DDDICB_LOCKFLAGS as LF
from kmd import KernelConfig
from tests.support.kernel import OK, Rig, kmd_events, run, run_traced

BUSY = kmd.STATUS_GRAPHICS_ALLOCATION_BUSY
INVALID = kmd.STATUS_INVALID_PARAMETER


# ---- D3DKMTLock: the six documented codes ----


def test_lock_success_gives_a_pointer_to_the_real_bytes(backend: str) -> None:
    async def main() -> None:
        rig = await Rig().setup()
        h = await rig.alloc(size=5000, segments="aperture")
        st, a = await rig.lock(h)
        assert st == kmd.STATUS_SUCCESS == 0x00000000
        assert isinstance(a.data, kmd.CpuPointer)
        assert len(a.data) == 8192  # CA-6: rounded to the page
        a.data.write(10, b"abc")
        assert a.data.read(9, 5) == b"\0abc\0"
        assert await rig.unlock(h) == OK
        st, b = await rig.lock(h, LF.LockEntire | LF.ReadOnly)
        assert st == OK and b.data[10:13] == b"abc"
        rig.invariants()

    run(main, backend=backend)


def test_lock_device_removed() -> None:
    async def main() -> None:
        rig = await Rig().setup()
        h = await rig.alloc(segments="aperture")
        assert rig.k.inject_removal(rig.device)
        st, a = await rig.lock(h)
        assert st == kmd.STATUS_DEVICE_REMOVED == 0xC00002B6
        assert a.data is None  # KL-23: no pointer

    run(main)


def test_lock_invalid_parameter_stale_foreign_and_wrong_type_handles() -> None:
    async def main() -> None:
        rig = await Rig().setup()
        other = await rig.new_device()
        h = await rig.alloc(segments="aperture")
        mine_elsewhere = await rig.alloc(segments="aperture", device=other)
        for bad in (0, 12345, rig.device, rig.context, rig.adapter, mine_elsewhere, -1, "x"):
            st, a = await rig.lock(bad)
            assert st == INVALID == 0xC000000D, bad
            assert a.data is None
        st, _ = await rig.lock(h, device=other)  # KL-2: not the allocation's device
        assert st == INVALID
        st, _ = await rig.lock(h, device=rig.context)
        assert st == INVALID
        await kmd.D3DKMTDestroyAllocation(
            rig.k, kmd.D3DKMT_DESTROYALLOCATION(device=rig.device, allocations=[h])
        )
        st, _ = await rig.lock(h)  # stale
        assert st == INVALID
        assert await kmd.D3DKMTLock(rig.k, "not a struct") == INVALID  # type: ignore[arg-type]

    run(main)


def test_lock_allocation_busy_with_donotwait_and_waits_without(backend: str) -> None:
    async def main() -> None:
        rig = await Rig().setup()
        h = await rig.alloc(segments="aperture")
        fence = await rig.busy(h, ns=5_000_000)
        t0 = vt.now()
        st, a = await rig.lock(h, LF.LockEntire | LF.DonotWait)
        assert st == BUSY == 0xC01E0102  # KL-21
        assert a.data is None and vt.now() == t0  # immediately
        assert kmd.ntstatus_to_hresult_for_callback(st, "pfnLockCb") == kmd.D3DERR_WASSTILLDRAWING
        st, a = await rig.lock(h)  # waits (virtual time) for the fence
        assert st == OK
        assert rig.k.completed_fence >= fence
        end = rig.k.dma_records[-1].ended_ns
        assert vt.now() >= end >= t0 + 5_000_000
        rig.invariants()

    _, events = run_traced(main, backend=backend)
    waits = kmd_events(events, "kmd.lock.wait")
    assert len(waits) == 1 and waits[0]["fence"] == 1
    assert any(e.get("event") == "block" and "fence 1" in e.get("waits", "") for e in events)


def test_lock_too_many_references() -> None:
    async def main() -> None:
        rig = await Rig(KernelConfig(max_pending_references=3)).setup()
        h = await rig.alloc(segments="aperture")
        for _ in range(3):
            await rig.busy(h)
        st, a = await rig.lock(h, LF.LockEntire | LF.DonotWait)
        assert st == kmd.STATUS_GRAPHICS_TOO_MANY_REFERENCES == 0xC01E0103
        assert a.data is None
        await rig.k.wait_idle()
        st, _ = await rig.lock(h)
        assert st == OK
        # Q3: outstanding locks count too
        st, _ = await rig.lock(h)
        assert st == OK
        st, _ = await rig.lock(h)
        assert st == OK
        st, _ = await rig.lock(h)
        assert st == kmd.STATUS_GRAPHICS_TOO_MANY_REFERENCES

    run(main)


def test_lock_cant_evict_pinned_allocation() -> None:
    """S4: swizzled pinned (Overlay) allocation in a memory segment, no free deswizzling
    aperture → STATUS_GRAPHICS_CANT_EVICT_PINNED_ALLOCATION (KL-22)."""

    async def main() -> None:
        rig = await Rig(KernelConfig(swizzling_apertures=1)).setup()
        a1 = await rig.alloc(segments="local", swizzled=True)
        pinned = await rig.alloc(segments="local", swizzled=True, overlay=True)
        st, _hold = await rig.lock(a1)  # takes the only aperture
        assert st == OK
        st, a = await rig.lock(pinned)
        assert st == kmd.STATUS_GRAPHICS_CANT_EVICT_PINNED_ALLOCATION == 0xC01E0109
        assert a.data is None
        assert (
            kmd.ntstatus_to_hresult_for_callback(st, "pfnLockCb")
            == kmd.D3DDDIERR_CANTEVICTPINNEDALLOCATION
        )
        assert await rig.unlock(a1) == OK  # KU-5: the aperture comes back
        st, a = await rig.lock(pinned)
        assert st == OK
        rig.invariants()

    run(main)


def test_pinned_non_swizzled_allocation_that_would_need_eviction() -> None:
    async def main() -> None:
        rig = await Rig(KernelConfig(swizzling_apertures=0)).setup()
        h = await rig.alloc(segments="local", capture=True)  # pinned, CPU-visible flag
        st, _ = await rig.lock(h)
        assert st == kmd.STATUS_GRAPHICS_CANT_EVICT_PINNED_ALLOCATION

    run(main)


# ---- the "other NTSTATUS" lock codes ----


def test_neither_lockentire_nor_pages_is_not_available() -> None:
    async def main() -> None:
        rig = await Rig().setup()
        h = await rig.alloc(segments="aperture")
        st, _ = await rig.lock(h, 0)
        assert st == kmd.STATUS_GRAPHICS_CANT_LOCK_MEMORY  # LCB-11
        assert kmd.ntstatus_to_hresult_for_callback(st, "pfnLockCb") == kmd.D3DERR_NOTAVAILABLE

    run(main)


def test_lock_evicts_from_invisible_memory_unless_donotevict() -> None:
    async def main() -> None:
        rig = await Rig(KernelConfig(swizzling_apertures=0)).setup()
        h = await rig.alloc(segments="local")
        st, _ = await rig.lock(h, LF.LockEntire | LF.DonotEvict)
        assert st == kmd.STATUS_GRAPHICS_UNSWIZZLING_APERTURE_UNAVAILABLE  # KL-20
        assert kmd.ntstatus_to_hresult_for_callback(st, "pfnLockCb") == kmd.D3DERR_NOTAVAILABLE
        st, a = await rig.lock(h)
        assert st == OK
        a.data.write(0, b"xyz")
        assert await rig.unlock(h) == OK
        assert rig.k.statistics().evictions == 1
        # the GPU can still use it: paged back in on submission (SCH-2)
        st, r = await rig.render([kmd.CmdDraw(1, 0, 0, 3)], [h])
        assert st == OK
        await rig.k.wait_for_fence(r.fence)
        assert rig.k.dma_records[-1].commands[0].data == b"xyz"
        rig.invariants()

    _, events = run_traced(main)
    assert [e["why"] for e in kmd_events(events, "kmd.evict")] == ["evict for CPU access"]
    assert kmd_events(events, "kmd.page_in")[-1]["dst"] == "local"


def test_swizzled_lock_uses_an_aperture_and_is_exclusive() -> None:
    async def main() -> None:
        rig = await Rig(KernelConfig(swizzling_apertures=1)).setup()
        h = await rig.alloc(segments="local", swizzled=True)
        st, _a = await rig.lock(h, LF.LockEntire, private_driver_data=3)
        assert st == OK
        st, _ = await rig.lock(h)  # KL-14: swizzled-range lock outstanding
        assert st == BUSY
        st, _ = await rig.lock2(h)
        assert st == BUSY  # Lock2's ALLOCATION_BUSY (KL2-4)
        assert await rig.unlock(h) == OK
        st, _ = await rig.lock(h)
        assert st == OK
        assert dict(rig.k.statistics().ddi_calls)["DxgkDdiAcquireSwizzlingRange"] == 2
        assert dict(rig.k.statistics().ddi_calls)["DxgkDdiReleaseSwizzlingRange"] == 1

    run(main)


# ---- placement-dependent flag rules ----


def test_placement_dependent_flag_rules() -> None:
    async def main() -> None:
        rig = await Rig().setup()
        local = await rig.alloc(segments="local")
        aper = await rig.alloc(segments="aperture")
        swz = await rig.alloc(segments="any", swizzled=True)
        hidden = await rig.alloc(segments="aperture", cpu_visible=False)
        st, _ = await rig.lock(hidden)
        assert st == INVALID  # KL-12
        for h in (local, swz):
            for f in (LF.IgnoreSync | LF.DonotWait, LF.IgnoreReadSync):
                st, _ = await rig.lock(h, LF.LockEntire | f)
                assert st == INVALID  # KL-15
        st, _ = await rig.lock(aper, LF.LockEntire | LF.AcquireAperture)
        assert st == INVALID  # KL-17: aperture-only allocation
        any_ = await rig.alloc(segments="any")
        st, _ = await rig.lock(any_)
        assert st == OK
        st, _ = await rig.lock(any_, LF.LockEntire | LF.AcquireAperture)
        assert st == INVALID  # KL-16: first locked without AcquireAperture
        assert await rig.unlock(any_) == OK
        st, _ = await rig.lock(any_, LF.LockEntire | LF.AcquireAperture)
        assert st == OK

    _, events = run_traced(main)
    rules = [e.get("rule") for e in kmd_events(events, "kmd.lock") if e["status"] != "0x00000000"]
    assert rules == ["KL-12", "KL-15", "KL-15", "KL-15", "KL-15", "KL-17", "KL-16"]


THREE_SEGMENTS = KernelConfig(
    segments=(
        kmd.SegmentDesc("local", 16 * kmd.MiB, "memory", cpu_visible=False),
        kmd.SegmentDesc("visible", 8 * kmd.MiB, "memory", cpu_visible=True),
        kmd.SegmentDesc("aperture", 16 * kmd.MiB, "aperture"),
    )
)


def test_primary_and_use_alternate_va() -> None:
    async def main() -> None:
        # KL-17 forbids AcquireAperture on aperture-only allocations, and a UseAlternateVA lock
        # needs it (KL-10): such a primary lives in a CPU-visible memory segment (SEG-8)
        rig = await Rig(THREE_SEGMENTS).setup()
        P = kmd.D3DDDI_ALLOCATIONINFO_FLAGS.Primary

        async def primary(alt: bool) -> int:
            info = kmd.D3DDDI_ALLOCATIONINFO(
                private_driver_data=kmd.AllocationDesc(size=8192, use_alternate_va=alt),
                flags=P,
                vidpn_source_id=0,
            )
            ca = kmd.D3DKMT_CREATEALLOCATION(device=rig.device, allocation_info=[info])
            assert await kmd.D3DKMTCreateAllocation(rig.k, ca) == OK
            return info.allocation

        alt = await primary(True)
        plain = await primary(False)
        st, _ = await rig.lock(alt)
        assert st == INVALID  # KL-19: may only be locked with UseAlternateVA
        st, _ = await rig.lock(alt, LF.LockEntire | LF.AcquireAperture | LF.UseAlternateVA)
        assert st == OK
        st, _ = await rig.lock(alt, LF.LockEntire | LF.AcquireAperture | LF.UseAlternateVA)
        assert st == BUSY  # KL-19: not again until unlocked
        st, _ = await rig.lock(plain, LF.LockEntire | LF.AcquireAperture | LF.UseAlternateVA)
        assert st == INVALID  # KL-19: primary not created with UseAlternateVA
        st, _ = await rig.lock(plain)
        assert st == OK

    run(main)


def test_ignore_sync_only_with_donotwait_and_ignore_read_sync() -> None:
    async def main() -> None:
        rig = await Rig().setup()
        h = await rig.alloc(segments="aperture")
        await rig.busy(h, ns=3_000_000)
        t0 = vt.now()
        st, _ = await rig.lock(h, LF.LockEntire | LF.IgnoreSync | LF.DonotWait)
        assert st == OK and vt.now() == t0  # honoured: no check at all
        assert await rig.unlock(h) == OK
        st, _ = await rig.lock(h, LF.LockEntire | LF.IgnoreReadSync | LF.DonotWait)
        assert st == OK and vt.now() == t0  # only reads pending
        assert await rig.unlock(h) == OK
        st, _ = await rig.lock(h, LF.LockEntire | LF.IgnoreSync)  # ignored → waits
        assert st == OK and vt.now() > t0
        assert await rig.unlock(h) == OK
        # a pending GPU *write* makes IgnoreReadSync wait
        st, _ = await rig.render(
            [kmd.CmdWrite(0, 0, b"W"), kmd.CmdSpin(1_000_000)], [h], writes=[True]
        )
        assert st == OK
        st, _ = await rig.lock(h, LF.LockEntire | LF.IgnoreReadSync | LF.DonotWait)
        assert st == BUSY
        st, a = await rig.lock(h, LF.LockEntire | LF.IgnoreReadSync)
        assert st == OK and a.data[0] == ord("W")

    run(main)


# ---- page lists (Q4), nesting (Q5), unlock (KU-*) ----


def test_page_list_locks() -> None:
    async def main() -> None:
        rig = await Rig().setup()
        h = await rig.alloc(size=4 * 4096, segments="aperture")
        bad = [
            dict(flags=LF.LockEntire, pages=[0], num_pages=1),  # KL-3
            dict(flags=0, pages=[1, 0], num_pages=2),  # not increasing
            dict(flags=0, pages=[1, 1], num_pages=2),  # duplicate
            dict(flags=0, pages=[4], num_pages=1),  # out of range
            dict(flags=0, pages=[1, 2], num_pages=3),  # count mismatch
            dict(flags=0, pages=[], num_pages=0),  # empty list
            dict(flags=0, pages=None, num_pages=2),
            dict(flags=0, pages="ab", num_pages=2),
            dict(flags=0, pages=[True], num_pages=1),
        ]
        for kw in bad:
            st, a = await rig.lock(h, **kw)
            assert st == INVALID, kw
        st, a = await rig.lock(h, 0, pages=[1, 3], num_pages=2)
        assert st == OK
        p = a.data
        assert p.offset == 4096 and len(p) == 3 * 4096  # pData = first listed page (KL-4)
        p.write(0, b"one")
        p.write(2 * 4096, b"three")
        try:
            p.write(4096, b"two")  # page 2 is not mapped
        except kmd.AccessViolation:
            pass
        else:
            raise AssertionError("page 2 should not be accessible")
        assert await rig.unlock(h) == OK
        st, w = await rig.lock(h)
        assert w.data.read(4096, 3) == b"one" and w.data.read(3 * 4096, 5) == b"three"
        assert w.data.read(2 * 4096, 3) == b"\0\0\0"

    r = run(main, check=False)
    assert r.failure is None
    assert [v.rule for v in r.violations] == ["KL-4"]


def test_nested_locks_and_lifo_unlock() -> None:
    async def main() -> None:
        rig = await Rig().setup()
        h = await rig.alloc(segments="aperture")
        st1, a1 = await rig.lock(h)
        st2, a2 = await rig.lock(h, LF.LockEntire | LF.ReadOnly)
        assert st1 == st2 == OK  # Q5: nested locks allowed
        assert await rig.unlock(h) == OK
        assert a2.data.state == "unlocked" and a1.data.state == "mapped"  # LIFO
        a1.data.write(0, b"still mine")
        assert await rig.unlock(h) == OK
        assert a1.data.state == "unlocked"
        assert await rig.unlock(h) == INVALID  # KU-3: not locked any more

    run(main)


def test_unlock_validates_everything_first() -> None:
    async def main() -> None:
        rig = await Rig().setup()
        other = await rig.new_device()
        h1 = await rig.alloc(segments="aperture")
        h2 = await rig.alloc(segments="aperture")
        foreign = await rig.alloc(segments="aperture", device=other)
        st, a1 = await rig.lock(h1)
        assert st == OK
        assert await rig.unlock(h1, h2) == INVALID  # h2 not locked: nothing unlocked
        assert a1.data.state == "mapped"
        st, _ = await rig.lock(foreign, device=other)
        assert st == OK
        assert await rig.unlock(h1, foreign) == INVALID  # KU-2: one device per call
        assert await rig.unlock(h1, h1) == INVALID  # only one lock to release
        assert await rig.unlock() == INVALID  # KU-1: empty list
        assert (
            await kmd.D3DKMTUnlock(
                rig.k, kmd.D3DKMT_UNLOCK(device=rig.device, allocations=[h1], num_allocations=2)
            )
            == INVALID
        )
        assert await rig.unlock(h1) == OK
        assert await rig.unlock(foreign, device=other) == OK

    run(main)


# ---- D3DKMTLock2: the five documented codes ----


def test_lock2_codes(backend: str) -> None:
    async def main() -> None:
        rig = await Rig(KernelConfig(max_pending_references=2, swizzling_apertures=1)).setup()
        h = await rig.alloc(segments="any")
        # SUCCESS: whole allocation, maps where it is (KL2-3); waits for the GPU (KL2-2)
        fence = await rig.busy(h, ns=2_000_000)
        st, a = await rig.lock2(h)
        assert st == OK and len(a.data) == 8192
        assert rig.k.completed_fence >= fence
        assert await rig.unlock(h) == INVALID  # KL2-6: Lock2 pairs with Unlock2
        assert await rig.unlock2(h) == OK
        # INVALID_PARAMETER: flags, handles
        assert (await rig.lock2(h, 1))[0] == INVALID
        assert (await rig.lock2(rig.context))[0] == INVALID
        # ALLOCATION_BUSY: an exclusive (swizzle-range) lock is outstanding (KL-14)
        sw = await rig.alloc(segments="local", swizzled=True)
        assert (await rig.lock(sw))[0] == OK
        assert (await rig.lock2(sw))[0] == kmd.STATUS_GRAPHICS_ALLOCATION_BUSY
        # TOO_MANY_REFERENCES
        await rig.busy(h)
        await rig.busy(h)
        assert (await rig.lock2(h))[0] == kmd.STATUS_GRAPHICS_TOO_MANY_REFERENCES
        # DEVICE_REMOVED
        rig.k.inject_removal(rig.device)
        assert (await rig.lock2(h))[0] == kmd.STATUS_DEVICE_REMOVED

    run(main, backend=backend)
