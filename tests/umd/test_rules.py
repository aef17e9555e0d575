"""The LockAsync / UnlockAsync / Rename rules and the open-question decisions, checked through
the callbacks the driver makes and the bytes the GPU really reads."""

from __future__ import annotations

import kmd
import umd
import vthreads as vt
from tests.support.driver import (
    CBF,
    E_INVALIDARG,
    LAF,
    LKF,
    RF,
    S_OK,
    WASSTILLDRAWING,
    Rig,
    pattern,
    run,
)
from umd.ddi import D3DDDI_POOL

# ---- LA-9 / LCB-7: NoExistingReference ------------------------------------------------------


def test_la9_noexistingreference_only_when_runtime_and_driver_have_no_references() -> None:
    async def prog(r: Rig) -> None:
        vb = await r.vb(256)
        await r.stream(vb)
        # runtime says "no references" and the driver's buffer is empty → set
        hr, la = await r.lock_async(vb, LAF.Discard | LAF.NoExistingReferences)
        assert hr == S_OK and r.last("lock").flags & CBF.NoExistingReference
        assert await r.unlock_async(vb) == S_OK and await r.rename(vb, la.cookie) == S_OK
        # the driver's own unsubmitted buffer references the VB → not set, whatever the runtime
        assert await r.draw(1) == S_OK
        hr, la = await r.lock_async(vb, LAF.Discard | LAF.NoExistingReferences)
        assert hr == S_OK
        assert r.last("lock").flags & CBF.Discard
        assert not r.last("lock").flags & CBF.NoExistingReference
        assert await r.unlock_async(vb) == S_OK and await r.rename(vb, la.cookie) == S_OK
        # submitted: the buffer is empty again, but the runtime did not promise → not set
        assert await r.flush() == S_OK
        hr, _ = await r.lock_async(vb, LAF.Discard)
        assert hr == S_OK and not r.last("lock").flags & CBF.NoExistingReference

    run(prog)


def test_la9_any_instance_counts_as_a_reference() -> None:
    """LCB-7: "no reference to *any* instance": a draw of the old instance, encoded before a
    Rename, still forbids NoExistingReference after it."""

    async def prog(r: Rig) -> None:
        vb = await r.vb(256)
        await r.stream(vb)
        assert await r.draw(1) == S_OK  # references A0
        hr, la = await r.lock_async(vb, LAF.Discard)
        assert hr == S_OK and await r.unlock_async(vb) == S_OK
        assert await r.rename(vb, la.cookie) == S_OK  # tracking → A1; A0 still in the buffer
        hr, _ = await r.lock_async(vb, LAF.Discard | LAF.NoExistingReferences)
        assert hr == S_OK and not r.last("lock").flags & CBF.NoExistingReference

    run(prog)


# ---- LA-10 / RCB-8: no flush on rename failure ---------------------------------------------


def test_la10_rename_failure_makes_no_render_call() -> None:
    async def prog(r: Rig) -> None:
        vb = await r.vb(256)
        await r.stream(vb)
        assert await r.draw(1) == S_OK
        hr, _ = await r.lock_async(vb, LAF.Discard)
        assert hr == S_OK and await r.unlock_async(vb) == S_OK
        assert await r.draw(2) == S_OK
        mark = r.mark()
        hr, _ = await r.lock_async(vb, LAF.Discard)
        assert hr == WASSTILLDRAWING
        assert [c.name for c in r.since(mark)] == ["lock"]  # one failed pfnLockCb, nothing else
        assert r.count("render") == 0
        assert [c.draw_id for c in r.dev.pending_commands()] == [1, 2]  # buffer untouched

    run(prog, kernel_config=kmd.KernelConfig(max_rename_instances=2))


