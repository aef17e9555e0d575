"""Machine-readable reports of explorations: JUnit XML (``--junit``) and JSON (``--json``).

One :class:`CellReport` per explored cell — one (scenario, driver, DDI version, strategy) of a
campaign matrix, or the single cell of an ``explore`` — becomes one JUnit ``<testcase>``; a cell
with failures gets one ``<failure>`` naming the first failure's rule and step, with every
failure's rule, step, thread, message, saved file and replay command in its text, so a CI page
shows what broke and how to rerun it. Both files are written atomically (a temporary file beside
the target, then ``os.replace``): a CI job reading a half-written report is never possible.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

import scenarios
from kmd import D3DDDICB_LOCKFLAGS
from umd.ddi import D3DDDI_LOCKASYNCFLAGS, D3DDDI_LOCKFLAGS, D3DDDI_UNLOCKASYNCFLAGS
from vthreads import Replay, RunResult

from ._checker_state import (
    FEW,
    DeviceState,
    as_int,
    few,
    flag_names,
    hr_of,
)
from ._explore import ExploreResult, Finding, Found, findings_to_end, replay_command
from ._files import write_atomically
from ._runner import RunSpec, run_scenario
from ._tracebacks import failure_traceback
from ._watchdog import HANG_QUICK_S, HANG_REPLAY_S, stopped_short

REPORT_FORMAT = "wddmemu-report"
REPORT_VERSION = 1


@dataclass(frozen=True)
class CellReport:
    """What one cell's exploration found, with the saved file of each failure."""

    spec: RunSpec  # the cell's base spec (strategy and schedules are in ``strategy``/``schedules``)
    strategy: str
    schedules: int
    result: ExploreResult
    paths: tuple[Path, ...]  # one per failure, same order
    seconds: float = 0.0  # wall time, for the report's reader only
    def coverage(self) -> str | None:
        """What a systematic cell (dfs, dpor) covered, in one line (its search's claim): a
        clean cell that stopped at its schedule limit has not proved anything, and a report
        must say so. None for a sampled strategy, whose runs are its whole claim."""
        return None if self.result.exhausted is None else self.result.claim

    @property
    def params(self) -> dict[str, Any]:
        """The cell's scenario parameters (those it was given, sorted) as the scenario's types
        make them: ``frames = 2`` is 2 and ``racy = true`` is true in the JSON, not the text the
        command line passes on (h9). Text if the scenario no longer takes them."""
        given = self.spec.params
        try:
            typed = scenarios.get(self.spec.scenario).resolve(given)
        except (KeyError, ValueError):
            typed = given
        return {k: typed[k] for k in sorted(given)}

    @property
    def driver_label(self) -> str:
        """The driver and its options: ``mydrv(locked=true)`` (a campaign may hold one driver
        with several option sets, each its own cell)."""
        return driver_label(self.spec)

    @property
    def name(self) -> str:
        return cell_name(self.spec, self.strategy)

    def failures(self) -> list[dict[str, Any]]:
        return [_failure_entry(fd, p) for fd, p in zip(self.result.failures, self.paths,
                                                         strict=True)]


def driver_label(spec: RunSpec) -> str:
    """``mydrv(locked=true)``: a cell's driver and its options, sorted."""
    opts = _pairs(spec.driver_options)
    return f"{spec.driver}({opts})" if opts else spec.driver


def cell_name(spec: RunSpec, strategy: str) -> str:
    """``scenario[driver(opts),ddi=0xb,strategy]``: a cell's name in every report."""
    ddi = "default" if spec.ddi_version is None else hex(spec.ddi_version)
    return f"{spec.scenario}[{driver_label(spec)},ddi={ddi},{strategy}]"


#: the error of a cell that Ctrl-C stopped before it ended, in both reports
UNFINISHED = "interrupted (Ctrl-C) before this cell ended: its failures so far are saved, " \
             "not reported"


def _failure_entry(fd: Found, path: Path) -> dict[str, Any]:
    f = fd.finding
    return {"rule": f.rule, "step": f.step, "thread": f.thread, "message": f.message,
            "schedule": fd.index, "file": str(path),
            # the --load modules too: a file that lists them replays only with them allowed
            "replay": replay_command(fd.spec, path)}


