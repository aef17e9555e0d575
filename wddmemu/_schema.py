"""The shape of a failure file (``docs/explore.md``, "Failure files"), checked before any of it
is used: every section and every member has one JSON kind, and a file that breaks that is one
line naming the field and what it must be — never a Python error's text (``'NoneType' object
is not subscriptable``).

The spec's own fields are :data:`wddmemu._explore._SPEC_KINDS`' (their values are then judged
by ``check_spec``, as the command line's are); this module checks everything around them: the
top-level keys, ``failure``, ``load``, ``found_by``, ``minimised`` and the decision list.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ._files import printable

NONE = type(None)

#: how a JSON kind is named in messages
KIND_NAMES: dict[type, str] = {str: "a string", int: "an integer", dict: "an object",
                               list: "a list", NONE: "null", bool: "a boolean",
                               float: "a number"}

#: every top-level key, its kind, and whether a file must have it (``load`` is version 2's;
#: ``wddmemu``, ``found_by``, ``minimised`` and ``replay`` are for people and never read)
SECTIONS: dict[str, tuple[tuple[type, ...], bool]] = {
    "format": ((str,), True), "version": ((int,), True), "wddmemu": ((str,), False),
    "load": ((dict,), False), "spec": ((dict,), True), "failure": ((dict,), True),
    "found_by": ((dict,), False), "minimised": ((dict,), False), "replay": ((str,), False),
}
#: the members of the object sections: kind, and whether the section must have it
MEMBERS: dict[str, dict[str, tuple[tuple[type, ...], bool]]] = {
    "failure": {"rule": ((str,), True), "step": ((int,), True), "thread": ((str, NONE), False),
                "message": ((str,), False)},
    "load": {"modules": ((list,), False), "distributions": ((list,), False)},
    "found_by": {"strategy": ((str,), False), "seed": ((int,), False), "depth": ((int,), False),
                 "pct_steps": ((int,), False), "schedule": ((int,), False)},
    "minimised": {"deviations_before": ((int,), False), "deviations_after": ((int,), False),
                  "replays": ((int,), False), "cached": ((int,), False),
                  "budget_hit": ((bool,), False)},
}
#: what a missing required field is, for the message
_WHAT = {"spec": "the run to replay", "failure": "the rule and step that broke",
         "rule": "the rule id that broke", "step": "the step it broke at"}

#: a decision is a thread id; the engine's compact record holds 31 bits
MAX_TID = (1 << 31) - 1
#: a step is a 63-bit count, as every step the engine reports
MAX_STEP = (1 << 63) - 1
_DISTRIBUTION = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?\Z")  # PEP 508 names


def kind_name(value: Any) -> str:
    """The JSON kind of ``value`` as a message names it (``a string``, ``null``…). orjson
    reads an integer past 64 bits as a float: that is "an integer too large", not "a
    number" (sweep H D7)."""
    if type(value) is float and value.is_integer() and abs(value) >= 2.0**64:
        return "an integer too large (past 64 bits)"
    return KIND_NAMES.get(type(value), "not JSON")


def is_kind(value: Any, kinds: tuple[type, ...]) -> bool:
    """Whether ``value`` has one of ``kinds`` (true and false are booleans, not integers)."""
    if type(value) is bool:
        return bool in kinds
    return isinstance(value, kinds)


def _wanted(kinds: tuple[type, ...]) -> str:
    return " or ".join(KIND_NAMES[k] for k in kinds)


def _fields_problem(where: str, d: Mapping[str, Any],
                    table: dict[str, tuple[tuple[type, ...], bool]]) -> str | None:
    """Unknown, missing or mistyped members of ``d`` (``where``: "the file", "the failure")."""
    unknown = sorted(set(d) - set(table))
    if unknown:
        return f"{where} has an unknown field {unknown[0]!r} (fields: {', '.join(table)})"
    for name, (kinds, required) in table.items():
        if name not in d:
            if required:
                what = _WHAT.get(name, _wanted(kinds))
                return f"{where} has no {name} ({what})"
            continue
        if not is_kind(d[name], kinds):
            owner = "the file's" if where == "the file" else f"{where}'s"
            return f"{owner} {name} is {kind_name(d[name])}, not {_wanted(kinds)}"
    return None


def document_problem(doc: dict[str, Any]) -> str | None:
    """The first thing wrong with the shape of failure-file document ``doc`` (an object whose
    ``format`` and ``version`` were checked), outside the spec's fields; None if none is."""
    problem = _fields_problem("the file", doc, SECTIONS)
    if problem:
        return problem
    for section, table in MEMBERS.items():
        if section in doc:
            problem = _fields_problem(f"the {section}", doc[section], table)
            if problem:
                return problem
    fail = doc["failure"]
    if not fail["rule"]:
        return "the failure's rule is empty: it names the rule id that broke"
    if not 0 <= fail["step"] <= MAX_STEP:
        return f"the failure's step is {_shown(fail['step'])}: a step is 0..{MAX_STEP:,}"
    return _load_problem(doc.get("load", {}))


def is_module_name(v: str) -> bool:
    """A dotted module name, each part an identifier as Python reads one — non-ASCII letters
    too, as ``--load`` takes them (an ASCII-only pattern refused our own files of such a
    module)."""
    return all(part.isidentifier() for part in v.split("."))


def _load_problem(load: dict[str, Any]) -> str | None:
    for name, ok, like in (("modules", is_module_name, "module names like mypkg.drivers"),
                           ("distributions", _DISTRIBUTION.match, "distribution names")):
        for i, v in enumerate(load.get(name, ())):
            if not isinstance(v, str) or not ok(v):
                shown = f"'{printable(v)}'" if isinstance(v, str) else kind_name(v)
                return f"the load's {name}[{i}] is {shown}: the list holds {like}"
    return None


def _shown(v: int) -> str:
    return str(v) if v.bit_length() < 200 else "a huge integer"


def decisions_problem(decisions: Any) -> str | None:
    """What is wrong with a file's decision list (missing, not a list, or an entry that is not
    a thread id 0..MAX_TID), or None."""
    if decisions is None:
        return ("the spec has no decision list (spec.decisions: the thread id chosen at each "
                "choice point)")
    if not isinstance(decisions, list | tuple):
        return f"the spec's decisions is {kind_name(decisions)}, not a list of thread ids"
    for i, x in enumerate(decisions):
        if type(x) is not int:
            return (f"the spec's decisions[{i}] is {kind_name(x)}, not a thread id (an "
                    f"integer 0..{MAX_TID:,})")
        if not 0 <= x <= MAX_TID:
            return f"the spec's decisions[{i}] is {_shown(x)}: a thread id is 0..{MAX_TID:,}"
    return None