def test_la10_noexistingreferences_rename_failure_fails_at_once_without_waiting() -> None:
    """Seed 000: "fail calls to LockAsync if renaming fails". With NoExistingReferences the
    driver used to pass NoExistingReference (LA-9) although the current instance was busy and
    no new one fitted: VidMm waited for the GPU inside pfnLockCb, under the driver's mutex
    (KL-8: DonotWait cannot stop that). Now it asks first (a DonotWait lock: busy), renames
    with a plain Discard, and returns WASSTILLDRAWING at once."""

    async def prog(r: Rig) -> None:
        vb = await r.vb(256)
        await r.stream(vb)
        assert await r.draw(1) == S_OK
        hr, la = await r.lock_async(vb, LAF.Discard)
        assert hr == S_OK and await r.unlock_async(vb) == S_OK
        assert await r.rename(vb, la.cookie) == S_OK
        assert await r.draw(2) == S_OK and await r.flush() == S_OK  # both busy
        t0, mark = vt.now(), r.mark()
        hr, _ = await r.lock_async(vb, LAF.Discard | LAF.NoExistingReferences)
        assert hr == WASSTILLDRAWING and vt.now() == t0
        mask = CBF.Discard | CBF.NoExistingReference | CBF.DonotWait
        assert [(c.name, c.flags & mask, c.hr) for c in r.since(mark)] == [
            ("lock", CBF.DonotWait, WASSTILLDRAWING), ("lock", CBF.Discard, WASSTILLDRAWING)]
        assert r.count("render") == 1  # only our flush: no pfnRenderCb from LockAsync

    run(prog, kernel_config=kmd.KernelConfig(max_rename_instances=2))


# ---- LA-13 / RN-4 / RN-5: tracking moves only at Rename ----------------------------------


def test_la13_tracking_unchanged_until_rename_and_draws_read_accordingly() -> None:
    """S-1: draws encoded between LockAsync(Discard) and Rename read the old instance (the
    bytes before the lock); after Rename they read what the app wrote into the new one."""

    async def prog(r: Rig) -> None:
        vb = await r.vb(256)
        await r.fill(vb, 1)
        a0 = r.dev.tracked(vb)
        await r.stream(vb)
        hr, la = await r.lock_async(vb, LAF.Discard)
        assert hr == S_OK
        a1 = la.surf_data.allocation
        la.surf_data.write(0, pattern(2, 256))
        assert r.dev.tracked(vb) == a0 and r.dev.newest(vb) == a1
        assert await r.draw(10) == S_OK  # a draw the runtime had queued before the lock
        assert await r.unlock_async(vb) == S_OK
        assert r.dev.tracked(vb) == a0  # UnlockAsync does not switch either
        assert await r.draw(11) == S_OK
        assert await r.rename(vb, la.cookie) == S_OK
        assert r.dev.tracked(vb) == a1
        assert await r.draw(12) == S_OK
        assert await r.flush() == S_OK
        await r.idle()
        reads = r.reads()
        assert reads[10] == [(a0, pattern(1, 256)[:64])]
        assert reads[11] == [(a0, pattern(1, 256)[:64])]
        assert reads[12] == [(a1, pattern(2, 256)[:64])]

    run(prog)


# ---- UA-4 / LCB-20 / S-10: UnlockAsync unlocks the new instance, before or after Rename ----


def test_ua4_unlockasync_unlocks_the_new_instance_before_rename() -> None:
    async def prog(r: Rig) -> None:
        vb = await r.vb(256)
        a0 = r.dev.tracked(vb)
        hr, la = await r.lock_async(vb, LAF.Discard)
        assert hr == S_OK
        a1 = la.surf_data.allocation
        assert await r.unlock_async(vb) == S_OK
        assert r.last("unlock").args.allocations == [a1] != [a0]
        assert la.surf_data.state == "unlocked"
        assert await r.rename(vb, la.cookie) == S_OK

    run(prog)


