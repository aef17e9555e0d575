"""Every way to explore bounds a schedule's wall time (issue 14's watchdog, found missing by a
third-party driver on 7 December): ``ExploreOptions.timeout`` (60 s by default, as explore's
``--timeout``), the pytest fixture's ``check``/``explore``/``acheck`` ``timeout=``, and a
campaign's ``timeout`` key and ``--timeout``. A driver in a CPU loop is then a ``hang`` finding,
not a call that never returns.

The spinning driver here gives up after :data:`GIVE_UP` seconds, once a process, so that a
missing watchdog fails these tests instead of hanging the suite."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from umd import ReferenceDevice, ReferenceDriver
from wddmemu import _cli
from wddmemu._campaign import parse_campaign
from wddmemu._errors import SpecError
from wddmemu._explore import ExploreOptions, explore
from wddmemu._runner import RunSpec

#: how long the driver spins when nothing stops it: far past any limit below
GIVE_UP = 30.0
LIMIT = 0.3

SPIN_MODULE = f'''
import time
from umd import ReferenceDevice, ReferenceDriver
gave_up = []
class Spin(ReferenceDevice):
    async def pfn_rename(self, args):
        if not gave_up:  # a CPU loop: no scheduling point, only the watchdog ends it in time
            end = time.monotonic() + {GIVE_UP}
            while time.monotonic() < end:
                pass
            gave_up.append(True)
        return await super().pfn_rename(args)
def make(driver_version=None):
    return ReferenceDriver(device_class=Spin)
'''

_gave_up: list[bool] = []


class _Spin(ReferenceDevice):
    async def pfn_rename(self, args: Any) -> int:
        if not _gave_up:
            end = time.monotonic() + GIVE_UP
            while time.monotonic() < end:
                pass
            _gave_up.append(True)
        return await super().pfn_rename(args)


def _spinning() -> ReferenceDriver:
    return ReferenceDriver(device_class=_Spin)


@pytest.fixture(autouse=True)
def _spin_again() -> None:
    _gave_up.clear()


def _spec(**kw: Any) -> RunSpec:
    return RunSpec("dynamic-vb-ring", driver=_spinning, **kw)


def test_explore_options_bound_each_schedule(backend: str) -> None:
    t0 = time.monotonic()
    res = explore(_spec(backend=backend),
                  ExploreOptions(schedules=3, strategy="random", timeout=LIMIT, minimise=False))
    assert time.monotonic() - t0 < GIVE_UP and not _gave_up
    [fd] = res.failures
    assert fd.finding.rule == "hang" and "was in DDI Rename" in fd.finding.message
    assert f"within {LIMIT:g} s of wall time" in fd.finding.message


def test_explore_options_default_to_explores_60_seconds() -> None:
    assert ExploreOptions().timeout == 60.0
    assert ExploreOptions(timeout=0).timeout == 0  # off


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), True, "60", None, 10**9])
def test_a_bad_timeout_is_a_one_line_spec_error(bad: object) -> None:
    with pytest.raises(SpecError, match=r"^timeout takes seconds 0\.\.31,622,400 \(0: off\)"):
        ExploreOptions(timeout=bad)  # type: ignore[arg-type]


def test_a_campaign_bounds_its_cells_by_the_files_timeout_or_the_option(
        tmp_path: Path, monkeypatch, capsys) -> None:
    (tmp_path / "camp_spin.py").write_text(SPIN_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    camp = tmp_path / "c.toml"
    camp.write_text('[campaign]\nscenarios = ["dynamic-vb-ring"]\ndrivers = ["camp_spin:make"]\n'
                    'strategies = ["random"]\nschedules = 2\nminimise = false\n'
                    f"timeout = {LIMIT}\n")
    out = tmp_path / "r.json"
    t0 = time.monotonic()
    code = _cli.main(["--allow-load", "camp_spin", "campaign", str(camp), "--save-dir",
                      str(tmp_path / "s"), "--json", str(out)])
    assert time.monotonic() - t0 < GIVE_UP
    assert code == 1, capsys.readouterr()
    [cell] = orjson.loads(out.read_bytes())["cells"]
    assert cell["failures"][0]["rule"] == "hang"
    # --timeout replaces the file's: 0 is off, so the spin runs until it gives up
    assert parse_campaign({"campaign": {"scenarios": ["lock-flags"]}}).timeout == 60.0
    camp.write_text(camp.read_text().replace(f"timeout = {LIMIT}", "timeout = 0"))
    code = _cli.main(["--allow-load", "camp_spin", "campaign", str(camp), "--timeout",
                      str(LIMIT), "--save-dir", str(tmp_path / "s2"), "--json", str(out)])
    assert code == 1
    assert orjson.loads(out.read_bytes())["cells"][0]["failures"][0]["rule"] == "hang"


@pytest.mark.parametrize("value", ["-1", '"soon"', "true", "nan", "1e12"])
def test_a_bad_campaign_timeout_is_one_line(value: str) -> None:
    import tomllib

    doc = tomllib.loads(f'[campaign]\nscenarios = ["lock-flags"]\ntimeout = {value}\n')
    with pytest.raises(SpecError, match=r"^f: timeout takes seconds 0\.\.31,622,400"):
        parse_campaign(doc, "f")


def test_the_fixture_bounds_check_explore_and_acheck(pytester) -> None:
    pytester.makepyfile(camp_spin=SPIN_MODULE)
    pytester.makepyfile(
        f"""
        import pytest

        def test_check_is_a_hang(wddmemu):
            wddmemu.check("dynamic-vb-ring", driver="camp_spin:make", schedules=2,
                          timeout={LIMIT})

        def test_explore_is_a_hang(wddmemu):
            res = wddmemu.explore("dynamic-vb-ring", driver="camp_spin:make", schedules=2,
                                  timeout={LIMIT})
            assert res.failures[0].finding.rule == "hang"

        @pytest.mark.trio
        async def test_acheck_is_a_hang(wddmemu):
            await wddmemu.acheck("dynamic-vb-ring", driver="camp_spin:make", schedules=2,
                                 timeout={LIMIT})

        def test_a_bad_timeout(wddmemu):
            wddmemu.check("dynamic-vb-ring", timeout=-1)
        """
    )
    t0 = time.monotonic()
    result = pytester.runpytest("-p", "trio", "-q", "-p", "no:cacheprovider")
    assert time.monotonic() - t0 < GIVE_UP
    result.assert_outcomes(passed=1, failed=3)
    result.stdout.fnmatch_lines(["*hang at step*", "*hang at step*",
                                 "*wddmemu: timeout takes seconds 0..31,622,400 (0: off)*"])
