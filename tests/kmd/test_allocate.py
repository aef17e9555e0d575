"""The pfnAllocateCb / pfnDeallocateCb kernel path: D3DKMTCreateAllocation through the
miniport's DxgkDdiCreateAllocation (AC-*, CA-*), its three failure codes (out of video memory,
invalid argument, device removed), system memory, primaries, resources and their handle
queries (HD-*), and deallocation (DA-*, Q8)."""

from __future__ import annotations

from typing import Any

import kmd
from kmd import (
    D3DDDI_ALLOCATIONINFO,
    D3DKMT_CREATEALLOCATION,
    D3DKMT_DESTROYALLOCATION,
    AllocationDesc,
    CmdDraw,
    KernelConfig,
)
from kmd import D3DDDI_ALLOCATIONINFO_FLAGS as AIF
from kmd import DXGK_HANDLE_TYPE as HT
from kmd.miniport import MiniportAllocation, MiniportResource
from tests.support.kernel import OK, Rig, run

INVALID = kmd.STATUS_INVALID_PARAMETER


def info(size: int = 8192, **kw: Any) -> D3DDDI_ALLOCATIONINFO:
    desc = kw.pop("desc", AllocationDesc(size=size))
    return D3DDDI_ALLOCATIONINFO(private_driver_data=desc, **kw)


async def create(rig: Rig, *infos: D3DDDI_ALLOCATIONINFO, **kw: Any) -> kmd.NTSTATUS:
    ca = D3DKMT_CREATEALLOCATION(device=kw.pop("device", rig.device), allocation_info=list(infos))
    for k, v in kw.items():
        setattr(ca, k, v)
    st = await kmd.D3DKMTCreateAllocation(rig.k, ca)
    create.last = ca  # type: ignore[attr-defined]
    return st


def test_video_allocation_goes_through_the_miniport() -> None:
    async def main() -> None:
        rig = await Rig().setup()
        i = info(5000)
        assert await create(rig, i) == OK
        assert i.allocation != 0
        data = rig.k.callbacks.dxgk_cb_get_handle_data(i.allocation, HT.DXGK_HANDLE_ALLOCATION)
        assert isinstance(data, MiniportAllocation) and data.size == 5000  # HD-5
        assert dict(rig.k.statistics().ddi_calls)["DxgkDdiCreateAllocation"] == 1  # AC-1
        st, lk = await rig.lock(i.allocation)
        assert st == OK and len(lk.data) == 8192  # CA-6

    run(main)


def test_out_of_video_memory() -> None:
    cfg = KernelConfig(
        segments=(kmd.SegmentDesc("aperture", 64 * 1024, "aperture"),),
        system_memory_bytes=64 * 1024,
    )

    async def main() -> None:
        rig = await Rig(cfg).setup()
        # bigger than every segment it may live in: virtualization can't help (AC-11)
        big = info(128 * 1024)
        assert await create(rig, big) == kmd.STATUS_GRAPHICS_NO_VIDEO_MEMORY == 0xC01E0100
        assert big.allocation == 0  # AC-12
        hr = kmd.ntstatus_to_hresult_for_callback(
            kmd.STATUS_GRAPHICS_NO_VIDEO_MEMORY, "pfnAllocateCb"
        )
        assert hr == kmd.D3DERR_OUTOFVIDEOMEMORY == 0x8876017C
        # fill the segment and the system-memory budget
        made = []
        for _ in range(4):
            i = info(32 * 1024)
            assert await create(rig, i) == OK
            made.append(i.allocation)
        before = rig.k.statistics()
        a, b = info(32 * 1024), info(32 * 1024)
        assert await create(rig, a, b) == kmd.STATUS_GRAPHICS_NO_VIDEO_MEMORY
        assert a.allocation == b.allocation == 0  # all or nothing
        after = rig.k.statistics()
        assert after.allocations == before.allocations == 4
        assert after.live_instances == before.live_instances
        rig.invariants()

    run(main)