def test_s10_unlockasync_after_rename_unlocks_the_same_handle() -> None:
    async def prog(r: Rig) -> None:
        vb = await r.vb(256)
        hr, la = await r.lock_async(vb, LAF.Discard)
        assert hr == S_OK
        a1 = la.surf_data.allocation
        assert await r.rename(vb, la.cookie) == S_OK  # the worker got there first
        assert await r.unlock_async(vb) == S_OK
        assert r.last("unlock").args.allocations == [a1]
        assert r.last("unlock").hr == S_OK

    run(prog)


def test_s10_unlockasync_and_rename_race_on_two_threads() -> None:
    """UnlockAsync (app) and Rename (worker) in either order, chosen by the scheduler."""
    orders = set()
    for seed in range(12):

        async def prog(r: Rig) -> None:
            vb = await r.vb(256)
            await r.stream(vb)
            hr, la = await r.lock_async(vb, LAF.Discard)
            assert hr == S_OK
            order: list[str] = []

            async def worker() -> None:
                assert await r.rename(vb, la.cookie) == S_OK
                order.append("rename")
                assert await r.draw(1) == S_OK and await r.flush() == S_OK

            w = umd_spawn("worker", worker)
            assert await r.unlock_async(vb) == S_OK
            order.append("unlock")
            await w.join()
            assert r.last("unlock").args.allocations == [la.surf_data.allocation]
            return tuple(order)

        res = run(prog, strategy="random", seed=seed)
        orders.add(res.value)
    assert orders == {("rename", "unlock"), ("unlock", "rename")}


def umd_spawn(name: str, fn: object) -> object:
    import vthreads as vt

    return vt.spawn(name, fn)  # type: ignore[arg-type]


# ---- S-11 / Q-3: several Discards before the first Rename -----------------------------------


def test_s11_three_discards_before_the_first_rename() -> None:
    """Cookies C1..C3 handed out before the worker reaches Rename(C1); the renames apply in
    order and each stretch of draws reads the bytes of its own Discard."""

    async def prog(r: Rig) -> None:
        vb = await r.vb(256)
        await r.fill(vb, 100)
        a0 = r.dev.tracked(vb)
        await r.stream(vb)
        # one submitted draw of the filled instance retires the very first one (LCB-9), so the
        # three Discards below fit in the kernel's four live instances
        assert await r.draw(9) == S_OK and await r.flush() == S_OK
        await r.idle()
        cookies, insts = [], []
        for i in (1, 2, 3):
            hr, la = await r.lock_async(vb, LAF.Discard)
            assert hr == S_OK
            la.surf_data.write(0, pattern(i, 256))
            assert await r.unlock_async(vb) == S_OK
            cookies.append(la.cookie)
            insts.append(la.surf_data.allocation)
        assert len(set(cookies)) == 3 and len({a0, *insts}) == 4
        assert r.dev.tracked(vb) == a0 and r.dev.pending_cookies(vb) == cookies
        assert await r.draw(10) == S_OK
        for i, c in enumerate(cookies):
            assert await r.rename(vb, c) == S_OK
            assert r.dev.tracked(vb) == insts[i]
            assert await r.draw(11 + i) == S_OK
        assert r.dev.pending_cookies(vb) == []
        assert await r.flush() == S_OK
        await r.idle()
        reads = r.reads()
        assert reads[10] == [(a0, pattern(100, 256)[:64])]
        for i in range(3):
            assert reads[11 + i] == [(insts[i], pattern(i + 1, 256)[:64])]

    run(prog)


def test_q3_a_later_rename_kills_earlier_cookies() -> None:
    """Renames apply in cookie order: Rename(C2) first makes C1 dead (going back would reference
    an older instance after a newer one, LCB-9) → E_INVALIDARG."""

    async def prog(r: Rig) -> None:
        vb = await r.vb(256)
        hr, la1 = await r.lock_async(vb, LAF.Discard)
        assert hr == S_OK and await r.unlock_async(vb) == S_OK
        hr, la2 = await r.lock_async(vb, LAF.Discard)
        assert hr == S_OK and await r.unlock_async(vb) == S_OK
        assert await r.rename(vb, la2.cookie) == S_OK
        assert r.dev.pending_cookies(vb) == []
        assert await r.rename(vb, la1.cookie) == E_INVALIDARG
        assert r.dev.tracked(vb) == la2.surf_data.allocation

    run(prog)


