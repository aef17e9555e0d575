"""A runtime resource and the ``CreateResource`` arguments the runtime builds for it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from umd.ddi import (
    D3DDDI_POOL,
    D3DDDI_RESOURCEFLAGS,
    D3DDDI_SURFACEINFO,
    D3DDDIARG_CREATERESOURCE,
)

from . import d3d9

if TYPE_CHECKING:
    from ._lock import LockState

PAGE = 4096

#: resource kind → the D3DDDI_RESOURCEFLAGS bit that names it
_KIND_FLAGS = {
    "vb": D3DDDI_RESOURCEFLAGS.VertexBuffer,
    "ib": D3DDDI_RESOURCEFLAGS.IndexBuffer,
    "texture": D3DDDI_RESOURCEFLAGS.Texture,
    "primary": D3DDDI_RESOURCEFLAGS.Primary | D3DDDI_RESOURCEFLAGS.RenderTarget,
}


@dataclass(eq=False)
class Resource:
    """A runtime resource (vertex/index buffer, surface, texture)."""

    handle: int
    kind: str
    size: int
    usage: int
    pool: int
    driver_handle: int = 0
    system_mem: bytearray | None = None
    queued_refs: int = 0
    #: bytes of each subresource (one for buffers and surfaces, one per mip level for textures)
    levels: tuple[int, ...] = ()
    #: outstanding locks, by subresource index
    locks: dict[int, LockState] = field(default_factory=dict)
    last_cookie: int = 0
    destroyed: bool = False
    #: the data oracle's shadow of what the application wrote (runtime/_oracle.py)
    shadow: bytearray = field(default_factory=bytearray)
    defined: bytearray = field(default_factory=bytearray)
    #: Discard locks so far: the generation of the contents a draw snapshotted
    discards: int = 0
    #: a draw reading this resource was queued since its last synchronous lock: a draw that
    #: may still sit in the runtime's queue or in the driver's unsubmitted command buffer
    #: (``LockPath.choose``: a system-memory lock then takes the synchronous path, LK-10)
    drawn_since_sync: bool = False

    @property
    def dynamic(self) -> bool:
        return bool(self.usage & d3d9.D3DUSAGE_DYNAMIC)

    @property
    def sysmem(self) -> bool:
        return self.pool == d3d9.D3DPOOL_SYSTEMMEM

    def forget_contents(self) -> None:
        """A Discard lock: the old contents are gone, so the oracle's shadow is undefined until
        the application writes again; draws issued before read the old contents, which later
        writes cannot touch (``discards`` counts the generations)."""
        self.discards += 1
        self.shadow[:] = bytes(self.size)
        self.defined[:] = bytes(self.size)

    @property
    def buffer(self) -> bool:
        """Vertex and index buffers: the only resources draws read (and the data oracle
        shadows)."""
        return self.kind in ("vb", "ib")


def create_resource_args(res: Resource, *, width: int = 0, height: int = 1, bpp: int = 1,
                         mips: list[tuple[int, int]] | None = None) -> D3DDDIARG_CREATERESOURCE:
    """The ``CreateResource`` arguments for ``res``: its flags, one surface per subresource and,
    for the SYSTEMMEM pool, the runtime-allocated system memory (pSysMem, AC-6), a multiple of
    the page size (CA-16). Sets ``res.system_mem``."""
    flags = _KIND_FLAGS.get(res.kind, 0)
    for usage, flag in ((d3d9.D3DUSAGE_DYNAMIC, D3DDDI_RESOURCEFLAGS.Dynamic),
                        (d3d9.D3DUSAGE_WRITEONLY, D3DDDI_RESOURCEFLAGS.WriteOnly),
                        (d3d9.D3DUSAGE_RENDERTARGET, D3DDDI_RESOURCEFLAGS.RenderTarget)):
        if res.usage & usage:
            flags |= flag
    size = res.size
    if mips:
        surfaces = [D3DDDI_SURFACEINFO(width=w, height=h, bytes_per_pixel=bpp, pitch=w * bpp)
                    for w, h in mips]
    else:
        surfaces = [D3DDDI_SURFACEINFO(width=width or size, height=height if width else 1,
                                       bytes_per_pixel=bpp if width else 1,
                                       pitch=(width * bpp) if width else size)]
    if res.pool == d3d9.D3DPOOL_SYSTEMMEM:
        res.system_mem = bytearray(-(-size // PAGE) * PAGE)
        surfaces[0].system_mem = res.system_mem
        ddipool = D3DDDI_POOL.SYSTEMMEM
    else:
        ddipool = D3DDDI_POOL.VIDEOMEMORY
    return D3DDDIARG_CREATERESOURCE(rt_resource=res.handle, pool=ddipool, flags=int(flags),
                                    surfaces=surfaces)
