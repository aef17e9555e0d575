"""Every built-in scenario passes the checker with the reference driver across 200 random and
200 pct schedules (issue: scenarios, checker, data oracle). The DDI-version-sensitive ones run
at both 0xA and 0xB."""

from __future__ import annotations

import pytest

import scenarios
from wddmemu._explore import ExploreOptions, explore
from wddmemu._runner import RunSpec

VERSION_SENSITIVE = {"reentrant-lockasync", "sysmem-surface-lock", "multi-app-threads",
                     "dynamic-vb-ring"}
CASES = [(name, v) for name in sorted(scenarios.REGISTRY)
         for v in ((0xA, 0xB) if name in VERSION_SENSITIVE else (None,))]


@pytest.mark.slow
@pytest.mark.parametrize("name,version", CASES,
                         ids=[f"{n}-{hex(v) if v else 'default'}" for n, v in CASES])
@pytest.mark.parametrize("strategy", ["random", "pct"])
def test_reference_passes_200_schedules(name: str, version: int | None, strategy: str) -> None:
    res = explore(RunSpec(name, ddi_version=version),
                  ExploreOptions(schedules=200, strategy=strategy, stop_on_first=True,
                                 minimise=False))
    assert res.runs == 200
    assert res.ok, f"{res.failures[0].finding} — replay spec {res.failures[0].spec.command()}"
