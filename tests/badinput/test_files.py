"""Issue 14: files are written atomically and read within bounds. A failing write — a bad trace
line mid-export, a directory at the path — leaves what was at the path untouched; no temporary
file is left behind; reading ``/dev/zero`` ends at once with exit 2."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from wddmemu import _cli
from wddmemu._files import atomic_open, printable, write_atomically
from wddmemu._runner import RunSpec

GOOD = (b'{"step":0,"t":0,"thread":"app","event":"thread.start"}\n'
        b'{"step":1,"t":5,"thread":"app","event":"thread.exit"}\n')


def _export(trace: Path, out: Path) -> int:
    return _cli.main(["trace", "export", str(trace), "--chrome", str(out)])


def test_a_previous_export_survives_a_failing_export(tmp_path: Path, capsys) -> None:
    good, bad, out = tmp_path / "good.jsonl", tmp_path / "bad.jsonl", tmp_path / "out.json"
    good.write_bytes(GOOD)
    bad.write_bytes(GOOD + b"not json\n" + GOOD)  # fails after the first lines were written
    assert _export(good, out) == 0
    before = out.read_bytes()
    assert _export(bad, out) == 2
    assert ":3: not a JSON line" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl", "good.jsonl",
                                                          "out.json"]  # no temporary left


def test_a_directory_at_the_path_is_refused_and_kept(tmp_path: Path, capsys) -> None:
    trace, out = tmp_path / "t.jsonl", tmp_path / "out.json"
    trace.write_bytes(GOOD)
    out.mkdir()
    (out / "keep").write_text("x")
    assert _export(trace, out) == 2
    assert "is a directory" in capsys.readouterr().err
    assert (out / "keep").read_text() == "x"


def test_an_interrupted_write_leaves_the_old_file(tmp_path: Path) -> None:
    p = write_atomically(tmp_path / "f", b"old")
    with pytest.raises(KeyboardInterrupt), atomic_open(p) as f:
        f.write(b"half")
        raise KeyboardInterrupt
    assert p.read_bytes() == b"old" and [x.name for x in tmp_path.iterdir()] == ["f"]


@pytest.mark.parametrize("call", ["open", "close", "replace"])
def test_a_ctrl_c_while_the_temporary_file_is_made_or_renamed_leaves_nothing_behind(
        tmp_path: Path, monkeypatch, call: str) -> None:
    """CI once found ``.f.<random>.tmp`` beside a failure file after a Ctrl-C: the interrupt
    landed after mkstemp made the file and before the block that removes it began."""
    import os

    p = write_atomically(tmp_path / "f", b"old")
    real = getattr(os, call)

    def interrupted(*args, **kwargs):
        real(*args, **kwargs)  # the call itself is made: the signal lands right after it
        monkeypatch.setattr(os, call, real)
        raise KeyboardInterrupt

    monkeypatch.setattr(os, call, interrupted)
    with pytest.raises(KeyboardInterrupt), atomic_open(p) as f:
        f.write(b"new")
    assert getattr(os, call) is real
    if call == "replace":  # the rename was made: the new file is whole
        assert p.read_bytes() == b"new"
    else:
        assert p.read_bytes() == b"old"
    assert [x.name for x in tmp_path.iterdir()] == ["f"]


def test_a_run_trace_appears_whole_or_not_at_all(tmp_path: Path, capsys) -> None:
    trace = tmp_path / "t.jsonl"
    trace.write_bytes(b"previous")
    assert _cli.main(["run", "lock-flags", "--trace", str(trace)]) == 0
    body = trace.read_bytes()
    assert body.startswith(b"{") and body.endswith(b"\n")
    assert _cli.main(["run", "lock-flags", "--trace", str(trace), "--step-budget", "0"]) == 2
    assert trace.read_bytes() == body  # refused before the run: the old trace is untouched
    assert [x.name for x in tmp_path.iterdir()] == ["t.jsonl"]


@pytest.mark.parametrize("asynchronous", [False, True])
def test_run_scenario_from_code_writes_its_trace_atomically(tmp_path: Path, monkeypatch,
                                                            asynchronous: bool) -> None:
    """The library call keeps the CLI's promise too: a run that raises after the trace was
    opened leaves the old file whole and no temporary file beside it."""
    import anyio

    from wddmemu import _runner

    trace = tmp_path / "t.jsonl"
    trace.write_bytes(b"previous")

    def run(**kw):
        spec = _runner.RunSpec("lock-flags")
        if asynchronous:
            return anyio.run(lambda: _runner.run_scenario_async(spec, trace=trace, **kw))
        return _runner.run_scenario(spec, trace=trace, **kw)

    def broken(*_a, **_k):
        raise RuntimeError("the result could not be built")

    with monkeypatch.context() as m:
        m.setattr(_runner, "_result", broken)
        with pytest.raises(RuntimeError):
            run()
    assert trace.read_bytes() == b"previous"
    assert [x.name for x in tmp_path.iterdir()] == ["t.jsonl"]
    assert run().ok and trace.read_bytes().startswith(b'{"step":0')


def test_written_files_get_the_usual_mode(tmp_path: Path) -> None:
    p = write_atomically(tmp_path / "f", b"x")
    assert p.stat().st_mode & 0o044  # readable by others as open() would make it (umask 022)


@pytest.mark.parametrize("argv", [["replay", "/dev/zero"], ["trace", "summary", "/dev/zero"]])
def test_dev_zero_ends_at_once_with_exit_2(argv: list[str], capsys) -> None:
    assert _cli.main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and ("too big" in err or "longer than" in err)


def test_a_cut_last_line_is_summarised_with_a_warning(tmp_path: Path, capsys) -> None:
    trace = tmp_path / "t.jsonl"
    trace.write_bytes(GOOD + GOOD[:25])  # a killed writer
    assert _cli.main(["trace", "summary", str(trace), "--json"]) == 0
    cap = capsys.readouterr()
    assert cap.out.startswith("{")
    assert "warning:" in cap.err and ":3: the last line is cut short" in cap.err


def test_control_bytes_are_escaped() -> None:
    assert printable("\x1b]0;pwned\x07ok") == "\\x1b]0;pwned\\x07ok"
    assert printable(b"\x00" * 100, 4) == "\\x00" * 4 + "…"


@pytest.mark.parametrize("field, value, says", [
    ("strategy", [], "the spec's strategy is a list, not a string"),
    ("scenario", {"a": 1}, "the spec's scenario is an object, not a string"),
    ("backend", 1, "the spec's backend is an integer, not a string"),
    ("seed", "7", "the spec's seed is a string, not an integer"),
    ("depth", True, "the spec's depth is a boolean, not an integer"),
    ("step_budget", 1.5, "the spec's step_budget is a number, not an integer"),
    ("ddi_version", "0xB", "the spec's ddi_version is a string, not an integer or null"),
    ("params", [1], "the spec's params is a list, not an object or null"),
    ("bugs", ["gate-missing", 3], "the spec's bugs are not all strings"),
    ("decisions", {"0": 1}, "the spec's decisions is an object, not a list or null"),
])
def test_a_spec_field_of_the_wrong_kind_is_one_line_exit_2(
        tmp_path: Path, capsys, field: str, value: object, says: str) -> None:
    """Found by mutating a saved failure file at random: a list as the spec's strategy reached
    the strategy registry's ``in`` (TypeError: unhashable type) and replay exited 3."""
    d = RunSpec("dynamic-vb-ring", decisions=(0, 1)).to_dict()
    d[field] = value
    p = tmp_path / "f.json"
    p.write_bytes(orjson.dumps({"format": "wddmemu-failure", "version": 2, "spec": d,
                                "failure": {"rule": "X", "step": 1}}))
    assert _cli.main(["replay", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err, err


# ---- paths the file system refuses (a fuzz pass found each as exit 3) -------------------------

LONG = "x" * 300  # over NAME_MAX (255 bytes) for every Linux file system


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "internal error" not in err[0], err
    return err[0]


@pytest.mark.parametrize("argv", [
    ["run", "lock-flags", "--trace", "{d}/" + LONG],
    ["explore", "lock-flags", "--schedules", "1", "--save-dir", "{d}/" + LONG],
    ["explore", "lock-flags", "--schedules", "1", "--save-dir", "{d}/f", "--json",
     "{d}/" + LONG],
    ["trace", "export", "{trace}", "--chrome", "{d}/" + LONG],
], ids=["run-trace", "save-dir", "json", "chrome"])
def test_a_name_too_long_is_one_line_exit_2_and_nothing_written(tmp_path: Path, capsys,
                                                                argv: list[str]) -> None:
    trace = tmp_path / "t.jsonl"
    trace.write_bytes(GOOD)
    assert _cli.main([a.format(d=tmp_path, trace=trace) for a in argv]) == 2
    assert "longer than 255 bytes" in _one_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.jsonl"]


def test_a_long_valid_name_is_written_its_temporary_twin_being_shorter(tmp_path: Path,
                                                                       capsys) -> None:
    """A 250-byte name is valid; the temporary file beside it once took the whole name plus
    15 bytes and failed (exit 3)."""
    out = tmp_path / ("y" * 244 + ".jsonl")
    assert _cli.main(["run", "lock-flags", "--trace", str(out)]) == 0
    assert out.stat().st_size > 0
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


def test_a_directory_that_takes_no_new_file_is_one_line_exit_2(capsys) -> None:
    """/proc passes every check (a directory, writable by root) and still refuses the
    temporary file: the write itself says so, in one line."""
    assert _cli.main(["run", "lock-flags", "--trace", "/proc/wddmemu-test.jsonl"]) == 2
    assert _one_line(capsys).startswith("wddmemu: error: cannot write /proc/wddmemu-test.jsonl")


def test_a_failed_write_is_an_output_error_and_keeps_the_old_file(tmp_path: Path) -> None:
    from wddmemu._files import OutputError

    out = tmp_path / "r.json"
    write_atomically(out, b"old")
    with pytest.raises(OutputError, match=r"cannot write .*r\.json: No space left on device"), \
            atomic_open(out) as f:
        f.write(b"new")
        raise OSError(28, "No space left on device")
    assert out.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


@pytest.mark.parametrize("argv,says", [
    (["run", "lock-flags", "--timeout", "1e30"], "takes seconds 0..31,622,400"),
    (["replay", "x.json", "--timeout", str(2**64)], "takes seconds 0..31,622,400"),
    (["explore", "lock-flags", "--cluster", "tcp://", "--schedules", "1"],
     "give a scheduler address tcp://host:port"),
    (["explore", "lock-flags", "--cluster", "tcp://host:port", "--schedules", "1"],
     "give a scheduler address tcp://host:port"),
    (["explore", "lock-flags", "--cluster", "tcp://h:99999", "--schedules", "1"],
     "give a scheduler address tcp://host:port"),
    (["run", "lock-flags", "--driver", "a\nb"], "unknown driver 'a\\nb'"),
    (["run", "lock-flags", "--driver", "a\udcffb"], "unknown driver 'a\\udcffb'"),
    # "-" is stdout only for trace export --chrome: elsewhere it made a file named "-"
    (["run", "lock-flags", "--trace", "-"], "trace file -: give a file name (/dev/stdout"),
    (["explore", "lock-flags", "--json", "-"], "--json report -: give a file name"),
    (["explore", "lock-flags", "--junit", "-"], "--junit report -: give a file name"),
], ids=["timeout", "replay-timeout", "no-port", "word-port", "big-port", "newline",
        "surrogate", "trace-dash", "json-dash", "junit-dash"])
def test_options_the_platform_refuses_are_one_line_exit_2(tmp_path: Path, monkeypatch,
                                                          capsys, argv, says) -> None:
    monkeypatch.chdir(tmp_path)
    assert _cli.main(argv) == 2
    assert says in _one_line(capsys)


def test_a_fifo_is_written_through_and_stays_a_fifo(tmp_path: Path) -> None:
    """Only a regular file is replaced: renaming over a FIFO or a device node destroys it (as
    root, ``--trace /dev/null`` once replaced /dev/null with a file). A FIFO stands in for the
    device here: making one needs no privilege."""
    import os
    import stat
    import threading

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    assert _cli.main(["run", "lock-flags", "--trace", str(fifo)]) == 0
    reader.join(timeout=30)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert got and got[0].startswith(b"{") and got[0].count(b"\n") > 10
    assert [p.name for p in tmp_path.iterdir()] == ["pipe"]  # no temporary left


def test_a_symlink_is_followed_and_stays_a_link(tmp_path: Path) -> None:
    real, link = tmp_path / "real.jsonl", tmp_path / "link.jsonl"
    link.symlink_to(real)
    assert _cli.main(["run", "lock-flags", "--trace", str(link)]) == 0
    assert link.is_symlink() and real.stat().st_size > 0
    write_atomically(link, b"again")
    assert link.is_symlink() and real.read_bytes() == b"again"


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="no /proc/self/fd on this platform")
def test_dev_stdout_on_a_pipe_is_written_through() -> None:
    """``--trace /dev/stdout | cat``: /dev/stdout is a link to /proc/self/fd/1, whose target
    on a pipe is "pipe:[N]", no path; resolving it first made the write fail (exit 2)."""
    import os
    import subprocess
    import sys

    from tests.support.interrupt import ROOT

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    p = subprocess.run([sys.executable, "-m", "wddmemu._cli", "run", "lock-flags", "--trace",
                        "/dev/stdout"], capture_output=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith(b"{")]
    assert len(lines) > 10 and b'"event":"run.start"' in lines[0]


# ---- a missing output directory: refused by the API as by the CLI (sweep F, D11) -------------


def test_the_api_refuses_a_missing_output_directory_as_the_cli_does(tmp_path: Path) -> None:
    from wddmemu import run_scenario, trace
    from wddmemu._files import OutputError

    src = tmp_path / "t.jsonl"
    src.write_bytes(GOOD)
    missing = tmp_path / "no" / "such"
    for write, name in ((lambda p: run_scenario(RunSpec("lock-flags"), trace=p), "t.jsonl"),
                        (lambda p: trace.export_chrome(src, p), "o.json")):
        with pytest.raises(OutputError) as e:
            write(missing / name)
        assert str(e.value) == f"cannot write {missing / name}: directory {missing} does not " \
                               "exist"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.jsonl"]  # nothing made


def test_an_empty_output_name_is_refused_as_such(tmp_path: Path, monkeypatch) -> None:
    from wddmemu import run_scenario
    from wddmemu._files import OutputError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(OutputError, match=r"^cannot write '': give a file name$"):
        run_scenario(RunSpec("lock-flags"), trace="")  # was "cannot write : Is a directory"
    assert not list(tmp_path.iterdir())


def test_the_tools_own_directories_are_still_made(tmp_path: Path) -> None:
    from wddmemu import Finding, Found, save_failure
    from wddmemu._reports import write_reports

    spec = RunSpec("lock-flags")
    fd = Found(0, spec.with_decisions((0,)), Finding("RACE", 3, "m", "app"), spec)
    saved = save_failure(fd, tmp_path / "a" / "failures")  # a save directory is made
    assert saved.parent == tmp_path / "a" / "failures" and saved.is_file()
    write_reports([], junit=tmp_path / "r" / "x.xml", json_out=tmp_path / "r" / "x.json")
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["x.json", "x.xml"]