def junit_xml(cells: Sequence[CellReport], suite: str = "wddmemu",
              unfinished: Sequence[tuple[RunSpec, str]] = ()) -> bytes:
    """A JUnit XML document: one ``<testsuite>``, one ``<testcase>`` per cell; a cell Ctrl-C
    stopped (``unfinished``: its base spec and strategy) is a testcase with an ``<error>``.
    Well-formed for any text: each character XML forbids is escaped (:func:`xml_safe`)."""
    failed = sum(1 for c in cells if c.result.failures)
    tests, errors, time = str(len(cells) + len(unfinished)), str(len(unfinished)), \
        f"{sum(c.seconds for c in cells):.3f}"
    root = ET.Element("testsuites", name=suite, tests=tests, failures=str(failed),
                      errors=errors, time=time)
    ts = ET.SubElement(root, "testsuite", name=suite, tests=tests, failures=str(failed),
                       errors=errors, skipped="0", time=time)
    for c in cells:
        tc = ET.SubElement(ts, "testcase", classname=f"{suite}.{c.spec.scenario}", name=c.name,
                           time=f"{c.seconds:.3f}")
        props = ET.SubElement(tc, "properties")
        for k, v in (("schedules", c.schedules), ("runs", c.result.runs),
                     ("driver", c.spec.driver),
                     ("driver_options", _pairs(c.spec.driver_options) or None),
                     ("params", _pairs(c.spec.params) or None),
                     ("strategy", c.strategy), ("coverage", c.coverage())):
            if v is not None:
                ET.SubElement(props, "property", name=k, value=str(v))
        entries = c.failures()
        if entries:
            first = entries[0]
            el = ET.SubElement(tc, "failure", type=first["rule"],
                               message=f"{first['rule']} at step {first['step']}: "
                                       f"{first['message']}")
            el.text = "\n".join(
                f"{e['rule']} at step {e['step']}"
                + (f" on {e['thread']}" if e["thread"] else "") + f" (schedule {e['schedule']}): "
                f"{e['message']}\nsaved: {e['file']}\nreplay: {e['replay']}" for e in entries)
    for spec, strategy in unfinished:
        tc = ET.SubElement(ts, "testcase", classname=f"{suite}.{spec.scenario}",
                           name=cell_name(spec, strategy), time="0.000")
        ET.SubElement(tc, "error", type="interrupted", message=UNFINISHED)
    _xml_safe_tree(root)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


#: what XML 1.0 forbids in a document, even as ``&#N;``: the C0 controls but tab, newline and
#: carriage return, the lone surrogates (a str from a file name or argv, PEP 383) and U+FFFE/FFFF
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: str) -> str:
    """``text`` with each character XML 1.0 forbids replaced by its visible escape, as
    :func:`wddmemu._files.printable` shows it (``\\x01``, ``\\ud800``, ``\\uffff``), every
    other character unchanged: a driver's ``ValueError("bad byte \\x01")`` made the JUnit
    report not well-formed (``ElementTree`` writes controls raw, surrogates as a forbidden
    ``&#55296;``), and CI could not read it (sweep H D3)."""
    return _NOT_XML.sub(lambda m: repr(m.group())[1:-1], text)


def _xml_safe_tree(root: ET.Element) -> None:
    """Make every text, tail and attribute value under ``root`` :func:`xml_safe`: whatever a
    report quotes — a message, a thread, a path, a scenario, driver or option name — the
    document stays well-formed (sweep H D3)."""
    for el in root.iter():
        el.text = None if el.text is None else xml_safe(el.text)
        el.tail = None if el.tail is None else xml_safe(el.tail)
        el.attrib.update({k: xml_safe(v) for k, v in el.attrib.items()})


def _pairs(values: Mapping[str, Any]) -> str:
    """``k=v,k2=v2``, keys sorted ("" for none): how the reports show a cell's driver options
    (in its name too) and its scenario parameters."""
    return ",".join(f"{k}={values[k]}" for k in sorted(values))


