"""Boundaries and mutants (issues 11, 14, 16): each test here fails on a specific wrong kernel —
a pinned allocation that starts in system memory, a segment-sized allocation refused, the lock's
PrivateDriverData not reaching DxgkDdiAcquireSwizzlingRange, a pinned lock that ignores a free
aperture, host memory allocated before the size is checked, a caller's mistake blamed on the
miniport."""

from __future__ import annotations

import tracemalloc
from typing import Any

import kmd
from kmd import D3DDDICB_LOCKFLAGS as LF
from kmd import KernelConfig, SegmentDesc
from kmd.miniport import DXGKARG_ACQUIRESWIZZLINGRANGE, ReferenceMiniport
from tests.support.kernel import OK, Rig, kmd_events, run, run_traced

NO_VIDEO_MEMORY = kmd.STATUS_GRAPHICS_NO_VIDEO_MEMORY
PINNED = kmd.STATUS_GRAPHICS_CANT_EVICT_PINNED_ALLOCATION
MB = kmd.MiB


def _aperture_only(size: int = 1 * MB) -> KernelConfig:
    return KernelConfig(segments=(SegmentDesc("aperture", size, "aperture"),))


def test_a_pinned_allocation_never_starts_in_system_memory() -> None:
    """CA-15 / SW-6: VidMm may page an ordinary allocation out at creation, never a pinned one:
    with its only segment full of a pinned resident, it is STATUS_GRAPHICS_NO_VIDEO_MEMORY."""

    async def main() -> None:
        rig = await Rig(_aperture_only()).setup()
        await rig.alloc(1 * MB, segments="aperture", overlay=True)
        await rig.alloc(1 * MB, segments="aperture", overlay=True, expect=NO_VIDEO_MEMORY)
        plain = await rig.alloc(1 * MB, segments="aperture")  # paged out: system memory
        assert plain and rig.k.statistics().system_memory_used == 1 * MB
        rig.invariants()

    run(main)


def test_an_allocation_exactly_the_segments_size_fits() -> None:
    """AC-11 boundary: exactly the largest segment's size is placeable; one page more never is
    (refused at once, nothing paged out for it)."""

    async def main() -> None:
        rig = await Rig(_aperture_only()).setup()
        h = await rig.alloc(1 * MB, segments="aperture")
        usage = {n: u for n, u, _ in rig.k.statistics().segment_usage}
        assert h and usage["aperture"] == 1 * MB
        await rig.alloc(1 * MB + 4096, segments="aperture", expect=NO_VIDEO_MEMORY)
        assert rig.k.statistics().evictions == 0
        rig.invariants()

    run(main)


