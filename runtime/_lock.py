"""The lock path: which lock takes LockAsync and which takes Lock, the Rename after a Discard,
the synchronous fallback, the unlock, and the application's :class:`LockedView`.

* **Policy** (:meth:`LockPath.choose`): dynamic resources locked with DISCARD or NOOVERWRITE
  take ``LockAsync`` on the application thread (LA-2); system-memory surfaces take it only at
  DDI >= 0xB (LA-4); everything else takes the synchronous path, counted under a reason.
* **LockAsync** (:meth:`LockPath.lock_async`) runs on the app thread at once, never queued; a
  successful Discard enqueues ``Rename`` with the cookie LockAsync returned, so that it lands
  after every earlier command and before every later one (RN-1, RN-2, RN-3, RN-4).
* **The synchronous path** (:meth:`LockPath.lock_sync`): the worker makes the ``Lock`` call
  after draining what was queued before it, and the app waits for its answer. Every LockAsync
  that fails falls back to it (LA-16, Q-1).
* **Unlock** (:meth:`LockPath.unlock`): UnlockAsync on the app thread for an async lock (UA-2),
  ``Unlock`` through the worker for a synchronous one (UA-3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import kmd
from kmd.flags import int_masks
from umd.ddi import (
    D3D_UMD_REENTRANT_VERSION,
    D3DDDI_LOCKASYNCFLAGS,
    D3DDDI_LOCKFLAGS,
    D3DDDI_UNLOCKASYNCFLAGS,
    D3DDDI_UNLOCKFLAGS,
    D3DDDIARG_LOCK,
    D3DDDIARG_LOCKASYNC,
    D3DDDIARG_RENAME,
    D3DDDIARG_UNLOCK,
    D3DDDIARG_UNLOCKASYNC,
    D3DDDIRANGE,
)

from . import d3d9
from ._callbacks import plain_int
from ._ddi import DdiDoor
from ._hooks import RuntimeHooks
from ._mp import MPLayer
from ._oracle import DrawSnapshots, record_write
from ._resource import Resource

#: application lock flags → the ``D3DDDI_LOCKFLAGS`` bit the synchronous Lock carries
_LOCK_FLAGS = (
    (d3d9.D3DLOCK_READONLY, int(D3DDDI_LOCKFLAGS.ReadOnly)),
    (d3d9.D3DLOCK_DISCARD, int(D3DDDI_LOCKFLAGS.Discard)),
    (d3d9.D3DLOCK_NOOVERWRITE, int(D3DDDI_LOCKFLAGS.NoOverwrite)),
    (d3d9.D3DLOCK_DONOTWAIT, int(D3DDDI_LOCKFLAGS.DoNotWait)),
)
#: the flag words as plain ints: ``int | IntFlag`` and ``int & IntFlag`` build an enum member per
#: operation, several per lock (the words reach the driver as ints either way)
_LA = int_masks(D3DDDI_LOCKASYNCFLAGS)
_LK = int_masks(D3DDDI_LOCKFLAGS)
_UA_NOTIFY_ONLY = int(D3DDDI_UNLOCKASYNCFLAGS.NotifyOnly)
_UL_NOTIFY_ONLY = int(D3DDDI_UNLOCKFLAGS.NotifyOnly)


@dataclass(eq=False)
class LockState:
    """One outstanding lock of one subresource: the path it took and the app's view."""

    path: str  # "async" | "sync"
    offset: int
    size: int
    flags: int
    view: LockedView | None = None


