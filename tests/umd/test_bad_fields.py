"""Issue 14: bad field values in DDI argument structures — None, wrong types, floats, NaN,
unhashables, bools, huge ints — get E_INVALIDARG from every DDI of the reference driver, before
it acts (nothing leaked: no callback, no heap, no lock), never a Python exception. Hypothesis
drives every entry of the DDI table with structures mixing such values and plausible ones."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import umd
from tests.support.driver import E_INVALIDARG, LAF, S_OK, Rig, run
from umd.ddi import (
    D3DDDI_SURFACEINFO,
    D3DDDIARG_CREATERESOURCE,
    D3DDDIARG_DESTROYRESOURCE,
    D3DDDIARG_DRAWPRIMITIVE,
    D3DDDIARG_LOCK,
    D3DDDIARG_LOCKASYNC,
    D3DDDIARG_PRESENT,
    D3DDDIARG_RENAME,
    D3DDDIARG_SETSTREAMSOURCE,
    D3DDDIARG_UNLOCK,
    D3DDDIARG_UNLOCKASYNC,
    D3DDDIRANGE,
)

VB = 0x00D00001  # the rig's first resource handle
COOKIE = 0x00C00001  # its first Discard cookie

GARBAGE = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.just(float("nan")),
    st.text(max_size=2),
    st.binary(max_size=2),
    st.lists(st.integers(0, 3), max_size=2),
    st.dictionaries(st.integers(0, 3), st.integers(0, 3), max_size=1),
    st.sets(st.integers(0, 3), max_size=1),
    st.integers(min_value=1 << 64, max_value=1 << 90),
    st.integers(min_value=-(1 << 90), max_value=-(1 << 63) - 1),
)
PLAUSIBLE = st.one_of(
    st.integers(-2, 8),
    st.sampled_from([VB, COOKIE, 16, 64, 256, 0xFFFFFFFF, (1 << 63) - 1, -(1 << 63)]),
    st.integers(min_value=-(1 << 63), max_value=(1 << 64) - 1),
)
VALUE = st.one_of(PLAUSIBLE, PLAUSIBLE, GARBAGE)
RANGE = st.one_of(st.none(), GARBAGE, st.builds(D3DDDIRANGE, VALUE, VALUE))
SURFACE = st.builds(D3DDDI_SURFACEINFO, VALUE, VALUE, VALUE, VALUE, VALUE,
                    st.one_of(st.none(), st.just(bytearray(4096)), GARBAGE))
SURFACES = st.one_of(GARBAGE, st.lists(st.one_of(SURFACE, GARBAGE), max_size=3))


def _struct(cls: type, **special: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``cls`` with every in-field (those without a default, plus flags) drawn from VALUE,
    or from ``special``."""
    kw = {}
    for f in dataclasses.fields(cls):
        if f.name in special:
            kw[f.name] = special[f.name]
        elif f.default is dataclasses.MISSING or f.name in ("flags", "frame", "src_resource",
                                                             "draw_id"):
            kw[f.name] = VALUE
    return st.builds(cls, **kw)


#: every DDI of the device table and the structures it may be handed
CASES: list[tuple[str, st.SearchStrategy[Any]]] = [
    ("pfn_create_resource", _struct(D3DDDIARG_CREATERESOURCE, surfaces=SURFACES)),
    ("pfn_destroy_resource", _struct(D3DDDIARG_DESTROYRESOURCE)),
    ("pfn_lock_async", _struct(D3DDDIARG_LOCKASYNC, range=RANGE)),
    ("pfn_unlock_async", _struct(D3DDDIARG_UNLOCKASYNC)),
    ("pfn_rename", _struct(D3DDDIARG_RENAME)),
    ("pfn_lock", _struct(D3DDDIARG_LOCK, range=RANGE)),
    ("pfn_unlock", _struct(D3DDDIARG_UNLOCK)),
    ("pfn_set_stream_source", _struct(D3DDDIARG_SETSTREAMSOURCE)),
    ("pfn_draw_primitive", _struct(D3DDDIARG_DRAWPRIMITIVE)),
    ("pfn_present", _struct(D3DDDIARG_PRESENT)),
    ("pfn_flush", st.one_of(st.none(), GARBAGE)),
    ("pfn_destroy_device", st.one_of(st.none(), GARBAGE)),
]
DDI = st.one_of(*[st.tuples(st.just(name), s) for name, s in CASES])


def _state(r: Rig) -> tuple[Any, ...]:
    d = r.dev
    return (d.heap_used(), d.outstanding_locks(), d.pending_cookies(), d.pending_commands(),
            len(r.calls))


