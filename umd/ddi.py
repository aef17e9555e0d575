"""The Direct3D 9 user-mode DDI, as Python: what ``d3dumddi.h`` is to a real driver.

Everything that crosses the runtime → driver seam is defined here: argument structures
(``D3DDDIARG_*``), their flag words, the driver's function tables (``D3DDDI_ADAPTERFUNCS``,
``D3DDDI_DEVICEFUNCS``) and the runtime's callback table and callback structures
(``D3DDDI_DEVICECALLBACKS``, ``D3DDDICB_*``). The runtime calls the driver only through the
tables; the driver calls the runtime only through the callbacks it was handed at ``CreateDevice``.

Names follow the header with the Hungarian prefixes dropped and fields in snake_case:
``hResource`` → ``resource``, ``SubResourceIndex`` → ``subresource_index``, ``hCookie`` →
``cookie``, ``pSurfData`` → ``surf_data``. Every DDI and callback is ``async`` (it may reach a
scheduling point) and returns an ``HRESULT`` int; out-fields are written into the argument object,
as the C functions write through ``pData``.

A few fields exist only in the emulator and say so (``draw_id``): they carry the identity the
data oracle needs and never influence a driver's decisions.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from typing import Any

# D3DDDI_ALLOCATIONINFO lives in d3dukmdt.h, the header the user-mode and kernel-mode sides share:
# the driver hands pfnAllocateCb the very structure D3DKMTCreateAllocation fills in.
from kmd.structs import D3DDDI_ALLOCATIONINFO

# -------------------------------------------------------------------------------------------
# Versions (umd-runtime-contract §8)

#: the threshold of LA-3 / LA-4 / UA-5 / MP-2 (DV-2)
D3D_UMD_REENTRANT_VERSION = 0x0000000B
D3D_UMD_INTERFACE_VERSION_VISTA = 0x000C
D3D_UMD_INTERFACE_VERSION_WIN7 = 0x2003
#: a pre-release value below the threshold, to exercise the non-reentrant path (DV-3)
D3D_UMD_INTERFACE_VERSION_PRE_B = 0x000A


# -------------------------------------------------------------------------------------------
# Flag words


class D3DDDI_LOCKASYNCFLAGS(IntFlag):
    """``D3DDDIARG_LOCKASYNC.Flags`` (LA-5, LA-6, LA-7)."""

    NoOverwrite = 0x01
    Discard = 0x02
    RangeValid = 0x04
    AreaValid = 0x08
    BoxValid = 0x10
    NoExistingReferences = 0x20
    NotifyOnly = 0x40


LOCKASYNC_RESERVED = 0xFFFFFF80


class D3DDDI_UNLOCKASYNCFLAGS(IntFlag):
    """``D3DDDIARG_UNLOCKASYNC.Flags`` (UA-7)."""

    NotifyOnly = 0x1


UNLOCKASYNC_RESERVED = 0xFFFFFFFE


class D3DDDI_LOCKFLAGS(IntFlag):
    """``D3DDDIARG_LOCK.Flags`` — note the bit positions differ from the LockAsync flags."""

    ReadOnly = 0x001
    WriteOnly = 0x002
    NoOverwrite = 0x004
    Discard = 0x008
    RangeValid = 0x010
    AreaValid = 0x020
    BoxValid = 0x040
    NotifyOnly = 0x080
    MightDrawFromLocked = 0x100
    DoNotWait = 0x200


LOCK_RESERVED = 0xFFFFFC00


class D3DDDI_UNLOCKFLAGS(IntFlag):
    NotifyOnly = 0x1


class D3DDDI_RESOURCEFLAGS(IntFlag):
    """``D3DDDIARG_CREATERESOURCE.Flags`` (the subset the emulator models)."""

    RenderTarget = 0x00001
    ZBuffer = 0x00002
    Dynamic = 0x00004
    Texture = 0x00008
    VertexBuffer = 0x00020
    IndexBuffer = 0x00040
    WriteOnly = 0x00400
    Primary = 0x04000
    MightDrawFromLocked = 0x20000


class D3DDDICB_RENDERFLAGS(IntFlag):
    """``D3DDDICB_RENDER.Flags`` (RCB-3: a resize is a request; RCB-10: reserved bits zero)."""

    ResizeCommandBuffer = 0x1
    ResizeAllocationList = 0x2
    ResizePatchLocationList = 0x4
    NullRendering = 0x8


RENDERFLAGS_RESERVED = 0xFFFFFFF0


class D3DDDI_POOL(IntEnum):
    """``D3DDDI_POOL``: where the runtime asks the resource to live."""

    SYSTEMMEM = 1
    VIDEOMEMORY = 2
    LOCALVIDMEM = 3
    NONLOCALVIDMEM = 4


def region_flag_count(flags: int, range_valid: int, area_valid: int, box_valid: int) -> int:
    """How many of the three region-valid bits are set (LA-6 / LK-3 allow at most one; none
    means the whole subresource — the emulator's answer to Q-7)."""
    return (bool(flags & range_valid) + bool(flags & area_valid)) + bool(flags & box_valid)


# Plain-int masks for the hot flag checks: ``int & IntFlag`` builds an enum member per
# operation (Enum.__call__), several per DDI call; the enums stay the API and the trace's names.
_LA = D3DDDI_LOCKASYNCFLAGS
_LA_NOOVERWRITE_DISCARD = (int(_LA.NoOverwrite), int(_LA.Discard))
_LA_REGION = (int(_LA.RangeValid), int(_LA.AreaValid), int(_LA.BoxValid))
_LK = D3DDDI_LOCKFLAGS
_LK_RO, _LK_WO = int(_LK.ReadOnly), int(_LK.WriteOnly)
_LK_NOOVERWRITE, _LK_DISCARD = int(_LK.NoOverwrite), int(_LK.Discard)
_LK_REGION = (int(_LK.RangeValid), int(_LK.AreaValid), int(_LK.BoxValid))


def lockasync_flag_rule(flags: int) -> str | None:
    """The rule id a LockAsync flag word breaks, or None (LA-5, LA-6, LA-7)."""
    if flags & LOCKASYNC_RESERVED:
        return "LA-7"
    no_overwrite, discard = _LA_NOOVERWRITE_DISCARD
    if flags & no_overwrite and flags & discard:
        return "LA-5"
    if region_flag_count(flags, *_LA_REGION) > 1:
        return "LA-6"
    return None


def lock_flag_rule(flags: int) -> str | None:
    """The rule id a Lock flag word breaks, or None (LK-1…LK-5)."""
    if flags & LOCK_RESERVED:
        return "LK-5"
    if flags & _LK_RO and flags & _LK_WO:
        return "LK-1"
    if flags & _LK_NOOVERWRITE and flags & _LK_DISCARD:
        return "LK-2"
    if region_flag_count(flags, *_LK_REGION) > 1:
        return "LK-3"
    if flags & _LK_RO and flags & _LK_DISCARD:
        return "LK-4"
    return None


# -------------------------------------------------------------------------------------------
# Argument structures (runtime → driver)


@dataclass
class D3DDDIRANGE:
    """A byte range of a linear resource (``Offset``, ``Size``)."""

    offset: int
    size: int


@dataclass
class D3DDDI_SURFACEINFO:
    """One subresource of a resource being created: its size in bytes (``width`` for linear
    resources; ``width * height * bytes_per_pixel`` for surfaces) and its pitch."""

    width: int
    height: int = 1
    depth: int = 1
    bytes_per_pixel: int = 1
    pitch: int = 0
    #: runtime-allocated memory for SYSTEMMEM resources (``pSysMem``), else None
    system_mem: bytearray | None = None

    @property
    def size(self) -> int:
        return self.width * self.height * self.depth * self.bytes_per_pixel


@dataclass
class D3DDDIARG_OPENADAPTER:
    """``OpenAdapter``: the runtime supplies ``interface``/``version``; the driver fills
    ``adapter_funcs`` and ``driver_version`` (DV-1)."""

    adapter: Any  # in: the runtime's adapter object (pfnQueryAdapterInfoCb); out: driver handle
    interface: int = 9
    version: int = 0
    adapter_funcs: D3DDDI_ADAPTERFUNCS | None = None
    driver_version: int = 0


@dataclass
class D3DDDIARG_CREATEDEVICE:
    """``CreateDevice``: the runtime hands its device handle and callbacks; the driver returns
    its device handle and function table."""

    runtime_device: Any
    callbacks: D3DDDI_DEVICECALLBACKS
    device: Any = None  # out: the driver's device handle
    device_funcs: D3DDDI_DEVICEFUNCS | None = None  # out


@dataclass
class D3DDDIARG_CREATERESOURCE:
    """``CreateResource``: ``rt_resource`` is the runtime's handle (``hRTResource``), passed on
    to ``pfnAllocateCb``; the driver returns its own handle in ``resource``."""

    rt_resource: int
    pool: D3DDDI_POOL
    flags: int
    surfaces: list[D3DDDI_SURFACEINFO]
    resource: int = 0  # out
    vidpn_source_id: int = 0  # the video present source of a ``Primary`` (AC-7)


@dataclass
class D3DDDIARG_DESTROYRESOURCE:
    resource: int


@dataclass
class D3DDDIARG_LOCKASYNC:
    """``LockAsync`` (§1). Out: ``cookie`` (Discard only, LA-12/LA-18), ``surf_data``, pitches."""

    resource: int
    subresource_index: int
    flags: int
    range: D3DDDIRANGE | None = None
    cookie: int = 0
    surf_data: Any = None
    pitch: int = 0
    slice_pitch: int = 0
    gpu_virtual_address: int = 0


@dataclass
class D3DDDIARG_UNLOCKASYNC:
    resource: int
    subresource_index: int
    flags: int = 0


@dataclass
class D3DDDIARG_RENAME:
    resource: int
    subresource_index: int
    cookie: int
    gpu_virtual_address: int = 0


@dataclass
class D3DDDIARG_LOCK:
    """``Lock`` (§4). Out: ``surf_data``, ``pitch``, ``slice_pitch``."""

    resource: int
    subresource_index: int
    flags: int
    range: D3DDDIRANGE | None = None
    surf_data: Any = None
    pitch: int = 0
    slice_pitch: int = 0


@dataclass
class D3DDDIARG_UNLOCK:
    resource: int
    subresource_index: int
    flags: int = 0


@dataclass
class D3DDDIARG_SETSTREAMSOURCE:
    """Bind vertex stream ``stream`` to ``resource`` at ``offset`` with ``stride``."""

    stream: int
    resource: int
    offset: int
    stride: int


@dataclass
class D3DDDIARG_DRAWPRIMITIVE:
    """Draw ``vertex_count`` vertices from every bound stream starting at ``start_vertex``.

    ``draw_id`` is emulator-only: the runtime numbers draws in the application's program order so
    the data oracle can match what the GPU read against what the application had written."""

    primitive_type: int
    start_vertex: int
    vertex_count: int
    draw_id: int = 0


@dataclass
class D3DDDIARG_PRESENT:
    src_resource: int = 0
    frame: int = 0


# -------------------------------------------------------------------------------------------
# Function tables (driver → runtime, filled by OpenAdapter / CreateDevice)

DDI = Callable[..., Awaitable[int]]


@dataclass
class D3DDDI_ADAPTERFUNCS:
    pfn_create_device: DDI
    pfn_close_adapter: DDI | None = None


@dataclass
class D3DDDI_DEVICEFUNCS:
    """The driver's device DDIs. ``None`` means "not implemented": LockAsync, UnlockAsync and
    Rename are the optional triple of LA-1; the runtime's multiprocessor layer exists only when
    all three are present (MP-4)."""

    pfn_create_resource: DDI
    pfn_destroy_resource: DDI
    pfn_lock: DDI
    pfn_unlock: DDI
    pfn_set_stream_source: DDI
    pfn_draw_primitive: DDI
    pfn_flush: DDI
    pfn_present: DDI
    pfn_destroy_device: DDI
    pfn_lock_async: DDI | None = None
    pfn_unlock_async: DDI | None = None
    pfn_rename: DDI | None = None

    def has_async_triple(self) -> bool:
        """LA-1 / UA-1 / RN-7: all three of LockAsync, UnlockAsync and Rename are implemented."""
        return None not in (self.pfn_lock_async, self.pfn_unlock_async, self.pfn_rename)

    def names(self) -> list[str]:
        return [k for k, v in self.__dict__.items() if v is not None]


# -------------------------------------------------------------------------------------------
# Callbacks (runtime → kernel on the driver's behalf): D3DDDI_DEVICECALLBACKS and D3DDDICB_*


@dataclass
class D3DDDICB_ALLOCATE:
    private_driver_data: bytes = b""
    rt_resource: int = 0  # hResource: the runtime's resource handle, 0 = device-owned
    allocation_info: list[D3DDDI_ALLOCATIONINFO] = field(default_factory=list)  # kmd.structs
    km_resource: int = 0  # out: hKMResource (AC-3)


@dataclass
class D3DDDICB_DEALLOCATE:
    rt_resource: int = 0
    allocations: list[int] = field(default_factory=list)


@dataclass
class D3DDDICB_LOCK:
    """``pfnLockCb``'s argument. With ``Discard`` the kernel may return a new instance handle in
    ``allocation`` (LCB-5)."""

    allocation: int
    flags: int  # D3DDDICB_LOCKFLAGS (kmd.flags)
    pages: list[int] | None = None
    private_driver_data: int = 0
    data: Any = None  # out: CPU pointer


@dataclass
class D3DDDICB_UNLOCK:
    allocations: list[int]


@dataclass
class D3DDDICB_RENDER:
    """``pfnRenderCb``: submit the command buffer and allocation list; the runtime hands back the
    next buffers (RCB-2)."""

    command_buffer: Any
    command_length: int
    allocation_list: list[Any]
    flags: int = 0
    context: int = 0
    new_command_buffer: Any = None  # out
    new_command_buffer_size: int = 0  # in/out (RCB-3)
    new_allocation_list: list[Any] | None = None  # out
    new_allocation_list_size: int = 0  # in/out
    queued_buffer_count: int = 0  # out
    fence: int = 0  # out, emulator: the submission fence (lets tests wait for the GPU)


@dataclass
class D3DDDI_DEVICECALLBACKS:
    """The runtime's callbacks, handed to the driver in ``CreateDevice``.

    Every callback is ``await pfn_x_cb(runtime_device, args) -> HRESULT`` where ``runtime_device``
    is ``D3DDDIARG_CREATEDEVICE.runtime_device``. The runtime forwards each to the kernel's
    ``D3DKMT*`` thunk (``kmd``) and maps the ``NTSTATUS`` to the documented ``HRESULT``
    (``kmd.ntstatus_to_hresult_for_callback``):

    * ``pfn_allocate_cb(D3DDDICB_ALLOCATE)``: ``allocation_info[i].private_driver_data`` is the
      miniport's private format (``kmd.AllocationDesc``); fills ``allocation_info[i].allocation``
      and, when ``rt_resource`` is non-zero, ``km_resource``. S_OK, E_INVALIDARG, E_OUTOFMEMORY,
      D3DERR_OUTOFVIDEOMEMORY, D3DDDIERR_DEVICEREMOVED.
    * ``pfn_deallocate_cb(D3DDDICB_DEALLOCATE)``: S_OK, E_INVALIDARG.
    * ``pfn_lock_cb(D3DDDICB_LOCK)``: ``flags`` are ``kmd.D3DDDICB_LOCKFLAGS``; fills ``data`` (a
      ``kmd.CpuPointer``) and, after a renaming Discard, a *new* instance handle in
      ``allocation`` (LCB-5). S_OK, D3DERR_WASSTILLDRAWING (busy + DonotWait, or a Discard whose
      rename failed), D3DERR_NOTAVAILABLE, D3DDDIERR_CANTEVICTPINNEDALLOCATION, E_INVALIDARG,
      D3DDDIERR_DEVICEREMOVED. May block the calling thread until the GPU is done.
    * ``pfn_unlock_cb(D3DDDICB_UNLOCK)``: S_OK, E_INVALIDARG.
    * ``pfn_render_cb(D3DDDICB_RENDER)``: ``command_buffer`` is a list of the miniport's command
      records (``kmd.CmdDraw`` …), ``allocation_list`` a list of ``kmd.D3DDDI_ALLOCATIONLIST``;
      hands back ``new_command_buffer`` (an empty list), ``new_command_buffer_size`` (its capacity
      in bytes), ``new_allocation_list`` (empty), ``new_allocation_list_size`` and the DMA
      buffer's ``fence`` (RCB-2, RCB-3). S_OK, E_INVALIDARG, D3DDDIERR_CANTRENDERLOCKEDALLOCATION,
      D3DDDIERR_INVALIDHANDLE, D3DDDIERR_INVALIDINSTRUCTION, D3DDDIERR_INVALIDUSERBUFFER,
      D3DDDIERR_PRIVILEGEDINSTRUCTION, D3DERR_OUTOFVIDEOMEMORY, D3DDDIERR_DEVICEREMOVED.

    The runtime serialises callbacks per device (umd-runtime Q-12): at DDI ≥ 0xB LockAsync's
    ``pfn_lock_cb`` on the app thread may overlap a worker DDI, and the two callbacks then take
    turns rather than overlap inside the kernel.
    """

    pfn_allocate_cb: DDI
    pfn_deallocate_cb: DDI
    pfn_lock_cb: DDI
    pfn_unlock_cb: DDI
    pfn_render_cb: DDI
