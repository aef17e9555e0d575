"""Independent third-party drivers for the checker: correct ones and buggy ones.

Two families. ``Simple*`` are written from scratch against ``umd.ddi`` and ``kmd``
(:mod:`tests.thirdparty.simple`); each buggy one changes one decision of
:class:`~tests.thirdparty.simple.SimpleDevice`. ``Ref*`` subclass the reference driver's
``ReferenceDevice`` and override only public DDI methods (``pfn_*``), wrapping ``super()`` —
what a user who starts from the reference and changes a DDI would write.

:data:`DRIVERS` says, for each, the scenarios and DDI versions that exercise it and the rule ids
the checker must report: ``required`` (every driver that is buggy must be caught on some schedule
of each scenario) and ``allowed`` (consequences the bug may also cause on some schedules, such as
``DATA`` when the application's bytes got overwritten). A correct driver has neither.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from umd.ddi import D3DDDI_LOCKASYNCFLAGS, D3DDDI_LOCKFLAGS, D3DDDICB_RENDERFLAGS
from umd.reference import DriverConfig, DriverPolicy, ReferenceDevice, ReferenceDriver

from .simple import (
    E_INVALIDARG,
    E_NOTIMPL,
    LAF,
    LF,
    S_OK,
    WSD,
    LockRec,
    Res,
    SimpleDevice,
    SimpleDriver,
    failed,
)

# ---- from scratch: correct ---------------------------------------------------------------


class SimpleSyncDevice(SimpleDevice):
    """Correct, without the async triple: the runtime runs without its MP layer (LA-1)."""

    implements_async = False


class CachingDevice(SimpleDevice):
    """Correct, without the triple, caching the NoOverwrite pointer of Dynamic buffers (LCB-3):
    a NoOverwrite Lock after the first skips pfnLockCb and its Unlock skips pfnUnlockCb; every
    pfnRenderCb and DestroyDevice uncaches first (LCB-4, LCB-17)."""

    implements_async = False
    cache_nooverwrite = True


# ---- from scratch: buggy ---------------------------------------------------------------


class NotifyNotImplDevice(SimpleDevice):
    """Refuses NotifyOnly LockAsync of system-memory surfaces with E_NOTIMPL (LA-16)."""

    async def lock_async_notify(self, args: Any, r: Res, key: tuple[int, int], sub: int) -> int:
        return E_NOTIMPL


class RenameUnlocksHeldDevice(SimpleDevice):
    """Rename pfnUnlockCb's the cookie's allocation, which the application may still hold
    locked, and UnlockAsync then has nothing left to unlock (LCB-19)."""

    released: set[int]

    async def after_rename(self, key: tuple[int, int], handle: int) -> int:
        rec = self.locks.get(key)
        if rec is not None and rec.handle == handle:
            self.released = getattr(self, "released", set()) | {handle}
            return await self.unlock_cb([handle])
        return S_OK

    async def unlock_async_cb(self, rec: LockRec) -> int:
        if rec.handle in getattr(self, "released", set()):
            self.released.discard(rec.handle)
            return S_OK
        return await super().unlock_async_cb(rec)


class OkAfterFailedRenameDevice(SimpleDevice):
    """When a Discard LockAsync cannot rename, locks the current instance with a waiting lock
    and returns S_OK with a cookie for it, instead of the failure (LA-10)."""

    async def rename_failed(self, args: Any, r: Res, key: tuple[int, int], sub: int,
                            hr: int) -> int:
        hr, lk = await self.lock_cb(r.newest[sub], LF.LockEntire)
        if failed(hr):
            return hr
        self.serial += 1
        cookie = 0x00F00000 + self.serial
        self.cookies[cookie] = (key, lk.allocation, self.serial)
        self.locks[key] = LockRec("async", lk.allocation, int(args.flags), cookie)
        args.cookie = cookie
        self.fill(args, r, sub, lk.data)
        return S_OK


class DropsDrawsDevice(SimpleDevice):
    """Accepts every third draw with S_OK and never encodes it (DATA: never executed)."""

    async def pfn_draw_primitive(self, args: Any) -> int:
        if args.draw_id % 3 == 0:
            return S_OK
        return await super().pfn_draw_primitive(args)


class SysmemUnlockSkipsDevice(SimpleSyncDevice):
    """Unlock of a system-memory surface returns without pfnUnlockCb (LK-12)."""

    async def pfn_unlock(self, args: Any) -> int:
        r = self.res.get(args.resource)
        if r is not None and r.placement == "sysmem":
            self.locks.pop((args.resource, args.subresource_index), None)
            return S_OK
        return await super().pfn_unlock(args)


class NoOverwriteWithoutIgnoreSyncDevice(SimpleDevice):
    """Locks NoOverwrite LockAsync with a plain waiting pfnLockCb: no IgnoreSync (LA-14)."""

    def nooverwrite_flags(self) -> int:
        return int(LF.LockEntire)


class CachingNoUncacheDevice(CachingDevice):
    """Caches NoOverwrite pointers (LCB-3) but submits without uncaching (LCB-18)."""

    async def uncache(self, keep_held: bool = True) -> int:
        return S_OK

    async def pfn_destroy_device(self, args: Any = None) -> int:
        async with self.mutex:
            handles = [h for h, _p in self.cache.values()]
            self.cache.clear()
            if handles:
                await self.unlock_cb(handles)
        return await super().pfn_destroy_device(args)


class CachingLeaksDevice(CachingDevice):
    """Caches NoOverwrite pointers (LCB-3), keeps the cache across the resource's other locks
    and uncaches only what a submission references (all LCB-18 asks), but forgets the cache at
    DestroyDevice (LCB-17)."""

    async def uncache_one(self, res: int) -> int:
        return S_OK

    async def uncache(self, keep_held: bool = True) -> int:
        held = {k[0] for k in self.locks}
        for res in [r for r in self.cache if r in self.buf.owners and r not in held]:
            handle, _ptr = self.cache.pop(res)
            hr = await self.unlock_cb([handle])
            if failed(hr):
                return hr
        return S_OK

    async def release_all(self) -> int:
        self.cache.clear()
        return await super().release_all()


class SyncNoRefWithRefsDevice(SimpleSyncDevice):
    """Retries a failed Discard Lock with NoExistingReference without flushing its own
    buffer first, and never flushes before a Discard Lock (LCB-7)."""

    async def lock_sync(self, args: Any, r: Res, key: tuple[int, int], sub: int, f: int) -> int:
        if not f & 0x8:  # not D3DDDI_LOCKFLAGS.Discard
            return await super().lock_sync(args, r, key, sub, f)
        flags = LF.Discard | LF.LockEntire
        if r.handle in self.buf.owners:
            flags |= LF.NoExistingReference
        hr, lk = await self.lock_cb(r.newest[sub], flags)
        if failed(hr):
            return hr
        r.current[sub] = r.newest[sub] = lk.allocation
        self.locks[key] = LockRec("sync", lk.allocation, f)
        self.fill(args, r, sub, lk.data)
        return S_OK


# ---- subclasses of the reference (public DDIs only) -----------------------------------


class RefNotifyNotImplDevice(ReferenceDevice):
    """The reference, refusing NotifyOnly LockAsync with E_NOTIMPL (LA-16)."""

    async def pfn_lock_async(self, args: Any) -> int:
        if args.flags & D3DDDI_LOCKASYNCFLAGS.NotifyOnly:
            return E_NOTIMPL
        return await super().pfn_lock_async(args)


class RefLockAsyncNotImplDevice(ReferenceDevice):
    """Correct: the reference exporting the async triple but refusing every Discard and
    NoOverwrite LockAsync of its own memory with E_NOTIMPL (LA-16 allows it: the runtime falls
    back to Lock); a NotifyOnly one it must still take."""

    async def pfn_lock_async(self, args: Any) -> int:
        f = D3DDDI_LOCKASYNCFLAGS
        if args.flags & (f.Discard | f.NoOverwrite) and not args.flags & f.NotifyOnly:
            return E_NOTIMPL
        return await super().pfn_lock_async(args)


class RefWsdWithoutTryingDevice(ReferenceDevice):
    """The reference, answering every Discard LockAsync "rename failed" (WASSTILLDRAWING)
    without trying one (LA-8)."""

    async def pfn_lock_async(self, args: Any) -> int:
        if args.flags & LAF.Discard and not args.flags & LAF.NotifyOnly:
            return WSD
        return await super().pfn_lock_async(args)


class RefFlushOnWsdDevice(ReferenceDevice):
    """The reference, flushing its command buffer (Flush from LockAsync) when a rename failed
    (LA-10, RCB-8)."""

    async def pfn_lock_async(self, args: Any) -> int:
        hr = await super().pfn_lock_async(args)
        if hr == WSD:
            await super().pfn_flush()
        return hr


class RefUnlockOkWhenUnlockedDevice(ReferenceDevice):
    """The reference, answering S_OK to an Unlock of something Lock did not lock (LK-13)."""

    async def pfn_unlock(self, args: Any) -> int:
        hr = await super().pfn_unlock(args)
        return S_OK if hr == E_INVALIDARG else hr


class RefNoIgnoreSyncDevice(ReferenceDevice):
    """The reference with its pfnLockCb stripped of IgnoreSync (NoOverwrite LockAsync locks
    without it, LA-14)."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        real = self.callbacks.pfn_lock_cb

        async def lock_cb(rt: Any, lk: Any) -> int:
            lk.flags = int(lk.flags) & ~int(LF.IgnoreSync)
            return await real(rt, lk)

        self.callbacks = replace(self.callbacks, pfn_lock_cb=lock_cb)


