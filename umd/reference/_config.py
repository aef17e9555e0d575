"""Constants, codes and :class:`DriverConfig`: what every part of the reference driver shares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import kmd
import kmd.structs
from kmd.flags import int_masks

from ..ddi import D3D_UMD_INTERFACE_VERSION_VISTA, D3DDDI_LOCKASYNCFLAGS, D3DDDI_LOCKFLAGS

if TYPE_CHECKING:
    from ._policy import DriverPolicy

#: the flag words' bits as plain ints (``LF.Discard == 0x80``): ``int & IntFlag`` builds an enum
#: member per operation, several per DDI call; the words reach the kernel and the trace as ints
LF = int_masks(kmd.D3DDDICB_LOCKFLAGS)
LAF = int_masks(D3DDDI_LOCKASYNCFLAGS)
LKF = int_masks(D3DDDI_LOCKFLAGS)

S_OK = int(kmd.S_OK)
E_OUTOFMEMORY = int(kmd.E_OUTOFMEMORY)
E_INVALIDARG = int(kmd.E_INVALIDARG)
E_NOTIMPL = int(kmd.E_NOTIMPL)
WASSTILLDRAWING = int(kmd.D3DDDIERR_WASSTILLDRAWING)  # == D3DERR_WASSTILLDRAWING
DEVICEREMOVED = int(kmd.D3DDDIERR_DEVICEREMOVED)

#: the optional DDIs of LA-1 (names of ``D3DDDI_DEVICEFUNCS`` entries without the ``pfn_``)
ASYNC_TRIPLE: tuple[str, ...] = ("lock_async", "unlock_async", "rename")

#: what each piece of driver bookkeeping costs in the device's heap (``DriverConfig.heap_bytes``).
#: A real driver mallocs these; when the heap is exhausted the DDI that needed one returns
#: ``E_OUTOFMEMORY`` ("could not allocate the memory it needed") with nothing changed.
#:
#: ``descriptor``: the per-instance state the driver programs draws with. Every subresource has
#: one for its current instance; Rename and a renaming sync Lock build one for the new instance,
#: and the old one lives on until the command buffer whose commands were encoded against it is
#: submitted. ``unlock``: the transient ``D3DDDICB_UNLOCK`` handle array of UnlockAsync/Unlock.
HEAP_COSTS: dict[str, int] = {
    "resource": 128,
    "descriptor": 64,
    "lock": 64,
    "cookie": 64,
    "unlock": 32,
}

RESOURCE_BASE = 0x00D00000
COOKIE_BASE = 0x00C00000
CMD_BYTES = kmd.structs.COMMAND_HEADER_BYTES  # one CmdDraw

#: every DDI of ``D3DDDI_DEVICEFUNCS``, without the ``pfn_``
DDI_NAMES = (
    "create_resource",
    "destroy_resource",
    "lock",
    "unlock",
    "set_stream_source",
    "draw_primitive",
    "flush",
    "present",
    "destroy_device",
    "lock_async",
    "unlock_async",
    "rename",
)


#: code -> its ``hr_fields`` (the few codes a driver returns, over and over)
_HR_FIELDS: dict[int, dict[str, str]] = {}


def hr_fields(hr: int) -> dict[str, str]:
    """The ``hr``/``hr_name`` pair every trace event carries. The dict may be shared: splat it
    (``**hr_fields(hr)``), never change it."""
    if hr.__class__ is not int:  # an HRESULT member is named as one: not cached by value
        return {"hr": kmd.hex32(hr), "hr_name": kmd.status_name(hr)}
    fields = _HR_FIELDS.get(hr)
    if fields is None:
        fields = {"hr": kmd.hex32(hr), "hr_name": kmd.status_name(hr)}
        if len(_HR_FIELDS) < 1024:  # a driver under test may return any int: stay bounded
            _HR_FIELDS[hr] = fields
    return fields


def failed(hr: int) -> bool:
    return (hr & 0xFFFFFFFF if hr.__class__ is int else int(hr) & 0xFFFFFFFF) >= 0x80000000


@dataclass(frozen=True)
class DriverConfig:
    """How a :class:`ReferenceDriver` presents itself and sizes its buffers.

    ``driver_version`` goes to ``D3DDDIARG_OPENADAPTER.DriverVersion`` (DV-1): the VISTA value
    0xC gets reentrant LockAsync/UnlockAsync (LA-3, UA-5); 0x0A exercises the non-reentrant path
    (DV-3). ``implements`` names which of the optional DDIs exist (LA-1): ``()`` is "a driver
    without LockAsync" (no MP layer, MP-4); dropping just one of the three is for LA-1 tests.
    ``command_buffer_size`` (bytes) and ``allocation_list_size`` (entries) are what the driver
    starts with and asks the runtime for at each submit (RCB-3: it uses what it gets).
    ``heap_bytes`` is the driver's bookkeeping budget per device (:data:`HEAP_COSTS`).
    ``policy`` is the :class:`~umd.DriverPolicy` its devices consult (None: the reference
    policy); ``ReferenceDriver(config, policy=...)`` overrides it."""

    driver_version: int = D3D_UMD_INTERFACE_VERSION_VISTA
    implements: tuple[str, ...] = ASYNC_TRIPLE
    command_buffer_size: int = 4096
    allocation_list_size: int = 64
    heap_bytes: int = 1 << 20
    policy: DriverPolicy | None = None

    def __post_init__(self) -> None:
        unknown = [n for n in self.implements if n not in ASYNC_TRIPLE]
        if unknown:
            raise ValueError(
                f"unknown optional ddi {unknown[0]!r}: implements takes names from {ASYNC_TRIPLE}"
            )
        ordered = tuple(n for n in ASYNC_TRIPLE if n in self.implements)
        object.__setattr__(self, "implements", ordered)
        if not 0 <= self.driver_version <= 0xFFFFFFFF:
            raise ValueError("driver_version must be a 32-bit unsigned int")
        if self.command_buffer_size < CMD_BYTES:
            raise ValueError(f"command_buffer_size must hold one command ({CMD_BYTES} bytes)")
        if self.allocation_list_size < 1:
            raise ValueError("allocation_list_size must be >= 1")
        if self.heap_bytes < 0:
            raise ValueError("heap_bytes must be >= 0")
