"""Issue 16: tests that kill mutants of the reference driver the rest of the suite let live.

* "WASSTILLDRAWING passed through for a non-Discard LockAsync" (``lock_async_failure`` keeping
  WASSTILLDRAWING whatever ``discard`` says): LA-11.
* "a Discard LockAsync accepts an in-place (unrenamed) lock" (the ``in_place_unsafe`` refusal in
  ``_lock_async_discard`` dropped): LA-8, LA-10, KL-18.

Both need a pfnLockCb answer the reference never provokes from the kernel, so each test
provokes it for real: a policy whose NoOverwrite lock does wait-or-fail, and allocations the
kernel pins (overlay, CA-15) so VidMm ignores Discard and locks in place (KL-18).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import kmd
import umd
from tests.support.driver import CBF, E_NOTIMPL, LAF, S_OK, WASSTILLDRAWING, Rig, run


class DonotWaitNoOverwrite(umd.DriverPolicy):
    """NoOverwrite locked with DonotWait but without IgnoreSync: on a busy buffer the kernel
    answers WASSTILLDRAWING — which the reference mapping must not pass on (LA-11)."""

    def nooverwrite_lock_flags(self, device: Any, sub: umd.Subresource) -> int:
        return int(CBF.DonotWait | CBF.LockEntire)


def test_a_busy_answer_to_a_non_discard_lockasync_is_never_wasstilldrawing() -> None:
    async def prog(r: Rig) -> tuple[int, int, int]:
        vb = await r.vb(256)
        await r.stream(vb)
        assert await r.draw(1) == S_OK and await r.flush() == S_OK  # the GPU will read it
        hr, _ = await r.lock_async(vb, LAF.NoOverwrite)
        cb = r.last("lock").hr

        # plain and NotifyOnly LockAsync wait in the kernel; a kernel answering busy anyway
        # (pfnLockCb's documented WASSTILLDRAWING) must not get through either
        async def busy(h: object, args: object) -> int:
            return int(kmd.D3DERR_WASSTILLDRAWING)

        r.dev.callbacks.pfn_lock_cb = busy
        others = [(await r.lock_async(vb, flags))[0] for flags in (0, LAF.NotifyOnly)]
        assert others == [E_NOTIMPL, E_NOTIMPL]
        assert r.dev.outstanding_locks() == {}  # nothing half-recorded
        return cb, hr, len(others)

    cb, hr, _ = run(prog, driver=umd.ReferenceDriver(policy=DonotWaitNoOverwrite())).value
    assert cb == int(kmd.D3DERR_WASSTILLDRAWING)  # the kernel did say busy
    assert hr == E_NOTIMPL  # LockAsync maps it; WASSTILLDRAWING only with Discard


def _pin_allocations(r: Rig) -> None:
    """Make every allocation the driver creates an overlay: pinned (CA-15), so the kernel
    ignores Discard on it and locks it in place (KL-18)."""
    real = r.dev.callbacks.pfn_allocate_cb

    async def pinned(h: object, args: Any) -> int:
        for info in args.allocation_info:
            info.private_driver_data = dataclasses.replace(info.private_driver_data,
                                                           overlay=True)
        return int(await real(h, args))

    r.dev.callbacks.pfn_allocate_cb = pinned


def test_a_discard_lockasync_refuses_an_in_place_lock_unless_nothing_can_read_it() -> None:
    async def prog(r: Rig) -> None:
        _pin_allocations(r)
        vb = await r.vb(256)
        base = r.dev.allocation(vb)
        mark = r.mark()
        hr, la = await r.lock_async(vb, LAF.Discard)
        locks, unlocks = r.since(mark, "lock"), r.since(mark, "unlock")
        # the kernel locked the very instance (no rename); the driver undid it and reported
        # the failed rename, with no flush (LA-8, LA-10, RCB-8)
        assert [(c.hr, c.args.allocation) for c in locks] == [(S_OK, base)]
        assert [c.args.allocations for c in unlocks] == [[base]]
        assert hr == WASSTILLDRAWING and la.cookie == 0 and la.surf_data is None
        assert r.dev.outstanding_locks() == {} and r.dev.pending_cookies() == []
        assert r.count("render") == 0

        # the runtime promises no queued reference and the driver has none: in place is safe
        hr, la = await r.lock_async(vb, LAF.Discard | LAF.NoExistingReferences)
        assert hr == S_OK and la.cookie and la.surf_data.allocation == base
        assert await r.unlock_async(vb) == S_OK and await r.rename(vb, la.cookie) == S_OK

        # ... but not while the driver's own unsubmitted draw reads it (LA-9)
        await r.stream(vb)
        assert await r.draw(1) == S_OK
        hr, la = await r.lock_async(vb, LAF.Discard | LAF.NoExistingReferences)
        assert hr == WASSTILLDRAWING and la.cookie == 0
        assert r.dev.outstanding_locks() == {}

    run(prog)