def json_report(cells: Sequence[CellReport],
                unfinished: Sequence[tuple[RunSpec, str]] = ()) -> bytes:
    """The JSON report (documented in docs/cluster.md); with ``unfinished`` cells (Ctrl-C)
    it is not ok, says ``interrupted`` and names them."""
    doc = {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "ok": not unfinished and not any(c.result.failures for c in cells),
        "interrupted": bool(unfinished),
        "unfinished": [cell_name(spec, strategy) for spec, strategy in unfinished],
        "cells": [{
            "name": c.name, "scenario": c.spec.scenario, "driver": c.spec.driver,
            "driver_options": {k: c.spec.driver_options[k] for k in sorted(c.spec.driver_options)},
            "params": c.params,
            "ddi_version": c.spec.ddi_version, "strategy": c.strategy,
            "schedules": c.schedules, "runs": c.result.runs, "ok": not c.result.failures,
            "seconds": round(c.seconds, 3), "failures": c.failures(),
            "exhausted": c.result.exhausted, "coverage": c.coverage(),
            "bounded": None if c.result.exhausted is None else c.result.bounded,
        } for c in cells],
    }
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"


def write_reports(cells: Sequence[CellReport], *, junit: str | Path | None = None,
                  json_out: str | Path | None = None, suite: str = "wddmemu",
                  unfinished: Sequence[tuple[RunSpec, str]] = ()) -> None:
    """Write the JUnit and/or JSON report of ``cells`` (each atomically), ``unfinished`` the
    cells Ctrl-C stopped (reported as such: an interrupted run's report is never "ok").
    A report's missing directory is made, as the CLI's ``--junit``/``--json`` check allows
    (``check_output(..., make_parents=True)``): ``--junit out/campaign.xml`` in a fresh
    checkout."""
    if junit:
        write_atomically(junit, junit_xml(cells, suite, unfinished), make_parents=True)
    if json_out:
        write_atomically(json_out, json_report(cells, unfinished), make_parents=True)


# ---- explanations: what ``explore`` prints under a failure ----------------------------------
#
# A person reads these without the trace at hand, so the excerpt names things the way the
# checker's findings do (``vb0@dev0 inst 2``, ``Discard|RangeValid``, ``E_INVALIDARG``), shows
# both threads of a race at the steps they touched the cell, says when an event belongs to the
# teardown after the scenario body (a final-check finding is not "after" it), and prints each
# message once.

#: trace fields an excerpt never shows (the run's identity, repeated on every event)
_QUIET = frozenset({"step", "t", "thread", "event", "scenario", "seed", "strategy", "backend",
                    "device", "gated", "hr"})
_FLAG_WORDS = {("ddi.enter", "LockAsync"): D3DDDI_LOCKASYNCFLAGS,
               ("ddi.enter", "Lock"): D3DDDI_LOCKFLAGS,
               ("ddi.enter", "UnlockAsync"): D3DDDI_UNLOCKASYNCFLAGS}
#: fields that hold an allocation handle
_HANDLES = frozenset({"allocation", "new_allocation", "old", "new", "surf_allocation"})
#: the event the runner logs when the scenario body has returned and teardown begins
TEARDOWN = "scenario.teardown"


