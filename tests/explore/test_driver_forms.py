"""How a driver given as a factory, a class or an object meets a scenario's declared DDI
version, many schedules, and async code (docs/scenarios.md, "Writing a driver").

* A scenario's ``ddi_version=`` is a default, not a request: a driver object, or a factory
  without ``driver_version``, runs at its own version; only an explicit ``ddi_version`` is
  refused by such a driver.
* A driver object serves one run: explore/check refuse it, and a second run of the same object
  is refused, so schedule N of an exploration is always schedule N run alone.
* An async factory is refused in one line, without a "never awaited" warning.
"""

from __future__ import annotations

import gc
import io
import re
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

import scenarios
import umd
import wddmemu
from runtime import d3d9
from scenarios import Param
from wddmemu import _cli

SCENARIO = "test-forms-versioned"


@pytest.fixture(autouse=True)
def versioned_scenario() -> Iterator[None]:
    """A scenario declaring ``ddi_version=0xB``, as the docs' example does."""

    @scenarios.scenario(SCENARIO, "declares ddi_version=0xB", ddi_version=0xB,
                        frames=Param(int, 1, "frames", range=(1, 4)))
    async def versioned(ctx: scenarios.ScenarioContext, frames: int) -> None:
        dev = await ctx.device()
        vb = await dev.create_vertex_buffer(64)
        await dev.set_stream_source(0, vb, 0, 16)
        for f in range(frames):
            view = await dev.lock(vb, 0, 64, d3d9.D3DLOCK_DISCARD)
            view.write(0, bytes([f + 1]) * 64)
            await dev.unlock(vb)
            await dev.draw_primitive(d3d9.D3DPT_TRIANGLELIST, 0, 4)
            await dev.present()

    yield
    scenarios.REGISTRY.unregister(SCENARIO)


def make_noversion() -> Any:
    """A factory without ``driver_version``: the reference at its own version (0xC)."""
    return umd.ReferenceDriver()


def _version(res: wddmemu.ScenarioResult) -> int:
    return res.devices[0].driver_version


# ---- 1. the scenario's declared version is a default -------------------------------------------


def test_a_driver_object_runs_a_versioned_scenario_at_its_own_version() -> None:
    drv = umd.ReferenceDriver(umd.DriverConfig(driver_version=0xC))
    res = wddmemu.run(wddmemu.RunSpec(SCENARIO, driver=drv))
    assert res.ok and _version(res) == 0xC  # what its OpenAdapter reports
    # ddi_version=None is not a request either
    res = wddmemu.run(wddmemu.RunSpec(SCENARIO, driver=umd.ReferenceDriver(), ddi_version=None))
    assert res.ok
    with pytest.raises(wddmemu.SpecError, match=r"is a driver object; it cannot take "
                                                r"--ddi-version"):
        wddmemu.run(wddmemu.RunSpec(SCENARIO, driver=umd.ReferenceDriver(), ddi_version=0xB))


def test_a_factory_without_driver_version_runs_a_versioned_scenario(capsys) -> None:
    wddmemu.register_driver("test-forms-noversion", make_noversion)
    try:
        res = wddmemu.run(wddmemu.RunSpec(SCENARIO, driver="test-forms-noversion"))
        assert res.ok and _version(res) == 0xC
        assert _cli.main(["run", SCENARIO, "--driver", "test-forms-noversion"]) == 0
        capsys.readouterr()
        # an explicit request is still refused, in one line
        assert _cli.main(["run", SCENARIO, "--driver", "test-forms-noversion",
                          "--ddi-version", "0xB"]) == 2
        assert capsys.readouterr().err.strip().splitlines() == [
            "wddmemu: error: driver test-forms-noversion takes no driver_version "
            "(drop --ddi-version)"]
    finally:
        wddmemu.DRIVERS.unregister("test-forms-noversion")


def test_drivers_that_take_a_version_get_the_scenario_default() -> None:
    got: list[int | None] = []

    def make(driver_version: int | None = None) -> Any:
        got.append(driver_version)
        return umd.ReferenceDriver(umd.DriverConfig(driver_version=driver_version or 0xC))

    assert _version(wddmemu.run(wddmemu.RunSpec(SCENARIO, driver=make))) == 0xB
    assert _version(wddmemu.run(wddmemu.RunSpec(SCENARIO, driver=make, ddi_version=0xA))) == 0xA
    assert got == [0xB, 0xA]
    assert _version(wddmemu.run(wddmemu.RunSpec(SCENARIO, driver=umd.ReferenceDriver))) == 0xB


