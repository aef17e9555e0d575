"""The runtime's callbacks to the driver: ``pfnAllocateCb``, ``pfnDeallocateCb``, ``pfnLockCb``,
``pfnUnlockCb``, ``pfnRenderCb`` (``D3DDDI_DEVICECALLBACKS``).

Each forwards to the kernel's ``D3DKMT*`` thunk and maps the ``NTSTATUS`` it gets back to the
``HRESULT`` the callback's page documents, with ``kmd.ntstatus_to_hresult_for_callback`` (device
removed → ``D3DDDIERR_DEVICEREMOVED``, busy with DonotWait → ``D3DERR_WASSTILLDRAWING``, no video
memory → ``D3DERR_OUTOFVIDEOMEMORY`` …). This is the driver's only way to the kernel.

The callbacks of one device are serialised by a mutex (umd-runtime Q-12): at DDI ≥ 0xB the app
thread's ``pfnLockCb`` (inside LockAsync) may overlap a worker DDI's ``pfnRenderCb``; they take
turns in the kernel rather than overlap there. Every callback logs ``cb.enter``/``cb.exit``.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import TYPE_CHECKING, Any

import kmd
from umd.ddi import (
    D3DDDI_DEVICECALLBACKS,
    D3DDDICB_ALLOCATE,
    D3DDDICB_DEALLOCATE,
    D3DDDICB_LOCK,
    D3DDDICB_RENDER,
    D3DDDICB_RENDERFLAGS,
    D3DDDICB_UNLOCK,
)
from vthreads import Mutex, current_engine

if TYPE_CHECKING:
    from ._device import Device

#: the command buffer and allocation list sizes the runtime hands out (RCB-2); a resize request
#: is honoured up to the maxima (RCB-3: the driver must read back what it got)
COMMAND_BUFFER_SIZE = 4096
COMMAND_BUFFER_MAX = 65536
ALLOCATION_LIST_SIZE = 64
ALLOCATION_LIST_MAX = 1024


def summarize(args: Any) -> dict[str, Any]:
    """The scalar fields of an argument struct, for trace events (pointers and buffers left out,
    flag words as plain ints)."""
    if not is_dataclass(args):
        return {}
    out: dict[str, Any] = {}
    for f in fields(args):
        v = getattr(args, f.name)
        if isinstance(v, bool | int | str) or v is None:
            out[f.name] = int(v) if isinstance(v, int) and not isinstance(v, bool) else v
    return out


class RuntimeCallbacks:
    """The callback table one runtime device hands its driver."""

    def __init__(self, device: Device) -> None:
        self._dev = device
        self._lock = Mutex(f"{device.name}.callbacks")
        self._km_resources: dict[int, int] = {}  # runtime resource handle → hKMResource
        self.render_calls = 0
        self.render_ok = 0

    def table(self) -> D3DDDI_DEVICECALLBACKS:
        return D3DDDI_DEVICECALLBACKS(
            pfn_allocate_cb=self.pfn_allocate_cb,
            pfn_deallocate_cb=self.pfn_deallocate_cb,
            pfn_lock_cb=self.pfn_lock_cb,
            pfn_unlock_cb=self.pfn_unlock_cb,
            pfn_render_cb=self.pfn_render_cb,
        )

    # -- plumbing ---------------------------------------------------------------------------

    def _check_device(self, runtime_device: Any) -> bool:
        return runtime_device is self._dev.handle

    async def _enter(self, name: str, **fields_: Any) -> None:
        await self._lock.acquire()
        eng = current_engine()
        if eng.tracing:
            eng.emit("cb.enter", cb=name, device=self._dev.name, **fields_)

    def _exit(self, name: str, hr: int, **fields_: Any) -> int:
        eng = current_engine()
        if eng.tracing:
            eng.emit(
                "cb.exit", cb=name, device=self._dev.name, hr=kmd.hex32(hr),
                hr_name=kmd.hresult_name(hr), **fields_,
            )
        self._lock.release()
        return hr

    # -- the callbacks --------------------------------------------------------------------

    async def pfn_allocate_cb(self, runtime_device: Any, args: D3DDDICB_ALLOCATE) -> int:
        """Create allocations through ``D3DKMTCreateAllocation`` (AC-1…AC-13)."""
        name = "pfnAllocateCb"
        if not self._check_device(runtime_device) or not isinstance(args, D3DDDICB_ALLOCATE):
            await self._enter(name)
            return self._exit(name, kmd.E_INVALIDARG)
        await self._enter(name, rt_resource=args.rt_resource, count=len(args.allocation_info))
        existing = self._km_resources.get(args.rt_resource, 0)
        # the driver's D3DDDI_ALLOCATIONINFO entries go to the kernel as they are (d3dukmdt.h);
        # the kernel validates them and writes each hAllocation back (AC-2)
        infos = list(args.allocation_info) if isinstance(args.allocation_info, list) else []
        ca = kmd.D3DKMT_CREATEALLOCATION(
            device=self._dev.km_device,
            allocation_info=infos,
            create_resource=bool(args.rt_resource) and not existing,
            resource=existing,
        )
        st = await kmd.D3DKMTCreateAllocation(self._dev.kernel, ca)
        hr = kmd.ntstatus_to_hresult_for_callback(st, name)
        if kmd.NT_SUCCESS(st) and args.rt_resource:
            self._km_resources[args.rt_resource] = ca.resource
            args.km_resource = ca.resource
        return self._exit(
            name, hr, allocations=[i.allocation for i in args.allocation_info],
            km_resource=args.km_resource,
        )

    async def pfn_deallocate_cb(self, runtime_device: Any, args: D3DDDICB_DEALLOCATE) -> int:
        """Free allocations (or a whole kernel resource) through ``D3DKMTDestroyAllocation``."""
        name = "pfnDeallocateCb"
        if not self._check_device(runtime_device) or not isinstance(args, D3DDDICB_DEALLOCATE):
            await self._enter(name)
            return self._exit(name, kmd.E_INVALIDARG)
        await self._enter(name, rt_resource=args.rt_resource, allocations=list(args.allocations))
        km_res = self._km_resources.get(args.rt_resource, 0) if args.rt_resource else 0
        if args.rt_resource and not km_res:
            return self._exit(name, kmd.E_INVALIDARG)
        da = kmd.D3DKMT_DESTROYALLOCATION(
            device=self._dev.km_device, resource=km_res, allocations=list(args.allocations)
        )
        st = await kmd.D3DKMTDestroyAllocation(self._dev.kernel, da)
        if kmd.NT_SUCCESS(st) and km_res:
            del self._km_resources[args.rt_resource]
        return self._exit(name, kmd.ntstatus_to_hresult_for_callback(st, name))

    async def pfn_lock_cb(self, runtime_device: Any, args: D3DDDICB_LOCK) -> int:
        """Lock an allocation through ``D3DKMTLock``; after a renaming Discard the new instance
        handle comes back in ``args.allocation`` (LCB-5). May block until the GPU is done."""
        name = "pfnLockCb"
        if not self._check_device(runtime_device) or not isinstance(args, D3DDDICB_LOCK):
            await self._enter(name)
            return self._exit(name, kmd.E_INVALIDARG)
        await self._enter(name, allocation=args.allocation, flags=int(args.flags))
        lk = kmd.D3DKMT_LOCK(
            device=self._dev.km_device,
            allocation=args.allocation,
            flags=args.flags,
            pages=args.pages,
            num_pages=len(args.pages) if isinstance(args.pages, list) else 0,
            private_driver_data=args.private_driver_data,
        )
        st = await kmd.D3DKMTLock(self._dev.kernel, lk)
        hr = kmd.ntstatus_to_hresult_for_callback(st, name)
        old = args.allocation
        if kmd.NT_SUCCESS(st):
            args.data = lk.data
            args.allocation = lk.allocation
        return self._exit(name, hr, allocation=old, new_allocation=args.allocation,
                          flags=int(args.flags))

    async def pfn_unlock_cb(self, runtime_device: Any, args: D3DDDICB_UNLOCK) -> int:
        """Unlock allocations through ``D3DKMTUnlock`` (never waits, KU-4)."""
        name = "pfnUnlockCb"
        if not self._check_device(runtime_device) or not isinstance(args, D3DDDICB_UNLOCK):
            await self._enter(name)
            return self._exit(name, kmd.E_INVALIDARG)
        allocs = list(args.allocations) if isinstance(args.allocations, list | tuple) else []
        await self._enter(name, allocations=allocs)
        ul = kmd.D3DKMT_UNLOCK(device=self._dev.km_device, allocations=allocs)
        st = await kmd.D3DKMTUnlock(self._dev.kernel, ul)
        return self._exit(name, kmd.ntstatus_to_hresult_for_callback(st, name), allocations=allocs)

    async def pfn_render_cb(self, runtime_device: Any, args: D3DDDICB_RENDER) -> int:
        """Submit a command buffer through ``D3DKMTRender`` and hand back the next buffers.

        Whatever the outcome, the new buffer, allocation list and their sizes are written back
        (RCB-2, RCB-3); a resize request is honoured up to the runtime's maxima."""
        name = "pfnRenderCb"
        if not self._check_device(runtime_device) or not isinstance(args, D3DDDICB_RENDER):
            await self._enter(name)
            return self._exit(name, kmd.E_INVALIDARG)
        commands = list(args.command_buffer) if isinstance(args.command_buffer, list) else []
        alist = list(args.allocation_list) if isinstance(args.allocation_list, list) else []
        handles = [getattr(a, "allocation", 0) for a in alist]
        refs = [
            [c.draw_id, handles[c.alloc_index]]
            for c in commands
            if isinstance(c, kmd.CmdDraw) and 0 <= c.alloc_index < len(handles)
        ]
        await self._enter(name, commands=len(commands), allocations=handles, refs=refs)
        self.render_calls += 1
        r = kmd.D3DKMT_RENDER(
            context=self._dev.km_context,
            commands=commands,
            allocation_list=alist,
            command_length=args.command_length,
        )
        st = await kmd.D3DKMTRender(self._dev.kernel, r)
        hr = kmd.ntstatus_to_hresult_for_callback(st, name)
        if kmd.NT_SUCCESS(st):
            self.render_ok += 1
            args.fence = r.fence
            args.queued_buffer_count = r.queued_buffer_count
        cb_size, al_size = COMMAND_BUFFER_SIZE, ALLOCATION_LIST_SIZE
        if args.flags & D3DDDICB_RENDERFLAGS.ResizeCommandBuffer and (
            args.new_command_buffer_size > 0
        ):
            cb_size = min(args.new_command_buffer_size, COMMAND_BUFFER_MAX)
        if args.flags & D3DDDICB_RENDERFLAGS.ResizeAllocationList and (
            args.new_allocation_list_size > 0
        ):
            al_size = min(args.new_allocation_list_size, ALLOCATION_LIST_MAX)
        args.new_command_buffer = []
        args.new_command_buffer_size = cb_size
        args.new_allocation_list = []
        args.new_allocation_list_size = al_size
        return self._exit(name, hr, fence=args.fence if kmd.NT_SUCCESS(st) else None,
                          draw_ids=[ref[0] for ref in refs])
