"""Discard: renaming into a new instance (LCB-5), the instance cap and memory pressure (LCB-6,
umd Q-17), NoExistingReference, KL-7/KL-8/KL-18, instance ordering (LCB-9/RCB-6), and freeing
old instances once the GPU is done with them."""

from __future__ import annotations

import kmd
import vthreads as vt
from kmd import D3DDDICB_LOCKFLAGS as LF
from kmd import CmdDraw, KernelConfig
from tests.support.kernel import OK, Rig, kmd_events, run, run_traced

DISCARD = LF.LockEntire | LF.Discard
BUSY = kmd.STATUS_GRAPHICS_ALLOCATION_BUSY


def test_discard_rename_while_busy(backend: str) -> None:
    async def main() -> None:
        rig = await Rig().setup()
        a0 = await rig.alloc(segments="aperture")
        st, lk = await rig.lock(a0)
        lk.data.write(0, b"old!")
        assert await rig.unlock(a0) == OK
        f0 = await rig.busy(a0, ns=4_000_000)  # draw 99 reads "old!" then spins
        t0 = vt.now()
        st, lk = await rig.lock(a0, DISCARD)
        assert st == OK and vt.now() == t0  # no wait: renamed
        a1 = lk.allocation
        assert a1 != a0  # LCB-5: a new handle in the in/out field
        assert lk.data.allocation == a1 and lk.data.instance == 1
        lk.data.write(0, b"new!")
        assert await rig.unlock(a1) == OK
        assert rig.k.statistics().live_instances == 2
        st, r = await rig.render([CmdDraw(7, 0, 0, 4)], [a1])
        assert st == OK
        await rig.k.wait_for_fence(r.fence)
        recs = {rec.fence: rec for rec in rig.k.dma_records}
        assert recs[f0].commands[0].data == b"old!" and recs[f0].commands[0].instance == a0
        assert recs[r.fence].commands[0].data == b"new!"
        assert recs[r.fence].commands[0].instance == a1
        assert recs[r.fence].commands[0].allocation == a0  # the allocation's first handle
        # the old instance was retired by the reference to a1 and freed when its fence signalled
        assert rig.k.statistics().live_instances == 1
        st, _ = await rig.lock(a0)
        assert st == kmd.STATUS_INVALID_PARAMETER
        rig.invariants()

    _, events = run_traced(main, backend=backend)
    renames = kmd_events(events, "kmd.rename")
    assert len(renames) == 1 and renames[0]["old"] != renames[0]["new"]
    frees = kmd_events(events, "kmd.instance.free")
    assert len(frees) == 1 and frees[0]["index"] == 0


def test_discard_ignores_donotwait_and_ignoresync() -> None:
    """KL-7, KL-8 (umd Q-11): with Discard, DonotWait and IgnoreSync have no effect."""

    async def main() -> None:
        rig = await Rig().setup()
        h = await rig.alloc(segments="aperture")
        await rig.busy(h)
        st, lk = await rig.lock(h, DISCARD | LF.DonotWait)
        assert st == OK and lk.allocation != h
        assert await rig.unlock(lk.allocation) == OK
        st, lk2 = await rig.lock(h, DISCARD | LF.IgnoreSync | LF.DonotWait)
        assert st == OK and lk2.allocation not in (h, lk.allocation)

    run(main)


def test_rename_fails_at_the_instance_cap_then_noexistingreference_waits() -> None:
    async def main() -> None:
        rig = await Rig(KernelConfig(max_rename_instances=2)).setup()
        a0 = await rig.alloc(segments="aperture")
        f0 = await rig.busy(a0, ns=3_000_000)
        st, lk = await rig.lock(a0, DISCARD)
        a1 = lk.allocation
        assert st == OK and await rig.unlock(a1) == OK
        await rig.busy(a1, ns=6_000_000)  # a0 retired (still busy), a1 busy: 2 live
        t0 = vt.now()
        st, lk = await rig.lock(a1, DISCARD)
        assert st == BUSY and vt.now() == t0  # LCB-6: VidMm can't create nor reuse
        assert kmd.ntstatus_to_hresult_for_callback(st, "pfnLockCb") == kmd.D3DERR_WASSTILLDRAWING
        # LCB-6 retry after a flush: Discard + NoExistingReference stalls until room
        st, lk = await rig.lock(a1, DISCARD | LF.NoExistingReference)
        assert st == OK
        f0_end = next(r.ended_ns for r in rig.k.dma_records if r.fence == f0)
        assert vt.now() >= f0_end > t0
        assert lk.allocation not in (a0, a1)
        s = rig.k.statistics()
        assert s.renames == 2 and s.rename_failures == 1

    run(main)


def test_noexistingreference_reuses_the_idle_current_instance() -> None:
    async def main() -> None:
        rig = await Rig().setup()
        h = await rig.alloc(segments="aperture")
        st, lk = await rig.lock(h, DISCARD | LF.NoExistingReference)
        assert st == OK and lk.allocation == h  # idle: reused in place
        assert await rig.unlock(h) == OK
        st, lk = await rig.lock(h, DISCARD)  # without it VidMm must assume queued references
        assert st == OK and lk.allocation != h

    run(main)