def test_a_factory_whose_signature_cannot_be_read_takes_the_version_and_no_option() -> None:
    """A callable ``inspect.signature`` cannot read (a C callable, a broken ``__signature__``)
    is taken to take ``driver_version`` and to take no option: the call says which."""
    got: list[dict[str, Any]] = []

    class Opaque:
        __signature__ = 42  # inspect.signature raises TypeError on it

        def __call__(self, **kw: Any) -> Any:
            got.append(kw)
            return umd.ReferenceDriver(umd.DriverConfig(driver_version=kw["driver_version"]))

    assert _version(wddmemu.run(wddmemu.RunSpec(SCENARIO, driver=Opaque()))) == 0xB
    assert got == [{"driver_version": 0xB}]
    with pytest.raises(wddmemu.SpecError, match=r"has no option 'colour' \(options: none\)"):
        wddmemu.run(wddmemu.RunSpec(SCENARIO, driver=Opaque(), driver_options={"colour": 1}))


def test_a_signature_that_raises_is_one_that_cannot_be_read() -> None:
    """A ``__signature__`` property of the user's that raises is taken as unreadable, like a C
    callable's, not let out as the emulator's error (sweep E D2)."""
    class Raising:
        @property
        def __signature__(self) -> Any:
            raise RuntimeError("__signature__ raised")

        def __call__(self, **kw: Any) -> Any:
            return umd.ReferenceDriver(umd.DriverConfig(driver_version=kw["driver_version"]))

    assert _version(wddmemu.run(wddmemu.RunSpec(SCENARIO, driver=Raising()))) == 0xB


class _Lookups:
    """What a factory returned whose attribute lookup raises (sweep E D1)."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError("no open_adapter for you")


class _BaseRaise(BaseException):
    pass


def _raises(exc: BaseException) -> Any:
    def make() -> Any:
        raise exc
    return make


@pytest.mark.parametrize(("factory", "says"), [
    (_Lookups, "returned an object whose open_adapter lookup raised: RuntimeError: no "
               "open_adapter for you"),
    (_raises(_BaseRaise("its own")), "failed: _BaseRaise: its own"),
    (_raises(GeneratorExit("gen")), "failed: GeneratorExit: gen"),
], ids=["getattr", "own-base-exception", "generator-exit"])
def test_a_factory_raising_anything_but_ctrl_c_is_one_line_naming_its_line(
        factory: Any, says: str) -> None:
    """Whatever the factory raises, or the object it returns raises on lookup, is the user's:
    a SpecError with the user's line (sweep E D1, D3), never an internal error."""
    with pytest.raises(wddmemu.SpecError, match="driver factory .*" + says) as got:
        wddmemu.run(wddmemu.RunSpec(SCENARIO, driver=factory))
    assert "test_driver_forms.py:" in str(got.value)


def test_an_object_whose_lookup_raises_is_no_driver_object() -> None:
    from wddmemu._drivers import is_driver_object

    assert not is_driver_object(_Lookups()) and is_driver_object(umd.ReferenceDriver())


# ---- 2. a driver object serves one run ---------------------------------------------------------


def test_explore_and_check_refuse_a_driver_object() -> None:
    drv = umd.make_driver("no-driver-lock", driver_version=0xB)
    base = wddmemu.RunSpec("reentrant-lockasync", driver=drv)
    with pytest.raises(wddmemu.SpecError, match=r"^the driver ReferenceDriver\(\) is an object, "
                                                r"not a factory or class: .*pass its factory"):
        wddmemu.explore(base, wddmemu.ExploreOptions(schedules=5, strategy="random"))
    with pytest.raises(wddmemu.SpecError, match="is an object, not a factory"):
        wddmemu.check_spec(base, many=True)
    # the object was never run: it still serves its one run
    assert wddmemu.run(base).spec.driver is drv


def test_a_driver_object_that_ran_is_refused_a_second_run() -> None:
    drv = umd.ReferenceDriver()
    spec = wddmemu.RunSpec("lock-flags", driver=drv)
    assert wddmemu.run(spec).ok
    with pytest.raises(wddmemu.SpecError, match=r"has run a schedule already.*pass a factory"):
        wddmemu.run(spec)
    # so is a factory that hands out the same object every time
    same = umd.ReferenceDriver()
    assert wddmemu.run(wddmemu.RunSpec("lock-flags", driver=lambda: same)).ok
    with pytest.raises(wddmemu.SpecError, match="has run a schedule already"):
        wddmemu.run(wddmemu.RunSpec("lock-flags", driver=lambda: same))


