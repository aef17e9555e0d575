"""Contract gaps the runtime used to have (issue 11) and the mutants that must not survive
(issue 16): sysmem Discard renames, pfnAllocateCb's private data / E_OUTOFMEMORY / hKMResource,
a failed unlock, the queue high-water mark, the frame latency."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

import kmd
import runtime as rt
import umd
import vthreads as vt
from runtime import d3d9
from umd.ddi import D3DDDICB_ALLOCATE, D3DDDICB_DEALLOCATE
from wddmemu._runner import RunSpec, run_scenario

from .test_device import DISCARD, NOOVERWRITE, TRI, Box, pattern, run_app

E_OUTOFMEMORY = int(kmd.E_OUTOFMEMORY)


# ---- RN-2, LA-17, LA-18: a NotifyOnly Discard renames nothing --------------------------------


def test_a_discard_lock_of_a_sysmem_surface_at_0xb_queues_no_rename() -> None:
    async def body(dev: Any, box: Box) -> list[int]:
        surf = await dev.create_surface(16, 4)
        errors = []
        for f in range(3):
            v = await dev.lock(surf, 0, 0, DISCARD)
            assert v.path == "async"  # LockAsync with NotifyOnly (LA-4 at >= 0xB)
            v.write(0, pattern(f, 64))
            await dev.unlock(surf)
            try:
                await dev.present()
            except d3d9.D3DError as e:  # a Rename's E_INVALIDARG surfaced here
                errors.append(e.hr)
        return errors

    r, box = run_app(body, version=0xB)
    assert r.ok, r.summary()
    assert box.value == []
    s = box.devices[0].statistics()
    assert s.ddi_calls["LockAsync"] == {"app": 3}
    assert "Rename" not in s.ddi_calls and s.renames == 0


# ---- pfnAllocateCb: private data (AC-5), E_OUTOFMEMORY, hKMResource (AC-3) -----------------


def _info(size: int = 4096) -> kmd.D3DDDI_ALLOCATIONINFO:
    return kmd.D3DDDI_ALLOCATIONINFO(private_driver_data=kmd.AllocationDesc(size=size))


def test_allocate_cb_forwards_the_resource_private_data_and_returns_hkmresource() -> None:
    async def body(dev: Any, box: Box) -> None:
        cb = dev.callbacks
        km_dev = box.kernel.devices[dev.km_device]
        a = D3DDDICB_ALLOCATE(private_driver_data=b"first", rt_resource=0x7770,
                              allocation_info=[_info()])
        assert await cb.pfn_allocate_cb(dev.handle, a) == kmd.S_OK
        assert a.km_resource != 0 and a.km_resource in km_dev.resources  # AC-3
        assert km_dev.resources[a.km_resource].private_driver_data == b"first"
        # more allocations for the same resource: the new data replaces the old (AC-5)
        b = D3DDDICB_ALLOCATE(private_driver_data=b"second", rt_resource=0x7770,
                              allocation_info=[_info()])
        assert await cb.pfn_allocate_cb(dev.handle, b) == kmd.S_OK
        assert b.km_resource == a.km_resource
        assert km_dev.resources[a.km_resource].private_driver_data == b"second"
        # device-owned allocations: no hKMResource (AC-3)
        c = D3DDDICB_ALLOCATE(rt_resource=0, allocation_info=[_info()])
        assert await cb.pfn_allocate_cb(dev.handle, c) == kmd.S_OK and c.km_resource == 0
        assert c.allocation_info[0].allocation != 0
        assert await cb.pfn_deallocate_cb(dev.handle, D3DDDICB_DEALLOCATE(rt_resource=0x7770)) \
            == kmd.S_OK
        assert await cb.pfn_deallocate_cb(dev.handle, D3DDDICB_DEALLOCATE(
            allocations=[c.allocation_info[0].allocation])) == kmd.S_OK

    r, _ = run_app(body)
    assert r.failure is None, r.summary()


def test_allocate_cb_e_outofmemory_when_the_runtime_bookkeeping_is_full() -> None:
    async def body(dev: Any, box: Box) -> list[int]:
        km_dev = box.kernel.devices[dev.km_device]
        vb = await dev.create_vertex_buffer(256)
        before = len(km_dev.allocations)
        hrs = []
        for _ in range(2):
            try:
                await dev.create_vertex_buffer(256)
            except d3d9.D3DError as e:
                hrs.append(e.hr)
        assert len(km_dev.allocations) == before  # nothing reached the kernel
        # device-owned allocations need no entry
        c = D3DDDICB_ALLOCATE(rt_resource=0, allocation_info=[_info()])
        assert await dev.callbacks.pfn_allocate_cb(dev.handle, c) == kmd.S_OK
        await dev.callbacks.pfn_deallocate_cb(dev.handle, D3DDDICB_DEALLOCATE(
            allocations=[c.allocation_info[0].allocation]))
        # releasing the first resource frees its entry: the next create succeeds
        await dev.release(vb)
        vb2 = await dev.create_vertex_buffer(256)
        v = await dev.lock(vb2, 0, 0, DISCARD)
        v.write(0, pattern(1, 256))
        await dev.unlock(vb2)
        return hrs

    r, box = run_app(body, device=rt.DeviceConfig(max_km_resources=1))
    assert r.ok, r.summary()
    assert box.value == [E_OUTOFMEMORY, E_OUTOFMEMORY]
    with pytest.raises(ValueError, match="max_km_resources"):
        rt.DeviceConfig(max_km_resources=-1)


# ---- a failed unlock keeps the lock -------------------------------------------------------


class FlakyUnlockDriver:
    """The reference driver whose first ``failures`` UnlockAsync calls return E_OUTOFMEMORY
    without unlocking (the driver still holds the lock)."""

    def __init__(self, failures: int = 1) -> None:
        self.inner = umd.ReferenceDriver()
        self.failures = failures

    async def open_adapter(self, oa: Any) -> int:
        hr = await self.inner.open_adapter(oa)
        create = oa.adapter_funcs.pfn_create_device

        async def create_device(adapter: Any, cd: Any) -> int:
            hr = await create(adapter, cd)
            real = cd.device_funcs.pfn_unlock_async

            async def unlock_async(device: Any, args: Any) -> int:
                if self.failures:
                    self.failures -= 1
                    return E_OUTOFMEMORY
                return await real(device, args)

            cd.device_funcs.pfn_unlock_async = unlock_async
            return hr

        oa.adapter_funcs.pfn_create_device = create_device
        return hr


def test_a_failed_unlockasync_keeps_the_lock_and_the_view() -> None:
    async def body(dev: Any, box: Box) -> tuple[int, int]:
        vb = await dev.create_vertex_buffer(64)
        await dev.set_stream_source(0, vb, 0, 16)
        v = await dev.lock(vb, 0, 0, DISCARD)
        v.write(0, pattern(1, 64))
        with pytest.raises(d3d9.D3DError) as e:
            await dev.unlock(vb)
        assert e.value.hr == E_OUTOFMEMORY
        v.write(0, pattern(2, 64))  # still locked: the view still works
        with pytest.raises(d3d9.D3DError, match="already locked"):
            await dev.lock(vb, 0, 0, NOOVERWRITE)
        await dev.unlock(vb)  # the retry succeeds
        with pytest.raises(d3d9.D3DError, match="after unlock"):
            v.write(0, b"x")
        draw = await dev.draw_primitive(TRI, 0, 4)
        await dev.present()
        return draw, len(dev.draws)

    r, box = run_app(body, driver=FlakyUnlockDriver())
    assert r.ok, r.summary()
    draw, _ = box.value
    reads = [c for rec in box.kernel.dma_records for c in rec.commands
             if c.kind == "draw" and c.draw_id == draw]
    assert reads and reads[0].data == pattern(2, 64)
    assert box.devices[0].statistics().ddi_calls["UnlockAsync"] == {"app": 2}


# ---- statistics: the queue's high-water mark ----------------------------------------------


def test_queue_high_water_mark_is_reported() -> None:
    async def body(dev: Any, box: Box) -> None:
        vb = await dev.create_vertex_buffer(64)
        await dev.set_stream_source(0, vb, 0, 16)
        for _ in range(6):
            await dev.draw_primitive(TRI, 0, 4)
        await dev.present()

    for size in (1, 4, 16):
        r, box = run_app(body, device=rt.DeviceConfig(queue_size=size))
        assert r.ok, r.summary()
        hw = box.devices[0].statistics().queue_high_water
        assert 1 <= hw <= size, (size, hw)
    drv = umd.ReferenceDriver(umd.DriverConfig(implements=()))  # no MP layer, no queue
    r, box = run_app(body, driver=drv)
    assert box.devices[0].statistics().queue_high_water == 0


# ---- mutant: the frame latency's comparison -------------------------------------------------


class PresentsAhead:
    """The most presents queued and not yet made by the worker, from the trace."""

    def __init__(self) -> None:
        self.ahead = 0
        self.most = 0

    def __call__(self, ev: dict[str, Any]) -> None:
        if ev["event"] == "rt.queue.put" and ev["ddi"] == "Present":
            self.ahead += 1
            self.most = max(self.most, self.ahead)
        elif ev["event"] == "ddi.exit" and ev["ddi"] == "Present":
            self.ahead -= 1


@pytest.mark.parametrize("latency", [1, 2, 3])
def test_present_blocks_at_exactly_max_frame_latency(latency: int) -> None:
    watch = PresentsAhead()
    eng = vt.Engine("fifo", seed=0)
    eng.subscribe(watch)

    async def main() -> None:
        # a GPU slow enough that the app runs ahead of the worker
        k = kmd.Kernel(kmd.KernelConfig(dma_base_cost_ns=10**6))
        adapter = await rt.open_adapter(k, umd.ReferenceDriver())
        dev = await adapter.create_device(rt.DeviceConfig(max_frame_latency=latency))
        vb = await dev.create_vertex_buffer(64)
        await dev.set_stream_source(0, vb, 0, 16)
        for _ in range(8):
            await dev.draw_primitive(TRI, 0, 4)
            await dev.present()
        await dev.close()
        assert dev.statistics().syncs.get("frame-latency", 0) >= 1

    r = eng.run(main, name="app")
    assert r.failure is None, r.summary()
    assert watch.most == latency


# ---- seed 004: a Primary through the runtime, the UMD and pfnAllocateCb ---------------------


def test_the_primary_surface_scenario_creates_a_primary_in_the_kernel_and_runs_clean(
        tmp_path: Any) -> None:
    """``primary-surface`` reaches the kernel through CreateResource → pfnAllocateCb with
    ``D3DDDI_ALLOCATIONINFO.Flags.Primary`` on source 0 (placed CPU-accessible, SEG-8); its
    DISCARD Lock keeps the one instance (KL-18) and the bytes read back are the last written."""
    path = tmp_path / "t.jsonl"
    for version in (0xA, 0xB):
        out = run_scenario(RunSpec("primary-surface", ddi_version=version), trace=path)
        assert out.run.ok and not out.run.violations, out.run.summary()
    events = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    prim = [e for e in events if e["event"] == "kmd.alloc.create" and e["primary"]]
    assert len(prim) == 1 and prim[0]["kind"] == "primary" and prim[0]["segment"] == "aperture"
    handle = prim[0]["allocation"]
    assert not [e for e in events if e["event"] == "kmd.rename" and e["allocation"] == handle]
    discards = [e for e in events if e["event"] == "cb.exit" and e["cb"] == "pfnLockCb"
                and e["allocation"] == handle and int(e["flags"]) & kmd.D3DDDICB_LOCKFLAGS.Discard]
    assert discards and all(e["new_allocation"] == handle for e in discards)


def test_create_primary_refuses_an_empty_surface() -> None:
    async def body(dev: Any, box: Box) -> str:
        with pytest.raises(d3d9.D3DError) as err:
            await dev.create_primary(0, 4)
        return str(err.value)

    _result, box = run_app(body)
    assert "width and height" in box.value
