"""The reference user-mode display driver: the documented LockAsync / UnlockAsync / Rename
contract, implemented on the emulator's engine.

Read ``docs/umd.md`` first; this docstring is the short version.

A driver is an object with ``async open_adapter(D3DDDIARG_OPENADAPTER) -> HRESULT``.
:class:`ReferenceDriver` fills the adapter table; its ``pfn_create_device`` builds one
:class:`ReferenceDevice` per runtime device and hands back ``D3DDDI_DEVICEFUNCS`` whose entries are
the device class's ``pfn_*`` functions. The runtime calls them as ``await pfn(hDevice, pData)``,
``hDevice`` being the device object itself, exactly like the C signature ``(HANDLE hDevice,
D3DDDIARG_x *pData)``.

State and threads. At DDI version >= 0xB the runtime calls LockAsync / UnlockAsync on the
application thread while its worker thread is inside another DDI of the same device (MP-2, S-5).
Everything the two can both touch lives in engine :class:`vthreads.SharedCell` s (so the
happens-before checker sees every access) and is only touched while holding the device's driver
mutex (``umd.devN.lock``).

Lock order (the only one): **driver mutex → runtime callback mutex**. The driver calls the
runtime's callbacks with or without its mutex held, never the other way round: the runtime's
callbacks never call into the driver. The mutex is held across a callback only when that
callback cannot wait for anything but the GPU (pfnRenderCb, pfnUnlockCb, and pfnLockCb with
``IgnoreSync|DonotWait`` or ``Discard``; pfnAllocateCb and pfnDeallocateCb are made without
it): the GPU finishes already-submitted DMA buffers without any driver lock, so such a wait
always ends and cannot close a cycle. Waiting locks (NotifyOnly, plain and synchronous waiting
locks) drop the mutex around pfnLockCb so the worker keeps encoding meanwhile; they claim the
subresource first, so a second locker gets E_INVALIDARG rather than a second kernel lock. The
one exception is the LCB-6 retry ``Discard|NoExistingReference`` (it may wait for the current
instance to go idle): "no reference queued" must stay true until the kernel has acted on it, so
the mutex stays held; again only GPU progress ends that wait.

Handles: the driver's resource handles are ``0x00D00000 + n``, cookies ``0x00C00000 + n``
(Q-4: opaque to the runtime, mapping to the new instance's kernel handle), both per device.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import kmd
import kmd.structs
import vthreads as vt

from .ddi import (
    D3D_UMD_INTERFACE_VERSION_VISTA,
    D3DDDI_ADAPTERFUNCS,
    D3DDDI_ALLOCATIONINFO,
    D3DDDI_DEVICECALLBACKS,
    D3DDDI_DEVICEFUNCS,
    D3DDDI_LOCKASYNCFLAGS,
    D3DDDI_LOCKFLAGS,
    D3DDDI_POOL,
    D3DDDI_RESOURCEFLAGS,
    D3DDDIARG_CREATEDEVICE,
    D3DDDIARG_CREATERESOURCE,
    D3DDDIARG_DESTROYRESOURCE,
    D3DDDIARG_DRAWPRIMITIVE,
    D3DDDIARG_LOCK,
    D3DDDIARG_LOCKASYNC,
    D3DDDIARG_OPENADAPTER,
    D3DDDIARG_PRESENT,
    D3DDDIARG_RENAME,
    D3DDDIARG_SETSTREAMSOURCE,
    D3DDDIARG_UNLOCK,
    D3DDDIARG_UNLOCKASYNC,
    D3DDDICB_ALLOCATE,
    D3DDDICB_DEALLOCATE,
    D3DDDICB_LOCK,
    D3DDDICB_RENDER,
    D3DDDICB_RENDERFLAGS,
    D3DDDICB_UNLOCK,
    UNLOCKASYNC_RESERVED,
    lock_flag_rule,
    lockasync_flag_rule,
)

__all__ = [
    "ASYNC_TRIPLE",
    "HEAP_COSTS",
    "DriverConfig",
    "LockedRange",
    "ReferenceDevice",
    "ReferenceDriver",
    "ddi",
]

LF = kmd.D3DDDICB_LOCKFLAGS
LAF = D3DDDI_LOCKASYNCFLAGS
LKF = D3DDDI_LOCKFLAGS

S_OK = int(kmd.S_OK)
E_OUTOFMEMORY = int(kmd.E_OUTOFMEMORY)
E_INVALIDARG = int(kmd.E_INVALIDARG)
E_NOTIMPL = int(kmd.E_NOTIMPL)
WASSTILLDRAWING = int(kmd.D3DDDIERR_WASSTILLDRAWING)  # == D3DERR_WASSTILLDRAWING
DEVICEREMOVED = int(kmd.D3DDDIERR_DEVICEREMOVED)

#: the optional DDIs of LA-1 (names of ``D3DDDI_DEVICEFUNCS`` entries without the ``pfn_``)
ASYNC_TRIPLE: tuple[str, ...] = ("lock_async", "unlock_async", "rename")


#: what each piece of driver bookkeeping costs in the device's heap (``DriverConfig.heap_bytes``).
#: A real driver mallocs these; when the heap is exhausted the DDI that needed one returns
#: ``E_OUTOFMEMORY`` ("could not allocate the memory it needed") with nothing changed.
#:
#: ``descriptor``: the per-instance state the driver programs draws with. Every subresource has
#: one for its current instance; Rename and a renaming sync Lock build one for the new instance,
#: and the old one lives on until the command buffer whose commands were encoded against it is
#: submitted. ``unlock``: the transient ``D3DDDICB_UNLOCK`` handle array of UnlockAsync/Unlock.
HEAP_COSTS: dict[str, int] = {
    "resource": 128,
    "descriptor": 64,
    "lock": 64,
    "cookie": 64,
    "unlock": 32,
}

_RESOURCE_BASE = 0x00D00000
_COOKIE_BASE = 0x00C00000
_CMD_BYTES = kmd.structs.COMMAND_HEADER_BYTES  # one CmdDraw

_DDI_NAMES = (
    "create_resource",
    "destroy_resource",
    "lock",
    "unlock",
    "set_stream_source",
    "draw_primitive",
    "flush",
    "present",
    "destroy_device",
    "lock_async",
    "unlock_async",
    "rename",
)


@dataclass(frozen=True)
class DriverConfig:
    """How a :class:`ReferenceDriver` presents itself and sizes its buffers.

    ``driver_version`` goes to ``D3DDDIARG_OPENADAPTER.DriverVersion`` (DV-1): the VISTA value
    0xC gets reentrant LockAsync/UnlockAsync (LA-3, UA-5); 0x0A exercises the non-reentrant path
    (DV-3). ``implements`` names which of the optional DDIs exist (LA-1): ``()`` is "a driver
    without LockAsync" (no MP layer, MP-4); dropping just one of the three is for LA-1 tests.
    ``command_buffer_size`` (bytes) and ``allocation_list_size`` (entries) are what the driver
    starts with and asks the runtime for at each submit (RCB-3: it uses what it gets).
    ``heap_bytes`` is the driver's bookkeeping budget per device (:data:`HEAP_COSTS`)."""

    driver_version: int = D3D_UMD_INTERFACE_VERSION_VISTA
    implements: tuple[str, ...] = ASYNC_TRIPLE
    command_buffer_size: int = 4096
    allocation_list_size: int = 64
    heap_bytes: int = 1 << 20

    def __post_init__(self) -> None:
        unknown = [n for n in self.implements if n not in ASYNC_TRIPLE]
        if unknown:
            raise ValueError(
                f"unknown optional ddi {unknown[0]!r}: implements takes names from {ASYNC_TRIPLE}"
            )
        ordered = tuple(n for n in ASYNC_TRIPLE if n in self.implements)
        object.__setattr__(self, "implements", ordered)
        if not 0 <= self.driver_version <= 0xFFFFFFFF:
            raise ValueError("driver_version must be a 32-bit unsigned int")
        if self.command_buffer_size < _CMD_BYTES:
            raise ValueError(f"command_buffer_size must hold one command ({_CMD_BYTES} bytes)")
        if self.allocation_list_size < 1:
            raise ValueError("allocation_list_size must be >= 1")
        if self.heap_bytes < 0:
            raise ValueError("heap_bytes must be >= 0")