def test_the_plugin_refuses_a_driver_object_in_one_line(pytester) -> None:
    pytester.makepyfile(
        """
        import umd

        def test_instance(wddmemu):
            wddmemu.check("lock-flags", driver=umd.ReferenceDriver(), schedules=3)
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "wddmemu: the driver ReferenceDriver() is an object, not a factory or class" in out
    assert "wddmemu/_" not in out
    assert "During handling" not in out  # one line, not a chain of two


def test_schedule_n_of_an_exploration_is_schedule_n_run_alone() -> None:
    """Each schedule gets a fresh driver from the factory: the failing schedules found late in
    an exploration replay, run alone from their own spec, to the same decisions and finding."""
    base = wddmemu.RunSpec("reentrant-lockasync", driver="no-driver-lock", ddi_version=0xB)
    res = wddmemu.explore(base, wddmemu.ExploreOptions(schedules=12, strategy="random",
                                                       stop_on_first=False, minimise=False))
    late = [fd for fd in res.failures if fd.index > 0]
    assert late, "the race should show in more than the first schedule"
    for fd in late:
        alone = wddmemu.run(fd.original_spec, stop_on_violation=True).run
        assert alone.decisions == fd.spec.decisions
        assert wddmemu.Finding.of(alone) == fd.finding
    # and a spec run twice is the same run, trace and all (device names included): each run
    # builds its own driver from the factory
    spec = wddmemu.RunSpec("reentrant-lockasync", strategy="random", seed=5)
    bufs = [io.BytesIO(), io.BytesIO()]
    for buf in bufs:
        wddmemu.run(spec, trace=buf)
    assert bufs[0].getvalue() == bufs[1].getvalue()


# ---- 3. an async factory -----------------------------------------------------------------------


async def make_async(driver_version: int | None = None) -> Any:
    return umd.ReferenceDriver()


def returns_a_coroutine(driver_version: int | None = None) -> Any:
    return make_async(driver_version)


@pytest.mark.parametrize("factory,says", [(make_async, "is async"),
                                          (returns_a_coroutine, "returned an awaitable")])
def test_an_async_factory_is_refused_without_a_warning(factory: Any, says: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a "coroutine ... was never awaited" would raise
        with pytest.raises(wddmemu.SpecError, match=f"{says}: a factory is a plain callable"):
            wddmemu.run(wddmemu.RunSpec("lock-flags", driver=factory))
        gc.collect()


def test_the_cli_refuses_an_async_factory_in_one_line(tmp_path, capsys) -> None:
    # refused when the --load module registers it (h10: it was accepted until the first run)
    mod = tmp_path / "asyncfac_mod.py"
    mod.write_text("import wddmemu\n\n\n@wddmemu.driver('test-forms-async')\n"
                   "async def make(driver_version=None):\n    return None\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _cli.main(["--load", str(mod), "run", "lock-flags", "--driver",
                          "test-forms-async"]) == 2
        gc.collect()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("wddmemu: error: ")
    assert ("driver test-forms-async: a factory is a plain callable (def, not async def) that "
            "returns a driver") in err[0] and "asyncfac_mod.py:4" in err[0]
    assert "test-forms-async" not in wddmemu.DRIVERS


def _judging_factory(driver_version: int | None = None, every: int = 1) -> Any:
    if every < 1:
        raise ValueError("every must be >= 1")  # THE-FACTORY-LINE
    return umd.ReferenceDriver(umd.DriverConfig(driver_version=driver_version or 0xB))


def test_a_factory_refusing_its_option_is_named_with_its_line(capsys) -> None:
    """docs/explore.md: a driver factory that raises is one line with the user's file and line
    — a ValueError too (h6: it was printed without them, as our own option errors are)."""
    import inspect

    wddmemu.register_driver("test-forms-judging", _judging_factory)
    line = next(n for n, text in enumerate(inspect.getsource(_judging_factory).splitlines())
                if "THE-FACTORY-LINE" in text) + inspect.getsourcelines(_judging_factory)[1]
    try:
        assert _cli.main(["run", "lock-flags", "--driver", "test-forms-judging",
                          "--driver-opt", "every=0"]) == 2
        (err,) = capsys.readouterr().err.strip().splitlines()
        assert err == ("wddmemu: error: driver factory test-forms-judging failed: ValueError: "
                       f"every must be >= 1 ({__file__}:{line})")
        # a value the reference's own DriverConfig refuses keeps its plain message
        assert _cli.main(["run", "lock-flags", "--driver-opt", "heap_bytes=abc"]) == 2
        assert "(" not in capsys.readouterr().err
    finally:
        wddmemu.DRIVERS.unregister("test-forms-judging")


def _float_factory(driver_version: int | None = None, ratio: float = 0.5) -> Any:
    return umd.ReferenceDriver(umd.DriverConfig(driver_version=driver_version or 0xB))


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "1e999"])
def test_a_float_option_takes_finite_numbers_only(text: str, capsys) -> None:
    """nan and inf would be null in a failure file (JSON has neither), which could then not
    replay its run (h6)."""
    wddmemu.register_driver("test-forms-float", _float_factory)
    try:
        assert _cli.main(["run", "lock-flags", "--driver", "test-forms-float",
                          "--driver-opt", f"ratio={text}"]) == 2
        (err,) = capsys.readouterr().err.strip().splitlines()
        assert err.startswith("wddmemu: error: driver option ratio takes a finite number")
        assert _cli.main(["run", "lock-flags", "--driver", "test-forms-float",
                          "--driver-opt", "ratio=0.25"]) == 0
    finally:
        wddmemu.DRIVERS.unregister("test-forms-float")


def test_a_module_raising_a_base_exception_at_import_is_one_line(tmp_path, monkeypatch) -> None:
    """``--load`` of a module that raises GeneratorExit or a BaseException of its own at import
    is a SpecError with its line, as any raise there is (sweep E D3)."""
    from wddmemu import _loading

    (tmp_path / "forms_boom_at_import.py").write_text("raise GeneratorExit('at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(wddmemu.SpecError,
                       match=r"GeneratorExit: at import \(.*forms_boom_at_import.py:1\)"):
        _loading._import("forms_boom_at_import", "cannot load forms_boom_at_import")


def test_a_driver_with_no_name_to_save_is_named_without_a_memory_address() -> None:
    """Sweep G D5: the refusal said ``<function … at 0x7fe1caa3eca0>``, so a pinned test's
    failure text differed from run to run. It names the factory as other messages do."""
    for driver, shows in ((lambda: umd.ReferenceDriver(), ".<locals>.<lambda>"),
                          (umd.ReferenceDriver(), "ReferenceDriver()")):
        with pytest.raises(wddmemu.SpecError, match="has no name to save") as e:
            wddmemu.RunSpec("lock-flags", driver=driver).to_dict()
        assert shows in str(e.value) and " at 0x" not in str(e.value), str(e.value)


@pytest.mark.parametrize("driver", ["reference", "track-in-lockasync"])
@pytest.mark.parametrize(("option", "says"), [
    ("driver_version", "give the DDI version with --ddi-version (0xB)"),
    ("policy", "a policy is code: pass a umd.DriverPolicy"),
])
def test_driver_version_and_policy_are_no_driver_options(driver: str, option: str,
                                                         says: str) -> None:
    """Sweep H D1/D10: ``--driver-opt driver_version=11`` reached DriverConfig and failed with
    Python's TypeError text (with ``--ddi-version`` too it was dropped silently), and a seeded
    variant took ``policy=os:system`` and ignored it. Both are refused, saying what to do."""
    refused = rf"^driver {driver}: {option}: {re.escape(says)}"
    for value in ("11", "os:system"):
        with pytest.raises(wddmemu.SpecError, match=refused):
            wddmemu.run(wddmemu.RunSpec("lock-flags", driver=driver,
                                        driver_options={option: value}))


def test_a_factory_of_the_users_keeps_its_own_policy_option() -> None:
    got: list[Any] = []

    def make(driver_version: int | None = None, policy: str = "plain") -> Any:
        got.append(policy)
        return umd.ReferenceDriver()

    assert wddmemu.run(wddmemu.RunSpec("lock-flags", driver=make,
                                       driver_options={"policy": "mine"})).ok
    assert got == ["mine"]
    with pytest.raises(wddmemu.SpecError, match="driver_version: give the DDI version"):
        wddmemu.run(wddmemu.RunSpec("lock-flags", driver=make,
                                    driver_options={"driver_version": "11"}))
