"""The DDI door pinned call by call (issue 16: mutants of ``runtime/_ddi.py`` that survived
``tests/runtime`` and ``tests/checker``). A :class:`DdiDoor` is driven directly, in a one-device
engine run, with stand-in driver functions: what it counts, which lock it takes (the DDI-version
gate, LA-3, UA-5, MP-1, MP-2), what it logs on ``ddi.enter``/``ddi.exit`` (LA-12) and which
answers it refuses (a DDI returns a 32-bit HRESULT, issue 14)."""

from __future__ import annotations

from typing import Any

import pytest

import kmd
import vthreads as vt
from runtime._ddi import (
    DdiDoor,
    _describe,
    _is_hresult,
    _lock_async_out,
    call_create_device,
    call_open_adapter,
)
from runtime._hooks import RuntimeHooks
from umd.ddi import (
    D3DDDI_ADAPTERFUNCS,
    D3DDDI_DEVICEFUNCS,
    D3DDDIARG_CREATEDEVICE,
    D3DDDIARG_LOCK,
    D3DDDIARG_LOCKASYNC,
    D3DDDIARG_OPENADAPTER,
    D3DDDIARG_UNLOCKASYNC,
)

_REQUIRED = ("pfn_create_resource", "pfn_destroy_resource", "pfn_lock", "pfn_unlock",
             "pfn_set_stream_source", "pfn_draw_primitive", "pfn_flush", "pfn_present",
             "pfn_destroy_device")


def _funcs(**fns: Any) -> D3DDDI_DEVICEFUNCS:
    return D3DDDI_DEVICEFUNCS(**{**dict.fromkeys(_REQUIRED), **fns})


def _returns(hr: Any, *, sleep_ns: int = 0):
    """A DDI that stays ``sleep_ns`` of virtual time inside the driver (letting another thread
    run), then answers ``hr``."""
    async def ddi(device: Any, args: Any) -> Any:
        assert device == "drv"  # the handle CreateDevice returned is what every DDI gets
        await (vt.sleep(sleep_ns) if sleep_ns else vt.checkpoint("inside"))
        return hr
    return ddi


def _door(version: int = 0xA, **fns: Any) -> DdiDoor:
    door = DdiDoor("dev0", version, RuntimeHooks())
    door.open(_funcs(**fns), "drv")
    return door


def _run(main: Any, on_block: Any = None) -> tuple[vt.RunResult, list[dict[str, Any]]]:
    # subscribed by name, not captured: the door builds an event only when it is wanted
    # (``Engine.wants``), and a run that wants every event would hide a wrong name there
    events: list[dict[str, Any]] = []
    eng = vt.Engine("fifo")
    eng.subscribe(events.append, ["ddi.enter", "ddi.exit"])
    if on_block is not None:
        eng.subscribe(on_block, ["block"])
    return eng.run(main), events


def _error_of(door: DdiDoor, ddi: str, error: type[BaseException]) -> Any:
    """A program that calls ``ddi`` through ``door`` and returns the text of the ``error`` it
    raises (``"no error"`` when it raises none)."""

    async def main() -> str:
        try:
            await door.call(ddi, None)
        except error as e:
            return str(e)
        return "no error"

    return main


def _lock_args(**kw: Any) -> D3DDDIARG_LOCKASYNC:
    return D3DDDIARG_LOCKASYNC(resource=1, subresource_index=0, flags=0, **kw)


def _threads(door: DdiDoor, ddi: str, args: Any, workers: int = 1):
    """main and ``workers`` spawned threads each make one ``ddi`` call; the workers try to
    enter while main sleeps inside the driver."""
    async def main() -> list[int]:
        got: list[int] = []

        async def worker() -> None:
            got.append(await door.call(ddi, args))

        ts = [vt.spawn(f"worker{i}" if i else "worker", worker) for i in range(workers)]
        got.append(await door.call(ddi, args))
        for t in ts:
            await t.join()
        return got
    return main


# ---- counting, the gate and the overlap instrumentation --------------------------------------


def test_a_door_before_create_device_has_no_table_no_handle_and_empty_statistics() -> None:
    door = DdiDoor("dev0", 0xA, RuntimeHooks())
    assert door.funcs is None and door.driver_device is None and door.lost is False
    assert (door.calls, door.ungated, door.inside, door.overlaps) == ({}, {}, 0, 0)
    assert door.entry.name == "dev0.entry" and not door.entry.locked()


