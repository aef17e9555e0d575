"""The D3DKMT* thunks: the only way into the kernel from above (the runtime's pfn*Cb callbacks
call them; an OpenGL-ICD-style client calls them directly).

Each thunk is ``async def D3DKMTxxx(kernel, args) -> NTSTATUS``: one scheduling point on entry,
then the kernel side (``Kernel.dxgk_*`` in kmd/dxgkrnl.py). Bad input — a wrong struct type,
wrong field types, stale/foreign/wrong-type handles, bad flags — returns the documented code and
never raises; the answer is always one of ``THUNK_CODES[name]``. Only the Lock thunks (and
``Kernel.wait_for_fence``) block, on the adapter's fence condition.
"""

from __future__ import annotations

import inspect
from typing import Any, Final

from ._trace import code_fields, klog
from .dxgkrnl import Kernel
from .status import NTSTATUS
from .structs import (
    D3DKMT_CLOSEADAPTER,
    D3DKMT_CREATEALLOCATION,
    D3DKMT_CREATECONTEXT,
    D3DKMT_CREATEDEVICE,
    D3DKMT_DESTROYALLOCATION,
    D3DKMT_DESTROYCONTEXT,
    D3DKMT_DESTROYDEVICE,
    D3DKMT_GETDEVICESTATE,
    D3DKMT_LOCK,
    D3DKMT_LOCK2,
    D3DKMT_OPENADAPTER,
    D3DKMT_RENDER,
    D3DKMT_UNLOCK,
    D3DKMT_UNLOCK2,
)

__all__ = [
    "THUNK_CODES",
    "D3DKMTCloseAdapter",
    "D3DKMTCreateAllocation",
    "D3DKMTCreateContext",
    "D3DKMTCreateDevice",
    "D3DKMTDestroyAllocation",
    "D3DKMTDestroyContext",
    "D3DKMTDestroyDevice",
    "D3DKMTGetDeviceState",
    "D3DKMTLock",
    "D3DKMTLock2",
    "D3DKMTOpenAdapter",
    "D3DKMTRender",
    "D3DKMTUnlock",
    "D3DKMTUnlock2",
]

N = NTSTATUS

