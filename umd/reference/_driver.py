""":class:`ReferenceDriver` and its adapter: OpenAdapter, CreateDevice, CloseAdapter."""

from __future__ import annotations

from typing import Any

import vthreads as vt

from ..ddi import (
    D3DDDI_ADAPTERFUNCS,
    D3DDDI_DEVICECALLBACKS,
    D3DDDIARG_CREATEDEVICE,
    D3DDDIARG_OPENADAPTER,
)
from ._config import E_INVALIDARG, S_OK, DriverConfig
from ._device import ReferenceDevice
from ._policy import DriverPolicy


class _Adapter:
    """The driver's adapter handle (``D3DDDIARG_OPENADAPTER.hAdapter`` out)."""

    def __init__(self, driver: ReferenceDriver) -> None:
        self.driver = driver
        self.devices: list[ReferenceDevice] = []

    @staticmethod
    async def pfn_create_device(adapter: Any, args: Any = None) -> int:
        """CreateDevice: a new :class:`ReferenceDevice` in ``args.device`` and its table in
        ``args.device_funcs``. S_OK; E_INVALIDARG (not this driver's adapter, bad args)."""
        if not isinstance(adapter, _Adapter) or not isinstance(args, D3DDDIARG_CREATEDEVICE):
            return E_INVALIDARG
        if not isinstance(args.callbacks, D3DDDI_DEVICECALLBACKS):
            return E_INVALIDARG
        drv = adapter.driver
        drv._serial += 1
        dev = drv.device_class(drv, args, drv._serial)
        adapter.devices.append(dev)
        args.device = dev
        args.device_funcs = dev.device_funcs()
        vt.log("umd.device.create", device=dev.name, driver_version=drv.config.driver_version,
               implements=list(drv.config.implements), device_class=type(dev).__name__)
        return S_OK

    @staticmethod
    async def pfn_close_adapter(adapter: Any, args: Any = None) -> int:
        return S_OK if isinstance(adapter, _Adapter) else E_INVALIDARG


class ReferenceDriver:
    """The reference user-mode driver (see ``docs/umd.md``).

    ``ReferenceDriver(config)`` is what the runtime loads: it calls :meth:`open_adapter`.
    To change a decision, pass a :class:`~umd.DriverPolicy` subclass instance as ``policy``
    (or in ``config.policy``; the argument wins); to change a whole DDI, subclass
    :class:`ReferenceDevice` and pass it as ``device_class`` (or set ``device_class`` /
    ``policy`` on a subclass of this)."""

    device_class: type[ReferenceDevice] = ReferenceDevice
    #: the decisions every device of this driver consults (``device.policy``)
    policy: DriverPolicy = DriverPolicy()

    def __init__(self, config: DriverConfig | None = None, *,
                 device_class: type[ReferenceDevice] | None = None,
                 policy: DriverPolicy | None = None) -> None:
        self.config = config if config is not None else DriverConfig()
        if device_class is not None:
            self.device_class = device_class
        if policy is None:
            policy = self.config.policy
        if policy is not None:
            if not isinstance(policy, DriverPolicy):
                raise TypeError(f"policy must be a umd.DriverPolicy instance, not {policy!r}")
            self.policy = policy
        self._serial = 0  # device names; MP-3: the only cross-device state, never awaited on
        self.adapters: list[_Adapter] = []

    async def open_adapter(self, args: D3DDDIARG_OPENADAPTER) -> int:
        """OpenAdapter: fill ``adapter_funcs`` and ``driver_version`` (DV-1, DV-4) and return
        the driver's adapter handle in ``adapter``. S_OK; E_INVALIDARG for a bad argument."""
        if not isinstance(args, D3DDDIARG_OPENADAPTER):
            return E_INVALIDARG
        adapter = _Adapter(self)
        self.adapters.append(adapter)
        args.adapter = adapter
        args.adapter_funcs = D3DDDI_ADAPTERFUNCS(
            pfn_create_device=_Adapter.pfn_create_device,
            pfn_close_adapter=_Adapter.pfn_close_adapter,
        )
        args.driver_version = self.config.driver_version
        return S_OK

    @property
    def devices(self) -> list[ReferenceDevice]:
        """Every device this driver created, in creation order (for tests and reports)."""
        return [d for a in self.adapters for d in a.devices]

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.device_class.__name__} "
                f"{type(self.policy).__name__} version=0x{self.config.driver_version:X}>")