# ---------------------------------------------------------------------------------------------
# Driver-side records (plain data; the cells that hold them are the shared state)


@dataclass
class _Sub:
    """One subresource: it has its own allocation (``base`` = instance 0's handle)."""

    index: int
    size: int
    pitch: int
    slice_pitch: int
    base: int
    placement: str  # AllocationDesc.segments, or "sysmem" for caller memory

    @property
    def render_while_locked(self) -> bool:
        """Whether VidMm can render from it while it is locked (LA-15, RCB-5): it must be able
        to live in an aperture/AGP segment, i.e. it is not local-video-memory-only."""
        return self.placement != "local"


@dataclass
class _Resource:
    handle: int
    rt_resource: int
    pool: int
    flags: int
    km_resource: int
    subs: list[_Sub]


@dataclass
class _Track:
    """The tracking entry of one (resource, subresource).

    ``current`` is *the* tracking: the instance draws are encoded against (RN-4); only Rename
    and a renaming synchronous Lock move it (LA-13, RN-5, LCB-8). ``newest`` is the latest
    instance pfnLockCb handed out — what the application sees after a Discard LockAsync — and is
    what later locks lock (a NoOverwrite after an unrenamed Discard must reach the bytes the app
    just wrote)."""

    current: int
    newest: int


@dataclass
class _Cookie:
    cookie: int
    key: tuple[int, int]
    allocation: int
    seq: int


@dataclass
class _LockRec:
    path: str  # "async" (LockAsync) or "sync" (Lock)
    kind: str  # "discard", "nooverwrite", "notify", "plain"
    allocation: int  # the handle pfnLockCb locked: what pfnUnlockCb gets (UA-4, LCB-20);
    # 0 while a waiting pfnLockCb is under way (the subresource is claimed, not yet locked)
    cookie: int = 0


@dataclass
class _CmdBuf:
    """The command buffer being filled and its allocation list (RCB-1/RCB-2)."""

    commands: list[Any]
    capacity: int
    alist: list[Any]
    alist_capacity: int
    slots: dict[int, int] = field(default_factory=dict)  # instance handle -> list index
    owners: list[tuple[int, int]] = field(default_factory=list)  # (resource, sub) per slot
    used: int = 0
    superseded: int = 0  # descriptors of superseded instances, freed at submit

    def references(self, key: tuple[int, int]) -> bool:
        """Whether any instance of ``key``'s allocation is referenced (LA-9, LCB-7)."""
        return key in self.owners


@dataclass
class _Stream:
    resource: int
    offset: int
    stride: int


