"""wddmemu's ``umd`` layer: the reference Direct3D 9 user-mode display driver and its named
buggy variants. See ``docs/umd.md``.

The runtime loads a driver — any object with ``async open_adapter(D3DDDIARG_OPENADAPTER)`` —
and talks to it only through the ``D3DDDI_DEVICEFUNCS`` table its CreateDevice returns; the
driver reaches the kernel only through the ``D3DDDI_DEVICECALLBACKS`` it was handed
(``umd.ddi`` defines both seams).

    import umd
    driver = umd.ReferenceDriver(umd.DriverConfig(driver_version=0xB))
    buggy = umd.make_driver("track-in-lockasync")
"""

from .reference import (
    ASYNC_TRIPLE,
    HEAP_COSTS,
    DriverConfig,
    LockedRange,
    ReferenceDevice,
    ReferenceDriver,
)
from .variants import VARIANTS, VariantInfo, make_driver

__all__ = [
    "ASYNC_TRIPLE",
    "HEAP_COSTS",
    "VARIANTS",
    "DriverConfig",
    "LockedRange",
    "ReferenceDevice",
    "ReferenceDriver",
    "VariantInfo",
    "make_driver",
]
