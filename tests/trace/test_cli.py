"""The ``trace`` command group: usage, output, and one-line errors with exit code 2."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from tests.support.chrome import check_chrome
from tests.support.traces import mimic_trace
from wddmemu import _cli
from wddmemu._trace_cli import TraceInputError, trace


@pytest.fixture(scope="module")
def mimic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mimic_trace(tmp_path_factory.mktemp("mimic") / "mimic.jsonl")


@pytest.fixture
def bad(tmp_path: Path, mimic: Path) -> Path:
    lines = mimic.read_bytes().splitlines(keepends=True)
    p = tmp_path / "bad.jsonl"
    p.write_bytes(b"".join(lines[:6]) + b'{"step":6,"thread":"app","event":"x"}\n'
                  + b"".join(lines[6:]))
    return p


def _run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(trace, list(args), catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


def test_summary(mimic: Path) -> None:
    code, out, _ = _run("summary", str(mimic))
    assert code == 0
    assert "DDI calls" in out and "LockAsync" in out and "LA-13" in out
    code, out, _ = _run("summary", str(mimic), "--json")
    assert code == 0
    d = orjson.loads(out)
    assert d["lock_path"]["calls"]["LockAsync"] == 9


def test_export(mimic: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    code, _, err = _run("export", str(mimic), "--chrome", str(out), "--time", "steps",
                        "--cpu-ns", "20")
    assert code == 0
    assert "ui.perfetto.dev" in err
    doc = orjson.loads(out.read_bytes())
    assert check_chrome(doc) == []
    assert doc["otherData"]["time"] == "steps" and doc["otherData"]["cpu_ns"] == 20
    code, stdout, _ = _run("export", str(mimic), "--chrome", "-")
    assert code == 0 and check_chrome(orjson.loads(stdout)) == []


def test_plot(mimic: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.png"
    code, _, _ = _run("plot", str(mimic), "--png", str(out), "--width", "10")
    assert code == 0
    assert out.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("cmd", [["summary"], ["export", "--chrome", "{out}.json"],
                                 ["plot", "--png", "{out}.png"]])
def test_malformed_line_is_one_line_exit_2(cmd: list[str], bad: Path, tmp_path: Path) -> None:
    args = [cmd[0], str(bad), *[a.format(out=tmp_path / "o") for a in cmd[1:]]]
    code, out, err = _run(*args)
    assert code == 2
    assert err.strip().splitlines() == [
        f"Error: {bad}:7: 't' is missing: is this a wddmemu trace?"]
    assert "Traceback" not in out + err
    assert not list(tmp_path.glob("o.*"))  # nothing half-written


@pytest.mark.parametrize("cmd", [["summary"], ["export", "--chrome", "{out}.json"],
                                 ["plot", "--png", "{out}.png"]])
def test_missing_and_empty_file_exit_2(cmd: list[str], tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    for path, msg in ((tmp_path / "nope.jsonl", "no such file"), (empty, "empty trace")):
        args = [cmd[0], str(path), *[a.format(out=tmp_path / "o") for a in cmd[1:]]]
        code, _, err = _run(*args)
        assert code == 2
        (line,) = err.strip().splitlines()
        assert str(path) in line and msg in line


def test_bad_options_exit_2(mimic: Path, tmp_path: Path) -> None:
    for args in (["export", str(mimic), "--chrome", str(tmp_path / "no" / "x.json")],
                 ["export", str(mimic), "--chrome", str(tmp_path)],
                 ["export", str(mimic), "--chrome", str(tmp_path / "x.json"), "--cpu-ns", "2"],
                 ["export", str(mimic), "--chrome", str(tmp_path / "x.json"), "--time", "wall"],
                 ["export", str(mimic)],
                 ["plot", str(mimic), "--png", "-"]):
        code, _, err = _run(*args)
        assert code == 2, args
        assert "Traceback" not in err


def test_plot_without_matplotlib(mimic: Path, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    for mod in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, _, err = _run("plot", str(mimic), "--png", str(tmp_path / "x.png"))
    assert code == 2
    assert "install wddmemu[plot]" in err


def test_errors_are_click_exceptions_with_exit_2() -> None:
    assert TraceInputError("x").exit_code == 2


def test_through_the_main_entry_point(mimic: Path, bad: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    # what `cli.add_command(trace)` in runtime/_cli.py gives (attached here if not yet)
    if "trace" not in _cli.cli.commands:
        monkeypatch.setitem(_cli.cli.commands, "trace", trace)
    out = tmp_path / "m.json"
    assert _cli.main(["trace", "export", str(mimic), "--chrome", str(out)]) == 0
    assert check_chrome(orjson.loads(out.read_bytes())) == []
    capsys.readouterr()
    assert _cli.main(["trace", "summary", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [f"wddmemu: error: {bad}:7: 't' is missing: is this a wddmemu "
                                "trace?"]


def _closed_stdout(*args: str) -> tuple[int, str]:
    """``wddmemu ARGS`` in a subprocess whose stdout is a pipe no one reads: its read end is
    closed before the command writes (``| head -1`` after its line, made deterministic). The
    exit code and stderr."""
    import os
    import subprocess

    from tests.support.interrupt import ROOT

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    r, w = os.pipe()
    os.close(r)
    try:
        p = subprocess.run([sys.executable, "-m", "wddmemu._cli", *args], stdout=w,
                           stderr=subprocess.PIPE, text=True, env=env, timeout=120)
    finally:
        os.close(w)
    return p.returncode, p.stderr


def _slow(args: list[str], code: int) -> Any:
    # a subprocess each (~0.5 s): one of each path stays in the default run (docs/testing.md)
    return pytest.param(args, code, marks=pytest.mark.slow)


@pytest.mark.parametrize("args, code", [
    (["trace", "summary"], 0), _slow(["trace", "summary", "--json"], 0),
    (["trace", "export", "--chrome", "-"], 0), (["rules"], 0),
    (["run", "dynamic-vb-ring", "--driver", "track-in-lockasync"], 1),  # its finding's code
    # click's own output: it answered a closed pipe with exit 1 (fuzzing, 7 December)
    (["rules", "LA-13"], 0), _slow(["rules", "foreign-await"], 0), (["--help"], 0),
    _slow(["--version"], 0), _slow(["explore", "--help"], 0),
    _slow(["trace", "summary", "--help"], 0),
])
def test_a_reader_that_stops_early_leaves_the_commands_own_exit_code(args: list[str], code: int,
                                                                     mimic: Path) -> None:
    """h9: ``trace summary FILE | head -1`` exited 1 (rich's code for a closed pipe; 1 is a
    finding here) with nothing on stderr. A reader that stops is not an error: the command
    ends quietly with its own exit code."""
    full = [*args[:2], str(mimic), *args[2:]] if args[0] == "trace" else args
    assert _closed_stdout(*full) == (code, "")


@pytest.mark.parametrize("args, code", [
    (["run", "dynamic-vb-ring", "--driver", "track-in-lockasync", "--trace", "/dev/stdout"], 1),
    (["explore", "dynamic-vb-ring", "--driver", "track-in-lockasync", "--schedules", "3",
      "--json", "/dev/stdout"], 1),
], ids=["trace", "json"])
def test_a_reader_that_stops_early_on_dev_stdout_leaves_the_commands_own_code(
        args: list[str], code: int, tmp_path: Path, monkeypatch) -> None:
    """``run --trace /dev/stdout | head -0`` was exit 2 ("cannot write /dev/stdout: Broken
    pipe"), turning a finding into bad input: a trace or report whose reader left is dropped,
    and the run goes on (tracing never changes an outcome)."""
    monkeypatch.chdir(tmp_path)  # explore saves its failure here
    assert _closed_stdout(*args) == (code, "")


def test_a_trace_sink_whose_reader_left_drops_the_rest() -> None:
    import contextlib
    import os

    from vthreads._trace import FLUSH_BYTES, TraceSink

    r, w = os.pipe()
    os.close(r)
    f = os.fdopen(w, "wb")
    sink = TraceSink(f)
    sink.start({"scenario": "s"})
    for i in range(FLUSH_BYTES // 40 + 10):  # more than one flush's worth
        sink.write({"step": i, "t": 0, "thread": None, "event": "x"})
    sink.close()  # no BrokenPipeError
    assert sink.reader_gone
    with contextlib.suppress(BrokenPipeError):  # the borrowed file's buffer: its owner's
        f.close()


def test_summary_lines_are_not_wrapped_in_a_pipe(tmp_path: Path, capsys) -> None:
    """h9 (h6 F2's residue): off a terminal ``trace summary`` wrapped its failure line at 80
    columns, as run and explore no longer do (``_cli._console``)."""
    trace_file, saved = tmp_path / "t.jsonl", tmp_path / "saved"
    assert _cli.main(["explore", "dynamic-vb-ring", "--driver", "track-in-lockasync",
                      "--schedules", "20", "--no-minimise", "--save-dir", str(saved)]) == 1
    [failure_file] = saved.iterdir()
    assert _cli.main(["replay", str(failure_file), "--trace", str(trace_file)]) == 1
    capsys.readouterr()
    assert _cli.main(["trace", "summary", str(trace_file)]) == 0
    lines = capsys.readouterr().out.splitlines()
    [failure] = [x for x in lines if x.startswith("failure ")]
    assert len(failure) > 120  # one line (cut at the summary's own limit, not wrapped at 80)
    assert max(len(x) for x in lines if x.startswith(("│", "┃", "┏", "└"))) <= 80  # tables fit