def test_invalid_arguments() -> None:
    async def main() -> None:
        rig = await Rig(KernelConfig(vidpn_sources=2)).setup()
        other = await rig.new_device()
        ca = D3DKMT_CREATEALLOCATION(device=other, allocation_info=[info()], create_resource=True)
        assert await kmd.D3DKMTCreateAllocation(rig.k, ca) == OK
        foreign_res = ca.resource
        bad: list[tuple[list[D3DDDI_ALLOCATIONINFO], dict[str, Any]]] = [
            ([], {}),  # AC-2
            ([info(desc=None)], {}),  # CA-2: video memory needs private data
            ([info(desc="garbage")], {}),
            ([info(desc=AllocationDesc(size=0))], {}),
            ([info(desc=AllocationDesc(size=4096, segments="moon"))], {}),
            ([info(desc=AllocationDesc(size=4096, cached=True, cpu_visible=False))], {}),  # CA-11
            ([info(desc=AllocationDesc(size=4096, use_alternate_va=True))], {}),  # CA-14
            ([info(flags=AIF.Stereo)], {}),  # AC-8
            ([info(flags=0x10)], {}),  # AC-8 reserved
            ([info(vidpn_source_id=1)], {}),  # AC-7 / Q12 on a non-primary
            ([info(flags=AIF.Primary, vidpn_source_id=2)], {}),  # no such source
            ([info(system_mem=bytearray(100))], {}),  # CA-16 page multiple
            ([info(system_mem=b"\0" * 4096)], {}),  # must be writable
            ([info(flags=AIF.Primary, system_mem=bytearray(4096))], {}),  # AC-9
            ([info()], {"num_allocations": 2}),
            ([info()], {"create_resource": True, "resource": 0x40000040}),  # CA-4
            ([info()], {"resource": 0x7FFFFFC0}),  # stale resource
            ([info()], {"resource": foreign_res}),  # another device's resource
            ([info()], {"device": rig.context}),
            (["not an allocation info"], {}),  # type: ignore[list-item]
        ]
        calls = dict(rig.k.statistics().ddi_calls)["DxgkDdiCreateAllocation"]
        for infos, kw in bad:
            st = await create(rig, *infos, **kw)
            assert st == INVALID == 0xC000000D, (infos, kw)
            assert all(getattr(i, "allocation", 0) == 0 for i in infos)
        hr = kmd.ntstatus_to_hresult_for_callback(INVALID, "pfnAllocateCb")
        assert hr == kmd.E_INVALIDARG
        after = dict(rig.k.statistics().ddi_calls)["DxgkDdiCreateAllocation"]
        assert after - calls == 6  # only the private-data cases reached the miniport
        assert rig.k.statistics().allocations == 1
        # VidPnSourceId = D3DDDI_ID_NOTAPPLICABLE (0) on a non-primary is fine
        assert await create(rig, info(vidpn_source_id=kmd.D3DDDI_ID_NOTAPPLICABLE)) == OK

    run(main)


def test_device_removed_never_calls_the_miniport() -> None:
    async def main() -> None:
        rig = await Rig().setup()
        assert await create(rig, info()) == OK
        rig.k.inject_removal(rig.device)
        i = info()
        assert await create(rig, i) == kmd.STATUS_DEVICE_REMOVED == 0xC00002B6
        assert i.allocation == 0
        assert dict(rig.k.statistics().ddi_calls)["DxgkDdiCreateAllocation"] == 1  # AC-10
        hr = kmd.ntstatus_to_hresult_for_callback(kmd.STATUS_DEVICE_REMOVED, "pfnAllocateCb")
        assert hr == kmd.D3DDDIERR_DEVICEREMOVED == 0x88760870

    run(main)


def test_system_memory_allocation_uses_the_callers_memory() -> None:
    async def main() -> None:
        rig = await Rig().setup()
        mem = bytearray(8192)
        mem[0:5] = b"hello"
        i = D3DDDI_ALLOCATIONINFO(system_mem=mem)  # AC-6: no private data needed
        assert await create(rig, i) == OK
        st, lk = await rig.lock(i.allocation)
        assert st == OK and lk.data.read(0, 5) == b"hello"
        lk.data.write(5, b" world")
        assert bytes(mem[:11]) == b"hello world"  # the caller's memory is the backing store
        assert await rig.unlock(i.allocation) == OK
        st, r = await rig.render([CmdDraw(1, 0, 0, 11)], [i.allocation])
        assert st == OK
        await rig.k.wait_for_fence(r.fence)
        assert rig.k.dma_records[-1].commands[0].data == b"hello world"
        # ExistingSysMem is mapped through an aperture segment, never in local memory
        assert rig.k.statistics().segment_usage[1][1] == 8192
        assert rig.k.statistics().system_memory_used == 0
        # Discard can't rename caller memory: ignored like KL-18
        st, lk = await rig.lock(i.allocation, kmd.D3DDDICB_LOCKFLAGS.LockEntire | 0x80)
        assert st == OK and lk.allocation == i.allocation

    run(main)


