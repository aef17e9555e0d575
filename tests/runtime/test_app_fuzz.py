"""Issue 14: the application API (``runtime.Device``) fed bad values — None, wrong types,
floats, NaN, huge and negative ints, foreign objects — answers ``D3DERR_INVALIDCALL`` (a
:class:`~runtime.d3d9.D3DError`), never another Python exception, and the device stays usable:
a legal lock, draw and present still work after each bad call."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime import d3d9
from tests.support.app import run_app
from vthreads.testing import capture_events

BAD = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=2), st.binary(max_size=2), st.lists(st.integers(0, 3), max_size=2),
    st.integers(min_value=-(1 << 70), max_value=-1),
    st.integers(min_value=1 << 31, max_value=1 << 70),
    st.just(object()),
)
INT = st.one_of(st.integers(-2, 300), BAD)
RES = st.sampled_from(["vb", "none", "int", "released", "other"])

#: each app-API call and how to draw its arguments (``"vb"`` etc. name a resource, below)
CALLS: dict[str, tuple[st.SearchStrategy[Any], ...]] = {
    "create_vertex_buffer": (INT, INT, INT),
    "create_index_buffer": (INT, INT, INT),
    "create_surface": (INT, INT, INT, INT, INT),
    "create_texture": (INT, INT, INT, INT, INT, INT),
    "lock": (RES, INT, INT, INT),
    "unlock": (RES,),
    "release": (RES,),
    "set_stream_source": (INT, RES, INT, INT),
    "draw_primitive": (INT, INT, INT),
}


@st.composite
def bad_call(draw: Any) -> tuple[str, tuple[Any, ...]]:
    name = draw(st.sampled_from(sorted(CALLS)))
    return name, tuple(draw(s) for s in CALLS[name])


# derandomize: the same examples on every run, as every hypothesis test here (no unseeded
# randomness in CI); a fresh seed run by hand found the released-resource bug below
@settings(max_examples=80, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(call=bad_call())
def test_bad_app_calls_are_invalidcall_and_leave_the_device_usable(call: tuple) -> None:
    name, args = call
    outcome: list[Any] = []

    async def program(dev: Any) -> None:
        vb = await dev.create_vertex_buffer(256)
        gone = await dev.create_vertex_buffer(64)
        await dev.release(gone)
        res = {"vb": vb, "none": None, "int": 1, "released": gone, "other": object()}
        real = tuple(res.get(a, a) if isinstance(a, str) and a in res else a for a in args)
        try:
            await getattr(dev, name)(*real)
        except d3d9.D3DError as e:
            outcome.append(e.hr)
        else:
            outcome.append("ok")
        if name == "lock" and outcome[-1] == "ok":
            await dev.unlock(real[0])
        if name == "release" and outcome[-1] == "ok" and real[0] is vb:
            vb = await dev.create_vertex_buffer(256)  # released: the check needs a live one
        if name == "set_stream_source" and outcome[-1] == "ok":
            await dev.set_stream_source(real[0], vb, 0, 16)  # a legal stride for the draw
        # the device still works
        view = await dev.lock(vb, 0, 64, d3d9.D3DLOCK_DISCARD)
        view.write(0, bytes(64))
        await dev.unlock(vb)
        await dev.set_stream_source(0, vb, 0, 16)
        await dev.draw_primitive(d3d9.D3DPT_TRIANGLELIST, 0, 4)
        await dev.present()

    r = run_app(program)
    assert r.result.failure is None, (call, r.result.failure)
    assert outcome and outcome[0] in ("ok", d3d9.D3DERR_INVALIDCALL,
                                      d3d9.D3DERR_OUTOFVIDEOMEMORY), outcome


@pytest.mark.parametrize("name, args", [
    ("lock", (0, 0, 0)), ("lock", (0, 0, d3d9.D3DLOCK_DISCARD)), ("unlock", ()),
    ("release", ()), ("set_stream_source", None)])
def test_a_released_resource_is_invalidcall_before_the_driver_sees_it(
        name: str, args: tuple | None) -> None:
    """Found by this file's fuzz test with a fresh seed: a released resource stayed in the
    device's table until its DestroyResource ran, so a Lock of it reached the driver, whose
    E_INVALIDARG the application got; a second Release queued a second DestroyResource."""
    got: list[int] = []

    async def program(dev: Any) -> None:
        vb = await dev.create_vertex_buffer(64)
        await dev.release(vb)
        call = getattr(dev, name)
        try:
            await (call(0, vb, 0, 16) if args is None else call(vb, *args))
        except d3d9.D3DError as e:
            got.append(e.hr)

    with capture_events() as events:
        r = run_app(program)
    assert r.result.failure is None, r.result.failure
    assert got == [d3d9.D3DERR_INVALIDCALL]
    ddis = [e["ddi"] for e in events if e["event"] == "ddi.enter"]
    assert ddis.count("DestroyResource") == 1
    assert not {"Lock", "LockAsync", "Unlock", "UnlockAsync"} & set(ddis), ddis
