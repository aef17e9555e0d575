"""A third-party D3D9 user-mode driver written from scratch against the DDI seam alone.

It uses only ``umd.ddi`` (argument structs, flag words, function tables, callback structs) and
``kmd`` codes and structs — nothing of ``umd.reference`` — so the checker meets a driver whose
guards it has never seen. It is small but complete: resources over pfnAllocateCb, a command
buffer submitted with pfnRenderCb, Lock/Unlock, and (``implements_async``) the LockAsync /
UnlockAsync / Rename triple with deferred tracking (LA-13) and cookies (LA-12).

Its policies differ from the reference's on purpose: it flushes before every synchronous lock
of a referenced resource, its NotifyOnly and plain LockAsyncs pass a callback's failure through
unchanged, and with ``cache_nooverwrite`` it keeps the pointer of a Dynamic buffer's NoOverwrite
lock across Unlock, as LCB-3 permits, uncaching before every pfnRenderCb (LCB-4) and at
DestroyDevice (LCB-17). Buggy drivers subclass it and change one decision each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import kmd
import vthreads as vt
from umd.ddi import (
    D3D_UMD_INTERFACE_VERSION_VISTA,
    D3DDDI_ADAPTERFUNCS,
    D3DDDI_ALLOCATIONINFO,
    D3DDDI_DEVICEFUNCS,
    D3DDDI_LOCKASYNCFLAGS,
    D3DDDI_LOCKFLAGS,
    D3DDDI_POOL,
    D3DDDI_RESOURCEFLAGS,
    D3DDDIARG_CREATEDEVICE,
    D3DDDIARG_OPENADAPTER,
    D3DDDICB_ALLOCATE,
    D3DDDICB_DEALLOCATE,
    D3DDDICB_LOCK,
    D3DDDICB_RENDER,
    D3DDDICB_UNLOCK,
)

LF = kmd.D3DDDICB_LOCKFLAGS
LAF = D3DDDI_LOCKASYNCFLAGS
LKF = D3DDDI_LOCKFLAGS
S_OK = 0
E_INVALIDARG = int(kmd.E_INVALIDARG)
E_NOTIMPL = int(kmd.E_NOTIMPL)
E_OUTOFMEMORY = int(kmd.E_OUTOFMEMORY)
WSD = int(kmd.D3DERR_WASSTILLDRAWING)
REMOVED = int(kmd.D3DDDIERR_DEVICEREMOVED)


def failed(hr: int) -> bool:
    return hr < 0 or hr >= 0x80000000


@dataclass
class Res:
    handle: int
    rt_resource: int
    placement: str
    dynamic: bool
    size: list[int]
    pitch: list[int]
    current: list[int]  # the instance draws use (RN-4)
    newest: list[int]  # the instance the app last got (LA-13: not yet current)


@dataclass
class LockRec:
    path: str  # "async" | "sync"
    handle: int
    flags: int
    cookie: int = 0
    cached: bool = False  # the pointer stays locked after Unlock (LCB-3)


@dataclass
class CmdBuf:
    commands: list[Any] = field(default_factory=list)
    alist: list[Any] = field(default_factory=list)
    slots: dict[int, int] = field(default_factory=dict)
    owners: set[int] = field(default_factory=set)  # resources referenced
    capacity: int = 4096
    alist_capacity: int = 64


class SimpleDevice:
    """One device of :class:`SimpleDriver`: every DDI is a plain ``pfn_*`` coroutine."""

    implements_async = True
    cache_nooverwrite = False

    def __init__(self, args: D3DDDIARG_CREATEDEVICE, serial: int) -> None:
        self.rt = args.runtime_device
        self.cb = args.callbacks
        self.mutex = vt.Mutex(f"simple{serial}.lock")
        self.res: dict[int, Res] = {}
        self.locks: dict[tuple[int, int], LockRec] = {}
        self.cache: dict[int, tuple[int, Any]] = {}  # resource → (handle, pointer) (LCB-3)
        self.cookies: dict[int, tuple[tuple[int, int], int, int]] = {}  # → key, handle, seq
        self.streams: dict[int, tuple[int, int, int]] = {}
        self.buf = CmdBuf()
        self.serial = 0

    def funcs(self) -> D3DDDI_DEVICEFUNCS:
        t = type(self)
        table = dict(
            pfn_create_resource=t.pfn_create_resource, pfn_destroy_resource=t.pfn_destroy_resource,
            pfn_lock=t.pfn_lock, pfn_unlock=t.pfn_unlock,
            pfn_set_stream_source=t.pfn_set_stream_source,
            pfn_draw_primitive=t.pfn_draw_primitive, pfn_flush=t.pfn_flush,
            pfn_present=t.pfn_present, pfn_destroy_device=t.pfn_destroy_device,
        )
        if self.implements_async:
            table.update(pfn_lock_async=t.pfn_lock_async, pfn_unlock_async=t.pfn_unlock_async,
                         pfn_rename=t.pfn_rename)
        return D3DDDI_DEVICEFUNCS(**table)

    # ---- callbacks ---------------------------------------------------------------------

    async def lock_cb(self, handle: int, flags: int) -> tuple[int, D3DDDICB_LOCK]:
        lk = D3DDDICB_LOCK(allocation=handle, flags=int(flags))
        return int(await self.cb.pfn_lock_cb(self.rt, lk)), lk

    async def unlock_cb(self, handles: list[int]) -> int:
        return int(await self.cb.pfn_unlock_cb(self.rt, D3DDDICB_UNLOCK(list(handles))))

    async def submit(self) -> int:
        """pfnRenderCb with what is pending; uncache first (LCB-4, LCB-18)."""
        hr = await self.uncache()
        if failed(hr) or not self.buf.commands:
            return hr
        b = self.buf
        r = D3DDDICB_RENDER(command_buffer=b.commands,
                            command_length=kmd.command_length(b.commands),
                            allocation_list=b.alist)
        hr = int(await self.cb.pfn_render_cb(self.rt, r))
        self.buf = CmdBuf(r.new_command_buffer or [], alist=r.new_allocation_list or [],
                          capacity=r.new_command_buffer_size,
                          alist_capacity=r.new_allocation_list_size)
        return hr

    async def uncache(self, keep_held: bool = True) -> int:
        """Release cached NoOverwrite pointers the application does not hold."""
        held = {k[0] for k, rec in self.locks.items()}
        for res in [r for r in self.cache if not (keep_held and r in held)]:
            handle, _ptr = self.cache.pop(res)
            hr = await self.unlock_cb([handle])
            if failed(hr):
                return hr
        return S_OK

    # ---- resources ---------------------------------------------------------------------

    def placement(self, args: Any) -> str:
        f = args.flags
        if args.pool == D3DDDI_POOL.SYSTEMMEM:
            return "sysmem"
        if f & (D3DDDI_RESOURCEFLAGS.RenderTarget | D3DDDI_RESOURCEFLAGS.ZBuffer):
            return "local"
        if f & D3DDDI_RESOURCEFLAGS.Dynamic:
            return "aperture"
        return "any"

    async def pfn_create_resource(self, args: Any) -> int:
        place = self.placement(args)
        infos = []
        for s in args.surfaces:
            if place == "sysmem":
                desc = kmd.AllocationDesc(size=len(s.system_mem), segments="any")
                infos.append(D3DDDI_ALLOCATIONINFO(private_driver_data=desc,
                                                   system_mem=s.system_mem))
            else:
                infos.append(D3DDDI_ALLOCATIONINFO(
                    private_driver_data=kmd.AllocationDesc(size=s.size, segments=place)))
        alloc = D3DDDICB_ALLOCATE(rt_resource=args.rt_resource, allocation_info=infos)
        hr = int(await self.cb.pfn_allocate_cb(self.rt, alloc))
        if failed(hr):
            return hr
        async with self.mutex:
            self.serial += 1
            h = 0x00E00000 + self.serial
            base = [i.allocation for i in infos]
            self.res[h] = Res(h, args.rt_resource, place,
                              bool(args.flags & D3DDDI_RESOURCEFLAGS.Dynamic),
                              [s.size for s in args.surfaces],
                              [s.pitch or s.width * s.bytes_per_pixel for s in args.surfaces],
                              list(base), list(base))
        args.resource = h
        return S_OK

    async def pfn_destroy_resource(self, args: Any) -> int:
        async with self.mutex:
            r = self.res.get(args.resource)
            if r is None:
                return E_INVALIDARG
            hr = S_OK
            if r.handle in self.buf.owners:
                hr = await self.submit()
            self.cache.pop(r.handle, None)
            for k in [k for k in self.locks if k[0] == r.handle]:
                del self.locks[k]
            for c in [c for c, (k, _h, _s) in self.cookies.items() if k[0] == r.handle]:
                del self.cookies[c]
            for n in [n for n, s in self.streams.items() if s[0] == r.handle]:
                del self.streams[n]
            del self.res[r.handle]
        hr2 = int(await self.cb.pfn_deallocate_cb(self.rt, D3DDDICB_DEALLOCATE(
            rt_resource=r.rt_resource)))
        return hr if failed(hr) else hr2

    # ---- Lock / Unlock -------------------------------------------------------------------

    async def pfn_lock(self, args: Any) -> int:
        key = (args.resource, args.subresource_index)
        f = int(args.flags)
        async with self.mutex:
            r = self.res.get(args.resource)
            if r is None or key in self.locks or args.subresource_index >= len(r.size):
                return E_INVALIDARG
            sub = args.subresource_index
            if f & LKF.NoOverwrite and self.cache_nooverwrite and r.placement == "aperture":
                return await self.lock_cached(args, r, key)
            return await self.lock_sync(args, r, key, sub, f)

    async def lock_sync(self, args: Any, r: Res, key: tuple[int, int], sub: int, f: int) -> int:
        hr = await self.uncache_one(r.handle)
        if not failed(hr) and r.handle in self.buf.owners:
            hr = await self.submit()  # SCH-6 / LK-10: the queued work first
        if failed(hr):
            return hr
        if f & LKF.Discard and not f & LKF.NotifyOnly and r.placement != "sysmem":
            hr, lk = await self.lock_cb(r.newest[sub], LF.Discard | LF.LockEntire)
            if hr == WSD:  # LCB-6: the buffer is empty now, so NoExistingReference is true
                hr, lk = await self.lock_cb(r.newest[sub], self.noref_discard_flags())
            if failed(hr):
                return hr
            r.current[sub] = r.newest[sub] = lk.allocation  # LCB-8
            self.cookies = {c: v for c, v in self.cookies.items() if v[0] != key}
        else:
            lflags = LF.LockEntire | (LF.DonotWait if f & LKF.DoNotWait else 0)
            hr, lk = await self.lock_cb(r.newest[sub], lflags)
            if failed(hr):
                return hr
        self.locks[key] = LockRec("sync", lk.allocation, f)
        self.fill(args, r, sub, lk.data)
        return S_OK

    def noref_discard_flags(self) -> int:
        return int(LF.Discard | LF.NoExistingReference | LF.LockEntire)

    async def uncache_one(self, res: int) -> int:
        got = self.cache.pop(res, None)
        return S_OK if got is None else await self.unlock_cb([got[0]])

    async def lock_cached(self, args: Any, r: Res, key: tuple[int, int]) -> int:
        """LCB-3: a Dynamic buffer's NoOverwrite lock reuses the cached pointer."""
        got = self.cache.get(r.handle)
        if got is None:
            hr, lk = await self.lock_cb(r.newest[0], LF.IgnoreSync | LF.DonotWait | LF.LockEntire)
            if failed(hr):
                return hr
            got = self.cache[r.handle] = (lk.allocation, lk.data)
        self.locks[key] = LockRec("sync", got[0], int(args.flags), cached=True)
        self.fill(args, r, 0, got[1])
        return S_OK

    def fill(self, args: Any, r: Res, sub: int, ptr: Any) -> None:
        args.surf_data = ptr
        args.pitch = r.pitch[sub]
        args.slice_pitch = r.pitch[sub]
        if args.flags & (LAF.RangeValid if hasattr(args, "cookie") else LKF.RangeValid):
            args.surf_data = _Offset(ptr, args.range.offset)

    async def pfn_unlock(self, args: Any) -> int:
        key = (args.resource, args.subresource_index)
        async with self.mutex:
            rec = self.locks.get(key)
            if rec is None or rec.path != "sync":
                return E_INVALIDARG
            if not rec.cached:
                hr = await self.unlock_cb([rec.handle])
                if failed(hr):
                    return hr
            del self.locks[key]
        return S_OK

    # ---- drawing -------------------------------------------------------------------------

    async def pfn_set_stream_source(self, args: Any) -> int:
        async with self.mutex:
            if args.resource == 0:
                self.streams.pop(args.stream, None)
            elif args.resource not in self.res:
                return E_INVALIDARG
            else:
                self.streams[args.stream] = (args.resource, args.offset, args.stride)
        return S_OK

    async def pfn_draw_primitive(self, args: Any) -> int:
        async with self.mutex:
            for n in sorted(self.streams):
                res, off, stride = self.streams[n]
                hr = await self.encode(args.draw_id, self.res[res], off + args.start_vertex
                                       * stride, args.vertex_count * stride)
                if failed(hr):
                    return hr
        return S_OK

    async def encode(self, draw_id: int, r: Res, offset: int, length: int) -> int:
        b = self.buf
        handle = r.current[0]
        if len(b.commands) * 16 + 16 > b.capacity or (
            handle not in b.slots and len(b.alist) >= b.alist_capacity
        ):
            hr = await self.submit()
            if failed(hr):
                return hr
            b = self.buf
        slot = b.slots.get(handle)
        if slot is None:
            slot = b.slots[handle] = len(b.alist)
            b.alist.append(kmd.D3DDDI_ALLOCATIONLIST(allocation=handle))
        b.owners.add(r.handle)
        b.commands.append(kmd.CmdDraw(draw_id=draw_id, alloc_index=slot, offset=offset,
                                      length=length))
        return S_OK

    async def pfn_flush(self, args: Any = None) -> int:
        async with self.mutex:
            return await self.submit()

    async def pfn_present(self, args: Any = None) -> int:
        async with self.mutex:
            return await self.submit()

    async def pfn_destroy_device(self, args: Any = None) -> int:
        async with self.mutex:
            hr = await self.submit()
            hr2 = await self.release_all()
            left = list(self.res.values())
            self.res.clear()
        for r in left:
            await self.cb.pfn_deallocate_cb(self.rt, D3DDDICB_DEALLOCATE(rt_resource=r.rt_resource))
        return hr if failed(hr) else hr2

    async def release_all(self) -> int:
        """LCB-17: every outstanding pfnLockCb is paired at DestroyDevice."""
        handles = [rec.handle for rec in self.locks.values() if not rec.cached]
        handles += [h for h, _p in self.cache.values()]
        self.locks.clear()
        self.cache.clear()
        return await self.unlock_cb(handles) if handles else S_OK

    # ---- the async triple ------------------------------------------------------------------

    async def pfn_lock_async(self, args: Any) -> int:
        key = (args.resource, args.subresource_index)
        f = int(args.flags)
        async with self.mutex:
            r = self.res.get(args.resource)
            if r is None or key in self.locks or args.subresource_index >= len(r.size):
                return E_INVALIDARG
            sub = args.subresource_index
            if f & LAF.NotifyOnly or not f & (LAF.Discard | LAF.NoOverwrite):
                return await self.lock_async_notify(args, r, key, sub)
            if f & LAF.Discard:
                if len(r.size) > 1 or r.placement == "sysmem":
                    return E_NOTIMPL  # cannot rename this resource (LA-16 (a))
                return await self.lock_async_discard(args, r, key, sub)
            if r.placement == "local":
                return E_NOTIMPL  # no-overwrite unsupported (LA-15, LA-16 (b))
            hr, lk = await self.lock_cb(r.newest[sub], self.nooverwrite_flags())
            if failed(hr):
                return E_NOTIMPL if hr == WSD else hr
            self.locks[key] = LockRec("async", lk.allocation, f)
            self.fill(args, r, sub, lk.data)
            return S_OK

    def nooverwrite_flags(self) -> int:
        return int(LF.IgnoreSync | LF.DonotWait | LF.LockEntire)

    async def lock_async_notify(self, args: Any, r: Res, key: tuple[int, int], sub: int) -> int:
        """NotifyOnly (Q-14): a waiting lock that synchronises with submitted work."""
        hr, lk = await self.lock_cb(r.newest[sub], LF.LockEntire)
        if failed(hr):
            return E_NOTIMPL if hr == WSD else hr  # LA-11: never WASSTILLDRAWING here
        self.locks[key] = LockRec("async", lk.allocation, int(args.flags))
        self.fill(args, r, sub, lk.data)
        return S_OK

    async def lock_async_discard(self, args: Any, r: Res, key: tuple[int, int], sub: int) -> int:
        flags = LF.Discard | LF.LockEntire
        if args.flags & LAF.NoExistingReferences and r.handle not in self.buf.owners:
            flags |= LF.NoExistingReference  # LA-9
        hr, lk = await self.lock_cb(r.newest[sub], flags)
        if not failed(hr) and lk.allocation == r.newest[sub] and not flags & (
            LF.NoExistingReference
        ):
            await self.unlock_cb([lk.allocation])  # locked in place under queued readers
            hr = WSD
        if failed(hr):
            return await self.rename_failed(args, r, key, sub, hr)
        self.serial += 1
        cookie = 0x00F00000 + self.serial
        self.cookies[cookie] = (key, lk.allocation, self.serial)
        r.newest[sub] = lk.allocation  # LA-13: current waits for Rename
        self.locks[key] = LockRec("async", lk.allocation, int(args.flags), cookie)
        args.cookie = cookie
        self.fill(args, r, sub, lk.data)
        return S_OK

    async def rename_failed(self, args: Any, r: Res, key: tuple[int, int], sub: int,
                            hr: int) -> int:
        """LA-10: return the failure, never flush."""
        return hr if hr in (WSD, E_OUTOFMEMORY, REMOVED) else E_NOTIMPL

    async def pfn_unlock_async(self, args: Any) -> int:
        key = (args.resource, args.subresource_index)
        async with self.mutex:
            rec = self.locks.get(key)
            if rec is None or rec.path != "async":
                return E_INVALIDARG
            hr = await self.unlock_async_cb(rec)
            if failed(hr):
                return hr
            del self.locks[key]
        return S_OK

    async def unlock_async_cb(self, rec: LockRec) -> int:
        return await self.unlock_cb([rec.handle])

    async def pfn_rename(self, args: Any) -> int:
        key = (args.resource, args.subresource_index)
        async with self.mutex:
            got = self.cookies.get(args.cookie)
            if got is None or got[0] != key:
                return E_INVALIDARG
            _k, handle, seq = got
            self.cookies = {c: v for c, v in self.cookies.items()
                            if not (v[0] == key and v[2] <= seq)}  # older cookies die
            self.res[key[0]].current[key[1]] = handle  # RN-4
            return await self.after_rename(key, handle)

    async def after_rename(self, key: tuple[int, int], handle: int) -> int:
        return S_OK


