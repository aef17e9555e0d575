"""Every documented return code of LockAsync, UnlockAsync, Rename, Lock and Unlock, each produced
by setting up its documented condition (umd-runtime §1–§4), plus the undocumented
``E_INVALIDARG`` decisions for runtime bugs."""

from __future__ import annotations

import kmd
import umd
from tests.support.driver import (
    CBF,
    DEVICEREMOVED,
    DYNAMIC_VB,
    E_INVALIDARG,
    E_NOTIMPL,
    E_OUTOFMEMORY,
    LAF,
    LKF,
    RF,
    S_OK,
    WASSTILLDRAWING,
    Rig,
    pattern,
    run,
)
from umd import HEAP_COSTS

VB_COST = HEAP_COSTS["resource"] + HEAP_COSTS["descriptor"]


def heap(n: int) -> umd.DriverConfig:
    return umd.DriverConfig(heap_bytes=n)


# ---- LockAsync -----------------------------------------------------------------------------


def test_lockasync_discard_s_ok_returns_cookie_pointer_and_pitch() -> None:
    async def prog(r: Rig) -> None:
        vb = await r.vb(256)
        old = r.dev.tracked(vb)
        hr, la = await r.lock_async(vb, LAF.Discard)
        assert hr == S_OK
        assert la.cookie != 0 and la.cookie != vb
        assert la.surf_data.allocation != old  # a new instance (LA-8, LCB-5)
        assert la.pitch == 256 and la.slice_pitch == 256
        lock = r.last("lock")
        assert lock.flags & CBF.Discard and lock.allocation == old
        la.surf_data.write(0, b"abc")  # the pointer is live
        assert r.dev.tracked(vb) == old  # LA-13

    run(prog)


def test_lockasync_e_outofmemory_when_the_driver_heap_is_exhausted() -> None:
    """One VB and one lock record fit; a Discard also needs a cookie record → E_OUTOFMEMORY
    before any callback; a NoOverwrite lock (one record) still fits."""

    async def prog(r: Rig) -> None:
        vb = await r.vb(256)
        mark = r.mark()
        hr, la = await r.lock_async(vb, LAF.Discard)
        assert hr == E_OUTOFMEMORY and la.cookie == 0
        assert r.since(mark) == []  # nothing reached the kernel
        hr, _ = await r.lock_async(vb, LAF.NoOverwrite)
        assert hr == S_OK
        assert r.dev.heap_used() == VB_COST + HEAP_COSTS["lock"]

    run(prog, config=heap(VB_COST + HEAP_COSTS["lock"]))


def test_lockasync_wasstilldrawing_when_the_rename_fails() -> None:
    """Two instances at most (Q-17): the second Discard before any Rename cannot rename."""

    async def prog(r: Rig) -> None:
        vb = await r.vb(256)
        hr, _ = await r.lock_async(vb, LAF.Discard)
        assert hr == S_OK and await r.unlock_async(vb) == S_OK
        hr, la = await r.lock_async(vb, LAF.Discard)
        assert hr == WASSTILLDRAWING and la.cookie == 0
        assert r.last("lock").hr == kmd.D3DERR_WASSTILLDRAWING
        # nothing is left locked or half-recorded: UnlockAsync has nothing to unlock
        assert await r.unlock_async(vb) == E_INVALIDARG

    run(prog, kernel_config=kmd.KernelConfig(max_rename_instances=2))


def test_lockasync_e_notimpl_for_nooverwrite_on_local_only_allocations() -> None:
    """LA-15 / Q-8: a render-target VB lives in local video memory only."""

    async def prog(r: Rig) -> None:
        vb = await r.vb(256, flags=DYNAMIC_VB | RF.RenderTarget)
        mark = r.mark()
        hr, _ = await r.lock_async(vb, LAF.NoOverwrite)
        assert hr == E_NOTIMPL
        assert r.since(mark, "lock") == []

    run(prog)


def test_lockasync_e_notimpl_for_discard_of_a_multi_subresource_resource() -> None:
    async def prog(r: Rig) -> None:
        hr, tex = await r.create(256, flags=int(RF.Texture | RF.Dynamic), subresources=3)
        assert hr == S_OK
        hr, _ = await r.lock_async(tex, LAF.Discard, sub=1)
        assert hr == E_NOTIMPL

    run(prog)