class Namer:
    """Names for the raw handles of a trace, rebuilt from its events exactly as the checker
    names them (``vb0@dev0``, ``vb0@dev0 inst 2 (0x40000013)``)."""

    def __init__(self) -> None:
        self._devices: dict[str, DeviceState] = {}

    def dev(self, name: str) -> DeviceState:
        d = self._devices.get(name)
        if d is None:
            d = self._devices[name] = DeviceState(name=name)
        return d

    def feed(self, e: dict[str, Any]) -> None:
        dev = self.dev(str(e.get("device", "?")))
        if e["event"] == "rt.resource.create":
            dev.add_resource(as_int(e.get("resource")), as_int(e.get("rt_resource")),
                             str(e.get("kind", "res")), as_int(e.get("pool")) == 2,
                             bool(e.get("dynamic")))
        elif e["event"] == "cb.exit" and hr_of(e) == 0:
            if e.get("cb") == "pfnAllocateCb":
                dev.last_allocated = [as_int(h) for h in e.get("allocations", ())]
            elif e.get("cb") == "pfnLockCb":
                old, new = as_int(e.get("allocation")), as_int(e.get("new_allocation"))
                if new != old and old in dev.owner:
                    dev.new_instance(dev.owner[old][0], new, "pfnLockCb(Discard)")

    def words(self, e: dict[str, Any]) -> str:
        """``LockAsync resource=vb0@dev0 flags=Discard|RangeValid`` — one event in words."""
        dev = self.dev(str(e.get("device", "?")))
        out = []
        for k, v in e.items():
            if k in _QUIET or v is None:
                continue
            if k == "resource" and isinstance(v, int) and not e["event"].startswith("kmd."):
                v = dev.resource(v)
            elif k in _HANDLES and isinstance(v, int):
                v = self.alloc(v)
            elif k == "allocations" and isinstance(v, list):
                v = few(v, lambda h: self.alloc(as_int(h)))  # the driver's list: bounded
            elif isinstance(v, list) and len(v) > FEW:
                v = few(v)
            elif k == "flags":
                v = self._flags(e, as_int(v))
            elif k == "cookie" and isinstance(v, int):
                v = f"{v:#x}"
            out.append(f"{k}={v}")
        return " ".join(out[:6])

    def alloc(self, h: int) -> str:
        """An allocation handle by name, whichever device made it (kernel events carry the
        kernel's device handle, not the runtime's name)."""
        for d in self._devices.values():
            if h in d.owner:
                return d.alloc(h)
        return f"allocation {h:#x}"

    @staticmethod
    def _flags(e: dict[str, Any], value: int) -> str:
        if e.get("cb") == "pfnLockCb" or e["event"].startswith("kmd.lock"):
            return flag_names(D3DDDICB_LOCKFLAGS, value)
        flags = _FLAG_WORDS.get((e["event"], str(e.get("ddi"))))
        return flag_names(flags, value) if flags is not None else f"{value:#x}"


def _sides(finding: Finding, events: Sequence[dict[str, Any]]) -> list[tuple[str, int]]:
    """(thread, up to which step) for each thread the excerpt shows: both sides of a RACE at the
    steps of their accesses; otherwise the finding's thread and the last other thread that
    entered the driver."""
    for e in events:
        if e["event"] == "violation" and e["step"] == finding.step and e.get("rule") == "RACE" \
                and isinstance(e.get("first"), dict) and isinstance(e.get("second"), dict):
            return [(str(e[s]["thread"]), int(e[s]["step"])) for s in ("second", "first")]
    entered = [e.get("thread") for e in events
               if e["event"] in ("ddi.enter", "cb.enter") and e["step"] <= finding.step]
    others = [t for t in dict.fromkeys(reversed(entered)) if t and t != finding.thread]
    if finding.thread:  # the finding's thread, and the last other one inside the driver
        return [(finding.thread, finding.step)] + [(t, finding.step) for t in others[:1]]
    return [(t, finding.step) for t in others[:2]]  # a deadlock: the last two in the driver


def _teardown(events: Sequence[dict[str, Any]]) -> set[int]:
    """The events (by ``id``) of the teardown after the scenario body returned: the closing
    thread's events after the marker, and a worker's while it runs a command queued after
    it. A worker still draining the body's commands is not tearing down, whatever the step."""
    mark = next((i for i, e in enumerate(events) if e["event"] == TEARDOWN), None)
    if mark is None:
        return set()
    closer = events[mark].get("thread")
    body_seq = max((as_int(e.get("seq")) for e in events[:mark]
                    if e["event"] == "rt.queue.put"), default=0)
    running: dict[str, int] = {}
    out = set()
    for e in events[mark + 1:]:
        th = str(e.get("thread"))
        if e["event"] == "rt.queue.get":
            running[th] = as_int(e.get("seq"))
        if th == closer or running.get(th, 0) > body_seq:
            out.add(id(e))
    return out


