"""Finding the user's code (docs/scenarios.md, "Loading it"), with the real console script in a
subprocess, as a user runs it:

* ``--load NAME`` finds a module in the current directory, as ``python -m`` does, with no
  ``PYTHONPATH``; ``--load path/to/mod.py`` loads a single file; a failure file records the
  module name and replays with either form, and is still refused without one.
* one broken installed entry point is a warning line: the commands that do not need it go on,
  a command naming what only it provides fails with exit 2 naming it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

#: each test runs the real command in subprocesses (1-3 s each): with the end-to-end
#: user-package runs, in the slow set (CI runs it; README, docs/testing.md)
pytestmark = pytest.mark.slow

EXE = Path(sys.executable).with_name("wddmemu")

#: a single-file user module: a racy policy-free driver variant and a scenario
MODULE = '''\
import umd
import wddmemu
from runtime import d3d9
from scenarios import Param, scenario


@wddmemu.driver("test-load-unlocked", rules=("RACE",), summary="no driver lock")
def make(driver_version=None):
    return umd.make_driver("no-driver-lock", driver_version=driver_version)


@scenario("test-load-discards", "discards", ddi_version=0xB, n=Param(int, 3, "n", range=(1, 4)))
async def discards(ctx, n):
    dev = await ctx.device()
    vb = await dev.create_vertex_buffer(64)
    await dev.set_stream_source(0, vb, 0, 16)
    for f in range(n):
        v = await dev.lock(vb, 0, 64, d3d9.D3DLOCK_DISCARD)
        v.write(0, bytes([f + 1]) * 64)
        await dev.unlock(vb)
        await dev.draw_primitive(d3d9.D3DPT_TRIANGLELIST, 0, 4)
    await dev.present()
'''


def _run(argv: list[str], cwd: Path, pythonpath: Path | None = None
         ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([str(EXE), *argv], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_load_finds_a_module_in_the_current_directory(tmp_path: Path) -> None:
    (tmp_path / "h1loadmod.py").write_text(MODULE)
    p = _run(["--load", "h1loadmod", "scenarios"], tmp_path)
    assert p.returncode == 0, p.stderr
    assert "test-load-discards" in p.stdout and p.stderr == ""
    # a --driver MODULE:ATTR beside you too
    p = _run(["run", "lock-flags", "--driver", "h1loadmod:make"], tmp_path)
    assert p.returncode == 0, p.stderr


def test_load_takes_a_path_and_the_failure_file_names_the_module(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "h1pathmod.py").write_text(MODULE)
    work = tmp_path / "work"
    work.mkdir()
    p = _run(["--load", "../src/h1pathmod.py", "explore", "test-load-discards", "--driver",
              "test-load-unlocked", "--schedules", "200", "--save-dir", "f"], work)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "replay: wddmemu --load ../src/h1pathmod.py replay" in p.stdout  # as given
    (f,) = sorted((work / "f").glob("*.json"))
    doc = json.loads(f.read_text())
    assert doc["load"]["modules"] == ["h1pathmod"]  # the module's name, never the path
    assert doc["spec"]["driver"] == "test-load-unlocked"
    # replays with the path, or (from its directory) with the name
    p = _run(["--load", "../src/h1pathmod.py", "replay", str(f)], work)
    assert p.returncode == 1 and "reproduced" in p.stdout, p.stdout + p.stderr
    p = _run(["--load", "h1pathmod", "replay", str(f)], src)
    assert p.returncode == 1 and "reproduced" in p.stdout, p.stdout + p.stderr
    p = _run(["--allow-load", "h1pathmod", "replay", str(f)], src)
    assert p.returncode == 1 and "reproduced" in p.stdout, p.stdout + p.stderr
    # the file alone imports nothing, even with the module right beside it
    p = _run(["replay", str(f)], src)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [
        f"wddmemu: error: {f} names module 'h1pathmod', which was not loaded: rerun with "
        "--load h1pathmod (or --allow-load h1pathmod) if you trust it"]


def test_load_takes_a_package_by_its_directory_or_its_init(tmp_path: Path) -> None:
    # loaded as module "__init__", the package's relative import failed (a third-party
    # package, 7 December): a package's path loads the package, named by its directory
    pkg = tmp_path / "src" / "h7pkgload"
    pkg.mkdir(parents=True)
    (pkg / "mod.py").write_text(MODULE)
    (pkg / "__init__.py").write_text("from . import mod  # noqa: F401\n")
    work = tmp_path / "work"
    work.mkdir()
    for arg in ("../src/h7pkgload", "../src/h7pkgload/", "../src/h7pkgload/__init__.py"):
        p = _run(["--load", arg, "scenarios"], work)
        assert p.returncode == 0 and "test-load-discards" in p.stdout, (arg, p.stderr)
    p = _run(["--load", "../src/h7pkgload", "explore", "test-load-discards", "--driver",
              "test-load-unlocked", "--schedules", "200", "--save-dir", "f"], work)
    assert p.returncode == 1, p.stdout + p.stderr
    (f,) = sorted((work / "f").glob("*.json"))
    assert json.loads(f.read_text())["load"]["modules"] == ["h7pkgload"]
    p = _run(["--load", "../src/h7pkgload/__init__.py", "replay", str(f)], work)
    assert p.returncode == 1 and "reproduced" in p.stdout, p.stdout + p.stderr


def test_bad_load_paths_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "my-mod.py").write_text(MODULE)
    (tmp_path / "click.py").write_text(MODULE)
    for arg, says in (("./nope.py", "--load ./nope.py: no such file"),
                      ("./my-mod.py", "--load ./my-mod.py: 'my-mod' is not a module name"),
                      ("./click.py", "--load ./click.py: a module named 'click' is imported "
                                    "already"),
                      ("a b", "--load takes a module name like mypkg.drivers or a path")):
        p = _run(["--load", arg, "scenarios"], tmp_path)
        assert p.returncode == 2, (arg, p.stdout, p.stderr)
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"wddmemu: error: {says}"), lines


def _plugin(root: Path, files: dict[str, str], entry_points: str) -> Path:
    """A distribution ``brk`` under ``root`` (for PYTHONPATH) with ``files`` in package
    ``brk`` and the given ``entry_points.txt``."""
    pkg = root / "brk"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    for name, body in files.items():
        (pkg / name).write_text(body)
    info = root / "brk-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: brk\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(entry_points)
    return root


def test_a_broken_plugin_is_a_warning_and_the_rest_works(tmp_path: Path) -> None:
    site = _plugin(tmp_path / "site", {
        "scen.py": MODULE.replace("import umd", "import umd\nthis is = not python("),
        "half.py": "from scenarios import scenario\n\n"
                   "@scenario('test-load-half', 'registered before the error')\n"
                   "async def half(ctx):\n    pass\n\n"
                   "raise ImportError('no such thing')\n",
        "drv.py": "import nosuchmodule_h1\n\ndef make(driver_version=None):\n    pass\n",
    }, "[wddmemu.scenarios]\nbrk = brk.scen\nhalf = brk.half\n\n"
       "[wddmemu.drivers]\nbrkdrv = brk.drv:make\n")
    work = tmp_path / "work"
    work.mkdir()
    warnings = [
        "wddmemu: warning: plugin brk = brk.scen (wddmemu.scenarios) is broken and was "
        f"skipped: SyntaxError: invalid syntax ({site / 'brk' / 'scen.py'}:2)",
        "wddmemu: warning: plugin half = brk.half (wddmemu.scenarios) is broken and was "
        f"skipped: ImportError: no such thing ({site / 'brk' / 'half.py'}:7)",
        "wddmemu: warning: plugin brkdrv = brk.drv:make (wddmemu.drivers) is broken and was "
        "skipped: ModuleNotFoundError: No module named 'nosuchmodule_h1' "
        f"({site / 'brk' / 'drv.py'}:1)",
    ]
    p = _run(["run", "lock-flags"], work, site)
    assert p.returncode == 0, p.stderr
    assert p.stderr.strip().splitlines() == warnings
    p = _run(["scenarios"], work, site)
    assert p.returncode == 0 and "lock-flags" in p.stdout
    assert "test-load-half" not in p.stdout  # what a broken module registered is gone again
    # a name only the broken plugin provides: exit 2, naming it
    p = _run(["run", "test-load-discards"], work, site)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines()[:3] == warnings
    assert p.stderr.strip().splitlines()[3:] == [
        "wddmemu: error: unknown scenario 'test-load-discards': the broken plugin brk = brk.scen "
        "(wddmemu.scenarios) (and 1 more) may provide it: SyntaxError: invalid syntax "
        f"({site / 'brk' / 'scen.py'}:2)"]
    p = _run(["run", "lock-flags", "--driver", "brkdrv"], work, site)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines()[3:] == [
        "wddmemu: error: unknown driver 'brkdrv': it comes from the broken plugin brkdrv = "
        "brk.drv:make (wddmemu.drivers): ModuleNotFoundError: No module named "
        f"'nosuchmodule_h1' ({site / 'brk' / 'drv.py'}:1)"]
