""":class:`ReferenceDevice`: the parts put together, its function table, the legacy hooks."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from ..ddi import D3DDDI_DEVICEFUNCS, D3DDDIARG_CREATEDEVICE
from ._config import ASYNC_TRIPLE, DDI_NAMES
from ._lock import LockPath
from ._policy import LEGACY_HOOKS, LegacyHooks
from ._resources import ResourcePath

if TYPE_CHECKING:
    from ._driver import ReferenceDriver


class ReferenceDevice(ResourcePath, LockPath):
    """One driver device (``hDevice``): its DDIs and its per-device shared state.

    Decisions are the policy's (``device.policy``, a :class:`~umd.DriverPolicy`, chosen by the
    driver): change one by subclassing the policy. Subclass the device to override a whole
    ``pfn_*`` DDI (decorate it with :func:`~umd.ddi_entry`), :meth:`guard` (what the lock is)
    or :meth:`submit`; read state with :attr:`view` (race-checked) under :meth:`locked`.

    The old ``_``-prefixed hooks (``_accepts_nooverwrite`` …, see ``LEGACY_HOOKS``) still work
    when a subclass defines them — with a DeprecationWarning at class creation."""

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        old = [n for n in LEGACY_HOOKS if n in cls.__dict__]
        if old:
            warnings.warn(
                f"{cls.__name__}.{old[0]} is a deprecated device hook: override "
                f"umd.DriverPolicy.{LEGACY_HOOKS[old[0]]} and pass the policy to the driver",
                DeprecationWarning, stacklevel=2,
            )

    def __init__(self, driver: ReferenceDriver, args: D3DDDIARG_CREATEDEVICE, serial: int) -> None:
        super().__init__(driver, args, serial)
        old = tuple(n for n in LEGACY_HOOKS if hasattr(type(self), n))
        if old:
            self.policy = LegacyHooks(self.policy, old)  # type: ignore[assignment]

    def device_funcs(self) -> D3DDDI_DEVICEFUNCS:
        """The ``D3DDDI_DEVICEFUNCS`` of this device: the class's ``pfn_*`` functions, unbound
        (the runtime passes the device as ``hDevice``), optional ones per ``config.implements``
        (LA-1)."""
        cls = type(self)
        table = {f"pfn_{n}": getattr(cls, f"pfn_{n}") for n in DDI_NAMES}
        for n in ASYNC_TRIPLE:
            if n not in self.config.implements:
                table[f"pfn_{n}"] = None
        return D3DDDI_DEVICEFUNCS(**table)
