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
        assert rows[0] == rows[0].rstrip()  # without the padding to the table's width


def test_columns_still_sets_a_listings_width(capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "70")
    assert _cli.main(["drivers"]) == 0
    assert max(len(ln) for ln in capsys.readouterr().out.splitlines()) <= 70


def _engine_failure_kinds() -> set[str]:
    """Every failure kind the engine and the watchdog can end a run with, read from their
    source (``_fail("kind", …)``, ``fail_run(engine, "kind", …)``, ``self.fail("kind", …)``)."""
    import re
    from pathlib import Path

    import vthreads
    import wddmemu

    kinds: set[str] = set()
    for pkg in (vthreads, wddmemu):
        for path in Path(pkg.__file__).parent.glob("*.py"):
            text = path.read_text(encoding="utf-8")
            kinds |= set(re.findall(r'(?:\b_fail|\bself\.fail)\(\s*"([a-z-]+)"', text))
            kinds |= set(re.findall(r'fail_run\(\s*self\._engine,\s*"([a-z-]+)"', text))
    return kinds


def test_rules_knows_every_failure_kind_of_the_engine(capsys) -> None:
    from wddmemu.rules import FINDINGS

    kinds = _engine_failure_kinds()
    assert {"exception", "deadlock", "step-budget", "foreign-await", "hang",
            "divergence", "violation"} <= kinds  # the scan finds them
    assert kinds <= set(FINDINGS)
    for kind in kinds:
        one = _out(["rules", kind], capsys)
        assert one.startswith(f"{kind}: ") and "status: engine failure (not a contract rule)" \
            in one, one
        assert "documented: docs/" in one
    listed = _out(["rules"], capsys)
    assert "not contract rules" in listed and all(k in listed for k in FINDINGS)


def test_rules_foreign_await_says_where_it_is_documented(capsys) -> None:
    one = _out(["rules", "Foreign-Await"], capsys)  # case-insensitive, like rule ids
    assert "anyio.sleep_forever()" in one and "docs/engine.md" in one
    assert "RACE: " in _out(["rules", "race"], capsys)


def test_every_finding_rules_knows_is_in_the_own_oracles_table() -> None:
    from pathlib import Path

    from wddmemu.rules import FINDINGS

    doc = (Path(__file__).resolve().parents[2] / "docs" / "checker.md").read_text("utf-8")
    table = doc.split("## The emulator's own oracles", 1)[1].split("\n## ", 1)[0]
    firsts = {line.split("|")[1].strip().split("`")[1] for line in table.splitlines()
              if line.startswith("| `")}
    assert set(FINDINGS) - {"violation"} <= firsts, set(FINDINGS) - firsts


def test_python_dash_m_wddmemu_is_the_command() -> None:
    """``python -m wddmemu`` runs the CLI (an environment whose scripts are not on PATH): the
    same exit codes as ``wddmemu``, a bad name exit 2 in one line."""
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "wddmemu", "--version"], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.startswith("wddmemu, version "), (p.stdout, p.stderr)
    p = subprocess.run([sys.executable, "-m", "wddmemu", "run", "no-such-scenario"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
