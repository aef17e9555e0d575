"""The rule table: one entry per rule id the two contracts define, in reference order.

``wddmemu/rules.toml`` (package data) is the machine-readable table: for each id its one-line
meaning, its status here (``checked`` by the checker, ``enforced`` by a layer, ``both``, ``not
modelled``, ``n/a``) and where (the checker functions and layer code). ``wddmemu rules``
prints it, ``docs/checker.md`` shows the same rows with their tests and notes, and
``tests/test_rule_table.py`` keeps the three in step.

Maintainer checks (the contracts live outside the repository)::

    python -m wddmemu.rules --check-reference ../shared/reference   # ids == the contracts'
    python -m wddmemu.rules --from-doc docs/checker.md > wddmemu/rules.toml  # regenerate
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

RULES_FILE = Path(__file__).with_name("rules.toml")
STATUSES = ("checked", "enforced", "both", "not modelled", "n/a")
#: the contracts, in the table's order
REFERENCES = ("umd-runtime-contract.md", "kernel-contract.md")
PREFIXES = "LA|UA|RN|LK|LCB|RCB|MP|DV|ERR|KL2|KL|KU|AC|DA|CA|RD|HD|SEG|SW|SCH|TDR"
ID = rf"(?:{PREFIXES})-\d+"
#: a definition in a contract: a bullet that starts with the id, bold or not
DEFINITION = re.compile(rf"^- (?:\*\*)?({ID})\b", re.MULTILINE)


@dataclass(frozen=True)
class Rule:
    """One rule id: what it means (one line), its status here, and where it is checked or
    enforced (``Checker.method`` and ``path.py:Name`` references, as in docs/checker.md)."""

    id: str
    meaning: str
    status: str
    where: str


@cache
def rules() -> tuple[Rule, ...]:
    """Every rule of ``rules.toml``, in reference order."""
    with RULES_FILE.open("rb") as f:
        doc = tomllib.load(f)
    return tuple(Rule(r["id"], r["meaning"], r["status"], r.get("where", ""))
                 for r in doc["rule"])


def get_rule(rule_id: str) -> Rule:
    """The rule ``rule_id`` (case-insensitive); ``KeyError`` with a one-line message (for a
    ``rule_id`` that is not a string too)."""
    if not isinstance(rule_id, str):
        raise KeyError(f"a rule id is a string like LCB-5, not {type(rule_id).__name__}: run "
                       "'wddmemu rules' to list them")
    for r in rules():
        if r.id.lower() == rule_id.lower():
            return r
    raise KeyError(f"unknown rule {rule_id!r}: run 'wddmemu rules' to list them")


#: the findings that are not contract rule ids (``wddmemu rules ID`` knows them too): the
#: emulator's own oracles and the engine's failure kinds, each with its one-line meaning and
#: where it is documented (docs/checker.md, "The emulator's own oracles", lists them all)
FINDINGS: dict[str, tuple[str, str, str]] = {
    # id: (kind, meaning, where documented)
    "RACE": ("oracle", "two accesses to a SharedCell that happens-before does not order",
             "docs/checker.md (The emulator's own oracles), docs/engine.md"),
    "DATA": ("oracle", "a draw read bytes other than those the app had written when it issued "
             "the draw, or never executed", "docs/checker.md (The emulator's own oracles)"),
    "APP-NOOVERWRITE": ("oracle", "the application wrote, through a NoOverwrite lock, bytes a "
                        "draw it issued earlier still reads (the scenario's finding)",
                        "docs/checker.md (The emulator's own oracles)"),
    "KMD-INVARIANT": ("oracle", "the kernel's bookkeeping is inconsistent",
                      "docs/checker.md (The emulator's own oracles)"),
    "EXPECT": ("oracle", "a scenario's own expectation failed",
               "docs/checker.md (The emulator's own oracles), docs/scenarios.md"),
    "CB-AFTER-DESTROY": ("oracle", "the driver called a callback after its DestroyDevice had "
                         "returned (a thread it left running); the runtime refused it with "
                         "E_INVALIDARG", "docs/checker.md (The emulator's own oracles)"),
    "exception": ("engine failure", "a Python exception (any BaseException but a real Ctrl-C) "
                  "escaped an emulated thread (a DDI, a scenario body); its traceback is in "
                  "RunResult.failure.details['traceback'], and run, replay and explore print it",
                  "docs/engine.md (Untrusted code), docs/explore.md"),
    "deadlock": ("engine failure", "no thread can run and no timer is pending",
                 "docs/engine.md (Scheduling points and the core loop)"),
    "step-budget": ("engine failure", "the run took more scheduling points than its step "
                    "budget (a livelock?): --step-budget",
                    "docs/engine.md (Scheduling points and the core loop)"),
    "foreign-await": ("engine failure", "emulated code awaited something that is not a "
                      "vthreads operation (anyio, asyncio or trio directly, e.g. "
                      "anyio.sleep_forever()) under a controlled strategy: reported at once",
                      "docs/engine.md (A foreign await is a finding)"),
    "hang": ("engine failure", "the run did not end within --timeout seconds of wall time (a "
             "CPU-bound loop in the driver; the watchdog)",
             "docs/explore.md (Bad input, hangs, Ctrl-C and files)"),
    "divergence": ("engine failure", "a replayed decision list no longer matches the program "
                   "(replay reports it as 'no longer fails' or 'diverged')",
                   "docs/engine.md (strategies: replay), docs/explore.md (replay)"),
    "swallowed-abort": ("engine failure", "a thread swallowed the engine's abort 16 times "
                        "(an except BaseException in a loop) and was abandoned so that the run "
                        "ends", "docs/engine.md (Untrusted code)"),
    "foreign-task": ("engine failure", "emulated code started a task of the event loop "
                     "(asyncio create_task): code outside every emulated thread, cancelled "
                     "before it runs", "docs/engine.md (Untrusted code)"),
    "foreign-thread": ("engine failure", "emulated code started an OS thread "
                       "(threading.Thread.start, a ThreadPoolExecutor): code beside every "
                       "emulated thread, refused before it starts", "docs/engine.md "
                       "(Untrusted code)"),
    "violation": ("engine failure", "a rule broke under stop_on_violation (the finding is "
                  "reported by the rule's id)", "docs/engine.md"),
}


@dataclass(frozen=True)
class EmulatorFinding:
    """A finding that is not a contract rule: an oracle of the emulator or a failure kind of
    the engine (:data:`FINDINGS`)."""

    id: str
    kind: str
    meaning: str
    documented: str


def get_finding(finding_id: str) -> EmulatorFinding:
    """The non-rule finding ``finding_id`` (case-insensitive); ``KeyError`` otherwise."""
    for k, (kind, meaning, where) in FINDINGS.items():
        if k.lower() == finding_id.lower():
            return EmulatorFinding(k, kind, meaning, where)
    raise KeyError(finding_id)


def reference_ids(directory: Path | str) -> list[str]:
    """Every rule id the contracts in ``directory`` define, in reference order.
    ``FileNotFoundError`` if a contract is missing."""
    ids: list[str] = []
    for name in REFERENCES:
        ids += DEFINITION.findall((Path(directory) / name).read_text(encoding="utf-8"))
    return ids


def check_reference(directory: Path | str, table: Iterable[Rule] | None = None) -> list[str]:
    """Problems between the contracts in ``directory`` and the table (empty: they agree):
    an id defined twice, an id without an entry, an entry for no id, a different order."""
    try:
        ids = reference_ids(directory)
    except OSError as e:
        return [f"cannot read the contracts in {directory}: {e.strerror or e}"]
    documented = [r.id for r in (rules() if table is None else table)]
    problems = []
    if len(ids) < 200:
        problems.append(f"only {len(ids)} definitions found: the pattern no longer matches")
    problems += [f"{i} is defined {n} times" for i, n in Counter(ids).items() if n > 1]
    problems += [f"{i} has no entry in rules.toml" for i in ids if i not in documented]
    problems += [f"{i} is in rules.toml but no contract defines it"
                 for i in documented if i not in ids]
    if not problems and documented != ids:
        first = next(k for k, (a, b) in enumerate(zip(documented, ids)) if a != b)
        problems.append(f"rules.toml is not in reference order from {documented[first]}")
    return problems


def cells(line: str) -> list[str]:
    """The cells of a markdown table row."""
    return [c.strip() for c in line.strip().strip("|").split("|")]


def rows_from_doc(text: str) -> list[dict[str, str]]:
    """The rule rows of docs/checker.md: id, rule, status, where, test, notes."""
    out = []
    for line in text.splitlines():
        if not line.startswith("|"):
            continue
        c = cells(line)
        if re.fullmatch(ID, c[0]):
            if len(c) != 6:
                raise ValueError(f"a rule row has 6 cells (id, rule, status, where, test, "
                                 f"notes): {line}")
            out.append(dict(zip(("id", "rule", "status", "where", "test", "notes"), c)))
    return out


def toml_from_doc(text: str) -> str:
    """``rules.toml``'s text for the rows of docs/checker.md (the maintainer's regeneration)."""
    out = ["# The rule table: one entry per rule id of the contracts, in reference order.",
           "# Generated from docs/checker.md by `python -m wddmemu.rules --from-doc`;",
           "# tests/test_rule_table.py keeps the two equal.", ""]
    for r in rows_from_doc(text):
        out += ["[[rule]]", f"id = {json.dumps(r['id'])}",
                f"meaning = {json.dumps(r['rule'], ensure_ascii=False)}",
                f"status = {json.dumps(r['status'])}",
                f"where = {json.dumps(r['where'], ensure_ascii=False)}", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m wddmemu.rules", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--check-reference", metavar="DIR",
                   help="compare rules.toml with the contracts in DIR (exit 1 if they differ)")
    g.add_argument("--from-doc", metavar="CHECKER_MD",
                   help="print rules.toml regenerated from docs/checker.md")
    a = ap.parse_args(argv)
    if a.from_doc:
        sys.stdout.write(toml_from_doc(Path(a.from_doc).read_text(encoding="utf-8")))
        return 0
    problems = check_reference(a.check_reference)
    for p in problems:
        print(f"rules.toml: {p}", file=sys.stderr)
    if not problems:
        print(f"rules.toml: {len(rules())} rule ids, as the contracts in "
              f"{a.check_reference} define them")
    return 1 if problems else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
