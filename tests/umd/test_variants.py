"""Each named buggy variant behaves differently from the reference driver, in a direct test
that sets up the situation its bug needs (the checker-based tests come with the checker)."""

from __future__ import annotations

import functools

import pytest

import kmd
import umd
from tests.support.app import queued_then_discard, ring, run_app, two_buffers
from tests.support.driver import (
    CANTRENDERLOCKED,
    CBF,
    DEVICEREMOVED,
    DYNAMIC_VB,
    E_INVALIDARG,
    E_NOTIMPL,
    LAF,
    RF,
    S_OK,
    WASSTILLDRAWING,
    Rig,
    pattern,
    run,
)
from umd.variants import VARIANTS

TESTED: set[str] = set()


def both(name: str, prog: object, **kw: object) -> tuple[object, object]:
    """Run ``prog`` on the reference driver and on variant ``name``; return both values."""
    TESTED.add(name)
    ref = run(prog, **kw).value  # type: ignore[arg-type]
    bug = run(prog, variant=name, **kw).value  # type: ignore[arg-type]
    return ref, bug


def test_registry() -> None:
    assert len(VARIANTS) >= 12
    for name, info in VARIANTS.items():
        assert info.name == name and info.description and info.expected_rules
        drv = info.factory(driver_version=0xA)
        assert isinstance(drv, umd.ReferenceDriver) and drv.config.driver_version == 0xA
        assert drv.device_class is info.device_class
        assert isinstance(umd.make_driver(name), umd.ReferenceDriver)
        assert getattr(umd.variants, name.replace("-", "_")) is info.factory
    with pytest.raises(ValueError, match="unknown driver variant"):
        umd.make_driver("nope")


def test_track_in_lockasync_switches_early_and_a_queued_draw_reads_the_new_bytes() -> None:
    async def prog(r: Rig) -> tuple[bool, bytes]:
        vb = await r.vb(256)
        await r.fill(vb, 1)
        old = r.dev.tracked(vb)
        await r.stream(vb)
        hr, la = await r.lock_async(vb, LAF.Discard)
        assert hr == S_OK
        la.surf_data.write(0, pattern(2, 256))
        switched = r.dev.tracked(vb) != old
        assert await r.draw(10) == S_OK  # queued before the lock in app order
        assert await r.unlock_async(vb) == S_OK and await r.rename(vb, la.cookie) == S_OK
        assert await r.flush() == S_OK
        await r.idle()
        return switched, r.reads()[10][0][1]

    ref, bug = both("track-in-lockasync", prog)
    assert ref == (False, pattern(1, 256)[:64])
    assert bug == (True, pattern(2, 256)[:64])
    # Through the runtime the bug needs the worker to have run Rename(C1) but not yet the draw
    # behind it when the app's next Discard switches early: some schedules, not fifo's.
    found = [run_app(queued_then_discard, variant="track-in-lockasync", strategy="random",
                     seed=s).rules for s in range(8)]
    assert ["DATA"] in found and all(r in ([], ["DATA"]) for r in found)
    assert run_app(queued_then_discard, variant="track-in-lockasync").rules == []


def test_flush_on_rename_failure_calls_render() -> None:
    async def prog(r: Rig) -> int:
        vb = await r.vb(256)
        await r.stream(vb)
        hr, _ = await r.lock_async(vb, LAF.Discard)
        assert hr == S_OK and await r.unlock_async(vb) == S_OK
        assert await r.draw(1) == S_OK
        mark = r.mark()
        hr, _ = await r.lock_async(vb, LAF.Discard)
        assert hr == WASSTILLDRAWING
        return len(r.since(mark, "render"))

    ref, bug = both("flush-on-rename-failure", prog,
                    kernel_config=kmd.KernelConfig(max_rename_instances=2))
    assert (ref, bug) == (0, 1)


def test_noexistingref_with_queued_refs_lets_the_app_overwrite_a_pending_draw() -> None:
    async def prog(r: Rig) -> tuple[bool, bytes]:
        vb = await r.vb(256)
        await r.fill(vb, 1)
        await r.stream(vb)
        assert await r.draw(1) == S_OK  # in the driver's buffer, not submitted
        hr, la = await r.lock_async(vb, LAF.Discard | LAF.NoExistingReferences)
        assert hr == S_OK
        flagged = bool(r.last("lock").flags & CBF.NoExistingReference)
        la.surf_data.write(0, pattern(2, 256))
        assert await r.unlock_async(vb) == S_OK and await r.flush() == S_OK
        await r.idle()
        return flagged, r.reads()[1][0][1]

    ref, bug = both("noexistingref-with-queued-refs", prog)
    assert ref == (False, pattern(1, 256)[:64])
    assert bug == (True, pattern(2, 256)[:64])


