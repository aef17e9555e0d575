"""Issue 14: a driver's int may be any int. One over 4,300 digits never crashes the checker's
message formatting (tracing on or off), and one >= 2**64 (which orjson cannot encode) in a
trace field never makes the traced run differ from the untraced one: tracing never changes an
outcome. The trace carries such a value as text."""

from __future__ import annotations

import io
from typing import Any

import orjson
import pytest

from umd import ReferenceDevice, ReferenceDriver
from wddmemu._runner import RunSpec, run_scenario

HUGE = (2**64 + 5, -(2**63) - 1, 10**5000)


def _driver(value: int, where: str) -> ReferenceDriver:
    class Odd(ReferenceDevice):
        async def pfn_lock_async(self, args: Any) -> int:
            hr = await super().pfn_lock_async(args)
            if where == "return":
                return value
            setattr(args, where, value)
            return hr

    return ReferenceDriver(device_class=Odd)


def _outcome(value: int, where: str, trace: Any) -> tuple[Any, ...]:
    r = run_scenario(RunSpec("dynamic-vb-ring", driver=_driver(value, where)), trace=trace).run
    f = r.failure
    return (r.ok, r.steps, f and (f.kind, f.step, f.message),
            tuple((v.rule, v.step, v.message) for v in r.violations))


@pytest.mark.parametrize("where", ["cookie", "pitch", "return"])
@pytest.mark.parametrize("value", HUGE, ids=["2**64+5", "-2**63-1", "10**5000"])
def test_tracing_a_huge_int_changes_no_outcome(value: int, where: str) -> None:
    untraced = _outcome(value, where, None)
    buf = io.BytesIO()
    traced = _outcome(value, where, buf)
    assert traced == untraced
    # no escaped Python exception from our own formatting, traced or not
    assert "Exceeds the limit" not in repr(untraced) and "64-bit range" not in repr(traced)
    events = [orjson.loads(x) for x in buf.getvalue().splitlines()]
    assert events and all(isinstance(e, dict) for e in events)


def test_a_huge_cookie_is_text_in_the_trace() -> None:
    buf = io.BytesIO()
    run_scenario(RunSpec("dynamic-vb-ring", driver=_driver(2**64 + 5, "cookie")), trace=buf)
    events = [orjson.loads(x) for x in buf.getvalue().splitlines()]
    cookies = {e.get("cookie") for e in events if e.get("ddi") == "LockAsync"}
    assert str(2**64 + 5) in cookies
