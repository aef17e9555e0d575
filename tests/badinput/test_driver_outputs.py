"""The driver's outputs are untrusted: an ``hResource`` that is not a handle, a ``pSurfData``
that is not a pointer. (A HANDLE is pointer-sized: an int beyond 64 bits is not one either,
and keeping it would put its decimal text — too long for ``str`` past 4,300 digits — into the
checker's keys.) Each ends the run with a failure that names the driver's value — never
an exception out of the runtime's or the checker's own code (before this, a ``None`` hResource
raised TypeError in the checker, a ``None`` pSurfData AttributeError in the runtime)."""

from __future__ import annotations

import io
from dataclasses import replace
from typing import Any

import orjson
import pytest

from runtime._ddi import is_uint, kind_of
from umd import ReferenceDevice, ReferenceDriver
from umd.ddi import D3DDDI_ADAPTERFUNCS, D3DDDI_DEVICEFUNCS
from wddmemu._runner import RunSpec, run_scenario

#: (the driver's hResource, what the runtime's message calls it)
NOT_HANDLES = [(None, "None"), ([1], "a list"), ("0x100", "a str"), (1.5, "a float"),
               (True, "a bool"), (object(), "an object"), (-1, "a negative int"),
               (2**64, "a 65-bit int"), (10**5000, "a 16610-bit int")]


def _driver(method: str, field: str, value: Any) -> ReferenceDriver:
    """The reference driver, with ``field`` of ``method``'s argument overwritten on return."""

    async def ddi(self: ReferenceDevice, args: Any) -> int:
        hr = await getattr(ReferenceDevice, method)(self, args)
        setattr(args, field, value)
        return hr

    return ReferenceDriver(device_class=type("Odd", (ReferenceDevice,), {method: ddi}))


def _failure(scenario: str, driver: ReferenceDriver) -> tuple[str, str, str]:
    run = run_scenario(RunSpec(scenario, driver=driver)).run
    assert not run.ok and run.failure is not None
    tb = str((run.failure.details or {}).get("traceback", ""))
    return run.failure.kind, run.failure.message, tb.rsplit('File "', 1)[-1]


@pytest.mark.parametrize("value, what", NOT_HANDLES, ids=[w for _v, w in NOT_HANDLES])
def test_an_hresource_that_is_not_a_handle_fails_createresource(value: Any, what: str) -> None:
    kind, message, where = _failure("dynamic-vb-ring",
                                    _driver("pfn_create_resource", "resource", value))
    assert kind == "exception"
    assert message == (
        "D3DError: D3DERR_DRIVERINTERNALERROR (0x88760827): the driver's CreateResource "
        f"returned S_OK with an hResource that is {what}, not a HANDLE")
    assert where.split('"')[0].endswith("runtime/_device.py")  # the runtime refused it


@pytest.mark.parametrize("method, ddi", [("pfn_lock", "Lock"), ("pfn_lock_async", "LockAsync")])
@pytest.mark.parametrize("value", [None, 7, "ptr", [0]], ids=lambda v: type(v).__name__)
def test_a_psurfdata_that_is_not_a_pointer_faults_the_application(method: str, ddi: str,
                                                                   value: Any) -> None:
    """lock-flags writes through both a Lock and a LockAsync view."""
    kind, message, _where = _failure("lock-flags", _driver(method, "surf_data", value))
    assert (kind, message) == ("exception", (
        f"AccessViolation: the application's write faulted: the driver's {ddi} returned "
        f"pSurfData {type(value).__name__}, which is not a pointer"))


class _OddDriver(ReferenceDriver):
    """The reference driver, with one field of OpenAdapter's or CreateDevice's argument
    overwritten after the reference filled it in."""

    def __init__(self, where: str, field: str, value: Any) -> None:
        super().__init__()
        self.where, self.field, self.value = where, field, value

    async def open_adapter(self, args: Any) -> int:
        hr = await super().open_adapter(args)
        if self.where == "OpenAdapter":
            setattr(args, self.field, self.value)
            return hr
        create, odd = args.adapter_funcs.pfn_create_device, self

        async def create_device(adapter: Any, cd: Any = None) -> int:
            out = await create(adapter, cd)
            setattr(cd, odd.field, odd.value)
            return out

        args.adapter_funcs = D3DDDI_ADAPTERFUNCS(pfn_create_device=create_device)
        return hr


def _funcs(**slots: Any) -> D3DDDI_DEVICEFUNCS:
    table = {f: _ddi for f in D3DDDI_DEVICEFUNCS.__dataclass_fields__}
    return D3DDDI_DEVICEFUNCS(**{**table, **slots})


async def _ddi(device: Any, args: Any = None) -> int:
    return 0


