"""Submission: DxgkDdiRender validation codes, locked allocations (RCB-5/LA-15), paging and
eviction (SCH-2), the GPU engine really reading bytes over virtual time, fences (SCH-5, Q10)."""

from __future__ import annotations

import kmd
import vthreads as vt
from kmd import D3DDDICB_LOCKFLAGS as LF
from kmd import CmdDraw, CmdNop, CmdSpin, CmdWrite, KernelConfig
from tests.support.kernel import OK, Rig, kmd_events, run, run_traced


def test_gpu_reads_bytes_when_it_executes_and_records_them(backend: str) -> None:
    cfg = KernelConfig(dma_base_cost_ns=100, dma_cost_per_command_ns=1_000)

    async def main() -> None:
        rig = await Rig(cfg).setup()
        h = await rig.alloc(segments="aperture")
        _, lk = await rig.lock(h, LF.LockEntire | LF.IgnoreSync | LF.DonotWait)
        lk.data.write(0, b"first")
        st, r = await rig.render(
            [CmdDraw(1, 0, 0, 5), CmdSpin(10_000), CmdDraw(2, 0, 0, 5), CmdNop()], [h]
        )
        assert st == OK and r.fence == 1 and r.queued_buffer_count == 1
        await vt.sleep(5_000)  # the GPU has done draw 1, not draw 2
        lk.data.write(0, b"later")  # (a NoOverwrite misuse: the GPU sees it)
        await rig.k.wait_for_fence(r.fence)
        rec = rig.k.dma_records[-1]
        assert rec.status == "completed" and rec.draw_ids == (1, 2)
        assert [c.data for c in rec.commands if c.kind == "draw"] == [b"first", b"later"]
        assert rec.commands[0].digest == kmd.digest(b"first")
        assert rec.started_ns == 0 and rec.ended_ns == 100 + 4 * 1_000 + 10_000
        assert [c.t for c in rec.commands] == [100, 1_100, 12_100, 13_100]

    _, events = run_traced(main, backend=backend)
    (end,) = kmd_events(events, "kmd.dma.end")
    assert end["draws"] == [1, 2] and end["result"] == "completed"


def test_gpu_writes_and_fences_are_monotonic_across_contexts() -> None:
    async def main() -> None:
        rig = await Rig().setup()
        dev2 = await rig.new_device()
        ctx2 = await rig.new_context(dev2)
        h1 = await rig.alloc(segments="aperture")
        h2 = await rig.alloc(segments="aperture", device=dev2)
        fences = []
        for i in range(4):
            st, r = await rig.render([CmdWrite(0, i, bytes([65 + i]))], [h1], writes=[True])
            assert st == OK
            fences.append(r.fence)
            st, r = await rig.render([CmdDraw(i, 0, 0, 1)], [h2], context=ctx2)
            assert st == OK
            fences.append(r.fence)
        assert fences == sorted(fences) == list(range(1, 9))
        await rig.k.wait_idle()
        assert [rec.fence for rec in rig.k.dma_records] == fences  # in-order completion
        st, lk = await rig.lock(h1)
        assert lk.data.read(0, 4) == b"ABCD"
        rig.invariants()

    run(main)


