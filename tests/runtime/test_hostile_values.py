"""A driver's hostile values at the seam (issue 14, the tester's second report): whatever the
driver returns or puts in a struct, the emulator answers with the documented code or a finding
that has a rule id — never a Python exception out of its own code.

* OpenAdapter and CreateDevice get the same HRESULT check as the device DDIs;
* an ``int`` subclass whose dunders raise, in a callback struct or in LockAsync's outputs, is
  read once with ``int.__index__`` (``runtime/_callbacks.py:plain_int``); an ``IntFlag`` keeps
  working; private data and payloads that are not what the header says get E_INVALIDARG;
* callbacks made after DestroyDevice returned are refused (``CB-AFTER-DESTROY``), and a render
  carrying a draw id the runtime never issued is ``DATA``;
* findings built from a driver's list are bounded.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

import kmd
import vthreads as vt
from runtime._callbacks import DESTROYED, plain_int
from tests.runtime.test_callbacks import Bench
from umd import ReferenceDevice, ReferenceDriver
from umd.ddi import D3DDDICB_ALLOCATE, D3DDDICB_LOCK, D3DDDICB_RENDER, D3DDDICB_UNLOCK
from wddmemu import RunSpec, run
from wddmemu._checker_state import DESTROYED as CHECKER_DESTROYED

E_INVALIDARG = int(kmd.E_INVALIDARG)
S_OK = int(kmd.S_OK)
LF = kmd.D3DDDICB_LOCKFLAGS


class EvilInt(int):
    """An int whose every method the runtime might call raises."""

    def _boom(self, *a: Any, **k: Any) -> Any:
        raise RuntimeError("evil int dunder")

    __format__ = __repr__ = __str__ = __hash__ = __eq__ = __index__ = __and__ = _boom
    __rand__ = __lt__ = __gt__ = __le__ = __ge__ = __or__ = __int__ = __bool__ = __ne__ = _boom


class Evil:
    """An object whose every dunder raises."""

    def _boom(self, *a: Any, **k: Any) -> Any:
        raise RuntimeError("evil dunder")

    __int__ = __index__ = __eq__ = __hash__ = __repr__ = __str__ = __len__ = __bool__ = _boom
    __lt__ = __gt__ = __le__ = __ge__ = __iter__ = __format__ = __ne__ = _boom


class Liar:
    """Claims to be an int through ``__class__``: ``isinstance`` believes it, ``type`` not."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return int

    def __le__(self, other: Any) -> bool:
        raise RuntimeError("liar")

    __ge__ = __lt__ = __gt__ = __le__


def test_plain_int_reads_subclasses_without_their_methods() -> None:
    assert plain_int(EvilInt(5)) == 5 and type(plain_int(EvilInt(5))) is int
    assert plain_int(LF.LockEntire | LF.Discard) == int(LF.LockEntire | LF.Discard)
    assert [plain_int(v) for v in (True, None, 1.0, "5", Evil(), Liar())] == [None] * 6


# ---- 1. OpenAdapter / CreateDevice return codes ----------------------------------------------


class _WrappedDriver(ReferenceDriver):
    """The reference driver whose OpenAdapter or CreateDevice returns ``value``."""

    def __init__(self, where: str, value: Any) -> None:
        super().__init__()
        self.where, self.value = where, value

    async def open_adapter(self, args: Any) -> Any:
        hr = await super().open_adapter(args)
        create = args.adapter_funcs.pfn_create_device

        async def create_device(adapter: Any, cd: Any) -> Any:
            hr = await create(adapter, cd)
            return self.value if self.where == "CreateDevice" else hr

        args.adapter_funcs.pfn_create_device = create_device
        return self.value if self.where == "OpenAdapter" else hr


@pytest.mark.parametrize("where", ["OpenAdapter", "CreateDevice"])
@pytest.mark.parametrize("value", [1 << 80, True, 0.0, None, "S_OK", Evil()],
                         ids=["2**80", "True", "0.0", "None", "str", "evil"])
def test_adapter_level_ddis_get_the_device_ddis_hresult_check(where: str, value: Any) -> None:
    f = run(RunSpec("dynamic-vb-ring", driver=_WrappedDriver(where, value))).run.failure
    assert f is not None and f.kind == "exception", f
    assert f.message.startswith(f"TypeError: driver DDI {where} returned "), f.message
    assert f.message.endswith("not a 32-bit HRESULT") and len(f.message) < 200, f.message


