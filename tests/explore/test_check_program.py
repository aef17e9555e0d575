"""wddmemu.check_program: PCT with a measured k, and systematic search with a claim (issue 12)."""

from __future__ import annotations

import vthreads as vt
from wddmemu import check_program


async def lost_update() -> None:
    cell = vt.SharedCell("counter", 0)

    async def bump() -> None:
        await cell.update(lambda v: v + 1, "bump")

    a, b = vt.spawn("a", bump), vt.spawn("b", bump)
    await a.join()
    await b.join()


async def locked_update() -> None:
    cell = vt.SharedCell("counter", 0)
    m = vt.Mutex("m")

    async def bump() -> None:
        async with m:
            await cell.update(lambda v: v + 1, "bump")

    a, b = vt.spawn("a", bump), vt.spawn("b", bump)
    await a.join()
    await b.join()


def test_pct_measures_k_with_a_fifo_probe() -> None:
    probe = vt.Engine("fifo").run(locked_update).statistics.steps
    res = check_program(locked_update, schedules=5, strategy="pct")
    assert res.ok and res.pct_steps == max(10, probe)


def test_dpor_finds_the_lost_update_and_proves_the_locked_one() -> None:
    bad = check_program(lost_update, schedules=50, strategy="dpor")
    assert not bad.ok and bad.run is not None
    assert "RACE" in [v.rule for v in bad.run.violations]
    assert bad.claim is not None and bad.claim.startswith("stopped at the first failure")
    good = check_program(locked_update, schedules=50, strategy="dpor")
    assert good.ok and good.claim is not None and good.claim.startswith("exhausted:")
    assert good.runs <= 4
    assert good.describe() == good.claim


def test_dfs_is_systematic_too() -> None:
    good = check_program(locked_update, schedules=200, strategy="dfs")
    assert good.ok and good.claim is not None and good.claim.startswith("exhausted:")
