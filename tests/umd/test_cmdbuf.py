"""Command-buffer encoding and submission: CmdDraw per stream, allocation-list slots, overflow
submits, buffer hand-over and resize (RCB-2, RCB-3), Flush/Present (RCB-7), error propagation
(ERR-1)."""

from __future__ import annotations

import kmd
import umd
from tests.support.driver import DEVICEREMOVED, E_INVALIDARG, LAF, RF, S_OK, Rig, pattern, run


def test_draw_encodes_one_command_per_stream_with_offsets_and_one_slot_per_buffer() -> None:
    async def prog(r: Rig) -> None:
        a = await r.vb(256)
        b = await r.vb(512)
        assert await r.stream(a, 0, offset=16, stride=16) == S_OK
        assert await r.stream(b, 1, offset=0, stride=32) == S_OK
        assert await r.draw(1, start=2, count=3) == S_OK
        assert await r.draw(2, start=0, count=1) == S_OK
        cmds = r.dev.pending_commands()
        assert cmds == [
            kmd.CmdDraw(draw_id=1, alloc_index=0, offset=48, length=48),
            kmd.CmdDraw(draw_id=1, alloc_index=1, offset=64, length=96),
            kmd.CmdDraw(draw_id=2, alloc_index=0, offset=16, length=16),
            kmd.CmdDraw(draw_id=2, alloc_index=1, offset=0, length=32),
        ]
        assert r.dev.pending_allocations() == [r.dev.tracked(a), r.dev.tracked(b)]
        assert await r.stream(0, 1) == S_OK  # unbind stream 1
        assert await r.draw(3) == S_OK
        assert len(r.dev.pending_commands()) == 5

    run(prog)


def test_draw_validation() -> None:
    async def prog(r: Rig) -> None:
        a = await r.vb(256)
        assert await r.stream(0xBAD) == E_INVALIDARG
        assert await r.stream(a, stride=0) == E_INVALIDARG
        assert await r.stream(a, offset=-1) == E_INVALIDARG
        assert await r.stream(a) == S_OK
        assert await r.draw(1, start=15, count=2) == E_INVALIDARG  # reads past the end
        assert await r.draw(1, count=-1) == E_INVALIDARG
        assert r.dev.pending_commands() == []
        assert await r.draw(1, start=15, count=1) == S_OK

    run(prog)


def test_full_command_buffer_is_submitted_before_the_next_command() -> None:
    async def prog(r: Rig) -> None:
        a = await r.vb(256)
        await r.stream(a)
        for i in range(5):
            assert await r.draw(i) == S_OK
        assert r.count("render") == 2  # 2 commands per 32-byte buffer
        assert [c.draw_id for c in r.dev.pending_commands()] == [4]
        assert await r.flush() == S_OK
        await r.idle()
        assert sorted(r.reads()) == [0, 1, 2, 3, 4]

    run(prog, config=umd.DriverConfig(command_buffer_size=32))


def test_full_allocation_list_is_submitted_and_draws_span_buffers() -> None:
    async def prog(r: Rig) -> None:
        a = await r.vb(256)
        b = await r.vb(256)
        await r.fill(a, 1)
        await r.fill(b, 2)
        await r.stream(a, 0)
        await r.stream(b, 1)
        for i in range(3):
            assert await r.draw(i) == S_OK
        assert await r.flush() == S_OK
        await r.idle()
        reads = r.reads()
        for i in range(3):
            assert [d for _, d in reads[i]] == [pattern(1, 256)[:64], pattern(2, 256)[:64]]
        # one slot per buffer: every submit carried one allocation
        assert all(len(c.args.allocation_list) == 1 for c in r.calls if c.name == "render")

    run(prog, config=umd.DriverConfig(allocation_list_size=1))