def test_q3_cookies_die_at_destroy_and_at_a_renaming_sync_lock() -> None:
    async def prog(r: Rig) -> None:
        vb = await r.vb(256)
        hr, la = await r.lock_async(vb, LAF.Discard)
        assert hr == S_OK and await r.unlock_async(vb) == S_OK
        # a synchronous Lock(Discard) renames and switches at once (LCB-8): C1 is dead
        hr, lk = await r.lock(vb, LKF.Discard)
        assert hr == S_OK and r.dev.tracked(vb) == lk.surf_data.allocation
        assert r.dev.pending_cookies(vb) == []
        assert await r.unlock(vb) == S_OK
        assert await r.rename(vb, la.cookie) == E_INVALIDARG
        hr, la = await r.lock_async(vb, LAF.Discard)
        assert hr == S_OK and await r.unlock_async(vb) == S_OK
        assert await r.destroy(vb) == S_OK
        assert r.dev.pending_cookies() == []
        assert await r.rename(vb, la.cookie) == E_INVALIDARG

    run(prog)


def test_unused_cookie_instance_is_still_unlocked() -> None:
    """Q-3: a Discard whose Rename never comes is still pfnUnlockCb'd at UnlockAsync; the
    draws keep reading the old instance."""

    async def prog(r: Rig) -> None:
        vb = await r.vb(256)
        await r.fill(vb, 7)
        a0 = r.dev.tracked(vb)
        await r.stream(vb)
        hr, la = await r.lock_async(vb, LAF.Discard)
        assert hr == S_OK
        la.surf_data.write(0, pattern(8, 256))
        assert await r.unlock_async(vb) == S_OK
        assert r.last("unlock").args.allocations == [la.surf_data.allocation]
        assert await r.draw(1) == S_OK and await r.flush() == S_OK
        await r.idle()
        assert r.reads()[1] == [(a0, pattern(7, 256)[:64])]

    run(prog)


# ---- NoOverwrite: Q-10, LA-14, LA-15, S-12 ---------------------------------------------------


def test_nooverwrite_locks_ignoresync_donotwait_and_renders_while_locked() -> None:
    async def prog(r: Rig) -> None:
        vb = await r.vb(256)
        await r.stream(vb)
        hr, la = await r.lock_async(vb, LAF.Discard)
        assert hr == S_OK
        la.surf_data.write(0, pattern(1, 64))
        assert await r.unlock_async(vb) == S_OK
        assert await r.rename(vb, la.cookie) == S_OK
        assert await r.draw(1) == S_OK and await r.flush() == S_OK  # GPU busy reading
        hr, no = await r.lock_async(vb, LAF.NoOverwrite, rng=(64, 64))
        assert hr == S_OK  # no wait although busy: IgnoreSync|DonotWait
        assert r.last("lock").flags == CBF.IgnoreSync | CBF.DonotWait | CBF.LockEntire
        no.surf_data.write(0, pattern(2, 64))
        assert await r.draw(2, start=4, count=4) == S_OK  # drawn while still locked
        assert await r.flush() == S_OK and r.last("render").hr == S_OK  # aperture: fine
        assert await r.unlock_async(vb) == S_OK
        await r.idle()
        reads = r.reads()
        assert reads[1][0][1] == pattern(1, 64) and reads[2][0][1] == pattern(2, 64)

    run(prog)