def test_rename_fails_under_memory_pressure() -> None:
    cfg = KernelConfig(
        segments=(kmd.SegmentDesc("aperture", 64 * 1024, "aperture"),),
        system_memory_bytes=16 * 1024,
    )

    async def main() -> None:
        rig = await Rig(cfg).setup()
        a = await rig.alloc(size=48 * 1024, segments="aperture")
        await rig.busy(a)
        st, _ = await rig.lock(a, DISCARD)
        assert st == BUSY  # no room for a second 48 KiB instance anywhere
        assert rig.k.statistics().rename_failures == 1
        rig.invariants()

    run(main)


async def _primary(rig: Rig) -> int:
    info = kmd.D3DDDI_ALLOCATIONINFO(
        private_driver_data=kmd.AllocationDesc(size=8192),
        flags=kmd.D3DDDI_ALLOCATIONINFO_FLAGS.Primary,
        vidpn_source_id=0,
    )
    ca = kmd.D3DKMT_CREATEALLOCATION(device=rig.device, allocation_info=[info])
    assert await kmd.D3DKMTCreateAllocation(rig.k, ca) == OK
    return info.allocation


def test_discard_is_ignored_for_pinned_and_primary() -> None:
    """KL-18: Discard is ignored for a pinned (Overlay) allocation and for a primary (pinned at
    creation, SW-6) → the lock behaves as a plain one (DonotWait counts again)."""

    async def main() -> None:
        rig = await Rig().setup()
        overlay = await rig.alloc(segments="aperture", overlay=True)
        primary = await _primary(rig)
        for pinned in (overlay, primary):
            await rig.busy(pinned)
            st, lk = await rig.lock(pinned, DISCARD | LF.DonotWait)
            assert st == BUSY
            st, lk = await rig.lock(pinned, DISCARD)
            assert st == OK and lk.allocation == pinned
            assert await rig.unlock(pinned) == OK
        assert rig.k.statistics().renames == 0

    run(main)


def test_instance_ordering_lcb9() -> None:
    async def main() -> None:
        rig = await Rig().setup()
        a0 = await rig.alloc(segments="aperture")
        st, lk = await rig.lock(a0, DISCARD)
        a1 = lk.allocation
        assert await rig.unlock(a1) == OK
        # within one buffer: a1 then a0 is invalid (RCB-6) …
        st, _ = await rig.render([CmdDraw(1, 1, 0, 4), CmdDraw(2, 0, 0, 4)], [a0, a1])
        assert st == kmd.STATUS_GRAPHICS_INVALID_ALLOCATION_INSTANCE
        # … a0 then a1 is fine (LCB-8: the switch happens mid-buffer)
        st, _ = await rig.render([CmdDraw(1, 0, 0, 4), CmdDraw(2, 1, 0, 4)], [a0, a1])
        assert st == OK
        # once a1 was referenced, a0 can be referenced no more
        st, _ = await rig.render([CmdDraw(3, 0, 0, 4)], [a0])
        assert st == kmd.STATUS_GRAPHICS_INVALID_ALLOCATION_INSTANCE
        st, _ = await rig.lock(a0)
        assert st in (kmd.STATUS_INVALID_PARAMETER,)  # KL-11 (retired) or freed
        st, _ = await rig.render([CmdDraw(4, 0, 0, 4)], [a1])
        assert st == OK
        rig.invariants()

    run(main)


def test_superseded_instance_stays_usable_until_the_new_one_is_referenced() -> None:
    """LA-13: after LockAsync(Discard) the worker keeps referencing the old instance until
    Rename; the old instance keeps its bytes for those draws."""

    async def main() -> None:
        rig = await Rig().setup()
        a0 = await rig.alloc(segments="aperture")
        _, lk = await rig.lock(a0)
        lk.data.write(0, b"AAAA")
        await rig.unlock(a0)
        st, lk = await rig.lock(a0, DISCARD)  # app thread: new instance
        a1 = lk.allocation
        lk.data.write(0, b"BBBB")
        st, _r1 = await rig.render([CmdDraw(1, 0, 0, 4)], [a0])  # worker, before Rename
        assert st == OK
        await rig.unlock(a1)
        st, _r2 = await rig.render([CmdDraw(2, 0, 0, 4)], [a1])  # after Rename
        assert st == OK
        await rig.k.wait_idle()
        data = {rec.draw_ids[0]: rec.commands[0].data for rec in rig.k.dma_records}
        assert data == {1: b"AAAA", 2: b"BBBB"}
        assert rig.k.statistics().live_instances == 1

    run(main)


def test_old_instance_locked_is_freed_only_after_unlock() -> None:
    """A NoOverwrite-style lock (IgnoreSync) held on the old instance keeps it alive; once
    unlocked and idle it is freed and its pointer refuses access."""

    async def main() -> None:
        rig = await Rig().setup()
        a0 = await rig.alloc(segments="aperture")
        st, held = await rig.lock(a0, LF.LockEntire | LF.IgnoreSync | LF.DonotWait)
        assert st == OK
        st, lk = await rig.lock(a0, DISCARD)
        a1 = lk.allocation
        await rig.unlock(a1)
        st, r = await rig.render([CmdDraw(1, 0, 0, 4)], [a1])
        await rig.k.wait_for_fence(r.fence)
        assert rig.k.statistics().live_instances == 2  # a0 retired but still locked
        held.data.write(0, b"late")  # still a valid mapping (LCB-1)
        assert await rig.unlock(a0) == OK
        assert rig.k.statistics().live_instances == 1
        try:
            held.data.read(0, 4)
        except kmd.AccessViolation:
            pass
        else:
            raise AssertionError("a dead pointer was readable")
        rig.invariants()

    r = run(main, check=False)
    assert r.failure is None and r.rules() == ["LCB-1"]