def test_lockasync_e_notimpl_for_other_lock_callback_failures() -> None:
    """Q-13: pfnLockCb answers ERROR_GRAPHICS_TOO_MANY_REFERENCES (one pending reference is the
    limit and a submitted draw holds it) → LockAsync says E_NOTIMPL, the runtime falls back."""

    async def prog(r: Rig) -> None:
        vb = await r.vb(256)
        await r.stream(vb)
        assert await r.draw(1) == S_OK and await r.flush() == S_OK
        hr, _ = await r.lock_async(vb, LAF.NoOverwrite)
        assert r.last("lock").hr == kmd.ERROR_GRAPHICS_TOO_MANY_REFERENCES
        assert hr == E_NOTIMPL

    run(prog, kernel_config=kmd.KernelConfig(max_pending_references=1))


def test_lockasync_passes_device_removed_through() -> None:
    async def prog(r: Rig) -> None:  # Q-13, ERR-3
        vb = await r.vb(256)
        r.kernel.inject_removal()
        for flags in (LAF.Discard, LAF.NoOverwrite, 0):
            hr, _ = await r.lock_async(vb, flags)
            assert hr == DEVICEREMOVED, kmd.status_name(hr)

    run(prog)


def test_lockasync_passes_a_callback_e_outofmemory_through() -> None:
    """Q-13 mapping: the kernel never runs out of page arrays here, so the callback is made to
    answer E_OUTOFMEMORY; LockAsync returns it unchanged (not WASSTILLDRAWING, not E_NOTIMPL)."""

    async def prog(r: Rig) -> None:
        vb = await r.vb(256)

        async def oom(h: object, args: object) -> int:
            return E_OUTOFMEMORY

        r.dev.callbacks.pfn_lock_cb = oom
        for flags in (LAF.Discard, LAF.NoOverwrite):
            hr, _ = await r.lock_async(vb, flags)
            assert hr == E_OUTOFMEMORY

    run(prog)


def test_lockasync_e_invalidarg_for_runtime_bugs() -> None:
    async def prog(r: Rig) -> None:
        vb = await r.vb(256)
        assert (await r.lock_async(0xBAD, LAF.Discard))[0] == E_INVALIDARG
        assert (await r.lock_async(vb, LAF.Discard, sub=1))[0] == E_INVALIDARG
        assert (await r.lock_async(vb, LAF.Discard | LAF.NoOverwrite))[0] == E_INVALIDARG  # LA-5
        assert (await r.lock_async(vb, LAF.RangeValid | LAF.AreaValid))[0] == E_INVALIDARG
        assert (await r.lock_async(vb, 0x80))[0] == E_INVALIDARG  # LA-7 reserved
        assert (await r.lock_async(vb, LAF.NoOverwrite, rng=(200, 100)))[0] == E_INVALIDARG
        assert (await r.lock_async(vb, LAF.NoOverwrite))[0] == S_OK
        assert (await r.lock_async(vb, LAF.NoOverwrite))[0] == E_INVALIDARG  # already locked
        assert await r.funcs.pfn_lock_async(object(), None) == E_INVALIDARG

    run(prog)


def test_lockasync_range_offsets_the_pointer() -> None:
    async def prog(r: Rig) -> None:
        vb = await r.vb(256)
        hr, la = await r.lock_async(vb, LAF.NoOverwrite, rng=(64, 32))
        assert hr == S_OK and isinstance(la.surf_data, umd.LockedRange)
        la.surf_data.write(0, b"\x11" * 32)
        la.surf_data[0:2] = b"\x22\x22"
        assert la.surf_data[1] == 0x22 and la.surf_data.read(2, 2) == b"\x11\x11"
        assert la.surf_data.base.read(64, 3) == b"\x22\x22\x11"
        assert la.surf_data.base.read(63, 1) == b"\x00"

    run(prog)


# ---- UnlockAsync ---------------------------------------------------------------------------


def test_unlockasync_s_ok_and_e_invalidarg_cases() -> None:
    """UA-3 / S-7: never locked, locked through Lock (Q-20), twice, wrong subresource,
    reserved flags (UA-7)."""

    async def prog(r: Rig) -> None:
        vb = await r.vb(256)
        plain = await r.vb(256, flags=int(RF.VertexBuffer))
        assert await r.unlock_async(vb) == E_INVALIDARG  # never locked
        hr, _ = await r.lock(plain)
        assert hr == S_OK
        assert await r.unlock_async(plain) == E_INVALIDARG  # a Lock lock does not count
        assert await r.unlock(plain) == S_OK
        hr, _ = await r.lock_async(vb, LAF.NoOverwrite)
        assert hr == S_OK
        assert await r.unlock_async(vb, sub=1) == E_INVALIDARG
        assert await r.unlock_async(vb, flags=0x2) == E_INVALIDARG
        assert await r.unlock_async(vb) == S_OK
        assert await r.unlock_async(vb) == E_INVALIDARG  # second time

    run(prog)


