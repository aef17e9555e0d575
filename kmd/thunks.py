"""The D3DKMT* thunks: the only way into the kernel from above (the runtime's pfn*Cb callbacks
call them; an OpenGL-ICD-style client calls them directly).

Each thunk is ``async def D3DKMTxxx(kernel, args) -> NTSTATUS``: one scheduling point on entry,
then the kernel side (``Kernel.dxgk_*``, kmd/dxgkrnl.py and the modules it lists). The thunks are
generated from one table, :data:`THUNKS` (name → argument struct → kernel method → codes), so
the fifteen entry points cannot drift apart. Bad input — a wrong struct type,
wrong field types, stale/foreign/wrong-type handles, bad flags — returns the documented code and
never raises; the answer is always one of ``THUNK_CODES[name]``. Only the Lock thunks (and
``Kernel.wait_for_fence``) block, on the adapter's fence condition.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import MappingProxyType
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
    "THUNKS",
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
    "Thunk",
]

N = NTSTATUS

#: every thunk can be handed the wrong struct (or None): STATUS_INVALID_PARAMETER (KL-2)
_ANY = frozenset({N.STATUS_SUCCESS, N.STATUS_INVALID_PARAMETER})
#: the six documented D3DKMTLock codes + the "other NTSTATUS" ones of docs/kmd.md §1.2
_LOCK_CODES = _ANY | {
    N.STATUS_DEVICE_REMOVED,
    N.STATUS_GRAPHICS_ALLOCATION_BUSY,
    N.STATUS_GRAPHICS_TOO_MANY_REFERENCES,
    N.STATUS_GRAPHICS_CANT_EVICT_PINNED_ALLOCATION,
    N.STATUS_GRAPHICS_CANT_LOCK_MEMORY,
    N.STATUS_GRAPHICS_UNSWIZZLING_APERTURE_UNAVAILABLE,
    N.STATUS_NO_MEMORY,
}


@dataclass(frozen=True)
class Thunk:
    """One row of :data:`THUNKS`: the thunk ``name``, the argument ``struct`` it accepts, the
    ``Kernel`` method that is its kernel side, the ``codes`` it may return and its docstring."""

    name: str
    struct: type
    method: str
    codes: frozenset[NTSTATUS]
    doc: str


#: the one table the D3DKMT* entry points are generated from (docs/kmd.md §1.2)
THUNKS: Final[tuple[Thunk, ...]] = (
    Thunk("D3DKMTOpenAdapter", D3DKMT_OPENADAPTER, "dxgk_open_adapter",
          _ANY | {N.STATUS_DEVICE_REMOVED},
          "Open the adapter; ``args.adapter`` [out]."),
    Thunk("D3DKMTCloseAdapter", D3DKMT_CLOSEADAPTER, "dxgk_close_adapter", _ANY,
          "Close an adapter handle."),
    Thunk("D3DKMTCreateDevice", D3DKMT_CREATEDEVICE, "dxgk_create_device",
          _ANY | {N.STATUS_DEVICE_REMOVED},
          "Create a device on an open adapter; ``args.device`` [out]."),
    Thunk("D3DKMTDestroyDevice", D3DKMT_DESTROYDEVICE, "dxgk_destroy_device", _ANY,
          "Destroy a device and everything it owns (also after removal, TDR-11)."),
    Thunk("D3DKMTCreateContext", D3DKMT_CREATECONTEXT, "dxgk_create_context",
          _ANY | {N.STATUS_DEVICE_REMOVED},
          "Create a GPU context (node 0); ``args.context`` [out]."),
    Thunk("D3DKMTDestroyContext", D3DKMT_DESTROYCONTEXT, "dxgk_destroy_context", _ANY,
          "Destroy a GPU context."),
    Thunk("D3DKMTGetDeviceState", D3DKMT_GETDEVICESTATE, "dxgk_get_device_state", _ANY,
          "``args.execution_state`` [out]: ACTIVE, or RESET once the device was removed."),
    # pfnAllocateCb's kernel path (AC table mapped back to NTSTATUS, Q6)
    Thunk("D3DKMTCreateAllocation", D3DKMT_CREATEALLOCATION, "dxgk_create_allocation",
          _ANY | {N.STATUS_DEVICE_REMOVED, N.STATUS_GRAPHICS_NO_VIDEO_MEMORY, N.STATUS_NO_MEMORY},
          "The kernel path of pfnAllocateCb (AC-1…AC-13): calls DxgkDdiCreateAllocation, places "
          "the allocations, fills ``allocation_info[i].allocation`` and (new resource) "
          "``resource``."),
    Thunk("D3DKMTDestroyAllocation", D3DKMT_DESTROYALLOCATION, "dxgk_destroy_allocation", _ANY,
          "The kernel path of pfnDeallocateCb (DA-1…DA-4)."),
    Thunk("D3DKMTLock", D3DKMT_LOCK, "dxgk_lock", _LOCK_CODES,
          "D3DKMTLock (KL-1…KL-12, KL-14…KL-23): ``args.data`` [out] a ``CpuPointer``; "
          "``args.allocation`` [in/out] the locked instance's handle (a new one after a Discard "
          "rename). May block on the GPU."),
    # KL2-4: Lock's set minus CANT_EVICT_PINNED_ALLOCATION (and the "other" codes)
    Thunk("D3DKMTLock2", D3DKMT_LOCK2, "dxgk_lock2",
          _ANY | {N.STATUS_DEVICE_REMOVED, N.STATUS_GRAPHICS_ALLOCATION_BUSY,
                  N.STATUS_GRAPHICS_TOO_MANY_REFERENCES},
          "D3DKMTLock2 (KL2-1…KL2-6): whole allocation, no flags. May block on the GPU."),
    Thunk("D3DKMTUnlock", D3DKMT_UNLOCK, "dxgk_unlock", _ANY,  # KU-3
          "D3DKMTUnlock (KU-1…KU-5): never waits."),
    Thunk("D3DKMTUnlock2", D3DKMT_UNLOCK2, "dxgk_unlock2", _ANY,
          "D3DKMTUnlock2 (KU-6)."),
    Thunk("D3DKMTRender", D3DKMT_RENDER, "dxgk_render",
          _ANY | {
              N.STATUS_DEVICE_REMOVED,
              N.STATUS_GRAPHICS_CANT_RENDER_LOCKED_ALLOCATION,
              N.STATUS_GRAPHICS_INVALID_ALLOCATION_INSTANCE,
              N.STATUS_GRAPHICS_NO_VIDEO_MEMORY,
              N.STATUS_NO_MEMORY,
              N.STATUS_ILLEGAL_INSTRUCTION,
              N.STATUS_PRIVILEGED_INSTRUCTION,
              N.STATUS_INVALID_HANDLE,
              N.STATUS_INVALID_USER_BUFFER,
          },
          "Submit a command buffer (RD-*, RCB-5/6, SCH-*): ``args.fence`` and "
          "``args.queued_buffer_count`` [out]."),
)

#: ``THUNK_CODES[name]``: the frozen set of codes each thunk can return
THUNK_CODES: Final[MappingProxyType[str, frozenset[NTSTATUS]]] = MappingProxyType(
    {t.name: t.codes for t in THUNKS}
)
_BY_NAME: Final[dict[str, Thunk]] = {t.name: t for t in THUNKS}


#: value -> NTSTATUS member: what ``NTSTATUS(st)`` answers for a documented code, without the
#: enum machinery (``Enum.__call__``) on every thunk call
_MEMBERS: Final[dict[int, NTSTATUS]] = {int(m): m for m in NTSTATUS}


async def _thunk(kernel: Kernel, name: str, args: Any, struct: type, impl: str,
                 codes: frozenset[NTSTATUS]) -> NTSTATUS:
    """The one thunk body: entry (a scheduling point), the struct check (KL-2), the kernel side,
    and the guarantee that the answer is one of ``codes`` (``THUNK_CODES[name]``)."""
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
    if not isinstance(st, int) and inspect.isawaitable(st):  # an int is never awaitable
        st = await st
    if st not in codes:  # a kernel bug, not bad input
        raise AssertionError(f"{name} returned undocumented code {st!r}")
    return _MEMBERS[st]


ThunkFunction = Callable[[Kernel, Any], Awaitable[NTSTATUS]]


def _generate(name: str) -> ThunkFunction:
    """The public ``async def name(kernel, args) -> NTSTATUS`` for one row of the table."""
    spec = _BY_NAME[name]
    struct, method, codes = spec.struct, spec.method, spec.codes

    async def thunk(kernel: Kernel, args: Any) -> NTSTATUS:
        return await _thunk(kernel, name, args, struct, method, codes)

    thunk.__name__ = thunk.__qualname__ = spec.name
    thunk.__doc__ = spec.doc
    thunk.__module__ = __name__
    thunk.__annotations__ = {"kernel": Kernel, "args": spec.struct, "return": NTSTATUS}
    return thunk


D3DKMTOpenAdapter = _generate("D3DKMTOpenAdapter")
D3DKMTCloseAdapter = _generate("D3DKMTCloseAdapter")
D3DKMTCreateDevice = _generate("D3DKMTCreateDevice")
D3DKMTDestroyDevice = _generate("D3DKMTDestroyDevice")
D3DKMTCreateContext = _generate("D3DKMTCreateContext")
D3DKMTDestroyContext = _generate("D3DKMTDestroyContext")
D3DKMTGetDeviceState = _generate("D3DKMTGetDeviceState")
D3DKMTCreateAllocation = _generate("D3DKMTCreateAllocation")
D3DKMTDestroyAllocation = _generate("D3DKMTDestroyAllocation")
D3DKMTLock = _generate("D3DKMTLock")
D3DKMTLock2 = _generate("D3DKMTLock2")
D3DKMTUnlock = _generate("D3DKMTUnlock")
D3DKMTUnlock2 = _generate("D3DKMTUnlock2")
D3DKMTRender = _generate("D3DKMTRender")
assert set(_BY_NAME) == {n for n in __all__ if n.startswith("D3DKMT")}, "THUNKS and __all__"
