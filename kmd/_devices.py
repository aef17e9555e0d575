"""Adapters, devices and contexts: the kernel side of D3DKMTOpenAdapter/CloseAdapter,
CreateDevice/DestroyDevice, CreateContext/DestroyContext and GetDeviceState.

Every method checks all of its arguments before it changes anything: a bad handle or field gives
the documented code and leaves the kernel as it was.
"""

from __future__ import annotations

from ._core import INVALID, REMOVED, SUCCESS, Context, Device, KernelCore, handle_field, is_uint
from ._handles import HandleType
from ._trace import code_fields, klog
from .flags import D3DKMT_DEVICEEXECUTION_STATE as EXEC
from .status import NTSTATUS
from .structs import (
    D3DKMT_CLOSEADAPTER,
    D3DKMT_CREATECONTEXT,
    D3DKMT_CREATEDEVICE,
    D3DKMT_DESTROYCONTEXT,
    D3DKMT_DESTROYDEVICE,
    D3DKMT_GETDEVICESTATE,
    D3DKMT_OPENADAPTER,
)

__all__ = ["DeviceMixin"]


class DeviceMixin(KernelCore):
    """Adapter, device and context lifetime (KL-2, RCB-4, TDR-2, TDR-10, TDR-11)."""

    def dxgk_open_adapter(self, a: D3DKMT_OPENADAPTER) -> NTSTATUS:
        """D3DKMTOpenAdapter: a new adapter handle; STATUS_DEVICE_REMOVED once the adapter is
        stopped (TDR-2)."""
        if self.stopped:
            return self._fail("kmd.adapter.open", REMOVED, "TDR-2")
        h = self.handles.new(HandleType.ADAPTER, self)
        a.adapter = h
        klog("kmd.adapter.open", adapter=h, **code_fields(SUCCESS))
        return SUCCESS

    def dxgk_close_adapter(self, a: D3DKMT_CLOSEADAPTER) -> NTSTATUS:
        if self.handles.get(a.adapter, HandleType.ADAPTER) is None:
            return self._fail("kmd.adapter.close", INVALID, None, adapter=handle_field(a.adapter))
        self.handles.close(a.adapter)
        klog("kmd.adapter.close", adapter=a.adapter, **code_fields(SUCCESS))
        return SUCCESS

    def dxgk_create_device(self, a: D3DKMT_CREATEDEVICE) -> NTSTATUS:
        if self.handles.get(a.adapter, HandleType.ADAPTER) is None:
            return self._fail("kmd.device.create", INVALID, None, adapter=handle_field(a.adapter))
        if self.stopped:
            return self._fail("kmd.device.create", REMOVED, "TDR-2", adapter=a.adapter)
        dev = Device(a.adapter)
        dev.handle = self.handles.new(HandleType.DEVICE, dev)
        self.devices[dev.handle] = dev
        a.device = dev.handle
        klog("kmd.device.create", adapter=a.adapter, device=dev.handle, **code_fields(SUCCESS))
        self._device_created(dev)
        return SUCCESS

    def dxgk_destroy_device(self, a: D3DKMT_DESTROYDEVICE) -> NTSTATUS:
        """Frees everything the device owns; works after removal (TDR-11)."""
        dev = self._device(a.device)
        if dev is None:
            return self._fail("kmd.device.destroy", INVALID, "KL-2", device=handle_field(a.device))
        left = len(dev.allocations) + len(dev.resources)
        if left:  # the driver never freed them: counted (statistics), freed here all the same
            self._bump("freed_at_device_destroy", left)
        for alloc in list(dev.allocations.values()):
            self._destroy_allocation(alloc)
        for res in list(dev.resources.values()):
            self._destroy_resource(res)
        for ctx in dev.contexts:
            ctx.destroyed = True
            self.handles.close(ctx.handle)
        dev.destroyed = True
        self.handles.close(dev.handle)
        self.devices.pop(dev.handle, None)
        self.vidsch.notify()
        klog("kmd.device.destroy", device=dev.handle, **code_fields(SUCCESS))
        return SUCCESS

    def dxgk_create_context(self, a: D3DKMT_CREATECONTEXT) -> NTSTATUS:
        """A context on node 0 of a live device (RCB-4; TDR-10 after removal)."""
        ev = "kmd.context.create"
        dev = self._device(a.device)
        if dev is None:
            return self._fail(ev, INVALID, "RCB-4", device=handle_field(a.device))
        if dev.removed:
            return self._fail(ev, REMOVED, "TDR-10", device=dev.handle)
        if not is_uint(a.node_ordinal) or a.node_ordinal != 0:
            return self._fail(ev, INVALID, "RCB-4", device=dev.handle)
        ctx = Context(dev, 0)
        ctx.handle = self.handles.new(HandleType.CONTEXT, ctx)
        dev.contexts.append(ctx)
        a.context = ctx.handle
        klog(ev, device=dev.handle, context=ctx.handle, **code_fields(SUCCESS))
        return SUCCESS

    def dxgk_destroy_context(self, a: D3DKMT_DESTROYCONTEXT) -> NTSTATUS:
        ctx = self.handles.get(a.context, HandleType.CONTEXT)
        if ctx is None or ctx.destroyed:
            return self._fail(
                "kmd.context.destroy", INVALID, "RCB-4", context=handle_field(a.context)
            )
        ctx.destroyed = True
        self.handles.close(ctx.handle)
        if ctx in ctx.device.contexts:
            ctx.device.contexts.remove(ctx)
        klog("kmd.context.destroy", context=ctx.handle, **code_fields(SUCCESS))
        return SUCCESS

    def dxgk_get_device_state(self, a: D3DKMT_GETDEVICESTATE) -> NTSTATUS:
        """ACTIVE, or RESET once the device was removed."""
        dev = self._device(a.device)
        if dev is None:
            return self._fail("kmd.device.state", INVALID, "KL-2", device=handle_field(a.device))
        state = (
            EXEC.D3DKMT_DEVICEEXECUTION_RESET if dev.removed else EXEC.D3DKMT_DEVICEEXECUTION_ACTIVE
        )
        a.execution_state = state
        klog("kmd.device.state", device=dev.handle, state=state.name, **code_fields(SUCCESS))
        return SUCCESS
