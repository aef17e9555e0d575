"""Issue 14: explore keeps what it found. Each failure is saved the moment it is found (and
replaced by its minimised form at the end); Ctrl-C prints what ran and exits 130 with the files
kept; a plain progress line appears when stdout is not a terminal; a hang is saved like any
finding."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from tests.support.interrupt import interrupt_once_saved as _interrupt_once_saved
from wddmemu import _cli


def test_ctrl_c_keeps_the_failures_found_and_exits_130(tmp_path: Path) -> None:
    saved = tmp_path / "saved"
    # a whole failure file, not the temporary one an atomic write starts with: a Ctrl-C in
    # the middle of that write removes it (a failure half-saved is not yet found)
    report = tmp_path / "r.json"
    report.write_text('{"ok": true, "cells": []}')  # an older run's green report
    code, out, err = _interrupt_once_saved(
        ["explore", "dynamic-vb-ring", "--driver", "track-in-lockasync", "--keep-going",
         "--schedules", "100000", "--save-dir", str(saved), "--json", str(report)], saved,
        tmp_path, until=lambda: any(f.suffix == ".json" for f in saved.iterdir()))
    assert code == 130, err
    assert "Traceback" not in err
    assert "interrupted:" in out and "schedules in" in out
    doc = orjson.loads(report.read_bytes())
    assert (doc["ok"], doc["interrupted"], doc["cells"]) == (False, True, [])
    assert doc["unfinished"] == ["dynamic-vb-ring[track-in-lockasync,ddi=default,pos]"]
    files = sorted(saved.iterdir())
    flat = out.replace("\n", "")  # rich wraps long paths
    assert files and all(f.name in flat for f in files)
    for f in files:  # complete files: each one reads back
        assert orjson.loads(f.read_bytes())["format"] == "wddmemu-failure"



def _interrupt_at_the_third_file(monkeypatch) -> None:
    """A real SIGINT (delivered in this process by the handler ``ctrl_c`` installed) right
    after the third failure file is saved: deterministic, where a Ctrl-C from outside lands
    anywhere."""
    import signal

    save = _cli._ExploreDisplay.save_early
    saved: list[object] = []

    def save_then_interrupt(self, fd) -> None:
        save(self, fd)
        saved.append(fd)
        if len(saved) == 3:
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(_cli._ExploreDisplay, "save_early", save_then_interrupt)


@pytest.mark.parametrize("how", [
    [], ["--jobs", "2"],
    pytest.param(["--cluster", "local:2"], marks=pytest.mark.slow),  # a cluster starts: seconds
])
def test_ctrl_c_counts_the_schedules_and_files_that_finished(how, tmp_path: Path, capsys,
                                                              monkeypatch) -> None:
    """h9: after Ctrl-C, --cluster said "0 failing" and listed no file (its failures were saved
    behind the display's back); --jobs 2 once said more failing than schedules (a chunk's
    files were saved before its schedules were counted). The summary counts what finished:
    every failure file saved, listed, and never more of them than schedules."""
    _interrupt_at_the_third_file(monkeypatch)
    saved = tmp_path / "saved"
    code = _cli.main(["explore", "dynamic-vb-ring", "--driver", "track-in-lockasync",
                      "--keep-going", "--schedules", "400", "--save-dir", str(saved), *how])
    out = capsys.readouterr().out
    assert code == 130, out
    [line] = [x for x in out.splitlines() if x.startswith("interrupted:")]
    runs, failing = int(line.split()[1]), int(line.split(", ")[1].split()[0])
    files = sorted(f.name for f in saved.iterdir())
    listed = sorted(x.split("/")[-1] for x in out.splitlines() if x.startswith("saved: "))
    assert failing == len(files) == 3 and listed == files
    assert runs >= failing


def test_each_failure_is_saved_when_found_then_minimised(tmp_path: Path, capsys) -> None:
    saved = tmp_path / "saved"
    code = _cli.main(["explore", "dynamic-vb-ring", "--driver", "track-in-lockasync",
                      "--schedules", "20", "--save-dir", str(saved)])
    out = capsys.readouterr().out
    assert code == 1
    files = list(saved.iterdir())
    assert len(files) == 1  # the early (unminimised) file gave way to the minimised one
    doc = orjson.loads(files[0].read_bytes())
    assert doc["minimised"] and files[0].name in out.replace("\n", "")


def test_progress_lines_when_stdout_is_not_a_terminal(tmp_path: Path, capsys,
                                                      monkeypatch) -> None:
    monkeypatch.setattr(_cli, "PROGRESS_EVERY", 0.0)
    assert _cli.main(["explore", "dynamic-vb-ring", "--schedules", "3", "--strategy",
                      "random", "--save-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    lines = [x for x in out.splitlines() if "schedules," in x and "/3 schedules" in x]
    assert [x.split(":")[1].split()[0] for x in lines] == ["1/3", "2/3", "3/3"]


def test_no_progress_line_within_the_interval(tmp_path: Path, capsys) -> None:
    assert _cli.main(["explore", "dynamic-vb-ring", "--schedules", "2", "--strategy",
                      "random", "--save-dir", str(tmp_path)]) == 0
    assert "/2 schedules," not in capsys.readouterr().out


@pytest.mark.slow  # watchdog timeouts of whole seconds (docs/testing.md)
def test_explore_timeout_saves_a_hang(tmp_path: Path, capsys, monkeypatch) -> None:
    (tmp_path / "bi_spin.py").write_text(
        "from umd import ReferenceDevice, ReferenceDriver\n"
        "class Spin(ReferenceDevice):\n"
        "    async def pfn_rename(self, args):\n"
        "        while True:\n"
        "            pass\n"
        "def make(driver_version=None):\n"
        "    return ReferenceDriver(device_class=Spin)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    saved = tmp_path / "saved"
    code = _cli.main(["explore", "dynamic-vb-ring", "--driver", "bi_spin:make",
                      "--schedules", "5", "--timeout", "0.3", "--save-dir", str(saved)])
    out = capsys.readouterr().out
    assert code == 1
    assert "hang at step" in out and "was in DDI Rename" in out
    [f] = saved.iterdir()
    assert orjson.loads(f.read_bytes())["failure"]["rule"] == "hang"
    assert os.path.getsize(f) > 0


def test_ctrl_c_on_a_campaign_reports_the_cells_that_ended_and_exits_130(tmp_path: Path) -> None:
    saved = tmp_path / "saved"
    camp = tmp_path / "c.toml"
    camp.write_text('[campaign]\nscenarios = ["dynamic-vb-ring", "discard-every-frame"]\n'
                    'drivers = ["track-in-lockasync"]\nddi_versions = [11]\n'
                    'strategies = ["random"]\nschedules = 100000\n'
                    # keep going: a cell that stopped at its first failure could let the whole
                    # campaign end before the interrupt lands (exit 1, not 130) on a busy machine
                    "stop_on_first = false\n")
    (tmp_path / "j.json").write_text('{"ok": true, "cells": []}')  # a green report from before
    code, out, err = _interrupt_once_saved(
        ["campaign", str(camp), "--save-dir", str(saved), "--junit", str(tmp_path / "j.xml"),
         "--json", str(tmp_path / "j.json")], saved, tmp_path)
    assert code == 130, err
    assert "Traceback" not in err, err
    assert "interrupted:" in out and "cells ended" in out
    assert any(saved.iterdir()) and (tmp_path / "j.xml").is_file()
    # the reports say it was interrupted, and which cells did not end: never a green run (h6 F6)
    doc = orjson.loads((tmp_path / "j.json").read_bytes())
    assert doc["ok"] is False and doc["interrupted"] is True
    assert "dynamic-vb-ring[track-in-lockasync,ddi=0xb,random]" in (
        doc["unfinished"] + [c["name"] for c in doc["cells"]])
    assert len(doc["unfinished"]) + len(doc["cells"]) == 2 and doc["unfinished"]
    # one line, naming the cells that did not end (it wrapped at 80 columns, naming none)
    line = next(x for x in out.splitlines() if x.startswith("interrupted:"))
    assert f"(not ended: {', '.join(doc['unfinished'])}); every failure found so far is in " \
        f"{saved}" in line
    xml = (tmp_path / "j.xml").read_text()
    assert f'errors="{len(doc["unfinished"])}"' in xml and 'type="interrupted"' in xml
    assert 'tests="2"' in xml
