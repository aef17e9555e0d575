"""The emulated Direct3D 9 runtime: adapter, device, resources, the MP layer and its worker.

Read this file top to bottom to see what the real runtime does between an application and a
user-mode driver:

* **Opening.** :func:`open_adapter` calls the driver's ``OpenAdapter``, which reports its
  ``DriverVersion`` (DV-1); :meth:`Adapter.create_device` calls ``CreateDevice`` with the
  runtime's callbacks and gets the driver's ``D3DDDI_DEVICEFUNCS`` back.
* **The multiprocessor layer** exists only when the driver implements LockAsync, UnlockAsync and
  Rename (LA-1, MP-4). Then every DDI call that returns nothing is queued (:mod:`._cmdqueue`) and
  a **worker thread** makes it, in order (MP-5); calls that return information drain the queue
  first (MP-5, MP-6); LockAsync and UnlockAsync run on the application thread at once (LA-2,
  UA-2); a successful Discard LockAsync enqueues ``Rename`` so that it lands after every earlier
  command and before every later one (RN-3, RN-4). Without the triple there is no worker: every
  DDI runs on the calling application thread.
* **The DDI-version gate.** A device *entry lock* is held around every DDI call, so below 0xB no
  two threads are ever inside the driver for one device (LA-3, MP-1). At ≥ 0xB LockAsync and
  UnlockAsync enter without it, concurrently with the worker (LA-3, UA-5, MP-2).
* **Recovery and syncs.** Every lock that cannot take the async path, and every LockAsync that
  fails, takes the synchronous path: the worker makes the ``Lock`` call (which drains the queue
  ahead of it) and the app waits for its answer. Each such sync is counted with a named reason.
* **The data oracle's half.** The runtime keeps a shadow of what the application wrote into each
  resource; each draw snapshots the bytes it references at the moment the application issued it
  (program order). :mod:`runtime.checker` compares that with what the GPU read.

Seeded runtime bugs (``DeviceConfig.bugs``) break exactly one of these promises each, for the
checker's regression tests; see :data:`RUNTIME_BUGS`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import kmd
import vthreads
from umd.ddi import (
    D3D_UMD_REENTRANT_VERSION,
    D3DDDI_DEVICEFUNCS,
    D3DDDI_LOCKASYNCFLAGS,
    D3DDDI_LOCKFLAGS,
    D3DDDI_POOL,
    D3DDDI_RESOURCEFLAGS,
    D3DDDI_SURFACEINFO,
    D3DDDI_UNLOCKASYNCFLAGS,
    D3DDDI_UNLOCKFLAGS,
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
from vthreads import Condition, EngineUsageError, Event, Mutex, VThread, current_engine

from . import d3d9
from ._callbacks import RuntimeCallbacks, summarize
from ._cmdqueue import Command, CommandQueue

#: DDI name (as in the docs and the trace) → D3DDDI_DEVICEFUNCS attribute
DDI_TABLE = {
    "CreateResource": "pfn_create_resource",
    "DestroyResource": "pfn_destroy_resource",
    "Lock": "pfn_lock",
    "Unlock": "pfn_unlock",
    "LockAsync": "pfn_lock_async",
    "UnlockAsync": "pfn_unlock_async",
    "Rename": "pfn_rename",
    "SetStreamSource": "pfn_set_stream_source",
    "DrawPrimitive": "pfn_draw_primitive",
    "Flush": "pfn_flush",
    "Present": "pfn_present",
    "DestroyDevice": "pfn_destroy_device",
}
#: the DDIs that enter the driver reentrantly at DDI version >= 0xB (LA-3, UA-5, MP-2)
REENTRANT_DDIS = frozenset({"LockAsync", "UnlockAsync"})

#: named seeded bugs of the runtime, each breaking one documented promise
RUNTIME_BUGS = {
    "gate-missing": "below 0xB LockAsync/UnlockAsync skip the device entry lock (MP-1, LA-3)",
    "rename-jumps-queue": "Rename is pushed to the front of the queue, ahead of earlier commands "
    "(RN-4, LA-13)",
    "rename-wrong-cookie": "Rename carries a cookie no LockAsync returned (RN-2)",
    "rename-twice": "Rename is enqueued twice for one Discard (RN-1)",
    "worker-queue-unlocked": "the worker reads the command queue without its lock (RACE)",
    "lockasync-without-triple": "LockAsync is used when the driver lacks Rename (LA-1)",
    "sysmem-lockasync-below-b": "system-memory surfaces take LockAsync below 0xB (LA-4)",
    "noexistingrefs-always": "NoExistingReferences is set even with queued references (LA-9)",
    "unlockasync-after-sync-lock": "a lock taken through Lock is released with UnlockAsync (UA-3)",
    "lockasync-conflicting-flags": "DISCARD|NOOVERWRITE reaches LockAsync as both flags (LA-5)",
    "lockasync-two-regions": "LockAsync of a range sets RangeValid and AreaValid (LA-6)",
    "lockasync-reserved-bit": "LockAsync flags carry a reserved bit, 0x80 (LA-7)",
    "create-resource-ungated": "CreateResource runs on the app thread without draining the queue "
    "or taking the entry lock, overlapping the worker (MP-1)",
    "rename-on-app-thread": "Rename is called on the app thread right after LockAsync instead "
    "of being queued for the worker (RN-3, RN-4)",
    "draw-while-locked": "a draw from a buffer held by a synchronous Lock reaches the driver "
    "(LK-8)",
}

PAGE = 4096


@dataclass(frozen=True)
class DeviceConfig:
    """How the runtime drives one device.

    ``queue_size``: commands the MP layer's queue holds before the app blocks (backpressure).
    ``max_frame_latency``: presents queued ahead of the worker before ``present`` blocks.
    ``bugs``: names from :data:`RUNTIME_BUGS`."""

    queue_size: int = 16
    max_frame_latency: int = 3
    bugs: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        unknown = sorted(set(self.bugs) - set(RUNTIME_BUGS))
        if unknown:
            raise ValueError(
                f"unknown runtime bug {unknown[0]!r}: choose from {', '.join(RUNTIME_BUGS)}"
            )
        if self.queue_size < 1 or self.max_frame_latency < 1:
            raise ValueError("queue_size and max_frame_latency must be >= 1")


@dataclass(frozen=True)
class DeviceStatistics:
    """What the runtime did for one device (``Device.statistics()``)."""

    ddi_calls: dict[str, dict[str, int]]
    lock_async_results: dict[str, int]
    renames: int
    syncs: dict[str, int]
    queue_high_water: int
    command_buffers_submitted: int
    frames: int
    draws: int
    mp_layer: bool
    driver_version: int


@dataclass
class StreamRead:
    """The bytes one draw references in one stream, as the application had written them when it
    issued the draw. ``defined[i]`` is 0 where the application never wrote since the last
    discard: the oracle compares only defined bytes."""

    stream: int
    resource: int
    offset: int
    length: int
    expected: bytes
    defined: bytes


@dataclass
class DrawRecord:
    draw_id: int
    thread: str
    step: int
    reads: list[StreamRead]


@dataclass(eq=False)
class Resource:
    """A runtime resource (vertex/index buffer, surface)."""

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
    locks: dict[int, _LockState] = field(default_factory=dict)
    last_cookie: int = 0
    destroyed: bool = False
    shadow: bytearray = field(default_factory=bytearray)
    defined: bytearray = field(default_factory=bytearray)

    @property
    def dynamic(self) -> bool:
        return bool(self.usage & d3d9.D3DUSAGE_DYNAMIC)

    @property
    def sysmem(self) -> bool:
        return self.pool == d3d9.D3DPOOL_SYSTEMMEM

    def forget_contents(self) -> None:
        """A Discard lock: the old contents are gone, so the oracle's shadow is undefined until
        the application writes again."""
        self.shadow[:] = bytes(self.size)
        self.defined[:] = bytes(self.size)

    @property
    def buffer(self) -> bool:
        """Vertex and index buffers: the only resources draws read (and the data oracle
        shadows)."""
        return self.kind in ("vb", "ib")


@dataclass(eq=False)
class _LockState:
    path: str  # "async" | "sync"
    offset: int
    size: int
    flags: int
    view: LockedView | None = None


class LockedView:
    """The application's window on a locked resource: real bytes of the allocation the driver
    locked (a ``kmd.CpuPointer``), or the runtime's own system memory for NotifyOnly locks.

    Writes also land in the runtime's shadow of the resource (for the data oracle). A view is
    dead after ``unlock``: touching it raises :class:`~runtime.d3d9.D3DError` INVALIDCALL."""

    def __init__(self, res: Resource, ptr: Any, offset: int, size: int, read_only: bool,
                 path: str = "sync") -> None:
        #: "async" (LockAsync on the app thread) or "sync" (Lock via the worker): emulator
        #: instrumentation, so scenarios can draw from a NoOverwrite-locked buffer only where
        #: the driver accepted render-while-locked (LA-15)
        self.path = path
        self._res = res
        self._ptr = ptr
        self.offset = offset
        self.size = size
        self.read_only = read_only
        self._alive = True

    def __len__(self) -> int:
        return self.size

    def _check(self, off: int, n: int) -> None:
        if not self._alive:
            raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, "view used after unlock")
        if off < 0 or n < 0 or off + n > self.size:
            raise d3d9.D3DError(
                d3d9.D3DERR_INVALIDCALL,
                f"access [{off}, {off + n}) outside the {self.size}-byte lock",
            )

    def write(self, offset: int, data: bytes) -> None:
        """Write ``data`` at ``offset`` (relative to the locked range)."""
        data = bytes(data)
        self._check(offset, len(data))
        if self.read_only:
            raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, "write through a READONLY lock")
        if isinstance(self._ptr, bytearray):
            self._ptr[offset : offset + len(data)] = data
        else:
            self._ptr.write(offset, data)
        if self._res.buffer:
            a = self.offset + offset
            self._res.shadow[a : a + len(data)] = data
            self._res.defined[a : a + len(data)] = b"\x01" * len(data)

    def read(self, offset: int, n: int) -> bytes:
        self._check(offset, n)
        if isinstance(self._ptr, bytearray):
            return bytes(self._ptr[offset : offset + n])
        return bytes(self._ptr.read(offset, n))

    def _kill(self) -> None:
        self._alive = False


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
            raise d3d9.D3DError(kmd.ntstatus_to_hresult_for_callback(st, "pfnAllocateCb"),
                                "D3DKMTCreateDevice failed")
        cc = kmd.D3DKMT_CREATECONTEXT(device=cd_k.device)
        st = await kmd.D3DKMTCreateContext(self.kernel, cc)
        if not kmd.NT_SUCCESS(st):
            raise d3d9.D3DError(kmd.ntstatus_to_hresult_for_callback(st, "pfnAllocateCb"),
                                "D3DKMTCreateContext failed")
        dev = Device(self, config, name, cd_k.device, cc.context)
        await dev._create()
        return dev


async def open_adapter(kernel: kmd.Kernel, driver: Any, *, name: str = "adapter") -> Adapter:
    """Open the kernel adapter and the driver's ``OpenAdapter`` (DV-1: it reports
    ``DriverVersion``). Raises :class:`~runtime.d3d9.D3DError` if either fails."""
    oa_k = kmd.D3DKMT_OPENADAPTER()
    st = await kmd.D3DKMTOpenAdapter(kernel, oa_k)
    if not kmd.NT_SUCCESS(st):
        raise d3d9.D3DError(kmd.hresult_from_nt(st), "D3DKMTOpenAdapter failed")
    oa = D3DDDIARG_OPENADAPTER(adapter=name, interface=9, version=1)
    eng = current_engine()
    if eng.tracing:
        eng.emit("ddi.enter", ddi="OpenAdapter", device=name, gated=False)
    hr = await driver.open_adapter(oa)
    if eng.tracing:
        eng.emit("ddi.exit", ddi="OpenAdapter", device=name, hr=kmd.hex32(hr),
                  hr_name=kmd.hresult_name(hr), driver_version=oa.driver_version)
    if kmd.FAILED(hr) or oa.adapter_funcs is None:
        raise d3d9.D3DError(hr if kmd.FAILED(hr) else kmd.E_INVALIDARG, "OpenAdapter failed")
    return Adapter(kernel, driver, oa, oa_k.adapter, name)


_rt_handles = itertools.count(0x1000, 0x10)


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
        self.callbacks = RuntimeCallbacks(self)
        self.funcs: D3DDDI_DEVICEFUNCS | None = None
        self.driver_device: Any = None
        self.mp = False
        self._api = Mutex(f"{name}.api")
        self._entry = Mutex(f"{name}.entry")
        self._queue: CommandQueue | None = None
        self._worker: VThread | None = None
        self._resources: dict[int, Resource] = {}
        self._handles = itertools.count(0x100, 0x10)
        self._streams: dict[int, tuple[Resource, int, int]] = {}
        self._draw_ids = itertools.count(1)
        self.draws: list[DrawRecord] = []
        self._frames_queued = 0
        self._frame_cond = Condition(f"{name}.frames")
        self._deferred_error = 0
        self._closed = False
        #: the driver has reported D3DDDIERR_DEVICEREMOVED (TDR-10, TDR-11): draws may be lost
        self.lost = False
        # statistics
        self._ddi_calls: dict[str, dict[str, int]] = {}
        self._lock_async_results: dict[str, int] = {}
        self._renames = 0
        self._syncs: dict[str, int] = {}
        self._frames = 0

    # ---- setup / teardown --------------------------------------------------------------------

    async def _create(self) -> None:
        cd = D3DDDIARG_CREATEDEVICE(runtime_device=self.handle, callbacks=self.callbacks.table())
        eng = current_engine()
        if eng.tracing:
            eng.emit("ddi.enter", ddi="CreateDevice", device=self.name, gated=False)
        hr = await self.adapter.funcs.pfn_create_device(self.adapter.driver_adapter, cd)
        funcs = cd.device_funcs
        if eng.tracing:
            eng.emit(
                "ddi.exit", ddi="CreateDevice", device=self.name, hr=kmd.hex32(hr),
                hr_name=kmd.hresult_name(hr),
                implements=[n for n, a in DDI_TABLE.items() if funcs and getattr(funcs, a)],
                driver_version=self.driver_version,
            )
        if kmd.FAILED(hr) or funcs is None:
            raise d3d9.D3DError(hr if kmd.FAILED(hr) else kmd.E_INVALIDARG, "CreateDevice failed")
        self.funcs = funcs
        self.driver_device = cd.device
        # LA-1 / MP-4: the MP layer only with all three of LockAsync, UnlockAsync, Rename
        self.mp = funcs.has_async_triple() or (
            "lockasync-without-triple" in self.bugs and funcs.pfn_lock_async is not None
        )
        if self.mp:
            self._queue = CommandQueue(
                f"{self.name}.cmdq", self.config.queue_size,
                racy_get="worker-queue-unlocked" in self.bugs,
            )
            self._worker = vthreads.spawn(f"{self.name}.worker", self._worker_main)
        if eng.tracing:
            eng.emit("rt.device.create", device=self.name, mp=self.mp,
                      driver_version=self.driver_version, bugs=sorted(self.bugs))

    async def close(self) -> None:
        """Release the device: submit and finish outstanding work, ``DestroyDevice``, stop the
        worker, and free the kernel device."""
        if self._closed:
            return
        async with self._api:
            self._closed = True
            await self._enqueue("Flush", None)
            await self._drain("close")
            await self.kernel.wait_idle()
            await self._call_app("DestroyDevice", None)
            if self._worker is not None:
                assert self._queue is not None
                stop = Command("(stop)", None, reply=Event(f"{self.name}.stopped"))
                await self._queue.put(stop)
                await self._worker.join()
            await kmd.D3DKMTDestroyContext(self.kernel, kmd.D3DKMT_DESTROYCONTEXT(self.km_context))
            await kmd.D3DKMTDestroyDevice(self.kernel, kmd.D3DKMT_DESTROYDEVICE(self.km_device))

    # ---- the DDI seam ------------------------------------------------------------------------

    def _gated(self, ddi: str) -> bool:
        """Whether ``ddi`` takes the device entry lock (LA-3, UA-5, MP-1, MP-2)."""
        if ddi == "CreateResource" and "create-resource-ungated" in self.bugs:
            return False
        if ddi in REENTRANT_DDIS:
            if self.driver_version >= D3D_UMD_REENTRANT_VERSION:
                return False
            return "gate-missing" not in self.bugs
        return True

    async def _ddi(self, ddi: str, args: Any) -> int:
        """Call one driver DDI through the table, under the gate, logging enter/exit."""
        assert self.funcs is not None
        fn = getattr(self.funcs, DDI_TABLE[ddi])
        if fn is None:
            raise EngineUsageError(f"the runtime called {ddi}, which the driver does not implement")
        eng = current_engine()
        me = eng.current_thread()
        per = self._ddi_calls.setdefault(ddi, {})
        per[me.name] = per.get(me.name, 0) + 1
        gated = self._gated(ddi)
        if gated:
            await self._entry.acquire()
        try:
            if eng.tracing:
                eng.emit("ddi.enter", ddi=ddi, device=self.name, gated=gated, **summarize(args))
            hr = await fn(self.driver_device, args)
            if not isinstance(hr, int):
                raise TypeError(f"driver DDI {ddi} returned {hr!r}, not an HRESULT int")
            if hr == kmd.D3DDDIERR_DEVICEREMOVED:
                self.lost = True
            if eng.tracing:
                out = {}
                if isinstance(args, D3DDDIARG_LOCKASYNC):
                    out = {"cookie": args.cookie}
                eng.emit("ddi.exit", ddi=ddi, device=self.name, hr=kmd.hex32(hr),
                          hr_name=kmd.hresult_name(hr), **out)
            return hr
        finally:
            if gated:
                self._entry.release()

    async def _call_app(self, ddi: str, args: Any) -> int:
        """An information-returning call: drain the queue, then call on this (app) thread
        (MP-5, MP-6)."""
        if not (ddi == "CreateResource" and "create-resource-ungated" in self.bugs):
            await self._drain(ddi.lower())
        return await self._ddi(ddi, args)

    # ---- the MP layer ------------------------------------------------------------------------

    def _count_sync(self, reason: str) -> None:
        self._syncs[reason] = self._syncs.get(reason, 0) + 1
        eng = current_engine()
        if eng.tracing:
            eng.emit("rt.sync", device=self.name, reason=reason)

    async def _enqueue(self, ddi: str, args: Any, refs: tuple[Resource, ...] = (),
                       *, reply: bool = False, front: bool = False) -> Command | None:
        """Queue a DDI for the worker (MP layer) or make it now on this thread (no MP layer)."""
        if not self.mp:
            return Command(ddi, args, result=await self._ddi(ddi, args))
        assert self._queue is not None
        for r in refs:
            r.queued_refs += 1
        cmd = Command(ddi, args, tuple(r.handle for r in refs),
                      reply=Event(f"{self.name}.reply") if reply else None,
                      app_thread=current_engine().current_thread().name)
        if await self._queue.put(cmd, front=front):
            self._count_sync("queue-full")
        return cmd

    async def _drain(self, reason: str) -> None:
        """Wait until the worker has made every queued call (no-op without the MP layer)."""
        if not self.mp:
            return
        assert self._queue is not None
        cmd = Command("(barrier)", None, reply=Event(f"{self.name}.drained"))
        await self._queue.put(cmd)
        assert cmd.reply is not None
        await cmd.reply.wait()
        self._count_sync(reason)

    async def _sync_call(self, ddi: str, args: Any, refs: tuple[Resource, ...]) -> int:
        """Have the worker make ``ddi`` after everything queued before it, and wait for its
        answer (the synchronous path)."""
        if not self.mp:
            return await self._ddi(ddi, args)
        cmd = await self._enqueue(ddi, args, refs, reply=True)
        assert cmd is not None and cmd.reply is not None
        await cmd.reply.wait()
        assert cmd.result is not None
        return cmd.result

    async def _worker_main(self) -> None:
        """The runtime's worker: drain the queue into the driver, in order (MP-5, RN-3)."""
        assert self._queue is not None
        while True:
            cmd = await self._queue.get()
            if cmd.ddi == "(stop)":
                assert cmd.reply is not None
                cmd.reply.set()
                return
            if cmd.ddi != "(barrier)":
                hr = await self._ddi(cmd.ddi, cmd.args)
                cmd.result = hr
                if cmd.ddi == "Present":
                    self._frames_queued -= 1
                    self._frame_cond.notify_all()
                if kmd.FAILED(hr) and cmd.reply is None:
                    # a batched call has nobody to return to: the runtime keeps the first such
                    # error and reports it at the next Present, as D3D9 reports device loss
                    if not self._deferred_error:
                        self._deferred_error = hr
                    eng = current_engine()
                    if eng.tracing:
                        eng.emit("rt.deferred_error", device=self.name, ddi=cmd.ddi,
                                  hr=kmd.hex32(hr), hr_name=kmd.hresult_name(hr))
            # The reference leaves the runtime's layer only once the driver has it: a DrawPrimitive
            # the worker is still inside counts as queued, so LockAsync never tells the driver
            # "no existing references" while the driver may not yet have recorded one (LA-9).
            for h in cmd.refs:
                self._resources[h].queued_refs -= 1
            if cmd.reply is not None:
                cmd.reply.set()

    # ---- the application-facing API ----------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, f"device {self.name} is closed")

    def _resource(self, res: Resource) -> Resource:
        if not isinstance(res, Resource) or self._resources.get(res.handle) is not res:
            raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, "not a live resource of this device")
        return res

    async def create_vertex_buffer(
        self, size: int, usage: int = d3d9.D3DUSAGE_DYNAMIC | d3d9.D3DUSAGE_WRITEONLY,
        pool: int = d3d9.D3DPOOL_DEFAULT,
    ) -> Resource:
        """``CreateVertexBuffer``: a linear resource of ``size`` bytes."""
        return await self._create_resource("vb", size, usage, pool)

    async def create_index_buffer(
        self, size: int, usage: int = d3d9.D3DUSAGE_DYNAMIC | d3d9.D3DUSAGE_WRITEONLY,
        pool: int = d3d9.D3DPOOL_DEFAULT,
    ) -> Resource:
        return await self._create_resource("ib", size, usage, pool)

    async def create_surface(
        self, width: int, height: int, bytes_per_pixel: int = 4, usage: int = 0,
        pool: int = d3d9.D3DPOOL_SYSTEMMEM,
    ) -> Resource:
        """An offscreen plain surface (``CreateOffscreenPlainSurface``); SYSTEMMEM by default,
        which is what LA-4 is about."""
        return await self._create_resource("surface", width * height * bytes_per_pixel, usage,
                                           pool, width=width, height=height, bpp=bytes_per_pixel)

    async def create_texture(
        self, width: int, height: int, levels: int = 1, bytes_per_pixel: int = 4,
        usage: int = 0, pool: int = d3d9.D3DPOOL_DEFAULT,
    ) -> Resource:
        """``CreateTexture``: one subresource (surface) per mip level, each half the size of the
        one before. Lock a level with ``lock(tex, subresource=i)``."""
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
        self._check_open()
        if mips:
            size = mips[0][0] * mips[0][1] * bpp
        if not isinstance(size, int) or size <= 0:
            raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, "resource size must be a positive int")
        if pool not in (d3d9.D3DPOOL_DEFAULT, d3d9.D3DPOOL_SYSTEMMEM, d3d9.D3DPOOL_MANAGED):
            raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, f"unknown pool {pool}")
        async with self._api:
            res = Resource(next(self._handles), kind, size, usage, pool)
            res.shadow = bytearray(size)
            res.defined = bytearray(size)
            res.levels = tuple(w * h * bpp for w, h in mips) if mips else (size,)
            flags = 0
            if usage & d3d9.D3DUSAGE_DYNAMIC:
                flags |= D3DDDI_RESOURCEFLAGS.Dynamic
            if usage & d3d9.D3DUSAGE_WRITEONLY:
                flags |= D3DDDI_RESOURCEFLAGS.WriteOnly
            if usage & d3d9.D3DUSAGE_RENDERTARGET:
                flags |= D3DDDI_RESOURCEFLAGS.RenderTarget
            flags |= {"vb": D3DDDI_RESOURCEFLAGS.VertexBuffer,
                      "ib": D3DDDI_RESOURCEFLAGS.IndexBuffer,
                      "texture": D3DDDI_RESOURCEFLAGS.Texture}.get(kind, 0)
            if mips:
                surfaces = [D3DDDI_SURFACEINFO(width=w, height=h, bytes_per_pixel=bpp,
                                               pitch=w * bpp) for w, h in mips]
            else:
                surfaces = [D3DDDI_SURFACEINFO(width=width or size,
                                               height=height if width else 1,
                                               bytes_per_pixel=bpp if width else 1,
                                               pitch=(width * bpp) if width else size)]
            surf = surfaces[0]
            if pool == d3d9.D3DPOOL_SYSTEMMEM:
                # runtime-allocated system memory (pSysMem, AC-6), page-multiple (CA-16)
                res.system_mem = bytearray(-(-size // PAGE) * PAGE)
                surf.system_mem = res.system_mem
                ddipool = D3DDDI_POOL.SYSTEMMEM
            else:
                ddipool = D3DDDI_POOL.VIDEOMEMORY
            args = D3DDDIARG_CREATERESOURCE(rt_resource=res.handle, pool=ddipool, flags=int(flags),
                                            surfaces=surfaces)
            hr = await self._call_app("CreateResource", args)
            if kmd.FAILED(hr):
                raise d3d9.D3DError(hr, "CreateResource failed")
            res.driver_handle = args.resource
            self._resources[res.handle] = res
            eng = current_engine()
            if eng.tracing:
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
            await self._enqueue("DestroyResource", D3DDDIARG_DESTROYRESOURCE(res.driver_handle),
                                (res,))
            for s, (r, _, _) in list(self._streams.items()):
                if r is res:
                    del self._streams[s]

    # -- lock / unlock

    def _lock_path(self, res: Resource, flags: int) -> tuple[str, str]:
        """("async", "") or ("sync", reason): the runtime's MP lock policy (LA-1, LA-4, Q-2)."""
        if not self.mp:
            return "sync", "no-async-ddi"
        if flags & d3d9.D3DLOCK_READONLY:
            return "sync", "readonly"
        if res.sysmem:
            if self.driver_version >= D3D_UMD_REENTRANT_VERSION or (
                "sysmem-lockasync-below-b" in self.bugs
            ):
                return "async", ""
            return "sync", "sysmem-below-0xB"
        if not res.dynamic:
            return "sync", "not-dynamic"
        if not flags & (d3d9.D3DLOCK_DISCARD | d3d9.D3DLOCK_NOOVERWRITE):
            return "sync", "plain-lock"
        return "async", ""

    async def lock(self, res: Resource, offset: int = 0, size: int = 0, flags: int = 0, *,
                   subresource: int = 0) -> LockedView:
        """``Lock``: a writable view of real bytes. ``size=0`` locks to the end.

        Dynamic resources locked with DISCARD or NOOVERWRITE go through LockAsync on this thread
        (and a successful Discard enqueues Rename); everything else, and every failed LockAsync,
        takes the synchronous path. Raises :class:`~runtime.d3d9.D3DError` on failure (e.g.
        WASSTILLDRAWING for DONOTWAIT on a busy resource)."""
        self._check_open()
        async with self._api:
            res = self._resource(res)
            if flags & ~d3d9.D3DLOCK_VALID or not isinstance(offset, int) or offset < 0:
                raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, "bad lock flags or offset")
            discard_nooverwrite = d3d9.D3DLOCK_DISCARD | d3d9.D3DLOCK_NOOVERWRITE
            if flags & discard_nooverwrite == discard_nooverwrite and (
                "lockasync-conflicting-flags" not in self.bugs
            ):
                raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, "DISCARD and NOOVERWRITE together")
            if flags & d3d9.D3DLOCK_READONLY and flags & d3d9.D3DLOCK_DISCARD:
                raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, "READONLY and DISCARD together")
            if not isinstance(subresource, int) or not 0 <= subresource < len(res.levels):
                raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL,
                                    f"no subresource {subresource!r} (the resource has "
                                    f"{len(res.levels)})")
            whole = res.levels[subresource]
            size = size or whole - offset
            if size <= 0 or offset + size > whole:
                raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, "lock range outside the resource")
            if subresource in res.locks:
                raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, "resource is already locked")
            path, reason = self._lock_path(res, flags)
            if path == "async":
                view, failure = await self._lock_async(res, offset, size, flags, subresource)
                if view is not None:
                    return view
                reason = f"lockasync-failed:{failure}"
            self._count_sync(reason)
            return await self._lock_sync(res, offset, size, flags, subresource)

    async def _lock_async(self, res: Resource, offset: int, size: int, flags: int, sub: int
                          ) -> tuple[LockedView | None, str]:
        """LockAsync on this thread; (view, "") or (None, short name of the failure code)."""
        f = D3DDDI_LOCKASYNCFLAGS
        af = 0
        if flags & d3d9.D3DLOCK_DISCARD:
            af |= f.Discard
        if flags & d3d9.D3DLOCK_NOOVERWRITE:
            af |= f.NoOverwrite
        if res.sysmem:
            af |= f.NotifyOnly  # LA-17: runtime-allocated system memory
        partial = offset != 0 or size != res.levels[sub]
        if partial:
            af |= f.RangeValid
            if "lockasync-two-regions" in self.bugs:
                af |= f.AreaValid
        if "lockasync-reserved-bit" in self.bugs:
            af |= 0x80
        # LA-9: tell the driver when the runtime's own queue holds no reference to the resource
        if res.queued_refs == 0 or "noexistingrefs-always" in self.bugs:
            af |= f.NoExistingReferences
        la = D3DDDIARG_LOCKASYNC(
            resource=res.driver_handle, subresource_index=sub, flags=int(af),
            range=D3DDDIRANGE(offset, size) if partial else None,
        )
        hr = await self._ddi("LockAsync", la)
        name = kmd.hresult_name(hr)
        short = name.split("ERR_")[-1] if "ERR_" in name else name
        self._lock_async_results[name] = self._lock_async_results.get(name, 0) + 1
        if kmd.FAILED(hr):
            return None, short
        ptr = _SysmemWindow(res.system_mem, offset, size) if res.sysmem else la.surf_data
        view = LockedView(res, ptr, offset, size, read_only=False, path="async")
        res.locks[sub] = _LockState("async", offset, size, flags, view)
        if af & f.Discard:
            res.forget_contents()
            cookie = la.cookie
            if "rename-wrong-cookie" in self.bugs:
                cookie = la.cookie ^ 0x5A5A0000  # a handle no LockAsync returned
            res.last_cookie = la.cookie
            times = 2 if "rename-twice" in self.bugs else 1
            for _ in range(times):
                if self.funcs is not None and self.funcs.pfn_rename is None:
                    break  # lockasync-without-triple: nowhere to send it
                self._renames += 1
                if "rename-on-app-thread" in self.bugs:
                    await self._ddi("Rename", D3DDDIARG_RENAME(res.driver_handle, sub, cookie))
                    continue
                await self._enqueue(
                    "Rename", D3DDDIARG_RENAME(res.driver_handle, sub, cookie), (res,),
                    front="rename-jumps-queue" in self.bugs,
                )
        return view, ""

    async def _lock_sync(self, res: Resource, offset: int, size: int, flags: int, sub: int
                         ) -> LockedView:
        f = D3DDDI_LOCKFLAGS
        lf = 0
        for app, ddi in ((d3d9.D3DLOCK_READONLY, f.ReadOnly), (d3d9.D3DLOCK_DISCARD, f.Discard),
                         (d3d9.D3DLOCK_NOOVERWRITE, f.NoOverwrite),
                         (d3d9.D3DLOCK_DONOTWAIT, f.DoNotWait)):
            if flags & app:
                lf |= ddi
        if res.usage & d3d9.D3DUSAGE_WRITEONLY and not flags & d3d9.D3DLOCK_READONLY:
            lf |= f.WriteOnly
        if res.sysmem:
            lf |= f.NotifyOnly  # LK-10
        partial = offset != 0 or size != res.levels[sub]
        if partial:
            lf |= f.RangeValid
        lk = D3DDDIARG_LOCK(resource=res.driver_handle, subresource_index=sub, flags=int(lf),
                            range=D3DDDIRANGE(offset, size) if partial else None)
        hr = await self._sync_call("Lock", lk, (res,))
        if kmd.FAILED(hr):
            raise d3d9.D3DError(hr, "Lock failed")
        ptr = _SysmemWindow(res.system_mem, offset, size) if res.sysmem else lk.surf_data
        view = LockedView(res, ptr, offset, size, read_only=bool(flags & d3d9.D3DLOCK_READONLY))
        res.locks[sub] = _LockState("sync", offset, size, flags, view)
        if flags & d3d9.D3DLOCK_DISCARD:
            res.forget_contents()
        return view

    async def unlock(self, res: Resource, *, subresource: int = 0) -> None:
        """``Unlock``: UnlockAsync on this thread for an async lock (UA-2), the synchronous
        ``Unlock`` otherwise. Unlocking something not locked is still forwarded to the driver,
        whose ``E_INVALIDARG`` (UA-3, LK-13) becomes ``D3DERR_INVALIDCALL``."""
        self._check_open()
        async with self._api:
            res = self._resource(res)
            if not isinstance(subresource, int) or not 0 <= subresource < len(res.levels):
                raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, f"no subresource {subresource!r}")
            sub = subresource
            st = res.locks.get(sub)
            if st is None:
                path = self._lock_path(res, d3d9.D3DLOCK_DISCARD)[0]
            else:
                path = st.path
                if path == "sync" and "unlockasync-after-sync-lock" in self.bugs and self.mp:
                    path = "async"
            if path == "async":
                ua = D3DDDIARG_UNLOCKASYNC(
                    res.driver_handle, sub,
                    int(D3DDDI_UNLOCKASYNCFLAGS.NotifyOnly) if res.sysmem else 0,
                )
                hr = await self._ddi("UnlockAsync", ua)
            else:
                ul = D3DDDIARG_UNLOCK(res.driver_handle, sub,
                                      int(D3DDDI_UNLOCKFLAGS.NotifyOnly) if res.sysmem else 0)
                hr = await self._sync_call("Unlock", ul, (res,))
            if st is not None and st.view is not None:
                st.view._kill()
            res.locks.pop(sub, None)
            if kmd.FAILED(hr):
                if hr == kmd.E_INVALIDARG:
                    raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, "resource was not locked")
                raise d3d9.D3DError(hr, "Unlock failed")

    # -- drawing

    async def set_stream_source(self, stream: int, res: Resource, offset: int, stride: int
                                ) -> None:
        """``SetStreamSource``: bind ``res`` to vertex stream ``stream`` (queued)."""
        self._check_open()
        async with self._api:
            res = self._resource(res)
            if not res.buffer:
                raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, "only buffers can be vertex streams")
            if stride <= 0 or offset < 0:
                raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, "stride must be > 0, offset >= 0")
            self._streams[stream] = (res, offset, stride)
            await self._enqueue(
                "SetStreamSource", D3DDDIARG_SETSTREAMSOURCE(stream, res.driver_handle, offset,
                                                             stride), (res,))

    async def draw_primitive(self, primitive_type: int, start_vertex: int, vertex_count: int
                             ) -> int:
        """``DrawPrimitive`` (queued). Returns the draw's id; the bytes it references are
        snapshotted now, in program order, for the data oracle."""
        self._check_open()
        async with self._api:
            if not self._streams:
                raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, "no stream source is set")
            if start_vertex < 0 or vertex_count <= 0:
                raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, "bad vertex range")
            # LK-8: the driver never receives a draw from a buffer locked through Lock (a
            # NoOverwrite LockAsync is the sanctioned render-while-locked path, LA-15)
            for s_ in sorted(self._streams):
                held = self._streams[s_][0].locks.get(0)
                if held is not None and held.path == "sync" and (
                    "draw-while-locked" not in self.bugs
                ):
                    raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL,
                                        "draw from a buffer that is locked: unlock it first")
            draw_id = next(self._draw_ids)
            reads = []
            for s in sorted(self._streams):
                res, off, stride = self._streams[s]
                a = off + start_vertex * stride
                n = vertex_count * stride
                if a + n > res.size:
                    raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, "draw reads past the buffer end")
                reads.append(StreamRead(s, res.handle, a, n, bytes(res.shadow[a : a + n]),
                                        bytes(res.defined[a : a + n])))
            eng = current_engine()
            self.draws.append(DrawRecord(draw_id, eng.current_thread().name, eng.step, reads))
            if eng.tracing:
                eng.emit("rt.draw", device=self.name, draw_id=draw_id,
                          reads=[[r.resource, r.offset, r.length] for r in reads])
            refs = tuple(self._streams[s][0] for s in sorted(self._streams))
            await self._enqueue(
                "DrawPrimitive",
                D3DDDIARG_DRAWPRIMITIVE(primitive_type, start_vertex, vertex_count, draw_id), refs)
            return draw_id

    async def flush(self) -> None:
        """Ask the driver to submit what it has (queued ``Flush``)."""
        self._check_open()
        async with self._api:
            await self._enqueue("Flush", None)

    async def present(self) -> None:
        """``Present``: queued; blocks while ``max_frame_latency`` presents are ahead of the
        worker. Reports a deferred error from a batched call (e.g. device removed)."""
        self._check_open()
        async with self._api:
            self._frames += 1
            if self.mp:
                if self._frames_queued >= self.config.max_frame_latency:
                    self._count_sync("frame-latency")
                    await self._frame_cond.wait_for(
                        lambda: self._frames_queued < self.config.max_frame_latency,
                        what=f"frame latency on {self.name}",
                    )
                self._frames_queued += 1
            cmd = await self._enqueue("Present", D3DDDIARG_PRESENT(frame=self._frames))
            if not self.mp and cmd is not None and kmd.FAILED(cmd.result or 0):
                raise d3d9.D3DError(cmd.result or 0, "Present failed")
            if self._deferred_error:
                hr, self._deferred_error = self._deferred_error, 0
                raise d3d9.D3DError(hr, "an earlier batched call failed")

    # -- statistics

    def statistics(self) -> DeviceStatistics:
        return DeviceStatistics(
            ddi_calls={k: dict(v) for k, v in self._ddi_calls.items()},
            lock_async_results=dict(self._lock_async_results),
            renames=self._renames,
            syncs=dict(self._syncs),
            queue_high_water=self._queue.high_water if self._queue else 0,
            command_buffers_submitted=self.callbacks.render_ok,
            frames=self._frames,
            draws=len(self.draws),
            mp_layer=self.mp,
            driver_version=self.driver_version,
        )


class _SysmemWindow:
    """A view on the runtime's own system memory for a NotifyOnly lock (LA-17: the driver's
    ``pSurfData`` is ignored)."""

    def __init__(self, mem: bytearray | None, offset: int, size: int) -> None:
        assert mem is not None
        self._mem, self._off, self._size = mem, offset, size

    def write(self, offset: int, data: bytes) -> None:
        a = self._off + offset
        self._mem[a : a + len(data)] = data

    def read(self, offset: int, n: int) -> bytes:
        a = self._off + offset
        return bytes(self._mem[a : a + n])