class RecordingMiniport(ReferenceMiniport):
    """The reference miniport, remembering what each DxgkDdiAcquireSwizzlingRange received."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.acquired: list[int] = []

    def dxgk_ddi_acquire_swizzling_range(
        self, h_adapter: Any, args: DXGKARG_ACQUIRESWIZZLINGRANGE
    ) -> kmd.NTSTATUS:
        self.acquired.append(args.private_driver_data)
        return super().dxgk_ddi_acquire_swizzling_range(h_adapter, args)


def test_lock_private_driver_data_reaches_acquire_swizzling_range() -> None:
    """D3DKMT_LOCK.PrivateDriverData is handed to DxgkDdiAcquireSwizzlingRange (e.g. a MIP
    level, SW-2)."""

    async def main() -> None:
        rig = Rig()
        rig.k = kmd.Kernel(miniport_factory=RecordingMiniport)
        await rig.setup()
        swizzled = await rig.alloc(segments="local", swizzled=True)
        st, _ = await rig.lock(swizzled, private_driver_data=7)
        assert st == OK
        assert await rig.unlock(swizzled) == OK
        plain = await rig.alloc(segments="any")
        st, _ = await rig.lock(plain, LF.LockEntire | LF.AcquireAperture, private_driver_data=9)
        assert st == OK
        mp = rig.k.miniport
        assert isinstance(mp, RecordingMiniport) and mp.acquired == [7, 9]

    run(main)


def test_a_pinned_lock_uses_a_free_aperture() -> None:
    """KL-22 / SW-2: a pinned allocation in CPU-invisible memory is locked through a free
    unswizzling aperture (not only when AcquireAperture asks for one); only without a free one is
    the answer STATUS_GRAPHICS_CANT_EVICT_PINNED_ALLOCATION."""

    async def main() -> None:
        rig = await Rig(KernelConfig(swizzling_apertures=1)).setup()
        pinned = await rig.alloc(segments="local", capture=True)  # pinned, not swizzled
        other = await rig.alloc(segments="local", swizzled=True)
        st, a = await rig.lock(pinned)
        assert st == OK and a.data is not None
        a.data.write(0, b"pin")
        st, _ = await rig.lock(other)  # the only aperture is taken: evicted instead
        assert st == OK
        assert await rig.unlock(other) == OK
        st, _ = await rig.lock(pinned)
        assert st == kmd.STATUS_GRAPHICS_ALLOCATION_BUSY  # an aperture lock is exclusive (KL-14)
        assert await rig.unlock(pinned) == OK
        held = await rig.alloc(segments="local", swizzled=True)
        st, _ = await rig.lock(held)  # takes the aperture back
        assert st == OK
        st, b = await rig.lock(pinned)
        assert st == PINNED and b.data is None
        rig.invariants()

    _, events = run_traced(main)
    locks = [e for e in kmd_events(events, "kmd.lock") if e["status_name"] == "STATUS_SUCCESS"]
    assert locks[0]["swizzle_range"] is True


def test_an_oversized_allocation_is_refused_before_any_host_memory() -> None:
    """Issue 14: the size is checked before anything is allocated, and an instance's bytes
    appear only when the CPU or the GPU first touches them: a 4 GiB - 4 KiB request is refused
    with STATUS_GRAPHICS_NO_VIDEO_MEMORY (AC-11) without allocating it."""
    peaks: list[int] = []

    async def main() -> None:
        rig = await Rig().setup()
        tracemalloc.start()
        try:
            await rig.alloc(0xFFFFF000, expect=NO_VIDEO_MEMORY)
            await rig.alloc(256 * MB, expect=NO_VIDEO_MEMORY)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()

    run(main)
    assert peaks[0] < 4 * MB, peaks


def test_bytes_appear_on_first_touch() -> None:
    async def main() -> None:
        rig = await Rig().setup()
        h = await rig.alloc(16 * MB, segments="local")
        inst = rig.k.handles.get(h, kmd.dxgkrnl.HandleType.ALLOCATION)
        assert inst is not None and not inst.has_bytes  # created and placed, not touched
        await rig.busy(h)  # the GPU reads it
        await rig.k.wait_idle()
        assert inst.has_bytes
        g = await rig.alloc(8192, segments="aperture")
        ginst = rig.k.handles.get(g, kmd.dxgkrnl.HandleType.ALLOCATION)
        st, lk = await rig.lock(g)
        assert st == OK and not ginst.has_bytes  # a lock maps; the first access allocates
        assert lk.data.read(0, 4) == bytes(4) and ginst.has_bytes
        rig.invariants()

    run(main)


def test_a_callers_oversized_private_data_is_the_callers_fault() -> None:
    """CA-2 / CA-6: a size no 32-bit allocation can have is bad private data from the caller —
    the miniport refuses it (STATUS_INVALID_PARAMETER) — not a miniport answer breaking CA-6."""

    async def main() -> None:
        rig = await Rig().setup()
        for size in (0xFFFFF001, 1 << 33):
            await rig.alloc(size, expect=kmd.STATUS_INVALID_PARAMETER)

    result, events = run_traced(main, check=False)
    assert result.failure is None and "CA-6" not in result.rules(), result.rules()
    refused = kmd_events(events, "kmd.alloc.create")
    assert [e["rule"] for e in refused if e["status_name"] != "STATUS_SUCCESS"] == ["CA-2", "CA-2"]


def test_invariants_account_for_every_swizzling_range() -> None:
    """VidMm.check: every unswizzling aperture is free or held by exactly one live lock (the
    check that replaced a negative-length test that could never fire)."""

    async def main() -> None:
        rig = await Rig(KernelConfig(swizzling_apertures=2)).setup()
        h = await rig.alloc(segments="local", swizzled=True)
        st, _ = await rig.lock(h)
        assert st == OK
        rig.invariants()  # 1 held + 1 free
        rig.k.vidmm.free_swizzle_ranges += 1  # as if the range had been released twice
        assert any("swizzling ranges" in p for p in rig.k.check_invariants())
        rig.k.vidmm.free_swizzle_ranges -= 1
        assert await rig.unlock(h) == OK
        rig.invariants()  # 0 held + 2 free

    run(main)


def test_a_failed_discard_lock_leaves_no_new_instance() -> None:
    """No half-applied lock: a Discard that renamed and then could not make the new instance
    CPU-accessible (DonotEvict, no free aperture: KL-20) frees the new instance again, and the
    allocation's current instance is the old one."""

    async def main() -> None:
        rig = await Rig(KernelConfig(swizzling_apertures=0)).setup()
        h = await rig.alloc(segments="local", swizzled=True)
        flags = LF.LockEntire | LF.Discard | LF.DonotEvict
        st, a = await rig.lock(h, flags)
        assert st == kmd.STATUS_GRAPHICS_UNSWIZZLING_APERTURE_UNAVAILABLE
        assert a.allocation == h and a.data is None  # out fields untouched (KL-1)
        inst = rig.k.handles.get(h, kmd.dxgkrnl.HandleType.ALLOCATION)
        assert inst is not None and inst.alloc.instances == [inst] and inst.alloc.current is inst
        assert rig.k.statistics().live_instances == 1
        st, a = await rig.lock(h)  # evicted to system memory, then locked
        assert st == OK and a.allocation == h
        rig.invariants()

    run(main)
