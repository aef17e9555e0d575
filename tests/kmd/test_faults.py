"""Armed faults (kmd/faults.py, docs/kmd.md §7): the text forms, and each fault firing through
the kernel's real paths — a GPU hang the watchdog turns into a TDR (TDR-1, TDR-3), an adapter
removal on a chosen thunk call, a device removed as it is created (TDR-10)."""

from __future__ import annotations

import pytest

import kmd
import vthreads as vt
from kmd import CmdDraw, CmdSpin, Fault, parse_fault
from tests.support.kernel import OK, Rig, kmd_events, run, run_traced

REMOVED = kmd.STATUS_DEVICE_REMOVED


@pytest.mark.parametrize("text,fault", [
    ("tdr@step=7", Fault("tdr", "step", 7)),
    ("removal@call=1", Fault("removal", "call", 1)),
    ("removal@device", Fault("removal", "device", 1)),
    ("removal@device=2", Fault("removal", "device", 2)),
    (" tdr@step=10 ", Fault("tdr", "step", 10)),
])
def test_the_text_forms_parse_and_print_canonically(text: str, fault: Fault) -> None:
    assert parse_fault(text) == fault
    assert parse_fault(str(fault)) == fault
    assert str(parse_fault("removal@device=1")) == "removal@device"


@pytest.mark.parametrize("text", [
    "", "tdr", "tdr@step", "tdr@step=", "tdr@step=0", "tdr@step=-3", "tdr@step=x",
    "tdr@call=3", "removal@step=3", "removal@call", "hang@step=3", "tdr@step=3,removal@call=1",
    "removal@device=0", f"tdr@step={10**9 + 1}", "TDR@STEP=3", "tdr@step=1e3",
    "tdr@step=" + "9" * 5000, "removal@call=\u0663", "removal@device=", "tdr@@step=1",
])
def test_bad_forms_are_one_line_value_errors(text: str) -> None:
    with pytest.raises(ValueError) as e:
        parse_fault(text)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"cannot inject {text!r}: ")
    assert "tdr@step=N, removal@call=N" in msg or "N takes 1..1000000000" in msg


def test_tdr_at_step_hangs_the_running_buffer_and_the_watchdog_resets() -> None:
    async def main() -> None:
        rig = await Rig().setup()
        h = await rig.alloc(segments="aperture")
        rig.k.arm_fault(parse_fault("tdr@step=1"))  # due already: fires on the next thunk
        st, r = await rig.render([CmdDraw(1, 0, 0, 4), CmdDraw(2, 0, 0, 4)], [h])
        assert st == OK
        assert await rig.k.wait_for_fence(r.fence) == REMOVED  # the TDR aborted it
        assert rig.k.faults_fired == ["tdr@step=1"]
        s = rig.k.statistics()
        assert s.tdrs == 1 and s.faults_fired == ("tdr@step=1",)
        rec = rig.k.dma_records[-1]
        # the oracle's input: an aborted buffer names the draws it never ran
        assert rec.status == "aborted" and rec.dropped == (1, 2) and rec.commands == ()
        assert vt.now() >= rig.k.config.tdr_timeout_ns

    result, events = run_traced(main)
    assert result.ok, result.failure
    (inj,) = kmd_events(events, "kmd.inject.tdr")
    (tdr,) = kmd_events(events, "kmd.tdr")
    assert inj["fault"] == "tdr@step=1" and inj["step"] <= tdr["step"]
    (end,) = [e for e in kmd_events(events, "kmd.dma.end") if e.get("result") == "aborted"]
    assert end["dropped"] == [1, 2]


def test_tdr_at_a_later_step_waits_for_its_step() -> None:
    async def main() -> None:
        rig = await Rig().setup()
        h = await rig.alloc(segments="aperture")
        at = vt.current_engine().step + 500
        rig.k.arm_fault(Fault("tdr", "step", at))
        _st, r = await rig.render([CmdDraw(1, 0, 0, 4)], [h])
        assert await rig.k.wait_for_fence(r.fence) == OK  # not due yet: it ran
        while vt.current_engine().step < at:
            await vt.checkpoint()
        assert rig.k.faults_fired == []
        _st, r = await rig.render([CmdSpin(10), CmdDraw(3, 0, 0, 4)], [h])
        assert await rig.k.wait_for_fence(r.fence) == REMOVED
        assert rig.k.statistics().tdrs == 1

    run(main)


def test_removal_at_call_removes_the_adapter_on_entry_of_that_call() -> None:
    async def main() -> None:
        rig = await Rig().setup()
        dev2 = await rig.new_device()
        h = await rig.alloc(segments="aperture")
        h2 = await rig.alloc(segments="aperture", device=dev2)
        n = rig.k.thunk_calls
        rig.k.arm_fault(Fault("removal", "call", n + 2))
        assert (await rig.lock(h))[0] == OK  # call n+1
        assert (await rig.lock(h2, device=dev2))[0] == REMOVED  # call n+2: every device
        assert (await rig.lock(h))[0] == REMOVED
        assert rig.k.faults_fired == [f"removal@call={n + 2}"]
        assert rig.k.statistics().tdrs == 0  # a removal, not a TDR
        assert set(rig.k.device_removals) == {rig.device, dev2}

    run(main)


def test_removal_at_device_removes_the_nth_device_as_it_is_created() -> None:
    async def main() -> None:
        k = kmd.Kernel()
        k.arm_fault(parse_fault("removal@device=2"))
        oa = kmd.D3DKMT_OPENADAPTER()
        assert await kmd.D3DKMTOpenAdapter(k, oa) == OK
        got = []
        for _ in range(3):
            cd = kmd.D3DKMT_CREATEDEVICE(adapter=oa.adapter)
            assert await kmd.D3DKMTCreateDevice(k, cd) == OK  # the handle is returned …
            got.append(await kmd.D3DKMTCreateContext(k, kmd.D3DKMT_CREATECONTEXT(cd.device)))
        assert got == [OK, REMOVED, OK]  # … but the second device is already gone (TDR-10)
        assert k.faults_fired == ["removal@device=2"] and len(k.device_removals) == 1

    result, events = run_traced(main)
    assert result.ok, result.failure
    (inj,) = kmd_events(events, "kmd.inject.removal")
    assert inj["reason"] == "injected removal@device=2"


def test_an_unarmed_kernel_fires_nothing() -> None:
    async def main() -> None:
        rig = await Rig().setup()
        h = await rig.alloc(segments="aperture")
        _st, r = await rig.render([CmdDraw(1, 0, 0, 4)], [h])
        assert await rig.k.wait_for_fence(r.fence) == OK
        assert rig.k.faults_fired == [] and rig.k.device_removals == {}
        assert rig.k.dma_records[-1].dropped == ()

    run(main)