def test_calls_are_counted_per_ddi_and_thread_from_zero() -> None:
    door = _door(pfn_flush=_returns(0), pfn_present=_returns(0))

    async def main() -> None:
        await door.call("Flush", None)
        await door.call("Flush", None)
        await door.call("Present", None)

    r, _ = _run(main)
    assert r.ok, r.failure
    assert door.calls == {"Flush": {"main": 2}, "Present": {"main": 1}}


@pytest.mark.parametrize(("version", "ddi", "gated"), [
    (0xA, "LockAsync", True), (0xA, "UnlockAsync", True),
    (0xB, "LockAsync", False), (0xB, "UnlockAsync", False), (0xC, "LockAsync", False),
    (0xB, "Flush", True), (0xB, "Rename", True),
])
def test_the_ddi_version_gate(version: int, ddi: str, gated: bool) -> None:
    asked: list[tuple[str, bool]] = []

    class Recording(RuntimeHooks):  # what a seeded bug's hook is shown
        def gated(self, ddi: str, gated: bool) -> bool:
            asked.append((ddi, gated))
            return super().gated(ddi, gated)

    door = DdiDoor("dev0", version, Recording())
    assert door.gated(ddi) is gated
    assert asked == [(ddi, gated)]


def test_ungated_calls_are_counted_and_gated_ones_are_not() -> None:
    door = _door(0xB, pfn_lock_async=_returns(0), pfn_flush=_returns(0))

    async def main() -> None:
        await door.call("LockAsync", _lock_args())
        await door.call("LockAsync", _lock_args())
        await door.call("Flush", None)

    r, ev = _run(main)
    assert r.ok, r.failure
    assert door.ungated == {"LockAsync": 2}
    assert [(e["event"], e["ddi"], e.get("gated")) for e in ev] == [
        ("ddi.enter", "LockAsync", False), ("ddi.exit", "LockAsync", None),
        ("ddi.enter", "LockAsync", False), ("ddi.exit", "LockAsync", None),
        ("ddi.enter", "Flush", True), ("ddi.exit", "Flush", None)]


def test_below_0xb_the_entry_lock_keeps_a_second_thread_out() -> None:
    door = _door(0xA, pfn_lock_async=_returns(0, sleep_ns=100))
    blocks: list[dict[str, Any]] = []
    r, ev = _run(_threads(door, "LockAsync", _lock_args()), blocks.append)
    assert r.ok, r.failure
    assert ("worker", "mutex dev0.entry held by main") in [(b["thread"], b["waits"])
                                                          for b in blocks]
    # one thread at a time inside: every enter is followed by its own exit
    assert [(e["event"], e["thread"]) for e in ev] == [
        ("ddi.enter", "main"), ("ddi.exit", "main"),
        ("ddi.enter", "worker"), ("ddi.exit", "worker")]
    assert door.overlaps == 0 and door.inside == 0 and not door.entry.locked()
    assert door.calls == {"LockAsync": {"main": 1, "worker": 1}} and door.ungated == {}


def test_at_0xb_lock_async_enters_beside_another_thread_and_the_overlap_is_counted() -> None:
    door = _door(0xB, pfn_lock_async=_returns(0, sleep_ns=100))
    r, ev = _run(_threads(door, "LockAsync", _lock_args(), workers=2))
    assert r.ok, r.failure
    assert [e["event"] for e in ev] == ["ddi.enter"] * 3 + ["ddi.exit"] * 3
    # the second and the third entry each found someone inside
    assert door.overlaps == 2 and door.inside == 0 and not door.entry.locked()
    assert door.ungated == {"LockAsync": 3}


def test_one_call_alone_is_no_overlap_and_leaves_nobody_inside() -> None:
    door = _door(0xB, pfn_lock_async=_returns(0))

    async def main() -> None:
        await door.call("LockAsync", _lock_args())
        await door.call("LockAsync", _lock_args())

    r, _ = _run(main)
    assert r.ok, r.failure
    assert door.overlaps == 0 and door.inside == 0


def test_a_driver_exception_leaves_nobody_inside_and_the_entry_lock_free() -> None:
    async def raises(device: Any, args: Any) -> int:
        raise RuntimeError("driver bug")

    door = _door(0xA, pfn_flush=raises)

    r, _ = _run(_error_of(door, "Flush", RuntimeError))
    assert r.value == "driver bug"
    assert door.inside == 0 and not door.entry.locked()


