"""The asynchronous lock path: LockAsync, UnlockAsync and Rename (LA-*, UA-*, RN-*)."""

from __future__ import annotations

from typing import Any

import kmd
import vthreads as vt

from ..ddi import (
    D3DDDIARG_LOCK,
    D3DDDIARG_LOCKASYNC,
    D3DDDIARG_RENAME,
    D3DDDIARG_UNLOCKASYNC,
    UNLOCKASYNC_RESERVED,
    lockasync_flag_rule,
)
from ._config import (
    COOKIE_BASE,
    E_INVALIDARG,
    E_NOTIMPL,
    E_OUTOFMEMORY,
    HEAP_COSTS,
    LAF,
    LF,
    S_OK,
    WASSTILLDRAWING,
    failed,
    hr_fields,
)
from ._entry import ddi_entry
from ._records import Cookie, LockedRange, LockRecord, Resource, Subresource
from ._state import DeviceState, Key


class LockAsyncPath(DeviceState):
    """LockAsync / UnlockAsync / Rename (a part of :class:`ReferenceDevice`)."""

    async def _lockable(self, site: str, key: Key, args: D3DDDIARG_LOCKASYNC | D3DDDIARG_LOCK,
                        range_valid: int) -> tuple[Resource, Subresource, int] | None:
        """(resource, subresource, range offset) for a lock of ``key`` (caller holds the
        lock), or None — E_INVALIDARG — for an unknown handle or subresource, a subresource
        that is locked or being locked, or a range outside it (Q-7)."""
        found = await self._lookup(site, *key)
        if found is None:
            return None
        res, sub = found
        if key in await self._locks.read(site):
            return None
        offset = self._range_offset(args, sub, range_valid)
        return None if offset is None else (res, sub, offset)

    @staticmethod
    def _range_offset(args: D3DDDIARG_LOCKASYNC | D3DDDIARG_LOCK, sub: Subresource,
                      range_valid: int) -> int | None:
        if not args.flags & range_valid:
            return 0
        r = args.range
        if r is None or r.offset < 0 or r.size < 0 or r.offset + r.size > sub.size:
            return None
        return r.offset

    @staticmethod
    def _fill_out(args: D3DDDIARG_LOCKASYNC | D3DDDIARG_LOCK, sub: Subresource, ptr: Any,
                  offset: int) -> None:
        args.surf_data = LockedRange(ptr, offset) if offset else ptr
        args.pitch = sub.pitch
        args.slice_pitch = sub.slice_pitch

    @ddi_entry(D3DDDIARG_LOCKASYNC)
    async def pfn_lock_async(self, args: D3DDDIARG_LOCKASYNC) -> int:
        """LockAsync (app thread; reentrant at DDI >= 0xB, MP-2).

        * ``Discard`` (LA-8…LA-13): pfnLockCb(``Discard``, + ``NoExistingReference`` only per
          LA-9) on the newest instance; on success a fresh cookie (Q-4) naming the new instance,
          ``surf_data`` (offset to ``Range``), pitches (LA-12). Tracking is **not** switched
          (LA-13, RN-5): Rename does that. A failed rename → WASSTILLDRAWING with no flush and
          no pfnRenderCb (LA-10, RCB-8). Resources with several subresources → E_NOTIMPL (Q-15);
          so are SYSTEMMEM ones (the runtime's memory cannot be renamed).
        * ``NoOverwrite`` (LA-14, Q-10): pfnLockCb(``IgnoreSync|DonotWait``); refused with
          E_NOTIMPL where VidMm could not render the locked allocation (LA-15, LA-16, Q-8).
        * ``NotifyOnly`` (sysmem, Q-14) and a plain lock (Q-2): a waiting pfnLockCb, which
          synchronises with *submitted* work only; LockAsync never touches the command buffer.

        S_OK; E_OUTOFMEMORY (driver heap, or passed through from pfnLockCb, Q-13);
        D3DDDIERR_WASSTILLDRAWING (Discard only, LA-11); E_NOTIMPL; D3DDDIERR_DEVICEREMOVED
        (passed through, Q-13); E_INVALIDARG for a runtime bug (unknown handle, bad flags
        LA-5/6/7, a range outside the subresource, a second outstanding lock) — undocumented."""
        site = "lock_async"
        flags = int(args.flags)
        if lockasync_flag_rule(flags) is not None:
            return E_INVALIDARG
        key = (args.resource, args.subresource_index)
        notify = bool(flags & LAF.NotifyOnly)
        async with self.locked(site):
            target = await self._lockable(site, key, args, LAF.RangeValid)
            if target is None:
                return E_INVALIDARG
            res, sub, offset = target
            if flags & LAF.Discard and not notify:
                if len(res.subresources) > 1 or sub.placement == "sysmem":
                    return self._log_lockasync(args, E_NOTIMPL, "discard")
                return await self._lock_async_discard(args, sub, key, offset)
            if flags & LAF.NoOverwrite and not notify:
                if not self.policy.accepts_nooverwrite(self, sub):
                    return self._log_lockasync(args, E_NOTIMPL, "nooverwrite")
                return await self._lock_async_nooverwrite(args, sub, key, offset)
            if not await self._heap_take(site, HEAP_COSTS["lock"]):
                return self._log_lockasync(args, E_OUTOFMEMORY, "notify" if notify else "plain")
            handle = (await self._tracking.read(site))[key].newest
            kind = "notify" if notify else "plain"
            # claim the subresource before letting go of the mutex (a second locker on another
            # app thread gets E_INVALIDARG instead of a second kernel lock)
            await self._record_lock(site, key, LockRecord("async", kind, 0))
        # a waiting lock, without the driver mutex (the worker keeps going).
        hr, lk = await self.lock_cb(handle, LF.LockEntire)
        async with self.locked(site):
            if failed(hr):
                await self._drop_lock(site, key)
                await self._heap_give(site, HEAP_COSTS["lock"])
                out = self.policy.lock_async_failure(self, hr, False)
                return self._log_lockasync(args, out, kind, hr)
            await self._record_lock(site, key, LockRecord("async", kind, lk.allocation))
        self._fill_out(args, sub, lk.data, offset)
        return self._log_lockasync(args, S_OK, kind, hr, allocation=lk.allocation)

    async def _lock_async_discard(self, args: D3DDDIARG_LOCKASYNC, sub: Subresource,
                                  key: Key, offset: int) -> int:
        site = "lock_async.discard"
        cost = HEAP_COSTS["lock"] + HEAP_COSTS["cookie"]
        if not await self._heap_take(site, cost):
            return self._log_lockasync(args, E_OUTOFMEMORY, "discard")
        tracking = await self._tracking.read(site)
        tr = tracking[key]
        own_refs = (await self._cmdbuf.read(site)).references(key)
        lflags = self.policy.discard_lock_flags(self, args, sub, own_refs)
        if lflags & LF.NoExistingReference and not await self._idle_now(tr.newest):
            lflags &= ~int(LF.NoExistingReference)
        hr, lk = await self.lock_cb(tr.newest, lflags)
        in_place = not failed(hr) and lk.allocation == tr.newest
        if in_place and self.policy.in_place_unsafe(self, lflags):
            # VidMm locked the instance in place instead of renaming, although references to
            # it may be queued (the runtime did not promise otherwise, or our own buffer has
            # some): the app would overwrite bytes a queued draw is still to read. That is no
            # rename: undo and report the rename failure (LA-10).
            await self.unlock_cb([lk.allocation])
            vt.log("umd.lockasync.in_place", device=self.name, resource=key[0],
                   subresource=key[1], allocation=lk.allocation)
            hr = WASSTILLDRAWING
        if failed(hr):
            await self._heap_give(site, cost)
            out = self.policy.lock_async_failure(self, hr, True)
            if out == WASSTILLDRAWING:
                out = await self.policy.rename_failed(self, args, out)
            return self._log_lockasync(args, out, "discard", hr, lock_flags=lflags)
        new = lk.allocation
        self._next_cookie += 1
        cookie = COOKIE_BASE + self._next_cookie
        cookies = await self._cookies.read(site)
        cookies[cookie] = Cookie(cookie, key, new, self._next_cookie)
        await self._cookies.write(cookies, site)
        old = tr.current
        tr = self.policy.after_discard_lock_async(self, tr, new)
        tracking[key] = tr
        await self._tracking.write(tracking, site)
        if tr.current != old:  # not the reference: LA-13 says Rename switches
            vt.log("umd.track.switch", device=self.name, resource=key[0], subresource=key[1],
                   old=old, new=tr.current, reason="lockasync", cookie=cookie)
        await self._record_lock(site, key, LockRecord("async", "discard", new, cookie))
        args.cookie = cookie
        self._fill_out(args, sub, lk.data, offset)
        return self._log_lockasync(args, S_OK, "discard", hr, allocation=new, cookie=cookie,
                                   current=tr.current, lock_flags=lflags)

    async def _idle_now(self, handle: int) -> bool:
        """Whether the GPU is done with ``handle``, asked without waiting: a DonotWait
        pfnLockCb (busy → WASSTILLDRAWING, KL-21), undone at once.

        Why: Discard|NoExistingReference never fails for want of a new instance — VidMm
        *waits* until the current one is idle (the LCB-6 retry of the synchronous Lock), and
        DonotWait cannot stop that (KL-8). Inside LockAsync that wait would block the app on
        the GPU while holding this driver's mutex; seed 000 says a LockAsync whose rename
        fails must fail instead (LA-10). So NoExistingReference goes to pfnLockCb only when
        the instance is idle now — VidMm then reuses it in place — and a plain Discard, which
        renames or fails at once, otherwise. Nothing can make it busy in between: the device
        mutex is held, so this driver submits nothing, and no one else references it."""
        hr, lk = await self.lock_cb(handle, int(LF.LockEntire | LF.DonotWait))
        if failed(hr):
            return False
        await self.unlock_cb([lk.allocation])
        return True

    async def _lock_async_nooverwrite(self, args: D3DDDIARG_LOCKASYNC, sub: Subresource,
                                      key: Key, offset: int) -> int:
        site = "lock_async.nooverwrite"
        if not await self._heap_take(site, HEAP_COSTS["lock"]):
            return self._log_lockasync(args, E_OUTOFMEMORY, "nooverwrite")
        handle = (await self._tracking.read(site))[key].newest
        lflags = self.policy.nooverwrite_lock_flags(self, sub)
        hr, lk = await self.lock_cb(handle, lflags)
        if failed(hr):
            await self._heap_give(site, HEAP_COSTS["lock"])
            out = self.policy.lock_async_failure(self, hr, False)
            return self._log_lockasync(args, out, "nooverwrite", hr, lock_flags=lflags)
        await self._record_lock(site, key, LockRecord("async", "nooverwrite", lk.allocation))
        self._fill_out(args, sub, lk.data, offset)
        return self._log_lockasync(args, S_OK, "nooverwrite", hr, allocation=lk.allocation,
                                   lock_flags=lflags)

    def _log_lockasync(self, args: D3DDDIARG_LOCKASYNC, out: int, kind: str,
                       cb_hr: int | None = None, **fields: Any) -> int:
        if vt.tracing("umd.lockasync"):
            extra = {} if cb_hr is None else {"cb_hr": kmd.hex32(cb_hr)}
            vt.log("umd.lockasync", device=self.name, resource=args.resource,
                   subresource=args.subresource_index, flags=int(args.flags), kind=kind,
                   **extra, **fields, **hr_fields(out))
        return out

    @ddi_entry(D3DDDIARG_UNLOCKASYNC)
    async def pfn_unlock_async(self, args: D3DDDIARG_UNLOCKASYNC) -> int:
        """UnlockAsync (app thread; reentrant at >= 0xB, UA-5): pfnUnlockCb on the handle the
        matching LockAsync locked — for a Discard the new instance, before or after Rename
        (UA-4, LCB-20, S-10). The driver caches no NoOverwrite pointers: every UnlockAsync
        really unlocks (so nothing is left locked at submit, LCB-4/LCB-18).

        S_OK; E_INVALIDARG when (resource, subresource) has no outstanding *LockAsync* lock
        (UA-3; a Lock lock does not count, Q-20) or reserved flags are set (UA-7);
        E_OUTOFMEMORY (no heap for the unlock request; the lock stays outstanding); a
        pfnUnlockCb failure (ERR-1; the lock stays outstanding)."""
        site = "unlock_async"
        if int(args.flags) & UNLOCKASYNC_RESERVED:
            return E_INVALIDARG
        key = (args.resource, args.subresource_index)
        async with self.locked(site):
            locks = await self._locks.read(site)
            rec = locks.get(key)
            if rec is None or rec.path != "async" or rec.allocation == 0:
                return self._log_unlock("umd.unlockasync", key, E_INVALIDARG)
            if not await self._heap_take(site, HEAP_COSTS["unlock"]):
                return self._log_unlock("umd.unlockasync", key, E_OUTOFMEMORY)
            tr = (await self._tracking.read(site))[key]
            handle = self.policy.unlock_async_handle(self, rec, tr)
            hr = await self.policy.unlock_async_cb(self, [handle])
            await self._heap_give(site, HEAP_COSTS["unlock"])
            if failed(hr):
                return self._log_unlock("umd.unlockasync", key, hr, allocation=handle)
            locks = await self._locks.read(site)
            del locks[key]
            await self._locks.write(locks, site)
            await self._heap_give(site, HEAP_COSTS["lock"])
        return self._log_unlock("umd.unlockasync", key, S_OK, allocation=handle,
                                cookie=rec.cookie)

    def _log_unlock(self, event: str, key: Key, out: int, **fields: Any) -> int:
        if vt.tracing(event):
            vt.log(event, device=self.name, resource=key[0], subresource=key[1], **fields,
                   **hr_fields(out))
        return out

    @ddi_entry(D3DDDIARG_RENAME)
    async def pfn_rename(self, args: D3DDDIARG_RENAME) -> int:
        """Rename (worker thread, in order with the draws, RN-3): from now on draws of
        (resource, subresource) use the cookie's instance (RN-4); commands already encoded keep
        the old one. Renames apply in cookie order: older pending cookies of the same
        subresource die here (Q-3), since using them later would go back to an older instance
        (LCB-9).

        S_OK; E_OUTOFMEMORY (no heap for the new instance's descriptor; nothing changes, the
        cookie stays pending); E_INVALIDARG — undocumented, an emulator decision — for a cookie
        that is unknown, already used, dead (Q-3) or of another subresource (RN-2, RN-6)."""
        site = "rename"
        key = (args.resource, args.subresource_index)
        async with self.locked(site):
            cookies = await self._cookies.read(site)
            c = cookies.get(args.cookie)
            if c is None or c.key != key:
                vt.log("umd.rename", device=self.name, resource=key[0], subresource=key[1],
                       cookie=args.cookie, **hr_fields(E_INVALIDARG))
                return E_INVALIDARG
            if not await self._heap_take(site, HEAP_COSTS["descriptor"]):
                vt.log("umd.rename", device=self.name, resource=key[0], subresource=key[1],
                       cookie=args.cookie, **hr_fields(E_OUTOFMEMORY))
                return E_OUTOFMEMORY
            tr = (await self._tracking.read(site))[key]
            target = self.policy.rename_target(self, c, tr)
            await self._drop_cookies(site, key, c.seq, "superseded")
            cookies = await self._cookies.read(site)
            del cookies[c.cookie]
            await self._cookies.write(cookies, site)
            await self._heap_give(site, HEAP_COSTS["cookie"])
            await self._switch(site, key, tr, target, "rename", c.cookie)
        if vt.tracing("umd.rename"):
            vt.log("umd.rename", device=self.name, resource=key[0], subresource=key[1],
                   cookie=args.cookie, allocation=target, **hr_fields(S_OK))
        return S_OK