def test_an_intenum_hresult_from_createdevice_is_an_hresult() -> None:
    import enum

    class Code(enum.IntEnum):
        OK = 0

    r = run(RunSpec("dynamic-vb-ring", driver=_WrappedDriver("CreateDevice", Code.OK))).run
    assert r.failure is None and not r.violations, r.summary()


# ---- 2. hostile ints inside callback structs -------------------------------------------------


def _bench(prog: Any) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def main() -> None:
        b = await Bench().open()
        await prog(b, seen)
        await b.round_trip()  # the device's callbacks still work

    r = vt.Engine("fifo").run(main, name="app")
    assert r.failure is None, r.summary()
    return seen


async def _allocation(b: Bench) -> int:
    info = kmd.D3DDDI_ALLOCATIONINFO(private_driver_data=kmd.AllocationDesc(
        size=4096, segments="aperture"))
    assert await b.cb.pfn_allocate_cb(b.dev.handle, D3DDDICB_ALLOCATE(
        allocation_info=[info])) == S_OK
    return info.allocation


def test_an_int_subclass_with_raising_dunders_is_read_as_its_value_in_lock_and_unlock() -> None:
    async def prog(b: Bench, seen: dict[str, Any]) -> None:
        h = await _allocation(b)
        lk = D3DDDICB_LOCK(allocation=EvilInt(h), flags=EvilInt(int(LF.LockEntire)),
                           private_driver_data=EvilInt(0))
        seen["lock"] = await b.cb.pfn_lock_cb(b.dev.handle, lk)
        seen["unlock"] = await b.cb.pfn_unlock_cb(b.dev.handle, D3DDDICB_UNLOCK([EvilInt(h)]))
        seen["pages"] = await b.cb.pfn_lock_cb(b.dev.handle, D3DDDICB_LOCK(
            allocation=h, flags=0, pages=[EvilInt(0)]))
        await b.cb.pfn_unlock_cb(b.dev.handle, D3DDDICB_UNLOCK([h]))
        seen["intflag"] = await b.cb.pfn_lock_cb(b.dev.handle, D3DDDICB_LOCK(
            allocation=h, flags=LF.LockEntire | LF.DonotWait))  # an IntFlag, as drivers pass
        await b.cb.pfn_unlock_cb(b.dev.handle, D3DDDICB_UNLOCK([h]))
        seen["liar"] = await b.cb.pfn_lock_cb(b.dev.handle,
                                              D3DDDICB_LOCK(allocation=Liar(), flags=0))

    seen = _bench(prog)
    assert seen == {"lock": S_OK, "unlock": S_OK, "pages": S_OK, "intflag": S_OK,
                    "liar": E_INVALIDARG}


def test_hostile_values_in_a_render_and_an_allocation_get_a_code_not_an_exception() -> None:
    async def prog(b: Bench, seen: dict[str, Any]) -> None:
        h = await _allocation(b)
        draw = kmd.CmdDraw(draw_id=EvilInt(1), alloc_index=EvilInt(0), offset=EvilInt(0),
                           length=EvilInt(16))
        r = D3DDDICB_RENDER(command_buffer=[draw], command_length=EvilInt(16),
                            allocation_list=[kmd.D3DDDI_ALLOCATIONLIST(EvilInt(h))],
                            flags=EvilInt(0))
        seen["render"] = await b.cb.pfn_render_cb(b.dev.handle, r)
        bad_write = kmd.CmdWrite(alloc_index=0, offset=0, data=Evil())  # type: ignore[arg-type]
        seen["write"] = await b.cb.pfn_render_cb(b.dev.handle, D3DDDICB_RENDER(
            command_buffer=[bad_write], command_length=None,
            allocation_list=[kmd.D3DDDI_ALLOCATIONLIST(h, write_operation=True)]))
        for name, desc in (("segments", kmd.AllocationDesc(size=16, segments=Evil())),
                           ("size", kmd.AllocationDesc(size=EvilInt(4096))),
                           ("kind", kmd.AllocationDesc(size=16, kind=Evil()))):
            seen[name] = await b.cb.pfn_allocate_cb(b.dev.handle, D3DDDICB_ALLOCATE(
                allocation_info=[kmd.D3DDDI_ALLOCATIONINFO(private_driver_data=desc)]))
        seen["flags"] = await b.cb.pfn_allocate_cb(b.dev.handle, D3DDDICB_ALLOCATE(
            allocation_info=[kmd.D3DDDI_ALLOCATIONINFO(
                private_driver_data=kmd.AllocationDesc(size=16), flags=EvilInt(0))]))

    seen = _bench(prog)
    assert seen == {"render": S_OK, "write": E_INVALIDARG, "segments": E_INVALIDARG,
                    "size": E_INVALIDARG, "kind": E_INVALIDARG, "flags": S_OK}


