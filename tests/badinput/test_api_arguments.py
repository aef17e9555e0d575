"""Public calls given a wrong argument refuse it in one line, as their neighbours do (sweep F,
D10): before, ``minimise(None)``, ``findings_to_end(None)`` and ``group_failures([None])`` were
AttributeErrors, ``explore(progress=5)`` a TypeError at the first schedule, ``export_chrome``'s
``cpu_ns=8.5`` wrote fractional timestamps, and ``minimise(fd, max_replays=-1)`` or
``seconds=nan`` ran as if nothing were wrong. The vthreads calls of the same sweep are not
here (the engine's own tests)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

import wddmemu
from tests.support.traces import mimic_trace
from wddmemu import ExploreOptions, Finding, Found, RunSpec, SpecError, rules, trace
from wddmemu._cluster import explore_on_cluster

SPEC = RunSpec("lock-flags")
FOUND = Found(0, SPEC.with_decisions((0,)), Finding("RACE", 3, "m", "app"), SPEC)


@pytest.mark.parametrize("call, says", [
    (lambda: wddmemu.minimise(None), "minimise takes a Found (ExploreResult.failures), not "
                                     "NoneType"),
    (lambda: wddmemu.minimise(FOUND, max_replays=-1),
     "max_replays takes 0..9,223,372,036,854,775,807, not -1"),  # ExploreOptions' words
    (lambda: wddmemu.minimise(FOUND, max_replays=True), "max_replays must be an int, not bool"),
    (lambda: wddmemu.minimise(FOUND, seconds=math.nan), "seconds must be a number >= 0, or None"),
    (lambda: wddmemu.minimise(FOUND, seconds=-1), "seconds must be a number >= 0, or None"),
    (lambda: wddmemu.minimise(FOUND, progress=5), "progress is a function or None, not int"),
    (lambda: wddmemu.findings_to_end(None), "findings_to_end takes a Found"),
    (lambda: wddmemu.group_failures(None), "group_failures takes the failures "
                                           "(ExploreResult.failures), not NoneType"),
    (lambda: wddmemu.group_failures("RACE"), "group_failures takes the failures"),
    (lambda: wddmemu.group_failures([FOUND, None]), "group_failures takes a Found"),
    (lambda: wddmemu.explore(SPEC, ExploreOptions(schedules=1), progress=5),
     "progress is a function or None, not int"),
    (lambda: wddmemu.explore(SPEC, ExploreOptions(schedules=1), on_found="print"),
     "on_found is a function or None, not str"),
    (lambda: explore_on_cluster(None, SPEC, None), "explore_on_cluster takes "
                                                   "ExploreOptions(...) as its options"),
    (lambda: wddmemu.resolve_driver("reference", 0xB, 5),
     "driver options are key=value pairs (a dict), not int"),
    (lambda: wddmemu.resolve_driver(":make", None), "'' is not a module name: give "
                                                    "MODULE:ATTR"),
    (lambda: wddmemu.allow_module(None), "allow_module takes a module name like "
                                         "mypkg.drivers, not NoneType"),
    (lambda: wddmemu.allow_module(" mod"), "allow_module takes a module name like "
                                           "mypkg.drivers, not ' mod'"),
])
def test_harness_calls_refuse_a_wrong_argument_with_a_spec_error(call: Any, says: str) -> None:
    with pytest.raises(SpecError) as e:
        call()
    assert says in str(e.value) and "\n" not in str(e.value)


def test_a_rule_id_that_is_not_a_string_is_the_documented_key_error() -> None:
    with pytest.raises(KeyError, match="a rule id is a string like LCB-5, not NoneType"):
        rules.get_rule(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("kwargs, says", [
    ({"cpu_ns": None}, "cpu_ns takes integer ns 8..1,000,000,000, not None"),
    ({"cpu_ns": 8.5}, "cpu_ns takes integer ns 8..1,000,000,000, not 8.5"),  # whole ns
    ({"cpu_ns": True}, "cpu_ns takes integer ns 8..1,000,000,000, not bool"),
    ({"time": None}, "unknown time mode NoneType: use virtual or steps"),
])
def test_export_chrome_takes_integer_ns_and_writes_nothing_else(tmp_path: Path,
                                                                kwargs: dict[str, Any],
                                                                says: str) -> None:
    src = mimic_trace(tmp_path / "t.jsonl", frames=1)
    out = tmp_path / "o.json"
    with pytest.raises(trace.TraceFormatError) as e:
        trace.export_chrome(src, out, **kwargs)
    assert str(e.value) == says and e.value.path == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.jsonl"]


def test_trace_helpers_refuse_what_is_no_event_or_sink() -> None:
    with pytest.raises(trace.TraceFormatError, match=r"event_fields takes an event \(a dict"):
        trace.event_fields(None)  # type: ignore[arg-type]
    with pytest.raises(trace.TraceFormatError, match="TimelineBuilder feeds a Sink"):
        trace.TimelineBuilder(None)  # type: ignore[arg-type]
    assert trace.event_fields({"step": 1, "t": 0, "event": "x", "k": 2}) == {"k": 2}