class _Offset:
    """A pointer moved ``offset`` bytes into a locked allocation (a RangeValid lock)."""

    def __init__(self, base: Any, offset: int) -> None:
        self.base, self.offset = base, offset

    def write(self, offset: int, data: bytes) -> None:
        self.base.write(self.offset + offset, data)

    def read(self, offset: int, n: int) -> bytes:
        return bytes(self.base.read(self.offset + offset, n))


class SimpleDriver:
    """The adapter side: ``open_adapter`` → ``pfn_create_device`` → a ``device_class``."""

    device_class: type[SimpleDevice] = SimpleDevice

    def __init__(self, driver_version: int | None = None) -> None:
        self.version = driver_version if driver_version is not None else (
            D3D_UMD_INTERFACE_VERSION_VISTA)
        self.devices: list[SimpleDevice] = []

    async def open_adapter(self, args: D3DDDIARG_OPENADAPTER) -> int:
        args.adapter = self
        args.adapter_funcs = D3DDDI_ADAPTERFUNCS(pfn_create_device=SimpleDriver.create_device)
        args.driver_version = self.version
        return S_OK

    @staticmethod
    async def create_device(adapter: Any, args: D3DDDIARG_CREATEDEVICE) -> int:
        dev = adapter.device_class(args, len(adapter.devices) + 1)
        adapter.devices.append(dev)
        args.device = dev
        args.device_funcs = dev.funcs()
        return S_OK