# ---- what the driver answers ------------------------------------------------------------------


def test_devicemoved_marks_the_door_lost_and_other_failures_do_not() -> None:
    door = _door(pfn_flush=_returns(kmd.D3DDDIERR_DEVICEREMOVED),
                 pfn_present=_returns(kmd.E_INVALIDARG))
    fresh = _door(pfn_present=_returns(kmd.E_INVALIDARG))
    assert door.lost is False

    async def main() -> None:
        await fresh.call("Present", None)
        await door.call("Flush", None)

    r, ev = _run(main)
    assert r.ok, r.failure
    assert door.lost is True and fresh.lost is False
    assert ev[-1]["hr"] == "0x88760870" and ev[-1]["hr_name"] == "D3DDDIERR_DEVICEREMOVED"


def test_calling_a_ddi_the_driver_lacks_is_a_usage_error_naming_it() -> None:
    door = _door()
    assert not door.implements("LockAsync") and not door.implements("Flush")
    assert not DdiDoor("dev0", 0xA, RuntimeHooks()).implements("Flush")
    assert _door(pfn_flush=_returns(0)).implements("Flush")

    r, ev = _run(_error_of(door, "Rename", vt.EngineUsageError))
    assert r.value == "the runtime called Rename, which the driver does not implement"
    assert ev == [] and door.calls == {}


@pytest.mark.parametrize("hr", [-(1 << 31), (1 << 32) - 1, 0, kmd.E_INVALIDARG])
def test_the_edges_of_32_bits_are_hresults(hr: int) -> None:
    assert _is_hresult(hr)


@pytest.mark.parametrize("hr", [-(1 << 31) - 1, 1 << 32, True, False, 0.0, None])
def test_past_the_edges_no_hresult(hr: Any) -> None:
    assert not _is_hresult(hr)


def test_a_non_hresult_answer_raises_and_leaves_the_door_sound() -> None:
    door = _door(0xA, pfn_flush=_returns(1 << 32))

    r, ev = _run(_error_of(door, "Flush", TypeError))
    assert r.value == "driver DDI Flush returned 4294967296, not a 32-bit HRESULT"
    assert [e["event"] for e in ev] == ["ddi.enter"]
    assert door.inside == 0 and not door.entry.locked()


@pytest.mark.parametrize(("value", "text"), [
    ((1 << 64) - 1, str((1 << 64) - 1)),
    (1 << 64, "an int of 65 bits"),
    (-(1 << 64), "an int of 65 bits"),
    (True, "True"),
    ("x" * 78, repr("x" * 78)),  # 80 characters with the quotes: whole
    ("x" * 79, "'" + "x" * 76 + "..."),  # 81: cut to 80
])
def test_describe(value: Any, text: str) -> None:
    assert _describe(value) == text


# ---- LockAsync's outputs on ddi.exit (LA-12) -------------------------------------------------


class _Ptr:
    allocation = 7


class _Raising:
    @property
    def allocation(self) -> int:
        raise RuntimeError("driver property")


@pytest.mark.parametrize(("surf", "allocation"), [
    (None, None), (_Ptr(), 7), (_Raising(), None), (object(), None)])
def test_lock_async_out_says_where_surf_data_points(surf: Any, allocation: Any) -> None:
    out = _lock_async_out(_lock_args(cookie=5, surf_data=surf, pitch=64, slice_pitch=128))
    assert out == {"cookie": 5, "surf_allocation": allocation, "pitch": 64, "slice_pitch": 128,
                   "surf_data": surf is not None}


def test_lock_async_out_keeps_only_ints() -> None:
    out = _lock_async_out(_lock_args(cookie=True, surf_data=b"", pitch="64", slice_pitch=1.0))
    # each output that is no int says what it was (LA-12's message names it), after its None
    assert list(out.items()) == [
        ("cookie", None), ("cookie_kind", "a bool"), ("surf_allocation", None),
        ("pitch", None), ("pitch_kind", "a str"), ("slice_pitch", None),
        ("slice_pitch_kind", "a float"), ("surf_data", True)]