THUNK_CODES: Final[dict[str, frozenset[NTSTATUS]]] = {
    "D3DKMTOpenAdapter": frozenset({N.STATUS_SUCCESS, N.STATUS_DEVICE_REMOVED}),
    "D3DKMTCloseAdapter": frozenset({N.STATUS_SUCCESS, N.STATUS_INVALID_PARAMETER}),
    "D3DKMTCreateDevice": frozenset(
        {N.STATUS_SUCCESS, N.STATUS_INVALID_PARAMETER, N.STATUS_DEVICE_REMOVED}
    ),
    "D3DKMTDestroyDevice": frozenset({N.STATUS_SUCCESS, N.STATUS_INVALID_PARAMETER}),
    "D3DKMTCreateContext": frozenset(
        {N.STATUS_SUCCESS, N.STATUS_INVALID_PARAMETER, N.STATUS_DEVICE_REMOVED}
    ),
    "D3DKMTDestroyContext": frozenset({N.STATUS_SUCCESS, N.STATUS_INVALID_PARAMETER}),
    "D3DKMTGetDeviceState": frozenset({N.STATUS_SUCCESS, N.STATUS_INVALID_PARAMETER}),
    # pfnAllocateCb's kernel path (AC table mapped back to NTSTATUS, Q6)
    "D3DKMTCreateAllocation": frozenset(
        {
            N.STATUS_SUCCESS,
            N.STATUS_INVALID_PARAMETER,
            N.STATUS_DEVICE_REMOVED,
            N.STATUS_GRAPHICS_NO_VIDEO_MEMORY,
            N.STATUS_NO_MEMORY,
        }
    ),
    "D3DKMTDestroyAllocation": frozenset({N.STATUS_SUCCESS, N.STATUS_INVALID_PARAMETER}),
    # the six documented codes + the "other NTSTATUS" ones of docs/kmd.md §1.2
    "D3DKMTLock": frozenset(
        {
            N.STATUS_SUCCESS,
            N.STATUS_DEVICE_REMOVED,
            N.STATUS_INVALID_PARAMETER,
            N.STATUS_GRAPHICS_ALLOCATION_BUSY,
            N.STATUS_GRAPHICS_TOO_MANY_REFERENCES,
            N.STATUS_GRAPHICS_CANT_EVICT_PINNED_ALLOCATION,
            N.STATUS_GRAPHICS_CANT_LOCK_MEMORY,
            N.STATUS_GRAPHICS_UNSWIZZLING_APERTURE_UNAVAILABLE,
            N.STATUS_NO_MEMORY,
        }
    ),
    # KL2-4: Lock's set minus CANT_EVICT_PINNED_ALLOCATION
    "D3DKMTLock2": frozenset(
        {
            N.STATUS_SUCCESS,
            N.STATUS_DEVICE_REMOVED,
            N.STATUS_INVALID_PARAMETER,
            N.STATUS_GRAPHICS_ALLOCATION_BUSY,
            N.STATUS_GRAPHICS_TOO_MANY_REFERENCES,
        }
    ),
    "D3DKMTUnlock": frozenset({N.STATUS_SUCCESS, N.STATUS_INVALID_PARAMETER}),  # KU-3
    "D3DKMTUnlock2": frozenset({N.STATUS_SUCCESS, N.STATUS_INVALID_PARAMETER}),
    "D3DKMTRender": frozenset(
        {
            N.STATUS_SUCCESS,
            N.STATUS_INVALID_PARAMETER,
            N.STATUS_DEVICE_REMOVED,
            N.STATUS_GRAPHICS_CANT_RENDER_LOCKED_ALLOCATION,
            N.STATUS_GRAPHICS_INVALID_ALLOCATION_INSTANCE,
            N.STATUS_GRAPHICS_NO_VIDEO_MEMORY,
            N.STATUS_NO_MEMORY,
            N.STATUS_ILLEGAL_INSTRUCTION,
            N.STATUS_PRIVILEGED_INSTRUCTION,
            N.STATUS_INVALID_HANDLE,
            N.STATUS_INVALID_USER_BUFFER,
        }
    ),
}


async def _thunk(kernel: Kernel, name: str, args: Any, struct: type, impl: str) -> NTSTATUS:
    if not isinstance(kernel, Kernel):
        raise TypeError(f"{name}: the first argument must be a kmd.Kernel, not {kernel!r}")
    await kernel.enter(name)
    if not isinstance(args, struct):
        klog(
            f"kmd.{name}",
            rule="KL-2",
            why=f"expected {struct.__name__}, got {type(args).__name__}",
            **code_fields(N.STATUS_INVALID_PARAMETER),
        )
        return N.STATUS_INVALID_PARAMETER
    st = getattr(kernel, impl)(args)
    if inspect.isawaitable(st):
        st = await st
    if st not in THUNK_CODES[name]:  # a kernel bug, not bad input
        raise AssertionError(f"{name} returned undocumented code {st!r}")
    return NTSTATUS(st)


async def D3DKMTOpenAdapter(kernel: Kernel, args: D3DKMT_OPENADAPTER) -> NTSTATUS:
    """Open the adapter; ``args.adapter`` [out]."""
    return await _thunk(kernel, "D3DKMTOpenAdapter", args, D3DKMT_OPENADAPTER, "dxgk_open_adapter")


async def D3DKMTCloseAdapter(kernel: Kernel, args: D3DKMT_CLOSEADAPTER) -> NTSTATUS:
    return await _thunk(
        kernel, "D3DKMTCloseAdapter", args, D3DKMT_CLOSEADAPTER, "dxgk_close_adapter"
    )


async def D3DKMTCreateDevice(kernel: Kernel, args: D3DKMT_CREATEDEVICE) -> NTSTATUS:
    """Create a device on an open adapter; ``args.device`` [out]."""
    return await _thunk(
        kernel, "D3DKMTCreateDevice", args, D3DKMT_CREATEDEVICE, "dxgk_create_device"
    )


