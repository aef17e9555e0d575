"""A failure file records only the distributions and ``--load`` modules that provide the
scenario and the driver its run used: an unrelated installed package (one that merely has
wddmemu entry points) is not listed, so the file replays on a machine without it. A file that
lists more (saved by an older wddmemu) still replays where those are installed, and is refused
in one line where one is missing. (A user's report: every file listed every installed
package.)

The distributions are real ``*.dist-info`` directories on ``sys.path``, loaded through the real
entry-point machinery, in this process (fast); the loader's state is restored afterwards.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

import scenarios
import wddmemu
from tests.support.loading import loading_state_kept
from wddmemu import _cli, _drivers, _loading
from wddmemu._explore import Finding, Found, failure_document, save_failure
from wddmemu._runner import RunSpec

SCENARIO = ("from scenarios import scenario\n"
            "@scenario({name!r}, 'one expectation that fails')\n"
            "async def body(ctx):\n"
            "    ctx.expect(False, 'always')\n")
DRIVER = ("import umd, wddmemu\n"
          "def make(driver_version=None):\n"
          "    return umd.ReferenceDriver()\n")


def _dist(site: Path, dist: str, pkg: str, scenario: str, driver: str | None) -> None:
    """Package ``pkg`` (a scenario, maybe a driver) and distribution ``dist`` with entry points."""
    (site / pkg).mkdir()
    (site / pkg / "__init__.py").write_text("")
    (site / pkg / "scen.py").write_text(SCENARIO.format(name=scenario))
    eps = f"[wddmemu.scenarios]\n{pkg} = {pkg}.scen\n"
    if driver:
        (site / pkg / "drv.py").write_text(DRIVER)
        eps += f"\n[wddmemu.drivers]\n{driver} = {pkg}.drv:make\n"
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(eps)


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Two installed distributions: ``bi-used`` (scenario ``bi-used-scenario``, driver
    ``bi-used-driver``) and ``bi-unrelated`` (scenario ``bi-other``); entry points loaded."""
    site = tmp_path / "site"
    site.mkdir()
    _dist(site, "bi-used", "bi_used_pkg", "bi-used-scenario", "bi-used-driver")
    _dist(site, "bi-unrelated", "bi_unrelated_pkg", "bi-other", None)
    monkeypatch.syspath_prepend(str(site))
    with loading_state_kept():
        _loading._entry_points_done = False  # load them again, the two fakes among them
        _drivers.load_entry_points()
        yield site
    for s in ("bi-used-scenario", "bi-other", "bi-loaded"):
        scenarios.REGISTRY.unregister(s)
    wddmemu.DRIVERS.unregister("bi-used-driver")
    for m in [m for m in sys.modules if m.startswith(("bi_used_pkg", "bi_unrelated_pkg",
                                                      "bi_loaded_mod"))]:
        del sys.modules[m]


def _load(spec: RunSpec) -> dict[str, Any]:
    found = Found(0, spec.with_decisions((0,)), Finding("EXPECT", 1, "m", "app"), spec)
    return failure_document(found)["load"]


def test_a_built_in_run_records_no_distribution(installed: Path) -> None:
    names = [d.name for d in _loading.distributions()]
    assert "bi-used" in names and "bi-unrelated" in names  # both are loaded
    assert _load(RunSpec("dynamic-vb-ring", driver="no-driver-lock")) == {
        "modules": [], "distributions": []}


def test_a_run_records_the_distributions_it_used_and_no_other(installed: Path) -> None:
    assert _load(RunSpec("bi-used-scenario")) == {"modules": [], "distributions": ["bi-used"]}
    assert _load(RunSpec("lock-flags", driver="bi-used-driver")) == {
        "modules": [], "distributions": ["bi-used"]}
    assert _load(RunSpec("bi-other", driver="bi-used-driver")) == {
        "modules": [], "distributions": ["bi-unrelated", "bi-used"]}  # in load order


def test_a_load_module_is_recorded_only_when_the_run_uses_it(installed: Path,
                                                             tmp_path: Path) -> None:
    (installed / "bi_loaded_mod.py").write_text(SCENARIO.format(name="bi-loaded"))
    _drivers.load_module("bi_loaded_mod")
    assert _load(RunSpec("lock-flags")) == {"modules": [], "distributions": []}
    assert _load(RunSpec("bi-loaded", driver="bi-used-driver")) == {
        "modules": ["bi_loaded_mod"], "distributions": ["bi-used"]}
    found = Found(0, RunSpec("lock-flags").with_decisions((0,)),
                  Finding("EXPECT", 1, "m", "app"), RunSpec("lock-flags"))
    assert failure_document(found)["replay"] == "wddmemu replay {file}"  # no needless --load
    found = Found(0, RunSpec("bi-loaded").with_decisions((0,)),
                  Finding("EXPECT", 1, "m", "app"), RunSpec("bi-loaded"))
    assert failure_document(found)["replay"] == "wddmemu --load bi_loaded_mod replay {file}"


def test_an_old_file_listing_more_replays_where_installed_and_is_refused_where_not(
        installed: Path, tmp_path: Path, capsys) -> None:
    spec = RunSpec("bi-used-scenario")
    found = Found(0, spec.with_decisions((0,)), Finding("EXPECT", 1, "m", "app"), spec)
    path = save_failure(found, tmp_path / "f")
    assert _cli.main(["replay", str(path)]) in (0, 1)  # it runs: nothing refused it
    doc = orjson.loads(path.read_bytes())
    doc["load"]["distributions"] = ["bi-used", "bi-unrelated"]  # what an older wddmemu wrote
    path.write_bytes(orjson.dumps(doc))
    capsys.readouterr()
    assert _cli.main(["replay", str(path)]) in (0, 1)
    assert "needs the distribution" not in capsys.readouterr().err
    doc["load"]["distributions"] = ["bi-used", "bi-not-installed"]
    path.write_bytes(orjson.dumps(doc))
    assert _cli.main(["replay", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs the distribution 'bi-not-installed'" in err
