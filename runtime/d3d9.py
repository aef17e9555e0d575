"""The application-facing Direct3D 9 vocabulary the emulated runtime speaks (``d3d9.h``).

Scenarios lock with ``D3DLOCK_*`` flags, create resources with ``D3DUSAGE_*`` and ``D3DPOOL_*``,
and get failures as :class:`D3DError` carrying the ``HRESULT``.
"""

from __future__ import annotations

import kmd

D3DLOCK_READONLY = 0x00000010
D3DLOCK_NOSYSLOCK = 0x00000800
D3DLOCK_NOOVERWRITE = 0x00001000
D3DLOCK_DISCARD = 0x00002000
D3DLOCK_DONOTWAIT = 0x00004000
D3DLOCK_NO_DIRTY_UPDATE = 0x00008000
D3DLOCK_VALID = (
    D3DLOCK_READONLY | D3DLOCK_NOSYSLOCK | D3DLOCK_NOOVERWRITE | D3DLOCK_DISCARD
    | D3DLOCK_DONOTWAIT | D3DLOCK_NO_DIRTY_UPDATE
)

D3DUSAGE_RENDERTARGET = 0x00000001
D3DUSAGE_WRITEONLY = 0x00000008
D3DUSAGE_DYNAMIC = 0x00000200

D3DPOOL_DEFAULT = 0
D3DPOOL_MANAGED = 1
D3DPOOL_SYSTEMMEM = 2

D3DPT_POINTLIST = 1
D3DPT_TRIANGLELIST = 4

D3D_OK = 0
#: the runtime's own validation failure (d3d9.h MAKE_D3DHRESULT(2156))
D3DERR_INVALIDCALL = 0x8876086C
D3DERR_WASSTILLDRAWING = int(kmd.D3DERR_WASSTILLDRAWING)
D3DERR_OUTOFVIDEOMEMORY = int(kmd.D3DERR_OUTOFVIDEOMEMORY)
D3DERR_DEVICEREMOVED = int(kmd.D3DDDIERR_DEVICEREMOVED)
#: what the runtime returns to the application when the driver's S_OK came with an output it
#: cannot use (an ``hResource`` that is not a handle)
D3DERR_DRIVERINTERNALERROR = int(kmd.D3DERR_DRIVERINTERNALERROR)


class D3DError(Exception):
    """A Direct3D call failed with ``hr``."""

    def __init__(self, hr: int, message: str = "") -> None:
        self.hr = int(hr) & 0xFFFFFFFF
        self.name = kmd.hresult_name(self.hr)
        super().__init__(f"{self.name} ({kmd.hex32(self.hr)}){': ' + message if message else ''}")
