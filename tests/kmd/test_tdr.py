"""TDR and device removal (TDR-1…TDR-12, Q1, Q2, Q13, Q14): the watchdog, a TDR during a
waiting lock, content loss, detached pointers, injection hooks, and the TDR-2 limit."""

from __future__ import annotations

import kmd
import vthreads as vt
from kmd import D3DDDICB_LOCKFLAGS as LF
from kmd import CmdDraw, CmdSpin, KernelConfig
from tests.support.kernel import OK, Rig, kmd_events, run, run_traced

REMOVED = kmd.STATUS_DEVICE_REMOVED
TIMEOUT = 2_000_000_000


def test_tdr_during_a_waiting_lock(backend: str) -> None:
    async def main() -> None:
        rig = await Rig().setup()
        h = await rig.alloc(segments="aperture")
        held = await rig.alloc(segments="aperture")
        st, hold = await rig.lock(held)
        hold.data.write(0, b"mine")
        st, r = await rig.render([CmdDraw(1, 0, 0, 4), CmdSpin(5 * TIMEOUT)], [h])
        assert st == OK
        st, a = await rig.lock(h)  # blocks on the fence; the TDR wakes it (Q2)
        assert st == REMOVED and a.data is None
        assert TIMEOUT <= vt.now() < 2 * TIMEOUT  # at the watchdog's deadline, not 10 s
        rec = rig.k.dma_records[-1]
        assert rec.fence == r.fence and rec.status == "aborted"
        assert rig.k.completed_fence == rig.k.submitted_fence
        # the old device: thunks answer DEVICE_REMOVED (TDR-10) …
        assert (await rig.lock(held))[0] == REMOVED
        assert (await rig.lock2(held))[0] == REMOVED
        assert (await rig.render([CmdDraw(1, 0, 0, 1)], [held]))[0] == REMOVED
        ca = kmd.D3DKMT_CREATEALLOCATION(
            device=rig.device, allocation_info=[kmd.D3DDDI_ALLOCATIONINFO(kmd.AllocationDesc(4096))]
        )
        assert await kmd.D3DKMTCreateAllocation(rig.k, ca) == REMOVED
        gs = kmd.D3DKMT_GETDEVICESTATE(device=rig.device)
        assert await kmd.D3DKMTGetDeviceState(rig.k, gs) == OK
        assert gs.execution_state == kmd.D3DKMT_DEVICEEXECUTION_STATE.D3DKMT_DEVICEEXECUTION_RESET
        # … the pointer handed out before is detached (Q1): zeros, writes dropped, no fault
        assert hold.data.state == "detached"
        assert hold.data.read(0, 4) == b"\0\0\0\0"
        hold.data.write(0, b"lost")
        assert await rig.unlock(held) == OK  # Unlock lists no DEVICE_REMOVED (KU-3)
        assert (
            await kmd.D3DKMTDestroyDevice(rig.k, kmd.D3DKMT_DESTROYDEVICE(device=rig.device)) == OK
        )
        # TDR-11: a new device works, and the GPU runs again
        dev = await rig.new_device()
        ctx = await rig.new_context(dev)
        h2 = await rig.alloc(segments="aperture", device=dev)
        st, r2 = await rig.render([CmdDraw(2, 0, 0, 1)], [h2], context=ctx)
        assert st == OK
        assert await rig.k.wait_for_fence(r2.fence) == OK
        assert rig.k.dma_records[-1].status == "completed"
        rig.invariants()

    result, events = run_traced(main, backend=backend)
    (tdr,) = kmd_events(events, "kmd.tdr")
    assert tdr["fence"] == 1 and tdr["timeout"] == TIMEOUT
    assert result.statistics.time_ns < 2 * TIMEOUT + 10_000_000
    removed = kmd_events(events, "kmd.device.removed")
    assert len(removed) == 1 and removed[0]["reason"].startswith("TDR")


def test_waiters_all_wake_and_no_thread_hangs() -> None:
    async def main() -> None:
        rig = await Rig(KernelConfig(max_rename_instances=1)).setup()  # the Discard must stall
        h = await rig.alloc(segments="aperture")
        rig.k.inject_hang()
        st, r = await rig.render([CmdDraw(1, 0, 0, 4)], [h])
        assert st == OK
        results: dict[str, object] = {}

        async def locker() -> None:
            results["lock"] = (await rig.lock(h))[0]

        async def discarder() -> None:
            _, _lk = await rig.lock(h, LF.LockEntire | LF.Discard | LF.NoExistingReference)
            results["discard"] = _

        async def fence_waiter() -> None:
            results["fence"] = await rig.k.wait_for_fence(r.fence)

        threads = [vt.spawn(n, f) for n, f in (("a", locker), ("b", fence_waiter))]
        await discarder()
        for t in threads:
            await t.join()
        assert results == {"lock": REMOVED, "fence": REMOVED, "discard": REMOVED}
        assert rig.k.statistics().tdrs == 1

    run(main)


