"""The runtime's callbacks to the driver: ``pfnAllocateCb``, ``pfnDeallocateCb``, ``pfnLockCb``,
``pfnUnlockCb``, ``pfnRenderCb`` (``D3DDDI_DEVICECALLBACKS``).

Each forwards to the kernel's ``D3DKMT*`` thunk and maps the ``NTSTATUS`` it gets back to the
``HRESULT`` the callback's page documents, with ``kmd.ntstatus_to_hresult_for_callback`` (device
removed → ``D3DDDIERR_DEVICEREMOVED``, busy with DonotWait → ``D3DERR_WASSTILLDRAWING``, no video
memory → ``D3DERR_OUTOFVIDEOMEMORY`` …). This is the driver's only way to the kernel.

The callbacks of one device are serialised by a mutex (umd-runtime Q-12): at DDI ≥ 0xB the app
thread's ``pfnLockCb`` (inside LockAsync) may overlap a worker DDI's ``pfnRenderCb``; they take
turns in the kernel rather than overlap there. Every callback logs ``cb.enter``/``cb.exit``.

**Validation first.** A callback checks every field of its argument struct before it takes the
mutex or touches the kernel: a handle that is not an unsigned 32-bit int (``None``, a float, a
NaN, an unhashable list, ``2**70``…), a list that is not a list, a flag word that is not an int —
each gets ``E_INVALIDARG`` (the ``invalid`` field of ``cb.exit`` names the field), never an
exception out of the callback, and never a half-done kernel call. Whatever happens after that
(a kernel bug raising, a cancelled thread), the mutex is released on the way out: one bad call
must not deadlock every later callback of the device.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
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

U32 = 0xFFFFFFFF
#: plain ints: ``int & IntFlag`` builds an enum member per test
_RESIZE_COMMAND_BUFFER = int(D3DDDICB_RENDERFLAGS.ResizeCommandBuffer)
_RESIZE_ALLOCATION_LIST = int(D3DDDICB_RENDERFLAGS.ResizeAllocationList)
_COMMANDS = (kmd.CmdDraw, kmd.CmdWrite, kmd.CmdSpin, kmd.CmdNop)
#: what a callback body returns: the HRESULT and the extra ``cb.exit`` fields
Outcome = tuple[int, dict[str, Any]]


#: dataclass → its field names (``dataclasses.fields`` rebuilds a tuple on every call)
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
#: the field types a summary keeps as they are (subclasses of int and str are looked at further)
_PLAIN = frozenset({int, str, bool, type(None)})


def summarize(args: Any) -> dict[str, Any]:
    """The scalar fields of an argument struct, for trace events (pointers and buffers left out,
    flag words as plain ints)."""
    cls = type(args)
    names = _FIELD_NAMES.get(cls)
    if names is None:
        if not is_dataclass(args):
            return {}
        names = tuple(f.name for f in fields(args))
        if not isinstance(args, type):  # an instance: its class's fields never change
            _FIELD_NAMES[cls] = names
    out: dict[str, Any] = {}
    for name in names:
        v = getattr(args, name)
        if v.__class__ in _PLAIN:  # the common cases, as they are
            out[name] = v
        elif isinstance(v, int) and not isinstance(v, bool):  # an IntFlag, an IntEnum: a plain int
            out[name] = int(v)
        elif isinstance(v, bool | str):  # a str subclass (a bool has no subclass)
            out[name] = v
    return out


def is_u32(v: Any) -> bool:
    """An unsigned 32-bit int (a D3DKMT_HANDLE, a UINT, a flag word); bools are not."""
    if v.__class__ is int:
        return 0 <= v <= U32
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= U32


def _u32_list(v: Any) -> bool:
    return isinstance(v, list | tuple) and all(is_u32(x) for x in v)


def _bad_allocate(a: D3DDDICB_ALLOCATE) -> str:
    """The first invalid field of a D3DDDICB_ALLOCATE, or ""."""
    if not (a.private_driver_data is None or isinstance(a.private_driver_data, bytes | bytearray)):
        return "private_driver_data"
    if not is_u32(a.rt_resource):
        return "rt_resource"
    if not is_u32(a.km_resource):
        return "km_resource"
    infos = a.allocation_info
    if not isinstance(infos, list):
        return "allocation_info"
    for i in infos:
        if not isinstance(i, kmd.D3DDDI_ALLOCATIONINFO):
            return "allocation_info"
        if not (is_u32(i.flags) and is_u32(i.vidpn_source_id) and is_u32(i.allocation)):
            return "allocation_info"
        if not (i.system_mem is None or isinstance(i.system_mem, bytearray)):
            return "allocation_info"
    return ""


def _bad_deallocate(a: D3DDDICB_DEALLOCATE) -> str:
    if not is_u32(a.rt_resource):
        return "rt_resource"
    return "" if _u32_list(a.allocations) else "allocations"


def _bad_lock(a: D3DDDICB_LOCK) -> str:
    if not is_u32(a.allocation):
        return "allocation"
    if not is_u32(a.flags):
        return "flags"
    if not is_u32(a.private_driver_data):
        return "private_driver_data"
    if not (a.pages is None or (isinstance(a.pages, list) and _u32_list(a.pages))):
        return "pages"
    return ""


def _bad_unlock(a: D3DDDICB_UNLOCK) -> str:
    return "" if _u32_list(a.allocations) else "allocations"


def _bad_render(a: D3DDDICB_RENDER) -> str:
    if not isinstance(a.command_buffer, list):
        return "command_buffer"
    if not (a.command_length is None or is_u32(a.command_length)):
        return "command_length"
    if not isinstance(a.allocation_list, list) or not all(
        isinstance(x, kmd.D3DDDI_ALLOCATIONLIST) and is_u32(x.allocation)
        for x in a.allocation_list
    ):
        return "allocation_list"
    for name in ("flags", "context", "new_command_buffer_size", "new_allocation_list_size"):
        if not is_u32(getattr(a, name)):
            return name
    # the commands' own fields are the kernel's to validate (RD-6…); the runtime reads only a
    # draw's allocation-list slot, for the trace
    for c in a.command_buffer:
        if not isinstance(c, _COMMANDS):
            return "command_buffer"
        if isinstance(c, kmd.CmdDraw) and not isinstance(c.alloc_index, int):
            return "command_buffer"
    return ""


class RuntimeCallbacks:
    """The callback table one runtime device hands its driver.

    ``max_km_resources`` bounds the runtime's own bookkeeping, the table from runtime resource
    handles to kernel resources (AC-3): a ``pfnAllocateCb`` that needs a new entry when it is
    full fails with ``E_OUTOFMEMORY`` ("couldn't allocate memory it needed itself", the AC
    return table) before calling the kernel. None: unbounded."""

    def __init__(self, device: Device, *, max_km_resources: int | None = None) -> None:
        self._dev = device
        self._lock = Mutex(f"{device.name}.callbacks")
        self._km_resources: dict[int, int] = {}  # runtime resource handle → hKMResource
        self.max_km_resources = max_km_resources
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

    def _check(self, runtime_device: Any, args: Any, kind: type, bad: Callable[[Any], str]
               ) -> str:
        """The reason to refuse the call ("" if none): a foreign device handle, a struct of the
        wrong type, or the first invalid field."""
        if runtime_device is not self._dev.handle:
            return "runtime_device"
        if not isinstance(args, kind):
            return "args"
        return bad(args)

    async def _serve(self, name: str, enter: dict[str, Any],
                     body: Callable[[], Awaitable[Outcome]]) -> int:
        """Run ``body`` with the device's callbacks mutex held, between ``cb.enter`` and
        ``cb.exit``; the mutex is released whatever happens."""
        await self._lock.acquire()
        try:
            eng = current_engine()
            if eng.wants("cb.enter"):
                eng.emit("cb.enter", cb=name, device=self._dev.name, **enter)
            hr, out = await body()
            if eng.wants("cb.exit"):
                eng.emit("cb.exit", cb=name, device=self._dev.name, hr=kmd.hex32(hr),
                         hr_name=kmd.hresult_name(hr), **out)
            return hr
        finally:
            self._lock.release()

    async def _refuse(self, name: str, why: str) -> int:
        """``E_INVALIDARG`` for an invalid call, logged like any other (nothing reaches the
        kernel)."""

        async def body() -> Outcome:
            return kmd.E_INVALIDARG, {"invalid": why}

        return await self._serve(name, {}, body)

    # -- the callbacks --------------------------------------------------------------------

    async def pfn_allocate_cb(self, runtime_device: Any, args: D3DDDICB_ALLOCATE) -> int:
        """Create allocations through ``D3DKMTCreateAllocation`` (AC-1…AC-13): the per-resource
        ``private_driver_data`` goes to the kernel (AC-5), ``km_resource`` comes back for a
        non-zero ``rt_resource`` (AC-3)."""
        name = "pfnAllocateCb"
        why = self._check(runtime_device, args, D3DDDICB_ALLOCATE, _bad_allocate)
        if why:
            return await self._refuse(name, why)

        async def body() -> Outcome:
            existing = self._km_resources.get(args.rt_resource, 0)
            full = self.max_km_resources is not None and (
                len(self._km_resources) >= self.max_km_resources
            )
            if args.rt_resource and not existing and full:
                # the runtime's own bookkeeping is full: nothing reaches the kernel
                return kmd.E_OUTOFMEMORY, {
                    "allocations": [i.allocation for i in args.allocation_info],
                    "km_resource": args.km_resource,
                }
            # the driver's D3DDDI_ALLOCATIONINFO entries go to the kernel as they are
            # (d3dukmdt.h); the kernel validates them and writes each hAllocation back (AC-2)
            ca = kmd.D3DKMT_CREATEALLOCATION(
                device=self._dev.km_device,
                allocation_info=list(args.allocation_info),
                private_driver_data=args.private_driver_data,
                create_resource=bool(args.rt_resource) and not existing,
                resource=existing,
            )
            st = await kmd.D3DKMTCreateAllocation(self._dev.kernel, ca)
            if kmd.NT_SUCCESS(st) and args.rt_resource:
                self._km_resources[args.rt_resource] = ca.resource
                args.km_resource = ca.resource
            return kmd.ntstatus_to_hresult_for_callback(st, name), {
                "allocations": [i.allocation for i in args.allocation_info],
                "km_resource": args.km_resource,
            }

        return await self._serve(
            name, {"rt_resource": args.rt_resource, "count": len(args.allocation_info)}, body)

    async def pfn_deallocate_cb(self, runtime_device: Any, args: D3DDDICB_DEALLOCATE) -> int:
        """Free allocations (or a whole kernel resource) through ``D3DKMTDestroyAllocation``."""
        name = "pfnDeallocateCb"
        why = self._check(runtime_device, args, D3DDDICB_DEALLOCATE, _bad_deallocate)
        if why:
            return await self._refuse(name, why)

        async def body() -> Outcome:
            km_res = self._km_resources.get(args.rt_resource, 0) if args.rt_resource else 0
            if args.rt_resource and not km_res:
                return kmd.E_INVALIDARG, {}
            da = kmd.D3DKMT_DESTROYALLOCATION(
                device=self._dev.km_device, resource=km_res, allocations=list(args.allocations)
            )
            st = await kmd.D3DKMTDestroyAllocation(self._dev.kernel, da)
            if kmd.NT_SUCCESS(st) and km_res:
                del self._km_resources[args.rt_resource]
            return kmd.ntstatus_to_hresult_for_callback(st, name), {}

        return await self._serve(
            name, {"rt_resource": args.rt_resource, "allocations": list(args.allocations)}, body)

    async def pfn_lock_cb(self, runtime_device: Any, args: D3DDDICB_LOCK) -> int:
        """Lock an allocation through ``D3DKMTLock``; after a renaming Discard the new instance
        handle comes back in ``args.allocation`` (LCB-5). May block until the GPU is done."""
        name = "pfnLockCb"
        why = self._check(runtime_device, args, D3DDDICB_LOCK, _bad_lock)
        if why:
            return await self._refuse(name, why)

        async def body() -> Outcome:
            lk = kmd.D3DKMT_LOCK(
                device=self._dev.km_device,
                allocation=args.allocation,
                flags=args.flags,
                pages=args.pages,
                num_pages=len(args.pages) if isinstance(args.pages, list) else 0,
                private_driver_data=args.private_driver_data,
            )
            st = await kmd.D3DKMTLock(self._dev.kernel, lk)
            old = args.allocation
            if kmd.NT_SUCCESS(st):
                args.data = lk.data
                args.allocation = lk.allocation
            return kmd.ntstatus_to_hresult_for_callback(st, name), {
                "allocation": old, "new_allocation": args.allocation, "flags": int(args.flags),
            }

        pages = len(args.pages) if isinstance(args.pages, list) else None
        return await self._serve(
            name, {"allocation": args.allocation, "flags": int(args.flags), "pages": pages},
            body)

    async def pfn_unlock_cb(self, runtime_device: Any, args: D3DDDICB_UNLOCK) -> int:
        """Unlock allocations through ``D3DKMTUnlock`` (never waits, KU-4)."""
        name = "pfnUnlockCb"
        why = self._check(runtime_device, args, D3DDDICB_UNLOCK, _bad_unlock)
        if why:
            return await self._refuse(name, why)
        allocs = list(args.allocations)

        async def body() -> Outcome:
            ul = kmd.D3DKMT_UNLOCK(device=self._dev.km_device, allocations=allocs)
            st = await kmd.D3DKMTUnlock(self._dev.kernel, ul)
            return kmd.ntstatus_to_hresult_for_callback(st, name), {"allocations": allocs}

        return await self._serve(name, {"allocations": allocs}, body)

    async def pfn_render_cb(self, runtime_device: Any, args: D3DDDICB_RENDER) -> int:
        """Submit a command buffer through ``D3DKMTRender`` and hand back the next buffers.

        Whatever the outcome, the new buffer, allocation list and their sizes are written back
        (RCB-2, RCB-3); a resize request is honoured up to the runtime's maxima."""
        name = "pfnRenderCb"
        why = self._check(runtime_device, args, D3DDDICB_RENDER, _bad_render)
        if why:
            return await self._refuse(name, why)
        commands, alist = list(args.command_buffer), list(args.allocation_list)
        handles = [a.allocation for a in alist]
        refs = [
            [c.draw_id, handles[c.alloc_index]]
            for c in commands
            if isinstance(c, kmd.CmdDraw) and 0 <= c.alloc_index < len(handles)
        ]

        async def body() -> Outcome:
            self.render_calls += 1
            r = kmd.D3DKMT_RENDER(context=self._dev.km_context, commands=commands,
                                  allocation_list=alist, command_length=args.command_length)
            st = await kmd.D3DKMTRender(self._dev.kernel, r)
            if kmd.NT_SUCCESS(st):
                self.render_ok += 1
                args.fence = r.fence
                args.queued_buffer_count = r.queued_buffer_count
            self._hand_back(args)
            return kmd.ntstatus_to_hresult_for_callback(st, name), {
                "fence": args.fence if kmd.NT_SUCCESS(st) else None,
                "draw_ids": [ref[0] for ref in refs],
                "new_command_buffer_size": args.new_command_buffer_size,
                "new_allocation_list_size": args.new_allocation_list_size,
            }

        # what the driver filled in (RCB-1, RCB-4, RCB-10) beside what the buffer really holds
        # (``command_bytes``), so the checker judges the fill-in from the seam
        return await self._serve(name, {
            "commands": len(commands), "allocations": handles, "refs": refs,
            "command_length": args.command_length, "command_bytes": kmd.command_length(commands),
            "context": args.context, "flags": int(args.flags),
        }, body)

    @staticmethod
    def _hand_back(args: D3DDDICB_RENDER) -> None:
        """The next command buffer and allocation list, with their sizes (RCB-2): a resize
        request is honoured up to the maxima (RCB-3)."""
        cb_size, al_size = COMMAND_BUFFER_SIZE, ALLOCATION_LIST_SIZE
        flags = int(args.flags)
        if flags & _RESIZE_COMMAND_BUFFER and (
            args.new_command_buffer_size > 0
        ):
            cb_size = min(args.new_command_buffer_size, COMMAND_BUFFER_MAX)
        if flags & _RESIZE_ALLOCATION_LIST and (
            args.new_allocation_list_size > 0
        ):
            al_size = min(args.new_allocation_list_size, ALLOCATION_LIST_MAX)
        args.new_command_buffer = []
        args.new_command_buffer_size = cb_size
        args.new_allocation_list = []
        args.new_allocation_list_size = al_size
