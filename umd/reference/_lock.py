"""The synchronous lock path: Lock and Unlock (LK-*, LCB-6, LCB-8, LCB-13)."""

from __future__ import annotations

from typing import Any

import vthreads as vt

from ..ddi import D3DDDIARG_LOCK, D3DDDIARG_UNLOCK, lock_flag_rule
from ._cmdbuf import CommandBufferPath
from ._config import (
    E_INVALIDARG,
    E_OUTOFMEMORY,
    HEAP_COSTS,
    LF,
    LKF,
    S_OK,
    WASSTILLDRAWING,
    failed,
    hr_fields,
)
from ._entry import ddi_entry
from ._lockasync import LockAsyncPath
from ._records import LockRecord, Subresource, Tracking
from ._state import Key


class LockPath(LockAsyncPath, CommandBufferPath):
    """Lock / Unlock (a part of :class:`ReferenceDevice`)."""

    @ddi_entry(D3DDDIARG_LOCK)
    async def pfn_lock(self, args: D3DDDIARG_LOCK) -> int:
        """Lock: always through pfnLockCb (LK-6).

        * ``Discard`` (LCB-13): pfnLockCb(``Discard``); if the rename fails (or VidMm locked in
          place while this driver's buffer still references the allocation) submit with
          pfnRenderCb and retry with ``Discard|NoExistingReference`` (LCB-6, S-13). A new
          instance becomes the tracked one **at once** (LCB-8); pending cookies die (Q-3).
        * ``NoOverwrite`` on an allocation renderable while locked: ``IgnoreSync|DonotWait``.
        * anything else (plain, ``NotifyOnly`` sysmem LK-10, NoOverwrite elsewhere): submit
          first if the pending buffer references the allocation (SCH-6), then a waiting
          pfnLockCb — or, with ``DoNotWait``, a ``DonotWait`` one: busy →
          D3DDDIERR_WASSTILLDRAWING (LK-7).

        S_OK; E_OUTOFMEMORY (driver heap); D3DDDIERR_WASSTILLDRAWING (DoNotWait and busy);
        every callback failure unchanged (ERR-1, ERR-3, LCB-16); E_INVALIDARG for a runtime bug
        (unknown handle, bad flags LK-1…LK-5, bad range, already locked)."""
        site = "lock"
        flags = int(args.flags)
        if lock_flag_rule(flags) is not None:
            return E_INVALIDARG
        key = (args.resource, args.subresource_index)
        notify = bool(flags & LKF.NotifyOnly)
        async with self.locked(site):
            target = await self._lockable(site, key, args, LKF.RangeValid)
            if target is None:
                return E_INVALIDARG
            _, sub, offset = target
            if flags & LKF.Discard and not notify and sub.placement != "sysmem":
                return await self._lock_discard(args, sub, key, offset)
            if not await self._heap_take(site, HEAP_COSTS["lock"]):
                return self._log_lock(args, E_OUTOFMEMORY, "plain")
            handle = (await self._tracking.read(site))[key].newest
            if flags & LKF.NoOverwrite and not notify and sub.render_while_locked:
                kind = "nooverwrite"
                lflags = int(LF.IgnoreSync | LF.DonotWait | LF.LockEntire)
                hr, lk = await self.lock_cb(handle, lflags)
            else:
                kind = "notify" if notify else "plain"
                hr = S_OK
                if (await self._cmdbuf.read(site)).references(key):
                    hr = await self.submit("lock", site=site)  # SCH-6 / LK-10
                lflags = int(LF.LockEntire | self._rw_flags(flags))
                if flags & LKF.DoNotWait:
                    lflags |= LF.DonotWait
            await self._record_lock(site, key, LockRecord("sync", kind, 0))  # claimed, see above
        if kind != "nooverwrite" and not failed(hr):
            # a waiting lock: without the driver mutex, so the worker is not stalled behind it
            hr, lk = await self.lock_cb(handle, lflags)
        async with self.locked(site):
            if failed(hr):
                await self._drop_lock(site, key)
                await self._heap_give(site, HEAP_COSTS["lock"])
                return self._log_lock(args, hr, kind)
            await self._record_lock(site, key, LockRecord("sync", kind, lk.allocation))
        self._fill_out(args, sub, lk.data, offset)
        return self._log_lock(args, S_OK, kind, allocation=lk.allocation, lock_flags=lflags)

    @staticmethod
    def _rw_flags(flags: int) -> int:
        out = 0
        if flags & LKF.ReadOnly:
            out |= LF.ReadOnly
        if flags & LKF.WriteOnly:
            out |= LF.WriteOnly
        return int(out)

    async def _lock_discard(self, args: D3DDDIARG_LOCK, sub: Subresource, key: Key,
                            offset: int) -> int:
        site = "lock.discard"
        cost = HEAP_COSTS["lock"] + HEAP_COSTS["descriptor"]
        if not await self._heap_take(site, cost):
            return self._log_lock(args, E_OUTOFMEMORY, "discard")
        tr = (await self._tracking.read(site))[key]
        lflags = int(LF.Discard | LF.LockEntire | self._rw_flags(args.flags))
        hr, lk = await self.lock_cb(tr.newest, lflags)
        retry = hr == WASSTILLDRAWING
        if (
            not failed(hr)
            and lk.allocation == tr.newest
            and (await self._cmdbuf.read(site)).references(key)
        ):
            # locked in place while our unsubmitted commands still read it: not usable
            await self.unlock_cb([lk.allocation])
            retry = True
        if retry:
            # LCB-6 / S-13: flush (may retire instances), then Discard|NoExistingReference,
            # which VidMm may satisfy by reusing any instance, waiting for it to go idle.
            hr = await self.submit("lock-discard-retry", site=site)
            if not failed(hr):
                lflags |= LF.NoExistingReference
                hr, lk = await self.lock_cb(tr.newest, lflags)
        if failed(hr):
            await self._heap_give(site, cost)
            return self._log_lock(args, hr, "discard", lock_flags=lflags)
        new = lk.allocation
        if new != tr.current:
            await self._drop_cookies(site, key, None, "lock-discard")
            await self._switch(site, key, tr, new, "lock-discard")  # LCB-8, uses the descriptor
        else:
            await self._set_tracking(site, key, Tracking(tr.current, new))
            await self._heap_give(site, HEAP_COSTS["descriptor"])
        await self._record_lock(site, key, LockRecord("sync", "discard", new))
        self._fill_out(args, sub, lk.data, offset)
        return self._log_lock(args, S_OK, "discard", allocation=new, lock_flags=lflags)

    def _log_lock(self, args: D3DDDIARG_LOCK, out: int, kind: str, **fields: Any) -> int:
        if vt.tracing("umd.lock"):
            vt.log("umd.lock", device=self.name, resource=args.resource,
                   subresource=args.subresource_index, flags=int(args.flags), kind=kind,
                   **fields, **hr_fields(out))
        return out

    @ddi_entry(D3DDDIARG_UNLOCK)
    async def pfn_unlock(self, args: D3DDDIARG_UNLOCK) -> int:
        """Unlock: pfnUnlockCb on the handle Lock locked (LK-11, LK-12 for sysmem).

        S_OK; E_INVALIDARG when (resource, subresource) was not locked by *Lock* (LK-13; a
        LockAsync lock does not count, Q-20); E_OUTOFMEMORY (no heap for the unlock request);
        a pfnUnlockCb failure (ERR-1). On failure the lock stays outstanding."""
        site = "unlock"
        key = (args.resource, args.subresource_index)
        async with self.locked(site):
            locks = await self._locks.read(site)
            rec = locks.get(key)
            if rec is None or rec.path != "sync" or rec.allocation == 0:
                return self._log_unlock("umd.unlock", key, E_INVALIDARG)
            if not await self._heap_take(site, HEAP_COSTS["unlock"]):
                return self._log_unlock("umd.unlock", key, E_OUTOFMEMORY)
            hr = await self.unlock_cb([rec.allocation])
            await self._heap_give(site, HEAP_COSTS["unlock"])
            if failed(hr):
                return self._log_unlock("umd.unlock", key, hr, allocation=rec.allocation)
            locks = await self._locks.read(site)
            del locks[key]
            await self._locks.write(locks, site)
            await self._heap_give(site, HEAP_COSTS["lock"])
        return self._log_unlock("umd.unlock", key, S_OK, allocation=rec.allocation)