class LockedView:
    """The application's window on a locked resource: real bytes of the allocation the driver
    locked (a ``kmd.CpuPointer``), or the runtime's own system memory for NotifyOnly locks.

    Writes also land in the runtime's shadow of the resource (for the data oracle). A view is
    dead after ``unlock``: touching it raises :class:`~runtime.d3d9.D3DError` INVALIDCALL.
    ``pSurfData`` is the driver's: one that is not a pointer (``None``, a number, a list — no
    ``read``/``write``) faults the application's access with :class:`kmd.AccessViolation`
    naming it, as a wild pointer would, instead of an ``AttributeError`` out of the runtime."""

    def __init__(self, res: Resource, ptr: Any, offset: int, size: int, read_only: bool,
                 path: str = "sync", no_overwrite: DrawSnapshots | None = None) -> None:
        #: "async" (LockAsync on the app thread) or "sync" (Lock via the worker): emulator
        #: instrumentation, so scenarios can draw from a NoOverwrite-locked buffer only where
        #: the driver accepted render-while-locked (LA-15)
        self.path = path
        self._res = res
        self._ptr = ptr
        self.offset = offset
        self.size = size
        self.read_only = read_only
        #: a NoOverwrite lock's device snapshots: each write is held to the flag's promise
        self._no_overwrite = no_overwrite
        self._alive = True

    def __len__(self) -> int:
        return self.size

    @property
    def alive(self) -> bool:
        """Whether the lock behind the view still holds (false after a successful unlock)."""
        return self._alive

    def _check(self, off: int, n: int) -> None:
        if not self._alive:
            raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, "view used after unlock")
        if off < 0 or n < 0 or off + n > self.size:
            raise d3d9.D3DError(
                d3d9.D3DERR_INVALIDCALL,
                f"access [{off}, {off + n}) outside the {self.size}-byte lock",
            )

    def write(self, offset: int, data: bytes) -> None:
        """Write ``data`` at ``offset`` (relative to the locked range)."""
        data = bytes(data)
        self._check(offset, len(data))
        if self.read_only:
            raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, "write through a READONLY lock")
        if self._no_overwrite is not None and self._res.buffer:
            self._no_overwrite.overwritten(self._res, self.offset + offset, data)
        if isinstance(self._ptr, bytearray):
            self._ptr[offset : offset + len(data)] = data
        else:
            self._pointer("write").write(offset, data)
        record_write(self._res, self.offset + offset, data)

    def read(self, offset: int, n: int) -> bytes:
        """``n`` bytes at ``offset`` (relative to the locked range)."""
        self._check(offset, n)
        if isinstance(self._ptr, bytearray):
            return bytes(self._ptr[offset : offset + n])
        return bytes(self._pointer("read").read(offset, n))

    def _pointer(self, access: str) -> Any:
        if not callable(getattr(self._ptr, access, None)):
            raise kmd.AccessViolation(
                f"the application's {access} faulted: the driver's "
                f"{'LockAsync' if self.path == 'async' else 'Lock'} returned pSurfData "
                f"{type(self._ptr).__name__}, which is not a pointer")
        return self._ptr

    def close(self) -> None:
        """The lock is gone: every later access raises INVALIDCALL."""
        self._alive = False


class SysmemWindow:
    """A view on the runtime's own system memory for a NotifyOnly lock (LA-17: the driver's
    ``pSurfData`` is ignored)."""

    def __init__(self, mem: bytearray | None, offset: int, size: int) -> None:
        assert mem is not None
        self._mem, self._off, self._size = mem, offset, size

    def write(self, offset: int, data: bytes) -> None:
        a = self._off + offset
        self._mem[a : a + len(data)] = data

    def read(self, offset: int, n: int) -> bytes:
        a = self._off + offset
        return bytes(self._mem[a : a + n])


#: unlock failures after which no lock is left to keep: the driver says there was none (UA-3,
#: LK-13), or the device is gone (TDR-11)
_LOCK_GONE = frozenset({int(kmd.E_INVALIDARG), int(kmd.D3DDDIERR_DEVICEREMOVED)})


def _short(hr: int) -> str:
    """``D3DDDIERR_WASSTILLDRAWING`` → ``WASSTILLDRAWING`` (the sync reason's suffix)."""
    name = kmd.hresult_name(hr)
    return name.split("ERR_")[-1] if "ERR_" in name else name


