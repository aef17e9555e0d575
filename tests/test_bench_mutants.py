"""bench/mutants.py's accounting (issue 16): equivalent survivors leave the score's denominator,
survivors killed by a test mutmut's copy cannot run count as killed, every other survivor is
printed and makes the exit code 1."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def mutants():
    spec = importlib.util.spec_from_file_location("bench_mutants", ROOT / "bench" / "mutants.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up there
    try:
        spec.loader.exec_module(mod)
        yield mod
    finally:
        del sys.modules[spec.name]


def test_report_counts_equivalent_and_killed_elsewhere_apart(mutants, capsys) -> None:
    o = mutants.Outcome("vthreads/_x.py", statuses={
        "m_1": "killed", "m_2": "survived", "m_3": "survived", "m_4": "survived",
        "m_5": "timeout"}, diffs={"m_4": "-a\n+b"})
    bad = mutants.report([o], {"m_2": "same"}, {"m_3": "frame test"})
    out = capsys.readouterr().out
    assert bad == 1
    row = next(line for line in out.splitlines() if line.startswith("vthreads/_x.py"))
    # 5 mutants; killed 1 + 1 elsewhere; 2 still listed as survivors (1 equivalent); 1 timeout;
    # score (2 + 1) / (5 - 1) = 75 %
    assert row.split()[1:7] == ["5", "2", "2", "1", "1", "75.0%"]
    assert "survived: m_4\n-a\n+b" in out and "survived: m_3" not in out
    assert "m_3: frame test" in out.split("killed by a test mutmut's copy cannot run")[1]


def test_the_listed_names_are_unique_across_the_two_tables(mutants) -> None:
    eq, elsewhere = mutants._listed("equivalent"), mutants._listed("killed_elsewhere")
    assert eq and elsewhere and not set(eq) & set(elsewhere)
    assert all(why.strip() for why in [*eq.values(), *elsewhere.values()])
