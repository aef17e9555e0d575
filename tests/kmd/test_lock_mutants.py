"""Tests written from the survivors of mutation testing kmd/_lock.py and kmd/flags.py
(bench/mutants.py, issue 16): each pins a behaviour of the lock path a mutant changed and the
other kmd tests did not notice — the exact NTSTATUS, the rule id and every field of the ``kmd.*``
trace event, the kernel's counters, and the waits' wake-up causes (KL-*, KL2-*, KU-*, LCB-5,
LCB-6, TDR-12, Q3, Q5)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import kmd
import vthreads as vt
from kmd import D3DDDICB_LOCKFLAGS as LF
from kmd import KernelConfig
from tests.support.kernel import OK, Rig, run_traced

INVALID = 0xC000000D
REMOVED = 0xC00002B6
BUSY = 0xC01E0102
DISCARD = LF.LockEntire | LF.Discard
HT = kmd.DXGK_HANDLE_TYPE.DXGK_HANDLE_ALLOCATION
#: the fields every trace event carries, whatever emitted it
META = {"step", "t", "thread", "seed", "strategy", "backend"}
CODES = {
    0: "STATUS_SUCCESS",
    INVALID: "STATUS_INVALID_PARAMETER",
    REMOVED: "STATUS_DEVICE_REMOVED",
    BUSY: "STATUS_GRAPHICS_ALLOCATION_BUSY",
    0xC01E0103: "STATUS_GRAPHICS_TOO_MANY_REFERENCES",
    0xC01E0101: "STATUS_GRAPHICS_CANT_LOCK_MEMORY",
    0xC01E0107: "STATUS_GRAPHICS_UNSWIZZLING_APERTURE_UNAVAILABLE",
    0xC01E0109: "STATUS_GRAPHICS_CANT_EVICT_PINNED_ALLOCATION",
    0xC0000017: "STATUS_NO_MEMORY",
}


def events(evs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """The ``name`` events without the fields every event carries."""
    return [{k: v for k, v in e.items() if k not in META} for e in evs if e.get("event") == name]


def code(st: int) -> dict[str, str]:
    return {"status": f"0x{st:08X}", "status_name": CODES[st]}


def fail(ev: str, st: int, rule: str, **fields: Any) -> dict[str, Any]:
    """The trace event of a failed call (``KernelCore._fail``)."""
    return {"event": ev, **fields, "rule": rule, **code(st)}


def traced(main: Callable[[], Any], **kw: Any) -> list[dict[str, Any]]:
    return run_traced(main, **kw)[1]


def stats(rig: Rig, *names: str) -> tuple[int, ...]:
    s = rig.k.statistics()
    return tuple(getattr(s, n) for n in names)


# ---- LCB-6: Discard + NoExistingReference waits for room (_wait_for_rename_room) ----


async def _capped(rig: Rig, busy_old: bool = False) -> tuple[int, int, int]:
    """Two live instances of one allocation at max_rename_instances=2: a0 locked (so never
    freed; with ``busy_old`` also busy for 4 ms), a1 current and busy for 3 ms after that.
    Returns (a0, a1, a1's fence)."""
    a0 = await rig.alloc(segments="aperture")
    st, _ = await rig.lock(a0)
    assert st == OK
    if busy_old:
        await rig.busy(a0, ns=4_000_000)
    st, lk = await rig.lock(a0, DISCARD)
    assert st == OK
    a1 = lk.allocation
    assert a1 != a0 and await rig.unlock(a1) == OK
    return a0, a1, await rig.busy(a1, ns=3_000_000)


def test_rename_room_wait_reuses_the_current_instance_once_idle() -> None:
    """LCB-6: no room for a rename and the current instance busy → stall; it wakes when the
    current instance is idle and reuses it (NoExistingReference: no rename)."""
    seen: dict[str, Any] = {}

    async def main() -> None:
        rig = await Rig(KernelConfig(max_rename_instances=2)).setup()
        a0, a1, f1 = await _capped(rig)
        st, lk = await rig.lock(a1, DISCARD | LF.NoExistingReference)
        assert st == 0 and lk.allocation == a1 and lk.data.instance == 1
        end = next(r.ended_ns for r in rig.k.dma_records if r.fence == f1)
        assert vt.now() == end > 0
        assert stats(rig, "renames", "rename_failures", "busy_failures", "lock_waits") == (
            1, 0, 0, 1)
        assert stats(rig, "locks", "live_instances") == (3, 2)
        seen.update(dev=rig.device, a0=a0, a1=a1, f1=f1)

    evs = traced(main)
    base = {"device": seen["dev"], "allocation": seen["a1"], "flags": "0x190"}
    assert events(evs, "kmd.lock.wait") == [
        {"event": "kmd.lock.wait", **base, "fence": seen["f1"], "why": "2 instances live"}
    ]
    assert events(evs, "kmd.lock")[-1] == {
        "event": "kmd.lock", **base, "instance": 1, "renamed": False, "pages": None,
        "segment": "aperture", "swizzle_range": False, **code(0),
    }


def test_rename_room_wait_renames_when_an_old_instance_frees() -> None:
    """LCB-6: the stall also ends when an old instance frees (fewer live instances): then the
    rename succeeds, while the current instance is still busy."""
    seen: dict[str, Any] = {}

    async def main() -> None:
        rig = await Rig(KernelConfig(max_rename_instances=2)).setup()
        a0 = await rig.alloc(segments="aperture")
        f0 = await rig.busy(a0, ns=3_000_000)
        st, lk = await rig.lock(a0, DISCARD)
        a1 = lk.allocation
        assert st == OK and await rig.unlock(a1) == OK
        f1 = await rig.busy(a1, ns=6_000_000)  # retires a0 (busy until f0)
        st, lk = await rig.lock(a1, DISCARD | LF.NoExistingReference)
        assert st == 0
        a2 = lk.allocation
        assert a2 not in (a0, a1) and lk.data.instance == 2
        f0_end = next(r.ended_ns for r in rig.k.dma_records if r.fence == f0)
        assert vt.now() == f0_end
        assert rig.k.completed_fence == f0 < f1  # a1 still busy: woken by a0's free
        assert stats(rig, "renames", "rename_failures", "lock_waits") == (2, 0, 1)
        assert rig.k.callbacks.dxgk_cb_get_handle_data(a0, HT) is None  # a0 freed
        seen.update(dev=rig.device, a0=a0, a1=a1, a2=a2, f1=f1)

    evs = traced(main)
    base = {"device": seen["dev"], "allocation": seen["a1"], "flags": "0x190"}
    assert events(evs, "kmd.lock.wait") == [
        {"event": "kmd.lock.wait", **base, "fence": seen["f1"], "why": "2 instances live"}
    ]
    assert events(evs, "kmd.rename")[-1] == {
        "event": "kmd.rename", "device": seen["dev"], "allocation": seen["a0"],
        "old": seen["a1"], "new": seen["a2"], "index": 2, "live": 2, "segment": "aperture",
    }
    assert events(evs, "kmd.lock")[-1]["allocation"] == seen["a2"]
    assert events(evs, "kmd.lock")[-1]["renamed"] is True


def _woken_by(cause: str) -> list[dict[str, Any]]:
    """A Discard + NoExistingReference lock stalled for room, woken by ``cause``."""
    seen: dict[str, Any] = {}

    async def main() -> None:
        rig = await Rig(KernelConfig(max_rename_instances=2)).setup()
        a0, a1, f1 = await _capped(rig, busy_old=True)  # nothing frees before 4 ms

        async def other() -> None:
            await vt.sleep(1_000_000)
            if cause == "removal":
                assert rig.k.inject_removal(rig.device)
            elif cause == "allocation":
                da = kmd.D3DKMT_DESTROYALLOCATION(device=rig.device, allocations=[a0])
                assert await kmd.D3DKMTDestroyAllocation(rig.k, da) == OK
            else:
                dd = kmd.D3DKMT_DESTROYDEVICE(device=rig.device)
                assert await kmd.D3DKMTDestroyDevice(rig.k, dd) == OK

        t = vt.spawn("other", other)
        st, lk = await rig.lock(a1, DISCARD | LF.NoExistingReference)
        seen.update(st=st, now=vt.now(), data=lk.data)
        await t.join()
        seen.update(dev=rig.device, a1=a1, f1=f1)

    evs = traced(main)
    assert seen["now"] == 1_000_000 and seen["data"] is None  # at once, not at the fence
    blocks = [e["waits"] for e in evs if e.get("event") == "block" and e["thread"] == "main"]
    assert blocks[0] == f"fence {seen['f1']} on kmd.gpu"
    st = seen["st"]
    base = {"device": seen["dev"], "allocation": seen["a1"], "flags": "0x190"}
    rule = "TDR-12" if cause == "removal" else "KL-2"
    assert st == (REMOVED if cause == "removal" else INVALID)
    assert events(evs, "kmd.lock")[-1] == fail("kmd.lock", st, rule, **base)
    return evs


def test_rename_room_wait_woken_by_removal_is_device_removed() -> None:
    _woken_by("removal")


def test_rename_room_wait_woken_by_destroying_the_allocation_is_kl2() -> None:
    _woken_by("allocation")


def test_rename_room_wait_woken_by_destroying_the_device_is_kl2() -> None:
    _woken_by("device")


# ---- D3DKMTLock2 (KL2-*) and Unlock2: every refusal's event, the success's pointer ----

THREE_SEGMENTS = dict(
    segments=(
        kmd.SegmentDesc("local", 16 * kmd.MiB, "memory", cpu_visible=False),
        kmd.SegmentDesc("visible", 8 * kmd.MiB, "memory", cpu_visible=True),
        kmd.SegmentDesc("aperture", 16 * kmd.MiB, "aperture"),
    )
)


async def _primary(rig: Rig, alt: bool) -> int:
    info = kmd.D3DDDI_ALLOCATIONINFO(
        private_driver_data=kmd.AllocationDesc(size=8192, use_alternate_va=alt),
        flags=kmd.D3DDDI_ALLOCATIONINFO_FLAGS.Primary,
        vidpn_source_id=0,
    )
    ca = kmd.D3DKMT_CREATEALLOCATION(device=rig.device, allocation_info=[info])
    assert await kmd.D3DKMTCreateAllocation(rig.k, ca) == OK
    return info.allocation


async def _lock2_scenario(seen: dict[str, Any]) -> None:
    cfg = KernelConfig(max_pending_references=2, swizzling_apertures=1, **THREE_SEGMENTS)
    rig = await Rig(cfg).setup()
    h = await rig.alloc(segments="any")
    f = await rig.busy(h, ns=2_000_000)
    st, a = await rig.lock2(h)  # KL2-2: waits
    assert st == 0 and rig.k.completed_fence == f
    p = a.data
    assert (p.offset, len(p), p.read_only, p.allocation, p.instance) == (0, 8192, False, h, 0)
    p.write(8191, b"z")
    assert p.read(8191, 1) == b"z"
    assert stats(rig, "locks", "lock_waits") == (1, 1)
    st, b = await rig.lock(h)  # a Lock2 is not exclusive
    assert st == 0 and await rig.unlock(h) == 0 and b.data.state == "unlocked"
    assert p.state == "mapped" and await rig.unlock2(h) == 0 and p.state == "unlocked"
    assert await rig.unlock2(h) == INVALID  # KU-3: nothing left
    assert stats(rig, "unlocks") == (2,)
    assert (await rig.lock2(h, 1))[0] == INVALID  # KL2-1
    assert (await rig.lock2(rig.context))[0] == INVALID  # KL-2
    hidden = await rig.alloc(segments="aperture", cpu_visible=False)
    assert (await rig.lock2(hidden))[0] == INVALID  # KL-12
    alt, plain = await _primary(rig, True), await _primary(rig, False)
    assert (await rig.lock2(alt))[0] == INVALID  # KL-19
    assert (await rig.lock2(plain))[0] == 0  # a primary without UseAlternateVA is fine
    assert await rig.unlock2(plain) == 0
    sw = await rig.alloc(segments="local", swizzled=True)
    assert (await rig.lock(sw))[0] == 0
    assert (await rig.lock2(sw))[0] == BUSY  # KL-14
    await rig.busy(h)
    await rig.busy(h)
    assert (await rig.lock2(h))[0] == 0xC01E0103  # Q3
    await rig.k.wait_idle()
    # KL-11: an instance superseded by a Discard rename and then referenced
    st, lk = await rig.lock(h, DISCARD)
    assert st == 0 and await rig.unlock(lk.allocation) == 0
    st, _ = await rig.lock2(lk.allocation)
    assert st == 0 and await rig.unlock2(lk.allocation) == 0
    st, _ = await rig.lock(h)  # keep h alive after the reference retires it
    await rig.busy(lk.allocation)
    assert (await rig.lock2(h))[0] == INVALID  # KL-11
    assert rig.k.inject_removal(rig.device)
    assert (await rig.lock2(plain))[0] == REMOVED  # KL2-5
    seen.update(dev=rig.device, ctx=rig.context, h=h, f=f, hidden=hidden, alt=alt,
                plain=plain, sw=sw, new=lk.allocation)



def test_lock2_events_codes_and_pointer() -> None:
    seen: dict[str, Any] = {}

    evs = traced(partial(_lock2_scenario, seen))
    d = seen["dev"]

    def at(h: int, **kw: Any) -> dict[str, Any]:
        return {"device": d, "allocation": h, "flags": "0x0", **kw}

    ok = {"event": "kmd.lock2", **code(0)}
    assert events(evs, "kmd.lock2") == [
        {**ok, **at(seen["h"]), "instance": 0},
        fail("kmd.lock2", INVALID, "KL2-1", **at(seen["h"], flags="0x1")),
        fail("kmd.lock2", INVALID, "KL-2", device=d, allocation=seen["ctx"]),
        fail("kmd.lock2", INVALID, "KL-12", **at(seen["hidden"])),
        fail("kmd.lock2", INVALID, "KL-19", **at(seen["alt"])),
        {**ok, **at(seen["plain"]), "instance": 0},
        fail("kmd.lock2", BUSY, "KL-14", **at(seen["sw"])),
        fail("kmd.lock2", 0xC01E0103, "Q3", **at(seen["h"])),
        {**ok, **at(seen["new"]), "instance": 1},
        fail("kmd.lock2", INVALID, "KL-11", **at(seen["h"])),
        fail("kmd.lock2", REMOVED, "KL2-5", device=d),
    ]
    assert events(evs, "kmd.lock.wait")[0] == {
        "event": "kmd.lock.wait", **at(seen["h"]), "fence": seen["f"]}
    unlock2 = {"event": "kmd.unlock2", "device": d, "remaining": 0, **code(0)}
    assert events(evs, "kmd.unlock2") == [
        {**unlock2, "allocation": seen["h"], "instance": 0},
        fail("kmd.unlock2", INVALID, "KU-3", device=d, allocation=seen["h"]),
        {**unlock2, "allocation": seen["plain"], "instance": 0},
        {**unlock2, "allocation": seen["new"], "instance": 1},
    ]
    blocks = [e for e in evs if e.get("event") == "block" and e.get("thread") == "main"]
    assert blocks[0]["waits"] == f"fence {seen['f']} on kmd.gpu"


# ---- D3DKMTLock's wait for the GPU (_wait_idle): each wake-up cause, its code and rule ----


def _wait_idle_woken_by(cause: str) -> dict[str, Any]:
    """A plain lock of a busy instance (its DMA buffer queued behind a 2 ms one of another
    allocation, then 5 ms); at 1 ms ``cause`` happens."""
    seen: dict[str, Any] = {}

    async def main() -> None:
        rig = await Rig().setup()
        h = await rig.alloc(segments="aperture")
        x = await rig.alloc(segments="aperture")
        fx = await rig.busy(x, ns=2_000_000) if cause != "retired, then idle" else 0
        f = await rig.busy(h, ns=5_000_000)

        async def other() -> None:
            await vt.sleep(1_000_000)
            if cause == "removal":
                assert rig.k.inject_removal(rig.device)
            elif cause == "allocation":
                da = kmd.D3DKMT_DESTROYALLOCATION(device=rig.device, allocations=[h])
                assert await kmd.D3DKMTDestroyAllocation(rig.k, da) == OK
            elif cause == "device":
                dd = kmd.D3DKMT_DESTROYDEVICE(device=rig.device)
                assert await kmd.D3DKMTDestroyDevice(rig.k, dd) == OK
            else:  # retired: a Discard rename, then a reference to the new instance (LCB-9)
                st, lk = await rig.lock(h, DISCARD)
                assert st == OK and await rig.unlock(lk.allocation) == OK
                st, _ = await rig.render([kmd.CmdDraw(1, 0, 0, 1)], [lk.allocation])
                assert st == OK

        t = vt.spawn("other", other)
        st, lk = await rig.lock(h)
        seen.update(st=st, now=vt.now(), data=lk.data, waits=stats(rig, "lock_waits"))
        await t.join()
        await rig.k.wait_idle()
        ends = {r.fence: r.ended_ns for r in rig.k.dma_records}
        seen.update(end=ends.get(f), first_end=ends.get(fx))
        seen.update(dev=rig.device, h=h, f=f)

    evs = traced(main)
    base = {"device": seen["dev"], "allocation": seen["h"], "flags": "0x10"}
    assert seen["data"] is None and seen["waits"] == (1,)
    wait = {"event": "kmd.lock.wait", **base, "fence": seen["f"]}
    assert events(evs, "kmd.lock.wait")[0] == wait
    mine = [e for e in evs if e.get("thread") == "main"]
    blocks = [e["waits"] for e in mine if e.get("event") == "block"]
    assert blocks[0] == f"fence {seen['f']} on kmd.gpu"
    seen["fail"] = [e for e in events(evs, "kmd.lock") if e.get("rule")][-1]
    seen["base"] = base
    return seen


def test_wait_idle_woken_by_removal_is_tdr12_at_once() -> None:
    s = _wait_idle_woken_by("removal")
    assert s["st"] == REMOVED and s["now"] == 1_000_000
    assert s["fail"] == fail("kmd.lock", REMOVED, "TDR-12", **s["base"])


def test_wait_idle_woken_by_destroying_the_device_is_kl2_at_once() -> None:
    s = _wait_idle_woken_by("device")
    assert s["st"] == INVALID and s["now"] == 1_000_000
    assert s["fail"] == fail("kmd.lock", INVALID, "KL-2", **s["base"])


def test_wait_idle_on_a_destroyed_allocation_ends_at_the_fence_with_kl2() -> None:
    """Q8: the instance stays until its DMA buffer completes; the lock then fails (KL-2)."""
    s = _wait_idle_woken_by("allocation")
    assert s["st"] == INVALID and s["now"] == s["end"] > 1_000_000
    assert s["fail"] == fail("kmd.lock", INVALID, "KL-2", **s["base"])


def test_wait_idle_woken_after_retirement_is_kl11() -> None:
    """A rename + reference retires the waited-for instance while it is still busy: the next
    wake-up of the fence condition (here the other allocation's DMA buffer completing) ends the
    wait with KL-11, before the instance's own fence."""
    s = _wait_idle_woken_by("retired")
    assert s["st"] == INVALID and s["now"] == s["first_end"] < s["end"]
    assert s["fail"] == fail("kmd.lock", INVALID, "KL-11", **s["base"])


def test_wait_idle_on_an_instance_retired_then_freed_is_kl2_at_its_fence() -> None:
    """Retired while busy and nothing else wakes the waiter: the instance is freed the moment
    its fence completes, so the wait ends there with KL-2 (a freed instance), not KL-11."""
    s = _wait_idle_woken_by("retired, then idle")
    assert s["st"] == INVALID and s["now"] == s["end"]
    assert s["fail"] == fail("kmd.lock", INVALID, "KL-2", **s["base"])


def test_ignore_read_sync_waits_for_the_last_write_only() -> None:
    """IgnoreReadSync: the wait is for the last writing DMA buffer, not a later read."""
    seen: dict[str, Any] = {}

    async def main() -> None:
        rig = await Rig().setup()
        h = await rig.alloc(segments="aperture")
        st, w = await rig.render([kmd.CmdWrite(0, 0, b"W"), kmd.CmdSpin(1_000_000)], [h], [True])
        assert st == OK
        fr = await rig.busy(h, ns=5_000_000)
        st, lk = await rig.lock(h, LF.LockEntire | LF.IgnoreReadSync)
        assert st == 0 and lk.data[0] == ord("W")
        recs = {r.fence: r for r in rig.k.dma_records}
        assert vt.now() == recs[w.fence].ended_ns and fr not in recs  # the read still runs
        seen.update(w=w.fence)

    evs = traced(main)
    assert events(evs, "kmd.lock.wait")[0]["fence"] == seen["w"]
    blocks = [e["waits"] for e in evs if e.get("event") == "block" and e["thread"] == "main"]
    assert blocks[:1] == [f"fence {seen['w']} on kmd.gpu"]


def _exclusive_after_wait(lock2: bool) -> None:
    """KL-14 after the wait: while a lock waited for the GPU, another thread (woken first)
    took an exclusive (aperture) lock of the same instance."""
    seen: dict[str, Any] = {}

    async def main() -> None:
        rig = await Rig().setup()
        h = await rig.alloc(segments="any")
        await rig.busy(h, ns=2_000_000)

        async def grabber() -> None:
            st, _ = await rig.lock(h, LF.LockEntire | LF.AcquireAperture)
            assert st == OK

        t = vt.spawn("grabber", grabber)
        await vt.sleep(1_000)
        st, a = await (rig.lock2(h) if lock2 else rig.lock(h))
        await t.join()
        assert st == BUSY and a.data is None
        seen.update(dev=rig.device, h=h)

    evs = traced(main)
    ev = "kmd.lock2" if lock2 else "kmd.lock"
    flags = "0x0" if lock2 else "0x10"
    assert events(evs, ev)[-1] == fail(
        ev, BUSY, "KL-14", device=seen["dev"], allocation=seen["h"], flags=flags)


def test_lock_finds_an_exclusive_lock_after_its_wait_kl14() -> None:
    _exclusive_after_wait(lock2=False)


def test_lock2_finds_an_exclusive_lock_after_its_wait_kl14() -> None:
    _exclusive_after_wait(lock2=True)


# ---- D3DKMTUnlock / Unlock2: every refusal's rule and fields, each release's event ----


def test_unlock_events_rules_and_counts() -> None:
    seen: dict[str, Any] = {}

    async def main() -> None:
        rig = await Rig().setup()
        h = await rig.alloc(segments="aperture")
        g = await rig.alloc(segments="aperture")
        assert (await rig.lock(h))[0] == 0 and (await rig.lock(h))[0] == 0
        assert (await rig.lock2(g))[0] == 0

        async def unlock(**kw: Any) -> int:
            return await kmd.D3DKMTUnlock(rig.k, kmd.D3DKMT_UNLOCK(**kw))

        d = rig.device
        assert await unlock(device=12345, allocations=[h]) == INVALID  # KU-2
        assert await unlock(device="x", allocations=[h]) == INVALID  # KU-2
        assert await unlock(device=d, allocations=[]) == INVALID  # KU-1
        assert await unlock(device=d, allocations=[h], num_allocations=2) == INVALID  # KU-1
        assert await unlock(device=d, allocations=[h], num_allocations=True) == INVALID
        assert await unlock(device=d, allocations=[h], num_allocations=-1) == INVALID
        assert await unlock(device=d, allocations=5, num_allocations=1) == INVALID
        assert await unlock(device=d, allocations=[h, 12345]) == INVALID  # KU-2
        assert await unlock(device=d, allocations=["x"]) == INVALID  # KU-2
        assert await unlock(device=d, allocations=[g]) == INVALID  # KL2-6: a Lock2
        assert await unlock(device=d, allocations=[h, h, h]) == INVALID  # two locks only
        assert stats(rig, "unlocks") == (0,)
        assert await unlock(device=d, allocations=[h], num_allocations=1) == 0
        assert await unlock(device=d, allocations=[h]) == 0
        assert await unlock(device=d, allocations=[h]) == INVALID  # KU-3
        assert await rig.unlock2(12345) == INVALID  # KU-2
        assert await rig.unlock2(g) == 0
        assert stats(rig, "unlocks") == (3,)
        seen.update(d=d, h=h, g=g)

    evs = traced(main)
    d, h, g = seen["d"], seen["h"], seen["g"]
    ok = {"event": "kmd.unlock", "device": d, "allocation": h, "instance": 0, **code(0)}
    assert events(evs, "kmd.unlock") == [
        fail("kmd.unlock", INVALID, "KU-2", device=12345),
        fail("kmd.unlock", INVALID, "KU-2", device="'x'"),
        fail("kmd.unlock", INVALID, "KU-1", device=d),
        fail("kmd.unlock", INVALID, "KU-1", device=d),
        fail("kmd.unlock", INVALID, "KU-1", device=d),
        fail("kmd.unlock", INVALID, "KU-1", device=d),
        fail("kmd.unlock", INVALID, "KU-1", device=d),
        fail("kmd.unlock", INVALID, "KU-2", device=d, allocation=12345),
        fail("kmd.unlock", INVALID, "KU-2", device=d, allocation="'x'"),
        fail("kmd.unlock", INVALID, "KL2-6", device=d, allocation=g),
        fail("kmd.unlock", INVALID, "KL2-6", device=d, allocation=h),
        {**ok, "remaining": 1},
        {**ok, "remaining": 0},
        fail("kmd.unlock", INVALID, "KU-3", device=d, allocation=h),
    ]
    assert events(evs, "kmd.unlock2") == [
        fail("kmd.unlock2", INVALID, "KU-2", device=d, allocation=12345),
        {**ok, "event": "kmd.unlock2", "allocation": g, "remaining": 0},
    ]


# ---- Discard's rename failures (LCB-6) and undoing a rename (the new handle is closed) ----


def test_rename_without_memory_is_lcb6_and_leaves_no_handle() -> None:
    seen: dict[str, Any] = {}
    cfg = KernelConfig(
        segments=(kmd.SegmentDesc("aperture", 64 * 1024, "aperture"),),
        system_memory_bytes=16 * 1024,
    )

    async def main() -> None:
        rig = await Rig(cfg).setup()
        a = await rig.alloc(size=48 * 1024, segments="aperture")
        await rig.busy(a)
        st, lk = await rig.lock(a, DISCARD)
        assert st == BUSY and lk.data is None and lk.allocation == a
        assert stats(rig, "busy_failures", "rename_failures", "renames", "live_instances") == (
            1, 1, 0, 1)
        nxt = await rig.alloc(size=4096, segments="aperture")
        # the refused instance's handle (issued just before ``nxt``'s) resolves to nothing
        assert rig.k.callbacks.dxgk_cb_get_handle_data(nxt - 0x40, HT) is None
        assert rig.k.callbacks.dxgk_cb_get_handle_data(a, HT) is not None
        seen.update(d=rig.device, a=a)

    evs = traced(main)
    assert events(evs, "kmd.lock")[-1] == fail(
        "kmd.lock", BUSY, "LCB-6", device=seen["d"], allocation=seen["a"], flags="0x90",
        why="no memory for a new instance")


def test_rename_at_the_cap_is_lcb6_with_why() -> None:
    seen: dict[str, Any] = {}

    async def main() -> None:
        rig = await Rig(KernelConfig(max_rename_instances=2)).setup()
        _, a1, _ = await _capped(rig)
        st, _ = await rig.lock(a1, DISCARD)
        assert st == BUSY
        assert stats(rig, "busy_failures", "rename_failures") == (1, 1)
        seen.update(d=rig.device, a1=a1)

    evs = traced(main)
    assert events(evs, "kmd.lock")[-1] == fail(
        "kmd.lock", BUSY, "LCB-6", device=seen["d"], allocation=seen["a1"], flags="0x90",
        why="2 instances live")


def test_a_rename_undone_by_a_failed_cpu_access_closes_its_handle() -> None:
    """KL-20 after a Discard rename: the new instance is freed, its handle closed, the old
    one current again."""
    seen: dict[str, Any] = {}

    async def main() -> None:
        rig = await Rig(KernelConfig(swizzling_apertures=0)).setup()
        sw = await rig.alloc(segments="local", swizzled=True)
        st, lk = await rig.lock(sw, DISCARD | LF.DonotEvict)
        assert st == 0xC01E0107 and lk.data is None and lk.allocation == sw
        nxt = await rig.alloc(segments="aperture")
        undone = nxt - 0x40
        assert rig.k.callbacks.dxgk_cb_get_handle_data(undone, HT) is None
        assert stats(rig, "renames", "live_instances") == (1, 2)  # sw's one instance + nxt
        st, lk = await rig.lock(sw, LF.LockEntire)  # the old instance is current: evicted
        assert st == 0 and lk.data.allocation == sw
        rig.invariants()
        seen.update(d=rig.device, undone=undone)

    evs = traced(main)
    assert [e for e in events(evs, "kmd.lock") if e.get("rule")] == [fail(
        "kmd.lock", 0xC01E0107, "KL-20", device=seen["d"], allocation=seen["undone"],
        flags="0xB0")]


# ---- D3DKMTLock's argument checks (docs/kmd.md §4.3): each refusal's rule and fields ----


async def _refusals_scenario(seen: dict[str, Any]) -> None:
    cfg = KernelConfig(max_pending_references=2, swizzling_apertures=1, **THREE_SEGMENTS)
    rig = await Rig(cfg).setup()
    h = await rig.alloc(size=4 * 4096, segments="aperture")
    hidden = await rig.alloc(segments="aperture", cpu_visible=False)
    alt = await _primary(rig, True)
    sw = await rig.alloc(segments="local", swizzled=True)
    E = LF.LockEntire
    cases: list[tuple[int, dict[str, Any], int]] = [
        (hidden, {}, INVALID),  # KL-12
        (h, {"gpu_virtual_address": 1}, INVALID),  # KL-5
        (h, {"flags": E | LF.ReadOnly | LF.WriteOnly}, INVALID),  # KL-6
        (h, {"private_driver_data": "x"}, INVALID),  # KL-2
        (h, {"num_pages": -1}, INVALID),  # KL-2
        (h, {"num_pages": 1}, INVALID),  # KL-3: LockEntire with a count
        (h, {"flags": 0, "num_pages": 2}, INVALID),  # KL-4: a count, no list
        (h, {"flags": 0, "pages": [0, 2, 1], "num_pages": 3}, INVALID),  # KL-4
        (h, {"flags": 0, "pages": [4], "num_pages": 1}, INVALID),  # KL-4
        (h, {"flags": 0, "pages": [1, 2], "num_pages": 3}, INVALID),  # KL-4: count
        (h, {"flags": 0}, 0xC01E0101),  # LCB-11
        (alt, {}, INVALID),  # KL-19
    ]
    for target, kw, want in cases:
        st, a = await rig.lock(target, **kw)
        assert st == want and a.data is None, kw
    st, a = await rig.lock(h, 0, pages=[0, 1, 3], num_pages=3)
    assert st == 0 and a.data.offset == 0 and len(a.data) == 4 * 4096
    assert await rig.unlock(h) == 0
    for bad in (12345, "x"):
        assert (await rig.lock(bad))[0] == INVALID  # KL-2: no such allocation
        assert (await rig.lock(h, device=bad))[0] == INVALID  # KL-2: no such device
    assert (await rig.lock(sw))[0] == 0
    assert (await rig.lock(sw))[0] == BUSY  # KL-14
    await rig.busy(h)
    assert (await rig.lock(h, E | LF.DonotWait))[0] == BUSY  # KL-21
    assert stats(rig, "busy_failures") == (1,)
    await rig.busy(h)
    assert (await rig.lock(h, E | LF.DonotWait))[0] == 0xC01E0103  # Q3
    await rig.k.wait_idle()
    st, a = await rig.lock(h)
    assert st == 0 and a.data.read_only is False
    assert rig.k.inject_removal(rig.device)
    assert (await rig.lock(h))[0] == REMOVED  # KL-23
    seen.update(d=rig.device, h=h, hidden=hidden, alt=alt, sw=sw)



def test_lock_refusals_name_their_rule() -> None:
    seen: dict[str, Any] = {}

    evs = traced(partial(_refusals_scenario, seen))
    d, h = seen["d"], seen["h"]

    def at(al: int, flags: str = "0x10") -> dict[str, Any]:
        return {"device": d, "allocation": al, "flags": flags}

    refusals = [e for e in events(evs, "kmd.lock") if e.get("rule")]
    assert refusals == [
        fail("kmd.lock", INVALID, "KL-12", **at(seen["hidden"])),
        fail("kmd.lock", INVALID, "KL-5", **at(h)),
        fail("kmd.lock", INVALID, "KL-6", **at(h, "0x13")),
        fail("kmd.lock", INVALID, "KL-2", **at(h)),
        fail("kmd.lock", INVALID, "KL-2", **at(h)),
        fail("kmd.lock", INVALID, "KL-3", **at(h)),
        fail("kmd.lock", INVALID, "KL-4", **at(h, "0x0")),
        fail("kmd.lock", INVALID, "KL-4", **at(h, "0x0")),
        fail("kmd.lock", INVALID, "KL-4", **at(h, "0x0")),
        fail("kmd.lock", INVALID, "KL-4", **at(h, "0x0")),
        fail("kmd.lock", 0xC01E0101, "LCB-11", **at(h, "0x0")),
        fail("kmd.lock", INVALID, "KL-19", **at(seen["alt"])),
        fail("kmd.lock", INVALID, "KL-2", device=d, allocation=12345),
        fail("kmd.lock", INVALID, "KL-2", device=12345),
        fail("kmd.lock", INVALID, "KL-2", device=d, allocation="'x'"),
        fail("kmd.lock", INVALID, "KL-2", device="'x'"),
        fail("kmd.lock", BUSY, "KL-14", **at(seen["sw"])),
        fail("kmd.lock", BUSY, "KL-21", **at(h, "0x14")),
        fail("kmd.lock", 0xC01E0103, "Q3", **at(h, "0x14")),
        fail("kmd.lock", REMOVED, "KL-23", device=d),
    ]
    pages = [e["pages"] for e in events(evs, "kmd.lock") if e["status"] == "0x00000000"]
    assert pages[0] == [0, 1, 3]
    assert events(evs, "kmd.lock")[-2] == {
        "event": "kmd.lock", **at(h), "instance": 0, "renamed": False, "pages": None,
        "segment": "aperture", "swizzle_range": False, **code(0)}


def test_lock_of_a_retired_instance_is_kl11() -> None:
    seen: dict[str, Any] = {}

    async def main() -> None:
        rig = await Rig().setup()
        a0 = await rig.alloc(segments="aperture")
        assert (await rig.lock(a0))[0] == 0  # keeps a0 from being freed
        st, lk = await rig.lock(a0, DISCARD)
        assert st == 0 and await rig.unlock(lk.allocation) == 0
        await rig.busy(lk.allocation)  # retires a0
        st, a = await rig.lock(a0)
        assert st == INVALID and a.data is None
        seen.update(d=rig.device, a0=a0)

    evs = traced(main)
    assert events(evs, "kmd.lock")[-1] == fail(
        "kmd.lock", INVALID, "KL-11", device=seen["d"], allocation=seen["a0"], flags="0x10")


def test_page_lists_with_one_byte_pages() -> None:
    """KL-4 at the last page with page_size 1: the page count is the size itself."""

    async def main() -> None:
        rig = await Rig(KernelConfig(page_size=1)).setup()
        h = await rig.alloc(size=4, segments="aperture")
        st, a = await rig.lock(h, 0, pages=[3], num_pages=1)
        assert st == 0 and a.data.offset == 3 and len(a.data) == 1
        assert (await rig.lock(h, 0, pages=[4], num_pages=1))[0] == INVALID

    run_traced(main)


# ---- making the instance CPU-accessible (_prepare_cpu_access) and mapping it (_map) ----


class AdapterRecordingMiniport(kmd.ReferenceMiniport):
    """The reference miniport, remembering the adapter handle of each AcquireSwizzlingRange."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.adapters: list[object] = []

    def dxgk_ddi_acquire_swizzling_range(self, h_adapter: Any, args: Any) -> kmd.NTSTATUS:
        self.adapters.append(h_adapter)
        return super().dxgk_ddi_acquire_swizzling_range(h_adapter, args)


def test_acquire_swizzling_range_gets_the_adapter_handle() -> None:
    async def main() -> None:
        rig = Rig()
        rig.k = kmd.Kernel(miniport_factory=AdapterRecordingMiniport)
        await rig.setup()
        sw = await rig.alloc(segments="local", swizzled=True)
        assert (await rig.lock(sw))[0] == 0
        mp = rig.k.miniport
        assert isinstance(mp, AdapterRecordingMiniport) and mp.adapters == [rig.k.h_adapter]
        assert mp.adapters[0] is not None

    run_traced(main)


def test_cpu_access_relocates_to_a_visible_segment_then_maps_system_memory() -> None:
    """SEG-10: a non-swizzled allocation in CPU-invisible memory moves to a CPU-visible segment
    it may live in (no eviction); one in system memory maps where it is."""
    seen: dict[str, Any] = {}

    async def main() -> None:
        rig = await Rig(KernelConfig(swizzling_apertures=0)).setup()
        h = await rig.alloc(segments="any")  # created in "local"
        st, a = await rig.lock(h)
        assert st == 0 and a.data.state == "mapped"
        assert await rig.unlock(h) == 0
        assert stats(rig, "evictions") == (0,)
        g = await rig.alloc(segments="local")
        assert (await rig.lock(g))[0] == 0 and await rig.unlock(g) == 0  # evicted
        st, b = await rig.lock(g)  # now in system memory: no move at all
        assert st == 0 and b.data.state == "mapped"
        assert stats(rig, "evictions") == (1,)
        ov = await rig.alloc(segments="aperture", overlay=True)  # pinned, CPU-visible
        assert (await rig.lock(ov))[0] == 0 and (await rig.lock(ov))[0] == 0  # not exclusive
        seen.update(h=h, g=g)

    evs = traced(main)
    segments = [e["segment"] for e in events(evs, "kmd.lock")]
    assert segments == ["aperture", "system", "system", "aperture", "aperture"]
    moves = [e for e in evs if e.get("why") == "relocate for CPU access"]
    assert len(moves) == 1 and moves[0]["allocation"] == seen["h"]
    assert moves[0]["src"] == "local" and moves[0]["dst"] == "aperture"


def test_use_alternate_va_lock_is_exclusive_without_an_aperture() -> None:
    """A UseAlternateVA lock is exclusive (KL-14) even when no swizzling range was free; the
    lock count counts only granted locks."""

    async def main() -> None:
        rig = await Rig(KernelConfig(swizzling_apertures=0)).setup()
        h = await rig.alloc(segments="any")
        f = LF.LockEntire | LF.AcquireAperture | LF.UseAlternateVA
        st, _a = await rig.lock(h, f)
        assert st == 0 and stats(rig, "locks") == (1,)
        assert (await rig.lock(h))[0] == BUSY  # KL-14
        assert (await rig.lock2(h))[0] == BUSY  # KL-14
        assert stats(rig, "locks") == (1,)
        assert await rig.unlock(h) == 0
        assert (await rig.lock(h))[0] == 0 and stats(rig, "locks") == (2,)

    run_traced(main)


def test_many_locks_keep_the_pointer_list_working() -> None:
    """Past the sweeps of the kernel's pointer list (at 64, then doubling; the first with no
    live pointer at all): locks and unlocks go on and the invariants hold; a pointer still
    mapped or detached (Q1) is still checked — check_invariants reports it the moment its
    instance is freed under it (the kernel broken on purpose)."""

    async def main() -> None:
        rig = await Rig().setup()
        dev2 = await rig.new_device()
        h2 = await rig.alloc(segments="aperture", device=dev2)

        async def cycles(n: int) -> None:
            for i in range(n):
                st, _ = await rig.lock(h2, device=dev2)
                assert st == 0, i
                assert await rig.unlock(h2, device=dev2) == 0

        await cycles(70)  # a sweep that drops every pointer
        g = await rig.alloc(segments="aperture")
        k2 = await rig.alloc(segments="aperture", device=dev2)
        st, detached = await rig.lock(g)
        assert st == 0
        st, mapped = await rig.lock(k2, device=dev2)
        assert st == 0
        assert rig.k.inject_removal(rig.device)
        assert (detached.data.state, mapped.data.state) == ("detached", "mapped")
        await cycles(200)
        assert stats(rig, "locks", "unlocks") == (272, 270)
        rig.invariants()
        for h in (g, k2):
            inst = rig.k.vidmm.instances[h]
            inst.freed = True  # an instance freed under a live pointer: a kernel bug
            problems = rig.k.check_invariants()
            assert any("still maps a freed instance" in p and f"0x{h:08X}" in p
                       for p in problems), h
            inst.freed = False

    run_traced(main)


def test_int_masks_are_plain_ints_named_after_the_flags() -> None:
    from kmd.flags import D3DDDICB_LOCKFLAGS, int_masks

    m = int_masks(D3DDDICB_LOCKFLAGS)
    assert m.__name__ == "D3DDDICB_LOCKFLAGS_masks" and m.__bases__ == (object,)
    want = {n: int(f) for n, f in D3DDDICB_LOCKFLAGS.__members__.items()}
    assert {n: getattr(m, n) for n in want} == want
    assert m.Discard == 0x80 and type(m.Discard) is int and type(m.IgnoreReadSync) is int


def test_cpu_access_failures_name_their_rule() -> None:
    """KL-22 (pinned, no aperture) and SEG-10 (no system memory to evict into)."""
    seen: dict[str, Any] = {}

    async def main() -> None:
        rig = await Rig(KernelConfig(swizzling_apertures=0, system_memory_bytes=4096)).setup()
        pinned = await rig.alloc(segments="local", capture=True)
        big = await rig.alloc(segments="local")
        assert (await rig.lock(pinned))[0] == 0xC01E0109
        assert (await rig.lock(big))[0] == 0xC0000017
        seen.update(d=rig.device, pinned=pinned, big=big)

    evs = traced(main)
    d = seen["d"]
    assert events(evs, "kmd.lock") == [
        fail("kmd.lock", 0xC01E0109, "KL-22", device=d, allocation=seen["pinned"], flags="0x10"),
        fail("kmd.lock", 0xC0000017, "SEG-10", device=d, allocation=seen["big"], flags="0x10"),
    ]


def test_a_rename_into_system_memory_says_so() -> None:
    seen: dict[str, Any] = {}
    cfg = KernelConfig(segments=(kmd.SegmentDesc("aperture", 64 * 1024, "aperture"),))

    async def main() -> None:
        rig = await Rig(cfg).setup()
        a = await rig.alloc(size=48 * 1024, segments="aperture")
        await rig.busy(a)
        st, lk = await rig.lock(a, DISCARD)
        assert st == 0 and lk.allocation != a
        seen.update(d=rig.device, a=a, new=lk.allocation)

    evs = traced(main)
    assert events(evs, "kmd.rename") == [{
        "event": "kmd.rename", "device": seen["d"], "allocation": seen["a"], "old": seen["a"],
        "new": seen["new"], "index": 1, "live": 2, "segment": "system"}]
    assert events(evs, "kmd.lock")[-1]["segment"] == "system"


def test_unlock_events_reach_a_subscriber_of_just_those_events() -> None:
    """A run that builds only kmd.unlock / kmd.unlock2 (a checker subscribed to them, no
    trace file) still gets every release."""
    got: list[tuple[str, int]] = []

    async def main() -> None:
        rig = await Rig().setup()
        h = await rig.alloc(segments="aperture")
        assert (await rig.lock(h))[0] == 0 and await rig.unlock(h) == 0
        assert (await rig.lock2(h))[0] == 0 and await rig.unlock2(h) == 0

    eng = vt.Engine()
    eng.subscribe(lambda e: got.append((e["event"], e["remaining"])),
                  events=["kmd.unlock", "kmd.unlock2"])
    eng.run(main).check()
    assert got == [("kmd.unlock", 0), ("kmd.unlock2", 0)]
