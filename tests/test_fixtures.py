"""The shared fixtures of tests/conftest.py run real stacks on the backend they are given."""

from __future__ import annotations

from typing import Any

from tests.support.app import ring


def test_kernel_rig_opens_a_device_on_each_backend(kernel_rig: Any, backend: str) -> None:
    import vthreads as vt

    async def main() -> None:
        rig = await kernel_rig().setup()
        assert rig.device and rig.context

    r = vt.Engine(backend=backend).run(main)
    assert r.ok, r.failure
    assert r.statistics.steps > 0


def test_driver_rig_runs_against_the_reference_driver(driver_rig: Any, backend: str) -> None:
    async def prog(rig: Any) -> str:
        return "ran"

    r = driver_rig(prog)
    assert r.value == "ran"
    assert r.ok


def test_app_rig_runs_the_real_runtime(app_rig: Any) -> None:
    a = app_rig(ring)
    assert a.rules == []
    assert a.devices[0].statistics().draws > 0