def test_nooverwrite_after_an_unrenamed_discard_locks_the_new_instance() -> None:
    """The app's view of the buffer after a Discard is the new instance, even before Rename:
    an appending NoOverwrite lock must reach the bytes it just wrote."""

    async def prog(r: Rig) -> None:
        vb = await r.vb(256)
        hr, la = await r.lock_async(vb, LAF.Discard)
        assert hr == S_OK
        la.surf_data.write(0, b"first")
        assert await r.unlock_async(vb) == S_OK
        hr, no = await r.lock_async(vb, LAF.NoOverwrite)
        assert hr == S_OK and no.surf_data.allocation == la.surf_data.allocation
        assert no.surf_data.read(0, 5) == b"first"

    run(prog)


# ---- NotifyOnly on system memory: Q-14, LA-17 -----------------------------------------------


def test_q14_notifyonly_lockasync_waits_for_submitted_work_and_never_flushes() -> None:
    async def prog(r: Rig) -> None:
        surf = await r.vb(4096, flags=int(RF.VertexBuffer), pool=D3DDDI_POOL.SYSTEMMEM,
                          system_mem=True)
        await r.stream(surf)
        assert await r.draw(1) == S_OK and await r.flush() == S_OK
        fence = r.last("render").args.fence
        assert await r.draw(2) == S_OK  # unsubmitted: LockAsync must leave it alone
        hr, _la = await r.lock_async(surf, LAF.NotifyOnly)
        assert hr == S_OK
        lock = r.last("lock")
        assert not lock.flags & (CBF.DonotWait | CBF.IgnoreSync | CBF.Discard)
        assert r.kernel.completed_fence >= fence  # it waited for the submitted draw
        assert r.count("render") == 1 and len(r.dev.pending_commands()) == 1
        assert await r.unlock_async(surf, flags=0x1) == S_OK

    run(prog)


def test_sysmem_discard_without_notifyonly_is_refused() -> None:
    async def prog(r: Rig) -> None:
        surf = await r.vb(4096, flags=int(RF.VertexBuffer), pool=D3DDDI_POOL.SYSTEMMEM,
                          system_mem=True)
        hr, _ = await r.lock_async(surf, LAF.Discard)
        assert hr == kmd.E_NOTIMPL
        hr, _ = await r.lock_async(surf, LAF.Discard | LAF.NotifyOnly)
        assert hr == S_OK and not r.last("lock").flags & CBF.Discard

    run(prog)


def test_q2_plain_lockasync_is_a_waiting_lock() -> None:
    async def prog(r: Rig) -> None:
        vb = await r.vb(256)
        await r.stream(vb)
        assert await r.draw(1) == S_OK and await r.flush() == S_OK
        fence = r.last("render").args.fence
        hr, _ = await r.lock_async(vb, 0)
        assert hr == S_OK and r.last("lock").flags == CBF.LockEntire
        assert r.kernel.completed_fence >= fence

    run(prog)


# ---- synchronous Lock: SCH-6, LCB-6, LCB-8, S-13 ---------------------------------------------


def test_sync_lock_submits_first_when_the_buffer_references_the_resource() -> None:
    async def prog(r: Rig) -> None:
        vb = await r.vb(256, flags=int(RF.VertexBuffer))
        other = await r.vb(256, flags=int(RF.VertexBuffer))
        await r.stream(vb)
        assert await r.draw(1) == S_OK
        hr, _ = await r.lock(other)  # not referenced: no submit
        assert hr == S_OK and r.count("render") == 0
        assert await r.unlock(other) == S_OK
        hr, _ = await r.lock(vb)  # referenced: submit, then wait
        assert hr == S_OK and r.count("render") == 1
        names = [c.name for c in r.calls]
        assert names.index("render") < len(names) - 1 and names[-1] == "lock"

    run(prog)