class LockPath:
    """One device's lock and unlock path, over its DDI door and MP layer."""

    def __init__(self, door: DdiDoor, mp: MPLayer, hooks: RuntimeHooks,
                 snapshots: DrawSnapshots | None = None) -> None:
        self.door = door
        self.mp = mp
        self.hooks = hooks
        #: the device's draw snapshots, which NoOverwrite views hold the app's writes to
        self.snapshots = snapshots
        #: LockAsync results by code name (``DeviceStatistics.lock_async_results``)
        self.lock_async_results: dict[str, int] = {}
        #: Renames sent (``DeviceStatistics.renames``)
        self.renames = 0

    def choose(self, res: Resource, flags: int) -> tuple[str, str]:
        """("async", "") or ("sync", reason): the runtime's MP lock policy (LA-1, LA-4, Q-2,
        LK-14)."""
        if not self.mp.enabled:
            return "sync", "no-async-ddi"
        if flags & d3d9.D3DLOCK_READONLY:
            return "sync", "readonly"
        if res.sysmem:
            if not self.hooks.sysmem_lock_async(
                    self.door.driver_version >= D3D_UMD_REENTRANT_VERSION):
                return "sync", "sysmem-below-0xB"
            if res.drawn_since_sync and not flags & d3d9.D3DLOCK_NOOVERWRITE:
                # The app may overwrite what a draw queued before this lock reads. Those
                # bytes are the runtime's own memory, and the draw may still be in the
                # runtime's queue (which a NotifyOnly LockAsync on the app thread runs ahead
                # of) or in the driver's command buffer (which LockAsync must not flush): only
                # the synchronous Lock, after a drain, lets the driver flush and wait (LK-10;
                # the contracts' Q-14: "queued runtime work is the runtime's problem")
                return "sync", "sysmem-drawn"
            return "async", ""
        if not res.dynamic:
            return "sync", "not-dynamic"
        if not flags & (d3d9.D3DLOCK_DISCARD | d3d9.D3DLOCK_NOOVERWRITE):
            return "sync", "plain-lock"
        return "async", ""

    def check_lock(self, res: Resource, offset: int, size: int, flags: int, sub: int) -> int:
        """The runtime's own validation of a lock (LA-5, LK-2, LK-4); returns the size to lock
        (``size=0`` means to the end of the subresource). Raises INVALIDCALL."""
        if flags & ~d3d9.D3DLOCK_VALID or not isinstance(offset, int) or offset < 0:
            raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, "bad lock flags or offset")
        discard_nooverwrite = d3d9.D3DLOCK_DISCARD | d3d9.D3DLOCK_NOOVERWRITE
        if flags & discard_nooverwrite == discard_nooverwrite and (
            self.hooks.refuse_discard_with_nooverwrite()
        ):
            raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, "DISCARD and NOOVERWRITE together")
        if flags & d3d9.D3DLOCK_READONLY and flags & d3d9.D3DLOCK_DISCARD:
            raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, "READONLY and DISCARD together")
        if not isinstance(sub, int) or not 0 <= sub < len(res.levels):
            raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL,
                                f"no subresource {sub!r} (the resource has "
                                f"{len(res.levels)})")
        whole = res.levels[sub]
        size = size or whole - offset
        if size <= 0 or offset + size > whole:
            raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, "lock range outside the resource")
        if sub in res.locks:
            raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, "resource is already locked")
        return size

    async def lock(self, res: Resource, offset: int, size: int, flags: int, sub: int
                   ) -> LockedView:
        """Lock ``res`` on the path :meth:`choose` picks; a failed LockAsync falls back to the
        synchronous path (LA-16, Q-1)."""
        size = self.check_lock(res, offset, size, flags, sub)
        path, reason = self.choose(res, flags)
        if path == "async":
            view, failure = await self.lock_async(res, offset, size, flags, sub)
            if view is not None:
                return view
            reason = f"lockasync-failed:{failure}"
        self.mp.count_sync(reason)
        return await self.lock_sync(res, offset, size, flags, sub)

    def lock_async_args(self, res: Resource, offset: int, size: int, flags: int, sub: int
                        ) -> D3DDDIARG_LOCKASYNC:
        """The LockAsync arguments: Discard/NoOverwrite from the app's flags, NotifyOnly for
        runtime system memory (LA-17), RangeValid alone for a partial lock (LA-6), and
        NoExistingReferences when the runtime's queue holds no reference (LA-9)."""
        f = _LA
        af = 0
        if flags & d3d9.D3DLOCK_DISCARD:
            af |= f.Discard
        if flags & d3d9.D3DLOCK_NOOVERWRITE:
            af |= f.NoOverwrite
        if res.sysmem:
            af |= f.NotifyOnly  # LA-17: runtime-allocated system memory
        partial = offset != 0 or size != res.levels[sub]
        if partial:
            af |= f.RangeValid
        af = self.hooks.lock_async_flags(af, partial)
        queued = len(self.mp.queue) if self.mp.queue is not None else 0
        if self.hooks.no_existing_references(
                self.hooks.queued_references(res.queued_refs, queued) == 0):
            af |= f.NoExistingReferences
        return D3DDDIARG_LOCKASYNC(
            resource=res.driver_handle, subresource_index=sub, flags=int(af),
            range=D3DDDIRANGE(offset, size) if partial else None,
        )

    async def lock_async(self, res: Resource, offset: int, size: int, flags: int, sub: int
                         ) -> tuple[LockedView | None, str]:
        """LockAsync on this thread (LA-2); (view, "") or (None, short name of the failure
        code)."""
        la = self.lock_async_args(res, offset, size, flags, sub)
        # the flags as the runtime passed them: Flags is an in-field, and what the driver wrote
        # to it afterwards must not decide the Rename (a driver that zeroed it had the app
        # blamed for a NoOverwrite broken; a str in it raised inside the runtime: sweep E D4)
        passed = la.flags
        hr = await self.door.call("LockAsync", la)
        name = kmd.hresult_name(hr)
        self.lock_async_results[name] = self.lock_async_results.get(name, 0) + 1
        if kmd.FAILED(hr):
            return None, _short(hr)
        ptr = SysmemWindow(res.system_mem, offset, size) if res.sysmem else la.surf_data
        view = LockedView(res, ptr, offset, size, read_only=False, path="async",
                          no_overwrite=self._watch(flags))
        res.locks[sub] = LockState("async", offset, size, flags, view)
        if passed & _LA.Discard:
            res.forget_contents()
            # A NotifyOnly lock is of the runtime's own system memory (LA-17): there is no
            # driver instance to swap, and the cookie it hands back is not one Rename may carry
            # (LA-18, RN-2): renaming it would only fetch an E_INVALIDARG for a later present.
            if not passed & _LA.NotifyOnly:
                # hCookie goes back to Rename unchanged (LA-12, RN-2): an int subclass as its
                # plain value, so that the runtime's own hashing and logging of it never runs
                # the driver's methods (anything else is passed on as it is; the driver's
                # Rename judges it, the checker's LA-12 reports a missing one)
                cookie = plain_int(la.cookie)
                cookie = la.cookie if cookie is None else cookie
                res.last_cookie = cookie
                await self.rename(res, sub, cookie)
        return view, ""

    def _watch(self, flags: int) -> DrawSnapshots | None:
        return self.snapshots if flags & d3d9.D3DLOCK_NOOVERWRITE else None

    async def rename(self, res: Resource, sub: int, cookie: int) -> None:
        """After a successful Discard LockAsync: queue ``Rename`` with the cookie it returned
        (RN-1, RN-2, LA-12), behind every earlier command and ahead of every later one (RN-3,
        RN-4, LA-13)."""
        cookie = self.hooks.rename_cookie(cookie)
        for _ in range(self.hooks.renames_per_discard()):
            if not self.door.implements("Rename"):
                break  # an MP layer without Rename (LA-1 broken): nowhere to send it
            self.renames += 1
            args = D3DDDIARG_RENAME(res.driver_handle, sub, cookie)
            if self.hooks.rename_on_app_thread():
                await self.door.call("Rename", args)
                continue
            await self.mp.enqueue("Rename", args, (res,),
                                  front=self.hooks.enqueue_front_for_rename())

    async def lock_sync(self, res: Resource, offset: int, size: int, flags: int, sub: int
                        ) -> LockedView:
        """``Lock`` through the worker after a drain of what was queued before it (NotifyOnly
        for runtime system memory, LK-10). Raises the driver's failure as a D3DError."""
        f = _LK
        lf = 0
        for app, ddi in _LOCK_FLAGS:
            if flags & app:
                lf |= ddi
        if res.usage & d3d9.D3DUSAGE_WRITEONLY and not flags & d3d9.D3DLOCK_READONLY:
            lf |= f.WriteOnly
        if res.sysmem:
            lf |= f.NotifyOnly  # LK-10
        partial = offset != 0 or size != res.levels[sub]
        if partial:
            lf |= f.RangeValid
        lk = D3DDDIARG_LOCK(resource=res.driver_handle, subresource_index=sub, flags=int(lf),
                            range=D3DDDIRANGE(offset, size) if partial else None)
        hr = await self.mp.sync_call("Lock", lk, (res,))
        if kmd.FAILED(hr):
            raise d3d9.D3DError(hr, "Lock failed")
        ptr = SysmemWindow(res.system_mem, offset, size) if res.sysmem else lk.surf_data
        view = LockedView(res, ptr, offset, size, read_only=bool(flags & d3d9.D3DLOCK_READONLY),
                          no_overwrite=self._watch(flags))
        res.locks[sub] = LockState("sync", offset, size, flags, view)
        if flags & d3d9.D3DLOCK_DISCARD:
            res.forget_contents()
        if not flags & d3d9.D3DLOCK_NOOVERWRITE:  # the driver flushed and waited (LK-10)
            res.drawn_since_sync = False
        return view

    async def unlock(self, res: Resource, sub: int) -> None:
        """UnlockAsync on this thread for an async lock (UA-2), the synchronous ``Unlock``
        otherwise (UA-3). Unlocking something not locked is still forwarded to the driver on
        the path the resource would use, whose ``E_INVALIDARG`` (UA-3, LK-13) becomes
        ``D3DERR_INVALIDCALL``."""
        if not isinstance(sub, int) or not 0 <= sub < len(res.levels):
            raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, f"no subresource {sub!r}")
        st = res.locks.get(sub)
        if st is None:
            path = self.choose(res, d3d9.D3DLOCK_DISCARD)[0]
        else:
            path = self.hooks.unlock_path(st.path, self.mp.enabled)
        if path == "async":
            ua = D3DDDIARG_UNLOCKASYNC(
                res.driver_handle, sub,
                _UA_NOTIFY_ONLY if res.sysmem else 0,
            )
            hr = await self.door.call("UnlockAsync", ua)
        else:
            ul = D3DDDIARG_UNLOCK(res.driver_handle, sub,
                                  _UL_NOTIFY_ONLY if res.sysmem else 0)
            hr = await self.mp.sync_call("Unlock", ul, (res,))
        if kmd.FAILED(hr) and st is not None and hr not in _LOCK_GONE:
            # The driver still holds the lock (e.g. E_OUTOFMEMORY): so does the app, whose view
            # keeps working until an unlock succeeds.
            raise d3d9.D3DError(hr, "Unlock failed: the resource is still locked, unlock again")
        if st is not None and st.view is not None:
            st.view.close()
        res.locks.pop(sub, None)
        if kmd.FAILED(hr):
            if hr == kmd.E_INVALIDARG:
                raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, "resource was not locked")
            raise d3d9.D3DError(hr, "Unlock failed")