def test_dxgkddirender_codes() -> None:
    async def main() -> None:
        rig = await Rig().setup()
        h = await rig.alloc(size=4096, segments="aperture")
        other = await rig.new_device()
        foreign = await rig.alloc(segments="aperture", device=other)
        k = rig.k
        cases = [
            ([CmdDraw(1, 1, 0, 4)], [h], None, kmd.STATUS_INVALID_HANDLE),  # slot out of range
            ([CmdDraw(1, 0, 0, 4)], [0], None, kmd.STATUS_INVALID_HANDLE),  # RD-9 NULL slot
            ([CmdDraw(1, 0, 4090, 8)], [h], None, kmd.STATUS_INVALID_USER_BUFFER),  # overrun
            ([CmdWrite(0, 0, b"x")], [h], None, kmd.STATUS_PRIVILEGED_INSTRUCTION),  # RD-3
            (["launch missiles"], [h], None, kmd.STATUS_ILLEGAL_INSTRUCTION),
            ([CmdSpin(-1)], [h], None, kmd.STATUS_INVALID_PARAMETER),
            ([CmdDraw("x", 0, 0, 1)], [h], None, kmd.STATUS_INVALID_PARAMETER),
            ([CmdDraw(1, 0, 0, 4)], [h], 17, kmd.STATUS_INVALID_USER_BUFFER),  # length
            ([CmdDraw(1, 0, 0, 4)], [h, h], None, kmd.STATUS_INVALID_PARAMETER),  # RD-6
            ([CmdDraw(1, 0, 0, 4)], [foreign], None, kmd.STATUS_INVALID_PARAMETER),
            ([CmdDraw(1, 0, 0, 4)], [rig.device], None, kmd.STATUS_INVALID_PARAMETER),
        ]
        for cmds, hs, length, want in cases:
            r = kmd.D3DKMT_RENDER(
                context=rig.context,
                commands=cmds,
                allocation_list=[kmd.D3DDDI_ALLOCATIONLIST(x) for x in hs],
                command_length=length,
            )
            assert await kmd.D3DKMTRender(k, r) == want, (cmds, hs, length)
            assert r.fence == 0
        r = kmd.D3DKMT_RENDER(context=rig.device, commands=[], allocation_list=[])
        assert await kmd.D3DKMTRender(k, r) == kmd.STATUS_INVALID_PARAMETER  # RCB-4
        good = [CmdDraw(1, 0, 0, 4), CmdWrite(0, 8, b"abcde")]
        assert kmd.command_length(good) == 16 + 16 + 8
        r = kmd.D3DKMT_RENDER(
            context=rig.context,
            commands=good,
            allocation_list=[kmd.D3DDDI_ALLOCATIONLIST(h, write_operation=True)],
            command_length=40,
        )
        assert await kmd.D3DKMTRender(k, r) == OK
        assert r.fence == 1
        assert (
            kmd.ntstatus_to_hresult_for_callback(kmd.STATUS_INVALID_HANDLE, "pfnRenderCb")
            == kmd.D3DDDIERR_INVALIDHANDLE
        )

    run(main)


def test_render_of_a_locked_allocation() -> None:
    """RCB-5 / LA-15 / LCB-4 (Q9): a locked allocation may be rendered only from an aperture
    segment; VidMm moves it there if it can."""

    async def main() -> None:
        rig = await Rig(KernelConfig(swizzling_apertures=1)).setup()
        local = await rig.alloc(segments="local")
        anywhere = await rig.alloc(segments="any")
        aper = await rig.alloc(segments="aperture")
        swz = await rig.alloc(segments="any", swizzled=True)
        for h in (local, anywhere, aper, swz):
            st, _ = await rig.lock(h)
            assert st == OK
        st, _ = await rig.render([CmdDraw(1, 0, 0, 4)], [local])
        assert st == kmd.STATUS_GRAPHICS_CANT_RENDER_LOCKED_ALLOCATION
        hr = kmd.ntstatus_to_hresult_for_callback(st, "pfnRenderCb")
        assert hr == kmd.D3DDDIERR_CANTRENDERLOCKEDALLOCATION == 0xC0262111
        st, _ = await rig.render([CmdDraw(1, 0, 0, 4)], [swz])  # LCB-12: swizzle range held
        assert st == kmd.STATUS_GRAPHICS_CANT_RENDER_LOCKED_ALLOCATION
        st, _ = await rig.render([CmdDraw(1, 0, 0, 4), CmdDraw(2, 1, 0, 4)], [anywhere, aper])
        assert st == OK
        assert await rig.unlock(local) == OK
        st, _ = await rig.render([CmdDraw(1, 0, 0, 4)], [local])
        assert st == OK  # unlocked: paged back into local memory
        rig.invariants()

    run(main)