def test_lock_async_exit_carries_the_outputs_and_other_ddis_do_not() -> None:
    async def lock(device: Any, args: D3DDDIARG_LOCKASYNC) -> int:
        args.cookie, args.surf_data, args.pitch = 9, _Ptr(), 256
        return 0

    door = _door(0xB, pfn_lock_async=lock, pfn_unlock_async=_returns(0))

    async def main() -> None:
        await door.call("LockAsync", _lock_args())
        await door.call("UnlockAsync", D3DDDIARG_UNLOCKASYNC(1, 0))

    r, ev = _run(main)
    assert r.ok, r.failure
    lock_exit, unlock_exit = ev[1], ev[3]
    assert {k: lock_exit.get(k) for k in ("cookie", "surf_allocation", "pitch", "surf_data",
                                          "hr", "hr_name", "device")} == {
        "cookie": 9, "surf_allocation": 7, "pitch": 256, "surf_data": True,
        "hr": "0x00000000", "hr_name": "S_OK", "device": "dev0"}
    assert "cookie" not in unlock_exit and unlock_exit["ddi"] == "UnlockAsync"
    assert ev[2]["resource"] == 1 and ev[2]["device"] == "dev0"  # summarize(args) on enter


def test_lock_exit_carries_its_outputs_without_a_cookie() -> None:
    """Lock's exit says what LK-6 judges (pSurfData set, where it points) and the pitches, in
    the order LockAsync's has them; Lock has no hCookie."""
    async def lock(device: Any, args: D3DDDIARG_LOCK) -> int:
        args.surf_data, args.pitch, args.slice_pitch = _Ptr(), 64, "junk"
        return 0

    door = _door(0xB, pfn_lock=lock)

    async def main() -> None:
        await door.call("Lock", D3DDDIARG_LOCK(resource=1, subresource_index=0, flags=0))

    r, ev = _run(main)
    assert r.ok, r.failure
    lock_exit = ev[1]
    assert "cookie" not in lock_exit
    assert [k for k in lock_exit if k in ("surf_allocation", "pitch", "slice_pitch",
                                          "surf_data")] == [
        "surf_allocation", "pitch", "slice_pitch", "surf_data"]
    assert (lock_exit["surf_allocation"], lock_exit["pitch"], lock_exit["slice_pitch"],
            lock_exit["surf_data"]) == (7, 64, None, True)


# ---- OpenAdapter and CreateDevice ------------------------------------------------------------


def test_open_adapter_and_create_device_are_logged_ungated_with_what_they_report() -> None:
    class Driver:
        async def open_adapter(self, oa: D3DDDIARG_OPENADAPTER) -> int:
            oa.driver_version = 0xB
            return 0

    async def create(adapter: Any, cd: D3DDDIARG_CREATEDEVICE) -> int:
        assert adapter == "adapter"
        cd.device_funcs = _funcs(pfn_flush=_returns(0), pfn_lock_async=_returns(0))
        return kmd.E_INVALIDARG

    async def main() -> tuple[int, int]:
        oa = D3DDDIARG_OPENADAPTER(adapter=None)
        a = await call_open_adapter(Driver(), oa, "dev0")
        cd = D3DDDIARG_CREATEDEVICE(runtime_device=None, callbacks=None)
        b = await call_create_device(D3DDDI_ADAPTERFUNCS(create), "adapter", cd, "dev0", 0xB)
        return a, b

    r, ev = _run(main)
    assert r.value == (0, kmd.E_INVALIDARG)
    assert [(e["event"], e["ddi"], e["device"], e.get("gated")) for e in ev] == [
        ("ddi.enter", "OpenAdapter", "dev0", False), ("ddi.exit", "OpenAdapter", "dev0", None),
        ("ddi.enter", "CreateDevice", "dev0", False),
        ("ddi.exit", "CreateDevice", "dev0", None)]
    assert ev[1]["driver_version"] == 0xB and ev[1]["hr_name"] == "S_OK"
    assert ev[3]["implements"] == ["LockAsync", "Flush"] and ev[3]["driver_version"] == 0xB
    assert ev[3]["hr"] == kmd.hex32(kmd.E_INVALIDARG)


def test_create_device_without_a_table_implements_nothing() -> None:
    async def create(adapter: Any, cd: D3DDDIARG_CREATEDEVICE) -> int:
        return 0

    async def main() -> int:
        cd = D3DDDIARG_CREATEDEVICE(runtime_device=None, callbacks=None)
        return await call_create_device(D3DDDI_ADAPTERFUNCS(create), None, cd, "dev0", 0xA)

    r, ev = _run(main)
    assert r.ok, r.failure
    assert ev[-1]["implements"] == []