class _LockAsyncOut(ReferenceDevice):
    """The reference, with one LockAsync output replaced after the fact."""

    field = "cookie"
    value: Any = None

    async def pfn_lock_async(self, args: Any) -> int:
        hr = await super().pfn_lock_async(args)
        if hr == 0:
            old = getattr(args, self.field)
            setattr(args, self.field, EvilInt(old) if self.value is None else self.value)
        return hr


def _lock_async_out(field: str, value: Any = None) -> ReferenceDriver:
    cls = type("Out", (_LockAsyncOut,), {"field": field, "value": value})
    return ReferenceDriver(device_class=cls)


@pytest.mark.parametrize("field", ["cookie", "pitch", "slice_pitch"])
def test_a_hostile_int_in_lockasyncs_outputs_never_crashes_the_runtime(field: str) -> None:
    r = run(RunSpec("dynamic-vb-ring", driver=_lock_async_out(field))).run
    assert r.failure is None and not r.violations, r.summary()


@pytest.mark.parametrize("value", [0, "garbage", None], ids=["zero", "str", "evil-int"])
def test_lockasyncs_flags_written_by_the_driver_never_steer_the_runtime(value: Any) -> None:
    """Flags is an in-field: the runtime decides the Rename from the flags it passed, not from
    what the driver left there (sweep E D4: zeroed, the Rename was skipped and the app blamed
    for a broken NoOverwrite; a str raised inside the runtime)."""
    r = run(RunSpec("dynamic-vb-ring", driver=_lock_async_out("flags", value))).run
    assert r.failure is None and not r.violations, r.summary()


