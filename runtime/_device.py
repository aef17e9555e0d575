"""The application-facing Direct3D 9 API: :func:`open_adapter`, :class:`Adapter`, :class:`Device`.

A :class:`Device` validates what the application asks, serialises several app threads with an
API mutex (as ``D3DCREATE_MULTITHREADED`` does) and hands the work to its layers:

* the DDI door, with the DDI-version gate (``runtime/_ddi.py``: ``DdiDoor``);
* the MP layer, its queue and worker (``runtime/_mp.py``: ``MPLayer``);
* the lock path (``runtime/_lock.py``: ``LockPath``, ``LockedView``);
* the data oracle's snapshots (``runtime/_oracle.py``: ``DrawSnapshots``);
* the callbacks the driver calls (``runtime/_callbacks.py``: ``RuntimeCallbacks``).

Seeded runtime bugs (``DeviceConfig.bugs``) are hook overrides (``runtime/_bugs.py``) that the
device builds into its ``hooks`` object; see :data:`~runtime.RUNTIME_BUGS`.
"""

from __future__ import annotations

import itertools
from typing import Any

import kmd
from umd.ddi import (
    D3DDDI_DEVICEFUNCS,
    D3DDDIARG_CREATEDEVICE,
    D3DDDIARG_DESTROYRESOURCE,
    D3DDDIARG_DRAWPRIMITIVE,
    D3DDDIARG_OPENADAPTER,
    D3DDDIARG_PRESENT,
    D3DDDIARG_SETSTREAMSOURCE,
)
from vthreads import Mutex, current_engine

from . import d3d9
from ._bugs import hooks_for
from ._callbacks import RuntimeCallbacks
from ._config import DeviceConfig, DeviceStatistics
from ._ddi import (
    DdiDoor,
    call_create_device,
    call_open_adapter,
    device_funcs_problem,
    kind_of,
    open_adapter_problem,
)
from ._lock import LockedView, LockPath
from ._mp import MPLayer
from ._oracle import DrawRecord, DrawSnapshots
from ._resource import Resource, create_resource_args

_DEFAULT_BUFFER_USAGE = d3d9.D3DUSAGE_DYNAMIC | d3d9.D3DUSAGE_WRITEONLY
_POOLS = (d3d9.D3DPOOL_DEFAULT, d3d9.D3DPOOL_SYSTEMMEM, d3d9.D3DPOOL_MANAGED)
_UINT = 0xFFFFFFFF
#: a HANDLE is pointer-sized: the driver's hResource is an int in [0, 2**64)
_HANDLE_END = 1 << 64


def _uints(what: str, *values: Any) -> None:
    """The app API's numbers are D3D9 UINTs/DWORDs: anything else (None, a float, a bool, a
    negative or 33-bit int) is ``D3DERR_INVALIDCALL`` before anything is done (issue 14)."""
    for v in values:
        if type(v) is not int or not 0 <= v <= _UINT:
            raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, f"{what}: not a UINT ({type(v).__name__})")


def _kmt_error(st: int, what: str) -> d3d9.D3DError:
    return d3d9.D3DError(kmd.ntstatus_to_hresult_for_callback(st, "pfnAllocateCb"), what)


class Adapter:
    """An opened adapter: the driver's adapter functions plus the kernel adapter."""

    def __init__(
        self, kernel: kmd.Kernel, driver: Any, oa: D3DDDIARG_OPENADAPTER, km_adapter: int, name: str
    ) -> None:
        self.kernel = kernel
        self.driver = driver
        self.name = name
        self.funcs = oa.adapter_funcs
        self.driver_adapter = oa.adapter
        self.driver_version = int(oa.driver_version)
        self.km_adapter = km_adapter
        self._devices = itertools.count()

    async def create_device(self, config: DeviceConfig | None = None, *, name: str = "") -> Device:
        """``CreateDevice``: a kernel device and context, the runtime's callbacks to the driver,
        and — if the driver implements the async triple — the MP layer's worker thread."""
        config = config or DeviceConfig()
        name = name or f"dev{next(self._devices)}"
        cd_k = kmd.D3DKMT_CREATEDEVICE(adapter=self.km_adapter)
        st = await kmd.D3DKMTCreateDevice(self.kernel, cd_k)
        if not kmd.NT_SUCCESS(st):
            raise _kmt_error(st, "D3DKMTCreateDevice failed")
        cc = kmd.D3DKMT_CREATECONTEXT(device=cd_k.device)
        st = await kmd.D3DKMTCreateContext(self.kernel, cc)
        if not kmd.NT_SUCCESS(st):
            raise _kmt_error(st, "D3DKMTCreateContext failed")
        dev = Device(self, config, name, cd_k.device, cc.context)
        await dev.open()
        return dev


