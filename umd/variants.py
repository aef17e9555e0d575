"""Named buggy variants of the reference driver: each one a bug class real driver authors write.

Every variant changes one decision of the reference driver, as a small override beside the
hook it breaks: a :class:`~umd.DriverPolicy` subclass where a policy hook expresses the bug, a
:class:`~umd.ReferenceDevice` subclass where it is about the device itself (its lock, a whole
DDI). Each is registered on :data:`VARIANT_REGISTRY` with the rule ids a checker should cite
when the bug shows; :data:`VARIANTS` is the live map of :class:`VariantInfo` over the registry.
The runner resolves ``--driver NAME`` (a registered name) or ``--driver
umd.variants:track_in_lockasync`` (a factory below).

Several are bugs only some interleavings expose: ``lock-order-deadlock`` deadlocks only when the
app thread is switched out between its two acquisitions while the worker is drawing;
``unlockasync-wrong-handle`` is right by accident when Rename happened to run before UnlockAsync
(S-10); ``rename-ignores-cookie`` needs a second Discard before the worker reaches the first
Rename (S-11); ``noexistingref-with-queued-refs`` needs the worker to have encoded (not yet
submitted) a draw of the buffer when the app locks it; ``wasstilldrawing-without-discard`` needs
the GPU to still be reading the buffer; ``no-driver-lock`` is reported as a race whenever the app
and the worker touch driver state without happens-before, harmful or not.

Register your own the same way::

    @umd.VARIANT_REGISTRY.register("my-bug", rules=("LA-13",))
    class MyBug(umd.DriverPolicy):
        "One line saying what it gets wrong."
        def rename_target(self, device, cookie, tracking):
            return tracking.newest
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

import vthreads as vt
from vthreads.registry import Registry

from .ddi import D3DDDIARG_LOCKASYNC, D3DDDIARG_RENAME
from .reference import (
    Cookie,
    DriverConfig,
    DriverPolicy,
    LockRecord,
    ReferenceDevice,
    ReferenceDriver,
    Subresource,
    Tracking,
)
from .reference._config import LF, S_OK, WASSTILLDRAWING

__all__ = ["VARIANTS", "VARIANT_REGISTRY", "VariantInfo", "make_driver"]

#: every named variant: a DriverPolicy subclass, a ReferenceDevice subclass, or a factory
#: ``f(driver_version=None, config=None) -> driver`` (for config-only variants)
VARIANT_REGISTRY: Registry[Any] = Registry("driver variant")
variant = VARIANT_REGISTRY.register


@dataclass(frozen=True)
class VariantInfo:
    """One registered variant: ``factory(driver_version=None, config=None)`` builds the
    driver; ``expected_rules`` are the ids the checker cites when the bug shows (``DATA``,
    ``RACE``, ``deadlock`` and ``exception`` are the emulator's own oracles). ``device_class``
    and ``policy_class`` are what the driver is built from."""

    name: str
    description: str
    factory: Callable[..., ReferenceDriver]
    expected_rules: tuple[str, ...]
    device_class: type[ReferenceDevice]
    policy_class: type[DriverPolicy] = DriverPolicy


# ---------------------------------------------------------------------------------------------
# The buggy policies


@variant("track-in-lockasync", rules=("LA-13", "DATA"))
class TrackInLockAsync(DriverPolicy):
    """Switches resource→allocation tracking inside LockAsync(Discard) instead of waiting for
    Rename: draws the runtime queued *before* the lock are encoded against the new instance,
    which the application is overwriting (LA-13, RN-5, S-8)."""

    def after_discard_lock_async(self, device: Any, tracking: Tracking, new: int) -> Tracking:
        return Tracking(new, new)


@variant("flush-on-rename-failure", rules=("LA-10",))
class FlushOnRenameFailure(DriverPolicy):
    """Flushes its command buffer (pfnRenderCb from the app thread, under the worker's feet)
    when a Discard LockAsync cannot rename (LA-10, RCB-8)."""

    async def rename_failed(self, device: Any, args: D3DDDIARG_LOCKASYNC, hr: int) -> int:
        await device.submit("rename-failure", site="lock_async.discard")
        return hr


@variant("noexistingref-with-queued-refs", rules=("LA-9", "DATA"))
class NoExistingRefWithQueuedRefs(DriverPolicy):
    """Passes the runtime's NoExistingReferences straight to pfnLockCb as NoExistingReference,
    forgetting its own unsubmitted command buffer: VidMm reuses the instance a pending draw
    still has to read, and the application overwrites it (LA-9, LCB-7, S-3)."""

    def discard_lock_flags(self, device: Any, args: D3DDDIARG_LOCKASYNC, sub: Subresource,
                           own_refs: bool) -> int:
        return super().discard_lock_flags(device, args, sub, False)


@variant("nooverwrite-local-vidmem", rules=("LA-14", "LA-15"))
class NoOverwriteLocalVidmem(DriverPolicy):
    """Accepts NoOverwrite LockAsync on allocations that can only live in local video memory
    (with a plain lock, since IgnoreSync is refused there): the worker then renders from a
    locked allocation VidMm cannot move, and pfnRenderCb fails with
    D3DDDIERR_CANTRENDERLOCKEDALLOCATION (LA-15, LA-16, RCB-5, S-4)."""

    def accepts_nooverwrite(self, device: Any, sub: Subresource) -> bool:
        return True

    def nooverwrite_lock_flags(self, device: Any, sub: Subresource) -> int:
        if sub.render_while_locked:
            return super().nooverwrite_lock_flags(device, sub)
        return int(LF.LockEntire)


@variant("discard-ignored", rules=("DATA",))
class DiscardIgnored(DriverPolicy):
    """Treats Discard as "lock it where it is": no rename, no wait (IgnoreSync|DonotWait where
    VidMm allows it, else a waiting lock that only covers *submitted* work). The application
    overwrites bytes queued or in-flight draws have yet to read (LA-8; the data oracle)."""

    def discard_lock_flags(self, device: Any, args: D3DDDIARG_LOCKASYNC, sub: Subresource,
                           own_refs: bool) -> int:
        if sub.render_while_locked:
            return int(LF.IgnoreSync | LF.DonotWait | LF.LockEntire)
        return int(LF.LockEntire)  # IgnoreSync is refused there (KL-15)

    def in_place_unsafe(self, device: Any, lock_flags: int) -> bool:
        return False


class _NoLock:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


@variant("no-driver-lock", rules=("RACE",))
class NoDriverLockDevice(ReferenceDevice):
    """Takes no lock at all — fine below 0xB, where the runtime never overlaps two DDIs, and a
    race at >= 0xB, where LockAsync/UnlockAsync run on the app thread while the worker is inside
    DrawPrimitive or Flush touching the same tracking table and command buffer (MP-2, S-3,
    S-5)."""

    def guard(self, ddi_name: str) -> Any:
        return _NoLock()


@variant("unlockasync-skips-unlockcb", rules=("UA-4",))
class UnlockAsyncSkipsUnlockCb(DriverPolicy):
    """Forgets pfnUnlockCb in UnlockAsync: the allocation stays locked in the kernel for the
    rest of the device's life (UA-4, LCB-17)."""

    async def unlock_async_cb(self, device: Any, allocations: list[int]) -> int:
        return S_OK


@variant("wasstilldrawing-without-discard", rules=("LA-11", "LA-14"))
class WasStillDrawingWithoutDiscard(DriverPolicy):
    """Locks NoOverwrite with DonotWait but without IgnoreSync and hands the busy answer back:
    LockAsync returns D3DDDIERR_WASSTILLDRAWING without Discard whenever the GPU is still reading
    the buffer (LA-11)."""

    def nooverwrite_lock_flags(self, device: Any, sub: Subresource) -> int:
        return int(LF.DonotWait | LF.LockEntire)

    def lock_async_failure(self, device: Any, hr: int, discard: bool) -> int:
        if hr == WASSTILLDRAWING:
            return hr
        return super().lock_async_failure(device, hr, discard)


@variant("swallow-callback-errors", rules=("ERR-1",))
class SwallowCallbackErrors(DriverPolicy):
    """Reports S_OK whatever pfnRenderCb or pfnUnlockCb answered: a removed device, a rejected
    command buffer or a failed unlock never reach the runtime (ERR-1)."""

    async def after_render(self, device: Any, cmdbuf: Any, hr: int) -> int:
        return S_OK

    async def after_unlock_cb(self, device: Any, allocations: list[int], hr: int) -> int:
        return S_OK


class _Ordered:
    """Acquire two mutexes in the given order (release in reverse)."""

    def __init__(self, first: vt.Mutex, second: vt.Mutex) -> None:
        self.first, self.second = first, second

    async def __aenter__(self) -> None:
        await self.first.acquire()
        await self.second.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self.second.release()
        self.first.release()


@variant("lock-order-deadlock", rules=("deadlock",))
class LockOrderDeadlockDevice(ReferenceDevice):
    """Splits the driver lock into a *tables* lock (tracking, cookies, locks) and a *command
    buffer* lock, and takes them in opposite orders: LockAsync/UnlockAsync/Rename tables →
    cmdbuf, every other DDI cmdbuf → tables. At >= 0xB an app-thread LockAsync that is switched
    out between the two acquisitions while the worker enters DrawPrimitive deadlocks; most
    schedules are fine (deadlock)."""

    _APP_FIRST = ("lock_async", "unlock_async", "rename")

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.tables_lock = vt.Mutex(f"{self.name}.tables")
        self.cmdbuf_lock = vt.Mutex(f"{self.name}.cmdbuf")

    def guard(self, ddi_name: str) -> Any:
        if ddi_name.split(".")[0] in self._APP_FIRST:
            return _Ordered(self.tables_lock, self.cmdbuf_lock)
        return _Ordered(self.cmdbuf_lock, self.tables_lock)


@variant("unlockasync-wrong-handle", rules=("UA-4",))
class UnlockAsyncWrongHandle(DriverPolicy):
    """UnlockAsync unlocks the allocation the tracking table names instead of the one LockAsync
    locked: after a Discard whose Rename has not run yet that is the *old* instance, which is
    not locked (pfnUnlockCb fails, the new one stays locked); after the Rename it is right by
    accident (UA-4, LCB-20, S-10)."""

    def unlock_async_handle(self, device: Any, record: LockRecord, tracking: Tracking) -> int:
        return tracking.current


@variant("rename-ignores-cookie", rules=("LA-13", "DATA"))
class RenameIgnoresCookie(DriverPolicy):
    """Rename switches to the newest instance instead of the cookie's: with several Discards
    before the first Rename (S-11) the draws between Rename(C1) and Rename(C2) read the bytes
    the app wrote last instead of those it wrote first (RN-4; the data oracle)."""

    def rename_target(self, device: Any, cookie: Cookie, tracking: Tracking) -> int:
        return tracking.newest


class _ExtraLockFlags(DriverPolicy):
    """Base: ORs ``extra`` into every pfnLockCb flag word."""

    extra = 0

    def lock_cb_flags(self, device: Any, allocation: int, flags: int) -> int:
        return int(flags) | self.extra


@variant("lockcb-readonly-writeonly", rules=("KL-6",))
class LockCbReadWrite(_ExtraLockFlags):
    """Asks pfnLockCb for ReadOnly and WriteOnly at once (KL-6): the kernel rejects every lock
    with E_INVALIDARG."""

    extra = int(LF.ReadOnly | LF.WriteOnly)


@variant("lockcb-ignoresync-acquireaperture", rules=("KL-9",))
class LockCbIgnoreSyncAperture(_ExtraLockFlags):
    """Combines IgnoreSync with AcquireAperture on every pfnLockCb (KL-9)."""

    extra = int(LF.IgnoreSync | LF.AcquireAperture)


@variant("lockcb-alternateva-alone", rules=("KL-10",))
class LockCbAlternateVa(_ExtraLockFlags):
    """Sets UseAlternateVA without AcquireAperture on every pfnLockCb (KL-10)."""

    extra = int(LF.UseAlternateVA)


@variant("crash-in-rename", rules=("exception",))
class CrashInRenameDevice(ReferenceDevice):
    """Raises a Python exception out of Rename (an exception escaping a DDI is a failure of the
    run, never a silent error)."""

    async def pfn_rename(self, args: D3DDDIARG_RENAME) -> int:
        raise RuntimeError("rename table corrupted")


# ---------------------------------------------------------------------------------------------
# The hard corpus (issue 12): bugs only a narrow interleaving of the app thread and the worker
# exposes, at DDI >= 0xB (below it the runtime never overlaps two DDIs). fifo never meets them
# and random sampling rarely does on its first schedule.


class _DropsLockAround(ReferenceDevice):
    """Base: lets go of the device lock while the running thread is inside one region and
    takes it again afterwards ("the callback may wait; do not stall the other thread") —
    keeping what it read before, which is the bug."""

    async def _let_go(self, site: str) -> Any:
        me = vt.current_thread().tid
        entry = self._held.pop(me, None)
        if entry is not None:
            await entry[1].__aexit__(None, None, None)
        return entry

    async def _take_again(self, entry: Any, site: str) -> None:
        if entry is not None:
            cm = self.guard(site)
            await cm.__aenter__()
            self._held[vt.current_thread().tid] = [entry[0], cm]


@variant("discard-lockcb-unlocked", rules=("RN-4",))
class DiscardLockCbUnlockedDevice(_DropsLockAround):
    """Drops the device lock around a Discard's pfnLockCb, then writes back the tracking entry
    it read before the call: a Rename the worker completed in that window is lost, and later
    draws go back to the instance before the cookie's — a lost update under a lock (RN-4,
    LA-13)."""

    async def lock_cb(self, allocation: int, flags: int) -> Any:
        if not flags & LF.Discard:
            return await super().lock_cb(allocation, flags)
        entry = await self._let_go("lock_async.discard")
        try:
            return await super().lock_cb(allocation, flags)
        finally:
            await self._take_again(entry, "lock_async.discard")


@variant("rename-frees-unlocked", rules=("DATA",))
class RenameFreesUnlockedDevice(_DropsLockAround):
    """Rename lets go of the device lock before freeing superseded cookies ("freeing may
    take a while") and switches tracking afterwards with the entry it read before: a Discard
    LockAsync that ran in that window has its ``newest`` instance forgotten, so the next
    Discard renames from the wrong instance and draws read bytes the app did not write for
    them (a lost update under a lock, RN-5; the data oracle)."""

    async def _drop_cookies(self, site: str, key: Any, before_seq: int | None,
                            reason: str) -> None:
        if site == "rename":
            entry = await self._let_go(site)
            await vt.checkpoint("rename.free")
            await self._take_again(entry, site)
        await super()._drop_cookies(site, key, before_seq, reason)




class _StaleCopyAround(_DropsLockAround):
    """Base: at one site, copies one table (``cell``: ``"tracking"`` or ``"cookies"``), lets
    go of the device lock for a moment and writes the copy back — what the other thread wrote
    to that table in the window is lost. The window is one scheduling point wide; the other
    thread must get through a whole DDI in it."""

    cell = "tracking"

    async def _stale_window(self, site: str) -> None:
        cell = getattr(self, f"_{self.cell}")
        copy = dict(await cell.read(site))
        entry = await self._let_go(site)
        await vt.checkpoint(f"{site}.window")
        await self._take_again(entry, site)
        await cell.write(copy, site)


class _AtRename(_StaleCopyAround):
    async def _drop_cookies(self, site: str, key: Any, before_seq: int | None,
                            reason: str) -> None:
        if site == "rename":
            await self._stale_window(site)
        await super()._drop_cookies(site, key, before_seq, reason)


class _AtSubmit(_StaleCopyAround):
    async def submit(self, reason: str, *, site: str | None = None) -> int:
        where = reason if site is None else site
        if (await self._cmdbuf.read(where)).commands:
            await self._stale_window(where)
        return await super().submit(reason, site=site)


class _AtDraw(_StaleCopyAround):
    async def _encode_draw(self, site: str, *args: Any) -> int:
        await self._stale_window(site)
        return await super()._encode_draw(site, *args)  # type: ignore[misc]


@variant("rename-cookies-unlocked", rules=("DATA", "exception", "RN-4"))
class RenameCookiesUnlockedDevice(_AtRename):
    """Rename copies the pending-cookie table, lets go of the device lock before freeing the
    superseded ones and writes its copy back afterwards: the cookie of a Discard LockAsync
    that ran in that window is forgotten, so its Rename is refused (the app sees the batched
    failure) and the draws after it read the old instance (RN-4; a lost update under a
    lock)."""

    cell = "cookies"


@variant("submit-tracking-unlocked", rules=("DATA", "exception", "RN-4"))
class SubmitTrackingUnlockedDevice(_AtSubmit):
    """The worker's submit copies the tracking table, lets go of the device lock while it
    builds the pfnRenderCb request ("do not stall the app thread on a big buffer") and writes
    its copy back: a Discard LockAsync that ran in that window has its ``newest`` instance
    forgotten, so the next Discard renames from the wrong instance and draws read bytes the
    app did not write for them (RN-5; ``rename-frees-unlocked`` has it at the Rename site)."""


@variant("submit-cookies-unlocked", rules=("DATA", "exception", "RN-4"))
class SubmitCookiesUnlockedDevice(_AtSubmit):
    """The same window at submit over the pending-cookie table: the cookie of a Discard
    LockAsync in between is forgotten and its Rename refused (RN-4)."""

    cell = "cookies"


@variant("draw-tracking-unlocked", rules=("DATA", "exception", "RN-4"))
class DrawTrackingUnlockedDevice(_AtDraw):
    """DrawPrimitive copies the tracking table, lets go of the device lock before encoding
    each stream's draw and writes its copy back: a Discard LockAsync in between loses its
    ``newest`` instance (RN-5)."""



@variant("nooverwrite-lockcb-unlocked", rules=("RN-4", "DATA", "exception"))
class NoOverwriteLockCbUnlockedDevice(_StaleCopyAround):
    """A NoOverwrite LockAsync copies the tracking table, drops the device lock around its
    pfnLockCb (IgnoreSync|DonotWait: "it never waits, but why hold the lock") and writes the
    copy back: a Rename the worker completed in that window is lost, and later draws go back to
    the instance before the cookie's (RN-4; ``discard-lockcb-unlocked`` has it on the
    Discard path)."""

    async def lock_cb(self, allocation: int, flags: int) -> Any:
        if flags & LF.Discard or not flags & LF.IgnoreSync:
            return await super().lock_cb(allocation, flags)
        site = "lock_async.nooverwrite"
        copy = dict(await self._tracking.read(site))
        entry = await self._let_go(site)
        try:
            return await super().lock_cb(allocation, flags)
        finally:
            await self._take_again(entry, site)
            await self._tracking.write(copy, site)

def _config(config: DriverConfig | None, driver_version: int | None) -> DriverConfig:
    cfg = config if config is not None else DriverConfig()
    return cfg if driver_version is None else replace(cfg, driver_version=driver_version)


@variant("no-rename", rules=("LA-1",))
def no_rename(driver_version: int | None = None,
              config: DriverConfig | None = None) -> ReferenceDriver:
    """A *correct* driver that implements LockAsync and UnlockAsync but not Rename: the runtime
    must then run without its MP layer (LA-1). Pair it with the runtime bug
    ``lockasync-without-triple`` to see LA-1 reported."""
    cfg = replace(_config(config, driver_version), implements=("lock_async", "unlock_async"))
    return ReferenceDriver(cfg)


# ---------------------------------------------------------------------------------------------
# From the registry to drivers


@cache
def factory_for(obj: Any) -> Callable[..., ReferenceDriver]:
    """The driver factory ``f(driver_version=None, config=None)`` of a registered variant
    object (one per object, so ``factory_for(x) is factory_for(x)``): a DriverPolicy subclass
    gives a ReferenceDriver with that policy, a ReferenceDevice subclass one with that device
    class, a function is its own factory."""
    if isinstance(obj, type) and issubclass(obj, DriverPolicy):
        def make(driver_version: int | None = None,
                 config: DriverConfig | None = None) -> ReferenceDriver:
            return ReferenceDriver(_config(config, driver_version), policy=obj())
    elif isinstance(obj, type) and issubclass(obj, ReferenceDevice):
        def make(driver_version: int | None = None,
                 config: DriverConfig | None = None) -> ReferenceDriver:
            return ReferenceDriver(_config(config, driver_version), device_class=obj)
    elif callable(obj):
        return obj  # type: ignore[no-any-return]
    else:
        raise TypeError(f"a driver variant is a DriverPolicy or ReferenceDevice subclass or a "
                        f"factory, not {obj!r}")
    make.__doc__ = obj.__doc__
    make.__name__ = make.__qualname__ = obj.__name__
    return make


def info(name: str) -> VariantInfo:
    """The :class:`VariantInfo` of the registered variant ``name`` (RegistryError if none)."""
    e = VARIANT_REGISTRY.entry(name)
    obj = e.obj
    is_cls = isinstance(obj, type)
    return VariantInfo(
        name, " ".join((obj.__doc__ or "").split()), factory_for(obj), e.rules,
        obj if is_cls and issubclass(obj, ReferenceDevice) else ReferenceDevice,
        obj if is_cls and issubclass(obj, DriverPolicy) else DriverPolicy,
    )


class _Variants(Mapping[str, VariantInfo]):
    """``VARIANTS``: name → :class:`VariantInfo`, live over :data:`VARIANT_REGISTRY`, in
    registration order (the documentation order)."""

    def __getitem__(self, name: str) -> VariantInfo:
        if name not in VARIANT_REGISTRY:
            raise KeyError(name)
        return info(name)

    def __iter__(self) -> Iterator[str]:
        return iter(VARIANT_REGISTRY.names())

    def __len__(self) -> int:
        return len(VARIANT_REGISTRY)

    def __repr__(self) -> str:
        return f"VARIANTS({', '.join(VARIANT_REGISTRY.names())})"


#: every named variant, by CLI name (registration order is the documentation order)
VARIANTS: Mapping[str, VariantInfo] = _Variants()

# one module-level factory per seeded variant: ``--driver umd.variants:track_in_lockasync``
track_in_lockasync = factory_for(TrackInLockAsync)
flush_on_rename_failure = factory_for(FlushOnRenameFailure)
noexistingref_with_queued_refs = factory_for(NoExistingRefWithQueuedRefs)
nooverwrite_local_vidmem = factory_for(NoOverwriteLocalVidmem)
discard_ignored = factory_for(DiscardIgnored)
no_driver_lock = factory_for(NoDriverLockDevice)
unlockasync_skips_unlockcb = factory_for(UnlockAsyncSkipsUnlockCb)
wasstilldrawing_without_discard = factory_for(WasStillDrawingWithoutDiscard)
swallow_callback_errors = factory_for(SwallowCallbackErrors)
lock_order_deadlock = factory_for(LockOrderDeadlockDevice)
unlockasync_wrong_handle = factory_for(UnlockAsyncWrongHandle)
rename_ignores_cookie = factory_for(RenameIgnoresCookie)
lockcb_readonly_writeonly = factory_for(LockCbReadWrite)
lockcb_ignoresync_acquireaperture = factory_for(LockCbIgnoreSyncAperture)
lockcb_alternateva_alone = factory_for(LockCbAlternateVa)
crash_in_rename = factory_for(CrashInRenameDevice)
discard_lockcb_unlocked = factory_for(DiscardLockCbUnlockedDevice)
rename_frees_unlocked = factory_for(RenameFreesUnlockedDevice)
submit_tracking_unlocked = factory_for(SubmitTrackingUnlockedDevice)
submit_cookies_unlocked = factory_for(SubmitCookiesUnlockedDevice)
draw_tracking_unlocked = factory_for(DrawTrackingUnlockedDevice)
nooverwrite_lockcb_unlocked = factory_for(NoOverwriteLockCbUnlockedDevice)
rename_cookies_unlocked = factory_for(RenameCookiesUnlockedDevice)


def make_driver(name: str | None = None, *, driver_version: int | None = None,
                config: DriverConfig | None = None) -> ReferenceDriver:
    """The reference driver (``name`` None or ``"reference"``) or the variant ``name``, with
    ``driver_version`` overriding the config's. Raises ``ValueError`` for an unknown name."""
    if name is None or name == "reference":
        return ReferenceDriver(_config(config, driver_version))
    if name not in VARIANT_REGISTRY:
        raise ValueError(f"unknown driver variant {name!r}: choose from "
                         f"{', '.join(VARIANT_REGISTRY.names())}")
    return factory_for(VARIANT_REGISTRY[name])(driver_version=driver_version, config=config)
