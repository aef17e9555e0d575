"""Sweep G D2: a command buffer of the driver's own that keeps the GPU busy past the TDR
timeout reset the adapter and removed the device, and the run was "clean" (the app saw no
DEVICEREMOVED, the dropped draws are excused). A TDR no injected fault explains is the
driver's TDR-1 (``Checker._judge_tdrs``); an injected one stays excused."""

from __future__ import annotations

from typing import Any

import kmd
import umd
from wddmemu import RunSpec, run_scenario

#: longer than the 2 s timeout (TDR-1), in GPU nanoseconds
SPIN_NS = 10**13


class SpinsTheGpu(umd.DriverPolicy):
    """Appends one long spin to every buffer it submits (a whole command: RCB-7)."""

    async def before_render(self, device: Any, cmdbuf: Any) -> None:
        cmdbuf.commands.append(kmd.CmdSpin(SPIN_NS))


def _spins() -> umd.ReferenceDriver:
    return umd.ReferenceDriver(policy=SpinsTheGpu())


def test_a_driver_command_buffer_past_the_timeout_is_tdr1() -> None:
    run = run_scenario(RunSpec("dynamic-vb-ring", driver=_spins)).run
    tdr = [v for v in run.violations if v.rule == "TDR-1"]
    assert tdr, run.summary()
    assert "past the 2 s TDR timeout with no fault injected: a command buffer the driver " \
        "submitted" in tdr[0].message, tdr[0].message
    assert not run.ok


def test_an_injected_tdr_is_no_finding_of_the_driver() -> None:
    run = run_scenario(RunSpec("tdr-mid-lock", faults=("tdr@step=40",))).run
    assert "TDR-1" not in {v.rule for v in run.violations}, run.summary()