async def open_adapter(kernel: kmd.Kernel, driver: Any, *, name: str = "adapter") -> Adapter:
    """Open the kernel adapter and the driver's ``OpenAdapter`` (DV-1: it reports
    ``DriverVersion``). Raises :class:`~runtime.d3d9.D3DError` if either fails."""
    oa_k = kmd.D3DKMT_OPENADAPTER()
    st = await kmd.D3DKMTOpenAdapter(kernel, oa_k)
    if not kmd.NT_SUCCESS(st):
        raise d3d9.D3DError(kmd.hresult_from_nt(st), "D3DKMTOpenAdapter failed")
    oa = D3DDDIARG_OPENADAPTER(adapter=name, interface=9, version=1)
    hr = await call_open_adapter(driver, oa, name)
    if kmd.FAILED(hr):
        raise d3d9.D3DError(hr, "OpenAdapter failed")
    # a success without a table is the driver's own error (docs/runtime.md), not bad input
    problem = ("no D3DDDI_ADAPTERFUNCS" if oa.adapter_funcs is None
               else open_adapter_problem(oa))
    if problem:
        raise d3d9.D3DError(d3d9.D3DERR_DRIVERINTERNALERROR,
                            f"the driver's OpenAdapter returned S_OK with {problem}")
    return Adapter(kernel, driver, oa, oa_k.adapter, name)


