"""Third-party drivers under the checker alone: correct ones produce no finding, buggy ones
exactly the rule ids they break (tests/thirdparty/drivers.py), on random and pct schedules of
the scenarios that exercise them, at DDI versions 0xA and 0xB.

Several of these failed before the checker judged drivers by the contract rather than by the
reference's policy: ``caching`` (LCB-3's cached NoOverwrite pointer was reported LK-6/LK-11),
``simple_sync``/``ref_sync`` (dynamic-vb-ring demanded a rename), ``notify_notimpl`` (LA-16 was
never reported), ``rename_unlocks_held`` (reported UA-4 against UnlockAsync instead of LCB-19
against Rename), ``ok_after_failed_rename`` (LA-10 could not be cited for an S_OK)."""

from __future__ import annotations

from dataclasses import replace

import pytest

import scenarios
from runtime import d3d9
from scenarios._registry import Scenario
from wddmemu._runner import RunSpec, run_scenario

from .drivers import DRIVERS

SEEDS = 3


def found(spec: RunSpec) -> tuple[set[str], list[str]]:
    r = run_scenario(spec).run
    return (set(r.rules()) | ({r.failure.kind} if r.failure else set()),
            [str(v) for v in r.violations])


def schedules(t, scenario: str, version: int):
    for strategy in ("random", "pct"):
        for seed in range(SEEDS):
            yield RunSpec(scenario, driver=t.driver, ddi_version=version, strategy=strategy,
                          seed=seed, pct_steps=400)


@pytest.mark.parametrize("name", sorted(DRIVERS))
def test_the_checker_judges_each_third_party_driver_exactly(name: str) -> None:
    t = DRIVERS[name]
    for scenario in t.scenarios:
        for version in t.versions:
            seen: set[str] = set()
            for spec in schedules(t, scenario, version):
                got, messages = found(spec)
                extra = got - t.required - t.allowed
                assert not extra, (f"{name}: false positive {sorted(extra)} on {spec.command()}"
                                   f"\n" + "\n".join(messages[:5]))
                if got - seen:
                    # the schedule that exposes the bug runs clean with the reference
                    assert found(replace(spec, driver="reference"))[0] == set(), spec
                seen |= got
            missing = t.required - seen
            assert not missing, f"{name}: {sorted(missing)} never on {scenario} {version:#x}"


def test_there_are_ten_or_more_independent_drivers_both_correct_and_buggy() -> None:
    correct = [t for t in DRIVERS.values() if t.correct]
    buggy = [t for t in DRIVERS.values() if not t.correct]
    assert len(DRIVERS) >= 10 and len(correct) >= 3 and len(buggy) >= 10
    assert any(t.attr.startswith("ref_") for t in buggy)
    assert any(not t.attr.startswith("ref_") for t in buggy)


def test_a_dropped_draw_is_reported_as_never_executed_and_names_the_driver_decision() -> None:
    """The data oracle's "never executed" branch: the driver said S_OK to DrawPrimitive and
    never submitted the draw (a mutant that drops this branch survives without this test)."""
    got, messages = found(RunSpec("discard-every-frame", driver=DRIVERS["drops_draws"].driver))
    assert got == {"DATA"}
    lost = [m for m in messages if "never executed" in m]
    assert lost and "returned S_OK, but no pfnRenderCb ever carried the draw" in lost[0]
    assert "DrawPrimitive on dev0.worker" in lost[0]


def test_messages_name_the_ddi_the_thread_the_flags_and_the_handles() -> None:
    _got, messages = found(RunSpec("rename-failure-recovery",
                                   driver=DRIVERS["ok_after_failed_rename"].driver))
    la10 = next(m for m in messages if m.startswith("LA-10"))
    assert "LockAsync(vb0@dev0, Discard) on app" in la10 and "D3DERR_WASSTILLDRAWING" in la10
    data = next(m for m in messages if m.startswith("DATA"))
    assert "the GPU read vb0@dev0 inst" in data and "made by LockAsync(vb0@dev0, Discard)" in data
    assert "submitted by Present() on dev0.worker (command" in data
    lcb19s = [m for seed in range(8) for m in found(RunSpec(
        "dynamic-vb-ring", driver=DRIVERS["rename_unlocks_held"].driver, strategy="random",
        seed=seed))[1] if m.startswith("LCB-19")]
    assert lcb19s, "LCB-19 never reported in 8 schedules"
    lcb19 = lcb19s[0]
    assert "Rename(vb0@dev0, cookie" in lcb19 and "on dev0.worker" in lcb19
    assert "still holds locked (LockAsync(vb0@dev0, " in lcb19


async def _draw_then_fail_an_expectation(ctx) -> None:
    dev = await ctx.device()
    vb = await dev.create_vertex_buffer(64)
    await dev.set_stream_source(0, vb, 0, 16)
    for i in range(3):
        view = await dev.lock(vb, 0, 0, d3d9.D3DLOCK_DISCARD)
        view.write(0, bytes([i + 1]) * 64)
        await dev.unlock(vb)
        await dev.draw_primitive(d3d9.D3DPT_TRIANGLELIST, 0, 4)
    await dev.present()
    ctx.expect(False, "a scenario expectation that fails before the data oracle ran")


def test_a_failed_expectation_never_masks_the_data_oracle() -> None:
    """Expectations are judged after the checker's final checks: with stop-at-first (explore),
    the run stops at the DATA finding, not at the scenario's own EXPECT."""
    scenarios.REGISTRY.register(
        "draw-then-expect", Scenario("draw-then-expect", "test", _draw_then_fail_an_expectation))
    try:
        _data_before_expect()
    finally:
        scenarios.REGISTRY.unregister("draw-then-expect")


def _data_before_expect() -> None:
    spec = RunSpec("draw-then-expect", driver=DRIVERS["drops_draws"].driver)
    r = run_scenario(spec, stop_on_violation=True).run
    assert r.violations[0].rule == "DATA"
    assert r.failure is not None and str(r.failure).split(": ")[1].startswith("DATA")
    r = run_scenario(spec).run
    assert [v.rule for v in r.violations] == ["DATA", "EXPECT"]
