"""Malformed-but-JSON trace lines (a fuzzer's finds, /tmp/h4/repro): every ``trace`` command
exits 2 with one line naming the file and the line, or — when it does not use the bad field —
exits 0 with the value written as text; never exit 3 (our own bug) or a traceback.

Fields are checked where they are used (``_trace_read.get_str`` …), values copied into an output
go through ``_trace_read.dumps`` (docs/trace.md, "Malformed fields")."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.traces import mimic_trace
from wddmemu import _cli
from wddmemu._trace_cli import trace

HAS_MPL = True
try:
    import matplotlib  # noqa: F401
except ImportError:  # pragma: no cover
    HAS_MPL = False

#: the commands, by the name the cases use
COMMANDS = {
    "summary": ["summary"],
    "summary-json": ["summary", "--json"],
    "export": ["export", "--chrome", "{out}.json"],
    "export-steps": ["export", "--chrome", "{out}.json", "--time", "steps", "--cpu-ns", "16"],
    "export-stdout": ["export", "--chrome", "-"],
    "plot": ["plot", "--png", "{out}.png"],
}
SUMMARY = {"summary", "summary-json"}
TIMELINE = {"export", "export-steps", "export-stdout", "plot"}
ALL = SUMMARY | TIMELINE

HEAD = '"step":0,"t":0'
RUN_START = '{"step":0,"t":0,"thread":null,"event":"run.start","scenario":"s","seed":0}'
DEEP = "[" * 1000 + "]" * 1000
U64 = 2**64 - 1


@pytest.fixture(autouse=True)
def _trace_attached(monkeypatch: pytest.MonkeyPatch) -> None:
    if "trace" not in _cli.cli.commands:  # what runtime/_cli.py's cli.add_command(trace) gives
        monkeypatch.setitem(_cli.cli.commands, "trace", trace)


def _run(cmd: str, path: Path, tmp_path: Path,
         capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    args = ["trace", COMMANDS[cmd][0], str(path),
            *[a.format(out=tmp_path / "o") for a in COMMANDS[cmd][1:]]]
    capsys.readouterr()
    code = _cli.main(args)
    out, err = capsys.readouterr()
    return code, out, err


# (id, lines, line at fault, message, commands that exit 0 because they do not use the field)
CASES = [
    ("deep-reason", [f'{{{HEAD},"thread":"app","event":"rt.sync","reason":{DEEP}}}'], 1,
     "field 'reason' is a list, not a string", set()),
    ("big-step", ['{"step":0,"t":0,"thread":null,"event":"run.start"}',
                  f'{{"step":{U64},"t":0,"thread":"app","event":"finish"}}'], 2,
     f"'step' is {U64}, not an int in 0..2**63-1", set()),
    ("step-2**63", [f'{{"step":{2**63},"t":0,"thread":"app","event":"sched"}}'], 1,
     f"'step' is {2**63}, not an int in 0..2**63-1", set()),
    ("big-t", [f'{{"step":0,"t":{U64},"thread":null,"event":"run.start"}}'], 1,
     f"'t' is {U64}, not an int in 0..2**63-1", set()),
    ("negative-step", ['{"step":-1,"t":0,"thread":"app","event":"rt.sync"}'], 1,
     "'step' is -1, not an int in 0..2**63-1", set()),
    ("negative-t", ['{"step":1,"t":-5,"thread":"app","event":"rt.sync"}'], 1,
     "'t' is -5, not an int in 0..2**63-1", set()),
    ("sum-overflow", [f'{{{HEAD},"thread":"app","event":"kmd.render","fence":1,"commands":{U64}}}',
                      f'{{{HEAD},"thread":"app","event":"kmd.render","fence":2,"commands":{U64}}}'],
     1, f"field 'commands' is {U64}, not an int in 0..2**63-1", TIMELINE),
    ("run-end-violations-int", [f'{{{HEAD},"thread":null,"event":"run.end","violations":5}}'],
     1, "field 'violations' is 5, not a list", TIMELINE),
    ("scenario-list", [f'{{{HEAD},"thread":null,"event":"run.start","scenario":[{{}}]}}'], 1,
     "field 'scenario' is a list, not a string", set()),
    ("backend-object", [f'{{{HEAD},"thread":"x","event":"x","backend":{{"a":"S_OK"}}}}'], 1,
     "field 'backend' is an object, not a string", set()),
    ("strategy-object", [f'{{{HEAD},"thread":"x","event":"x","strategy":{{"": []}}}}'], 1,
     "field 'strategy' is an object, not a string", set()),
    ("seed-string", [f'{{{HEAD},"thread":"x","event":"x","seed":"S_OK"}}'], 1,
     "field 'seed' is a string, not an int", set()),
    ("queue-object", [RUN_START, '{"step":1,"t":0,"thread":"x","event":"rt.queue.put",'
                      '"queue":{"":{}},"ddi":"Lock","seq":1,"depth":1}'], 2,
     "field 'queue' is an object, not a string", set()),
    ("seq-list", [RUN_START, '{"step":1,"t":0,"thread":"app","event":"rt.queue.put",'
                  '"queue":"q","ddi":"Lock","seq":[],"depth":1}'], 2,
     "field 'seq' is a list, not a string or a number", SUMMARY),
    ("ddi-list", [RUN_START, '{"step":1,"t":0,"thread":"x","event":"ddi.enter",'
                  '"ddi":[{"":null},0]}'], 2, "field 'ddi' is a list, not a string", set()),
    ("device-deep", [RUN_START, f'{{"step":1,"t":0,"thread":"app","event":"ddi.exit",'
                     f'"ddi":"OpenAdapter","device":{DEEP}}}'], 2,
     "field 'device' is a list, not a string or a number", TIMELINE),
    ("dma-draws-object", [RUN_START, '{"step":1,"t":0,"thread":"w","event":"kmd.dma.end",'
                          '"fence":6,"draws":{"a":null}}'], 2,
     "field 'draws' is an object, not a list", TIMELINE),
    ("violation-message-object", [RUN_START, '{"step":1,"t":0,"thread":"g","event":"violation",'
                                  '"rule":"DATA","message":{"y":1}}'], 2,
     "field 'message' is an object, not a string", TIMELINE),
    ("rule-object", [RUN_START, '{"step":1,"t":0,"thread":"g","event":"violation",'
                     '"rule":{"y":1}}'], 2, "field 'rule' is an object, not a string", set()),
    ("failure-kind-list", [RUN_START, '{"step":1,"t":0,"thread":null,"event":"run.failure",'
                           '"kind":[1],"message":"m"}'], 2,
     "field 'kind' is a list, not a string", set()),
    ("end-failure-string", [RUN_START, '{"step":1,"t":0,"thread":null,"event":"run.end",'
                            '"ok":false,"failure":"deadlock"}'], 2,
     "field 'failure' is a string, not an object (kind, message, step) or null", TIMELINE),
    ("end-failure-kind-object", [RUN_START, '{"step":1,"t":0,"thread":null,"event":"run.end",'
                                 '"ok":false,"failure":{"kind":{},"message":"m","step":1}}'],
     2, "field 'failure.kind' is an object, not a string", TIMELINE),
    ("end-failure-step-huge", [RUN_START, '{"step":1,"t":0,"thread":null,"event":"run.end",'
                               f'"ok":false,"failure":{{"kind":"k","step":{U64}}}}}'],
     2, f"field 'failure.step' is {U64}, not an int in 0..2**63-1", TIMELINE),
    ("fence-list", [RUN_START, '{"step":1,"t":0,"thread":"app","event":"kmd.render",'
                    '"fence":[1]}'], 2, "field 'fence' is a list, not an int", set()),
    ("fence-float", [RUN_START, '{"step":1,"t":0,"thread":"gpu","event":"kmd.dma.start",'
                     '"fence":1.5}'], 2, "field 'fence' is a float, not an int", set()),
    ("depth-string", [RUN_START, '{"step":1,"t":0,"thread":"app","event":"queue.put",'
                      '"queue":"q","depth":"1"}'], 2, "field 'depth' is a string, not an int",
     set()),
    ("tid-huge", [RUN_START, f'{{"step":1,"t":0,"thread":"app","event":"spawn",'
                  f'"child":"w","tid":{U64},"daemon":false}}'], 2,
     f"field 'tid' is {U64}, not an int in 0..", SUMMARY),
    ("daemon-string", [RUN_START, '{"step":1,"t":0,"thread":"app","event":"spawn",'
                       '"child":"w","tid":1,"daemon":"yes"}'], 2,
     "field 'daemon' is a string, not a bool", set()),
    ("child-list", [RUN_START, '{"step":1,"t":0,"thread":"app","event":"spawn",'
                    '"child":[],"tid":1}'], 2, "field 'child' is a list, not a string", set()),
    ("waits-list", [RUN_START, '{"step":1,"t":0,"thread":"app","event":"block","waits":[]}'],
     2, "field 'waits' is a list, not a string", SUMMARY),
    ("hr-name-list", [RUN_START, '{"step":1,"t":0,"thread":"app","event":"ddi.enter",'
                      '"ddi":"Lock"}', '{"step":2,"t":0,"thread":"app","event":"ddi.exit",'
                      '"ddi":"Lock","hr_name":[[1]]}'], 3,
     "field 'hr_name' is a list, not a string", TIMELINE),
    ("result-object", [RUN_START, '{"step":1,"t":0,"thread":"gpu","event":"kmd.dma.end",'
                       '"fence":1,"result":{}}'], 2, "field 'result' is an object, not a string",
     set()),
    ("thread-int", ['{"step":0,"t":0,"thread":5,"event":"x"}'], 1,
     "'thread' must be a string or null", set()),
    ("surrogate", [f'{{{HEAD},"thread":"app","event":"rt.sync","reason":"\\ud800"}}'], 1,
     "not a JSON line (no low surrogate in string)", set()),
]


@pytest.mark.parametrize("cmd", list(COMMANDS))
@pytest.mark.parametrize(("lines", "lineno", "message", "ok"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_malformed_field_is_one_line_exit_2(cmd: str, lines: list[str], lineno: int,
                                            message: str, ok: set[str], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    if cmd == "plot" and not HAS_MPL:
        pytest.skip("matplotlib is not installed")
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    code, out, err = _run(cmd, path, tmp_path, capsys)
    if cmd in ok:  # the command does not use the field: it is copied as text, if at all
        assert code == 0, err
        if cmd == "summary-json":
            orjson.loads(out)
        return
    assert code == 2, err
    (line,) = err.splitlines()
    assert line.startswith(f"wddmemu: error: {path}:{lineno}: {message}")
    assert not list(tmp_path.glob("o.*"))  # nothing half-written


def test_bom_is_not_a_json_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"step":0,"t":0,"thread":"app","event":"rt.sync"}\n')
    for cmd in ("summary", "export"):
        code, _, err = _run(cmd, path, tmp_path, capsys)
        assert code == 2
        (line,) = err.splitlines()
        assert f"{path}:1: not a JSON line (utf-8 byte order mark" in line


@pytest.mark.parametrize("cmd", list(COMMANDS))
def test_values_copied_into_outputs_are_bounded(cmd: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A field nobody reads, nested 1000 deep, and a step whose timeline time passes 64 bits:
    written as text, exit 0."""
    if cmd == "plot" and not HAS_MPL:
        pytest.skip("matplotlib is not installed")
    path = tmp_path / "deep.jsonl"
    big = 2**63 - 1
    path.write_text(
        f'{{"step":0,"t":0,"thread":null,"event":"run.start","depth":{DEEP}}}\n'
        f'{{"step":1,"t":0,"thread":"app","event":"ddi.enter","ddi":"Lock","x":{DEEP},'
        f'"y":{U64}}}\n'
        f'{{"step":{big},"t":{big},"thread":"app","event":"ddi.exit","ddi":"Lock"}}\n')
    code, out, err = _run(cmd, path, tmp_path, capsys)
    assert code == 0, err
    if cmd == "summary-json":
        assert "<list nested too deep>" in out
        orjson.loads(out)
    elif cmd.startswith("export"):
        doc = orjson.loads(out if cmd == "export-stdout" else (tmp_path / "o.json").read_bytes())
        (ddi,) = [e for e in doc["traceEvents"] if e.get("name") == "Lock"]
        assert ddi["args"]["y"] == U64 and "<list nested too deep>" in json.dumps(ddi["args"])
        if cmd == "export-steps":  # big × 1000 ns: past 64 bits, written as decimal text
            assert doc["otherData"]["last_ts_ns"] == str(doc["otherData"]["last_ts_ns"])


