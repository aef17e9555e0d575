"""The command buffer and its submission: encoding draws, pfnRenderCb (RCB-1…RCB-8)."""

from __future__ import annotations

import kmd
import vthreads as vt

from ..ddi import D3DDDICB_RENDER, D3DDDICB_RENDERFLAGS
from ._config import CMD_BYTES, E_OUTOFMEMORY, HEAP_COSTS, S_OK, failed, hr_fields
from ._records import CommandBuffer
from ._state import DeviceState, Key

#: the flags of every submit (built once: an IntFlag ``|`` makes an enum member each time)
_RESIZE_BOTH = D3DDDICB_RENDERFLAGS.ResizeCommandBuffer | D3DDDICB_RENDERFLAGS.ResizeAllocationList


class CommandBufferPath(DeviceState):
    """Filling the command buffer and submitting it (a part of :class:`ReferenceDevice`)."""

    async def submit(self, reason: str, *, site: str | None = None) -> int:
        """Submit the pending commands with pfnRenderCb; the caller holds the lock
        (``device.locked()``). ``reason`` goes to the ``umd.cmdbuf.submit`` event; ``site``
        labels the state accesses (default: ``reason``). A buffer with nothing pending makes
        no call and returns S_OK.

        ``policy.before_render(device, cmdbuf)`` runs first; whatever pfnRenderCb answers, the
        driver continues with the buffer, allocation list and sizes it handed back (RCB-2,
        RCB-3); on failure the rejected commands are gone. ``policy.after_render(device,
        cmdbuf, hr)`` decides what is returned (the reference: ``hr``, which the DDI returns,
        ERR-1). The buffer only ever holds whole commands, so any point is a valid point to
        submit (RCB-7)."""
        site = reason if site is None else site
        cb = await self._cmdbuf.read(site)
        if not cb.commands:
            return S_OK
        await self.policy.before_render(self, cb)
        cfg = self.config
        # Always ask for the configured sizes: the runtime may hand out other sizes (RCB-3 —
        # it is a request, and what comes back is read below whatever the outcome).
        flags = _RESIZE_BOTH
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
        new = CommandBuffer(
            [] if render.new_command_buffer is None else render.new_command_buffer,
            render.new_command_buffer_size,
            [] if render.new_allocation_list is None else render.new_allocation_list,
            render.new_allocation_list_size,
        )
        superseded = cb.superseded
        await self._cmdbuf.write(new, site)
        await self._heap_give(site, superseded * HEAP_COSTS["descriptor"])
        if vt.tracing("umd.cmdbuf.submit"):
            vt.log(
                "umd.cmdbuf.submit", device=self.name, reason=reason, commands=n_cmds,
                allocations=handles, fence=render.fence if not failed(hr) else None,
                next_size=new.capacity, next_alist_size=new.alist_capacity, **hr_fields(hr),
            )
        return int(await self.policy.after_render(self, cb, hr))

    async def _encode_draw(self, site: str, draw_id: int, key: Key, handle: int,
                           offset: int, length: int) -> int:
        """Append one ``CmdDraw`` reading ``handle`` (caller holds the lock). Submits first
        when the command or the allocation slot would not fit (RCB-2)."""
        cb = await self._cmdbuf.read(site)
        fits = cb.used + CMD_BYTES <= cb.capacity and (
            handle in cb.slots or len(cb.alist) < cb.alist_capacity
        )
        if not fits:
            hr = await self.submit("full", site=site)
            if failed(hr):
                return hr
            cb = await self._cmdbuf.read(site)
            if cb.capacity < CMD_BYTES or cb.alist_capacity < 1:
                return E_OUTOFMEMORY  # the runtime handed back a buffer too small for anything
        slot = cb.slots.get(handle)
        if slot is None:
            slot = len(cb.alist)
            cb.alist.append(kmd.D3DDDI_ALLOCATIONLIST(allocation=handle))
            cb.slots[handle] = slot
            cb.owners.append(key)
        cb.commands.append(kmd.CmdDraw(draw_id=draw_id, alloc_index=slot, offset=offset,
                                       length=length))
        cb.used += CMD_BYTES
        await self._cmdbuf.write(cb, site)
        return S_OK
