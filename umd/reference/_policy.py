"""The reference driver's decisions, as overridable hooks: :class:`DriverPolicy`.

Every choice the contract leaves to the driver — which flags pfnLockCb gets, what a failure
maps to, where an allocation lives, which handle an unlock names — is one method here. The
reference device (:class:`~umd.ReferenceDevice`) consults ``device.policy`` at each of them and
does the rest (state, locking, callbacks, logging) itself. A driver engineer subclasses
:class:`DriverPolicy`, changes one decision, and gets every other behaviour of the reference;
the seeded variants of :mod:`umd.variants` are exactly such subclasses.

Every hook takes the device first (its ``config``, ``name``, its :attr:`~umd.ReferenceDevice.
view`), is called with the device's lock held unless its docstring says otherwise, and must not
keep the records it is given beyond the call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..ddi import D3DDDI_POOL, D3DDDI_RESOURCEFLAGS, D3DDDIARG_CREATERESOURCE, D3DDDIARG_LOCKASYNC
from ._config import DEVICEREMOVED, E_NOTIMPL, E_OUTOFMEMORY, LAF, LF, WASSTILLDRAWING
from ._records import CommandBuffer, Cookie, LockRecord, Subresource, Tracking

if TYPE_CHECKING:
    from ._state import DeviceState

__all__ = ["DriverPolicy"]


class DriverPolicy:
    """The reference driver's answer to every decision a driver makes (see the module doc).

    Instances are stateless by default and one is shared by all devices of a driver; a
    subclass that keeps state keeps it per device (``device.name``) in ``vthreads.SharedCell``
    s so the race checker sees it."""

    # ---- CreateResource ---------------------------------------------------------------

    def placement(self, device: DeviceState, args: D3DDDIARG_CREATERESOURCE) -> str:
        """Where the allocations of a new resource may live (``kmd.AllocationDesc.segments``,
        or ``"sysmem"`` for the runtime's memory).

        Dynamic vertex/index buffers and MightDrawFromLocked VBs must be renderable while
        locked (LA-15, LK-9, LCB-4): aperture. LOCALVIDMEM, render targets and depth buffers:
        local video memory only (no NoOverwrite LockAsync there, Q-8). NONLOCALVIDMEM:
        aperture. SYSTEMMEM: caller memory (AC-6). A primary: anywhere CPU-accessible (SEG-8).
        Everything else: anywhere (Q-9)."""
        f, pool = args.flags, args.pool
        if pool == D3DDDI_POOL.SYSTEMMEM:
            return "sysmem"
        if f & D3DDDI_RESOURCEFLAGS.Primary:
            return "any"  # the kernel keeps only CPU-accessible segments for it (SEG-8)
        if pool == D3DDDI_POOL.LOCALVIDMEM or f & (
            D3DDDI_RESOURCEFLAGS.RenderTarget | D3DDDI_RESOURCEFLAGS.ZBuffer
        ):
            return "local"
        dyn_buffer = f & D3DDDI_RESOURCEFLAGS.Dynamic and f & (
            D3DDDI_RESOURCEFLAGS.VertexBuffer | D3DDDI_RESOURCEFLAGS.IndexBuffer
        )
        if dyn_buffer or f & D3DDDI_RESOURCEFLAGS.MightDrawFromLocked:
            return "aperture"
        if pool == D3DDDI_POOL.NONLOCALVIDMEM:
            return "aperture"
        return "any"

    # ---- LockAsync --------------------------------------------------------------------

    def discard_lock_flags(self, device: DeviceState, args: D3DDDIARG_LOCKASYNC,
                           sub: Subresource, own_refs: bool) -> int:
        """The pfnLockCb flags of a Discard LockAsync (LA-8, LA-9, LCB-7): ``Discard``, plus
        ``NoExistingReference`` only when the runtime said it has no queued reference
        (``NoExistingReferences``) **and** this driver's unsubmitted buffer has none
        (``own_refs`` false)."""
        flags = LF.Discard | LF.LockEntire
        if args.flags & LAF.NoExistingReferences and not own_refs:
            flags |= LF.NoExistingReference
        return int(flags)

    def accepts_nooverwrite(self, device: DeviceState, sub: Subresource) -> bool:
        """Whether a NoOverwrite LockAsync of ``sub`` is taken (else E_NOTIMPL): only where
        VidMm can render while locked (LA-15, LA-16, Q-8)."""
        return sub.render_while_locked

    def nooverwrite_lock_flags(self, device: DeviceState, sub: Subresource) -> int:
        """The pfnLockCb flags of a NoOverwrite LockAsync (LA-14, Q-10): IgnoreSync is
        honoured only together with DonotWait, so both (and never a busy answer, LA-11)."""
        return int(LF.IgnoreSync | LF.DonotWait | LF.LockEntire)

    def lock_async_failure(self, device: DeviceState, hr: int, discard: bool) -> int:
        """What LockAsync returns for a failed pfnLockCb answering ``hr`` (Q-13): a failed
        Discard is a failed rename → WASSTILLDRAWING (LA-10); E_OUTOFMEMORY and DEVICEREMOVED
        pass through unchanged (ERR-1, ERR-3); anything else → E_NOTIMPL, from which the
        runtime recovers (LA-16). WASSTILLDRAWING never leaves a non-Discard LockAsync
        (LA-11)."""
        if hr in (E_OUTOFMEMORY, DEVICEREMOVED):
            return hr
        if discard and hr == WASSTILLDRAWING:
            return WASSTILLDRAWING
        return E_NOTIMPL

    def in_place_unsafe(self, device: DeviceState, lock_flags: int) -> bool:
        """Whether a Discard pfnLockCb (made with ``lock_flags``) that came back with the
        *same* instance must be refused as a failed rename (LA-8, LA-10): VidMm locked in
        place (KL-18 pinned or existing-sysmem allocations, or an idle reuse), and unless
        ``NoExistingReference`` was true a queued command may still read that instance."""
        return not lock_flags & LF.NoExistingReference

    async def rename_failed(self, device: DeviceState, args: D3DDDIARG_LOCKASYNC,
                            hr: int) -> int:
        """Called when a Discard LockAsync's rename failed (``hr`` is WASSTILLDRAWING); returns
        what LockAsync reports. The reference reports it and does **not** flush: no
        pfnRenderCb from LockAsync (LA-10, RCB-8)."""
        return hr

    def after_discard_lock_async(self, device: DeviceState, tracking: Tracking,
                                 new: int) -> Tracking:
        """The tracking entry after a successful Discard LockAsync locked instance ``new``:
        only ``newest`` moves; ``current`` waits for Rename (LA-13, RN-5). A ``current``
        that changes here is logged as a ``umd.track.switch`` with reason ``lockasync``."""
        return Tracking(tracking.current, new)

    # ---- Rename / UnlockAsync ------------------------------------------------------------

    def rename_target(self, device: DeviceState, cookie: Cookie, tracking: Tracking) -> int:
        """The instance Rename makes current: the one the cookie names (RN-4)."""
        return cookie.allocation

    def unlock_async_handle(self, device: DeviceState, record: LockRecord,
                            tracking: Tracking) -> int:
        """The handle UnlockAsync gives pfnUnlockCb: the one LockAsync locked — after a Discard
        the *new* instance, whether or not Rename has switched tracking yet (UA-4, LCB-20,
        S-10)."""
        return record.allocation

    async def unlock_async_cb(self, device: DeviceState, allocations: list[int]) -> int:
        """UnlockAsync's pfnUnlockCb (UA-4, LCB-17): ``await device.unlock_cb(allocations)``."""
        return await device.unlock_cb(allocations)

    # ---- callbacks -----------------------------------------------------------------------

    def lock_cb_flags(self, device: DeviceState, allocation: int, flags: int) -> int:
        """The flag word pfnLockCb really gets for a lock the driver decided to make with
        ``flags`` (the trace logs ``flags``): unchanged (KL-6, KL-9, KL-10 are the kernel's
        checks of it)."""
        return flags

    async def after_unlock_cb(self, device: DeviceState, allocations: list[int],
                              hr: int) -> int:
        """What the driver acts on after pfnUnlockCb answered ``hr``: ``hr`` itself — a
        failure is returned by the DDI and the lock stays outstanding (ERR-1)."""
        return hr

    async def before_render(self, device: DeviceState, cmdbuf: CommandBuffer) -> None:
        """Called just before pfnRenderCb submits ``cmdbuf`` (with the lock held; never for an
        empty buffer). It may append whole commands (RCB-7); the reference does nothing."""
        return None

    async def after_render(self, device: DeviceState, cmdbuf: CommandBuffer, hr: int) -> int:
        """Called after pfnRenderCb answered ``hr`` for ``cmdbuf`` (the submitted buffer; the
        device already continues with the runtime's next one, RCB-2/RCB-3, and has logged
        ``umd.cmdbuf.submit``). Returns what the submit reports to its DDI: ``hr`` (ERR-1)."""
        return hr

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


#: the hooks ReferenceDevice subclasses used to override under ``_`` names (deprecated; the
#: device routes them, see ``ReferenceDevice.__init_subclass__``): old name → policy hook
LEGACY_HOOKS: dict[str, str] = {
    "_placement": "placement",
    "_discard_lock_flags": "discard_lock_flags",
    "_accepts_nooverwrite": "accepts_nooverwrite",
    "_nooverwrite_lock_flags": "nooverwrite_lock_flags",
    "_lockasync_failure": "lock_async_failure",
    "_in_place_unsafe": "in_place_unsafe",
    "_rename_failed": "rename_failed",
    "_rename_target": "rename_target",
    "_unlock_async_handle": "unlock_async_handle",
    "_unlock_async_cb": "unlock_async_cb",
}


class LegacyHooks:
    """A policy that sends the hooks a device class overrides under their old ``_`` names to
    those methods (``device._accepts_nooverwrite(sub)``) and every other hook to ``inner``."""

    def __init__(self, inner: DriverPolicy, overridden: tuple[str, ...]) -> None:
        self.inner = inner
        self._routes = {LEGACY_HOOKS[old]: old for old in overridden}

    def __getattr__(self, hook: str) -> Any:
        old = self.__dict__["_routes"].get(hook)
        if old is None:
            return getattr(self.__dict__["inner"], hook)
        return lambda device, *args: getattr(device, old)(*args)