def test_trace_text_is_escaped_in_the_summary(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Control bytes and rich markup from the trace are shown, not obeyed."""
    path = tmp_path / "ansi.jsonl"
    path.write_text('{"step":0,"t":0,"thread":"app\\u001b]0;pwned\\u0007","event":"rt.sync",'
                    '"reason":"\\u001b[31mRED[/bold]"}\n'
                    '{"step":1,"t":0,"thread":null,"event":"run.failure","kind":"[/x]",'
                    '"message":"$\\\\frac{"}\n')
    code, out, err = _run("summary", path, tmp_path, capsys)
    assert code == 0, err
    assert "\x1b" not in out and "\\x1b[31mRED[/bold]" in out and "failure [/x]" in out


@pytest.mark.parametrize("value", ["9223372036854775808", str(2**64), "7", "1000000001"])
def test_cpu_ns_is_bounded(value: str, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(RUN_START + "\n")
    for cmd in ("export", "plot"):
        if cmd == "plot" and not HAS_MPL:
            continue
        out = tmp_path / ("o.json" if cmd == "export" else "o.png")
        flag = "--chrome" if cmd == "export" else "--png"
        capsys.readouterr()
        code = _cli.main(["trace", cmd, str(path), flag, str(out), "--cpu-ns", value])
        err = capsys.readouterr().err
        assert code == 2
        (line,) = err.splitlines()
        assert "--cpu-ns" in line and "8<=x<=1000000000" in line


@pytest.mark.skipif(not HAS_MPL, reason="matplotlib is not installed")
@pytest.mark.parametrize("title", ["\udcff", "$x^", "a\x1b[2Jb\nc", "\U0001f600" * 300])
def test_any_title_is_drawn(title: str, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    """--title from argv (a non-UTF-8 byte arrives surrogate-escaped), mathtext, control
    characters, glyphs the font lacks: drawn escaped, one line on stderr."""
    path = tmp_path / "t.jsonl"
    path.write_text(RUN_START + '\n{"step":1,"t":0,"thread":"app$x^","event":"violation",'
                    '"rule":"$\\\\frac{","message":"m"}\n')
    capsys.readouterr()
    code = _cli.main(["trace", "plot", str(path), "--png", str(tmp_path / "o.png"),
                      "--title", title])
    err = capsys.readouterr().err
    assert code == 0, err
    assert len(err.splitlines()) == 1 and (tmp_path / "o.png").read_bytes()[:4] == b"\x89PNG"


# ---- property: one field of a real event replaced by any JSON value ---------------------------


@pytest.fixture(scope="module")
def base_lines(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """A real trace (the mimic program), plus the events it lacks that the tools handle."""
    path = mimic_trace(tmp_path_factory.mktemp("mimic") / "mimic.jsonl", frames=1, draws=1)
    evs = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    last = evs[-1]
    extra = [
        {"event": "run.failure", "thread": None, "kind": "deadlock", "message": "m"},
        {"event": "rt.deferred_error", "thread": "app", "ddi": "Lock", "hr_name": "E_FAIL"},
        {"event": "kmd.lock", "thread": "app", "status_name": "STATUS_SUCCESS", "status": 0},
        {"event": "queue.put", "thread": "app", "queue": "q", "depth": 1},
        {"event": "umd.track.switch", "thread": "app", "allocation": 64},
        {"event": "kmd.rename", "thread": "app", "allocation": 64},
        {"event": "kmd.tdr", "thread": "kmd.gpu"},
        {"event": "block", "thread": "app", "waits": "mutex m held by w"},
        {"event": "unblock", "thread": "app", "waited": "mutex m"},
    ]
    return evs[:-1] + [{"step": last["step"], "t": last["t"], **e} for e in extra] + [last]


JSON_LEAVES = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
               | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20))
JSON_VALUES = st.recursive(JSON_LEAVES, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=5), inner, max_size=4),
                           max_leaves=12)
#: keys replaced: the head, the context, and every field some tool reads
KEYS = ["step", "t", "thread", "event", "scenario", "seed", "strategy", "backend", "child",
        "tid", "daemon", "ddi", "cb", "device", "gated", "flags", "hr", "hr_name", "fence",
        "commands", "draws", "status", "status_name", "result", "queue", "seq", "depth",
        "waits", "reason", "rule", "message", "kind", "allocation", "ok", "failure",
        "violations", "decisions", "x"]


def _mutated(base: list[dict], i: int, key: str, value: object, deep: int) -> str:
    ev = dict(base[i % len(base)])
    ev[key] = "\0DEEP\0" if deep else value
    text = "\n".join(json.dumps(e) for e in base[:i % len(base)])
    line = json.dumps(ev).replace('"\\u0000DEEP\\u0000"', "[" * deep + "]" * deep)
    rest = "\n".join(json.dumps(e) for e in base[i % len(base) + 1:])
    return "\n".join(x for x in (text, line, rest) if x) + "\n"


def _check_any(cmd: str, path: Path, tmp_path: Path,
               capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(cmd, path, tmp_path, capsys)
    assert code in (0, 2), err
    if code == 2:
        (line,) = err.splitlines()
        assert line.startswith(f"wddmemu: error: {path}")


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(i=st.integers(0, 10_000), key=st.sampled_from(KEYS), value=JSON_VALUES,
       deep=st.sampled_from([0] * 8 + [300, 1100]))
def test_any_value_in_any_field_is_exit_0_or_2(base_lines: list[dict], i: int, key: str,
                                               value: object, deep: int, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "fuzz.jsonl"
    path.write_text(_mutated(base_lines, i, key, value, deep))
    for cmd in ("summary-json", "export-stdout", "export-steps"):
        _check_any(cmd, path, tmp_path, capsys)


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(i=st.integers(0, 10_000), key=st.sampled_from(KEYS), value=JSON_VALUES,
       deep=st.sampled_from([0] * 8 + [300, 1100]))
def test_any_value_in_any_field_is_exit_0_or_2_summary_and_plot(
        base_lines: list[dict], i: int, key: str, value: object, deep: int, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "fuzz.jsonl"
    path.write_text(_mutated(base_lines, i, key, value, deep))
    for cmd in ("summary", "plot") if HAS_MPL else ("summary",):
        _check_any(cmd, path, tmp_path, capsys)