def test_nooverwrite_local_vidmem_ends_in_cantrenderlockedallocation() -> None:
    async def prog(r: Rig) -> tuple[int, int]:
        vb = await r.vb(256, flags=DYNAMIC_VB | RF.RenderTarget)
        await r.stream(vb)
        hr, _ = await r.lock_async(vb, LAF.NoOverwrite)
        if hr != S_OK:
            return hr, S_OK
        assert await r.draw(1) == S_OK
        return hr, await r.flush()

    ref, bug = both("nooverwrite-local-vidmem", prog)
    assert ref == (E_NOTIMPL, S_OK)
    assert bug == (S_OK, CANTRENDERLOCKED)


def test_discard_ignored_overwrites_bytes_the_gpu_has_yet_to_read() -> None:
    async def prog(r: Rig) -> tuple[bool, bytes]:
        vb = await r.vb(256)
        await r.fill(vb, 1)
        await r.stream(vb)
        assert await r.draw(1) == S_OK and await r.flush() == S_OK  # submitted, not yet run
        hr, la = await r.lock_async(vb, LAF.Discard)
        assert hr == S_OK
        renamed = la.surf_data.allocation != r.dev.tracked(vb)
        la.surf_data.write(0, pattern(2, 256))
        assert await r.unlock_async(vb) == S_OK and await r.rename(vb, la.cookie) == S_OK
        await r.idle()
        return renamed, r.reads()[1][0][1]

    ref, bug = both("discard-ignored", prog)
    assert ref == (True, pattern(1, 256)[:64])
    assert bug == (False, pattern(2, 256)[:64])


def test_no_driver_lock_races_only_at_reentrant_versions() -> None:
    TESTED.add("no-driver-lock")
    for seed in range(3):
        a = run_app(two_buffers, variant="no-driver-lock", strategy="random", seed=seed)
        assert "RACE" in a.rules
        assert any("umd.dev1." in v.message for v in a.result.violations)
        assert run_app(two_buffers, strategy="random", seed=seed).rules == []
        below = run_app(two_buffers, variant="no-driver-lock", driver_version=0xA,
                        strategy="random", seed=seed)
        assert below.rules == []  # the runtime never overlaps two DDIs below 0xB


def test_unlockasync_skips_unlockcb_leaves_the_allocation_locked() -> None:
    async def prog(r: Rig) -> tuple[int, int, str]:
        vb = await r.vb(256)
        hr, la = await r.lock_async(vb, LAF.NoOverwrite)
        assert hr == S_OK
        hr = await r.unlock_async(vb)
        return hr, r.count("unlock"), la.surf_data.state

    ref, bug = both("unlockasync-skips-unlockcb", prog)
    assert ref == (S_OK, 1, "unlocked")
    assert bug == (S_OK, 0, "mapped")


def test_wasstilldrawing_without_discard_on_a_busy_buffer() -> None:
    async def prog(r: Rig) -> int:
        vb = await r.vb(256)
        await r.stream(vb)
        assert await r.draw(1) == S_OK and await r.flush() == S_OK  # the GPU will read it
        hr, _ = await r.lock_async(vb, LAF.NoOverwrite)
        return hr

    ref, bug = both("wasstilldrawing-without-discard", prog)
    assert (ref, bug) == (S_OK, WASSTILLDRAWING)  # LA-11: never without Discard


def test_swallow_callback_errors_hides_device_removal() -> None:
    async def prog(r: Rig) -> int:
        vb = await r.vb(256)
        await r.stream(vb)
        assert await r.draw(1) == S_OK
        r.kernel.inject_removal()
        return await r.flush()

    ref, bug = both("swallow-callback-errors", prog)
    assert (ref, bug) == (DEVICEREMOVED, S_OK)  # ERR-1


def test_lock_order_deadlock_only_at_reentrant_versions_and_only_on_some_schedules() -> None:
    TESTED.add("lock-order-deadlock")
    deadlocks = []
    for seed in range(6):
        a = run_app(two_buffers, variant="lock-order-deadlock", strategy="random", seed=seed)
        if a.result.failure is not None:
            assert a.result.failure.kind == "deadlock"
            deadlocks.append(a.result.failure.message)
        assert run_app(two_buffers, strategy="random", seed=seed).rules == []
        assert run_app(two_buffers, variant="lock-order-deadlock", driver_version=0xA,
                       strategy="random", seed=seed).rules == []
    assert deadlocks
    assert "umd.dev1.tables" in deadlocks[0] and "umd.dev1.cmdbuf" in deadlocks[0]
    assert run_app(two_buffers, variant="lock-order-deadlock").rules == []  # fifo: fine