def test_a_driver_that_changes_the_working_directory_leaves_it_as_it_was(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The run ends where it started (``_runner._cwd_kept``): a relative trace is renamed into
    the directory the user ran in, and the next schedule starts there (sweep E D8)."""
    import os

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    class Wanders(ReferenceDevice):
        async def pfn_rename(self, args: Any) -> int:
            os.chdir(elsewhere)
            raise ValueError("after chdir")

    monkeypatch.chdir(tmp_path)
    spec = RunSpec("dynamic-vb-ring", driver=ReferenceDriver(device_class=Wanders))
    r = run(spec, trace="t.jsonl").run
    assert r.failure is not None and r.failure.kind == "exception"
    assert os.getcwd() == str(tmp_path)
    assert (tmp_path / "t.jsonl").stat().st_size > 0 and not list(elsewhere.iterdir())


def test_a_cookie_that_is_not_a_handle_is_la12() -> None:
    r = run(RunSpec("dynamic-vb-ring", driver=_lock_async_out("cookie", 1 << 80))).run
    assert r.violations and r.violations[0].rule == "LA-12", r.summary()
    assert "81-bit int, not a HANDLE" in r.violations[0].message


@pytest.mark.parametrize(("field", "value", "said"), [
    ("cookie", "cookie!", "an hCookie that is a str, not a HANDLE"),
    ("cookie", True, "an hCookie that is a bool, not a HANDLE"),
    ("cookie", 1.5, "an hCookie that is a float, not a HANDLE"),
    ("pitch", "wide", "returned a Pitch that is a str: a successful rename"),
], ids=["str", "bool", "float", "pitch-str"])
def test_an_output_that_is_no_int_is_la12_naming_what_it_is(field: str, value: Any,
                                                             said: str) -> None:
    # what it is, not "no hCookie (0)" or "Pitch None": the runtime logs the kind beside it
    r = run(RunSpec("dynamic-vb-ring", driver=_lock_async_out(field, value))).run
    assert r.violations and r.violations[0].rule == "LA-12", r.summary()
    assert said in r.violations[0].message, r.violations[0].message


class _NoLockPointer(ReferenceDevice):
    """The reference, its Lock's pSurfData dropped after the fact."""

    async def pfn_lock(self, args: Any) -> int:
        hr = await super().pfn_lock(args)
        if hr == 0:
            args.surf_data = None
        return hr


def test_a_lock_that_returns_no_pointer_is_lk6_at_the_seam() -> None:
    """Before LK-6 judged Lock's pointer, this run failed only as the application's
    AccessViolation, and a Lock whose pointer nobody used passed; now the seam says it."""
    r = run(RunSpec("lock-flags", driver=ReferenceDriver(device_class=_NoLockPointer))).run
    assert "LK-6" in r.rules(), r.summary()
    v = next(v for v in r.violations if v.rule == "LK-6")
    assert "returned S_OK with pSurfData NULL" in v.message
    # the reference's own pointer is no finding
    assert run(RunSpec("lock-flags")).run.rules() == []


# ---- 3. callbacks after DestroyDevice; draws the runtime never issued ------------------------


class _AfterDestroy(ReferenceDevice):
    """DestroyDevice leaves a thread behind that allocates, locks and submits afterwards."""

    results: ClassVar[list[Any]] = []

    async def pfn_destroy_device(self, args: Any = None) -> int:
        hr = await super().pfn_destroy_device(args)
        cb, rt = self.callbacks, self.rt_device

        async def stray() -> None:
            await vt.checkpoint("stray")
            info = kmd.D3DDDI_ALLOCATIONINFO(private_driver_data=kmd.AllocationDesc(
                size=4096, segments="aperture"))
            out = [await cb.pfn_allocate_cb(rt, D3DDDICB_ALLOCATE(allocation_info=[info]))]
            out.append(await cb.pfn_lock_cb(rt, D3DDDICB_LOCK(allocation=0x40000100,
                                                              flags=LF.LockEntire)))
            out.append(await cb.pfn_render_cb(rt, D3DDDICB_RENDER(
                command_buffer=[kmd.CmdDraw(draw_id=7, alloc_index=0, offset=0, length=16)],
                command_length=16,
                allocation_list=[kmd.D3DDDI_ALLOCATIONLIST(allocation=0x40000100)])))
            _AfterDestroy.results[:] = out

        vt.spawn("stray", stray)
        return hr


def test_callbacks_after_destroydevice_are_refused_and_reported() -> None:
    assert DESTROYED == CHECKER_DESTROYED  # the checker reads the runtime's word from events
    r = run(RunSpec("dynamic-vb-ring", driver=ReferenceDriver(device_class=_AfterDestroy))).run
    assert _AfterDestroy.results == [E_INVALIDARG] * 3
    assert [(v.rule, v.fields.get("callback")) for v in r.violations] == [
        ("CB-AFTER-DESTROY", "pfnAllocateCb"), ("CB-AFTER-DESTROY", "pfnLockCb"),
        ("CB-AFTER-DESTROY", "pfnRenderCb")], r.summary()
    assert r.failure is None, r.summary()


class _FakeDraw(ReferenceDevice):
    """Present also submits a draw command whose id the runtime never issued."""

    async def pfn_present(self, args: Any) -> int:
        hr = await super().pfn_present(args)
        # the checker judges the draw ids at cb.enter, whatever the kernel then says
        await self.callbacks.pfn_render_cb(self.rt_device, D3DDDICB_RENDER(
            command_buffer=[kmd.CmdDraw(draw_id=999999, alloc_index=0, offset=0, length=16)],
            command_length=16, allocation_list=[kmd.D3DDDI_ALLOCATIONLIST(0x40000100)]))
        return hr


def test_a_render_carrying_a_draw_the_runtime_never_issued_is_data() -> None:
    r = run(RunSpec("dynamic-vb-ring", driver=ReferenceDriver(device_class=_FakeDraw))).run
    data = [v for v in r.violations if v.rule == "DATA"]
    assert data and "draw id 999999, which the runtime never issued" in data[0].message, \
        r.summary()


# ---- 4. bounded findings ---------------------------------------------------------------------


class _HugeUnlock(ReferenceDevice):
    async def pfn_lock_async(self, args: Any) -> int:
        await self.callbacks.pfn_unlock_cb(self.rt_device, D3DDDICB_UNLOCK(list(range(100_000))))
        return await super().pfn_lock_async(args)


@pytest.mark.slow  # 100,000 handles through pfnUnlockCb: ~1.7 s
def test_a_finding_over_a_drivers_huge_list_is_bounded() -> None:
    r = run(RunSpec("dynamic-vb-ring", driver=ReferenceDriver(device_class=_HugeUnlock))).run
    err = [v for v in r.violations if v.rule == "ERR-1"]
    assert err, r.summary()
    assert "… (99995 more)" in err[0].message and len(err[0].message) < 400, err[0].message