class RefBusyWithoutAskingDevice(ReferenceDevice):
    """The reference, answering every DoNotWait Lock "still drawing" without asking the kernel
    whether the resource is busy (LK-7's busy half)."""

    async def pfn_lock(self, args: Any) -> int:
        if args.flags & D3DDDI_LOCKFLAGS.DoNotWait:
            return WSD
        return await super().pfn_lock(args)


class RefDiscardPitchZeroDevice(ReferenceDevice):
    """The reference, returning Pitch 0 from a Discard LockAsync that renamed (LA-12)."""

    async def pfn_lock_async(self, args: Any) -> int:
        hr = await super().pfn_lock_async(args)
        if hr == S_OK and args.flags & LAF.Discard and not args.flags & LAF.NotifyOnly:
            args.pitch = 0
        return hr


class _RenderTweakDevice(ReferenceDevice):
    """The reference with its ``pfnRenderCb`` argument changed on the way out (``before``) and
    what came back misread (``after``): one field of D3DDDICB_RENDER wrong, nothing else."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        real = self.callbacks.pfn_render_cb

        async def render_cb(rt: Any, r: Any) -> int:
            self.before(r)
            hr = await real(rt, r)
            self.after(r)
            return hr

        self.callbacks = replace(self.callbacks, pfn_render_cb=render_cb)

    def before(self, r: Any) -> None:
        pass

    def after(self, r: Any) -> None:
        pass


class RefNoCommandLengthDevice(_RenderTweakDevice):
    """CommandLength never filled in (RCB-1)."""

    def before(self, r: Any) -> None:
        r.command_length = None


class RefResizeNotReadBackDevice(_RenderTweakDevice):
    """Asks for a one-command buffer, then fills its configured 4 KiB anyway: the size handed
    back is not read (RCB-3)."""

    def before(self, r: Any) -> None:
        r.flags = int(r.flags) | D3DDDICB_RENDERFLAGS.ResizeCommandBuffer
        r.new_command_buffer_size = 16

    def after(self, r: Any) -> None:
        r.new_command_buffer_size = 4096


class RefRenderContextDevice(_RenderTweakDevice):
    """Submits to an hContext no pfnCreateContextCb returned (RCB-4)."""

    def before(self, r: Any) -> None:
        r.context = 0x4000_0ABC


class RefRenderReservedDevice(_RenderTweakDevice):
    """Sets a reserved D3DDDICB_RENDER.Flags bit (RCB-10)."""

    def before(self, r: Any) -> None:
        r.flags = int(r.flags) | 0x100


class NoLockEntirePolicy(DriverPolicy):
    """The reference's policy, locking NoOverwrite without LockEntire and without a page list
    (LCB-11): the kernel answers D3DERR_NOTAVAILABLE, the LockAsync fails and the runtime
    recovers through Lock — only the request itself is wrong."""

    def nooverwrite_lock_flags(self, device: Any, sub: Any) -> int:
        return int(LF.IgnoreSync | LF.DonotWait)


# ---- drivers (factories the runner loads as MODULE:ATTR) ------------------------------


def _simple(device: type[SimpleDevice]) -> type[SimpleDriver]:
    return type(f"{device.__name__}Driver", (SimpleDriver,), {"device_class": device})


def _ref(device: type[ReferenceDevice]) -> Any:
    def make(driver_version: int | None = None) -> ReferenceDriver:
        cfg = DriverConfig() if driver_version is None else DriverConfig(
            driver_version=driver_version)
        return ReferenceDriver(cfg, device_class=device)

    return make


def ref_no_lockentire(driver_version: int | None = None) -> ReferenceDriver:
    cfg = DriverConfig() if driver_version is None else DriverConfig(
        driver_version=driver_version)
    return ReferenceDriver(cfg, policy=NoLockEntirePolicy())


def ref_sync(driver_version: int | None = None) -> ReferenceDriver:
    """The reference driver in its documented ``implements=()`` configuration (no triple)."""
    cfg = DriverConfig(implements=())
    return ReferenceDriver(cfg if driver_version is None else replace(
        cfg, driver_version=driver_version))


simple = SimpleDriver
simple_sync = _simple(SimpleSyncDevice)
caching = _simple(CachingDevice)
notify_notimpl = _simple(NotifyNotImplDevice)
rename_unlocks_held = _simple(RenameUnlocksHeldDevice)
ok_after_failed_rename = _simple(OkAfterFailedRenameDevice)
drops_draws = _simple(DropsDrawsDevice)
sysmem_unlock_skips = _simple(SysmemUnlockSkipsDevice)
nooverwrite_without_ignoresync = _simple(NoOverwriteWithoutIgnoreSyncDevice)
caching_no_uncache = _simple(CachingNoUncacheDevice)
caching_leaks = _simple(CachingLeaksDevice)
sync_noref_with_refs = _simple(SyncNoRefWithRefsDevice)
ref_notify_notimpl = _ref(RefNotifyNotImplDevice)
ref_lockasync_notimpl = _ref(RefLockAsyncNotImplDevice)
ref_wsd_without_trying = _ref(RefWsdWithoutTryingDevice)
ref_flush_on_wsd = _ref(RefFlushOnWsdDevice)
ref_unlock_ok_when_unlocked = _ref(RefUnlockOkWhenUnlockedDevice)
ref_no_ignoresync = _ref(RefNoIgnoreSyncDevice)
ref_busy_without_asking = _ref(RefBusyWithoutAskingDevice)
ref_discard_pitch_zero = _ref(RefDiscardPitchZeroDevice)
ref_no_command_length = _ref(RefNoCommandLengthDevice)
ref_resize_not_read_back = _ref(RefResizeNotReadBackDevice)
ref_render_context = _ref(RefRenderContextDevice)
ref_render_reserved = _ref(RefRenderReservedDevice)


@dataclass(frozen=True)
class ThirdParty:
    """One third-party driver: where the runner finds it, what exercises it, what it trips."""

    attr: str
    scenarios: tuple[str, ...]
    versions: tuple[int, ...] = (0xA, 0xB)
    required: frozenset[str] = frozenset()
    allowed: frozenset[str] = frozenset()

    @property
    def driver(self) -> str:
        return f"tests.thirdparty.drivers:{self.attr}"

    @property
    def correct(self) -> bool:
        return not self.required


def _tp(attr: str, scenarios: str, required: str = "", allowed: str = "",
        versions: tuple[int, ...] = (0xA, 0xB)) -> ThirdParty:
    return ThirdParty(attr, tuple(scenarios.split()), versions,
                      frozenset(required.split()), frozenset(allowed.split()))


_STREAMING = "dynamic-vb-ring discard-every-frame rename-failure-recovery reentrant-lockasync"
_ALL = (f"{_STREAMING} multi-app-threads nooverwrite-local-vidmem sysmem-surface-lock "
        "unlock-never-locked lock-flags tdr-mid-lock out-of-video-memory")

DRIVERS: dict[str, ThirdParty] = {t.attr: t for t in (
    _tp("simple", _ALL),
    # without the async triple, one app thread's draw in multi-app-threads can read another's
    # stream while it is locked through Lock: the runtime refuses it (LK-8) and the scenario
    # skips that draw (it used to fail, whatever the driver: h7)
    _tp("simple_sync", _ALL),
    _tp("caching", _ALL),
    _tp("ref_sync", _ALL),
    _tp("ref_lockasync_notimpl", _ALL, versions=(0xB,)),
    _tp("notify_notimpl", "sysmem-surface-lock", "LA-16", versions=(0xB,)),
    _tp("rename_unlocks_held", "dynamic-vb-ring discard-every-frame", "LCB-19",
        "LCB-1 exception"),
    _tp("ok_after_failed_rename", "rename-failure-recovery", "LA-10", "DATA"),
    _tp("drops_draws", "dynamic-vb-ring discard-every-frame", "DATA", "LA-9 LCB-7"),
    _tp("sysmem_unlock_skips", "sysmem-surface-lock", "LK-12"),
    _tp("nooverwrite_without_ignoresync", "dynamic-vb-ring", "LA-14"),
    _tp("caching_no_uncache", "dynamic-vb-ring", "LCB-18"),
    _tp("caching_leaks", "lock-flags", "LCB-17"),
    _tp("sync_noref_with_refs", "rename-failure-recovery", "LCB-7",
        "DATA"),
    _tp("ref_notify_notimpl", "sysmem-surface-lock", "LA-16", versions=(0xB,)),
    _tp("ref_wsd_without_trying", "dynamic-vb-ring discard-every-frame", "LA-8"),
    _tp("ref_flush_on_wsd", "rename-failure-recovery", "LA-10"),
    _tp("ref_unlock_ok_when_unlocked", "unlock-never-locked", "LK-13", "EXPECT"),
    _tp("ref_no_ignoresync", "dynamic-vb-ring", "LA-14"),
    # the seam checks of LK-7's busy half, LA-12's outputs, LCB-11 and RCB-1/3/4/10: one DDI
    # version each keeps the default suite fast (the seam fields are the same at both)
    _tp("ref_busy_without_asking", "primary-surface", "LK-7", versions=(0xA,)),
    _tp("ref_discard_pitch_zero", "dynamic-vb-ring", "LA-12", versions=(0xB,)),
    _tp("ref_no_lockentire", "dynamic-vb-ring", "LCB-11", versions=(0xA,)),
    _tp("ref_no_command_length", "dynamic-vb-ring", "RCB-1", versions=(0xB,)),
    _tp("ref_resize_not_read_back", "dynamic-vb-ring", "RCB-3", versions=(0xA,)),
    _tp("ref_render_context", "dynamic-vb-ring", "RCB-4", versions=(0xB,)),
    _tp("ref_render_reserved", "dynamic-vb-ring", "RCB-10", versions=(0xA,)),
)}

__all__ = ["DRIVERS", "ThirdParty"]