def test_unlockasync_wrong_handle_depends_on_the_rename_order() -> None:
    async def before(r: Rig) -> tuple[int, list[int], list[int]]:
        vb = await r.vb(256)
        hr, la = await r.lock_async(vb, LAF.Discard)
        assert hr == S_OK
        old = [r.dev.tracked(vb)]
        hr = await r.unlock_async(vb)  # before Rename
        return hr, r.last("unlock").args.allocations == old, la.surf_data.state

    ref, bug = both("unlockasync-wrong-handle", before)
    assert ref == (S_OK, False, "unlocked")
    assert bug == (E_INVALIDARG, True, "mapped")  # A0 was not locked; A1 still is

    async def after(r: Rig) -> tuple[int, str]:
        vb = await r.vb(256)
        hr, la = await r.lock_async(vb, LAF.Discard)
        assert hr == S_OK and await r.rename(vb, la.cookie) == S_OK
        return await r.unlock_async(vb), la.surf_data.state

    ref, bug = both("unlockasync-wrong-handle", after)
    assert ref == bug == (S_OK, "unlocked")  # right by accident (S-10)


def test_rename_ignores_cookie_with_several_discards_before_the_first_rename() -> None:
    async def prog(r: Rig) -> list[bytes]:
        vb = await r.vb(256)
        await r.stream(vb)
        cookies = []
        for i in (1, 2, 3):
            hr, la = await r.lock_async(vb, LAF.Discard)
            assert hr == S_OK
            la.surf_data.write(0, pattern(i, 256))
            assert await r.unlock_async(vb) == S_OK
            cookies.append(la.cookie)
        for i, c in enumerate(cookies):
            await r.rename(vb, c)
            assert await r.draw(11 + i) == S_OK
        assert await r.flush() == S_OK
        await r.idle()
        return [r.reads()[11 + i][0][1] for i in range(3)]

    ref, bug = both("rename-ignores-cookie", prog)
    assert ref == [pattern(i, 256)[:64] for i in (1, 2, 3)]
    assert bug[0] == pattern(3, 256)[:64]  # Rename(C1) jumped to the newest instance
    # through the runtime: fifo lets the app run frames ahead of the worker (several Discards
    # before the first Rename), so the ring shows it; with a single Discard it cannot show
    assert run_app(ring, variant="rename-ignores-cookie").rules == ["DATA"]
    assert run_app(functools.partial(ring, frames=1), variant="rename-ignores-cookie").rules == []


@pytest.mark.parametrize("name,flags", [
    ("lockcb-readonly-writeonly", CBF.ReadOnly | CBF.WriteOnly),
    ("lockcb-ignoresync-acquireaperture", CBF.IgnoreSync | CBF.AcquireAperture),
    ("lockcb-alternateva-alone", CBF.UseAlternateVA),
])
def test_illegal_lockcb_flags_make_every_lock_fail(name: str, flags: int) -> None:
    async def prog(r: Rig) -> tuple[int, int]:
        vb = await r.vb(256)
        hr, _ = await r.lock_async(vb, LAF.Discard)
        return hr, int(r.last("lock").args.flags) & int(flags)

    ref, bug = both(name, prog)
    assert ref == (S_OK, 0)
    # the kernel answers E_INVALIDARG (KL-6 / KL-9 / KL-10); LockAsync maps it to E_NOTIMPL
    assert bug == (E_NOTIMPL, int(flags))


def test_crash_in_rename_raises_out_of_the_ddi() -> None:
    async def prog(r: Rig) -> int:
        vb = await r.vb(256)
        hr, la = await r.lock_async(vb, LAF.Discard)
        assert hr == S_OK
        return await r.rename(vb, la.cookie)

    TESTED.add("crash-in-rename")
    assert run(prog).value == S_OK
    bug = run(prog, variant="crash-in-rename", check=False)
    assert bug.failure.kind == "exception"
    assert bug.failure.message == "RuntimeError: rename table corrupted"


def test_no_rename_lacks_only_rename() -> None:
    TESTED.add("no-rename")
    drv = umd.make_driver("no-rename")
    assert drv.config.implements == ("lock_async", "unlock_async")

    async def prog(r: Rig) -> tuple[bool, bool]:
        f = r.funcs
        return f.pfn_lock_async is not None, f.pfn_rename is None

    assert run(prog, driver=drv).value == (True, True)


