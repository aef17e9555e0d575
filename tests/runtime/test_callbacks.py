"""The runtime's pfn*Cb under bad arguments (issue 14): every bad field value gets E_INVALIDARG,
nothing reaches the kernel, nothing leaks, and the device's callback mutex is always released
(a later callback does not deadlock)."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kmd
import umd
import vthreads as vt
from tests.support.driver import Rig
from umd.ddi import (
    D3DDDICB_ALLOCATE,
    D3DDDICB_DEALLOCATE,
    D3DDDICB_LOCK,
    D3DDDICB_RENDER,
    D3DDDICB_UNLOCK,
)

E_INVALIDARG = int(kmd.E_INVALIDARG)


class Bench:
    """The runtime's real callbacks over a kernel device (``tests/umd/rig.py``'s stand-in for
    the runtime Device), driven directly."""

    async def open(self) -> Bench:
        rig = await Rig(umd.ReferenceDriver()).open()
        self.kernel, self.dev, self.cb = rig.kernel, rig.rt_device, rig.rcb
        return self

    @property
    def allocations(self) -> int:
        return len(self.kernel.devices[self.dev.km_device].allocations)

    async def round_trip(self) -> None:
        """A valid allocate → lock → unlock → render → deallocate: proves the mutex is free."""
        a = D3DDDICB_ALLOCATE(rt_resource=0x50, allocation_info=[
            kmd.D3DDDI_ALLOCATIONINFO(private_driver_data=kmd.AllocationDesc(size=4096))])
        assert await self.cb.pfn_allocate_cb(self.dev.handle, a) == kmd.S_OK
        h = a.allocation_info[0].allocation
        lk = D3DDDICB_LOCK(allocation=h, flags=int(kmd.D3DDDICB_LOCKFLAGS.LockEntire))
        assert await self.cb.pfn_lock_cb(self.dev.handle, lk) == kmd.S_OK
        assert await self.cb.pfn_unlock_cb(self.dev.handle, D3DDDICB_UNLOCK([lk.allocation])) \
            == kmd.S_OK
        r = D3DDDICB_RENDER(command_buffer=[kmd.CmdNop()], command_length=None,
                            allocation_list=[kmd.D3DDDI_ALLOCATIONLIST(lk.allocation)])
        assert await self.cb.pfn_render_cb(self.dev.handle, r) == kmd.S_OK
        assert r.new_command_buffer_size > 0
        assert await self.cb.pfn_deallocate_cb(
            self.dev.handle, D3DDDICB_DEALLOCATE(rt_resource=0x50)) == kmd.S_OK


def _valid(name: str) -> Any:
    info = kmd.D3DDDI_ALLOCATIONINFO(private_driver_data=kmd.AllocationDesc(size=4096))
    return {
        "pfn_allocate_cb": lambda: D3DDDICB_ALLOCATE(private_driver_data=b"",
                                                     rt_resource=0x60, allocation_info=[info]),
        "pfn_deallocate_cb": lambda: D3DDDICB_DEALLOCATE(rt_resource=0, allocations=[0x10]),
        "pfn_lock_cb": lambda: D3DDDICB_LOCK(allocation=0x10, flags=0, pages=None),
        "pfn_unlock_cb": lambda: D3DDDICB_UNLOCK([0x10]),
        "pfn_render_cb": lambda: D3DDDICB_RENDER(command_buffer=[kmd.CmdNop()],
                                                 command_length=None, allocation_list=[]),
    }[name]()


#: every callback's fields, and those for which None is a valid value (a NULL pointer)
FIELDS = {
    "pfn_allocate_cb": (("private_driver_data", "rt_resource", "allocation_info", "km_resource"),
                        {"private_driver_data"}),
    "pfn_deallocate_cb": (("rt_resource", "allocations"), set()),
    "pfn_lock_cb": (("allocation", "flags", "pages", "private_driver_data"), {"pages"}),
    "pfn_unlock_cb": (("allocations",), set()),
    "pfn_render_cb": (("command_buffer", "command_length", "allocation_list", "flags",
                       "new_command_buffer_size", "new_allocation_list_size"),
                      {"command_length"}),
}
LISTS = {"allocation_info", "allocations", "pages", "command_buffer", "allocation_list"}

#: values no field accepts (None aside, see FIELDS)
scalar_junk = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.just(math.nan),
    st.text(max_size=4),
    st.binary(min_size=1, max_size=4),
    st.integers(min_value=2**32, max_value=2**80),
    st.integers(max_value=-1, min_value=-(2**70)),
    st.booleans(),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.builds(object),
)
#: a list field gets a scalar, or a list holding one junk element (unhashables included)
list_junk = st.one_of(scalar_junk, st.lists(scalar_junk, min_size=1, max_size=3),
                      st.lists(st.lists(st.integers(), max_size=2), min_size=1, max_size=2))


@st.composite
def bad_call(draw: st.DrawFn) -> tuple[str, str, Any]:
    cb = draw(st.sampled_from(sorted(FIELDS)))
    field = draw(st.sampled_from(FIELDS[cb][0]))
    value = draw(list_junk if field in LISTS else scalar_junk)
    return cb, field, value


def _invalid(cb: str, field: str, value: Any) -> bool:
    if cb == "pfn_allocate_cb" and field == "private_driver_data":
        return not (value is None or isinstance(value, bytes | bytearray))  # data, or NULL
    return value is not None or field not in FIELDS[cb][1]


settings_ = settings(max_examples=250, deadline=None, derandomize=True, database=None,
                     suppress_health_check=[HealthCheck.too_slow])


@settings_
@given(call=bad_call())
def test_bad_callback_fields_get_e_invalidarg_and_leave_the_device_usable(call: tuple) -> None:
    cb, field, value = call
    seen: dict[str, Any] = {}

    async def main() -> None:
        b = await Bench().open()
        before = b.allocations
        args = _valid(cb)
        setattr(args, field, value)
        hr = await getattr(b.cb, cb)(b.dev.handle, args)
        seen["hr"] = hr
        seen["leaked"] = b.allocations - before
        mid = b.allocations
        await b.round_trip()  # would block forever on a mutex left held
        seen["after"] = b.allocations - mid

    r = vt.Engine("fifo").run(main, name="app")
    assert r.failure is None, (cb, field, value, r.summary())
    assert isinstance(seen["hr"], int)
    if _invalid(cb, field, value):
        assert seen["hr"] == E_INVALIDARG, (cb, field, value, kmd.hresult_name(seen["hr"]))
        assert seen["leaked"] == 0, (cb, field, value)  # nothing reached the kernel
    assert seen["after"] == 0, (cb, field, value)


def test_foreign_device_and_wrong_struct_are_refused() -> None:
    async def main() -> None:
        b = await Bench().open()
        for name in FIELDS:
            fn = getattr(b.cb, name)
            assert await fn(object(), _valid(name)) == E_INVALIDARG
            assert await fn(b.dev.handle, "not a struct") == E_INVALIDARG
        await b.round_trip()

    r = vt.Engine("fifo").run(main, name="app")
    assert r.failure is None, r.summary()


def test_the_mutex_is_released_when_the_kernel_raises() -> None:
    """Whatever breaks after validation (here: a kernel thunk that raises), the next callback
    does not deadlock."""

    async def main() -> None:
        b = await Bench().open()
        real = b.kernel.dxgk_unlock

        def boom(_a: Any) -> Any:
            raise RuntimeError("kernel bug")

        b.kernel.dxgk_unlock = boom  # type: ignore[method-assign]
        try:
            await b.cb.pfn_unlock_cb(b.dev.handle, D3DDDICB_UNLOCK([0x10]))
        except RuntimeError:
            pass
        b.kernel.dxgk_unlock = real  # type: ignore[method-assign]
        await b.round_trip()

    r = vt.Engine("fifo").run(main, name="app")
    assert r.failure is None, r.summary()
