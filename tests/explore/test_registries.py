"""The registries user code extends: drivers (with options) and scenarios (with ranges)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

import scenarios
import umd
import wddmemu
from scenarios import Param
from vthreads.registry import Registry
from wddmemu import _cli


@pytest.fixture
def counting_driver():
    made: list[dict] = []

    @wddmemu.driver("test-counting", rules=("RACE",), summary="counts its builds")
    def make(driver_version=None, heap_kib: int = 1024, verbose: bool = False):
        made.append({"driver_version": driver_version, "heap_kib": heap_kib,
                     "verbose": verbose})
        return umd.ReferenceDriver(umd.DriverConfig(heap_bytes=heap_kib * 1024))

    yield made
    wddmemu.DRIVERS.unregister("test-counting")


def test_a_registered_factory_gets_typed_driver_options(counting_driver, capsys) -> None:
    assert wddmemu.DRIVERS.entry("test-counting").rules == ("RACE",)
    argv = ["run", "lock-flags", "--driver", "test-counting", "--driver-opt", "heap_kib=0x800",
            "--driver-opt", "verbose=yes", "--ddi-version", "0xB"]
    assert _cli.main(argv) == 0
    assert counting_driver[-1] == {"driver_version": 0xB, "heap_kib": 2048, "verbose": True}
    capsys.readouterr()
    assert _cli.main(["run", "lock-flags", "--driver", "test-counting", "--driver-opt",
                      "colour=red"]) == 2
    assert "driver test-counting has no option 'colour' (options: heap_kib, verbose)" in (
        capsys.readouterr().err)
    assert _cli.main(["drivers"]) == 0
    assert "test-counting" in capsys.readouterr().out


def test_the_reference_takes_driver_config_fields_as_options() -> None:
    drv = wddmemu.resolve_driver("reference", 0xA, {"heap_bytes": "4096",
                                                    "implements": "lock_async,unlock_async"})
    assert drv.config == umd.DriverConfig(driver_version=0xA, heap_bytes=4096,
                                          implements=("lock_async", "unlock_async"))
    with pytest.raises(wddmemu.SpecError, match="bad driver option: command_buffer_size"):
        wddmemu.resolve_driver("reference", None, {"command_buffer_size": "1"})


def test_registering_a_taken_name_is_refused() -> None:
    # a ValueError, as docs/scenarios.md says and as a scenario's (h10 F17: it was a KeyError)
    with pytest.raises(ValueError, match=r"^driver reference is registered twice \(first by "
                                         r"umd\): pick another name$"):
        wddmemu.register_driver("reference", umd.ReferenceDriver)
    with pytest.raises(ValueError, match="driver reference is registered twice"):
        wddmemu.driver("reference")(umd.ReferenceDriver)
    assert wddmemu.DRIVERS.entry("reference").module == "umd"  # the first one stays


class _NotAFactory:
    async def open_adapter(self, args: object) -> int:
        return 0


@pytest.mark.parametrize("factory,says", [
    (None, "None"), (5, "int"), ("umd:ReferenceDriver", "str"),
    (_NotAFactory(), "a driver object")])
def test_registering_a_non_callable_is_one_line_saying_what_to_pass(factory: object,
                                                                   says: str) -> None:
    """h10 F17: None, 5 or a driver object were accepted, and the run said "unknown driver"."""
    for register in (lambda: wddmemu.register_driver("test-noncallable", factory),
                     lambda: wddmemu.driver("test-noncallable")(factory)):
        with pytest.raises(ValueError) as ei:
            register()
        assert str(ei.value) == (
            "driver test-noncallable: register a factory f(driver_version=None, **options) "
            f"that returns a driver, or a driver class, not {says}")
        assert not isinstance(ei.value, KeyError)
    assert "test-noncallable" not in wddmemu.DRIVERS


async def _async_factory(driver_version: object = None) -> umd.ReferenceDriver:
    return umd.ReferenceDriver()


def test_registering_an_async_factory_is_refused_in_one_line() -> None:
    """h10: an ``async def`` factory was accepted, and every run got a coroutine for a driver."""
    for register in (lambda: wddmemu.register_driver("test-asyncfac", _async_factory),
                     lambda: wddmemu.driver("test-asyncfac")(_async_factory)):
        with pytest.raises(ValueError) as ei:
            register()
        assert str(ei.value) == ("driver test-asyncfac: a factory is a plain callable (def, "
                                 "not async def) that returns a driver")
    assert "test-asyncfac" not in wddmemu.DRIVERS


@pytest.mark.parametrize("kw,says", [
    ({"rules": "RACE"}, 'rules= takes a tuple of rule ids like ("RACE",), not str'),
    ({"rules": (5,)}, "rules= takes a tuple of rule ids"),
    ({"summary": 5}, "summary= takes one line of text, not int"),
    ({"summary": "a\nb"}, "summary= takes one line of text (wddmemu drivers prints it")])
def test_registering_bad_rules_or_summary_is_refused(kw: dict, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"driver test-badkw: {says}")):
        wddmemu.register_driver("test-badkw", umd.ReferenceDriver, **kw)
    assert "test-badkw" not in wddmemu.DRIVERS


def test_scenarios_are_a_registry_with_ranged_parameters() -> None:
    assert isinstance(scenarios.REGISTRY, Registry)
    entry = scenarios.REGISTRY.entry("lock-flags")
    assert entry.summary == scenarios.get("lock-flags").description
    with pytest.raises(KeyError, match="run 'wddmemu scenarios'"):
        scenarios.get("nope")

    @scenarios.scenario("test-ranged", "a ranged parameter", n=Param(int, 2, "n", range=(1, 4)))
    async def ranged(ctx, n):
        pass

    try:
        sc = scenarios.get("test-ranged")
        assert sc.resolve({"n": "3"}) == {"n": 3}
        with pytest.raises(ValueError, match=r"parameter n takes 1\.\.4, not 9"):
            sc.resolve({"n": "9"})
        with pytest.raises(ValueError, match="registered twice"):
            scenarios.scenario("test-ranged", "again")(ranged)
    finally:
        scenarios.REGISTRY.unregister("test-ranged")
    with pytest.raises(ValueError, match=r"scenario test-ranged-str: parameter n is str, but "
                                         r"range=.lo, hi. bounds an int parameter only"):
        scenarios.scenario("test-ranged-str", "d", n=Param(str, "x", range=(1, 2)))(ranged)
    # a default outside its range is refused where the scenario and parameter have names
    with pytest.raises(ValueError, match=r"scenario test-ranged-bad: the default of parameter "
                                         r"n takes 1\.\.2, not 5"):
        scenarios.scenario("test-ranged-bad", "d", n=Param(int, 5, range=(1, 2)))(ranged)
    assert "test-ranged-bad" not in scenarios.REGISTRY
    # a name goes on command lines: one word of printable characters
    for bad in ("has space", "two\nlines", "", "tab\there", "\x1b[31m"):
        with pytest.raises(ValueError, match="one word of printable characters"):
            scenarios.scenario(bad, "d")(ranged)
        with pytest.raises(ValueError, match="one word of printable characters"):
            wddmemu.register_driver(bad, umd.ReferenceDriver)


def test_every_built_in_int_parameter_has_a_range() -> None:
    # primary-surface's frames had none: -p frames=-5 ran and failed its own expectation
    # (exit 1, a finding) where it is bad input (exit 2; fuzzing, 7 December)
    from scenarios.builtin import BUILTIN_NAMES

    unranged = [f"{name}.{p}" for name in BUILTIN_NAMES
                for p, param in scenarios.get(name).params.items()
                if param.type is int and param.range is None]
    assert unranged == []
    with pytest.raises(ValueError, match=r"parameter frames takes 1\.\.1000, not -5"):
        scenarios.get("primary-surface").resolve({"frames": "-5"})


def test_check_program_is_public_and_returns_a_result() -> None:
    import vthreads as vt
    from tests.engine.test_engine import _lock_both, lock_order_inversion

    async def same_order() -> None:
        a, b = vt.Mutex("A"), vt.Mutex("B")
        for t in [vt.spawn("t1", _lock_both, a, b), vt.spawn("t2", _lock_both, a, b)]:
            await t.join()

    clean = wddmemu.check_program(same_order, schedules=20)
    assert clean.ok and clean.runs == 20 and clean.replay == ""
    bad = wddmemu.check_program(lock_order_inversion, schedules=50)
    assert not bad.ok and bad.run.failure.kind == "deadlock"
    assert bad.replay.startswith("Engine('replay', decisions=[")
    assert f"schedule {bad.index} (random, seed {bad.seed}) failed" in bad.describe()
    with pytest.raises(wddmemu.SpecError, match="unknown backend"):
        wddmemu.check_program(same_order, backend="curio")


def test_a_module_run_again_replaces_its_own_entries_and_only_those(tmp_path: Path,
                                                                    monkeypatch) -> None:
    """``importlib.reload`` (autoreload, Dask's upload_file of a module imported already) runs
    the module's registrations again: the same definitions replace their entries; another
    definition of a taken name is still refused."""
    import importlib
    import sys
    import textwrap

    import scenarios

    src = textwrap.dedent('''
        import umd
        import wddmemu
        from scenarios import scenario

        @wddmemu.driver("test-reloaded-drv")
        def make(driver_version=None):
            return umd.ReferenceDriver(umd.DriverConfig(driver_version=driver_version or 0xB))

        @scenario("test-reloaded-scenario", "a scenario of a module that is reloaded")
        async def run(ctx):
            await ctx.device()
        ''')
    (tmp_path / "wddmemu_reloaded_mod.py").write_text(src)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        mod = importlib.import_module("wddmemu_reloaded_mod")
        first = wddmemu.DRIVERS["test-reloaded-drv"]
        mod = importlib.reload(mod)
        assert wddmemu.DRIVERS["test-reloaded-drv"] is mod.make is not first
        assert scenarios.REGISTRY["test-reloaded-scenario"].fn is mod.run
        (tmp_path / "wddmemu_other_mod.py").write_text(src.replace("def make", "def other"))
        with pytest.raises(ValueError, match="driver test-reloaded-drv is registered twice "
                                             r"\(first by wddmemu_reloaded_mod\)"):
            importlib.import_module("wddmemu_other_mod")
    finally:
        wddmemu.DRIVERS.unregister("test-reloaded-drv")
        scenarios.REGISTRY.unregister("test-reloaded-scenario")
        for m in ("wddmemu_reloaded_mod", "wddmemu_other_mod"):
            sys.modules.pop(m, None)


VARIANT_MODULE = '''
import umd

@umd.VARIANT_REGISTRY.register("test-h7-newest", rules=("LA-13", "DATA"))
class RenameToNewest(umd.DriverPolicy):
    """Rename picks the newest instance, not the cookie's."""

    def rename_target(self, device, cookie, tracking):
        return tracking.newest
'''


def test_a_variant_a_user_module_registers_is_a_driver_by_name(tmp_path: Path, capsys) -> None:
    # DRIVERS copied umd's variants once, when it was imported, before --load ran: the
    # variant docs/umd.md registers was an unknown driver on the command line and in pytest
    from tests.support.loading import loading_state_kept
    from wddmemu._drivers import DRIVERS

    (tmp_path / "h7variant.py").write_text(VARIANT_MODULE)
    try:
        with loading_state_kept():
            assert _cli.main(["--load", str(tmp_path / "h7variant.py"), "run",
                              "dynamic-vb-ring", "--driver", "test-h7-newest"]) == 1
            assert "RN-4" in capsys.readouterr().out
            assert DRIVERS.entry("test-h7-newest").rules == ("LA-13", "DATA")
            assert _cli.main(["drivers"]) == 0
            assert "test-h7-newest" in capsys.readouterr().out
    finally:
        for reg in (DRIVERS, umd.VARIANT_REGISTRY):
            if "test-h7-newest" in reg:
                reg.unregister("test-h7-newest")
        sys.modules.pop("h7variant", None)


def test_bugs_lists_the_rule_ids_a_bug_was_registered_with(capsys) -> None:
    # the listing read name -> summary views and took rule ids from the summary's text, so a
    # user's bug registered with rules=(...) showed "-" (docs/runtime.md, docs/kmd.md)
    import kmd
    import runtime

    runtime.RUNTIME_BUG_REGISTRY.register("test-h7-rt-bug", rules=("RN-1",),
                                          summary="renames twice, mine")(
        type("Mine", (runtime.RuntimeHooks,), {}))
    kmd.KERNEL_BUG_REGISTRY.register("test-h7-k-bug", rules=("KL-21",),
                                     summary="busy for ever")(type("K", (kmd.KernelHooks,), {}))
    try:
        assert _cli.main(["bugs"]) == 0
        rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()
                if line.startswith("test-h7-")}
        assert rows["test-h7-rt-bug"][1:3] == ["runtime", "RN-1"]
        assert rows["test-h7-k-bug"][1:3] == ["kernel", "KL-21"]
    finally:
        runtime.RUNTIME_BUG_REGISTRY.unregister("test-h7-rt-bug")
        kmd.KERNEL_BUG_REGISTRY.unregister("test-h7-k-bug")


@pytest.mark.parametrize("name", ["umd", "runtime", "scenarios.mine"])
def test_load_of_a_name_an_emulator_package_already_has_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Sweep G D3: ``--load umd`` with a ``./umd.py`` beside the user answered with the
    emulator's ``umd`` (imported already): nothing was loaded, and nothing said so. It is
    refused in one line, as ``--load ./umd.py`` is; a name nothing imported yet still loads."""
    from wddmemu import SpecError, _loading
    from wddmemu._loading import load_module

    for kept in ("_loaded", "_load_args", "_allowed"):  # this test's loads stay in it
        monkeypatch.setattr(_loading, kept, list(getattr(_loading, kept)))

    top = name.partition(".")[0]
    (tmp_path / f"{top}.py").write_text("raise SystemExit('must not be imported')\n")
    fresh = f"h8fresh_{top}"
    (tmp_path / f"{fresh}.py").write_text("LOADED = True\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    with pytest.raises(SpecError, match=rf"^--load {name}: a module named '{top}' is imported "
                                        rf"already \(from .*\), so .*{top}\.py would not be "
                                        r"loaded: rename it$"):
        load_module(name)
    load_module(fresh)
    assert sys.modules[fresh].LOADED
