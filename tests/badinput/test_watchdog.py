"""Issue 14: ``--timeout``. A CPU-bound loop in driver code, or a raw ``anyio.sleep_forever()``
under the uncontrolled ``free`` strategy, fails the run as ``hang`` naming the thread and the DDI
it was in, with ``run.failure`` in the trace, on both backends; a run that ends in time is
untouched. Under a controlled strategy the raw sleep needs no watchdog: the trampoline reports
it at once as ``foreign-await`` (docs/engine.md)."""

from __future__ import annotations

import io
from typing import Any

import anyio
import orjson
import pytest

from umd import ReferenceDevice, ReferenceDriver
from wddmemu._explore import ExploreOptions, explore
from wddmemu._runner import RunSpec, run_scenario, run_timeout


class SpinsInRename(ReferenceDevice):
    async def pfn_rename(self, args: Any) -> int:
        n = 0
        while True:  # a CPU-bound loop: no scheduling point is ever reached
            try:
                n += 1
            except Exception:  # a driver swallowing everything cannot stop it
                continue


class SleepsInLockAsync(ReferenceDevice):
    async def pfn_lock_async(self, args: Any) -> int:
        await anyio.sleep_forever()  # a wait the emulator does not control
        return 0


def _spec(device: type[ReferenceDevice], backend: str = "asyncio",
          strategy: str = "fifo") -> RunSpec:
    return RunSpec("dynamic-vb-ring", driver=ReferenceDriver(device_class=device),
                   backend=backend, strategy=strategy)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("device,ddi,thread,strategy", [
    (SpinsInRename, "Rename", "dev0.worker", "fifo"),
    (SpinsInRename, "Rename", "dev0.worker", "free"),
    (SleepsInLockAsync, "LockAsync", "app", "free")])
def test_a_hung_driver_fails_the_run_as_hang(device: type, ddi: str, thread: str,
                                             strategy: str, backend: str) -> None:
    buf = io.BytesIO()
    res = run_scenario(_spec(device, backend, strategy), trace=buf, timeout=0.3)
    f = res.run.failure
    assert f is not None and f.kind == "hang", f
    assert f.thread == thread and f"thread {thread} was in DDI {ddi}" in f.message
    events = [orjson.loads(x) for x in buf.getvalue().splitlines()]
    assert [e["kind"] for e in events if e["event"] == "run.failure"] == ["hang"]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_raw_sleep_under_control_is_a_foreign_await_at_once(backend: str) -> None:
    res = run_scenario(_spec(SleepsInLockAsync, backend), timeout=30)
    f = res.run.failure
    assert f is not None and f.kind == "foreign-await" and f.thread == "app", f


def test_a_run_that_ends_in_time_is_untouched() -> None:
    plain = run_scenario(RunSpec("dynamic-vb-ring")).run
    watched = run_scenario(RunSpec("dynamic-vb-ring"), timeout=30).run
    assert watched.ok and watched.decisions == plain.decisions


def test_explore_finds_a_hang_like_a_finding() -> None:
    with run_timeout(0.3):
        res = explore(_spec(SpinsInRename), ExploreOptions(schedules=3, strategy="random"))
    assert [fd.finding.rule for fd in res.failures] == ["hang"]
    assert res.runs == 1 and not res.failures[0].minimised  # a hang is not minimised


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_a_nonsense_timeout_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="--timeout takes seconds >= 0"):
        run_timeout(bad).__enter__()
