"""Tests written for the mutants bench/mutants.py found alive (issue 16): each fails on its
mutant. Equivalent mutants are listed, with the reason, in bench/mutants_equivalent.toml."""

from __future__ import annotations

from typing import Any

import pytest

import vthreads as vt
from vthreads import lowlevel as ll
from vthreads._hb import vc_join


def test_vc_join_pads_unknown_threads_with_zero() -> None:
    # mutant: the padding was 1, so a clock that never heard of a thread claimed to have seen
    # its first step — and hid the race with it
    into = [3]
    vc_join(into, [0, 0, 2])
    assert into == [3, 0, 2]


def test_a_read_then_write_race_names_the_cell() -> None:
    async def main() -> None:
        cell = vt.SharedCell("the-cell", 0)

        async def reader() -> None:
            await cell.read("r")

        t = vt.spawn("reader", reader)
        await t.join()  # ordered: no race yet
        u = vt.spawn("reader2", reader)
        await cell.write(1, "w")  # unordered with reader2's read when reader2 ran first
        await u.join()

    races = []
    for seed in range(10):
        r = vt.Engine("random", seed=seed).run(main)
        races += [v for v in r.violations if v.rule == "RACE"]
    assert races, "some schedule lets reader2 read before the unordered write"
    assert all(v.fields["cell"] == "the-cell" for v in races)
    assert all("race on the-cell" in v.message for v in races)


def test_a_timer_knows_when_and_for_whom_it_fires() -> None:
    seen: dict[str, Any] = {}

    async def main() -> None:
        q = ll.WaitQueue("q")

        async def sleeper() -> None:
            await q.park("until the timer")

        t = vt.spawn("sleeper", sleeper)
        await vt.checkpoint()
        timer = ll.arm_timer(250, thread=t)
        seen["when"], seen["thread"] = timer.when, timer.thread
        await t.join()
        seen["fired"] = timer.fired

    r = vt.Engine().run(main)
    assert r.ok, r.failure
    assert seen["when"] == 250
    assert seen["thread"].name == "sleeper"  # mutant: the caller, not the thread asked for
    assert seen["fired"]


def test_a_timed_wake_leaves_the_wait_queue() -> None:
    seen: dict[str, Any] = {}

    async def main() -> None:
        q = ll.WaitQueue("q")
        assert not q  # mutant: bool() of a wait queue was always False / True

        async def sleeper() -> None:
            ll.arm_timer(100)
            await q.park("a timed wait")

        t = vt.spawn("sleeper", sleeper)
        await vt.sleep(10)  # the sleeper parks; its timer is due at t=100
        seen["parked"] = bool(q), q.statistics().parked
        await t.join()  # the timer wakes it
        # mutant: the woken thread stayed in the queue
        seen["after"] = bool(q), q.statistics().parked, q.unpark_one()

    r = vt.Engine().run(main)
    assert r.ok, r.failure
    assert seen["parked"] == (True, ("sleeper",))
    assert seen["after"] == (False, (), None)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_mutant_tests_hold_on_both_backends(backend: str) -> None:
    async def main() -> int:
        timer = ll.arm_timer(5)
        timer.cancel()
        await vt.sleep(1)
        return vt.now()

    r = vt.Engine(backend=backend).run(main)
    assert r.value == 1
