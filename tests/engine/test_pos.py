"""POS, partial-order sampling (issue 12): seeded, deterministic on both backends, re-draws only
the priorities of events that race with the one that ran, passes over threads that would
block, and is usable through make_strategy, Engine and check_program."""

from __future__ import annotations

import vthreads as vt
from tests.support.models import models
from vthreads import POS, STRATEGIES, make_strategy
from vthreads.testing import capture_events
from wddmemu import check_program


def _private_only(points: int = 6):
    async def main() -> None:
        async def work(name: str) -> None:
            mine = vt.SharedCell(f"private.{name}", 0)
            for i in range(points):
                await mine.write(i, name)

        ts = [vt.spawn(n, work, n) for n in ("a", "b", "c")]
        for t in ts:
            await t.join()

    return main


def test_pos_is_registered_and_seeded() -> None:
    assert "pos" in STRATEGIES
    p = make_strategy("pos", seed=11)
    assert isinstance(p, POS) and p.seed == 11
    assert p.describe() == {"strategy": "pos", "seed": 11}


def test_same_seed_same_decisions_on_asyncio_and_trio() -> None:
    prog = _private_only()
    runs = {b: [vt.Engine("pos", seed=s, backend=b).run(prog).decisions for s in range(6)]
            for b in ("asyncio", "trio")}
    assert runs["asyncio"] == runs["trio"]
    assert len(set(runs["asyncio"])) > 1  # seeds differ: not one fixed schedule


def test_only_racing_events_are_redrawn() -> None:
    # private cells race with nothing: more of them add no re-draws (only spawn, finish and
    # join race here)
    short, long = POS(3), POS(3)
    vt.Engine(short).run(_private_only(4))
    vt.Engine(long).run(_private_only(40))
    assert long.redraws == short.redraws
    # a write of the shared counter re-draws the other thread's pending read of it
    racy = [POS(s) for s in range(10)]
    for p in racy:
        vt.Engine(p).run(models.lost_update)
    assert sum(p.redraws for p in racy) > 0


def test_a_thread_whose_next_operation_would_block_is_passed_over() -> None:
    async def main() -> None:
        m = vt.Mutex("m")
        cell = vt.SharedCell("c", 0)

        async def holder() -> None:
            async with m:
                for i in range(8):
                    await cell.write(i, "holder")

        async def waiter() -> None:
            async with m:
                pass

        h = vt.spawn("holder", holder)
        await vt.checkpoint("let the holder in")
        w = vt.spawn("waiter", waiter)
        await h.join()
        await w.join()

    for seed in range(12):
        with capture_events() as events:
            vt.Engine("pos", seed=seed).run(main)
        blocked = [e for e in events if e["event"] == "block" and e["thread"] == "waiter"
                   and "m" in str(e.get("waits"))]
        assert not blocked, (seed, blocked)


def test_check_program_runs_pos() -> None:
    res = check_program(models.lost_update, strategy="pos", schedules=200)
    assert not res.ok and res.strategy == "pos"
    again = vt.Engine("replay", decisions=res.run.decisions,
                      stop_on_violation=True).run(models.lost_update)
    assert again.failure == res.run.failure and again.violations == res.run.violations
