"""The driver's outputs are untrusted: an ``hResource`` that is not a handle, a ``pSurfData``
that is not a pointer. (A HANDLE is pointer-sized: an int beyond 64 bits is not one either,
and keeping it would put its decimal text — too long for ``str`` past 4,300 digits — into the
checker's keys.) Each ends the run with a failure that names the driver's value — never
an exception out of the runtime's or the checker's own code (before this, a ``None`` hResource
raised TypeError in the checker, a ``None`` pSurfData AttributeError in the runtime)."""

from __future__ import annotations

from typing import Any

import pytest

from umd import ReferenceDevice, ReferenceDriver
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
