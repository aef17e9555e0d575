"""Each rule the checker enforces, broken on purpose by a named variant (driver, runtime or
kernel bug): the checker must cite exactly that rule id, and the reference stack run on the
same scenario and schedules must not cite it (nor anything else)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from wddmemu._runner import RunSpec, run_scenario

SEEDS = 40

# rule id → (what breaks it, the scenario spec that exposes it)
CASES: list[tuple[str, dict[str, Any]]] = [
    ("LA-1", dict(scenario="dynamic-vb-ring", driver="no-rename",
                  bugs=("lockasync-without-triple",))),
    ("LA-3", dict(scenario="reentrant-lockasync", ddi_version=0xA, bugs=("gate-missing",))),
    ("LA-4", dict(scenario="sysmem-surface-lock", ddi_version=0xA,
                  bugs=("sysmem-lockasync-below-b",))),
    ("LA-5", dict(scenario="lock-flags", bugs=("lockasync-conflicting-flags",))),
    ("LA-6", dict(scenario="dynamic-vb-ring", bugs=("lockasync-two-regions",))),
    ("LA-7", dict(scenario="dynamic-vb-ring", bugs=("lockasync-reserved-bit",))),
    ("LA-9", dict(scenario="dynamic-vb-ring", driver="noexistingref-with-queued-refs")),
    ("LA-9", dict(scenario="dynamic-vb-ring", bugs=("noexistingrefs-always",))),
    ("LA-10", dict(scenario="rename-failure-recovery", driver="flush-on-rename-failure")),
    ("LA-11", dict(scenario="dynamic-vb-ring", driver="wasstilldrawing-without-discard",
                   params={"ring": 64})),
    ("LA-13", dict(scenario="dynamic-vb-ring", driver="track-in-lockasync")),
    ("LA-14", dict(scenario="dynamic-vb-ring", driver="wasstilldrawing-without-discard")),
    ("LA-15", dict(scenario="nooverwrite-local-vidmem", driver="nooverwrite-local-vidmem")),
    ("RN-1", dict(scenario="dynamic-vb-ring", bugs=("rename-twice",))),
    ("RN-2", dict(scenario="dynamic-vb-ring", bugs=("rename-wrong-cookie",))),
    ("RN-3", dict(scenario="dynamic-vb-ring", bugs=("rename-on-app-thread",))),
    ("MP-5", dict(scenario="dynamic-vb-ring", bugs=("rename-jumps-queue",))),
    ("UA-3", dict(scenario="dynamic-vb-ring", bugs=("unlockasync-after-sync-lock",))),
    ("LK-8", dict(scenario="lock-flags", bugs=("draw-while-locked",))),
    ("UA-4", dict(scenario="dynamic-vb-ring", driver="unlockasync-skips-unlockcb")),
    ("UA-4", dict(scenario="dynamic-vb-ring", driver="unlockasync-wrong-handle")),
    ("MP-1", dict(scenario="multi-app-threads", bugs=("create-resource-ungated",))),
    ("ERR-1", dict(scenario="tdr-mid-lock", driver="swallow-callback-errors")),
    ("KL-6", dict(scenario="dynamic-vb-ring", driver="lockcb-readonly-writeonly")),
    ("KL-9", dict(scenario="dynamic-vb-ring", driver="lockcb-ignoresync-acquireaperture")),
    ("KL-10", dict(scenario="dynamic-vb-ring", driver="lockcb-alternateva-alone")),
    ("KL-21", dict(scenario="gl-icd-lock-entire", bugs=("donotwait-waits",))),
    ("DATA", dict(scenario="discard-every-frame", driver="discard-ignored")),
    ("RACE", dict(scenario="reentrant-lockasync", driver="no-driver-lock", ddi_version=0xB)),
    ("RACE", dict(scenario="reentrant-lockasync", bugs=("worker-queue-unlocked",))),
    ("deadlock", dict(scenario="reentrant-lockasync", driver="lock-order-deadlock",
                      ddi_version=0xB)),
    ("exception", dict(scenario="dynamic-vb-ring", driver="crash-in-rename")),
    ("step-budget", dict(scenario="dynamic-vb-ring", step_budget=50)),
]


def findings(spec: RunSpec) -> set[str]:
    r = run_scenario(spec).run
    return set(r.rules()) | ({r.failure.kind} if r.failure else set())


def schedules(base: RunSpec):
    yield replace(base, strategy="fifo", seed=0)
    for seed in range(SEEDS):
        yield replace(base, strategy="random", seed=seed)
        yield replace(base, strategy="pct", seed=seed, pct_steps=300)


@pytest.mark.parametrize("rule,kw", CASES, ids=[f"{r}-{k.get('driver', '')}"
                                                f"{'-'.join(k.get('bugs', ()))}"
                                                for r, k in CASES])
def test_checker_cites_the_broken_rule_and_not_for_the_reference(rule: str, kw: dict) -> None:
    broken = RunSpec(**kw)
    hit = None
    tried = 0
    for spec in schedules(broken):
        tried += 1
        got = findings(spec)
        if rule in got:
            hit = spec
            break
    assert hit is not None, f"{rule} never reported in {tried} schedules of {kw}"
    # the same scenario and schedule with the reference driver, runtime and kernel: clean
    reference = replace(hit, driver="reference", bugs=(), step_budget=200_000)
    assert findings(reference) == set(), reference


def test_scenario_expectations_and_data_oracle_hold_for_the_reference_everywhere() -> None:
    """The reference stack stays clean on every built-in scenario at 0xA and 0xB (a smoke
    version of the exploration test: many more schedules run in tests/explore)."""
    import scenarios

    for name in sorted(scenarios.REGISTRY):
        for version in (0xA, 0xB):
            for spec in list(schedules(RunSpec(name, ddi_version=version)))[:5]:
                assert findings(spec) == set(), spec
