"""Drivers and scenarios written against the first release's names keep working (issue 10).

Each name is imported the way such code imports it; a name that moved still resolves, with a
``DeprecationWarning`` that names its new home.
"""

from __future__ import annotations

import importlib
import warnings

import pytest

#: (module, name) pairs that must resolve without any warning
STABLE = [
    ("umd", "ReferenceDevice"),
    ("umd", "ReferenceDriver"),
    ("umd", "DriverConfig"),
    ("umd", "LockedRange"),
    ("umd", "make_driver"),
    ("umd", "VARIANTS"),
    ("umd.reference", "ReferenceDevice"),
    ("umd.ddi", "D3DDDI_DEVICEFUNCS"),
    ("umd.ddi", "D3DDDIARG_LOCKASYNC"),
    ("umd.ddi", "D3DDDIARG_UNLOCKASYNC"),
    ("umd.ddi", "D3DDDIARG_RENAME"),
    ("umd.ddi", "D3DDDICB_LOCK"),
    ("umd.ddi", "D3DDDICB_RENDER"),
    ("umd.ddi", "D3DDDI_LOCKASYNCFLAGS"),
    ("umd.ddi", "D3D_UMD_REENTRANT_VERSION"),
    ("scenarios", "scenario"),
    ("scenarios", "Param"),
    ("scenarios", "ScenarioContext"),
    ("scenarios", "get"),
    ("runtime", "Device"),
    ("runtime", "DeviceConfig"),
    ("runtime", "open_adapter"),
    ("runtime", "d3d9"),
    ("kmd", "STATUS_SUCCESS"),
    ("kmd", "E_INVALIDARG"),
    ("kmd", "E_OUTOFMEMORY"),
    ("kmd", "D3DERR_WASSTILLDRAWING"),
    ("kmd", "D3DDDIERR_DEVICEREMOVED"),
    ("kmd", "S_OK"),
    ("kmd", "Kernel"),
    ("kmd", "D3DKMTLock"),
]

#: engine names that moved from ``runtime`` to ``vthreads``
#: (module, old name, new name) in the driver layer: the old name warns and is the new object
MOVED_UMD = [("umd.reference", "ddi", "ddi_entry")]

MOVED = ["SharedCell", "Mutex", "checkpoint", "log", "Engine", "spawn", "Queue", "Event",
         "Condition", "violation", "sleep", "now"]


@pytest.mark.parametrize(("module", "name"), STABLE, ids=[f"{m}.{n}" for m, n in STABLE])
def test_stable_names_import_without_warning(module: str, name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mod = importlib.import_module(module)
        assert getattr(mod, name) is not None


@pytest.mark.parametrize("name", MOVED)
def test_moved_engine_names_warn_and_are_the_vthreads_objects(name: str) -> None:
    import runtime
    import vthreads

    with pytest.warns(DeprecationWarning, match=rf"runtime\.{name} moved to vthreads\.{name}"):
        obj = getattr(runtime, name)
    assert obj is getattr(vthreads, name)


@pytest.mark.parametrize(("module", "old", "new"), MOVED_UMD)
def test_moved_driver_names_warn(module: str, old: str, new: str) -> None:
    import umd

    mod = importlib.import_module(module)
    with pytest.warns(DeprecationWarning, match=new):
        obj = getattr(mod, old)
    assert obj is getattr(umd, new)


def test_an_unknown_runtime_name_is_still_an_attribute_error() -> None:
    import runtime

    with pytest.raises(AttributeError, match="no attribute 'NoSuchThing'"):
        runtime.NoSuchThing  # noqa: B018


def test_a_driver_written_against_the_old_names_runs() -> None:
    """A ReferenceDevice subclass of the first release, with the engine reached through
    ``runtime``: the scenario runs clean (the warning is the only difference)."""
    import umd
    from wddmemu import RunSpec, run_scenario

    with pytest.warns(DeprecationWarning):
        from umd.reference import ddi  # noqa: F401  (the old entry decorator still imports)
    with pytest.warns(DeprecationWarning):
        import runtime as rt

        rt.SharedCell  # noqa: B018

    drv = umd.ReferenceDriver(umd.DriverConfig(driver_version=0xB))
    assert isinstance(drv, umd.ReferenceDriver)
    res = run_scenario(RunSpec("dynamic-vb-ring", ddi_version=0xB, strategy="random", seed=3))
    assert res.ok, res.run.violations
