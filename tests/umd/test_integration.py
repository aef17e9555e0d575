"""The reference driver under the real runtime: MP layer, worker thread and DDI-version gate,
explored with several strategies and seeds on both backends. No rule may break, no race, no
deadlock, and every draw reads what the application wrote (MP-2, S-3, S-5, S-18)."""

from __future__ import annotations

import io

import pytest

from tests.support.app import queued_then_discard, ring, run_app, two_buffers

PROGRAMS = {"ring": ring, "two-buffers": two_buffers, "queued-then-discard": queued_then_discard}


@pytest.mark.parametrize("version", [0xA, 0xC])
@pytest.mark.parametrize("program", sorted(PROGRAMS))
@pytest.mark.parametrize("strategy", ["fifo", "random", "pct"])
def test_reference_is_clean_under_exploration(program: str, version: int, strategy: str) -> None:
    seeds = range(1) if strategy == "fifo" else range(12)
    for seed in seeds:
        a = run_app(PROGRAMS[program], driver_version=version, strategy=strategy, seed=seed)
        assert a.rules == [], (seed, a.result.summary(), a.mismatches[:3])
        dev = a.devices[0]
        stats = dev.statistics()
        assert stats.mp_layer and stats.draws > 0
        assert "LockAsync" in stats.ddi_calls


def test_reference_is_clean_with_two_devices_on_two_threads() -> None:
    """MP-3 / S-19: two devices of one driver, each with its own app thread and worker."""
    for seed in range(8):
        a = run_app(two_buffers, devices=2, strategy="random", seed=seed)
        assert a.rules == [], (seed, a.result.summary())
        assert {d.driver_device.name for d in a.devices} == {"umd.dev1", "umd.dev2"}


@pytest.mark.parametrize("version", [0xA, 0xC])
def test_reference_on_trio(version: int) -> None:
    for seed in range(4):
        a = run_app(ring, driver_version=version, strategy="random", seed=seed, backend="trio")
        assert a.rules == [], (seed, a.result.summary())


def test_driver_trace_is_identical_across_backends() -> None:
    def trace(backend: str) -> list[bytes]:
        buf = io.BytesIO()
        a = run_app(two_buffers, strategy="pct", seed=5, backend=backend, trace=buf)
        assert a.rules == []
        lines = buf.getvalue().splitlines()
        return [ln.replace(b'"backend":"trio"', b'"backend":"asyncio"') for ln in lines]

    a, t = trace("asyncio"), trace("trio")
    assert a == t
    assert any(b'"event":"umd.track.switch"' in ln for ln in a)
    assert any(b'"event":"umd.cmdbuf.submit"' in ln for ln in a)
