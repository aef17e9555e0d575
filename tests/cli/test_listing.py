"""``wddmemu drivers``, ``bugs`` and ``rules``: what is registered, from the registries that
resolve names, with rule ids and summaries."""

from __future__ import annotations

import kmd
import umd
from runtime import RUNTIME_BUGS
from wddmemu import _cli
from wddmemu.rules import get_rule, rules


def _out(argv: list[str], capsys) -> str:
    assert _cli.main(argv) == 0
    return " ".join(capsys.readouterr().out.split())  # rich wraps long cells


def test_drivers_lists_the_reference_and_every_variant(capsys) -> None:
    out = _out(["drivers"], capsys)
    assert "reference" in out
    for name in umd.VARIANTS:
        assert name in out
    assert "LA-13, DATA" in out  # track-in-lockasync's rules


def test_bugs_lists_variants_runtime_and_kernel_bugs_with_their_rules(capsys) -> None:
    out = _out(["bugs"], capsys)
    for name in [*umd.VARIANTS, *RUNTIME_BUGS, *kmd.KERNEL_BUGS]:
        assert name in out, name
    assert "donotwait-waits kernel KL-21" in out
    assert "no-driver-lock driver RACE" in out
    assert "rename-twice runtime RN-1" in out


def test_rules_lists_every_rule_and_one_rule_in_full(capsys) -> None:
    out = _out(["rules"], capsys)
    for r in rules():
        assert r.id in out
    one = _out(["rules", "la-13"], capsys)
    r = get_rule("LA-13")
    assert one.startswith(f"LA-13: {' '.join(r.meaning.split())}")
    assert f"status: {r.status}" in one and "Checker._check_instance" in one


def test_version_needs_no_heavy_import() -> None:
    import subprocess
    import sys

    code = ("import sys; from wddmemu import _cli; rc = _cli.main(['--version']); "
            "heavy = [m for m in ('rich', 'matplotlib', 'wddmemu._checker', 'kmd', 'umd', "
            "'runtime', 'vthreads', 'scenarios') if m in sys.modules]; print(heavy)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().splitlines()[-1] == "[]"


def test_off_a_terminal_every_listing_row_is_one_line(capsys, monkeypatch) -> None:
    # rich assumes 80 columns off a terminal: a summary wrapped a word a line, ungreppable
    monkeypatch.delenv("COLUMNS", raising=False)
    for argv, name, tail in (
        (["drivers"], "track-in-lockasync", "(LA-13, RN-5, S-8)."),
        (["bugs"], "track-in-lockasync", "(LA-13, RN-5, S-8)."),
        (["scenarios"], "dynamic-vb-ring", None),
    ):
        assert _cli.main(argv) == 0
        rows = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith(name + " ")]
        assert len(rows) == 1, (argv, rows)
        if tail is not None:
            assert rows[0].rstrip().endswith(tail), rows[0]
        assert len(rows[0]) > 120  # wider than the 80 columns rich would have assumed


def test_columns_still_sets_a_listings_width(capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "70")
    assert _cli.main(["drivers"]) == 0
    assert max(len(ln) for ln in capsys.readouterr().out.splitlines()) <= 70