def test_a_renamed_local_only_instance_locked_in_system_memory_is_not_rendered() -> None:
    """LA-15 / RCB-5 (h7): a Discard lock of a local-only allocation renames it and, for CPU
    access, evicts the new instance to system memory (SEG-10) — legal; while it stays locked
    VidMm cannot render it (no aperture/AGP segment to move it to), and
    ``Kernel.renders_while_locked`` says so before any render does."""

    async def main() -> None:
        rig = await Rig().setup()
        local = await rig.alloc(segments="local")
        anywhere = await rig.alloc(segments="any")
        aper = await rig.alloc(segments="aperture")
        st, lk = await rig.lock(local, LF.LockEntire | LF.Discard)
        new = lk.allocation
        assert st == OK and new != local and lk.data.instance == 1
        assert rig.k.vidmm.instances[new].segment is None  # evicted for the CPU
        assert [rig.k.renders_while_locked(h) for h in (new, local, anywhere, aper)] == [
            False, False, True, True]
        assert rig.k.renders_while_locked(0x7777) is None  # no live instance
        st, _ = await rig.render([CmdDraw(1, 0, 0, 4)], [new])
        assert st == kmd.STATUS_GRAPHICS_CANT_RENDER_LOCKED_ALLOCATION
        assert await rig.unlock(new) == OK
        st, _ = await rig.render([CmdDraw(1, 0, 0, 4)], [new])
        assert st == OK  # unlocked: paged back into local memory
        assert rig.k.renders_while_locked(new) is False  # a property of the allocation
        rig.invariants()

    run(main)


def test_eviction_when_full_and_no_video_memory_at_render() -> None:
    cfg = KernelConfig(segments=(kmd.SegmentDesc("aperture", 64 * 1024, "aperture"),))

    async def main() -> None:
        rig = await Rig(cfg).setup()
        a = await rig.alloc(size=40 * 1024, segments="aperture")
        b = await rig.alloc(size=40 * 1024, segments="aperture")  # evicts idle a
        s = rig.k.statistics()
        assert s.evictions == 1 and s.segment_usage[0][1] == 40 * 1024
        st, _ = await rig.render([CmdDraw(1, 0, 0, 4)], [a])  # pages a in, evicts b
        assert st == OK
        st, _ = await rig.render([CmdDraw(1, 0, 0, 4), CmdDraw(2, 1, 0, 4)], [a, b])
        assert st == kmd.STATUS_GRAPHICS_NO_VIDEO_MEMORY  # both can't be resident at once
        assert (
            kmd.ntstatus_to_hresult_for_callback(st, "pfnRenderCb") == kmd.D3DERR_OUTOFVIDEOMEMORY
        )
        rig.invariants()

    _, events = run_traced(main)
    assert len(kmd_events(events, "kmd.evict")) == 2


def test_busy_instance_is_not_evicted() -> None:
    cfg = KernelConfig(segments=(kmd.SegmentDesc("aperture", 64 * 1024, "aperture"),))

    async def main() -> None:
        rig = await Rig(cfg).setup()
        a = await rig.alloc(size=40 * 1024, segments="aperture")
        await rig.busy(a, ns=1_000_000)
        b = await rig.alloc(size=40 * 1024, segments="aperture")  # a busy: b goes to sysmem
        assert rig.k.statistics().evictions == 0
        st, _ = await rig.render([CmdDraw(1, 0, 0, 4)], [b])
        assert st == kmd.STATUS_GRAPHICS_NO_VIDEO_MEMORY  # a still busy on the GPU
        await rig.k.wait_idle()
        st, _ = await rig.render([CmdDraw(1, 0, 0, 4)], [b])
        assert st == OK
        rig.invariants()

    run(main)


def test_wait_for_fence_never_hangs_on_a_bad_fence() -> None:
    async def main() -> None:
        rig = await Rig().setup()
        assert await rig.k.wait_for_fence(1) == kmd.STATUS_INVALID_PARAMETER  # not submitted
        assert await rig.k.wait_for_fence("x") == kmd.STATUS_INVALID_PARAMETER  # type: ignore[arg-type]
        h = await rig.alloc(segments="aperture")
        fence = await rig.busy(h)
        assert await rig.k.wait_for_fence(fence) == OK
        assert await rig.k.wait_for_fence(fence) == OK  # already done: no wait
        await rig.k.wait_idle()

    run(main)