@settings(max_examples=400, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(DDI)
def test_every_ddi_answers_bad_fields_with_e_invalidarg_and_changes_nothing(
        case: tuple[str, Any]) -> None:
    name, args = case

    async def prog(r: Rig) -> tuple[int, bool, bool]:
        vb = await r.vb(256)
        assert vb == VB
        await r.stream(vb)
        hr, la = await r.lock_async(vb, LAF.Discard)
        assert hr == S_OK and la.cookie == COOKIE and await r.unlock_async(vb) == S_OK
        assert await r.draw(1) == S_OK
        before = _state(r)
        out = await getattr(r.funcs, name)(r.dev, args)
        unchanged = _state(r) == before
        # the device still works afterwards
        usable = name == "pfn_destroy_device" or (
            await r.flush() in (S_OK,) and (await r.create(64))[0] == S_OK)
        return out, unchanged, usable

    hr, unchanged, usable = run(prog).value
    assert isinstance(hr, int)
    invalid = umd.invalid_ddi_field(args) if name not in ("pfn_flush", "pfn_destroy_device") \
        else None
    if invalid is not None:
        assert hr == E_INVALIDARG, f"{name}: {invalid}={getattr(args, invalid)!r} gave {hr:#x}"
        assert unchanged, f"{name} changed driver state for a bad {invalid}"
    assert usable


def test_the_sites_that_used_to_raise() -> None:
    """One structure per site that raised a Python exception before issue 14."""
    nan = float("nan")
    bad: list[tuple[str, Any]] = [
        ("pfn_create_resource", D3DDDIARG_CREATERESOURCE(1, 2, 0, None)),  # type: ignore[arg-type]
        ("pfn_create_resource", D3DDDIARG_CREATERESOURCE(1, 2, 0, [None])),  # type: ignore[list-item]
        ("pfn_create_resource",
         D3DDDIARG_CREATERESOURCE(1, None, 0, [D3DDDI_SURFACEINFO(8)])),  # type: ignore[arg-type]
        ("pfn_create_resource",
         D3DDDIARG_CREATERESOURCE(1, 2, None, [D3DDDI_SURFACEINFO(8)])),  # type: ignore[arg-type]
        ("pfn_create_resource", D3DDDIARG_CREATERESOURCE(1, 2, 0, [D3DDDI_SURFACEINFO(nan)])),  # type: ignore[arg-type]
        ("pfn_create_resource",
         D3DDDIARG_CREATERESOURCE(1, 2, 0, [D3DDDI_SURFACEINFO(8, pitch=None)])),  # type: ignore[arg-type]
        ("pfn_destroy_resource", D3DDDIARG_DESTROYRESOURCE([VB])),  # type: ignore[arg-type]
        ("pfn_lock_async", D3DDDIARG_LOCKASYNC(VB, 0, None)),  # type: ignore[arg-type]
        ("pfn_lock_async", D3DDDIARG_LOCKASYNC({}, 0, 0)),  # type: ignore[arg-type]
        ("pfn_lock_async", D3DDDIARG_LOCKASYNC(VB, 0, LAF.RangeValid,
                                               range=D3DDDIRANGE(nan, 4))),  # type: ignore[arg-type]
        ("pfn_unlock_async", D3DDDIARG_UNLOCKASYNC(VB, 0, 1.0)),  # type: ignore[arg-type]
        ("pfn_unlock_async", D3DDDIARG_UNLOCKASYNC([VB], 0)),  # type: ignore[arg-type]
        ("pfn_rename", D3DDDIARG_RENAME(VB, 0, [COOKIE])),  # type: ignore[arg-type]
        ("pfn_lock", D3DDDIARG_LOCK(VB, 0, "0")),  # type: ignore[arg-type]
        ("pfn_lock", D3DDDIARG_LOCK(VB, 0, 0x10, range=D3DDDIRANGE(0, None))),  # type: ignore[arg-type]
        ("pfn_unlock", D3DDDIARG_UNLOCK({VB}, 0)),  # type: ignore[arg-type]
        ("pfn_set_stream_source", D3DDDIARG_SETSTREAMSOURCE(0, VB, None, 16)),  # type: ignore[arg-type]
        ("pfn_set_stream_source", D3DDDIARG_SETSTREAMSOURCE(0, [VB], 0, 16)),  # type: ignore[arg-type]
        ("pfn_draw_primitive", D3DDDIARG_DRAWPRIMITIVE(4, None, 4)),  # type: ignore[arg-type]
        ("pfn_draw_primitive", D3DDDIARG_DRAWPRIMITIVE(4, 0, nan)),  # type: ignore[arg-type]
    ]

    async def prog(r: Rig) -> list[int]:
        vb = await r.vb(256)
        await r.stream(vb)
        return [await getattr(r.funcs, name)(r.dev, args) for name, args in bad]

    assert run(prog).value == [E_INVALIDARG] * len(bad)
