"""A reference device's state: its shared cells, its lock, its heap and the callbacks.

Everything the app thread and the worker can both touch lives in ``vthreads.SharedCell`` s
(``umd.devN.resources``, ``.tracking``, ``.cmdbuf``, ``.streams``, ``.cookies``, ``.locks``,
``.heap``), so the happens-before checker sees every access, and is touched only while holding
the device lock (:meth:`DeviceState.locked`, over :meth:`DeviceState.guard`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import vthreads as vt

from ..ddi import D3DDDI_DEVICECALLBACKS, D3DDDIARG_CREATEDEVICE, D3DDDICB_LOCK, D3DDDICB_UNLOCK
from ._config import HEAP_COSTS, DriverConfig
from ._policy import DriverPolicy
from ._records import (
    CommandBuffer,
    Cookie,
    LockRecord,
    Resource,
    StreamBinding,
    Subresource,
    Tracking,
)
from ._view import DeviceView

if TYPE_CHECKING:
    from ._driver import ReferenceDriver

Key = tuple[int, int]


class _Held:
    """``device.locked()``: the device lock, reentrant for the thread that holds it.

    The first entry on a thread enters ``device.guard(site)``; nested entries on that thread
    only count, so an override can hold the lock around reference code that takes it again
    (and is then atomic with it). Depth is kept per thread id: a variant's guard that excludes
    nothing (``no-driver-lock``) still nests correctly."""

    __slots__ = ("device", "site", "tid")

    def __init__(self, device: DeviceState, site: str) -> None:
        self.device = device
        self.site = site
        self.tid = -1

    async def __aenter__(self) -> None:
        # the thread that enters is the one that exits (one ``async with`` on one thread)
        self.tid = tid = vt.current_thread().tid
        held = self.device._held
        if tid in held:
            held[tid][0] += 1
            return
        cm = self.device.guard(self.site)
        await cm.__aenter__()
        held[tid] = [1, cm]

    async def __aexit__(self, *exc: object) -> None:
        tid = self.tid
        entry = self.device._held[tid]
        entry[0] -= 1
        if entry[0] == 0:
            del self.device._held[tid]
            await entry[1].__aexit__(*exc)


class DeviceState:
    """The per-device state and plumbing every part of the reference device builds on."""

    def __init__(self, driver: ReferenceDriver, args: D3DDDIARG_CREATEDEVICE, serial: int) -> None:
        self.driver = driver
        self.config: DriverConfig = driver.config
        self.name = f"umd.dev{serial}"
        self.rt_device = args.runtime_device
        self.callbacks: D3DDDI_DEVICECALLBACKS = args.callbacks
        self.mutex = vt.Mutex(f"{self.name}.lock")
        #: the decisions this device consults (the driver's, see ``ReferenceDevice``)
        self.policy: DriverPolicy = driver.policy
        # The first command buffer: the runtime's, if its CreateDevice hands one over (real
        # D3DDDIARG_CREATEDEVICE has pCommandBuffer/pAllocationList); else the driver's own.
        buf = getattr(args, "command_buffer", None)
        buf_size = getattr(args, "command_buffer_size", 0) or self.config.command_buffer_size
        alist = getattr(args, "allocation_list", None)
        alist_size = getattr(args, "allocation_list_size", 0) or self.config.allocation_list_size
        n = self.name
        self._resources: vt.SharedCell[dict[int, Resource]] = vt.SharedCell(f"{n}.resources", {})
        self._tracking: vt.SharedCell[dict[Key, Tracking]] = vt.SharedCell(f"{n}.tracking", {})
        self._cmdbuf: vt.SharedCell[CommandBuffer] = vt.SharedCell(
            f"{n}.cmdbuf",
            CommandBuffer([] if buf is None else buf, buf_size,
                          [] if alist is None else alist, alist_size),
        )
        self._streams: vt.SharedCell[dict[int, StreamBinding]] = vt.SharedCell(
            f"{n}.streams", {}
        )
        self._cookies: vt.SharedCell[dict[int, Cookie]] = vt.SharedCell(f"{n}.cookies", {})
        self._locks: vt.SharedCell[dict[Key, LockRecord]] = vt.SharedCell(f"{n}.locks", {})
        self._heap: vt.SharedCell[int] = vt.SharedCell(f"{n}.heap", 0)
        # thread id -> [depth, the guard entered]: see _Held
        self._held: dict[int, list[Any]] = {}
        # counters: only ever touched under the lock
        self._next_resource = 0
        self._next_cookie = 0
        self.submits = 0
        #: the race-checked read view of this device's resources and tracking
        self.view = DeviceView(self)

    # ---- the device lock ---------------------------------------------------------------

    def guard(self, ddi_name: str) -> Any:
        """The async context manager that protects the device's shared state for ``ddi_name``
        (MP-2): the one mutex ``umd.devN.lock``. Override it to change what the lock is (the
        ``no-driver-lock`` and ``lock-order-deadlock`` variants do); code takes the lock with
        :meth:`locked`, never by entering ``guard`` itself."""
        return self.mutex

    def locked(self, site: str = "locked") -> Any:
        """``async with device.locked():`` holds the device lock, reentrant for the holding
        thread: DDIs and hooks called inside take it again without blocking, so an override
        that wraps reference code runs atomically with it (MP-2). ``site`` names the holder
        for :meth:`guard`. A *waiting* pfnLockCb inside keeps the lock held (the reference
        normally drops it around one): hold it only around code that waits for nothing but
        the GPU."""
        return _Held(self, site)

    # ---- heap and lookups (caller holds the lock) ---------------------------------------

    async def _heap_take(self, site: str, nbytes: int) -> bool:
        used = await self._heap.read(site)
        if used + nbytes > self.config.heap_bytes:
            vt.log("umd.heap.exhausted", device=self.name, site=site, want=nbytes, used=used)
            return False
        await self._heap.write(used + nbytes, site)
        return True

    async def _heap_give(self, site: str, nbytes: int) -> None:
        if nbytes:
            await self._heap.update(lambda u: u - nbytes, site)

    async def _lookup(self, site: str, resource: int,
                      sub: int) -> tuple[Resource, Subresource] | None:
        res = (await self._resources.read(site)).get(resource)
        if res is None or not isinstance(sub, int) or not 0 <= sub < len(res.subresources):
            return None
        return res, res.subresources[sub]

    async def _set_tracking(self, site: str, key: Key, tr: Tracking) -> None:
        tracking = await self._tracking.read(site)
        tracking[key] = tr
        await self._tracking.write(tracking, site)

    async def _record_lock(self, site: str, key: Key, rec: LockRecord) -> None:
        locks = await self._locks.read(site)
        locks[key] = rec
        await self._locks.write(locks, site)

    async def _drop_lock(self, site: str, key: Key) -> None:
        locks = await self._locks.read(site)
        del locks[key]
        await self._locks.write(locks, site)

    async def _switch(self, site: str, key: Key, tr: Tracking, new: int, reason: str,
                      cookie: int = 0) -> Tracking:
        """Point the tracking of ``key`` at ``new`` (caller holds the lock and has a descriptor
        for ``new`` from the heap). The old instance's descriptor is freed now, or at the next
        submit when commands already encoded against it are still in the buffer. A renaming
        Lock makes ``new`` both current and newest (LCB-8); Rename only current (RN-4)."""
        out = Tracking(new, tr.newest if reason == "rename" else new)
        await self._set_tracking(site, key, out)
        cb = await self._cmdbuf.read(site)
        if cb.references(key):
            cb.superseded += 1
            await self._cmdbuf.write(cb, site)
        else:
            await self._heap_give(site, HEAP_COSTS["descriptor"])
        if vt.tracing("umd.track.switch"):
            vt.log("umd.track.switch", device=self.name, resource=key[0], subresource=key[1],
                   old=tr.current, new=new, reason=reason, cookie=cookie)
        return out

    async def _drop_cookies(self, site: str, key: Key, before_seq: int | None,
                            reason: str) -> None:
        """Forget the pending cookies of ``key`` (all, or those older than ``before_seq``):
        Q-3. Their instances are never referenced by this driver again."""
        cookies = await self._cookies.read(site)
        dead = [
            c for c in cookies.values()
            if c.key == key and (before_seq is None or c.seq < before_seq)
        ]
        if not dead:
            return
        for c in dead:
            del cookies[c.cookie]
            vt.log("umd.cookie.drop", device=self.name, cookie=c.cookie, resource=key[0],
                   subresource=key[1], allocation=c.allocation, reason=reason)
        await self._cookies.write(cookies, site)
        await self._heap_give(site, len(dead) * HEAP_COSTS["cookie"])

    # ---- callbacks (one place, so policies and tests see every call) --------------------

    async def lock_cb(self, allocation: int, flags: int) -> tuple[int, D3DDDICB_LOCK]:
        """pfnLockCb on ``allocation`` with ``flags`` (``kmd.D3DDDICB_LOCKFLAGS``, passed
        through ``policy.lock_cb_flags``). Returns the HRESULT and the ``D3DDDICB_LOCK`` (its
        ``allocation`` is the instance locked, LCB-5; ``data`` the CPU pointer)."""
        real = self.policy.lock_cb_flags(self, allocation, int(flags))
        lk = D3DDDICB_LOCK(allocation=allocation, flags=int(real))
        hr = await self.callbacks.pfn_lock_cb(self.rt_device, lk)
        return int(hr), lk

    async def unlock_cb(self, allocations: list[int]) -> int:
        """pfnUnlockCb on ``allocations``; the answer goes through ``policy.after_unlock_cb``
        (ERR-1)."""
        hr = int(await self.callbacks.pfn_unlock_cb(self.rt_device, D3DDDICB_UNLOCK(allocations)))
        return int(await self.policy.after_unlock_cb(self, allocations, hr))

    # ---- peeks for tests and reports (no scheduling point, no race check) ---------------
    #
    # ``device.view`` is the race-checked way to read the same state from emulated code; these
    # are for test assertions and reports made outside the threads under test.

    def tracked(self, resource: int, subresource: int = 0) -> int:
        """The instance handle draws of (resource, subresource) are encoded against now
        (a peek: no scheduling point, no race check; emulated code uses ``view.tracked``)."""
        return self._tracking.peek()[(resource, subresource)].current

    def newest(self, resource: int, subresource: int = 0) -> int:
        """The latest instance handle pfnLockCb handed out for (resource, subresource)
        (a peek)."""
        return self._tracking.peek()[(resource, subresource)].newest

    def allocation(self, resource: int, subresource: int = 0) -> int:
        """The allocation's first handle (instance 0) of (resource, subresource) (a peek)."""
        return self._resources.peek()[resource].subresources[subresource].base

    def pending_cookies(self, resource: int | None = None) -> list[int]:
        """The pending cookies (of ``resource``, or all) in creation order (a peek)."""
        return [c.cookie for c in self._cookies.peek().values()
                if resource is None or c.key[0] == resource]

    def outstanding_locks(self) -> dict[Key, tuple[str, str, int]]:
        """(resource, sub) → (path, kind, allocation) of every outstanding lock (a peek)."""
        return {k: (r.path, r.kind, r.allocation) for k, r in self._locks.peek().items()}

    def pending_commands(self) -> list[Any]:
        """The commands encoded and not yet submitted (a peek)."""
        return list(self._cmdbuf.peek().commands)

    def pending_allocations(self) -> list[int]:
        """The instance handles the pending allocation list names (a peek)."""
        return list(self._cmdbuf.peek().slots)

    def heap_used(self) -> int:
        """Bytes of the driver heap in use (a peek)."""
        return self._heap.peek()
