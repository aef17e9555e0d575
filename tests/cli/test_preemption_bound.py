"""``--preemption-bound none`` (``ExploreOptions(preemption_bound=None)``): unbounded dfs and
dpor, so that an exhausted search covers every schedule, not only those within a bound. A small
scenario is then proved, not bounded (docs/engine.md, "DPOR"; our choice: the contracts say
nothing of search bounds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wddmemu import ExploreOptions, RunSpec, SpecError, _cli, explore


def _explore(capsys, *args: str) -> tuple[int, str, str]:
    code = _cli.main(["explore", "pinned-lock", "--strategy", "dpor", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_no_bound_proves_a_small_scenario_that_bound_2_only_bounds(tmp_path: Path, capsys,
                                                                   jobs: str) -> None:
    common = ("--save-dir", str(tmp_path), "--jobs", jobs)
    code, out, _ = _explore(capsys, *common)
    assert code == 0 and "bounded: 8 equivalence classes explored within preemption bound 2" in out
    code, out, _ = _explore(capsys, "--preemption-bound", "none", *common)
    assert code == 0
    assert ("exhausted: every interleaving of 9 equivalence classes explored (no preemption "
            "bound; 9 executions)") in out


@pytest.mark.parametrize("bad, says", [
    ("nope", "'nope' is neither 0..1000 nor none"),
    ("2.5", "'2.5' is neither 0..1000 nor none"),
    ("1001", "1001 is not in 0..1000 (or none: no bound)"),
    ("-1", "-1 is not in 0..1000 (or none: no bound)"),
])
def test_a_bad_bound_is_one_line_and_exit_2(capsys, bad: str, says: str) -> None:
    code, out, err = _explore(capsys, "--preemption-bound", bad)
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        f"wddmemu: error: Invalid value for '--preemption-bound': {says}"]


def test_the_api_takes_none_and_refuses_text() -> None:
    res = explore(RunSpec("pinned-lock"),
                  ExploreOptions(strategy="dpor", preemption_bound=None, minimise=False))
    assert res.exhausted and not res.bounded and "no preemption bound" in res.claim
    with pytest.raises(SpecError, match=r"^preemption_bound must be an int, not str$"):
        ExploreOptions(preemption_bound="none")  # type: ignore[arg-type]
