"""Resources, streams, draws and the device's lifetime: CreateResource, DestroyResource,
SetStreamSource, DrawPrimitive, Flush, Present, DestroyDevice (§3.1, §3.4 of docs/umd.md)."""

from __future__ import annotations

from typing import Any

import kmd
import vthreads as vt

from ..ddi import (
    D3DDDI_ALLOCATIONINFO,
    D3DDDI_RESOURCEFLAGS,
    D3DDDIARG_CREATERESOURCE,
    D3DDDIARG_DESTROYRESOURCE,
    D3DDDIARG_DRAWPRIMITIVE,
    D3DDDIARG_PRESENT,
    D3DDDIARG_SETSTREAMSOURCE,
    D3DDDICB_ALLOCATE,
    D3DDDICB_DEALLOCATE,
)
from ._cmdbuf import CommandBufferPath
from ._config import E_INVALIDARG, E_OUTOFMEMORY, HEAP_COSTS, RESOURCE_BASE, S_OK, failed, hr_fields
from ._entry import ddi_entry
from ._records import Resource, StreamBinding, Subresource, Tracking


class ResourcePath(CommandBufferPath):
    """The resource and drawing DDIs (a part of :class:`ReferenceDevice`)."""

    @ddi_entry(D3DDDIARG_CREATERESOURCE)
    async def pfn_create_resource(self, args: D3DDDIARG_CREATERESOURCE) -> int:
        """CreateResource: one allocation per subresource through pfnAllocateCb (one call),
        private data (``kmd.AllocationDesc``) chosen by ``policy.placement``; SYSTEMMEM
        subresources are created over the runtime's memory (``system_mem``, AC-6). Returns the
        driver's handle in ``args.resource``.

        S_OK; E_INVALIDARG (no surfaces, an empty surface, SYSTEMMEM without memory);
        E_OUTOFMEMORY (driver heap); every pfnAllocateCb failure unchanged (ERR-1, AC-10:
        E_INVALIDARG, E_OUTOFMEMORY, D3DERR_OUTOFVIDEOMEMORY, D3DDDIERR_DEVICEREMOVED)."""
        site = "create_resource"
        surfaces = args.surfaces
        if not surfaces or any(s.size <= 0 for s in surfaces):
            return E_INVALIDARG
        placement = self.policy.placement(self, args)
        if placement == "sysmem" and any(not isinstance(s.system_mem, bytearray)
                                         for s in surfaces):
            return E_INVALIDARG
        cost = HEAP_COSTS["resource"] + HEAP_COSTS["descriptor"] * len(surfaces)
        async with self.locked(site):
            if not await self._heap_take(site, cost):
                return E_OUTOFMEMORY
        infos = self._allocation_infos(args, placement)
        alloc = D3DDDICB_ALLOCATE(rt_resource=args.rt_resource, allocation_info=infos)
        hr = int(await self.callbacks.pfn_allocate_cb(self.rt_device, alloc))
        async with self.locked(site):
            if failed(hr):
                await self._heap_give(site, cost)
                vt.log("umd.resource.create", device=self.name, rt_resource=args.rt_resource,
                       **hr_fields(hr))
                return hr
            self._next_resource += 1
            handle = RESOURCE_BASE + self._next_resource
            subs = []
            for i, (s, info) in enumerate(zip(surfaces, infos)):
                pitch = s.pitch or s.width * s.bytes_per_pixel
                subs.append(Subresource(i, s.size, pitch, pitch * s.height, info.allocation,
                                        placement))
            res = Resource(handle, args.rt_resource, int(args.pool), int(args.flags),
                           alloc.km_resource, tuple(subs))
            resources = await self._resources.read(site)
            resources[handle] = res
            await self._resources.write(resources, site)
            tracking = await self._tracking.read(site)
            for sub in subs:
                tracking[(handle, sub.index)] = Tracking(sub.base, sub.base)
            await self._tracking.write(tracking, site)
        args.resource = handle
        vt.log("umd.resource.create", device=self.name, resource=handle,
               rt_resource=args.rt_resource, placement=placement,
               allocations=[s.base for s in subs], **hr_fields(hr))
        return S_OK

    def _allocation_infos(self, args: D3DDDIARG_CREATERESOURCE,
                          placement: str) -> list[D3DDDI_ALLOCATIONINFO]:
        """One ``D3DDDI_ALLOCATIONINFO`` per surface: the miniport's private data and, for
        SYSTEMMEM, the runtime's memory (AC-6)."""
        infos = []
        kind = self._kind(args.flags, placement)
        for s in args.surfaces:
            if placement == "sysmem":
                mem = s.system_mem
                assert mem is not None
                desc = kmd.AllocationDesc(size=len(mem), segments="any", kind=kind)
                infos.append(D3DDDI_ALLOCATIONINFO(private_driver_data=desc, system_mem=mem))
            elif args.flags & D3DDDI_RESOURCEFLAGS.Primary:
                # seed 004: Flags.Primary with its VidPnSourceId (AC-7)
                desc = kmd.AllocationDesc(size=s.size, segments=placement, kind=kind)
                infos.append(D3DDDI_ALLOCATIONINFO(
                    private_driver_data=desc, flags=int(kmd.D3DDDI_ALLOCATIONINFO_FLAGS.Primary),
                    vidpn_source_id=args.vidpn_source_id))
            else:
                desc = kmd.AllocationDesc(size=s.size, segments=placement, kind=kind)
                infos.append(D3DDDI_ALLOCATIONINFO(private_driver_data=desc))
        return infos

    @staticmethod
    def _kind(flags: int, placement: str) -> str:
        f = D3DDDI_RESOURCEFLAGS
        for bit, name in ((f.Primary, "primary"), (f.VertexBuffer, "vb"), (f.IndexBuffer, "ib"),
                          (f.RenderTarget, "rt"), (f.ZBuffer, "z"), (f.Texture, "texture")):
            if flags & bit:
                return name if placement != "sysmem" else f"sysmem-{name}"
        return "sysmem" if placement == "sysmem" else "buffer"

    @ddi_entry(D3DDDIARG_DESTROYRESOURCE)
    async def pfn_destroy_resource(self, args: D3DDDIARG_DESTROYRESOURCE) -> int:
        """DestroyResource: submit first if the pending buffer references the resource (its
        handles die with it), forget its locks (the kernel unlocks implicitly), its pending
        cookies (Q-3) and stream bindings, then pfnDeallocateCb. S_OK; E_INVALIDARG (unknown
        handle); a pfnRenderCb / pfnDeallocateCb failure (ERR-1)."""
        site = "destroy_resource"
        async with self.locked(site):
            resources = await self._resources.read(site)
            res = resources.get(args.resource)
            if res is None:
                return E_INVALIDARG
            keys = [(res.handle, s.index) for s in res.subresources]
            hr = S_OK
            cb = await self._cmdbuf.read(site)
            if any(cb.references(k) for k in keys):
                hr = await self.submit("destroy", site=site)
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
            freed += HEAP_COSTS["resource"] + HEAP_COSTS["descriptor"] * len(res.subresources)
            await self._heap_give(site, freed)
        dealloc = D3DDDICB_DEALLOCATE(
            rt_resource=res.rt_resource,
            allocations=[] if res.rt_resource else [s.base for s in res.subresources],
        )
        hr2 = int(await self.callbacks.pfn_deallocate_cb(self.rt_device, dealloc))
        vt.log("umd.resource.destroy", device=self.name, resource=res.handle, **hr_fields(hr2))
        return hr if failed(hr) else hr2

    @ddi_entry(D3DDDIARG_SETSTREAMSOURCE)
    async def pfn_set_stream_source(self, args: D3DDDIARG_SETSTREAMSOURCE) -> int:
        """SetStreamSource: bind (or, with resource 0, unbind) a vertex stream. The allocation
        is *not* resolved here but when a draw is encoded, so a Rename between the two is
        honoured (RN-4). S_OK; E_INVALIDARG (unknown resource, negative offset, stride <= 0)."""
        site = "set_stream_source"
        if not isinstance(args.stream, int) or args.stream < 0:
            return E_INVALIDARG
        async with self.locked(site):
            streams = await self._streams.read(site)
            if args.resource == 0:
                streams.pop(args.stream, None)
            else:
                if await self._lookup(site, args.resource, 0) is None:
                    return E_INVALIDARG
                if args.offset < 0 or args.stride <= 0:
                    return E_INVALIDARG
                streams[args.stream] = StreamBinding(args.resource, args.offset, args.stride)
            await self._streams.write(streams, site)
        return S_OK

    @ddi_entry(D3DDDIARG_DRAWPRIMITIVE)
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
        async with self.locked(site):
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
                if failed(hr):
                    return hr
        if vt.tracing("umd.draw"):
            vt.log("umd.draw", device=self.name, draw_id=args.draw_id,
                   refs=[[n, key[0], handle] for n, key, handle, _, _ in plan])
        return S_OK

    @ddi_entry(None)
    async def pfn_flush(self, args: Any = None) -> int:
        """Flush: submit what is pending (RCB-7: the buffer only ever holds whole commands).
        S_OK; a pfnRenderCb failure (ERR-1)."""
        async with self.locked("flush"):
            return await self.submit("flush")

    @ddi_entry(D3DDDIARG_PRESENT)
    async def pfn_present(self, args: D3DDDIARG_PRESENT) -> int:
        """Present: submit what is pending (the frame's work). S_OK; a pfnRenderCb failure."""
        async with self.locked("present"):
            return await self.submit("present")

    @ddi_entry(None)
    async def pfn_destroy_device(self, args: Any = None) -> int:
        """DestroyDevice: submit pending work, release every outstanding lock (LCB-17) and
        free the resources the runtime left. S_OK or the first callback failure."""
        site = "destroy_device"
        async with self.locked(site):
            first = await self.submit("destroy", site=site)
            locks = await self._locks.read(site)
            for key in list(locks):
                rec = locks.pop(key)
                if rec.allocation:  # 0: a waiting lock still on its way (nothing to unlock yet)
                    hr = await self.unlock_cb([rec.allocation])
                    first = hr if not failed(first) and failed(hr) else first
            await self._locks.write(locks, site)
            resources = await self._resources.read(site)
            left = list(resources.values())
            resources.clear()
            await self._resources.write(resources, site)
            await self._cookies.write({}, site)
        for res in left:
            hr = int(await self.callbacks.pfn_deallocate_cb(self.rt_device, D3DDDICB_DEALLOCATE(
                rt_resource=res.rt_resource,
                allocations=[] if res.rt_resource else [s.base for s in res.subresources])))
            first = hr if not failed(first) and failed(hr) else first
        vt.log("umd.device.destroy", device=self.name, **hr_fields(first))
        return first
