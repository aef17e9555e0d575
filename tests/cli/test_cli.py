"""``wddmemu`` exit codes: 0 clean, 1 a rule broke, 2 bad input (one line, no traceback),
3 internal error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from wddmemu import _cli

BAD_INPUT = [
    (["run", "no-such-scenario"], "unknown scenario 'no-such-scenario'"),
    (["run", "dynamic-vb-ring", "-p", "frames=lots"], "parameter frames takes an integer"),
    (["run", "dynamic-vb-ring", "-p", "colour=red"], "has no parameter 'colour'"),
    (["run", "dynamic-vb-ring", "-p", "novalue"], "-p takes key=value"),
    (["run", "dynamic-vb-ring", "--driver", "no.such.module:Driver"],
     "cannot import driver module"),
    (["run", "dynamic-vb-ring", "--driver", "umd:NoSuchDriver"], "has no attribute"),
    (["run", "dynamic-vb-ring", "--driver", "not-a-variant"], "unknown driver"),
    (["run", "dynamic-vb-ring", "--ddi-version", "eleven"], "is not an integer"),
    (["run", "dynamic-vb-ring", "--bug", "no-such-bug"], "unknown bug"),
    (["run", "dynamic-vb-ring", "--strategy", "chaos"], "Invalid value"),
    (["run", "dynamic-vb-ring", "--trace", "/no/such/dir/t.jsonl"], "cannot write trace file"),
    (["frobnicate"], "No such command"),
    (["--load", "no_such_user_module", "scenarios"], "cannot load module 'no_such_user_module'"),
    (["--load", "not a module", "scenarios"], "--load takes a module name"),
    (["run", "dynamic-vb-ring", "--driver-opt", "colour"], "--driver-opt takes key=value"),
    (["run", "dynamic-vb-ring", "--driver-opt", "colour=red"],
     "the reference driver has no option 'colour'"),
    (["run", "dynamic-vb-ring", "--driver-opt", "heap_bytes=lots"],
     "driver option heap_bytes takes an integer"),
    (["rules", "XX-99"], "unknown rule 'XX-99'"),
    # h6/h8: a repeated key took the last value silently; two reports on one path clobbered
    (["run", "dynamic-vb-ring", "-p", "frames=2", "-p", "frames=3"],
     "-p gives frames twice ('2', then '3'): give it once"),
    (["run", "dynamic-vb-ring", "--driver-opt", "heap_bytes=1", "--driver-opt", "heap_bytes=2"],
     "--driver-opt gives heap_bytes twice"),
    (["explore", "lock-flags", "--json", "/tmp/wddmemu-same.x", "--junit",
      "/tmp/../tmp/wddmemu-same.x"], "--junit and --json name the same file"),
]


@pytest.mark.parametrize("argv,message", BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
def test_bad_input_is_one_line_and_exit_2(argv: list[str], message: str, capsys) -> None:
    assert _cli.main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("wddmemu: error: ")
    assert message in lines[0]
    assert "Traceback" not in err


def test_clean_run_exits_0_and_prints_a_summary(capsys) -> None:
    assert _cli.main(["run", "dynamic-vb-ring", "--strategy", "pct", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "dynamic-vb-ring: clean" in out
    assert "DDI LockAsync" in out and "renames" in out and "sync: createresource" in out


def test_rule_break_exits_1_with_complete_trace_and_replay_command(tmp_path: Path,
                                                                   capsys) -> None:
    trace = tmp_path / "t.jsonl"
    argv = ["run", "dynamic-vb-ring", "--driver", "track-in-lockasync", "--trace", str(trace)]
    assert _cli.main(argv) == 1
    out = capsys.readouterr().out
    assert "LA-13" in out
    replay = next(line for line in out.splitlines() if line.startswith("replay: "))
    assert "wddmemu run dynamic-vb-ring --driver track-in-lockasync" in replay
    lines = [orjson.loads(x) for x in trace.read_bytes().splitlines()]
    assert lines[-1]["event"] == "run.end" and "LA-13" in lines[-1]["violations"]
    assert any(d["event"] == "violation" and d["rule"] == "LA-13" for d in lines)
    # the printed command reproduces the same run
    cmd = replay.removeprefix("replay: ").split()[1:]
    assert _cli.main(cmd) == 1
    again = [orjson.loads(x) for x in trace.read_bytes().splitlines()]
    assert again == lines


def test_internal_error_exits_3_with_one_line(monkeypatch, capsys) -> None:
    def boom(*a, **kw):
        raise ZeroDivisionError("emulator bug")

    monkeypatch.setattr("wddmemu._runner.run_scenario", boom)
    assert _cli.main(["run", "dynamic-vb-ring"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["wddmemu: internal error: ZeroDivisionError: emulator bug"]


def test_scenarios_lists_every_scenario(capsys) -> None:
    import scenarios

    assert _cli.main(["scenarios"]) == 0
    out = capsys.readouterr().out
    for name in scenarios.REGISTRY:
        assert name in out


def test_console_script_runs_in_a_subprocess() -> None:
    exe = Path(sys.executable).with_name("wddmemu")
    p = subprocess.run([str(exe), "run", "no-such"], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 2
    assert p.stderr.strip().startswith("wddmemu: error: unknown scenario")
    p = subprocess.run([str(exe), "run", "reentrant-lockasync", "--ddi-version", "0xA"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr


def test_explore_clamps_jobs_to_the_cpus(capsys, tmp_path) -> None:
    import os

    n = (os.cpu_count() or 1) + 5
    rc = _cli.main(["explore", "gl-icd-lock-entire", "--strategy", "random", "--schedules", "3",
                    "--jobs", str(n), "--save-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert f"--jobs {n} is more than the {os.cpu_count() or 1} CPUs here" in out


@pytest.mark.parametrize("strategy, shows_k", [("pct", True), ("portfolio", True),
                                               ("random", False), ("pos", False)])
def test_explore_summary_names_k_whenever_pct_schedules_ran(strategy, shows_k, capsys,
                                                           tmp_path) -> None:
    """The probed step count k shapes every PCT schedule, the portfolio's pct turns too: the
    summary shows it for both, and not for strategies that never draw a change point."""
    rc = _cli.main(["explore", "reentrant-lockasync", "--strategy", strategy, "--schedules", "4",
                    "--save-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert ("pct k=" in out) is shows_k, out
