"""Sweep H D5: an output path that is the command's own input was written over it —
``replay F --trace F`` made the failure file a trace, ``campaign C --json C`` replaced the
campaign file. Refused before anything runs, in one line, the input untouched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wddmemu import _cli

CAMPAIGN = """\
[campaign]
name = "tiny"
scenarios = ["lock-flags"]
schedules = 1
"""


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str], what: str) -> None:
    assert _cli.main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"wddmemu: error: {what} "), err
    assert "is the file this command reads" in err[0], err


def test_replay_refuses_a_trace_over_its_failure_file(tmp_path: Path, capsys) -> None:
    assert _cli.main(["explore", "dynamic-vb-ring", "--driver", "track-in-lockasync",
                      "--schedules", "5", "--save-dir", str(tmp_path / "f")]) == 1
    capsys.readouterr()
    (saved,) = sorted((tmp_path / "f").glob("*.json"))
    before = saved.read_bytes()
    _refused(["replay", str(saved), "--trace", str(saved)], capsys, "trace file")
    link = tmp_path / "link.json"
    os.symlink(saved, link)  # another spelling of the same file
    _refused(["replay", str(saved), "--trace", str(link)], capsys, "trace file")
    assert saved.read_bytes() == before


@pytest.mark.parametrize("report", ["--json", "--junit"])
def test_campaign_refuses_a_report_over_its_campaign_file(tmp_path: Path, capsys,
                                                          report: str) -> None:
    camp = tmp_path / "c.toml"
    camp.write_text(CAMPAIGN)
    _refused(["campaign", str(camp), report, str(camp), "--save-dir", str(tmp_path / "s")],
             capsys, f"{report} report")
    assert camp.read_text() == CAMPAIGN


@pytest.mark.parametrize(("command", "option", "what"), [
    ("export", "--chrome", "Chrome trace"), ("plot", "--png", "PNG")])
def test_trace_tools_refuse_to_write_over_the_trace(tmp_path: Path, capsys, command: str,
                                                    option: str, what: str) -> None:
    trace = tmp_path / "t.jsonl"
    assert _cli.main(["run", "lock-flags", "--trace", str(trace)]) == 0
    capsys.readouterr()
    before = trace.read_bytes()
    _refused(["trace", command, str(trace), option, str(trace)], capsys, what)
    assert trace.read_bytes() == before