def test_unlockasync_e_outofmemory_keeps_the_lock_until_memory_is_back() -> None:
    async def prog(r: Rig) -> None:
        vb = await r.vb(256)
        spare = await r.vb(256)
        hr, _ = await r.lock_async(vb, LAF.NoOverwrite)
        assert hr == S_OK
        mark = r.mark()
        assert await r.unlock_async(vb) == E_OUTOFMEMORY
        assert r.since(mark) == []
        assert (vb, 0) in r.dev.outstanding_locks()
        assert await r.destroy(spare) == S_OK  # frees a resource's worth of heap
        assert await r.unlock_async(vb) == S_OK
        assert r.dev.heap_used() == VB_COST

    run(prog, config=heap(2 * VB_COST + HEAP_COSTS["lock"]))


# ---- Rename --------------------------------------------------------------------------------


def test_rename_s_ok_switches_tracking() -> None:
    async def prog(r: Rig) -> None:
        vb = await r.vb(256)
        hr, la = await r.lock_async(vb, LAF.Discard)
        assert hr == S_OK
        assert await r.rename(vb, la.cookie) == S_OK
        assert r.dev.tracked(vb) == la.surf_data.allocation  # RN-4

    run(prog)


def test_rename_e_outofmemory_leaves_tracking_and_cookie() -> None:
    async def prog(r: Rig) -> None:
        vb = await r.vb(256)
        spare = await r.vb(256)
        hr, la = await r.lock_async(vb, LAF.Discard)
        assert hr == S_OK
        old = r.dev.tracked(vb)
        assert await r.rename(vb, la.cookie) == E_OUTOFMEMORY
        assert r.dev.tracked(vb) == old and r.dev.pending_cookies(vb) == [la.cookie]
        assert await r.destroy(spare) == S_OK
        assert await r.rename(vb, la.cookie) == S_OK
        assert r.dev.tracked(vb) == la.surf_data.allocation

    run(prog, config=heap(2 * VB_COST + HEAP_COSTS["lock"] + HEAP_COSTS["cookie"]))


def test_rename_e_invalidarg_for_bad_cookies() -> None:
    """Undocumented (an emulator decision): unknown, used, or another resource's cookie."""

    async def prog(r: Rig) -> None:
        vb = await r.vb(256)
        other = await r.vb(256)
        assert await r.rename(vb, 0x1234) == E_INVALIDARG
        hr, la = await r.lock_async(vb, LAF.Discard)
        assert hr == S_OK
        assert await r.rename(other, la.cookie) == E_INVALIDARG  # RN-6
        assert await r.rename(vb, la.cookie, sub=1) == E_INVALIDARG
        assert await r.rename(vb, la.cookie) == S_OK
        assert await r.rename(vb, la.cookie) == E_INVALIDARG  # RN-1: used

    run(prog)


# ---- Lock / Unlock ---------------------------------------------------------------------------


def test_lock_s_ok_calls_lock_cb() -> None:
    async def prog(r: Rig) -> None:  # LK-6
        vb = await r.vb(256, flags=int(RF.VertexBuffer))
        hr, lk = await r.lock(vb, LKF.WriteOnly)
        assert hr == S_OK and r.count("lock") == 1
        assert r.last("lock").flags == CBF.LockEntire | CBF.WriteOnly
        lk.surf_data.write(0, b"x")
        assert await r.unlock(vb) == S_OK
        assert r.last("unlock").args.allocations == [lk.surf_data.allocation]  # LK-11

    run(prog)


def test_lock_and_unlock_e_outofmemory() -> None:
    async def prog(r: Rig) -> None:
        vb = await r.vb(256, flags=int(RF.VertexBuffer))
        spare = await r.vb(256, flags=int(RF.VertexBuffer))
        hr, _ = await r.lock(vb)
        assert hr == S_OK  # the last lock record that fits
        hr, _ = await r.lock(spare)
        assert hr == E_OUTOFMEMORY
        assert await r.unlock(vb) == E_OUTOFMEMORY  # no room for the unlock request
        assert await r.destroy(spare) == S_OK
        assert await r.unlock(vb) == S_OK

    run(prog, config=heap(2 * VB_COST + HEAP_COSTS["lock"]))


