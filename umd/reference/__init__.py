"""The reference user-mode display driver: the documented LockAsync / UnlockAsync / Rename
contract, implemented on the emulator's engine. Read ``docs/umd.md`` first.

A driver is an object with ``async open_adapter(D3DDDIARG_OPENADAPTER) -> HRESULT``.
:class:`ReferenceDriver` fills the adapter table; its ``pfn_create_device`` builds one
:class:`ReferenceDevice` per runtime device and hands back ``D3DDDI_DEVICEFUNCS`` whose entries
are the device class's ``pfn_*`` functions. The runtime calls them as ``await pfn(hDevice,
pData)``, ``hDevice`` being the device object itself, exactly like the C signature ``(HANDLE
hDevice, D3DDDIARG_x *pData)``.

State and threads. At DDI version >= 0xB the runtime calls LockAsync / UnlockAsync on the
application thread while its worker thread is inside another DDI of the same device (MP-2, S-5).
Everything the two can both touch lives in engine :class:`vthreads.SharedCell` s (so the
happens-before checker sees every access) and is only touched while holding the device lock
(``umd.devN.lock``, taken with ``device.locked()``).

Lock order (the only one): **driver mutex → runtime callback mutex**. The driver calls the
runtime's callbacks with or without its mutex held, never the other way round: the runtime's
callbacks never call into the driver. The mutex is held across a callback only when that
callback cannot wait for anything but the GPU (pfnRenderCb, pfnUnlockCb, and pfnLockCb with
``IgnoreSync|DonotWait`` or ``Discard``; pfnAllocateCb and pfnDeallocateCb are made without
it): the GPU finishes already-submitted DMA buffers without any driver lock, so such a wait
always ends and cannot close a cycle. Waiting locks (NotifyOnly, plain and synchronous waiting
locks) drop the mutex around pfnLockCb so the worker keeps encoding meanwhile; they claim the
subresource first, so a second locker gets E_INVALIDARG rather than a second kernel lock. The
one exception is the LCB-6 retry ``Discard|NoExistingReference`` (it may wait for the current
instance to go idle): "no reference queued" must stay true until the kernel has acted on it, so
the mutex stays held; again only GPU progress ends that wait.

Handles: the driver's resource handles are ``0x00D00000 + n``, cookies ``0x00C00000 + n``
(Q-4: opaque to the runtime, mapping to the new instance's kernel handle), both per device.

The modules, by responsibility: ``_config`` (codes, :class:`DriverConfig`, :data:`HEAP_COSTS`),
``_records`` (the records), ``_policy`` (:class:`DriverPolicy`), ``_entry`` (:func:`ddi_entry`),
``_state`` (cells, lock, heap, callbacks), ``_view`` (:class:`DeviceView`), ``_cmdbuf``
(encoding and pfnRenderCb), ``_lockasync`` (LockAsync/UnlockAsync/Rename), ``_lock``
(Lock/Unlock), ``_resources`` (create/destroy, streams, draws, flush), ``_device``,
``_driver``.
"""

from __future__ import annotations

import warnings
from typing import Any

from ._config import ASYNC_TRIPLE, HEAP_COSTS, DriverConfig
from ._device import ReferenceDevice
from ._driver import ReferenceDriver
from ._entry import ddi_entry, invalid_ddi_field
from ._policy import DriverPolicy
from ._records import (
    CommandBuffer,
    Cookie,
    LockedRange,
    LockRecord,
    Resource,
    StreamBinding,
    Subresource,
    Tracking,
)
from ._view import DeviceView

__all__ = [
    "ASYNC_TRIPLE",
    "HEAP_COSTS",
    "CommandBuffer",
    "Cookie",
    "DeviceView",
    "DriverConfig",
    "DriverPolicy",
    "LockRecord",
    "LockedRange",
    "ReferenceDevice",
    "ReferenceDriver",
    "Resource",
    "StreamBinding",
    "Subresource",
    "Tracking",
    "ddi_entry",
    "invalid_ddi_field",
]


def __getattr__(name: str) -> Any:
    # ``umd.reference.ddi`` was the entry decorator before it worked for any device class
    if name == "ddi":
        warnings.warn("umd.reference.ddi is umd.ddi_entry now", DeprecationWarning,
                      stacklevel=2)
        return ddi_entry
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