def excerpt(finding: Finding, events: Sequence[dict[str, Any]], per_thread: int = 6
            ) -> list[str]:
    """The last events of each thread involved in ``finding``, named and decoded. Events of
    the teardown (after the scenario body returned) are labelled so, never "before the
    break": a finding of the final checks (DATA, a lock left at DestroyDevice) comes after the
    teardown, not because of it."""
    namer = Namer()
    for e in events:  # names first: a kernel event may come before the callback naming it
        namer.feed(e)
    teardown = _teardown(events)
    final = any(e["event"] == "violation" and e["step"] == finding.step
                and e.get("rule") == finding.rule and id(e) in teardown for e in events)
    shown: dict[int, str] = {}
    for e in events:
        if e["event"] == "violation":  # its message is printed once, above or in the list
            mine = e["step"] == finding.step and e.get("rule") == finding.rule
            shown[id(e)] = f"rule={e.get('rule')}" + (" (the finding above)" if mine else "")
        elif e["event"] in ("ddi.enter", "ddi.exit", "cb.enter", "cb.exit", "violation") or \
                e["event"].startswith(("rt.", "kmd.lock", "kmd.rename")):
            shown[id(e)] = namer.words(e)
    lines = []
    for thread, upto in _sides(finding, events):
        last = [e for e in events if e.get("thread") == thread and e["step"] <= upto
                and id(e) in shown][-per_thread:]
        if not last:
            continue
        lines.append(f"{thread}, last events " + ("of the run (the finding comes from the "
                     "final checks, after the teardown)" if final else f"up to step {upto}")
                     + ":")
        for e in last:
            tag = " (teardown)" if id(e) in teardown else ""
            lines.append(f"  step {e['step']:>5} {e['event']:<12}{tag} {shown[id(e)]}")
    return lines


def _on(thread: str | None) -> str:
    return "" if thread is None else f" on {thread}"


def _replayed(fd: Found) -> tuple[RunResult, bytes]:
    """``fd``'s schedule replayed with a trace, for its explanation. A hang replays into the
    same stuck code: a short watchdog (:data:`HANG_QUICK_S`) brings back its events up to
    there, and nothing lies past it to replay to the end. A replay the limit stopped before
    the finding's step (a slow machine, a long schedule) is run again under
    :data:`HANG_REPLAY_S`, which ``replay`` uses too."""
    limits: tuple[float | None, ...] = (
        (HANG_QUICK_S, HANG_REPLAY_S) if fd.finding.rule == "hang" else (None,))
    for limit in limits:
        buf = io.BytesIO()
        run = run_scenario(fd.spec, trace=buf, strategy=Replay(fd.spec.decisions or ()),
                           stop_on_violation=True, timeout=limit).run
        if not stopped_short(run, fd.finding.step):
            break
    return run, buf.getvalue()


def explain_lines(fd: Found) -> list[str]:
    """What ``explore`` prints for a failure: the finding (once), the minimisation, for an
    ``exception`` the traceback from the user's first frame on (``_tracebacks``), the excerpt
    of a traced replay, and every other finding of the same schedule, earliest first."""
    f = fd.finding
    # a finding of no thread (a hang before any thread ran) says no "on None"
    lines = [f"{f.rule} at step {f.step}{_on(f.thread)}: {f.message}"]
    if fd.minimised:
        m = fd.minimised
        lines.append(f"minimised: {m['deviations_before']} → {m['deviations_after']} "
                     f"deviations from fifo in {m['replays']} replays"
                     + (f" ({m['cached']} answered from the cache)" if m.get("cached") else "")
                     + (", stopped by its budget" if m.get("budget_hit") else ""))
    run, trace = _replayed(fd)
    if f.rule == "exception":  # where the user's code raised: the file and the line
        lines += failure_traceback(run.failure)
    lines += excerpt(f, [orjson.loads(x) for x in trace.splitlines()])
    if f.rule == "hang":
        return lines
    every = findings_to_end(fd)
    if len(every) > 1:  # what the first finding masked, replayed to the end (issue 11)
        lines.append(f"this schedule breaks {len(every)} things, earliest first:")
        for g in every:
            same = (g.rule, g.message) == (f.rule, f.message)
            lines.append(f"  step {g.step:>5} {g.rule}{_on(g.thread)}: "
                         + ("the finding above" if same else g.message))
    return lines