def test_lock_wasstilldrawing_with_donotwait_on_a_busy_resource() -> None:
    """LK-7 / S-14: busy with DoNotWait → WASSTILLDRAWING; without it, Lock waits for the GPU."""

    async def prog(r: Rig) -> None:
        vb = await r.vb(256, flags=int(RF.VertexBuffer))
        await r.stream(vb)
        assert await r.draw(1) == S_OK
        # referenced only by the unsubmitted buffer: Lock submits first (SCH-6), then it is busy
        hr, _ = await r.lock(vb, LKF.DoNotWait)
        assert hr == WASSTILLDRAWING and r.count("render") == 1
        fence = r.last("render").args.fence
        assert r.kernel.completed_fence < fence
        hr, _ = await r.lock(vb)
        assert hr == S_OK and r.kernel.completed_fence >= fence
        assert await r.unlock(vb) == S_OK

    run(prog)


def test_lock_passes_device_removed_through() -> None:
    async def prog(r: Rig) -> None:  # ERR-3, LCB-16
        vb = await r.vb(256, flags=int(RF.VertexBuffer))
        r.kernel.inject_removal()
        hr, _ = await r.lock(vb)
        assert hr == DEVICEREMOVED
        hr, _ = await r.lock(vb, LKF.Discard)
        assert hr == DEVICEREMOVED

    run(prog)


def test_unlock_e_invalidarg_when_not_locked_by_lock() -> None:
    async def prog(r: Rig) -> None:  # LK-13, Q-20
        vb = await r.vb(256)
        assert await r.unlock(vb) == E_INVALIDARG
        hr, _ = await r.lock_async(vb, LAF.NoOverwrite)
        assert hr == S_OK
        assert await r.unlock(vb) == E_INVALIDARG  # a LockAsync lock does not count
        assert await r.unlock_async(vb) == S_OK

    run(prog)


# ---- CreateResource / heap accounting --------------------------------------------------------


def test_create_resource_codes_and_callback_errors_pass_through() -> None:
    async def prog(r: Rig) -> None:
        hr, _ = await r.create(256)
        assert hr == S_OK
        hr, _ = await r.create(256)
        assert hr == E_OUTOFMEMORY and r.count("allocate") == 1  # heap: no callback
        r.kernel.inject_removal()
        r.dev.config = umd.DriverConfig()  # room again: now the kernel says no
        hr, _ = await r.create(256)
        assert hr == DEVICEREMOVED  # ERR-1, AC-10

    run(prog, config=heap(VB_COST))


def test_create_resource_e_invalidarg() -> None:
    async def prog(r: Rig) -> None:
        from umd.ddi import D3DDDI_POOL, D3DDDIARG_CREATERESOURCE

        for args in (
            D3DDDIARG_CREATERESOURCE(1, D3DDDI_POOL.VIDEOMEMORY, 0, []),
            D3DDDIARG_CREATERESOURCE(1, D3DDDI_POOL.SYSTEMMEM, 0, [umd.ddi.D3DDDI_SURFACEINFO(8)]),
        ):
            assert await r.funcs.pfn_create_resource(r.dev, args) == E_INVALIDARG
        assert await r.funcs.pfn_create_resource(r.dev, "nope") == E_INVALIDARG

    run(prog)


def test_heap_returns_to_baseline_after_a_busy_sequence() -> None:
    """Every record taken is given back: locks, cookies (used and dropped), descriptors of
    superseded instances (at the next submit), unlock requests."""

    async def prog(r: Rig) -> None:
        vb = await r.vb(256)
        await r.stream(vb)
        for i in range(5):
            hr, la = await r.lock_async(vb, LAF.Discard)
            assert hr == S_OK
            la.surf_data.write(0, pattern(i, 256))
            assert await r.unlock_async(vb) == S_OK
            assert await r.draw(2 * i) == S_OK
            assert await r.rename(vb, la.cookie) == S_OK
            assert await r.draw(2 * i + 1) == S_OK
            hr, _ = await r.lock_async(vb, LAF.NoOverwrite)
            assert hr == S_OK and await r.unlock_async(vb) == S_OK
            assert await r.flush() == S_OK
            await r.idle()
        assert r.dev.heap_used() == VB_COST
        assert await r.destroy(vb) == S_OK
        assert r.dev.heap_used() == 0

    run(prog)
