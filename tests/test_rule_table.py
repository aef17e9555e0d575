"""The rule table (``wddmemu/rules.toml``), docs/checker.md and the code agree: one entry per
rule id in reference order, the same rows in the doc, a known status for each, and every claim
in a row backed by something that exists.

Nothing here needs the contracts themselves (they live outside the repository): the table is
the repository's copy of their ids. Comparing it with the contracts is the maintainer check
``python -m wddmemu.rules --check-reference DIR``; the tests below run that check on contracts
rebuilt from the table (so the check itself is tested), and also on the real ones when
``WDDMEMU_REFERENCE_DIR`` names them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from functools import cache
from pathlib import Path

from wddmemu.rules import ID, REFERENCES, STATUSES, Rule, check_reference, rows_from_doc, rules

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "checker.md"
CHECKER = ROOT / "wddmemu" / "_checker.py"
#: where layers live; the checker and the seeded-bug corpus cite ids without enforcing them
LAYER_DIRS = ("vthreads", "kmd", "umd", "runtime")
NOT_LAYERS = {CHECKER}
#: ``kmd/dxgkrnl.py:Kernel.dxgk_lock`` and ``tests/kmd/test_flags.py::test_x`` in a row
CODE_REF = re.compile(
    r"\b((?:vthreads|kmd|runtime|umd|scenarios|wddmemu|tests)/[\w/]+\.py)(?:(::?)([\w.]+))?")


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


@cache
def rows() -> list[dict[str, str]]:
    """The rule rows of docs/checker.md: table rows whose first cell is a rule id."""
    return rows_from_doc(DOC.read_text(encoding="utf-8"))


def test_the_table_has_one_entry_per_id_with_a_known_status() -> None:
    ids = [r.id for r in rules()]
    assert len(ids) > 200
    assert all(re.fullmatch(ID, i) for i in ids)
    dupes = [i for i, n in Counter(ids).items() if n > 1]
    assert not dupes, f"ids with more than one entry in rules.toml: {dupes}"
    bad = [(r.id, r.status) for r in rules() if r.status not in STATUSES]
    assert not bad, f"unknown status words: {bad}"
    assert all(r.meaning for r in rules())


def test_the_doc_rows_are_the_table_entries() -> None:
    doc = [Rule(r["id"], r["rule"], r["status"], r["where"]) for r in rows()]
    table = list(rules())
    assert [r.id for r in doc] == [r.id for r in table], (
        "docs/checker.md rows and wddmemu/rules.toml entries differ in ids or order")
    diff = [(d.id, d, t) for d, t in zip(doc, table) if d != t]
    assert not diff, (
        f"{diff[0][0]}: docs/checker.md says {diff[0][1]}, rules.toml {diff[0][2]} (after "
        "editing the doc: python -m wddmemu.rules --from-doc docs/checker.md > "
        "wddmemu/rules.toml)")


def _contracts(directory: Path, ids: list[str]) -> Path:
    """Two contract files that define ``ids`` (split where the kernel contract starts)."""
    directory.mkdir()
    split = next(k for k, i in enumerate(ids) if i.startswith("KL-"))
    for name, part in zip(REFERENCES, (ids[:split], ids[split:])):
        body = "\n".join(f"- **{i}** (rule {i})" for i in part)
        (directory / name).write_text(f"# {name}\n\n{body}\n", encoding="utf-8")
    return directory


def test_the_reference_check_accepts_the_table_and_catches_a_difference(tmp_path: Path) -> None:
    ids = [r.id for r in rules()]
    good = _contracts(tmp_path / "good", ids)
    p = subprocess.run([sys.executable, "-m", "wddmemu.rules", "--check-reference", str(good)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert f"{len(ids)} rule ids" in p.stdout
    swapped = [ids[1], ids[0], *ids[2:]]
    assert check_reference(_contracts(tmp_path / "swapped", swapped)) == [
        f"rules.toml is not in reference order from {ids[0]}"]
    extra = _contracts(tmp_path / "extra", [*ids[:3], "LA-999", *ids[3:]])
    assert check_reference(extra) == ["LA-999 has no entry in rules.toml"]
    p = subprocess.run([sys.executable, "-m", "wddmemu.rules", "--check-reference",
                        str(extra)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "LA-999 has no entry" in p.stderr
    assert check_reference(tmp_path / "missing")[0].startswith("cannot read the contracts")


def test_the_table_matches_the_contracts_where_they_are() -> None:
    """The maintainer's run: the real contracts, when ``WDDMEMU_REFERENCE_DIR`` names them
    (a clone without them has only the table, which the tests above keep consistent)."""
    real = os.environ.get("WDDMEMU_REFERENCE_DIR")
    problems = check_reference(real) if real else []
    assert problems == [], f"rules.toml against the contracts in {real}: {problems}"


@cache
def layer_source() -> str:
    files = sorted(p for d in LAYER_DIRS for p in (ROOT / d).rglob("*.py") if p not in NOT_LAYERS)
    return "\n".join(p.read_text(encoding="utf-8") for p in files)


def cites(text: str, rule: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(rule)}(?![\w-])", text) is not None


def test_statuses_are_known_and_the_summary_counts_them() -> None:
    bad = [(r["id"], r["status"]) for r in rows() if r["status"] not in STATUSES]
    assert not bad, f"unknown status words: {bad}"
    actual = Counter(r["status"] for r in rows())
    summary = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = _cells(line) if line.startswith("|") else []
        if len(cells) == 2 and cells[0] in (*STATUSES, "total"):
            summary[cells[0]] = int(cells[1])
    assert summary == {**{s: actual[s] for s in STATUSES}, "total": len(rows())}


def test_checked_rows_name_real_checker_functions_and_the_checker_cites_the_id() -> None:
    # the checker's rule families live in wddmemu/_checker*.py (mixins of Checker)
    source = "\n".join(p.read_text(encoding="utf-8")
                       for p in sorted(CHECKER.parent.glob("_checker*.py")))
    methods = set(re.findall(r"^    (?:async )?def (\w+)\(", source, re.MULTILINE))
    for r in rows():
        if r["status"] not in ("checked", "both"):
            continue
        named = re.findall(r"\bChecker\.(\w+)", r["where"])
        assert named, f"{r['id']}: a checked row names the Checker function"
        missing = [n for n in named if n not in methods]
        assert not missing, f"{r['id']}: no such Checker method {missing}"
        assert cites(source, r["id"]), f"{r['id']} does not appear in wddmemu/_checker.py"


def test_enforced_rows_are_cited_by_a_layer_unless_marked_uncited() -> None:
    source = layer_source()
    for r in rows():
        uncited = "uncited" in r["notes"]
        if uncited:
            assert r["status"] in ("enforced", "both"), f"{r['id']}: uncited but {r['status']}"
        if r["status"] not in ("enforced", "both"):
            continue
        if uncited:
            assert not cites(source, r["id"]), (
                f"{r['id']} is cited in kmd/runtime/umd now: drop the 'uncited' mark"
            )
        else:
            assert cites(source, r["id"]), (
                f"{r['id']} is '{r['status']}' but no kmd/, runtime/ or umd/ source cites it"
            )


def test_every_code_and_test_reference_exists() -> None:
    for r in rows():
        for path, sep, name in CODE_REF.findall(" ".join((r["where"], r["test"], r["notes"]))):
            file = ROOT / path
            assert file.is_file(), f"{r['id']}: {path} does not exist"
            if not name:
                continue
            if sep == "::":
                assert name.startswith("test_"), f"{r['id']}: {path}::{name} is not a test"
            leaf = name.rsplit(".", 1)[-1]
            pattern = rf"^\s*(?:(?:async )?def|class) {leaf}\b|^\s*{leaf}\s*[:=]"
            text = file.read_text(encoding="utf-8")
            assert re.search(pattern, text, re.MULTILINE), f"{r['id']}: {path}:{name} not found"


def test_every_oracle_the_checker_doc_lists_is_answered_by_rules() -> None:
    # CB-AFTER-DESTROY was a row of the table but 'wddmemu rules CB-AFTER-DESTROY' was
    # "unknown rule" (docs sweep, 7 December)
    from wddmemu.rules import FINDINGS

    text = DOC.read_text(encoding="utf-8")
    table = text[text.index("## The emulator's own oracles"):]
    table = table[:table.index("\n\n", table.index("| oracle |"))]
    ids = re.findall(r"^\| `([^`]+)` \|", table, re.M)
    assert len(ids) >= 6 and "CB-AFTER-DESTROY" in ids
    assert [i for i in ids if i not in FINDINGS] == []
