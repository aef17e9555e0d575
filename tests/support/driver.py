"""A test rig for driver-level tests: a kernel, the runtime's real callbacks over it, a driver
and one device — without the runtime's MP layer, so each test makes exactly the DDI calls it
means to, on the threads it means to, and can count and inspect every callback.

    def test_x():
        async def prog(r: Rig) -> None:
            vb = await r.vb(256)
            hr, la = await r.lock_async(vb, LAF.Discard)
        res = run(prog)

``run`` runs ``prog`` in a fresh :class:`runtime.Engine` and returns the ``RunResult`` (already
checked unless ``check=False``) with the rig on ``result.rig``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import kmd
import umd
import vthreads as vt
from runtime._callbacks import RuntimeCallbacks
from umd.ddi import (
    D3DDDI_DEVICECALLBACKS,
    D3DDDI_LOCKASYNCFLAGS,
    D3DDDI_LOCKFLAGS,
    D3DDDI_POOL,
    D3DDDI_RESOURCEFLAGS,
    D3DDDI_SURFACEINFO,
    D3DDDIARG_CREATEDEVICE,
    D3DDDIARG_CREATERESOURCE,
    D3DDDIARG_DESTROYRESOURCE,
    D3DDDIARG_DRAWPRIMITIVE,
    D3DDDIARG_LOCK,
    D3DDDIARG_LOCKASYNC,
    D3DDDIARG_OPENADAPTER,
    D3DDDIARG_PRESENT,
    D3DDDIARG_RENAME,
    D3DDDIARG_SETSTREAMSOURCE,
    D3DDDIARG_UNLOCK,
    D3DDDIARG_UNLOCKASYNC,
    D3DDDIRANGE,
)

LAF = D3DDDI_LOCKASYNCFLAGS
LKF = D3DDDI_LOCKFLAGS
RF = D3DDDI_RESOURCEFLAGS
CBF = kmd.D3DDDICB_LOCKFLAGS

S_OK = int(kmd.S_OK)
E_OUTOFMEMORY = int(kmd.E_OUTOFMEMORY)
E_INVALIDARG = int(kmd.E_INVALIDARG)
E_NOTIMPL = int(kmd.E_NOTIMPL)
WASSTILLDRAWING = int(kmd.D3DDDIERR_WASSTILLDRAWING)
DEVICEREMOVED = int(kmd.D3DDDIERR_DEVICEREMOVED)
CANTRENDERLOCKED = int(kmd.D3DDDIERR_CANTRENDERLOCKEDALLOCATION)

DYNAMIC_VB = int(RF.Dynamic | RF.VertexBuffer | RF.WriteOnly)


def pattern(tag: int, n: int) -> bytes:
    """``n`` bytes that differ for every tag."""
    return bytes((tag * 31 + i * 7) % 251 for i in range(n))


@dataclass
class Call:
    """One callback the driver made: its name, the argument object and the HRESULT."""

    name: str
    args: Any
    hr: int
    flags: int = 0
    allocation: int = 0  # pfnLockCb: the handle asked for
    thread: str = ""


class Rig:
    """Kernel + runtime callbacks + driver + one device."""

    def __init__(self, driver: Any, kernel_config: kmd.KernelConfig | None = None) -> None:
        self.driver = driver
        self.kernel_config = kernel_config or kmd.KernelConfig()
        self.calls: list[Call] = []
        self.kernel: kmd.Kernel
        self.dev: Any = None
        self.funcs: Any = None
        self._rt_handles = 0x1000

    async def open(self) -> Rig:
        self.kernel = kmd.Kernel(self.kernel_config)
        oa_k = kmd.D3DKMT_OPENADAPTER()
        assert await kmd.D3DKMTOpenAdapter(self.kernel, oa_k) == kmd.STATUS_SUCCESS
        cd_k = kmd.D3DKMT_CREATEDEVICE(adapter=oa_k.adapter)
        assert await kmd.D3DKMTCreateDevice(self.kernel, cd_k) == kmd.STATUS_SUCCESS
        cc = kmd.D3DKMT_CREATECONTEXT(device=cd_k.device)
        assert await kmd.D3DKMTCreateContext(self.kernel, cc) == kmd.STATUS_SUCCESS
        self.km_device = cd_k.device
        # the runtime's real callbacks, over a stand-in for its Device
        self.rt_device = SimpleNamespace(handle=object(), name="rig", km_device=cd_k.device,
                                         km_context=cc.context, kernel=self.kernel)
        self.rcb = RuntimeCallbacks(self.rt_device)  # type: ignore[arg-type]
        oa = D3DDDIARG_OPENADAPTER(adapter="rig")
        assert await self.driver.open_adapter(oa) == S_OK
        self.driver_version = oa.driver_version
        cd = D3DDDIARG_CREATEDEVICE(runtime_device=self.rt_device.handle,
                                    callbacks=self._counting(self.rcb.table()))
        assert await oa.adapter_funcs.pfn_create_device(oa.adapter, cd) == S_OK
        self.dev, self.funcs = cd.device, cd.device_funcs
        return self

    def _counting(self, table: D3DDDI_DEVICECALLBACKS) -> D3DDDI_DEVICECALLBACKS:
        def wrap(name: str, fn: Callable[..., Awaitable[int]]) -> Callable[..., Awaitable[int]]:
            async def cb(h: Any, args: Any) -> int:
                flags = int(getattr(args, "flags", 0) or 0)
                alloc = int(getattr(args, "allocation", 0) or 0)
                hr = int(await fn(h, args))
                self.calls.append(Call(name, args, hr, flags, alloc, vt.current_thread().name))
                return hr

            return cb

        return D3DDDI_DEVICECALLBACKS(
            pfn_allocate_cb=wrap("allocate", table.pfn_allocate_cb),
            pfn_deallocate_cb=wrap("deallocate", table.pfn_deallocate_cb),
            pfn_lock_cb=wrap("lock", table.pfn_lock_cb),
            pfn_unlock_cb=wrap("unlock", table.pfn_unlock_cb),
            pfn_render_cb=wrap("render", table.pfn_render_cb),
        )

    # ---- callback inspection -----------------------------------------------------------

    def count(self, name: str) -> int:
        return sum(1 for c in self.calls if c.name == name)

    def last(self, name: str) -> Call:
        return [c for c in self.calls if c.name == name][-1]

    def mark(self) -> int:
        """A position in the callback log (for ``since``)."""
        return len(self.calls)

    def since(self, mark: int, name: str | None = None) -> list[Call]:
        return [c for c in self.calls[mark:] if name is None or c.name == name]

    # ---- DDIs ---------------------------------------------------------------------------

    async def create(self, size: int, flags: int = DYNAMIC_VB,
                     pool: D3DDDI_POOL = D3DDDI_POOL.VIDEOMEMORY, subresources: int = 1,
                     system_mem: bool = False) -> tuple[int, int]:
        """CreateResource; returns (hr, driver handle)."""
        self._rt_handles += 0x10
        surfs = []
        for _ in range(subresources):
            s = D3DDDI_SURFACEINFO(width=size, pitch=size)
            if system_mem:
                s.system_mem = bytearray(-(-size // 4096) * 4096)
            surfs.append(s)
        args = D3DDDIARG_CREATERESOURCE(rt_resource=self._rt_handles, pool=pool, flags=flags,
                                        surfaces=surfs)
        hr = await self.funcs.pfn_create_resource(self.dev, args)
        return hr, args.resource

    async def vb(self, size: int = 256, flags: int = DYNAMIC_VB, **kw: Any) -> int:
        hr, h = await self.create(size, flags, **kw)
        assert hr == S_OK, kmd.status_name(hr)
        return h

    async def destroy(self, res: int) -> int:
        return await self.funcs.pfn_destroy_resource(self.dev, D3DDDIARG_DESTROYRESOURCE(res))

    async def lock_async(self, res: int, flags: int, sub: int = 0,
                         rng: tuple[int, int] | None = None) -> tuple[int, D3DDDIARG_LOCKASYNC]:
        if rng is not None:
            flags |= LAF.RangeValid
        la = D3DDDIARG_LOCKASYNC(res, sub, int(flags),
                                 range=D3DDDIRANGE(*rng) if rng is not None else None)
        return await self.funcs.pfn_lock_async(self.dev, la), la

    async def unlock_async(self, res: int, sub: int = 0, flags: int = 0) -> int:
        return await self.funcs.pfn_unlock_async(self.dev, D3DDDIARG_UNLOCKASYNC(res, sub, flags))

    async def rename(self, res: int, cookie: int, sub: int = 0) -> int:
        return await self.funcs.pfn_rename(self.dev, D3DDDIARG_RENAME(res, sub, cookie))

    async def lock(self, res: int, flags: int = 0, sub: int = 0,
                   rng: tuple[int, int] | None = None) -> tuple[int, D3DDDIARG_LOCK]:
        if rng is not None:
            flags |= LKF.RangeValid
        lk = D3DDDIARG_LOCK(res, sub, int(flags),
                            range=D3DDDIRANGE(*rng) if rng is not None else None)
        return await self.funcs.pfn_lock(self.dev, lk), lk

    async def unlock(self, res: int, sub: int = 0, flags: int = 0) -> int:
        return await self.funcs.pfn_unlock(self.dev, D3DDDIARG_UNLOCK(res, sub, flags))

    async def stream(self, res: int, stream: int = 0, offset: int = 0, stride: int = 16) -> int:
        return await self.funcs.pfn_set_stream_source(
            self.dev, D3DDDIARG_SETSTREAMSOURCE(stream, res, offset, stride))

    async def draw(self, draw_id: int, start: int = 0, count: int = 4) -> int:
        return await self.funcs.pfn_draw_primitive(
            self.dev, D3DDDIARG_DRAWPRIMITIVE(4, start, count, draw_id))

    async def flush(self) -> int:
        return await self.funcs.pfn_flush(self.dev, None)

    async def present(self) -> int:
        return await self.funcs.pfn_present(self.dev, D3DDDIARG_PRESENT())

    # ---- convenience --------------------------------------------------------------------

    async def fill(self, res: int, tag: int, size: int = 256) -> int:
        """Discard-lock ``res``, write ``pattern(tag)``, unlock, Rename: the buffer now holds
        that pattern in a fresh instance. Returns the cookie."""
        hr, la = await self.lock_async(res, LAF.Discard)
        assert hr == S_OK, kmd.status_name(hr)
        la.surf_data.write(0, pattern(tag, size))
        assert await self.unlock_async(res) == S_OK
        assert await self.rename(res, la.cookie) == S_OK
        return la.cookie

    async def idle(self) -> None:
        await self.kernel.wait_idle()

    def reads(self) -> dict[int, list[tuple[int, bytes]]]:
        """draw id → [(instance handle, bytes read)] from the GPU's execution log."""
        out: dict[int, list[tuple[int, bytes]]] = {}
        for rec in self.kernel.dma_records:
            for c in rec.commands:
                if c.kind == "draw":
                    out.setdefault(c.draw_id, []).append((c.instance, c.data))
        return out


def run(prog: Callable[[Rig], Awaitable[Any]], *, driver: Any = None,
        config: umd.DriverConfig | None = None, kernel_config: kmd.KernelConfig | None = None,
        variant: str | None = None, check: bool = True, **engine_kw: Any) -> Any:
    """Run ``prog(rig)`` as the main emulated thread. Returns the RunResult with ``.rig``."""
    if driver is None:
        driver = umd.make_driver(variant, config=config)
    rig = Rig(driver, kernel_config)

    async def main() -> Any:
        await rig.open()
        return await prog(rig)

    result = vt.Engine(**engine_kw).run(main)
    if check:
        result.check()
    object.__setattr__(result, "rig", rig)
    return result
