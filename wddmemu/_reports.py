"""Machine-readable reports of explorations: JUnit XML (``--junit``) and JSON (``--json``).

One :class:`CellReport` per explored cell — one (scenario, driver, DDI version, strategy) of a
campaign matrix, or the single cell of an ``explore`` — becomes one JUnit ``<testcase>``; a cell
with failures gets one ``<failure>`` naming the first failure's rule and step, with every
failure's rule, step, thread, message, saved file and replay command in its text, so a CI page
shows what broke and how to rerun it. Both files are written atomically (a temporary file beside
the target, then ``os.replace``): a CI job reading a half-written report is never possible.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ._explore import ExploreResult, Found
from ._files import write_atomically
from ._runner import RunSpec

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

    @property
    def name(self) -> str:
        ddi = "default" if self.spec.ddi_version is None else hex(self.spec.ddi_version)
        return f"{self.spec.scenario}[{self.spec.driver},ddi={ddi},{self.strategy}]"

    def failures(self) -> list[dict[str, Any]]:
        return [_failure_entry(fd, p) for fd, p in zip(self.result.failures, self.paths,
                                                         strict=True)]


def _failure_entry(fd: Found, path: Path) -> dict[str, Any]:
    f = fd.finding
    return {"rule": f.rule, "step": f.step, "thread": f.thread, "message": f.message,
            "schedule": fd.index, "file": str(path), "replay": f"wddmemu replay {path}"}


def junit_xml(cells: Sequence[CellReport], suite: str = "wddmemu") -> bytes:
    """A JUnit XML document: one ``<testsuite>``, one ``<testcase>`` per cell."""
    failed = sum(1 for c in cells if c.result.failures)
    root = ET.Element("testsuites", name=suite, tests=str(len(cells)), failures=str(failed),
                      errors="0", time=f"{sum(c.seconds for c in cells):.3f}")
    ts = ET.SubElement(root, "testsuite", name=suite, tests=str(len(cells)),
                       failures=str(failed), errors="0", skipped="0",
                       time=f"{sum(c.seconds for c in cells):.3f}")
    for c in cells:
        tc = ET.SubElement(ts, "testcase", classname=f"{suite}.{c.spec.scenario}", name=c.name,
                           time=f"{c.seconds:.3f}")
        props = ET.SubElement(tc, "properties")
        for k, v in (("schedules", c.schedules), ("runs", c.result.runs),
                     ("driver", c.spec.driver), ("strategy", c.strategy)):
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
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def json_report(cells: Sequence[CellReport]) -> bytes:
    """The JSON report (documented in docs/cluster.md)."""
    doc = {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "ok": not any(c.result.failures for c in cells),
        "cells": [{
            "name": c.name, "scenario": c.spec.scenario, "driver": c.spec.driver,
            "ddi_version": c.spec.ddi_version, "strategy": c.strategy,
            "schedules": c.schedules, "runs": c.result.runs, "ok": not c.result.failures,
            "seconds": round(c.seconds, 3), "failures": c.failures(),
        } for c in cells],
    }
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"


def write_reports(cells: Sequence[CellReport], *, junit: str | Path | None = None,
                  json_out: str | Path | None = None, suite: str = "wddmemu") -> None:
    """Write the JUnit and/or JSON report of ``cells`` (each atomically)."""
    if junit:
        write_atomically(junit, junit_xml(cells, suite))
    if json_out:
        write_atomically(json_out, json_report(cells))
