"""wddmemu's ``runtime`` layer: the emulated Direct3D 9 runtime.

The application-facing device API (:func:`open_adapter`, :class:`Adapter`, :class:`Device`,
:class:`Resource`, :class:`LockedView`), the MP layer's command queue and worker, the
DDI-version gate and the ``pfn*Cb`` callbacks the driver calls. It reaches the driver only
through the ``D3DDDI_DEVICEFUNCS`` table (``umd.ddi``) and the kernel only through the
``D3DKMT*`` thunks (``kmd``). See ``docs/runtime.md`` for which module holds which layer.

Seeded runtime bugs are :class:`RuntimeHooks` subclasses registered in
:data:`RUNTIME_BUG_REGISTRY` (``RUNTIME_BUGS`` maps each name to its summary).

The engine it runs on lives in :mod:`vthreads`. Its names (``runtime.SharedCell``,
``runtime.Mutex``, ``runtime.checkpoint``, ``runtime.log``…) used to be exported from here and
still are, with a ``DeprecationWarning``: import them from ``vthreads``.
"""

from __future__ import annotations

import warnings
from typing import Any

import vthreads as _vthreads

from . import d3d9
from ._bugs import RUNTIME_BUG_REGISTRY, RUNTIME_BUGS, hooks_for
from ._callbacks import RuntimeCallbacks
from ._config import DeviceConfig, DeviceStatistics
from ._ddi import innermost_ddi
from ._device import Adapter, Device, open_adapter
from ._hooks import RuntimeHooks
from ._lock import LockedView
from ._oracle import DrawRecord
from ._resource import Resource

__all__ = [
    "RUNTIME_BUGS",
    "RUNTIME_BUG_REGISTRY",
    "Adapter",
    "Device",
    "DeviceConfig",
    "DeviceStatistics",
    "DrawRecord",
    "LockedView",
    "Resource",
    "RuntimeCallbacks",
    "RuntimeHooks",
    "d3d9",
    "hooks_for",
    "innermost_ddi",
    "open_adapter",
]

#: names that moved to :mod:`vthreads` (the engine): still reachable here, with a warning
_MOVED_TO_VTHREADS = frozenset(_vthreads.__all__)


def __getattr__(name: str) -> Any:
    # Not a way around an import cycle (vthreads is below this package and already imported):
    # this only keeps code written against the old names working while telling it where the
    # names live now.
    if name in _MOVED_TO_VTHREADS:
        warnings.warn(
            f"runtime.{name} moved to vthreads.{name}: import it from vthreads",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(_vthreads, name)
    raise AttributeError(f"module 'runtime' has no attribute {name!r}")
