"""The ``umd`` layer: the reference Direct3D 9 user-mode display driver, its public
extension API and its named buggy variants. See ``docs/umd.md``.

The runtime loads a driver — any object with ``async open_adapter(D3DDDIARG_OPENADAPTER)`` —
and talks to it only through the ``D3DDDI_DEVICEFUNCS`` table its CreateDevice returns; the
driver reaches the kernel only through the ``D3DDDI_DEVICECALLBACKS`` it was handed
(``umd.ddi`` defines both seams).

    import umd
    driver = umd.ReferenceDriver(umd.DriverConfig(driver_version=0xB))
    buggy = umd.make_driver("track-in-lockasync")

    class NeverNoOverwrite(umd.DriverPolicy):          # change one decision (LA-15)
        def accepts_nooverwrite(self, device, sub):
            return False
    mine = umd.ReferenceDriver(policy=NeverNoOverwrite())
"""

from .reference import (
    ASYNC_TRIPLE,
    HEAP_COSTS,
    CommandBuffer,
    Cookie,
    DeviceView,
    DriverConfig,
    DriverPolicy,
    LockedRange,
    LockRecord,
    ReferenceDevice,
    ReferenceDriver,
    Resource,
    StreamBinding,
    Subresource,
    Tracking,
    ddi_entry,
    invalid_ddi_field,
)
from .variants import VARIANT_REGISTRY, VARIANTS, VariantInfo, make_driver

__all__ = [
    "ASYNC_TRIPLE",
    "HEAP_COSTS",
    "VARIANTS",
    "VARIANT_REGISTRY",
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
    "VariantInfo",
    "ddi_entry",
    "invalid_ddi_field",
    "make_driver",
]