async def D3DKMTDestroyDevice(kernel: Kernel, args: D3DKMT_DESTROYDEVICE) -> NTSTATUS:
    """Destroy a device and everything it owns (also after removal, TDR-11)."""
    return await _thunk(
        kernel, "D3DKMTDestroyDevice", args, D3DKMT_DESTROYDEVICE, "dxgk_destroy_device"
    )


async def D3DKMTCreateContext(kernel: Kernel, args: D3DKMT_CREATECONTEXT) -> NTSTATUS:
    """Create a GPU context (node 0); ``args.context`` [out]."""
    return await _thunk(
        kernel, "D3DKMTCreateContext", args, D3DKMT_CREATECONTEXT, "dxgk_create_context"
    )


async def D3DKMTDestroyContext(kernel: Kernel, args: D3DKMT_DESTROYCONTEXT) -> NTSTATUS:
    return await _thunk(
        kernel, "D3DKMTDestroyContext", args, D3DKMT_DESTROYCONTEXT, "dxgk_destroy_context"
    )


async def D3DKMTGetDeviceState(kernel: Kernel, args: D3DKMT_GETDEVICESTATE) -> NTSTATUS:
    """``args.execution_state`` [out]: ACTIVE, or RESET once the device was removed."""
    return await _thunk(
        kernel, "D3DKMTGetDeviceState", args, D3DKMT_GETDEVICESTATE, "dxgk_get_device_state"
    )


async def D3DKMTCreateAllocation(kernel: Kernel, args: D3DKMT_CREATEALLOCATION) -> NTSTATUS:
    """The kernel path of pfnAllocateCb (AC-1…AC-13): calls DxgkDdiCreateAllocation, places the
    allocations, fills ``allocation_info[i].allocation`` and (new resource) ``resource``."""
    return await _thunk(
        kernel,
        "D3DKMTCreateAllocation",
        args,
        D3DKMT_CREATEALLOCATION,
        "dxgk_create_allocation",
    )


async def D3DKMTDestroyAllocation(kernel: Kernel, args: D3DKMT_DESTROYALLOCATION) -> NTSTATUS:
    """The kernel path of pfnDeallocateCb (DA-1…DA-4)."""
    return await _thunk(
        kernel,
        "D3DKMTDestroyAllocation",
        args,
        D3DKMT_DESTROYALLOCATION,
        "dxgk_destroy_allocation",
    )


async def D3DKMTLock(kernel: Kernel, args: D3DKMT_LOCK) -> NTSTATUS:
    """D3DKMTLock (KL-1…KL-12, KL-14…KL-23): ``args.data`` [out] a ``CpuPointer``;
    ``args.allocation`` [in/out] the locked instance's handle (a new one after a Discard rename).
    May block on the GPU."""
    return await _thunk(kernel, "D3DKMTLock", args, D3DKMT_LOCK, "dxgk_lock")


async def D3DKMTLock2(kernel: Kernel, args: D3DKMT_LOCK2) -> NTSTATUS:
    """D3DKMTLock2 (KL2-1…KL2-6): whole allocation, no flags. May block on the GPU."""
    return await _thunk(kernel, "D3DKMTLock2", args, D3DKMT_LOCK2, "dxgk_lock2")


async def D3DKMTUnlock(kernel: Kernel, args: D3DKMT_UNLOCK) -> NTSTATUS:
    """D3DKMTUnlock (KU-1…KU-5): never waits."""
    return await _thunk(kernel, "D3DKMTUnlock", args, D3DKMT_UNLOCK, "dxgk_unlock")


async def D3DKMTUnlock2(kernel: Kernel, args: D3DKMT_UNLOCK2) -> NTSTATUS:
    """D3DKMTUnlock2 (KU-6)."""
    return await _thunk(kernel, "D3DKMTUnlock2", args, D3DKMT_UNLOCK2, "dxgk_unlock2")


async def D3DKMTRender(kernel: Kernel, args: D3DKMT_RENDER) -> NTSTATUS:
    """Submit a command buffer (RD-*, RCB-5/6, SCH-*): ``args.fence`` and
    ``args.queued_buffer_count`` [out]."""
    return await _thunk(kernel, "D3DKMTRender", args, D3DKMT_RENDER, "dxgk_render")