def test_primary_with_vidpn_source() -> None:
    cfg = KernelConfig(
        segments=(
            kmd.SegmentDesc("local", 16 * kmd.MiB, "memory", cpu_visible=False),
            kmd.SegmentDesc("visible", 8 * kmd.MiB, "memory", cpu_visible=True),
            kmd.SegmentDesc("aperture", 16 * kmd.MiB, "aperture"),
        ),
        vidpn_sources=2,
    )

    async def main() -> None:
        rig = await Rig(cfg).setup()
        p = info(64 * 1024, flags=AIF.Primary | AIF.Stereo, vidpn_source_id=1)
        assert await create(rig, p) == OK
        mp = rig.k.callbacks.dxgk_cb_get_handle_data(p.allocation, HT.DXGK_HANDLE_ALLOCATION)
        assert mp.primary and mp.vidpn_source_id == 1
        assert mp.flags & kmd.DXGK_ALLOCATIONINFOFLAGS.CpuVisible  # implicitly CPU accessible
        usage = dict((n, u) for n, u, _ in rig.k.statistics().segment_usage)
        assert usage["visible"] == 64 * 1024 and usage["local"] == 0  # SEG-8
        st, _ = await rig.lock(p.allocation)
        assert st == OK

    run(main)


def test_resources_group_allocations() -> None:
    async def main() -> None:
        rig = await Rig().setup()
        cb = rig.k.callbacks
        infos = [info(), info(), info()]
        ca = D3DKMT_CREATEALLOCATION(
            device=rig.device, allocation_info=infos, create_resource=True, private_driver_data=1
        )
        assert await kmd.D3DKMTCreateAllocation(rig.k, ca) == OK
        res = ca.resource
        assert res != 0  # AC-3
        children = []
        i = 0
        while (h := cb.dxgk_cb_enum_handle_children(res, i)) != 0:  # HD-2
            children.append(h)
            i += 1
        assert children == [x.allocation for x in infos]
        assert all(cb.dxgk_cb_get_handle_parent(h) == res for h in children)  # HD-3
        mres = cb.dxgk_cb_get_handle_data(res, HT.DXGK_HANDLE_RESOURCE)
        assert isinstance(mres, MiniportResource) and mres.private_driver_data == 1
        assert cb.dxgk_cb_get_handle_data(res, HT.DXGK_HANDLE_RESOURCE, True) is None  # HD-4
        assert cb.dxgk_cb_get_handle_data(res, HT.DXGK_HANDLE_ALLOCATION) is None
        # adding to the resource replaces its private data (AC-5)
        more = info()
        ca2 = D3DKMT_CREATEALLOCATION(
            device=rig.device, allocation_info=[more], resource=res, private_driver_data=2
        )
        assert await kmd.D3DKMTCreateAllocation(rig.k, ca2) == OK
        assert cb.dxgk_cb_enum_handle_children(res, 3) == more.allocation
        assert cb.dxgk_cb_get_handle_data(res, HT.DXGK_HANDLE_RESOURCE).private_driver_data == 2
        # device-owned allocation: no parent (HD-3)
        solo = info()
        assert await create(rig, solo) == OK
        assert cb.dxgk_cb_get_handle_parent(solo.allocation) == 0
        assert cb.dxgk_cb_get_handle_parent(12345) == 0
        assert cb.dxgk_cb_enum_handle_children(solo.allocation, 0) == 0
        # pfnDeallocateCb with hResource frees all of them (DA-1)
        d = D3DKMT_DESTROYALLOCATION(device=rig.device, resource=res)
        assert await kmd.D3DKMTDestroyAllocation(rig.k, d) == OK
        assert cb.dxgk_cb_enum_handle_children(res, 0) == 0
        assert rig.k.statistics().allocations == 1
        rig.invariants()

    run(main)


def test_deallocate_one_by_one_then_the_resource() -> None:
    async def main() -> None:
        rig = await Rig().setup()
        infos = [info(), info()]
        ca = D3DKMT_CREATEALLOCATION(device=rig.device, allocation_info=infos, create_resource=True)
        assert await kmd.D3DKMTCreateAllocation(rig.k, ca) == OK
        hs = [x.allocation for x in infos]
        d = D3DKMT_DESTROYALLOCATION(device=rig.device, allocations=[*hs, 777])
        assert await kmd.D3DKMTDestroyAllocation(rig.k, d) == INVALID  # DA-3, nothing freed
        assert rig.k.statistics().allocations == 2
        d = D3DKMT_DESTROYALLOCATION(device=rig.device, allocations=[hs[0], hs[0]])
        assert await kmd.D3DKMTDestroyAllocation(rig.k, d) == INVALID
        d = D3DKMT_DESTROYALLOCATION(device=rig.device, allocations=hs)
        assert await kmd.D3DKMTDestroyAllocation(rig.k, d) == OK
        assert rig.k.statistics().resources == 1  # DA-2: the resource object outlives them
        d = D3DKMT_DESTROYALLOCATION(device=rig.device, resource=ca.resource)
        assert await kmd.D3DKMTDestroyAllocation(rig.k, d) == OK
        assert rig.k.statistics().resources == 0
        assert await kmd.D3DKMTDestroyAllocation(rig.k, d) == INVALID  # stale

    run(main)