def test_s13_sync_discard_recovery_flushes_and_retries_with_noexistingreference() -> None:
    """LCB-6: Discard fails (instance limit), the driver submits with pfnRenderCb and retries
    with Discard|NoExistingReference; a new handle becomes the tracked one at once (LCB-8)."""

    async def prog(r: Rig) -> None:
        vb = await r.vb(256)
        await r.stream(vb)
        hr, _la = await r.lock_async(vb, LAF.Discard)  # A1 pending (not renamed): 2 live
        assert hr == S_OK and await r.unlock_async(vb) == S_OK
        assert await r.draw(1) == S_OK  # the buffer references A0
        mark = r.mark()
        hr, lk = await r.lock(vb, LKF.Discard)
        assert hr == S_OK
        seq = [(c.name, c.flags & (CBF.Discard | CBF.NoExistingReference)) for c in r.since(mark)]
        assert seq == [("lock", CBF.Discard), ("render", 0),
                       ("lock", CBF.Discard | CBF.NoExistingReference)]
        assert r.since(mark)[0].hr == WASSTILLDRAWING
        assert r.dev.tracked(vb) == lk.surf_data.allocation  # LCB-8
        assert r.dev.pending_cookies(vb) == []
        lk.surf_data.write(0, pattern(5, 256))
        assert await r.unlock(vb) == S_OK
        assert await r.draw(2) == S_OK and await r.flush() == S_OK
        await r.idle()
        assert r.reads()[2][0][1] == pattern(5, 256)[:64]

    run(prog, kernel_config=kmd.KernelConfig(max_rename_instances=2))


def test_sync_discard_in_place_while_referenced_is_not_used() -> None:
    """A pinned/ignored Discard (KL-18) locks in place; while the driver's buffer still reads the
    allocation that would let the app overwrite it, so the driver submits and relocks."""

    async def prog(r: Rig) -> None:
        surf = await r.vb(4096, flags=int(RF.VertexBuffer), pool=D3DDDI_POOL.SYSTEMMEM,
                          system_mem=True)
        await r.stream(surf)
        assert await r.draw(1) == S_OK
        # Discard on a sysmem resource without NotifyOnly takes the plain path: submit + wait
        hr, _ = await r.lock(surf, LKF.Discard)
        assert hr == S_OK and r.count("render") == 1

    run(prog)


def test_driver_without_lockasync_exports_no_triple() -> None:
    async def prog(r: Rig) -> None:
        f = r.funcs
        assert f.pfn_lock_async is None and f.pfn_unlock_async is None and f.pfn_rename is None
        assert not f.has_async_triple()

    run(prog, config=umd.DriverConfig(implements=()))

    async def only_two(r: Rig) -> None:
        assert r.funcs.pfn_rename is None and r.funcs.pfn_lock_async is not None
        assert not r.funcs.has_async_triple()

    run(only_two, config=umd.DriverConfig(implements=("lock_async", "unlock_async")))


def test_driver_version_reported() -> None:
    async def prog(r: Rig) -> int:
        return r.driver_version

    assert run(prog).value == 0xC
    assert run(prog, config=umd.DriverConfig(driver_version=0xA)).value == 0xA


def test_a_waiting_lock_claims_the_subresource_before_it_waits() -> None:
    """Two app threads lock one buffer: the second LockAsync, made while the first waits for
    the GPU in pfnLockCb without the driver mutex, is refused, and so is its UnlockAsync of a
    lock not taken yet; nothing is locked twice."""

    async def prog(r: Rig) -> list[int]:
        import vthreads as vt

        vb = await r.vb(256)
        await r.stream(vb)
        assert await r.draw(1) == S_OK and await r.flush() == S_OK  # busy: the lock waits
        out: list[int] = []

        async def second() -> None:
            out.append((await r.lock_async(vb, 0))[0])
            out.append(await r.unlock_async(vb))

        t = vt.spawn("second", second)  # fifo: runs when main blocks inside pfnLockCb
        hr, _ = await r.lock_async(vb, 0)
        await t.join()
        assert hr == S_OK and r.count("lock") == 1
        assert r.last("lock").thread == "main"
        assert await r.unlock_async(vb) == S_OK
        return out

    assert run(prog).value == [E_INVALIDARG, E_INVALIDARG]
