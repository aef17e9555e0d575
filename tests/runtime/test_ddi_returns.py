"""Issue 14: whatever a driver's DDI returns, the run reports it as a finding naming the DDI —
an int over 32 bits (even one of 5,000 digits, whose decimal text Python refuses to build), a
bool, a float, None — and never an S_OK it did not say."""

from __future__ import annotations

from typing import Any

import pytest

from umd import ReferenceDevice, ReferenceDriver
from wddmemu import RunSpec, run


def _returning(value: Any) -> ReferenceDriver:
    class Returns(ReferenceDevice):
        async def pfn_lock_async(self, args: Any) -> Any:
            await super().pfn_lock_async(args)
            return value

    return ReferenceDriver(device_class=Returns)


@pytest.mark.parametrize("value", [10**5000, 1 << 32, -(1 << 31) - 1, True, 0.0, None, "S_OK"],
                         ids=["5000-digits", "2**32", "below-int32", "bool", "float", "None",
                              "str"])
def test_a_ddi_returning_no_hresult_is_a_finding_naming_the_ddi(value: Any) -> None:
    res = run(RunSpec("dynamic-vb-ring", driver=_returning(value)))
    f = res.run.failure
    assert f is not None and f.kind == "exception" and f.thread == "app", f
    assert "driver DDI LockAsync returned" in f.message and "not a 32-bit HRESULT" in f.message
    assert len(f.message) < 200


@pytest.mark.parametrize("value", [0, 0xFFFFFFFF, -1])
def test_every_32_bit_value_is_an_hresult(value: int) -> None:
    # S_OK, and failure codes written unsigned or signed, are codes: judged by the checker
    f = run(RunSpec("dynamic-vb-ring", driver=_returning(value))).run.failure
    assert f is None or "not a 32-bit HRESULT" not in f.message
