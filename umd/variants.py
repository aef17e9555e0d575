"""Named buggy variants of the reference driver: each one a bug class real driver authors write.

Every variant is a :class:`~umd.reference.ReferenceDevice` subclass that changes one decision
(usually one policy hook), packaged as a driver factory and registered in :data:`VARIANTS` with
the rule ids a checker should cite when the bug shows. The runner resolves ``--driver NAME`` (a
key of :data:`VARIANTS`) or ``--driver umd.variants:track_in_lockasync`` (a factory below).

Several are bugs only some interleavings expose: ``lock-order-deadlock`` deadlocks only when the
app thread is switched out between its two acquisitions while the worker is drawing;
``unlockasync-wrong-handle`` is right by accident when Rename happened to run before UnlockAsync
(S-10); ``rename-ignores-cookie`` needs a second Discard before the worker reaches the first
Rename (S-11); ``noexistingref-with-queued-refs`` needs the worker to have encoded (not yet
submitted) a draw of the buffer when the app locks it; ``wasstilldrawing-without-discard`` needs
the GPU to still be reading the buffer; ``no-driver-lock`` is reported as a race whenever the app
and the worker touch driver state without happens-before, harmful or not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import vthreads as vt

from .ddi import D3DDDIARG_LOCKASYNC, D3DDDIARG_RENAME, D3DDDICB_LOCK
from .reference import (
    LF,
    S_OK,
    WASSTILLDRAWING,
    DriverConfig,
    ReferenceDevice,
    ReferenceDriver,
    _Cookie,
    _LockRec,
    _Sub,
    _Track,
)

__all__ = ["VARIANTS", "VariantInfo", "make_driver"]


@dataclass(frozen=True)
class VariantInfo:
    """One registered variant: ``factory(driver_version=None, config=None)`` builds the
    driver; ``expected_rules`` are the ids the checker cites when the bug shows (``DATA``,
    ``RACE``, ``deadlock`` and ``exception`` are the emulator's own oracles)."""

    name: str
    description: str
    factory: Callable[..., ReferenceDriver]
    expected_rules: tuple[str, ...]
    device_class: type[ReferenceDevice]


# ---------------------------------------------------------------------------------------------
# The buggy devices


class TrackInLockAsyncDevice(ReferenceDevice):
    """Switches resource→allocation tracking inside LockAsync(Discard) instead of waiting for
    Rename: draws the runtime queued *before* the lock are encoded against the new instance,
    which the application is overwriting (LA-13, RN-5, S-8)."""

    def _after_discard_lockasync(self, tr: _Track, new: int) -> str | None:
        tr.newest = new
        tr.current = new
        return "lockasync"


class FlushOnRenameFailureDevice(ReferenceDevice):
    """Flushes its command buffer (pfnRenderCb from the app thread, under the worker's feet)
    when a Discard LockAsync cannot rename (LA-10, RCB-8)."""

    async def _rename_failed(self, args: D3DDDIARG_LOCKASYNC, hr: int) -> int:
        await self._submit("lock_async.discard", "rename-failure")
        return hr


class NoExistingRefWithQueuedRefsDevice(ReferenceDevice):
    """Passes the runtime's NoExistingReferences straight to pfnLockCb as NoExistingReference,
    forgetting its own unsubmitted command buffer: VidMm reuses the instance a pending draw
    still has to read, and the application overwrites it (LA-9, LCB-7, S-3)."""

    def _discard_lock_flags(self, args: D3DDDIARG_LOCKASYNC, sub: _Sub, own_refs: bool) -> int:
        return super()._discard_lock_flags(args, sub, False)


class NoOverwriteLocalVidmemDevice(ReferenceDevice):
    """Accepts NoOverwrite LockAsync on allocations that can only live in local video memory
    (with a plain lock, since IgnoreSync is refused there): the worker then renders from a
    locked allocation VidMm cannot move, and pfnRenderCb fails with
    D3DDDIERR_CANTRENDERLOCKEDALLOCATION (LA-15, LA-16, RCB-5, S-4)."""

    def _accepts_nooverwrite(self, sub: _Sub) -> bool:
        return True

    def _nooverwrite_lock_flags(self, sub: _Sub) -> int:
        if sub.render_while_locked:
            return super()._nooverwrite_lock_flags(sub)
        return int(LF.LockEntire)


class DiscardIgnoredDevice(ReferenceDevice):
    """Treats Discard as "lock it where it is": no rename, no wait (IgnoreSync|DonotWait where
    VidMm allows it, else a waiting lock that only covers *submitted* work). The application
    overwrites bytes queued or in-flight draws have yet to read (LA-8; the data oracle)."""

    def _discard_lock_flags(self, args: D3DDDIARG_LOCKASYNC, sub: _Sub, own_refs: bool) -> int:
        if sub.render_while_locked:
            return int(LF.IgnoreSync | LF.DonotWait | LF.LockEntire)
        return int(LF.LockEntire)  # IgnoreSync is refused there (KL-15)

    def _in_place_unsafe(self, lock_flags: int) -> bool:
        return False


class _NoLock:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


class NoDriverLockDevice(ReferenceDevice):
    """Takes no lock at all — fine below 0xB, where the runtime never overlaps two DDIs, and a
    race at >= 0xB, where LockAsync/UnlockAsync run on the app thread while the worker is inside
    DrawPrimitive or Flush touching the same tracking table and command buffer (MP-2, S-3,
    S-5)."""

    def guard(self, ddi_name: str) -> Any:
        return _NoLock()


class UnlockAsyncSkipsUnlockCbDevice(ReferenceDevice):
    """Forgets pfnUnlockCb in UnlockAsync: the allocation stays locked in the kernel for the
    rest of the device's life (UA-4, LCB-17)."""

    async def _unlock_async_cb(self, allocations: list[int]) -> int:
        return S_OK


class WasStillDrawingWithoutDiscardDevice(ReferenceDevice):
    """Locks NoOverwrite with DonotWait but without IgnoreSync and hands the busy answer back:
    LockAsync returns D3DDDIERR_WASSTILLDRAWING without Discard whenever the GPU is still reading
    the buffer (LA-11)."""

    def _nooverwrite_lock_flags(self, sub: _Sub) -> int:
        return int(LF.DonotWait | LF.LockEntire)

    def _lockasync_failure(self, hr: int, discard: bool) -> int:
        if hr == WASSTILLDRAWING:
            return hr
        return super()._lockasync_failure(hr, discard)


class SwallowCallbackErrorsDevice(ReferenceDevice):
    """Reports S_OK whatever pfnRenderCb or pfnUnlockCb answered: a removed device, a rejected
    command buffer or a failed unlock never reach the runtime (ERR-1)."""

    async def _submit(self, site: str, reason: str) -> int:
        await super()._submit(site, reason)
        return S_OK

    async def _unlock_cb(self, allocations: list[int]) -> int:
        await super()._unlock_cb(allocations)
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


class UnlockAsyncWrongHandleDevice(ReferenceDevice):
    """UnlockAsync unlocks the allocation the tracking table names instead of the one LockAsync
    locked: after a Discard whose Rename has not run yet that is the *old* instance, which is
    not locked (pfnUnlockCb fails, the new one stays locked); after the Rename it is right by
    accident (UA-4, LCB-20, S-10)."""

    def _unlock_async_handle(self, rec: _LockRec, tr: _Track) -> int:
        return tr.current


class RenameIgnoresCookieDevice(ReferenceDevice):
    """Rename switches to the newest instance instead of the cookie's: with several Discards
    before the first Rename (S-11) the draws between Rename(C1) and Rename(C2) read the bytes
    the app wrote last instead of those it wrote first (RN-4; the data oracle)."""

    def _rename_target(self, cookie: _Cookie, tr: _Track) -> int:
        return tr.newest


class _ExtraLockFlagsDevice(ReferenceDevice):
    """Base: ORs ``extra`` into every pfnLockCb flag word."""

    extra = 0

    async def _lock_cb(self, allocation: int, flags: int) -> tuple[int, D3DDDICB_LOCK]:
        return await super()._lock_cb(allocation, int(flags) | self.extra)


class LockCbReadWriteDevice(_ExtraLockFlagsDevice):
    """Asks pfnLockCb for ReadOnly and WriteOnly at once (KL-6): the kernel rejects every lock
    with E_INVALIDARG."""

    extra = int(LF.ReadOnly | LF.WriteOnly)


class LockCbIgnoreSyncApertureDevice(_ExtraLockFlagsDevice):
    """Combines IgnoreSync with AcquireAperture on every pfnLockCb (KL-9)."""

    extra = int(LF.IgnoreSync | LF.AcquireAperture)


class LockCbAlternateVaDevice(_ExtraLockFlagsDevice):
    """Sets UseAlternateVA without AcquireAperture on every pfnLockCb (KL-10)."""

    extra = int(LF.UseAlternateVA)


class CrashInRenameDevice(ReferenceDevice):
    """Raises a Python exception out of Rename (an exception escaping a DDI is a failure of the
    run, never a silent error)."""

    async def pfn_rename(self, args: D3DDDIARG_RENAME) -> int:
        raise RuntimeError("rename table corrupted")


# ---------------------------------------------------------------------------------------------
# Registry


def _factory(device_class: type[ReferenceDevice], doc: str) -> Callable[..., ReferenceDriver]:
    def make(driver_version: int | None = None,
             config: DriverConfig | None = None) -> ReferenceDriver:
        cfg = config if config is not None else DriverConfig()
        if driver_version is not None:
            cfg = replace(cfg, driver_version=driver_version)
        return ReferenceDriver(cfg, device_class=device_class)

    make.__doc__ = doc
    return make


track_in_lockasync = _factory(TrackInLockAsyncDevice, TrackInLockAsyncDevice.__doc__ or "")
flush_on_rename_failure = _factory(FlushOnRenameFailureDevice,
                                   FlushOnRenameFailureDevice.__doc__ or "")
noexistingref_with_queued_refs = _factory(NoExistingRefWithQueuedRefsDevice,
                                          NoExistingRefWithQueuedRefsDevice.__doc__ or "")
nooverwrite_local_vidmem = _factory(NoOverwriteLocalVidmemDevice,
                                    NoOverwriteLocalVidmemDevice.__doc__ or "")
discard_ignored = _factory(DiscardIgnoredDevice, DiscardIgnoredDevice.__doc__ or "")
no_driver_lock = _factory(NoDriverLockDevice, NoDriverLockDevice.__doc__ or "")
unlockasync_skips_unlockcb = _factory(UnlockAsyncSkipsUnlockCbDevice,
                                      UnlockAsyncSkipsUnlockCbDevice.__doc__ or "")
wasstilldrawing_without_discard = _factory(WasStillDrawingWithoutDiscardDevice,
                                           WasStillDrawingWithoutDiscardDevice.__doc__ or "")
swallow_callback_errors = _factory(SwallowCallbackErrorsDevice,
                                   SwallowCallbackErrorsDevice.__doc__ or "")
lock_order_deadlock = _factory(LockOrderDeadlockDevice, LockOrderDeadlockDevice.__doc__ or "")
unlockasync_wrong_handle = _factory(UnlockAsyncWrongHandleDevice,
                                    UnlockAsyncWrongHandleDevice.__doc__ or "")
rename_ignores_cookie = _factory(RenameIgnoresCookieDevice,
                                 RenameIgnoresCookieDevice.__doc__ or "")


lockcb_readonly_writeonly = _factory(LockCbReadWriteDevice, LockCbReadWriteDevice.__doc__ or "")
lockcb_ignoresync_acquireaperture = _factory(LockCbIgnoreSyncApertureDevice,
                                             LockCbIgnoreSyncApertureDevice.__doc__ or "")
lockcb_alternateva_alone = _factory(LockCbAlternateVaDevice,
                                    LockCbAlternateVaDevice.__doc__ or "")
crash_in_rename = _factory(CrashInRenameDevice, CrashInRenameDevice.__doc__ or "")


def no_rename(driver_version: int | None = None,
              config: DriverConfig | None = None) -> ReferenceDriver:
    """A *correct* driver that implements LockAsync and UnlockAsync but not Rename: the runtime
    must then run without its MP layer (LA-1). Pair it with the runtime bug
    ``lockasync-without-triple`` to see LA-1 reported."""
    cfg = config if config is not None else DriverConfig()
    cfg = replace(cfg, implements=("lock_async", "unlock_async"))
    if driver_version is not None:
        cfg = replace(cfg, driver_version=driver_version)
    return ReferenceDriver(cfg)


def _info(name: str, factory: Callable[..., ReferenceDriver], cls: type[ReferenceDevice],
          rules: tuple[str, ...]) -> tuple[str, VariantInfo]:
    doc = " ".join((cls.__doc__ or "").split())
    return name, VariantInfo(name, doc, factory, rules, cls)


#: every named variant, by CLI name (insertion order is the documentation order)
VARIANTS: dict[str, VariantInfo] = dict(
    [
        _info("track-in-lockasync", track_in_lockasync, TrackInLockAsyncDevice,
              ("LA-13", "DATA")),
        _info("flush-on-rename-failure", flush_on_rename_failure, FlushOnRenameFailureDevice,
              ("LA-10",)),
        _info("noexistingref-with-queued-refs", noexistingref_with_queued_refs,
              NoExistingRefWithQueuedRefsDevice, ("LA-9", "DATA")),
        _info("nooverwrite-local-vidmem", nooverwrite_local_vidmem, NoOverwriteLocalVidmemDevice,
              ("LA-14", "LA-15")),
        _info("discard-ignored", discard_ignored, DiscardIgnoredDevice, ("DATA",)),
        _info("no-driver-lock", no_driver_lock, NoDriverLockDevice, ("RACE",)),
        _info("unlockasync-skips-unlockcb", unlockasync_skips_unlockcb,
              UnlockAsyncSkipsUnlockCbDevice, ("UA-4",)),
        _info("wasstilldrawing-without-discard", wasstilldrawing_without_discard,
              WasStillDrawingWithoutDiscardDevice, ("LA-11", "LA-14")),
        _info("swallow-callback-errors", swallow_callback_errors, SwallowCallbackErrorsDevice,
              ("ERR-1",)),
        _info("lock-order-deadlock", lock_order_deadlock, LockOrderDeadlockDevice,
              ("deadlock",)),
        _info("unlockasync-wrong-handle", unlockasync_wrong_handle, UnlockAsyncWrongHandleDevice,
              ("UA-4",)),
        _info("rename-ignores-cookie", rename_ignores_cookie, RenameIgnoresCookieDevice,
              ("LA-13", "DATA")),
        _info("lockcb-readonly-writeonly", lockcb_readonly_writeonly, LockCbReadWriteDevice,
              ("KL-6",)),
        _info("lockcb-ignoresync-acquireaperture", lockcb_ignoresync_acquireaperture,
              LockCbIgnoreSyncApertureDevice, ("KL-9",)),
        _info("lockcb-alternateva-alone", lockcb_alternateva_alone, LockCbAlternateVaDevice,
              ("KL-10",)),
        _info("crash-in-rename", crash_in_rename, CrashInRenameDevice, ("exception",)),
        ("no-rename", VariantInfo(
            "no-rename", " ".join((no_rename.__doc__ or "").split()), no_rename, ("LA-1",),
            ReferenceDevice)),
    ]
)


def make_driver(name: str | None = None, *, driver_version: int | None = None,
                config: DriverConfig | None = None) -> ReferenceDriver:
    """The reference driver (``name`` None or ``"reference"``) or the variant ``name``, with
    ``driver_version`` overriding the config's. Raises ``ValueError`` for an unknown name."""
    if name is None or name == "reference":
        cfg = config if config is not None else DriverConfig()
        if driver_version is not None:
            cfg = replace(cfg, driver_version=driver_version)
        return ReferenceDriver(cfg)
    info = VARIANTS.get(name)
    if info is None:
        raise ValueError(f"unknown driver variant {name!r}: choose from {', '.join(VARIANTS)}")
    return info.factory(driver_version=driver_version, config=config)