def _lock_held_in_callbacks(r: Rig, name: str) -> list[bool]:
    """Spy on the device's ``name`` callback: whether the device lock is held at each call."""
    seen: list[bool] = []
    inner = getattr(r.dev.callbacks, name)

    async def spy(h: object, args: object) -> int:
        seen.append(r.dev.mutex.owner is not None)
        return await inner(h, args)

    setattr(r.dev.callbacks, name, spy)
    return seen


@pytest.mark.parametrize(("variant", "flag"), [("discard-lockcb-unlocked", LAF.Discard),
                                               ("nooverwrite-lockcb-unlocked", LAF.NoOverwrite)])
def test_the_lockcb_variants_let_go_of_the_lock_around_pfnlockcb(variant: str, flag: int) -> None:
    async def prog(r: Rig) -> list[bool]:
        vb = await r.vb(256)
        seen = _lock_held_in_callbacks(r, "pfn_lock_cb")
        hr, _ = await r.lock_async(vb, flag)
        assert hr == S_OK
        return seen

    ref, bug = both(variant, prog)
    assert (ref, bug) == ([True], [False])  # the window a Rename is lost in (RN-4)


def test_rename_frees_unlocked_lets_go_of_the_lock_inside_rename() -> None:
    async def prog(r: Rig) -> int:
        vb = await r.vb(256)
        hr, la = await r.lock_async(vb, LAF.Discard)
        assert hr == S_OK and await r.unlock_async(vb) == S_OK

        async def rename() -> None:
            assert await r.rename(vb, la.cookie) == S_OK

        return await _releases_in(r, rename)  # type: ignore[no-any-return]

    ref, bug = both("rename-frees-unlocked", prog)
    assert (ref, bug) == (1, 2)  # the second critical section: the window (RN-5)

def _releases_in(r: Rig, call: object) -> object:
    """Run ``call()`` counting the device mutex's releases (one per critical section)."""
    mutex = r.dev.mutex
    releases = [0]
    inner = mutex.release

    def counting() -> None:
        releases[0] += 1
        inner()

    async def go() -> int:
        mutex.release = counting
        try:
            await call()  # type: ignore[operator]
        finally:
            mutex.release = inner
        return releases[0]

    return go()


@pytest.mark.parametrize(("name", "site"), [
    ("rename-cookies-unlocked", "rename"), ("submit-tracking-unlocked", "flush"),
    ("submit-cookies-unlocked", "flush"), ("draw-tracking-unlocked", "draw")])
def test_the_stale_copy_variants_let_go_of_the_lock_once_more_at_their_site(name, site) -> None:
    async def prog(r: Rig) -> int:
        vb = await r.vb(256)
        hr, la = await r.lock_async(vb, LAF.Discard)
        assert hr == S_OK and await r.unlock_async(vb) == S_OK
        if site == "rename":
            return await _releases_in(r, lambda: r.rename(vb, la.cookie))  # type: ignore
        assert await r.rename(vb, la.cookie) == S_OK and await r.stream(vb) == S_OK
        if site == "draw":
            return await _releases_in(r, lambda: r.draw(1))  # type: ignore
        assert await r.draw(1) == S_OK
        return await _releases_in(r, r.flush)  # type: ignore

    ref, bug = both(name, prog)
    assert (ref, bug) == (1, 2)  # the second critical section: the window


def test_the_stale_copy_writes_back_what_it_read_before_the_window() -> None:
    async def prog(r: Rig) -> int:
        vb = await r.vb(256)
        hr, la = await r.lock_async(vb, LAF.Discard)
        assert hr == S_OK and await r.unlock_async(vb) == S_OK
        assert await r.rename(vb, la.cookie) == S_OK and await r.stream(vb) == S_OK
        assert await r.draw(1) == S_OK
        newest = r.dev.newest(vb)
        tracking = r.dev._tracking  # what a Discard on the app thread would do in the window:
        orig = tracking.peek()[(vb, 0)]
        inner = umd.variants.DrawTrackingUnlockedDevice._let_go

        async def discard_in_window(self, site):  # type: ignore[no-untyped-def]
            entry = await inner(self, site)
            tracking.peek()[(vb, 0)] = umd.Tracking(orig.current, orig.newest + 1)
            return entry

        r.dev._let_go = discard_in_window.__get__(r.dev)  # type: ignore[method-assign]
        assert await r.draw(2) == S_OK
        return r.dev.newest(vb) - newest

    assert run(prog, variant="draw-tracking-unlocked").value == 0  # the app's update is lost


def test_every_variant_has_a_direct_test() -> None:
    assert set(VARIANTS) <= TESTED, sorted(set(VARIANTS) - TESTED)


