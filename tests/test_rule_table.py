"""docs/checker.md against the references and the code: one row per rule id the references
define, a known status for each, and every claim in a row backed by something that exists.

The references live outside the repository (``../shared/reference`` next to it, or the directory
in ``WDDMEMU_REFERENCE_DIR``); without them the test is skipped.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "checker.md"
CHECKER = ROOT / "wddmemu" / "_checker.py"
REFERENCE_DIR = Path(os.environ.get("WDDMEMU_REFERENCE_DIR", ROOT.parent / "shared" / "reference"))
REFERENCES = ("umd-runtime-contract.md", "kernel-contract.md")  # the doc's order

PREFIXES = "LA|UA|RN|LK|LCB|RCB|MP|DV|ERR|KL2|KL|KU|AC|DA|CA|RD|HD|SEG|SW|SCH|TDR"
ID = rf"(?:{PREFIXES})-\d+"
#: a definition: a bullet that starts with the id, bold (``- **LA-13** (…)``) or not (``- KL-1 …``)
DEFINITION = re.compile(rf"^- (?:\*\*)?({ID})\b", re.MULTILINE)
STATUSES = ("checked", "enforced", "both", "not modelled", "n/a")
#: where layers live; the checker and the seeded-bug corpus cite ids without enforcing them
LAYER_DIRS = ("vthreads", "kmd", "umd", "runtime")
NOT_LAYERS = {CHECKER}
#: ``kmd/dxgkrnl.py:Kernel.dxgk_lock`` and ``tests/kmd/test_flags.py::test_x`` in a row
CODE_REF = re.compile(r"\b((?:kmd|runtime|umd|scenarios|tests)/[\w/]+\.py)(?:(::?)([\w.]+))?")


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


@cache
def defined_ids() -> list[str]:
    """Every rule id the references define, in reference order."""
    if not all((REFERENCE_DIR / name).is_file() for name in REFERENCES):
        pytest.skip(f"the references are not in {REFERENCE_DIR} (set WDDMEMU_REFERENCE_DIR)")
    ids: list[str] = []
    for name in REFERENCES:
        ids += DEFINITION.findall((REFERENCE_DIR / name).read_text(encoding="utf-8"))
    return ids


@cache
def rows() -> list[dict[str, str]]:
    """The rule rows of docs/checker.md: table rows whose first cell is a rule id."""
    out = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            continue
        cells = _cells(line)
        if not re.fullmatch(ID, cells[0]):
            continue
        assert len(cells) == 6, (
            f"a rule row has 6 cells (id, rule, status, where, test, notes): {line}"
        )
        out.append(dict(zip(("id", "rule", "status", "where", "test", "notes"), cells)))
    return out


@cache
def layer_source() -> str:
    files = sorted(p for d in LAYER_DIRS for p in (ROOT / d).rglob("*.py") if p not in NOT_LAYERS)
    return "\n".join(p.read_text(encoding="utf-8") for p in files)


def cites(text: str, rule: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(rule)}(?![\w-])", text) is not None


def test_the_references_define_ids_once_each() -> None:
    ids = defined_ids()
    assert len(ids) > 200, "the definition pattern no longer matches the references"
    dupes = [i for i, n in Counter(ids).items() if n > 1]
    assert not dupes, f"defined twice in the references: {dupes}"


def test_every_defined_id_has_exactly_one_row_in_reference_order() -> None:
    ids = defined_ids()
    documented = [r["id"] for r in rows()]
    counts = Counter(documented)
    assert not [i for i in ids if i not in counts], "rules missing from docs/checker.md"
    assert not [i for i in counts if i not in ids], "rows for ids no reference defines"
    assert not [i for i, n in counts.items() if n > 1], "ids with more than one row"
    assert documented == ids, "rows are not in reference order"


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
