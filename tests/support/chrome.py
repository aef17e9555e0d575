"""The Trace Event Format's rules, as a checker for ``wddmemu trace export`` output.

:func:`check_chrome` returns a list of human-readable problems (empty when the trace is valid).
It checks what the Perfetto UI and chrome://tracing rely on:

* the document is ``{"traceEvents": [...]}`` (or a bare list) of objects with a ``ph``;
* every non-metadata event has numeric ``pid``, ``tid`` and ``ts``;
* ``X`` events have a numeric ``dur >= 0``;
* ``B``/``E`` pairs nest per (pid, tid), an ``E`` closes the innermost open ``B``, nothing is
  left open;
* slices on one track (``X`` and ``B``/``E`` pairs together) nest: no two overlap unless one
  contains the other;
* flow events ``s`` / ``t`` / ``f`` pair by (cat, name, id): exactly one ``s`` and one ``f``,
  the ``f`` (and every ``t``) not before the ``s``; each binds to a slice (``s``, ``t`` and an
  ``f`` with ``bp: "e"`` lie inside a slice of their track; an ``f`` without it needs a slice
  starting at or after it);
* ``C`` counters have a non-empty ``args`` object of numbers;
* instants have a scope of ``g``, ``p`` or ``t``; thread-scoped ones are not on tid 0 (Perfetto
  drops those);
* every (pid, tid) used has an ``M`` ``thread_name``.

Times are compared in integer nanoseconds (``round(us * 1000)``).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from typing import Any


def _ns(v: float | int) -> int:
    return round(v * 1000)


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def check_chrome(doc: Any, *, max_problems: int = 50) -> list[str]:
    """Problems with the Chrome trace ``doc`` (parsed JSON); ``[]`` when it follows the
    rules."""
    problems: list[str] = []

    def bad(msg: str) -> None:
        if len(problems) < max_problems:
            problems.append(msg)

    events = doc.get("traceEvents") if isinstance(doc, dict) else doc
    if not isinstance(events, list):
        return ["no traceEvents list"]

    slices: dict[tuple[Any, Any], list[tuple[int, int, int, str]]] = defaultdict(list)
    begins: dict[tuple[Any, Any], list[tuple[int, str, int]]] = defaultdict(list)
    flows: dict[tuple[Any, Any, Any], dict[str, list[tuple[int, Any, int, bool]]]] = {}
    named: set[tuple[Any, Any]] = set()
    used: set[tuple[Any, Any]] = set()

    for i, ev in enumerate(events):
        if not isinstance(ev, dict) or not isinstance(ev.get("ph"), str):
            bad(f"event {i}: not an object with a 'ph'")
            continue
        ph = ev["ph"]
        if ph == "M":
            if ev.get("name") == "thread_name":
                if not isinstance(ev.get("args", {}).get("name"), str):
                    bad(f"event {i}: thread_name without args.name")
                named.add((ev.get("pid"), ev.get("tid")))
            continue
        if not (_num(ev.get("pid")) and _num(ev.get("tid")) and _num(ev.get("ts"))):
            bad(f"event {i} ({ph}): needs numeric pid, tid and ts")
            continue
        key = (ev["pid"], ev["tid"])
        ts = _ns(ev["ts"])
        if ph == "X":
            dur = ev.get("dur")
            if not _num(dur) or dur < 0:
                bad(f"event {i}: X without a dur >= 0 ({dur!r})")
                continue
            slices[key].append((ts, ts + _ns(dur), i, str(ev.get("name"))))
        elif ph == "B":
            begins[key].append((ts, str(ev.get("name")), i))
        elif ph == "E":
            stack = begins[key]
            if not stack:
                bad(f"event {i}: E on {key} with no open B")
                continue
            bts, bname, bi = stack.pop()
            if "name" in ev and ev["name"] != bname:
                bad(f"event {i}: E {ev['name']!r} closes B {bname!r} (event {bi})")
            if ts < bts:
                bad(f"event {i}: E before its B (event {bi})")
            slices[key].append((bts, ts, bi, bname))
        elif ph in ("s", "t", "f"):
            if "id" not in ev:
                bad(f"event {i}: flow {ph} without an id")
                continue
            fk = (ev.get("cat"), ev.get("name"), ev["id"])
            flows.setdefault(fk, {}).setdefault(ph, []).append(
                (ts, key, i, ev.get("bp") == "e"))
        elif ph == "C":
            args = ev.get("args")
            if not isinstance(args, dict) or not args or not all(
                _num(v) for v in args.values()
            ):
                bad(f"event {i}: counter {ev.get('name')!r} needs numeric args")
        elif ph in ("i", "I"):
            scope = ev.get("s", "t")
            if scope not in ("g", "p", "t"):
                bad(f"event {i}: instant scope {scope!r}")
            if scope == "t" and ev["tid"] == 0:
                bad(f"event {i}: thread-scoped instant on tid 0")
        used.add(key)

    for key, stack in begins.items():
        for _, name, bi in stack:
            bad(f"event {bi}: B {name!r} on {key} never ended")

    # slices nest per track: sort by start, longer first; keep a stack of open ends. The
    # outermost slices (disjoint, in order) are kept for the flow binding checks.
    outer: dict[tuple[Any, Any], tuple[list[int], list[int]]] = {}
    last_start: dict[tuple[Any, Any], int] = {}
    for key, items in slices.items():
        items.sort(key=lambda s: (s[0], -(s[1] - s[0]), s[2]))
        stack: list[tuple[int, int, int, str]] = []
        starts: list[int] = []
        ends: list[int] = []
        for s in items:
            while stack and stack[-1][1] <= s[0]:
                stack.pop()
            if stack and s[1] > stack[-1][1]:
                top = stack[-1]
                bad(f"track {key}: slice {s[3]!r} (event {s[2]}) [{s[0]}, {s[1]}] overlaps "
                    f"{top[3]!r} (event {top[2]}) [{top[0]}, {top[1]}] without nesting")
                continue
            if not stack:
                starts.append(s[0])
                ends.append(s[1])
            stack.append(s)
        outer[key] = (starts, ends)
        last_start[key] = items[-1][0] if items else -1

    def inside(key: tuple[Any, Any], ts: int) -> bool:
        starts, ends = outer.get(key, ([], []))
        j = bisect_right(starts, ts) - 1
        return j >= 0 and ts <= ends[j]

    def starts_after(key: tuple[Any, Any], ts: int) -> bool:
        return last_start.get(key, -1) >= ts

    for fk, parts in flows.items():
        s, t, f = parts.get("s", []), parts.get("t", []), parts.get("f", [])
        if len(s) != 1 or len(f) != 1:
            bad(f"flow {fk}: {len(s)} start(s) and {len(f)} end(s), want one of each")
            continue
        s_ts, s_key, s_i, _ = s[0]
        f_ts, f_key, f_i, f_enclosing = f[0]
        if f_ts < s_ts:
            bad(f"flow {fk}: ends (event {f_i}) before it starts (event {s_i})")
        for t_ts, _, t_i, _ in t:
            if not s_ts <= t_ts <= f_ts:
                bad(f"flow {fk}: step (event {t_i}) outside its start and end")
        if not inside(s_key, s_ts):
            bad(f"flow {fk}: start (event {s_i}) is in no slice of {s_key}")
        if f_enclosing and not inside(f_key, f_ts):
            bad(f"flow {fk}: end (event {f_i}, bp e) is in no slice of {f_key}")
        if not f_enclosing and not starts_after(f_key, f_ts):
            bad(f"flow {fk}: end (event {f_i}) has no slice after it on {f_key}")

    for key in sorted(used - named, key=repr):
        bad(f"track {key}: no thread_name metadata")
    return problems