TABLES = [
    ("OpenAdapter", "driver_version", None, "DriverVersion None, not a UINT"),
    ("OpenAdapter", "driver_version", 1.5, "DriverVersion a float, not a UINT"),
    ("OpenAdapter", "driver_version", True, "DriverVersion a bool, not a UINT"),
    ("OpenAdapter", "driver_version", -1, "DriverVersion a negative int, not a UINT"),
    ("OpenAdapter", "driver_version", 2**32, "DriverVersion a 33-bit int, not a UINT"),
    ("OpenAdapter", "adapter_funcs", "table", "pAdapterFuncs a str, not a D3DDDI_ADAPTERFUNCS"),
    ("OpenAdapter", "adapter_funcs", D3DDDI_ADAPTERFUNCS(pfn_create_device=7),
     "pfnCreateDevice a 3-bit int, not a function"),
    ("OpenAdapter", "adapter_funcs", None, "no D3DDDI_ADAPTERFUNCS"),
    ("CreateDevice", "device_funcs", None, "no D3DDDI_DEVICEFUNCS"),
    ("CreateDevice", "device_funcs", [1], "pDeviceFuncs a list, not a D3DDDI_DEVICEFUNCS"),
    ("CreateDevice", "device_funcs", _funcs(pfn_flush=None),
     "no Flush (pDeviceFuncs.pfn_flush is None; only the async triple may be)"),
    ("CreateDevice", "device_funcs", _funcs(pfn_rename="rename"),
     "pDeviceFuncs.pfn_rename a str, not a function"),
]


@pytest.mark.parametrize("ddi, field, value, problem", TABLES,
                         ids=[f"{d}.{f}-{p.split(',')[0]}" for d, f, _v, p in TABLES])
def test_an_unusable_table_or_version_fails_the_call_that_returned_it(
        ddi: str, field: str, value: Any, problem: str) -> None:
    """A table the runtime cannot call through, or a DriverVersion that is not a UINT (DV-1),
    fails OpenAdapter / CreateDevice with D3DERR_DRIVERINTERNALERROR before anything is called
    through it (an AttributeError, a TypeError or an int() ValueError out of the runtime or the
    checker before)."""
    kind, message, where = _failure("dynamic-vb-ring", _OddDriver(ddi, field, value))
    assert (kind, message) == ("exception", "D3DError: D3DERR_DRIVERINTERNALERROR (0x88760827): "
                               f"the driver's {ddi} returned S_OK with {problem}")
    assert where.split('"')[0].endswith("runtime/_device.py")


def test_only_the_async_triple_may_be_missing() -> None:
    """A table without LockAsync/UnlockAsync/Rename is a driver without the MP layer (LA-1):
    CreateDevice succeeds and the scenario runs on the synchronous path."""
    triple = {"pfn_lock_async": None, "pfn_unlock_async": None, "pfn_rename": None}

    class NoTriple(ReferenceDevice):
        def device_funcs(self) -> D3DDDI_DEVICEFUNCS:
            return replace(super().device_funcs(), **triple)

    run = run_scenario(RunSpec("dynamic-vb-ring",
                               driver=ReferenceDriver(device_class=NoTriple))).run
    assert (run.ok, run.failure, tuple(run.violations)) == (True, None, ())


def test_what_the_messages_call_a_value() -> None:
    """``kind_of`` names a bad value without printing it; ``is_uint`` is a D3D UINT."""
    odd, xenon = type("Odd", (), {})(), type("Xenon", (), {})()
    assert [kind_of(v) for v in (None, odd, xenon, [], 0, 1, -1, 2**64)] == [
        "None", "an Odd", "a Xenon", "a list", "a 0-bit int", "a 1-bit int", "a negative int",
        "a 65-bit int"]
    assert [is_uint(v) for v in (0, 0xFFFFFFFF, 2**32, -1, True, 1.0)] == [
        True, True, False, False, False, False]


def test_the_openadapter_event_carries_no_bad_version() -> None:
    """The ``ddi.exit`` of an OpenAdapter whose DriverVersion is not a UINT says null (the
    checker reads it as a number), a good one its value."""
    def version_logged(value: Any) -> Any:
        buf = io.BytesIO()
        run_scenario(RunSpec("dynamic-vb-ring", driver=_OddDriver("OpenAdapter",
                                                                  "driver_version", value)),
                     trace=buf)
        events = [orjson.loads(x) for x in buf.getvalue().splitlines()]
        return next(e["driver_version"] for e in events
                    if e.get("event") == "ddi.exit" and e.get("ddi") == "OpenAdapter")

    assert [version_logged(v) for v in ("0xB", 2**32, 0xB)] == [None, None, 0xB]
