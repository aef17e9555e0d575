"""A user's driver that keeps a vthreads primitive at module level (docs/engine.md, "One run,
one set of primitives"): its first run is judged as usual, every later run in the process
fails at once, naming the primitive and what to do, instead of inheriting the first run's lock
state (a holder, clocks) and reporting what that state caused."""

from __future__ import annotations

from typing import Any

import vthreads as vt
from wddmemu import ExploreOptions, RunSpec, explore, run_scenario

from .simple import SimpleDevice, SimpleDriver

#: the mistake under test: one lock for every device of every run
GLOBAL_LOCK = vt.Mutex("umd.global")


class GlobalLockDevice(SimpleDevice):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.mutex = GLOBAL_LOCK


class GlobalLockDriver(SimpleDriver):
    device_class = GlobalLockDevice


SPEC = RunSpec("dynamic-vb-ring", driver=f"{__name__}:GlobalLockDriver", params={"frames": 2})


def test_only_the_first_run_may_use_a_module_level_primitive() -> None:
    first = run_scenario(SPEC).run
    assert first.ok, first.failure
    again = run_scenario(SPEC).run
    assert again.failure is not None and again.failure.kind == "exception"
    assert "mutex umd.global was used by another run" in again.failure.message
    assert "make it inside the program" in again.failure.message
    # the same driver with its lock per device (the base class) runs clean every time
    fine = RunSpec("dynamic-vb-ring", driver="tests.thirdparty.drivers:SimpleDriver",
                   params={"frames": 2})
    assert run_scenario(fine).run.ok and run_scenario(fine).run.ok


def test_explore_reports_it_as_a_finding_of_the_driver() -> None:
    res = explore(SPEC, ExploreOptions(schedules=3, strategy="random", minimise=False))
    assert res.failures, "a schedule after the first must fail"
    f = res.failures[0].finding
    # "was used by" or, when the run before ended inside the driver, "is held by app of"
    assert f.rule == "exception" and "mutex umd.global" in f.message
    assert "of another run" in f.message or "used by another run" in f.message
