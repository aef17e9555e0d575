"""Handle tables (stale, foreign, wrong-type handles → STATUS_INVALID_PARAMETER, never an
exception) and the CpuPointer contract (LCB-1, KU-7, Q1, Q4)."""

from __future__ import annotations

import pytest

import kmd
from kmd import D3DDDICB_LOCKFLAGS as LF
from kmd._handles import HANDLE_BASE, HandleTable, HandleType
from tests.support.kernel import OK, Rig, run

INVALID = kmd.STATUS_INVALID_PARAMETER


def test_handle_table_is_typed_and_never_reuses() -> None:
    t = HandleTable()
    a = t.new(HandleType.DEVICE, "dev")
    b = t.new(HandleType.ALLOCATION, "alloc")
    assert a > HANDLE_BASE and b > a
    assert t.get(a, HandleType.DEVICE) == "dev"
    assert t.get(a, HandleType.ALLOCATION) is None  # wrong type
    assert t.get(True, HandleType.DEVICE) is None and t.get("x", HandleType.DEVICE) is None
    assert t.get(-a, HandleType.DEVICE) is None and t.get(1 << 40, HandleType.DEVICE) is None
    t.close(a)
    assert t.get(a, HandleType.DEVICE) is None  # stale
    c = t.new(HandleType.DEVICE, "dev2")
    assert c not in (a, b)


def test_every_thunk_rejects_bad_handles_with_invalid_parameter() -> None:
    async def main() -> None:
        rig = await Rig().setup()
        other = await rig.new_device()
        foreign = await rig.alloc(segments="aperture", device=other)
        k = rig.k
        d = rig.device
        garbage = [0, 1, 0xFFFFFFFF, -5, None, "h", 2.5, True, foreign]
        handles = {"adapter": rig.adapter, "device": d, "context": rig.context}
        # (expected handle kind, call) — every other live handle is the wrong type
        makers = [
            ("adapter", lambda x: kmd.D3DKMTCloseAdapter(k, kmd.D3DKMT_CLOSEADAPTER(x))),
            ("adapter", lambda x: kmd.D3DKMTCreateDevice(k, kmd.D3DKMT_CREATEDEVICE(x))),
            ("device", lambda x: kmd.D3DKMTDestroyDevice(k, kmd.D3DKMT_DESTROYDEVICE(x))),
            ("device", lambda x: kmd.D3DKMTCreateContext(k, kmd.D3DKMT_CREATECONTEXT(x))),
            ("context", lambda x: kmd.D3DKMTDestroyContext(k, kmd.D3DKMT_DESTROYCONTEXT(x))),
            ("device", lambda x: kmd.D3DKMTGetDeviceState(k, kmd.D3DKMT_GETDEVICESTATE(x))),
            ("alloc", lambda x: kmd.D3DKMTLock(k, kmd.D3DKMT_LOCK(d, x, LF.LockEntire))),
            ("alloc", lambda x: kmd.D3DKMTLock2(k, kmd.D3DKMT_LOCK2(d, x))),
            ("alloc", lambda x: kmd.D3DKMTUnlock(k, kmd.D3DKMT_UNLOCK(d, [x]))),
            ("alloc", lambda x: kmd.D3DKMTUnlock2(k, kmd.D3DKMT_UNLOCK2(d, x))),
            (
                "alloc",
                lambda x: kmd.D3DKMTDestroyAllocation(k, kmd.D3DKMT_DESTROYALLOCATION(d, 0, [x])),
            ),
            ("context", lambda x: kmd.D3DKMTRender(k, kmd.D3DKMT_RENDER(context=x))),
            ("device", lambda x: kmd.D3DKMTLock(k, kmd.D3DKMT_LOCK(x, foreign, LF.LockEntire))),
        ]
        for kind, make in makers:
            wrong = [h for name, h in handles.items() if name != kind]
            for bad in garbage + wrong:
                st = await make(bad)
                assert st == INVALID, (kind, bad)
        for thunk in (kmd.D3DKMTLock, kmd.D3DKMTRender, kmd.D3DKMTCreateAllocation):
            assert await thunk(k, None) == INVALID  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await kmd.D3DKMTLock("not a kernel", kmd.D3DKMT_LOCK())  # type: ignore[arg-type]

    run(main)


def test_handles_of_another_kernel_mean_nothing() -> None:
    async def main() -> None:
        a = await Rig(name="a").setup()
        b = await Rig(name="b").setup()
        h = await a.alloc(segments="aperture")
        # same numeric handles exist in b, but b's device owns none of a's allocations
        st, _ = await b.lock(h)
        assert st == INVALID
        assert b.k.statistics().thunk_calls == 4

    run(main)


def test_cpu_pointer_contract() -> None:
    async def main() -> None:
        rig = await Rig().setup()
        h = await rig.alloc(size=4096, segments="aperture")
        st, lk = await rig.lock(h)
        assert st == OK
        p = lk.data
        assert repr(p).startswith("<CpuPointer") and p.valid and p.allocation == h
        p[0:4] = b"abcd"
        p[4] = 0x65
        assert p[0:5] == b"abcde" and p[1] == ord("b") and p[4094:] == b"\0\0"
        for bad in (lambda: p.read(4090, 10), lambda: p.write(-1, b"x"), lambda: p[::2]):
            with pytest.raises(kmd.AccessViolation):
                bad()
        with pytest.raises(TypeError):
            p["x"]  # type: ignore[index]
        assert await rig.unlock(h) == OK
        assert p.state == "unlocked" and not p.valid
        with pytest.raises(kmd.AccessViolation, match="LCB-1"):
            p.read(0, 1)  # KU-7: dead after Unlock
        _st, ro = await rig.lock(h, LF.LockEntire | LF.ReadOnly)
        with pytest.raises(kmd.AccessViolation):
            ro.data.write(0, b"x")
        assert ro.data.read(0, 4) == b"abcd"

    r = run(main, check=False)
    assert r.failure is None
    assert set(r.rules()) == {"LCB-1"} and len(r.violations) == 5


def test_a_kernel_belongs_to_one_run() -> None:
    k = kmd.Kernel()

    async def first() -> None:
        assert await kmd.D3DKMTOpenAdapter(k, kmd.D3DKMT_OPENADAPTER()) == OK

    async def second() -> None:
        await kmd.D3DKMTOpenAdapter(k, kmd.D3DKMT_OPENADAPTER())

    run(first)
    r = run(second, check=False)
    assert r.failure is not None and "one Kernel per run" in r.failure.message
