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
from kmd import plain_int  # the driver's ints read without its methods: kmd's, shared
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
#: ``cb.exit``'s ``invalid`` for a callback made after the driver's DestroyDevice returned
DESTROYED = "destroyed device"
#: what a callback body returns: the HRESULT and the extra ``cb.exit`` fields
Outcome = tuple[int, dict[str, Any]]


#: dataclass → its field names (``dataclasses.fields`` rebuilds a tuple on every call)
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
#: the field types a summary keeps as they are (subclasses of int and str are looked at further)
_PLAIN = frozenset({int, str, bool, type(None)})


def summarize(args: Any) -> dict[str, Any]:
    """The scalar fields of an argument struct, for trace events (pointers and buffers left out,
    flag words as plain ints). A driver may have put anything in a struct the runtime passes
    back to it (a LockAsync cookie in Rename): an int subclass is read with ``int.__index__``
    and a str subclass with ``str.__str__``, never through a method the subclass defines."""
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
        t = type(v)
        if t in _PLAIN:  # the common cases, as they are
            out[name] = v
        elif issubclass(t, int):  # an IntFlag, an IntEnum (bool is in _PLAIN): a plain int
            out[name] = int.__index__(v)
        elif issubclass(t, str):  # a str subclass: its plain text
            out[name] = str.__str__(v)
    return out


def u32(v: Any) -> int | None:
    """``v`` as a plain unsigned 32-bit int (a D3DKMT_HANDLE, a UINT, a flag word), or None
    (:func:`plain_int`; bools are not)."""
    n = plain_int(v)
    return n if n is not None and 0 <= n <= U32 else None


def is_u32(v: Any) -> bool:
    """An unsigned 32-bit int (a D3DKMT_HANDLE, a UINT, a flag word); bools are not."""
    return u32(v) is not None


def u32_list(v: Any) -> list[int] | None:
    """A list or tuple of unsigned 32-bit ints as a new list of plain ints, or None."""
    if type(v) is not list and type(v) is not tuple:
        return None
    out = []
    for x in v:
        n = u32(x)
        if n is None:
            return None
        out.append(n)
    return out


def _read_allocate(a: D3DDDICB_ALLOCATE) -> tuple[str, Any]:
    """The first invalid field of a D3DDDICB_ALLOCATE ("" if none) and the fields as the
    runtime uses them: plain ints, and copies of the driver's D3DDDI_ALLOCATIONINFO entries
    with plain-int fields (the kernel gets those; each hAllocation is copied back)."""
    pdd = a.private_driver_data
    if not (pdd is None or type(pdd) is bytes or type(pdd) is bytearray):
        return "private_driver_data", None
    rt_resource, km_resource = u32(a.rt_resource), u32(a.km_resource)
    if rt_resource is None:
        return "rt_resource", None
    if km_resource is None:
        return "km_resource", None
    infos = a.allocation_info
    if type(infos) is not list:
        return "allocation_info", None
    copies = []
    for i in infos:
        if type(i) is not kmd.D3DDDI_ALLOCATIONINFO:
            return "allocation_info", None
        flags, vidpn, handle = u32(i.flags), u32(i.vidpn_source_id), u32(i.allocation)
        if flags is None or vidpn is None or handle is None:
            return "allocation_info", None
        if not (i.system_mem is None or type(i.system_mem) is bytearray):
            return "allocation_info", None
        copies.append(kmd.D3DDDI_ALLOCATIONINFO(
            private_driver_data=i.private_driver_data, system_mem=i.system_mem,
            vidpn_source_id=vidpn, flags=flags, allocation=handle))
    return "", (rt_resource, km_resource, copies)


def _read_deallocate(a: D3DDDICB_DEALLOCATE) -> tuple[str, Any]:
    rt_resource = u32(a.rt_resource)
    if rt_resource is None:
        return "rt_resource", None
    allocations = u32_list(a.allocations)
    if allocations is None:
        return "allocations", None
    return "", (rt_resource, allocations)