class Device:
    """An emulated ``IDirect3DDevice9`` (multithreaded: several app threads may call it)."""

    def __init__(
        self, adapter: Adapter, config: DeviceConfig, name: str, km_device: int, km_context: int
    ) -> None:
        self.adapter = adapter
        self.kernel = adapter.kernel
        self.config = config
        self.name = name
        self.km_device = km_device
        self.km_context = km_context
        self.driver_version = adapter.driver_version
        self.handle = object()  # the runtime device handle the driver passes back to callbacks
        self.bugs = config.bugs
        #: the decision hooks (the seeded bugs of ``config.bugs`` override some)
        self.hooks = hooks_for(config.bugs)
        self.callbacks = RuntimeCallbacks(self, max_km_resources=config.max_km_resources)
        self._api = Mutex(f"{name}.api")
        self.door = DdiDoor(name, self.driver_version, self.hooks)
        self._resources: dict[int, Resource] = {}
        self.mp_layer = MPLayer(name, self.door, self.hooks, queue_size=config.queue_size,
                                max_frame_latency=config.max_frame_latency,
                                resource=self._resources.__getitem__)
        self.snapshots = DrawSnapshots(name, keep=config.keep_draws)
        self.lock_path = LockPath(self.door, self.mp_layer, self.hooks, self.snapshots)
        self._handles = itertools.count(0x100, 0x10)
        self._streams: dict[int, tuple[Resource, int, int]] = {}
        self._draw_ids = itertools.count(1)
        self._closed = False
        self._frames = 0

    # ---- what the other layers read ------------------------------------------------------

    @property
    def mp(self) -> bool:
        """Whether the MP layer (queue + worker) is on (LA-1, MP-4)."""
        return self.mp_layer.enabled

    @property
    def funcs(self) -> D3DDDI_DEVICEFUNCS | None:
        """The driver's function table, from ``CreateDevice``."""
        return self.door.funcs

    @property
    def driver_device(self) -> Any:
        """The driver's device handle, from ``CreateDevice``."""
        return self.door.driver_device

    @property
    def lost(self) -> bool:
        """The driver has reported D3DDDIERR_DEVICEREMOVED (TDR-10, TDR-11): draws may be
        lost."""
        return self.door.lost

    @property
    def draws(self) -> list[DrawRecord]:
        """Every draw's snapshot, in program order (the data oracle's expectations); with
        ``DeviceConfig(keep_draws=False)`` only those the GPU has not executed yet."""
        snaps = self.snapshots
        return snaps.draws if snaps.keep else list(snaps.pending.values())

    # ---- setup / teardown --------------------------------------------------------------------

    async def open(self) -> None:
        """``CreateDevice`` in the driver, then the MP layer if the driver has the async
        triple (LA-1, MP-4). Called once, by :meth:`Adapter.create_device`."""
        cd = D3DDDIARG_CREATEDEVICE(runtime_device=self.handle, callbacks=self.callbacks.table())
        hr = await call_create_device(self.adapter.funcs, self.adapter.driver_adapter, cd,
                                      self.name, self.driver_version)
        funcs = cd.device_funcs
        if kmd.FAILED(hr):
            raise d3d9.D3DError(hr, "CreateDevice failed")
        problem = "no D3DDDI_DEVICEFUNCS" if funcs is None else device_funcs_problem(funcs)
        if problem:
            raise d3d9.D3DError(d3d9.D3DERR_DRIVERINTERNALERROR,
                                f"the driver's CreateDevice returned S_OK with {problem}")
        self.door.open(funcs, cd.device)
        self.mp_layer.start(funcs)
        eng = current_engine()
        if eng.wants("rt.device.create"):
            eng.emit("rt.device.create", device=self.name, mp=self.mp,
                     driver_version=self.driver_version, bugs=sorted(self.bugs))

    async def close(self) -> None:
        """Release the device: submit and finish outstanding work, ``DestroyDevice``, stop the
        worker, and free the kernel device."""
        if self._closed:
            return
        async with self._api:
            self._closed = True
            await self.mp_layer.enqueue("Flush", None)
            await self.mp_layer.drain("close")
            await self.kernel.wait_idle()
            try:
                await self.mp_layer.call_app("DestroyDevice", None)
            finally:
                # the driver is done with the device: a thread it left behind gets E_INVALIDARG
                # from every callback from now on (checker: CB-AFTER-DESTROY)
                self.callbacks.destroy()
            await self.mp_layer.stop()
            await kmd.D3DKMTDestroyContext(self.kernel, kmd.D3DKMT_DESTROYCONTEXT(self.km_context))
            await kmd.D3DKMTDestroyDevice(self.kernel, kmd.D3DKMT_DESTROYDEVICE(self.km_device))

    def _check_open(self) -> None:
        if self._closed:
            raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, f"device {self.name} is closed")

    def _memory_bytes(self) -> int:
        """Every byte the adapter has: its segments and the system memory VidMm may use."""
        conf = self.adapter.kernel.config
        return sum(seg.size for seg in conf.segments) + conf.system_memory_bytes

    def _resource(self, res: Resource) -> Resource:
        """``res`` if it is a resource this device created and the application has not
        released; anything else is ``D3DERR_INVALIDCALL`` before the driver sees it (issue 14).
        A released resource stays in ``_resources`` until its queued commands are done (the
        worker releases their references by handle), so ``destroyed`` is tested too: without
        it a Lock, Unlock, SetStreamSource or second Release of a released resource reached the
        driver with a handle its DestroyResource had ended (the driver's E_INVALIDARG)."""
        if (not isinstance(res, Resource) or self._resources.get(res.handle) is not res
                or res.destroyed):
            raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL,
                                "not a live resource of this device (released, or another's)")
        return res

    # ---- resources ---------------------------------------------------------------------------

    async def create_vertex_buffer(self, size: int, usage: int = _DEFAULT_BUFFER_USAGE,
                                   pool: int = d3d9.D3DPOOL_DEFAULT) -> Resource:
        """``CreateVertexBuffer``: a linear resource of ``size`` bytes."""
        return await self._create_resource("vb", size, usage, pool)

    async def create_index_buffer(self, size: int, usage: int = _DEFAULT_BUFFER_USAGE,
                                  pool: int = d3d9.D3DPOOL_DEFAULT) -> Resource:
        """``CreateIndexBuffer``: a linear resource of ``size`` bytes."""
        return await self._create_resource("ib", size, usage, pool)

    async def create_surface(
        self, width: int, height: int, bytes_per_pixel: int = 4, usage: int = 0,
        pool: int = d3d9.D3DPOOL_SYSTEMMEM,
    ) -> Resource:
        """An offscreen plain surface (``CreateOffscreenPlainSurface``); SYSTEMMEM by default,
        which is what LA-4 is about."""
        _uints("CreateOffscreenPlainSurface", width, height, bytes_per_pixel, usage, pool)
        return await self._create_resource("surface", width * height * bytes_per_pixel, usage,
                                           pool, width=width, height=height, bpp=bytes_per_pixel)

    async def create_primary(self, width: int, height: int, bytes_per_pixel: int = 4
                             ) -> Resource:
        """The primary surface the display scans out (a swap chain's front buffer): a
        ``CreateResource`` with ``Primary|RenderTarget`` on video present source 0, which the
        driver passes on to ``pfnAllocateCb`` as ``D3DDDI_ALLOCATIONINFO.Flags.Primary`` (seed
        004; AC-7, SEG-8). It is never Dynamic, so it is locked through ``Lock``; ``Discard``
        is ignored on it (KL-18)."""
        if not isinstance(width, int) or not isinstance(height, int) or width < 1 or height < 1:
            raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, "width and height must be >= 1")
        return await self._create_resource("primary", width * height * bytes_per_pixel, 0,
                                           d3d9.D3DPOOL_DEFAULT, width=width, height=height,
                                           bpp=bytes_per_pixel)

    async def create_texture(
        self, width: int, height: int, levels: int = 1, bytes_per_pixel: int = 4,
        usage: int = 0, pool: int = d3d9.D3DPOOL_DEFAULT,
    ) -> Resource:
        """``CreateTexture``: one subresource (surface) per mip level, each half the size of the
        one before. Lock a level with ``lock(tex, subresource=i)``."""
        _uints("CreateTexture", width, height, levels, bytes_per_pixel, usage, pool)
        if not isinstance(levels, int) or not 1 <= levels <= 16:
            raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, "levels must be 1..16")
        if not isinstance(width, int) or not isinstance(height, int) or width < 1 or height < 1:
            raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, "width and height must be >= 1")
        if pool == d3d9.D3DPOOL_SYSTEMMEM and levels > 1:
            # the runtime allocates one system-memory block per resource (pSysMem, AC-6)
            raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, "a SYSTEMMEM texture has one level")
        dims = [(max(1, width >> i), max(1, height >> i)) for i in range(levels)]
        return await self._create_resource("texture", 0, usage, pool, width=width,
                                           height=height, bpp=bytes_per_pixel, mips=dims)

    async def _create_resource(self, kind: str, size: int, usage: int, pool: int, *,
                               width: int = 0, height: int = 1, bpp: int = 1,
                               mips: list[tuple[int, int]] | None = None) -> Resource:
        """``CreateResource`` on the app thread after a drain (MP-5, MP-6)."""
        self._check_open()
        _uints("CreateResource", size, usage, pool)
        if mips:
            size = mips[0][0] * mips[0][1] * bpp
        if not isinstance(size, int) or size <= 0:
            raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, "resource size must be a positive int")
        if size > self._memory_bytes():  # refused before the runtime allocates host memory
            raise d3d9.D3DError(d3d9.D3DERR_OUTOFVIDEOMEMORY, "larger than the adapter's memory")
        if pool not in _POOLS:
            raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, f"unknown pool {pool}")
        async with self._api:
            res = Resource(next(self._handles), kind, size, usage, pool)
            res.shadow = bytearray(size)
            res.defined = bytearray(size)
            res.levels = tuple(w * h * bpp for w, h in mips) if mips else (size,)
            args = create_resource_args(res, width=width, height=height, bpp=bpp, mips=mips)
            hr = await self.mp_layer.call_app("CreateResource", args)
            if kmd.FAILED(hr):
                raise d3d9.D3DError(hr, "CreateResource failed")
            if type(args.resource) is not int or not 0 <= args.resource < _HANDLE_END:
                raise d3d9.D3DError(d3d9.D3DERR_DRIVERINTERNALERROR, "the driver's CreateResource "
                                    f"returned S_OK with an hResource that is "
                                    f"{kind_of(args.resource)}, not a HANDLE")
            res.driver_handle = args.resource
            self._resources[res.handle] = res
            eng = current_engine()
            if eng.wants("rt.resource.create"):
                eng.emit("rt.resource.create", device=self.name, rt_resource=res.handle,
                         resource=res.driver_handle, kind=kind, size=size, usage=usage,
                         pool=pool, dynamic=res.dynamic)
            return res

    async def release(self, res: Resource) -> None:
        """Release a resource: ``DestroyResource`` is queued behind every command using it."""
        self._check_open()
        async with self._api:
            res = self._resource(res)
            res.destroyed = True
            await self.mp_layer.enqueue("DestroyResource",
                                        D3DDDIARG_DESTROYRESOURCE(res.driver_handle), (res,))
            for s, (r, _, _) in list(self._streams.items()):
                if r is res:
                    del self._streams[s]

    # ---- lock / unlock -----------------------------------------------------------------------

    async def lock(self, res: Resource, offset: int = 0, size: int = 0, flags: int = 0, *,
                   subresource: int = 0) -> LockedView:
        """``Lock``: a writable view of real bytes. ``size=0`` locks to the end.

        Dynamic resources locked with DISCARD or NOOVERWRITE go through LockAsync on this thread
        (and a successful Discard enqueues Rename); everything else, and every failed LockAsync,
        takes the synchronous path (``runtime/_lock.py``). Raises
        :class:`~runtime.d3d9.D3DError` on failure (e.g. WASSTILLDRAWING for DONOTWAIT on a
        busy resource)."""
        self._check_open()
        _uints("Lock", offset, size, flags)  # the subresource: the lock path's own check
        async with self._api:
            res = self._resource(res)
            return await self.lock_path.lock(res, offset, size, flags, subresource)

    async def unlock(self, res: Resource, *, subresource: int = 0) -> None:
        """``Unlock``: UnlockAsync on this thread for an async lock (UA-2), the synchronous
        ``Unlock`` otherwise. Unlocking something not locked is still forwarded to the driver,
        whose ``E_INVALIDARG`` (UA-3, LK-13) becomes ``D3DERR_INVALIDCALL``."""
        self._check_open()
        async with self._api:
            res = self._resource(res)
            await self.lock_path.unlock(res, subresource)

    # ---- drawing -----------------------------------------------------------------------------

    async def set_stream_source(self, stream: int, res: Resource, offset: int, stride: int
                                ) -> None:
        """``SetStreamSource``: bind ``res`` to vertex stream ``stream`` (queued)."""
        self._check_open()
        _uints("SetStreamSource", stream, offset, stride)
        async with self._api:
            res = self._resource(res)
            if not res.buffer:
                raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, "only buffers can be vertex streams")
            if stride <= 0 or offset < 0:
                raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, "stride must be > 0, offset >= 0")
            self._streams[stream] = (res, offset, stride)
            await self.mp_layer.enqueue(
                "SetStreamSource", D3DDDIARG_SETSTREAMSOURCE(stream, res.driver_handle, offset,
                                                             stride), (res,))

    def _check_streams_unlocked(self) -> None:
        """LK-8: the driver never receives a draw from a buffer locked through Lock (a
        NoOverwrite LockAsync is the sanctioned render-while-locked path, LA-15)."""
        for s in sorted(self._streams):
            held = self._streams[s][0].locks.get(0)
            if held is not None and held.path == "sync" and self.hooks.refuse_draw_while_locked():
                raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL,
                                    "draw from a buffer that is locked: unlock it first")

    async def draw_primitive(self, primitive_type: int, start_vertex: int, vertex_count: int
                             ) -> int:
        """``DrawPrimitive`` (queued). Returns the draw's id; the bytes it references are
        snapshotted now, in program order, for the data oracle (``runtime/_oracle.py``)."""
        self._check_open()
        _uints("DrawPrimitive", primitive_type, start_vertex, vertex_count)
        async with self._api:
            if not self._streams:
                raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, "no stream source is set")
            if start_vertex < 0 or vertex_count <= 0:
                raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, "bad vertex range")
            self._check_streams_unlocked()
            draw_id = next(self._draw_ids)
            reads = self.snapshots.reads(self._streams, start_vertex, vertex_count)
            self.snapshots.record(draw_id, reads)
            refs = tuple(self._streams[s][0] for s in sorted(self._streams))
            for r in refs:
                r.drawn_since_sync = True
            await self.mp_layer.enqueue(
                "DrawPrimitive",
                D3DDDIARG_DRAWPRIMITIVE(primitive_type, start_vertex, vertex_count, draw_id), refs)
            return draw_id

    async def flush(self) -> None:
        """Ask the driver to submit what it has (queued ``Flush``)."""
        self._check_open()
        async with self._api:
            await self.mp_layer.enqueue("Flush", None)

    async def present(self) -> None:
        """``Present``: queued; blocks while ``max_frame_latency`` presents are ahead of the
        worker. Reports a deferred error from a batched call (e.g. device removed)."""
        self._check_open()
        async with self._api:
            self._frames += 1
            await self.mp_layer.wait_frame_slot()
            cmd = await self.mp_layer.enqueue("Present", D3DDDIARG_PRESENT(frame=self._frames))
            if not self.mp and kmd.FAILED(cmd.result or 0):
                raise d3d9.D3DError(cmd.result or 0, "Present failed")
            hr, what = self.mp_layer.take_deferred_error()
            if hr:
                raise d3d9.D3DError(hr, f"an earlier batched call failed: {what}")

    # ---- statistics --------------------------------------------------------------------------

    def statistics(self) -> DeviceStatistics:
        """What the runtime did for this device so far."""
        return DeviceStatistics(
            ddi_calls={k: dict(v) for k, v in self.door.calls.items()},
            lock_async_results=dict(self.lock_path.lock_async_results),
            renames=self.lock_path.renames,
            syncs=dict(self.mp_layer.syncs),
            queue_high_water=self.mp_layer.high_water,
            command_buffers_submitted=self.callbacks.render_ok,
            frames=self._frames,
            draws=self.snapshots.issued,
            mp_layer=self.mp,
            driver_version=self.driver_version,
            ungated_calls=dict(self.door.ungated),
            overlapping_entries=self.door.overlaps,
            batched_failures=dict(self.mp_layer.batched_failures),
        )