def test_rcb2_rcb3_new_buffers_are_taken_and_sizes_are_requested() -> None:
    async def prog(r: Rig) -> None:
        a = await r.vb(256)
        await r.stream(a)
        assert r.dev._cmdbuf.peek().capacity == 8192  # the driver's own first buffer
        assert await r.draw(1) == S_OK and await r.flush() == S_OK
        args = r.last("render").args
        assert args.flags == 0x3  # ResizeCommandBuffer | ResizeAllocationList
        cb = r.dev._cmdbuf.peek()
        assert cb.commands is args.new_command_buffer  # RCB-2: the handed-back buffer
        assert (cb.capacity, cb.alist_capacity) == (8192, 7)

    run(prog, config=umd.DriverConfig(command_buffer_size=8192, allocation_list_size=7))


def test_rcb3_a_refused_resize_is_read_back() -> None:
    """The runtime caps buffers at 65536 bytes: the driver uses what it got."""

    async def prog(r: Rig) -> None:
        a = await r.vb(256)
        await r.stream(a)
        assert await r.draw(1) == S_OK and await r.flush() == S_OK
        assert r.dev._cmdbuf.peek().capacity == 65536

    run(prog, config=umd.DriverConfig(command_buffer_size=1 << 20))


def test_flush_and_present() -> None:
    async def prog(r: Rig) -> None:
        a = await r.vb(256)
        await r.stream(a)
        assert await r.flush() == S_OK and r.count("render") == 0  # nothing pending
        assert await r.draw(1) == S_OK
        assert await r.present() == S_OK and r.count("render") == 1
        assert r.dev.pending_commands() == []

    run(prog)


def test_render_errors_propagate_and_the_new_buffer_is_still_taken() -> None:
    async def prog(r: Rig) -> None:  # ERR-1, RCB-2/RCB-3 on failure
        a = await r.vb(256)
        await r.stream(a)
        assert await r.draw(1) == S_OK
        r.kernel.inject_removal()
        assert await r.flush() == DEVICEREMOVED
        assert r.dev.pending_commands() == []
        assert r.dev._cmdbuf.peek().commands is r.last("render").args.new_command_buffer
        assert await r.draw(2) == S_OK and await r.draw(3) == S_OK
        assert await r.draw(4) == DEVICEREMOVED  # the overflow submit failed

    run(prog, config=umd.DriverConfig(command_buffer_size=32))


def test_destroy_submits_pending_references_first() -> None:
    async def prog(r: Rig) -> None:
        a = await r.vb(256)
        b = await r.vb(256)
        await r.stream(a)
        assert await r.draw(1) == S_OK
        assert await r.destroy(b) == S_OK and r.count("render") == 0  # b is not referenced
        assert await r.destroy(a) == S_OK and r.count("render") == 1
        assert r.last("deallocate").hr == S_OK
        assert await r.draw(2) == S_OK and r.dev.pending_commands() == []  # stream unbound
        await r.idle()
        assert 1 in r.reads()

    run(prog)


def test_destroy_device_releases_outstanding_locks() -> None:
    async def prog(r: Rig) -> None:  # LCB-17
        a = await r.vb(256)
        hr, la = await r.lock_async(a, LAF.NoOverwrite)
        assert hr == S_OK
        hr, lk = await r.lock(await r.vb(256, flags=int(RF.VertexBuffer)))
        assert hr == S_OK
        assert await r.funcs.pfn_destroy_device(r.dev) == S_OK
        assert la.surf_data.state != "mapped" and lk.surf_data.state != "mapped"
        assert r.count("deallocate") == 2

    run(prog)


def test_flush_passes_a_render_e_outofmemory_through() -> None:
    """Flush's documented E_OUTOFMEMORY: pfnRenderCb ran out ("insufficient memory"); the
    kernel here never does, so the callback is made to answer it (ERR-1 mapping)."""

    async def prog(r: Rig) -> None:
        a = await r.vb(256)
        await r.stream(a)
        assert await r.draw(1) == S_OK
        real = r.dev.callbacks.pfn_render_cb

        async def oom(h: object, args: object) -> int:
            await real(h, args)  # the runtime still hands back the next buffers (RCB-2)
            return int(kmd.E_OUTOFMEMORY)

        r.dev.callbacks.pfn_render_cb = oom
        assert await r.flush() == kmd.E_OUTOFMEMORY
        assert r.dev.pending_commands() == []

    run(prog)