def test_tdr_purges_video_memory_content() -> None:
    async def main() -> None:
        rig = await Rig().setup()
        local = await rig.alloc(segments="local")
        aper = await rig.alloc(segments="aperture")
        for h, text in ((local, b"vram"), (aper, b"sysp")):
            st, lk = await rig.lock(h)
            lk.data.write(0, text)
            await rig.unlock(h)
        st, _ = await rig.render([CmdDraw(1, 0, 0, 4)], [local])  # back into local memory
        assert st == OK
        rig.k.inject_hang()
        _st, r = await rig.render([CmdDraw(2, 0, 0, 4)], [aper])
        await rig.k.wait_for_fence(r.fence)
        assert rig.k.statistics().tdrs == 1
        dev = await rig.new_device()
        # nothing from the old device can be used, but the bytes tell the story (TDR-5/6)
        inst_local = rig.k.handles.get(local, kmd.dxgkrnl.HandleType.ALLOCATION)
        inst_aper = rig.k.handles.get(aper, kmd.dxgkrnl.HandleType.ALLOCATION)
        assert bytes(inst_local.backing[:4]) == b"\0\0\0\0" and inst_local.content_lost
        assert bytes(inst_aper.backing[:4]) == b"sysp" and not inst_aper.content_lost
        assert inst_local.segment is None and inst_aper.segment is None
        assert dev != rig.device

    run(main)


def test_injected_removal_of_one_device_and_of_the_adapter() -> None:
    async def main() -> None:
        rig = await Rig().setup()
        dev2 = await rig.new_device()
        h = await rig.alloc(segments="aperture")
        h2 = await rig.alloc(segments="aperture", device=dev2)
        await rig.busy(h, ns=50_000_000)

        async def remover() -> None:
            await vt.sleep(1_000_000)
            assert rig.k.inject_removal(rig.device, reason="test")

        t = vt.spawn("remover", remover)
        st, _ = await rig.lock(h)
        assert st == REMOVED and vt.now() == 1_000_000  # woken by the removal, not the fence
        await t.join()
        assert (await rig.lock(h2, device=dev2))[0] == OK  # only that device
        assert not rig.k.inject_removal(12345)
        rig.k.inject_removal()  # the whole adapter (PnP stop)
        assert (await rig.lock(h2, device=dev2))[0] == REMOVED
        assert rig.k.statistics().tdrs == 0  # not a TDR

    run(main)


def test_removal_at_a_chosen_thunk_call() -> None:
    async def main() -> None:
        rig = await Rig().setup()
        h = await rig.alloc(segments="aperture")
        rig.k.inject_removal_at_call(3, device=rig.device)
        assert (await rig.lock(h))[0] == OK  # call 1
        assert await rig.unlock(h) == OK  # call 2
        assert (await rig.lock(h))[0] == REMOVED  # call 3: removed on entry

    run(main)


def test_watchdog_does_not_keep_time_running_and_deadlocks_are_still_seen() -> None:
    async def short() -> None:
        rig = await Rig().setup()
        h = await rig.alloc(segments="aperture")
        _st, r = await rig.render([CmdDraw(1, 0, 0, 4)], [h])
        await rig.k.wait_for_fence(r.fence)

    result = run(short)
    assert result.time_ns < 1_000_000

    async def stuck() -> None:
        await Rig().setup()
        await vt.Condition("never").wait_for(lambda: False, "never")

    result = run(stuck, check=False)
    assert result.failure is not None and result.failure.kind == "deadlock"
    assert result.time_ns == 0  # the idle watchdog waits on a condition, not a timer


def test_six_tdrs_in_a_minute_stop_the_adapter() -> None:
    cfg = KernelConfig(tdr_timeout_ns=1_000_000, tdr_limit=6, tdr_window_ns=60_000_000_000)

    async def main() -> None:
        rig = await Rig(cfg).setup()
        for i in range(6):
            dev = await rig.new_device()
            ctx = await rig.new_context(dev)
            h = await rig.alloc(segments="aperture", device=dev)
            st, r = await rig.render([CmdSpin(10_000_000)], [h], context=ctx)
            assert st == OK
            assert await rig.k.wait_for_fence(r.fence) == REMOVED, i
        assert rig.k.statistics().tdrs == 6
        cd = kmd.D3DKMT_CREATEDEVICE(adapter=rig.adapter)
        assert await kmd.D3DKMTCreateDevice(rig.k, cd) == REMOVED  # TDR-2: stopped
        assert await kmd.D3DKMTOpenAdapter(rig.k, kmd.D3DKMT_OPENADAPTER()) == REMOVED

    result = run(main, check=False)
    assert result.failure is None
    assert result.rules() == ["TDR-2"]
