"""Sweep H D7: refusals of a file's values in Python's words (``not NoneType``, ``not bool``,
``not datetime.date(…)``), orjson's (``number is infinity when parsed as double``), an API
function's name (``load_failure takes…`` for ``replay ''``) or a wrong one (a file in the way
called a missing directory). Each says it in the file's words."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from wddmemu import _cli


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    where = tmp_path_factory.mktemp("saved")
    assert _cli.main(["explore", "dynamic-vb-ring", "--driver", "track-in-lockasync",
                      "--schedules", "5", "--save-dir", str(where)]) == 1
    (f,) = sorted(where.glob("*.json"))
    return json.loads(f.read_text())


def _says(doc: dict[str, Any] | str, tmp_path: Path, capsys: Any) -> str:
    f = tmp_path / "f.json"
    f.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    capsys.readouterr()
    assert _cli.main(["replay", str(f)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    return line


@pytest.mark.parametrize(("frames", "word"), [(None, "null"), (True, "true"),
                                              (1e30, "a number too large"), (2.5, "2.5"),
                                              ([3], "a list")])
def test_a_parameter_refused_is_named_in_the_files_words(saved: dict[str, Any], tmp_path: Path,
                                                         capsys: Any, frames: Any,
                                                         word: str) -> None:
    doc = json.loads(json.dumps(saved))
    doc["spec"]["params"] = {"frames": frames}
    assert _says(doc, tmp_path, capsys).endswith(
        f"parameter frames takes an integer 1..100000, not {word}")


def test_numbers_too_large_say_so(saved: dict[str, Any], tmp_path: Path, capsys: Any) -> None:
    text = json.dumps(saved).replace('"format"', '"huge": ' + "9" * 5000 + ', "format"', 1)
    assert "holds a number too large to read" in _says(text, tmp_path, capsys)
    doc = json.loads(json.dumps(saved))
    doc["found_by"]["seed"] = 10**30
    assert "seed is an integer too large (past 64 bits)" in _says(doc, tmp_path, capsys)


def test_replay_of_no_path_and_a_file_in_the_way_say_so(tmp_path: Path, capsys: Any) -> None:
    assert _cli.main(["replay", ""]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "wddmemu: error: replay takes the path of a failure file, not ''"]
    (tmp_path / "file").write_text("x")
    assert _cli.main(["run", "lock-flags", "--trace", str(tmp_path / "file" / "t.jsonl")]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.endswith(f"{tmp_path / 'file'} is not a directory"), line


def test_a_campaign_timeout_that_is_a_date_is_named_so(tmp_path: Path, capsys: Any) -> None:
    camp = tmp_path / "c.toml"
    camp.write_text('[campaign]\nscenarios = ["lock-flags"]\ntimeout = 1979-05-27\n')
    assert _cli.main(["campaign", str(camp), "--save-dir", str(tmp_path / "s")]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.endswith("timeout takes seconds 0..31,622,400 (0: off), not a date"), line