def _read_lock(a: D3DDDICB_LOCK) -> tuple[str, Any]:
    allocation, flags, pdd = u32(a.allocation), u32(a.flags), u32(a.private_driver_data)
    if allocation is None:
        return "allocation", None
    if flags is None:
        return "flags", None
    if pdd is None:
        return "private_driver_data", None
    pages = None
    if a.pages is not None:
        pages = u32_list(a.pages) if type(a.pages) is list else None
        if pages is None:
            return "pages", None
    return "", (allocation, flags, pdd, pages)


def _read_unlock(a: D3DDDICB_UNLOCK) -> tuple[str, Any]:
    allocations = u32_list(a.allocations)
    return ("", allocations) if allocations is not None else ("allocations", None)


def _read_render(a: D3DDDICB_RENDER) -> tuple[str, Any]:
    """The first invalid field of a D3DDDICB_RENDER ("" if none) and the fields as the runtime
    uses them. The commands' own fields are the kernel's to validate (RD-6…); the runtime
    reads only a draw's id and allocation-list slot (for the trace and the checker), as plain
    ints, and a write's payload length: a draw whose id or slot is not an int, or a write
    whose payload is not bytes, is refused here."""
    if type(a.command_buffer) is not list:
        return "command_buffer", None
    length = None if a.command_length is None else u32(a.command_length)
    if a.command_length is not None and length is None:
        return "command_length", None
    if type(a.allocation_list) is not list:
        return "allocation_list", None
    alist, handles = [], []
    for x in a.allocation_list:
        if type(x) is not kmd.D3DDDI_ALLOCATIONLIST:
            return "allocation_list", None
        h, wo = u32(x.allocation), x.write_operation
        if type(wo) is not bool:
            wo = plain_int(wo)  # a BOOL may be an int too
        if h is None or wo is None:
            return "allocation_list", None
        handles.append(h)
        exact = type(x.allocation) is int and type(x.write_operation) in (bool, int)
        alist.append(x if exact else kmd.D3DDDI_ALLOCATIONLIST(allocation=h, write_operation=wo))
    scalars = []
    for name in ("flags", "context", "new_command_buffer_size", "new_allocation_list_size"):
        n = u32(getattr(a, name))
        if n is None:
            return name, None
        scalars.append(n)
    refs = []
    for c in a.command_buffer:
        if type(c) not in _COMMANDS:
            return "command_buffer", None
        if type(c) is kmd.CmdDraw:
            draw_id, slot = plain_int(c.draw_id), plain_int(c.alloc_index)
            if draw_id is None or slot is None:
                return "command_buffer", None
            if 0 <= slot < len(handles):
                refs.append([draw_id, handles[slot]])
        elif type(c) is kmd.CmdWrite and type(c.data) not in (bytes, bytearray):
            return "command_buffer", None  # its payload's len() is the runtime's to take
    return "", (list(a.command_buffer), alist, handles, refs, length, scalars)


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
        #: the driver's DestroyDevice has returned: every later callback is refused
        self.destroyed = False

    def table(self) -> D3DDDI_DEVICECALLBACKS:
        return D3DDDI_DEVICECALLBACKS(
            pfn_allocate_cb=self.pfn_allocate_cb,
            pfn_deallocate_cb=self.pfn_deallocate_cb,
            pfn_lock_cb=self.pfn_lock_cb,
            pfn_unlock_cb=self.pfn_unlock_cb,
            pfn_render_cb=self.pfn_render_cb,
        )

    # -- plumbing ---------------------------------------------------------------------------

    def _check(self, runtime_device: Any, args: Any, kind: type,
               read: Callable[[Any], tuple[str, Any]]) -> tuple[str, Any]:
        """The reason to refuse the call ("" if none) and the struct's fields as the runtime
        uses them (plain ints, :func:`plain_int`): a destroyed device (the driver's
        ``DestroyDevice`` has returned: the handle names no device any more), a foreign
        device handle, a struct of the wrong type, or the first invalid field."""
        if self.destroyed:
            return DESTROYED, None
        if runtime_device is not self._dev.handle:
            return "runtime_device", None
        if type(args) is not kind:
            return "args", None
        return read(args)

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
        kernel). A call on a destroyed device is E_INVALIDARG too: its handle is stale, which
        the kernel answers with STATUS_INVALID_PARAMETER (docs/kmd.md §1.2) and
        ``ntstatus_to_hresult_for_callback`` maps to E_INVALIDARG; the checker reports it
        (``CB-AFTER-DESTROY``, docs/checker.md)."""

        async def body() -> Outcome:
            return kmd.E_INVALIDARG, {"invalid": why}

        return await self._serve(name, {}, body)

    def destroy(self) -> None:
        """The driver's ``DestroyDevice`` has returned: from now on every callback of this
        device is refused (E_INVALIDARG, ``invalid: "destroyed device"``) before it reaches
        the kernel, so a thread the driver left behind cannot allocate, lock or submit on a
        device whose kernel context is being torn down."""
        self.destroyed = True

    # -- the callbacks --------------------------------------------------------------------

    async def pfn_allocate_cb(self, runtime_device: Any, args: D3DDDICB_ALLOCATE) -> int:
        """Create allocations through ``D3DKMTCreateAllocation`` (AC-1…AC-13): the per-resource
        ``private_driver_data`` goes to the kernel (AC-5), ``km_resource`` comes back for a
        non-zero ``rt_resource`` (AC-3)."""
        name = "pfnAllocateCb"
        why, read = self._check(runtime_device, args, D3DDDICB_ALLOCATE, _read_allocate)
        if why:
            return await self._refuse(name, why)
        rt_resource, km_resource, infos = read

        async def body() -> Outcome:
            existing = self._km_resources.get(rt_resource, 0)
            full = self.max_km_resources is not None and (
                len(self._km_resources) >= self.max_km_resources
            )
            if rt_resource and not existing and full:
                # the runtime's own bookkeeping is full: nothing reaches the kernel
                return kmd.E_OUTOFMEMORY, {
                    "allocations": [i.allocation for i in infos],
                    "km_resource": km_resource,
                }
            # the driver's D3DDDI_ALLOCATIONINFO entries go to the kernel as they are
            # (d3dukmdt.h), as copies with plain-int fields; the kernel validates them and
            # writes each hAllocation back (AC-2), which is copied into the driver's entry
            ca = kmd.D3DKMT_CREATEALLOCATION(
                device=self._dev.km_device,
                allocation_info=infos,
                private_driver_data=args.private_driver_data,
                create_resource=bool(rt_resource) and not existing,
                resource=existing,
            )
            st = await kmd.D3DKMTCreateAllocation(self._dev.kernel, ca)
            ok = kmd.NT_SUCCESS(st)
            if ok:
                for mine, theirs in zip(infos, args.allocation_info):
                    theirs.allocation = mine.allocation
            out_km = km_resource
            if ok and rt_resource:
                self._km_resources[rt_resource] = ca.resource
                args.km_resource = out_km = ca.resource
            return kmd.ntstatus_to_hresult_for_callback(st, name), {
                "allocations": [i.allocation for i in infos],
                "km_resource": out_km,
            }

        return await self._serve(
            name, {"rt_resource": rt_resource, "count": len(infos)}, body)

    async def pfn_deallocate_cb(self, runtime_device: Any, args: D3DDDICB_DEALLOCATE) -> int:
        """Free allocations (or a whole kernel resource) through ``D3DKMTDestroyAllocation``."""
        name = "pfnDeallocateCb"
        why, read = self._check(runtime_device, args, D3DDDICB_DEALLOCATE, _read_deallocate)
        if why:
            return await self._refuse(name, why)
        rt_resource, allocations = read

        async def body() -> Outcome:
            km_res = self._km_resources.get(rt_resource, 0) if rt_resource else 0
            if rt_resource and not km_res:
                return kmd.E_INVALIDARG, {}
            da = kmd.D3DKMT_DESTROYALLOCATION(
                device=self._dev.km_device, resource=km_res, allocations=list(allocations)
            )
            st = await kmd.D3DKMTDestroyAllocation(self._dev.kernel, da)
            if kmd.NT_SUCCESS(st) and km_res:
                del self._km_resources[rt_resource]
            return kmd.ntstatus_to_hresult_for_callback(st, name), {}

        return await self._serve(
            name, {"rt_resource": rt_resource, "allocations": allocations}, body)

    async def pfn_lock_cb(self, runtime_device: Any, args: D3DDDICB_LOCK) -> int:
        """Lock an allocation through ``D3DKMTLock``; after a renaming Discard the new instance
        handle comes back in ``args.allocation`` (LCB-5). May block until the GPU is done."""
        name = "pfnLockCb"
        why, read = self._check(runtime_device, args, D3DDDICB_LOCK, _read_lock)
        if why:
            return await self._refuse(name, why)
        allocation, flags, pdd, pages = read

        async def body() -> Outcome:
            lk = kmd.D3DKMT_LOCK(
                device=self._dev.km_device,
                allocation=allocation,
                flags=flags,
                pages=pages,
                num_pages=len(pages) if pages is not None else 0,
                private_driver_data=pdd,
            )
            st = await kmd.D3DKMTLock(self._dev.kernel, lk)
            new = allocation
            if kmd.NT_SUCCESS(st):
                args.data = lk.data
                args.allocation = new = lk.allocation
            return kmd.ntstatus_to_hresult_for_callback(st, name), {
                "allocation": allocation, "new_allocation": new, "flags": flags,
            }

        return await self._serve(
            name, {"allocation": allocation, "flags": flags,
                   "pages": len(pages) if pages is not None else None},
            body)

    async def pfn_unlock_cb(self, runtime_device: Any, args: D3DDDICB_UNLOCK) -> int:
        """Unlock allocations through ``D3DKMTUnlock`` (never waits, KU-4)."""
        name = "pfnUnlockCb"
        why, allocs = self._check(runtime_device, args, D3DDDICB_UNLOCK, _read_unlock)
        if why:
            return await self._refuse(name, why)

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
        why, read = self._check(runtime_device, args, D3DDDICB_RENDER, _read_render)
        if why:
            return await self._refuse(name, why)
        commands, alist, handles, refs, length, scalars = read
        flags, context, new_cb_size, new_al_size = scalars

        async def body() -> Outcome:
            self.render_calls += 1
            r = kmd.D3DKMT_RENDER(context=self._dev.km_context, commands=commands,
                                  allocation_list=alist, command_length=length)
            st = await kmd.D3DKMTRender(self._dev.kernel, r)
            if kmd.NT_SUCCESS(st):
                self.render_ok += 1
                args.fence = r.fence
                args.queued_buffer_count = r.queued_buffer_count
            self._hand_back(args, flags, new_cb_size, new_al_size)
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
            "command_length": length, "command_bytes": kmd.command_length(commands),
            "context": context, "flags": flags,
        }, body)

    @staticmethod
    def _hand_back(args: D3DDDICB_RENDER, flags: int, new_cb_size: int, new_al_size: int
                   ) -> None:
        """The next command buffer and allocation list, with their sizes (RCB-2): a resize
        request is honoured up to the maxima (RCB-3)."""
        cb_size, al_size = COMMAND_BUFFER_SIZE, ALLOCATION_LIST_SIZE
        if flags & _RESIZE_COMMAND_BUFFER and new_cb_size > 0:
            cb_size = min(new_cb_size, COMMAND_BUFFER_MAX)
        if flags & _RESIZE_ALLOCATION_LIST and new_al_size > 0:
            al_size = min(new_al_size, ALLOCATION_LIST_MAX)
        args.new_command_buffer = []
        args.new_command_buffer_size = cb_size
        args.new_allocation_list = []
        args.new_allocation_list_size = al_size