class LockedRange:
    """``pSurfData`` for a ``RangeValid`` lock: the kernel's ``CpuPointer`` advanced by the range
    offset (what ``(BYTE*)pData + Range.Offset`` is in C). Reads and writes go through the
    kernel pointer, so its checks (LCB-1 after unlock, read-only locks…) still apply."""

    __slots__ = ("_base", "_offset")

    def __init__(self, base: Any, offset: int) -> None:
        self._base = base
        self._offset = offset

    @property
    def base(self) -> Any:
        return self._base

    @property
    def offset(self) -> int:
        return self._base.offset + self._offset

    @property
    def allocation(self) -> int:
        return self._base.allocation

    @property
    def state(self) -> str:
        return self._base.state

    def __len__(self) -> int:
        return max(0, len(self._base) - self._offset)

    def read(self, offset: int, n: int) -> bytes:
        return self._base.read(self._offset + offset, n)

    def write(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        self._base.write(self._offset + offset, data)

    def _shift(self, key: int | slice) -> int | slice:
        if isinstance(key, slice):
            start = 0 if key.start is None else key.start
            stop = len(self) if key.stop is None else key.stop
            return slice(start + self._offset, stop + self._offset, key.step)
        return key + self._offset

    def __getitem__(self, key: int | slice) -> Any:
        return self._base[self._shift(key)]

    def __setitem__(self, key: int | slice, value: Any) -> None:
        self._base[self._shift(key)] = value

    def __repr__(self) -> str:
        return f"<LockedRange +{self._offset} of {self._base!r}>"


def _hr(hr: int) -> dict[str, str]:
    return {"hr": kmd.hex32(hr), "hr_name": kmd.status_name(hr)}


def _failed(hr: int) -> bool:
    return bool(kmd.FAILED(hr))


def ddi(argtype: type | None) -> Callable[[Callable[..., Awaitable[int]]], Callable[..., Any]]:
    """Mark a ``ReferenceDevice`` method as a DDI entry point taking ``argtype``.

    The wrapper turns a call with a handle that is not one of this driver's devices, or with an
    argument of the wrong type, into ``E_INVALIDARG`` (an emulator decision: a runtime bug must
    give a code, not a Python exception escaping the DDI)."""

    def deco(fn: Callable[..., Awaitable[int]]) -> Callable[..., Any]:
        @functools.wraps(fn)
        async def entry(device: Any, args: Any = None) -> int:
            if not isinstance(device, ReferenceDevice):
                return E_INVALIDARG
            if argtype is not None and not isinstance(args, argtype):
                return E_INVALIDARG
            return await fn(device, args)

        return entry

    return deco


# ---------------------------------------------------------------------------------------------


class ReferenceDevice:
    """One driver device (``hDevice``): its DDIs and its per-device shared state.

    Subclass it and override a ``pfn_*`` DDI, or one of the small ``_``-prefixed policy hooks
    the buggy variants in :mod:`umd.variants` override; set the subclass as
    ``ReferenceDriver.device_class``."""

    def __init__(self, driver: ReferenceDriver, args: D3DDDIARG_CREATEDEVICE, serial: int) -> None:
        self.driver = driver
        self.config = driver.config
        self.name = f"umd.dev{serial}"
        self.rt_device = args.runtime_device
        self.callbacks: D3DDDI_DEVICECALLBACKS = args.callbacks
        self.mutex = vt.Mutex(f"{self.name}.lock")
        # The first command buffer: the runtime's, if its CreateDevice hands one over (real
        # D3DDDIARG_CREATEDEVICE has pCommandBuffer/pAllocationList); else the driver's own.
        buf = getattr(args, "command_buffer", None)
        buf_size = getattr(args, "command_buffer_size", 0) or self.config.command_buffer_size
        alist = getattr(args, "allocation_list", None)
        alist_size = getattr(args, "allocation_list_size", 0) or self.config.allocation_list_size
        n = self.name
        self._resources: vt.SharedCell[dict[int, _Resource]] = vt.SharedCell(f"{n}.resources", {})
        self._tracking: vt.SharedCell[dict[tuple[int, int], _Track]] = vt.SharedCell(
            f"{n}.tracking", {}
        )
        self._cmdbuf: vt.SharedCell[_CmdBuf] = vt.SharedCell(
            f"{n}.cmdbuf",
            _CmdBuf([] if buf is None else buf, buf_size,
                    [] if alist is None else alist, alist_size),
        )
        self._streams: vt.SharedCell[dict[int, _Stream]] = vt.SharedCell(f"{n}.streams", {})
        self._cookies: vt.SharedCell[dict[int, _Cookie]] = vt.SharedCell(f"{n}.cookies", {})
        self._locks: vt.SharedCell[dict[tuple[int, int], _LockRec]] = vt.SharedCell(
            f"{n}.locks", {}
        )
        self._heap: vt.SharedCell[int] = vt.SharedCell(f"{n}.heap", 0)
        # counters: only ever touched under the mutex by the app thread's DDIs
        self._next_resource = 0
        self._next_cookie = 0
        self.submits = 0

    # ---- the function table ------------------------------------------------------------

    def device_funcs(self) -> D3DDDI_DEVICEFUNCS:
        """The ``D3DDDI_DEVICEFUNCS`` of this device: the class's ``pfn_*`` functions, unbound
        (the runtime passes the device as ``hDevice``), optional ones per ``config.implements``
        (LA-1)."""
        cls = type(self)
        table = {f"pfn_{n}": getattr(cls, f"pfn_{n}") for n in _DDI_NAMES}
        for n in ASYNC_TRIPLE:
            if n not in self.config.implements:
                table[f"pfn_{n}"] = None
        return D3DDDI_DEVICEFUNCS(**table)

    # ---- locking and heap helpers ------------------------------------------------------

    def guard(self, ddi_name: str) -> Any:
        """The async context manager that protects the device's shared state for ``ddi_name``
        (MP-2). The reference driver uses one mutex for everything; variants override this."""
        return self.mutex

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

    async def _lookup(self, site: str, resource: int, sub: int) -> tuple[_Resource, _Sub] | None:
        res = (await self._resources.read(site)).get(resource)
        if res is None or not isinstance(sub, int) or not 0 <= sub < len(res.subs):
            return None
        return res, res.subs[sub]

    # ---- callbacks (one place, so variants and tests can see every call) ----------------

    async def _lock_cb(self, allocation: int, flags: int) -> tuple[int, D3DDDICB_LOCK]:
        lk = D3DDDICB_LOCK(allocation=allocation, flags=int(flags))
        hr = await self.callbacks.pfn_lock_cb(self.rt_device, lk)
        return int(hr), lk

    async def _unlock_cb(self, allocations: list[int]) -> int:
        return int(await self.callbacks.pfn_unlock_cb(self.rt_device, D3DDDICB_UNLOCK(allocations)))

    # ---- command buffer -----------------------------------------------------------------

    async def _submit(self, site: str, reason: str) -> int:
        """Submit the pending commands with pfnRenderCb (caller holds the guard).

        Whatever pfnRenderCb answers, the driver continues with the buffer, allocation list and
        sizes it handed back (RCB-2, RCB-3); on failure the rejected commands are gone and the
        code is returned to the caller, which returns it from its DDI (ERR-1). The buffer only
        ever holds whole commands, so any point is a valid point to submit (RCB-7)."""
        cb = await self._cmdbuf.read(site)
        if not cb.commands:
            return S_OK
        cfg = self.config
        # Always ask for the configured sizes: the runtime may hand out other sizes (RCB-3 —
        # it is a request, and what comes back is read below whatever the outcome).
        flags = (D3DDDICB_RENDERFLAGS.ResizeCommandBuffer
                 | D3DDDICB_RENDERFLAGS.ResizeAllocationList)
        render = D3DDDICB_RENDER(
            command_buffer=cb.commands,
            command_length=kmd.command_length(cb.commands),
            allocation_list=cb.alist,
            flags=flags,
            new_command_buffer_size=cfg.command_buffer_size,
            new_allocation_list_size=cfg.allocation_list_size,
        )
        n_cmds, handles = len(cb.commands), list(cb.slots)
        hr = int(await self.callbacks.pfn_render_cb(self.rt_device, render))
        self.submits += 1
        new = _CmdBuf(
            [] if render.new_command_buffer is None else render.new_command_buffer,
            render.new_command_buffer_size,
            [] if render.new_allocation_list is None else render.new_allocation_list,
            render.new_allocation_list_size,
        )
        superseded = cb.superseded
        await self._cmdbuf.write(new, site)
        await self._heap_give(site, superseded * HEAP_COSTS["descriptor"])
        vt.log(
            "umd.cmdbuf.submit", device=self.name, reason=reason, commands=n_cmds,
            allocations=handles, fence=render.fence if not _failed(hr) else None,
            next_size=new.capacity, next_alist_size=new.alist_capacity, **_hr(hr),
        )
        return hr

    async def _encode_draw(self, site: str, draw_id: int, key: tuple[int, int], handle: int,
                           offset: int, length: int) -> int:
        """Append one ``CmdDraw`` reading ``handle`` (caller holds the guard). Submits first
        when the command or the allocation slot would not fit (RCB-2)."""
        cb = await self._cmdbuf.read(site)
        fits = cb.used + _CMD_BYTES <= cb.capacity and (
            handle in cb.slots or len(cb.alist) < cb.alist_capacity
        )
        if not fits:
            hr = await self._submit(site, "full")
            if _failed(hr):
                return hr
            cb = await self._cmdbuf.read(site)
            if cb.capacity < _CMD_BYTES or cb.alist_capacity < 1:
                return E_OUTOFMEMORY  # the runtime handed back a buffer too small for anything
        slot = cb.slots.get(handle)
        if slot is None:
            slot = len(cb.alist)
            cb.alist.append(kmd.D3DDDI_ALLOCATIONLIST(allocation=handle))
            cb.slots[handle] = slot
            cb.owners.append(key)
        cb.commands.append(kmd.CmdDraw(draw_id=draw_id, alloc_index=slot, offset=offset,
                                       length=length))
        cb.used += _CMD_BYTES
        await self._cmdbuf.write(cb, site)
        return S_OK

    # ---- tracking -----------------------------------------------------------------------

    async def _switch(self, site: str, key: tuple[int, int], tr: _Track, new: int,
                      reason: str, cookie: int = 0) -> None:
        """Point the tracking of ``key`` at ``new`` (caller holds the guard and has a descriptor
        for ``new`` from the heap). The old instance's descriptor is freed now, or at the next
        submit when commands already encoded against it are still in the buffer."""
        old = tr.current
        tr.current = new
        if reason != "rename":
            tr.newest = new  # a renaming Lock: the new instance is both current and newest
        tracking = await self._tracking.read(site)
        tracking[key] = tr
        await self._tracking.write(tracking, site)
        cb = await self._cmdbuf.read(site)
        if cb.references(key):
            cb.superseded += 1
            await self._cmdbuf.write(cb, site)
        else:
            await self._heap_give(site, HEAP_COSTS["descriptor"])
        vt.log("umd.track.switch", device=self.name, resource=key[0], subresource=key[1],
               old=old, new=new, reason=reason, cookie=cookie)

    async def _drop_cookies(self, site: str, key: tuple[int, int], before_seq: int | None,
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

    # ---- small policy hooks (the variants override these) -------------------------------

    def _placement(self, args: D3DDDIARG_CREATERESOURCE) -> str:
        """Where the allocations of a new resource may live (``AllocationDesc.segments``).

        Dynamic vertex/index buffers and MightDrawFromLocked VBs must be renderable while
        locked (LA-15, LK-9, LCB-4): aperture. LOCALVIDMEM, render targets and depth buffers:
        local video memory only. NONLOCALVIDMEM: aperture. SYSTEMMEM: caller memory (AC-6).
        Everything else: anywhere."""
        f, pool = args.flags, args.pool
        if pool == D3DDDI_POOL.SYSTEMMEM:
            return "sysmem"
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

    def _discard_lock_flags(self, args: D3DDDIARG_LOCKASYNC, sub: _Sub, own_refs: bool) -> int:
        """LA-8 / LA-9 / LCB-7: ``Discard``, plus ``NoExistingReference`` only when the runtime
        said it has no queued reference **and** this driver's unsubmitted buffer has none."""
        flags = LF.Discard | LF.LockEntire
        if args.flags & LAF.NoExistingReferences and not own_refs:
            flags |= LF.NoExistingReference
        return int(flags)

    def _accepts_nooverwrite(self, sub: _Sub) -> bool:
        """LA-15 / LA-16 / Q-8: NoOverwrite only where VidMm can render while locked."""
        return sub.render_while_locked

    def _nooverwrite_lock_flags(self, sub: _Sub) -> int:
        """LA-14 / Q-10: IgnoreSync is honoured only together with DonotWait, so set both."""
        return int(LF.IgnoreSync | LF.DonotWait | LF.LockEntire)

    def _lockasync_failure(self, hr: int, discard: bool) -> int:
        """Map a pfnLockCb failure to LockAsync's table (Q-13): a failed Discard is a failed
        rename → WASSTILLDRAWING (LA-10); E_OUTOFMEMORY and DEVICEREMOVED pass through
        unchanged (ERR-1, ERR-3); anything else → E_NOTIMPL, from which the runtime recovers
        (LA-16). WASSTILLDRAWING never leaves a non-Discard LockAsync (LA-11)."""
        if hr in (E_OUTOFMEMORY, DEVICEREMOVED):
            return hr
        if discard and hr == WASSTILLDRAWING:
            return WASSTILLDRAWING
        return E_NOTIMPL

    def _in_place_unsafe(self, lock_flags: int) -> bool:
        """Whether a Discard pfnLockCb that came back with the *same* instance (VidMm locked in
        place: KL-18 pinned or existing-sysmem allocations, or an idle reuse) must be refused:
        unless ``NoExistingReference`` was true, a queued command may still read that instance."""
        return not lock_flags & LF.NoExistingReference

    async def _unlock_async_cb(self, allocations: list[int]) -> int:
        """UnlockAsync's pfnUnlockCb (UA-4)."""
        return await self._unlock_cb(allocations)

    async def _rename_failed(self, args: D3DDDIARG_LOCKASYNC, hr: int) -> int:
        """LA-10 / RCB-8: the rename failed; report it and do **not** flush."""
        return hr

    def _after_discard_lockasync(self, tr: _Track, new: int) -> str | None:
        """What a successful Discard LockAsync does to tracking: only record the newest
        instance; ``current`` waits for Rename (LA-13, RN-5). Returns a switch reason when a
        variant switches here."""
        tr.newest = new
        return None

    def _rename_target(self, cookie: _Cookie, tr: _Track) -> int:
        """RN-4: the instance the cookie names."""
        return cookie.allocation

    def _unlock_async_handle(self, rec: _LockRec, tr: _Track) -> int:
        """UA-4 / LCB-20: the handle LockAsync locked — after a Discard the *new* instance,
        whether or not Rename has switched tracking yet (S-10)."""
        return rec.allocation

    # ---- output helper ------------------------------------------------------------------

    @staticmethod
    def _range_offset(args: D3DDDIARG_LOCKASYNC | D3DDDIARG_LOCK, sub: _Sub,
                      range_valid: int) -> int | None:
        if not args.flags & range_valid:
            return 0
        r = args.range
        if r is None or r.offset < 0 or r.size < 0 or r.offset + r.size > sub.size:
            return None
        return r.offset

    @staticmethod
    def _fill_out(args: D3DDDIARG_LOCKASYNC | D3DDDIARG_LOCK, sub: _Sub, ptr: Any,
                  offset: int) -> None:
        args.surf_data = LockedRange(ptr, offset) if offset else ptr
        args.pitch = sub.pitch
        args.slice_pitch = sub.slice_pitch

    # =====================================================================================
    # DDIs

    @ddi(D3DDDIARG_CREATERESOURCE)
    async def pfn_create_resource(self, args: D3DDDIARG_CREATERESOURCE) -> int:
        """CreateResource: one allocation per subresource through pfnAllocateCb (one call),
        private data (``kmd.AllocationDesc``) chosen by :meth:`_placement`; SYSTEMMEM
        subresources are created over the runtime's memory (``system_mem``, AC-6). Returns the
        driver's handle in ``args.resource``.

        S_OK; E_INVALIDARG (no surfaces, an empty surface, SYSTEMMEM without memory);
        E_OUTOFMEMORY (driver heap); every pfnAllocateCb failure unchanged (ERR-1, AC-10:
        E_INVALIDARG, E_OUTOFMEMORY, D3DERR_OUTOFVIDEOMEMORY, D3DDDIERR_DEVICEREMOVED)."""
        site = "create_resource"
        surfaces = args.surfaces
        if not isinstance(surfaces, list) or not surfaces or any(s.size <= 0 for s in surfaces):
            return E_INVALIDARG
        placement = self._placement(args)
        mems = [s.system_mem for s in surfaces]
        if placement == "sysmem" and any(not isinstance(m, bytearray) for m in mems):
            return E_INVALIDARG
        cost = HEAP_COSTS["resource"] + HEAP_COSTS["descriptor"] * len(surfaces)
        async with self.guard(site):
            if not await self._heap_take(site, cost):
                return E_OUTOFMEMORY
        infos = []
        kind = self._kind(args.flags, placement)
        for s, mem in zip(surfaces, mems):
            if placement == "sysmem":
                assert mem is not None
                desc = kmd.AllocationDesc(size=len(mem), segments="any", kind=kind)
                infos.append(D3DDDI_ALLOCATIONINFO(private_driver_data=desc, system_mem=mem))
            else:
                desc = kmd.AllocationDesc(size=s.size, segments=placement, kind=kind)
                infos.append(D3DDDI_ALLOCATIONINFO(private_driver_data=desc))
        alloc = D3DDDICB_ALLOCATE(rt_resource=args.rt_resource, allocation_info=infos)
        hr = int(await self.callbacks.pfn_allocate_cb(self.rt_device, alloc))
        async with self.guard(site):
            if _failed(hr):
                await self._heap_give(site, cost)
                vt.log("umd.resource.create", device=self.name, rt_resource=args.rt_resource,
                       **_hr(hr))
                return hr
            self._next_resource += 1
            handle = _RESOURCE_BASE + self._next_resource
            subs = []
            for i, (s, info) in enumerate(zip(surfaces, infos)):
                pitch = s.pitch or s.width * s.bytes_per_pixel
                subs.append(_Sub(i, s.size, pitch, pitch * s.height, info.allocation, placement))
            res = _Resource(handle, args.rt_resource, int(args.pool), int(args.flags),
                            alloc.km_resource, subs)
            resources = await self._resources.read(site)
            resources[handle] = res
            await self._resources.write(resources, site)
            tracking = await self._tracking.read(site)
            for sub in subs:
                tracking[(handle, sub.index)] = _Track(sub.base, sub.base)
            await self._tracking.write(tracking, site)
        args.resource = handle
        vt.log("umd.resource.create", device=self.name, resource=handle,
               rt_resource=args.rt_resource, placement=placement,
               allocations=[s.base for s in subs], **_hr(hr))
        return S_OK

    @staticmethod
    def _kind(flags: int, placement: str) -> str:
        f = D3DDDI_RESOURCEFLAGS
        for bit, name in ((f.VertexBuffer, "vb"), (f.IndexBuffer, "ib"),
                          (f.RenderTarget, "rt"), (f.ZBuffer, "z"), (f.Texture, "texture")):
            if flags & bit:
                return name if placement != "sysmem" else f"sysmem-{name}"
        return "sysmem" if placement == "sysmem" else "buffer"

    @ddi(D3DDDIARG_DESTROYRESOURCE)
    async def pfn_destroy_resource(self, args: D3DDDIARG_DESTROYRESOURCE) -> int:
        """DestroyResource: submit first if the pending buffer references the resource (its
        handles die with it), forget its locks (the kernel unlocks implicitly), its pending
        cookies (Q-3) and stream bindings, then pfnDeallocateCb. S_OK; E_INVALIDARG (unknown
        handle); a pfnRenderCb / pfnDeallocateCb failure (ERR-1)."""
        site = "destroy_resource"
        async with self.guard(site):
            resources = await self._resources.read(site)
            res = resources.get(args.resource)
            if res is None:
                return E_INVALIDARG
            keys = [(res.handle, s.index) for s in res.subs]
            hr = S_OK
            cb = await self._cmdbuf.read(site)
            if any(cb.references(k) for k in keys):
                hr = await self._submit(site, "destroy")
            locks = await self._locks.read(site)
            held = [k for k in keys if k in locks]
            for k in held:
                del locks[k]
            if held:
                await self._locks.write(locks, site)
            freed = len(held) * HEAP_COSTS["lock"]
            for k in keys:
                await self._drop_cookies(site, k, None, "destroy")
            tracking = await self._tracking.read(site)
            for k in keys:
                tracking.pop(k, None)
            await self._tracking.write(tracking, site)
            streams = await self._streams.read(site)
            bound = [n for n, s in streams.items() if s.resource == res.handle]
            for n in bound:
                del streams[n]
            if bound:
                await self._streams.write(streams, site)
            del resources[res.handle]
            await self._resources.write(resources, site)
            freed += HEAP_COSTS["resource"] + HEAP_COSTS["descriptor"] * len(res.subs)
            await self._heap_give(site, freed)
        dealloc = D3DDDICB_DEALLOCATE(
            rt_resource=res.rt_resource,
            allocations=[] if res.rt_resource else [s.base for s in res.subs],
        )
        hr2 = int(await self.callbacks.pfn_deallocate_cb(self.rt_device, dealloc))
        vt.log("umd.resource.destroy", device=self.name, resource=res.handle, **_hr(hr2))
        return hr if _failed(hr) else hr2

    @ddi(D3DDDIARG_SETSTREAMSOURCE)
    async def pfn_set_stream_source(self, args: D3DDDIARG_SETSTREAMSOURCE) -> int:
        """SetStreamSource: bind (or, with resource 0, unbind) a vertex stream. The allocation
        is *not* resolved here but when a draw is encoded, so a Rename between the two is
        honoured (RN-4). S_OK; E_INVALIDARG (unknown resource, negative offset, stride <= 0)."""
        site = "set_stream_source"
        if not isinstance(args.stream, int) or args.stream < 0:
            return E_INVALIDARG
        async with self.guard(site):
            streams = await self._streams.read(site)
            if args.resource == 0:
                streams.pop(args.stream, None)
            else:
                if await self._lookup(site, args.resource, 0) is None:
                    return E_INVALIDARG
                if args.offset < 0 or args.stride <= 0:
                    return E_INVALIDARG
                streams[args.stream] = _Stream(args.resource, args.offset, args.stride)
            await self._streams.write(streams, site)
        return S_OK

    @ddi(D3DDDIARG_DRAWPRIMITIVE)
    async def pfn_draw_primitive(self, args: D3DDDIARG_DRAWPRIMITIVE) -> int:
        """DrawPrimitive: one ``CmdDraw`` per bound stream (in stream order) reading
        ``vertex_count * stride`` bytes at ``stream offset + start_vertex * stride`` of the
        instance the tracking table names **now** (RN-4: draws encoded before a Rename keep the
        old instance, LA-13). Each instance gets one allocation-list slot per buffer. Submits
        first when the buffer or list is full (RCB-2/RCB-3).

        S_OK; E_INVALIDARG (negative counts, a read outside the buffer — never encoded, so no
        invalid packet is ever submitted, RCB-7); E_OUTOFMEMORY (the runtime's next buffer holds
        nothing); a pfnRenderCb failure of an overflow submit (ERR-1)."""
        site = "draw_primitive"
        if args.start_vertex < 0 or args.vertex_count < 0:
            return E_INVALIDARG
        async with self.guard(site):
            streams = await self._streams.read(site)
            tracking = await self._tracking.read(site)
            plan = []
            for n in sorted(streams):
                s = streams[n]
                found = await self._lookup(site, s.resource, 0)
                if found is None:
                    return E_INVALIDARG
                _, sub = found
                offset = s.offset + args.start_vertex * s.stride
                length = args.vertex_count * s.stride
                if offset + length > sub.size:
                    return E_INVALIDARG
                key = (s.resource, 0)
                plan.append((n, key, tracking[key].current, offset, length))
            for _, key, handle, offset, length in plan:
                hr = await self._encode_draw(site, args.draw_id, key, handle, offset, length)
                if _failed(hr):
                    return hr
        vt.log("umd.draw", device=self.name, draw_id=args.draw_id,
               refs=[[n, key[0], handle] for n, key, handle, _, _ in plan])
        return S_OK

    @ddi(None)
    async def pfn_flush(self, args: Any = None) -> int:
        """Flush: submit what is pending (RCB-7: the buffer only ever holds whole commands).
        S_OK; a pfnRenderCb failure (ERR-1)."""
        async with self.guard("flush"):
            return await self._submit("flush", "flush")

    @ddi(D3DDDIARG_PRESENT)
    async def pfn_present(self, args: D3DDDIARG_PRESENT) -> int:
        """Present: submit what is pending (the frame's work). S_OK; a pfnRenderCb failure."""
        async with self.guard("present"):
            return await self._submit("present", "present")

    @ddi(None)
    async def pfn_destroy_device(self, args: Any = None) -> int:
        """DestroyDevice: submit pending work, release every outstanding lock (LCB-17) and
        free the resources the runtime left. S_OK or the first callback failure."""
        site = "destroy_device"
        async with self.guard(site):
            first = await self._submit(site, "destroy")
            locks = await self._locks.read(site)
            for key in list(locks):
                rec = locks.pop(key)
                if rec.allocation:  # 0: a waiting lock still on its way (nothing to unlock yet)
                    hr = await self._unlock_cb([rec.allocation])
                    first = hr if not _failed(first) and _failed(hr) else first
            await self._locks.write(locks, site)
            resources = await self._resources.read(site)
            left = list(resources.values())
            resources.clear()
            await self._resources.write(resources, site)
            await self._cookies.write({}, site)
        for res in left:
            hr = int(await self.callbacks.pfn_deallocate_cb(self.rt_device, D3DDDICB_DEALLOCATE(
                rt_resource=res.rt_resource,
                allocations=[] if res.rt_resource else [s.base for s in res.subs])))
            first = hr if not _failed(first) and _failed(hr) else first
        vt.log("umd.device.destroy", device=self.name, **_hr(first))
        return first

    # ---- LockAsync / UnlockAsync / Rename -----------------------------------------------

    @ddi(D3DDDIARG_LOCKASYNC)
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
        async with self.guard(site):
            found = await self._lookup(site, *key)
            if found is None:
                return E_INVALIDARG
            res, sub = found
            if key in await self._locks.read(site):
                return E_INVALIDARG
            offset = self._range_offset(args, sub, LAF.RangeValid)
            if offset is None:
                return E_INVALIDARG
            if flags & LAF.Discard and not notify:
                if len(res.subs) > 1 or sub.placement == "sysmem":
                    return self._log_lockasync(args, E_NOTIMPL, "discard")
                return await self._lock_async_discard(args, sub, key, offset)
            if flags & LAF.NoOverwrite and not notify:
                if not self._accepts_nooverwrite(sub):
                    return self._log_lockasync(args, E_NOTIMPL, "nooverwrite")
                return await self._lock_async_nooverwrite(args, sub, key, offset)
            if not await self._heap_take(site, HEAP_COSTS["lock"]):
                return self._log_lockasync(args, E_OUTOFMEMORY, "notify" if notify else "plain")
            handle = (await self._tracking.read(site))[key].newest
            kind = "notify" if notify else "plain"
            # claim the subresource before letting go of the mutex (a second locker on another
            # app thread gets E_INVALIDARG instead of a second kernel lock)
            await self._record_lock(site, key, _LockRec("async", kind, 0))
        # a waiting lock, without the driver mutex (the worker keeps going).
        hr, lk = await self._lock_cb(handle, LF.LockEntire)
        async with self.guard(site):
            if _failed(hr):
                await self._drop_lock(site, key)
                await self._heap_give(site, HEAP_COSTS["lock"])
                return self._log_lockasync(args, self._lockasync_failure(hr, False), kind, hr)
            await self._record_lock(site, key, _LockRec("async", kind, lk.allocation))
        self._fill_out(args, sub, lk.data, offset)
        return self._log_lockasync(args, S_OK, kind, hr, allocation=lk.allocation)

    async def _lock_async_discard(self, args: D3DDDIARG_LOCKASYNC, sub: _Sub,
                                  key: tuple[int, int], offset: int) -> int:
        site = "lock_async.discard"
        cost = HEAP_COSTS["lock"] + HEAP_COSTS["cookie"]
        if not await self._heap_take(site, cost):
            return self._log_lockasync(args, E_OUTOFMEMORY, "discard")
        tracking = await self._tracking.read(site)
        tr = tracking[key]
        own_refs = (await self._cmdbuf.read(site)).references(key)
        lflags = self._discard_lock_flags(args, sub, own_refs)
        hr, lk = await self._lock_cb(tr.newest, lflags)
        if not _failed(hr) and lk.allocation == tr.newest and self._in_place_unsafe(lflags):
            # VidMm locked the instance in place instead of renaming, although references to
            # it may be queued (the runtime did not promise otherwise, or our own buffer has
            # some): the app would overwrite bytes a queued draw is still to read. That is no
            # rename: undo and report the rename failure (LA-10).
            await self._unlock_cb([lk.allocation])
            vt.log("umd.lockasync.in_place", device=self.name, resource=key[0],
                   subresource=key[1], allocation=lk.allocation)
            hr = WASSTILLDRAWING
        if _failed(hr):
            await self._heap_give(site, cost)
            out = self._lockasync_failure(hr, True)
            if out == WASSTILLDRAWING:
                out = await self._rename_failed(args, out)
            return self._log_lockasync(args, out, "discard", hr, lock_flags=lflags)
        new = lk.allocation
        self._next_cookie += 1
        cookie = _COOKIE_BASE + self._next_cookie
        cookies = await self._cookies.read(site)
        cookies[cookie] = _Cookie(cookie, key, new, self._next_cookie)
        await self._cookies.write(cookies, site)
        old = tr.current
        switched = self._after_discard_lockasync(tr, new)
        tracking[key] = tr
        await self._tracking.write(tracking, site)
        if switched:
            vt.log("umd.track.switch", device=self.name, resource=key[0], subresource=key[1],
                   old=old, new=tr.current, reason=switched, cookie=cookie)
        await self._record_lock(site, key, _LockRec("async", "discard", new, cookie))
        args.cookie = cookie
        self._fill_out(args, sub, lk.data, offset)
        return self._log_lockasync(args, S_OK, "discard", hr, allocation=new, cookie=cookie,
                                   current=tr.current, lock_flags=lflags)

    async def _lock_async_nooverwrite(self, args: D3DDDIARG_LOCKASYNC, sub: _Sub,
                                      key: tuple[int, int], offset: int) -> int:
        site = "lock_async.nooverwrite"
        if not await self._heap_take(site, HEAP_COSTS["lock"]):
            return self._log_lockasync(args, E_OUTOFMEMORY, "nooverwrite")
        handle = (await self._tracking.read(site))[key].newest
        lflags = self._nooverwrite_lock_flags(sub)
        hr, lk = await self._lock_cb(handle, lflags)
        if _failed(hr):
            await self._heap_give(site, HEAP_COSTS["lock"])
            return self._log_lockasync(args, self._lockasync_failure(hr, False), "nooverwrite",
                                       hr, lock_flags=lflags)
        await self._record_lock(site, key, _LockRec("async", "nooverwrite", lk.allocation))
        self._fill_out(args, sub, lk.data, offset)
        return self._log_lockasync(args, S_OK, "nooverwrite", hr, allocation=lk.allocation,
                                   lock_flags=lflags)

    async def _record_lock(self, site: str, key: tuple[int, int], rec: _LockRec) -> None:
        locks = await self._locks.read(site)
        locks[key] = rec
        await self._locks.write(locks, site)

    async def _drop_lock(self, site: str, key: tuple[int, int]) -> None:
        locks = await self._locks.read(site)
        del locks[key]
        await self._locks.write(locks, site)

    def _log_lockasync(self, args: D3DDDIARG_LOCKASYNC, out: int, kind: str,
                       cb_hr: int | None = None, **fields: Any) -> int:
        if vt.tracing():
            extra = {} if cb_hr is None else {"cb_hr": kmd.hex32(cb_hr)}
            vt.log("umd.lockasync", device=self.name, resource=args.resource,
                   subresource=args.subresource_index, flags=int(args.flags), kind=kind,
                   **extra, **fields, **_hr(out))
        return out

    @ddi(D3DDDIARG_UNLOCKASYNC)
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
        async with self.guard(site):
            locks = await self._locks.read(site)
            rec = locks.get(key)
            if rec is None or rec.path != "async" or rec.allocation == 0:
                return self._log_unlock("umd.unlockasync", key, E_INVALIDARG)
            if not await self._heap_take(site, HEAP_COSTS["unlock"]):
                return self._log_unlock("umd.unlockasync", key, E_OUTOFMEMORY)
            tr = (await self._tracking.read(site))[key]
            handle = self._unlock_async_handle(rec, tr)
            hr = await self._unlock_async_cb([handle])
            await self._heap_give(site, HEAP_COSTS["unlock"])
            if _failed(hr):
                return self._log_unlock("umd.unlockasync", key, hr, allocation=handle)
            locks = await self._locks.read(site)
            del locks[key]
            await self._locks.write(locks, site)
            await self._heap_give(site, HEAP_COSTS["lock"])
        return self._log_unlock("umd.unlockasync", key, S_OK, allocation=handle,
                                cookie=rec.cookie)

    def _log_unlock(self, event: str, key: tuple[int, int], out: int, **fields: Any) -> int:
        vt.log(event, device=self.name, resource=key[0], subresource=key[1], **fields, **_hr(out))
        return out

    @ddi(D3DDDIARG_RENAME)
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
        async with self.guard(site):
            cookies = await self._cookies.read(site)
            c = cookies.get(args.cookie)
            if c is None or c.key != key:
                vt.log("umd.rename", device=self.name, resource=key[0], subresource=key[1],
                       cookie=args.cookie, **_hr(E_INVALIDARG))
                return E_INVALIDARG
            if not await self._heap_take(site, HEAP_COSTS["descriptor"]):
                vt.log("umd.rename", device=self.name, resource=key[0], subresource=key[1],
                       cookie=args.cookie, **_hr(E_OUTOFMEMORY))
                return E_OUTOFMEMORY
            tr = (await self._tracking.read(site))[key]
            target = self._rename_target(c, tr)
            await self._drop_cookies(site, key, c.seq, "superseded")
            cookies = await self._cookies.read(site)
            del cookies[c.cookie]
            await self._cookies.write(cookies, site)
            await self._heap_give(site, HEAP_COSTS["cookie"])
            await self._switch(site, key, tr, target, "rename", c.cookie)
        vt.log("umd.rename", device=self.name, resource=key[0], subresource=key[1],
               cookie=args.cookie, allocation=target, **_hr(S_OK))
        return S_OK

    # ---- Lock / Unlock (synchronous path, §4) -------------------------------------------

    @ddi(D3DDDIARG_LOCK)
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
        async with self.guard(site):
            found = await self._lookup(site, *key)
            if found is None:
                return E_INVALIDARG
            _, sub = found
            if key in await self._locks.read(site):
                return E_INVALIDARG
            offset = self._range_offset(args, sub, LKF.RangeValid)
            if offset is None:
                return E_INVALIDARG
            if flags & LKF.Discard and not notify and sub.placement != "sysmem":
                return await self._lock_discard(args, sub, key, offset)
            if not await self._heap_take(site, HEAP_COSTS["lock"]):
                return self._log_lock(args, E_OUTOFMEMORY, "plain")
            handle = (await self._tracking.read(site))[key].newest
            if flags & LKF.NoOverwrite and not notify and sub.render_while_locked:
                kind = "nooverwrite"
                lflags = int(LF.IgnoreSync | LF.DonotWait | LF.LockEntire)
                hr, lk = await self._lock_cb(handle, lflags)
            else:
                kind = "notify" if notify else "plain"
                hr = S_OK
                if (await self._cmdbuf.read(site)).references(key):
                    hr = await self._submit(site, "lock")  # SCH-6 / LK-10
                lflags = int(LF.LockEntire | self._rw_flags(flags))
                if flags & LKF.DoNotWait:
                    lflags |= LF.DonotWait
            await self._record_lock(site, key, _LockRec("sync", kind, 0))  # claimed, see above
        if kind != "nooverwrite" and not _failed(hr):
            # a waiting lock: without the driver mutex, so the worker is not stalled behind it
            hr, lk = await self._lock_cb(handle, lflags)
        async with self.guard(site):
            if _failed(hr):
                await self._drop_lock(site, key)
                await self._heap_give(site, HEAP_COSTS["lock"])
                return self._log_lock(args, hr, kind)
            await self._record_lock(site, key, _LockRec("sync", kind, lk.allocation))
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

    async def _lock_discard(self, args: D3DDDIARG_LOCK, sub: _Sub, key: tuple[int, int],
                            offset: int) -> int:
        site = "lock.discard"
        cost = HEAP_COSTS["lock"] + HEAP_COSTS["descriptor"]
        if not await self._heap_take(site, cost):
            return self._log_lock(args, E_OUTOFMEMORY, "discard")
        tracking = await self._tracking.read(site)
        tr = tracking[key]
        lflags = int(LF.Discard | LF.LockEntire | self._rw_flags(args.flags))
        hr, lk = await self._lock_cb(tr.newest, lflags)
        retry = hr == WASSTILLDRAWING
        if (
            not _failed(hr)
            and lk.allocation == tr.newest
            and (await self._cmdbuf.read(site)).references(key)
        ):
            # locked in place while our unsubmitted commands still read it: not usable
            await self._unlock_cb([lk.allocation])
            retry = True
        if retry:
            # LCB-6 / S-13: flush (may retire instances), then Discard|NoExistingReference,
            # which VidMm may satisfy by reusing any instance, waiting for it to go idle.
            hr = await self._submit(site, "lock-discard-retry")
            if not _failed(hr):
                lflags |= LF.NoExistingReference
                hr, lk = await self._lock_cb(tr.newest, lflags)
        if _failed(hr):
            await self._heap_give(site, cost)
            return self._log_lock(args, hr, "discard", lock_flags=lflags)
        new = lk.allocation
        if new != tr.current:
            await self._drop_cookies(site, key, None, "lock-discard")
            await self._switch(site, key, tr, new, "lock-discard")  # LCB-8, uses the descriptor
        else:
            tr.newest = new
            tracking = await self._tracking.read(site)
            tracking[key] = tr
            await self._tracking.write(tracking, site)
            await self._heap_give(site, HEAP_COSTS["descriptor"])
        await self._record_lock(site, key, _LockRec("sync", "discard", new))
        self._fill_out(args, sub, lk.data, offset)
        return self._log_lock(args, S_OK, "discard", allocation=new, lock_flags=lflags)

    def _log_lock(self, args: D3DDDIARG_LOCK, out: int, kind: str, **fields: Any) -> int:
        if vt.tracing():
            vt.log("umd.lock", device=self.name, resource=args.resource,
                   subresource=args.subresource_index, flags=int(args.flags), kind=kind,
                   **fields, **_hr(out))
        return out

    @ddi(D3DDDIARG_UNLOCK)
    async def pfn_unlock(self, args: D3DDDIARG_UNLOCK) -> int:
        """Unlock: pfnUnlockCb on the handle Lock locked (LK-11, LK-12 for sysmem).

        S_OK; E_INVALIDARG when (resource, subresource) was not locked by *Lock* (LK-13; a
        LockAsync lock does not count, Q-20); E_OUTOFMEMORY (no heap for the unlock request);
        a pfnUnlockCb failure (ERR-1). On failure the lock stays outstanding."""
        site = "unlock"
        key = (args.resource, args.subresource_index)
        async with self.guard(site):
            locks = await self._locks.read(site)
            rec = locks.get(key)
            if rec is None or rec.path != "sync" or rec.allocation == 0:
                return self._log_unlock("umd.unlock", key, E_INVALIDARG)
            if not await self._heap_take(site, HEAP_COSTS["unlock"]):
                return self._log_unlock("umd.unlock", key, E_OUTOFMEMORY)
            hr = await self._unlock_cb([rec.allocation])
            await self._heap_give(site, HEAP_COSTS["unlock"])
            if _failed(hr):
                return self._log_unlock("umd.unlock", key, hr, allocation=rec.allocation)
            locks = await self._locks.read(site)
            del locks[key]
            await self._locks.write(locks, site)
            await self._heap_give(site, HEAP_COSTS["lock"])
        return self._log_unlock("umd.unlock", key, S_OK, allocation=rec.allocation)

    # ---- introspection for tests and reports (no scheduling point, no race check) -------

    def tracked(self, resource: int, subresource: int = 0) -> int:
        """The instance handle draws of (resource, subresource) are encoded against now."""
        return self._tracking.peek()[(resource, subresource)].current

    def newest(self, resource: int, subresource: int = 0) -> int:
        """The latest instance handle pfnLockCb handed out for (resource, subresource)."""
        return self._tracking.peek()[(resource, subresource)].newest

    def allocation(self, resource: int, subresource: int = 0) -> int:
        """The allocation's first handle (instance 0) of (resource, subresource)."""
        return self._resources.peek()[resource].subs[subresource].base

    def pending_cookies(self, resource: int | None = None) -> list[int]:
        return [c.cookie for c in self._cookies.peek().values()
                if resource is None or c.key[0] == resource]

    def outstanding_locks(self) -> dict[tuple[int, int], tuple[str, str, int]]:
        return {k: (r.path, r.kind, r.allocation) for k, r in self._locks.peek().items()}

    def pending_commands(self) -> list[Any]:
        return list(self._cmdbuf.peek().commands)

    def pending_allocations(self) -> list[int]:
        return list(self._cmdbuf.peek().slots)

    def heap_used(self) -> int:
        return self._heap.peek()


# ---------------------------------------------------------------------------------------------


class _Adapter:
    """The driver's adapter handle (``D3DDDIARG_OPENADAPTER.hAdapter`` out)."""

    def __init__(self, driver: ReferenceDriver) -> None:
        self.driver = driver
        self.devices: list[ReferenceDevice] = []

    @staticmethod
    async def pfn_create_device(adapter: Any, args: Any = None) -> int:
        """CreateDevice: a new :class:`ReferenceDevice` in ``args.device`` and its table in
        ``args.device_funcs``. S_OK; E_INVALIDARG (not this driver's adapter, bad args)."""
        if not isinstance(adapter, _Adapter) or not isinstance(args, D3DDDIARG_CREATEDEVICE):
            return E_INVALIDARG
        if not isinstance(args.callbacks, D3DDDI_DEVICECALLBACKS):
            return E_INVALIDARG
        drv = adapter.driver
        drv._serial += 1
        dev = drv.device_class(drv, args, drv._serial)
        adapter.devices.append(dev)
        args.device = dev
        args.device_funcs = dev.device_funcs()
        vt.log("umd.device.create", device=dev.name, driver_version=drv.config.driver_version,
               implements=list(drv.config.implements), device_class=type(dev).__name__)
        return S_OK

    @staticmethod
    async def pfn_close_adapter(adapter: Any, args: Any = None) -> int:
        return S_OK if isinstance(adapter, _Adapter) else E_INVALIDARG


class ReferenceDriver:
    """The reference user-mode driver (see the module docstring and ``docs/umd.md``).

    ``ReferenceDriver(config)`` is what the runtime loads: it calls :meth:`open_adapter`.
    To change behaviour, subclass :class:`ReferenceDevice` and pass it as ``device_class`` (or
    set ``device_class`` on a subclass of this)."""

    device_class: type[ReferenceDevice] = ReferenceDevice

    def __init__(self, config: DriverConfig | None = None, *,
                 device_class: type[ReferenceDevice] | None = None) -> None:
        self.config = config if config is not None else DriverConfig()
        if device_class is not None:
            self.device_class = device_class
        self._serial = 0  # device names; MP-3: the only cross-device state, never awaited on
        self.adapters: list[_Adapter] = []

    async def open_adapter(self, args: D3DDDIARG_OPENADAPTER) -> int:
        """OpenAdapter: fill ``adapter_funcs`` and ``driver_version`` (DV-1, DV-4) and return
        the driver's adapter handle in ``adapter``. S_OK; E_INVALIDARG for a bad argument."""
        if not isinstance(args, D3DDDIARG_OPENADAPTER):
            return E_INVALIDARG
        adapter = _Adapter(self)
        self.adapters.append(adapter)
        args.adapter = adapter
        args.adapter_funcs = D3DDDI_ADAPTERFUNCS(
            pfn_create_device=_Adapter.pfn_create_device,
            pfn_close_adapter=_Adapter.pfn_close_adapter,
        )
        args.driver_version = self.config.driver_version
        return S_OK

    @property
    def devices(self) -> list[ReferenceDevice]:
        """Every device this driver created, in creation order (for tests and reports)."""
        return [d for a in self.adapters for d in a.devices]

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.device_class.__name__} "
                f"version=0x{self.config.driver_version:X}>")