def test_destroy_device_frees_and_counts_what_the_driver_left() -> None:
    async def main() -> None:
        rig = await Rig().setup()
        freed = await rig.alloc()
        kept = [info(), info()]
        ca = D3DKMT_CREATEALLOCATION(device=rig.device, allocation_info=kept, create_resource=True)
        assert await kmd.D3DKMTCreateAllocation(rig.k, ca) == OK
        await rig.alloc()  # a device-owned allocation, never freed either
        d = D3DKMT_DESTROYALLOCATION(device=rig.device, allocations=[freed])
        assert await kmd.D3DKMTDestroyAllocation(rig.k, d) == OK
        assert rig.k.statistics().freed_at_device_destroy == 0
        dd = kmd.D3DKMT_DESTROYDEVICE(device=rig.device)
        assert await kmd.D3DKMTDestroyDevice(rig.k, dd) == OK
        s = rig.k.statistics()
        # three allocations and one resource object left: the kernel freed them all
        assert (s.freed_at_device_destroy, s.allocations, s.resources) == (4, 0, 0)

    run(main)


def test_deallocate_while_locked_and_in_flight() -> None:
    """Q8: implicit unlock (the pointer dies), handles die at once, bytes live until the GPU
    is done with them; DA-4: works after removal."""

    async def main() -> None:
        rig = await Rig().setup()
        h = await rig.alloc(segments="aperture")
        st, lk = await rig.lock(h, kmd.D3DDDICB_LOCKFLAGS.LockEntire)
        lk.data.write(0, b"keep")
        await rig.unlock(h)
        st, r = await rig.render([kmd.CmdSpin(1_000_000), CmdDraw(5, 0, 0, 4)], [h])
        st, lk = await rig.lock(
            h, kmd.D3DDDICB_LOCKFLAGS.LockEntire | kmd.D3DDDICB_LOCKFLAGS.IgnoreSync | 4
        )
        assert st == OK
        d = D3DKMT_DESTROYALLOCATION(device=rig.device, allocations=[h])
        assert await kmd.D3DKMTDestroyAllocation(rig.k, d) == OK
        assert lk.data.state == "freed"
        assert rig.k.statistics().live_instances == 1  # still referenced by fence r.fence
        await rig.k.wait_for_fence(r.fence)
        assert rig.k.dma_records[-1].commands[1].data == b"keep"
        assert rig.k.statistics().live_instances == 0
        h2 = await rig.alloc()
        rig.k.inject_removal(rig.device)
        d = D3DKMT_DESTROYALLOCATION(device=rig.device, allocations=[h2])
        assert await kmd.D3DKMTDestroyAllocation(rig.k, d) == OK  # DA-4
        rig.invariants()

    run(main)


class _EvilInt(int):
    """An int whose comparisons, hash and conversions raise (the UMD's code, untrusted)."""

    def _boom(self, *a: Any, **k: Any) -> Any:
        raise RuntimeError("evil int dunder")

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __hash__ = __index__ = __int__ = _boom
    __and__ = __rand__ = __sub__ = __rsub__ = __add__ = __radd__ = __bool__ = __format__ = _boom


class _Evil:
    def _boom(self, *a: Any, **k: Any) -> Any:
        raise RuntimeError("evil dunder")

    __eq__ = __ne__ = __hash__ = __str__ = __repr__ = __format__ = _boom


def test_hostile_private_data_and_commands_get_a_code_not_an_exception() -> None:
    """RD-2 / CA-2: the miniport takes an AllocationDesc's size and alignment only as exact
    ints and its segments and kind only as exact strs (an int subclass's ``<``, an object's
    ``==`` are the UMD's code), and reads a command's fields once as plain values, so an
    IntEnum-like offset still renders (``kmd/miniport.py:_int``)."""

    async def main() -> None:
        rig = await Rig().setup()
        for desc in (AllocationDesc(size=_EvilInt(4096)),
                     AllocationDesc(size=16, alignment=_EvilInt(0)),
                     AllocationDesc(size=16, segments=_Evil()),  # type: ignore[arg-type]
                     AllocationDesc(size=16, kind=_Evil())):  # type: ignore[arg-type]
            assert await create(rig, info(desc=desc)) == INVALID, desc
        i = info(4096)
        assert await create(rig, i) == OK
        draw = CmdDraw(draw_id=_EvilInt(1), alloc_index=_EvilInt(0), offset=_EvilInt(0),
                       length=_EvilInt(16))
        st, _r = await rig.render([draw], [i.allocation])
        assert st == OK, st
        await rig.k.wait_idle()
        assert rig.k.dma_records[-1].draw_ids == (1,)  # the plain value, recorded

    run(main)
