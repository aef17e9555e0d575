"""THE acceptance test of plugging in one's own code: a user package with its own scenario and
a from-scratch driver (``userpkg_src/``: public names only), loaded with ``--load`` or through
entry points, explored, replayed and turned into a pytest regression test — every step in a
subprocess running the real ``wddmemu`` console script, as a user would.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).with_name("userpkg_src")
EXE = Path(sys.executable).with_name("wddmemu")
SCENARIO = "user-discard-stream"
EXPLORE = ["explore", SCENARIO, "--driver", "userdrv", "--schedules", "100"]


def _install(root: Path, *, entry_points: bool) -> Path:
    """``userpkg`` under ``root`` (for PYTHONPATH), with a ``*.dist-info`` carrying the
    ``wddmemu.scenarios`` / ``wddmemu.drivers`` entry points if asked."""
    pkg = root / "userpkg"
    pkg.mkdir(parents=True)
    for f in SRC.glob("*.py.txt"):
        (pkg / f.name.removesuffix(".txt")).write_text(f.read_text(encoding="utf-8"))
    if entry_points:
        info = root / "userpkg-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: userpkg\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(
            "[wddmemu.scenarios]\nuser = userpkg.scenario\n\n"
            "[wddmemu.drivers]\nuserdrv = userpkg.driver:make\n")
    return root


def _run(argv: list[str], cwd: Path, pythonpath: Path | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _explore_and_save(argv: list[str], cwd: Path, path: Path, rule: str = "RACE") -> Path:
    p = _run([str(EXE), *argv, "--save-dir", str(cwd / "failures")], cwd, path)
    assert p.returncode == 1, p.stdout + p.stderr
    assert rule in p.stdout
    files = sorted((cwd / "failures").glob("*.json"))
    assert len(files) == 1
    return files[0]


def test_the_user_package_imports_no_private_name() -> None:
    for f in SRC.glob("*.py.txt"):
        tree = ast.parse(f.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or "", *(a.name for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                names = [node.attr] if node.value.id in ("kmd", "vt", "wddmemu", "umd") else []
            else:
                continue
            private = [n for n in names for part in n.split(".") if part.startswith("_")]
            assert not private, f"{f.name} uses private names {private}"
    text = (SRC / "driver.py.txt").read_text(encoding="utf-8")
    assert "ReferenceDevice" not in text and "ReferenceDriver" not in text


@pytest.mark.slow  # end to end through subprocesses: CI runs it (pytest --slow)
def test_load_explore_replay_and_pytest_regression(tmp_path: Path) -> None:
    path = _install(tmp_path / "site", entry_points=False)
    work = tmp_path / "work"
    work.mkdir()
    f = _explore_and_save(["--load", "userpkg", *EXPLORE], work, path)
    doc = json.loads(f.read_text())
    assert doc["version"] == 2 and doc["load"] == {"modules": ["userpkg"], "distributions": []}
    assert doc["spec"]["driver"] == "userdrv" and doc["failure"]["rule"] == "RACE"
    assert doc["replay"] == "wddmemu --load userpkg replay {file}"
    # replay with the module loaded reproduces it
    p = _run([str(EXE), "--load", "userpkg", "replay", str(f)], work, path)
    assert p.returncode == 1 and "reproduced: RACE" in " ".join(p.stdout.split()), p.stdout
    # the same file without --load: refused in one line that says how to allow it
    p = _run([str(EXE), "replay", str(f)], work, path)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [
        f"wddmemu: error: {f} names module 'userpkg', which was not loaded: rerun with "
        "--load userpkg (or --allow-load userpkg) if you trust it"]
    p = _run([str(EXE), "--allow-load", "userpkg", "replay", str(f)], work, path)
    assert p.returncode == 1, p.stdout + p.stderr
    # the lock the driver option adds makes the scenario clean
    p = _run([str(EXE), "--load", "userpkg", *EXPLORE, "--driver-opt", "locked=true",
              "--save-dir", str(work / "none")], work, path)
    assert p.returncode == 0, p.stdout + p.stderr
    # pytest replays the saved file as a regression test: it fails while the race is there
    p = _run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--wddmemu-load",
              "userpkg", "--wddmemu-failures", str(f.parent), "-q", "--rootdir", str(work)],
             work, path)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "1 failed" in p.stdout and "reproduced: RACE" in p.stdout
    assert "replay: wddmemu --load userpkg replay" in p.stdout


@pytest.mark.slow
def test_entry_points_without_load(tmp_path: Path) -> None:
    path = _install(tmp_path / "site", entry_points=True)
    work = tmp_path / "work"
    work.mkdir()
    p = _run([str(EXE), "drivers"], work, path)
    assert p.returncode == 0 and "userdrv" in p.stdout
    p = _run([str(EXE), "scenarios"], work, path)
    assert p.returncode == 0 and SCENARIO in p.stdout
    f = _explore_and_save(EXPLORE, work, path)
    doc = json.loads(f.read_text())
    assert doc["load"] == {"modules": [], "distributions": ["userpkg"]}
    p = _run([str(EXE), "replay", str(f)], work, path)
    assert p.returncode == 1 and "reproduced: RACE" in " ".join(p.stdout.split()), p.stdout
    # without the distribution installed the file is refused, and says what is missing
    p = _run([str(EXE), "replay", str(f)], work, None)
    assert p.returncode == 2
    assert "needs the distribution 'userpkg'" in p.stderr and "install it" in p.stderr
    p = _run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--wddmemu-failures",
              str(f.parent), "-q", "--rootdir", str(work)], work, path)
    assert p.returncode == 1 and "1 failed" in p.stdout and "reproduced: RACE" in p.stdout


@pytest.mark.slow  # a long one (docs/testing.md); CI runs it with --slow
@pytest.mark.parametrize("driver", ["marker_mod:make", "this:make"])
def test_a_failure_file_never_imports_by_itself(tmp_path: Path, driver: str) -> None:
    """A failure file naming ``MODULE:ATTR`` or listing a module must not import it: the
    module's import side effect (a marker file; the Zen of Python for ``this``) never happens
    unless the user allows the module."""
    site = tmp_path / "site"
    site.mkdir()
    marker = tmp_path / "imported"
    (site / "marker_mod.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n"
        "def make(driver_version=None):\n    import umd\n    return umd.make_driver()\n")
    work = tmp_path / "work"
    work.mkdir()
    f = _explore_and_save(["explore", "dynamic-vb-ring", "--driver", "track-in-lockasync",
                           "--schedules", "1", "--no-minimise"], work, site, "LA-13")
    doc = json.loads(f.read_text())
    doc["spec"]["driver"] = driver
    doc["load"]["modules"] = [driver.partition(":")[0]]
    f.write_text(json.dumps(doc))
    for argv in (["replay", str(f)], ["--load", "scenarios", "replay", str(f)]):
        p = _run([str(EXE), *argv], work, site)
        assert p.returncode == 2, p.stdout + p.stderr
        assert len(p.stderr.strip().splitlines()) == 1 and "--allow-load" in p.stderr
        assert not marker.exists() and "Beautiful is better" not in p.stdout + p.stderr
    del doc["load"]  # a listed module is not the only way in: the driver name alone
    f.write_text(json.dumps(doc))
    p = _run([str(EXE), "replay", str(f)], work, site)
    assert p.returncode == 2 and "which was not loaded" in p.stderr
    assert not marker.exists() and "Beautiful is better" not in p.stdout + p.stderr
    p = _run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--wddmemu-failures",
              str(f.parent), "-q", "--rootdir", str(work)], work, site)
    assert p.returncode == 1 and "which was not loaded" in p.stdout
    assert not marker.exists() and "Beautiful is better" not in p.stdout
    if driver.startswith("marker_mod"):
        # allowed by name: now it loads (and the reference-like driver replays clean)
        p = _run([str(EXE), "--allow-load", "marker_mod", "replay", str(f)], work, site)
        assert marker.exists() and p.returncode in (0, 1), p.stdout + p.stderr
