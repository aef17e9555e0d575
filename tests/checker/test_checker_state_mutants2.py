"""Mutation tests of ``wddmemu/_checker_state.py``'s ``DeviceState`` (issue 16): how the checker
names resources, subresources, instances and calls in its findings (``vb0@dev0 sub 1``,
``vb0@dev0 inst 2 (0x4)``, ``Rename(vb0@dev0, cookie 0x99) on dev0.worker (command 3 queued by
app)``), what each instance's origin is in a DATA finding, and the ledgers behind LCB-3's cached
pointers, LCB-17, LCB-19 and the Discard index. Each is judged by the checker's exact findings
on synthetic seam events; the Discard index, which no single finding shows whole, against its
own promise. The harness is in ``test_checker_mutants.py``."""

from __future__ import annotations

from itertools import product
from types import SimpleNamespace
from typing import Any

from runtime._oracle import DrawRecord, DrawSnapshots, StreamRead
from tests.checker.test_checker_mutants import (
    CREATE,
    RT,
    S_OK,
    Events,
    W,
    create,
    ddi,
    found,
    get,
    lockcb,
    put,
    resource,
    unlockcb,
)
from tests.checker.test_checker_mutants_cb2 import bare_unlockcb, lcb19
from tests.checker.test_checker_mutants_ddi import R9, R, discard, la, lk, ua, ul
from tests.support.seam import run_events
from wddmemu._checker import Checker
from wddmemu._checker_state import DeviceState, Discard

LK6_TAIL = (" succeeded without calling pfnLockCb (and had no cached NoOverwrite pointer of a "
            "Dynamic resource, LCB-3)")

# ---- names ---------------------------------------------------------------------------------


def test_a_subresource_is_named_by_its_index() -> None:
    """LA-2 on subresource 1 names it ``vb0@dev0 sub 1`` (subresource 0 is the bare name)."""
    evs = R + ddi(W, "LockAsync", resource=7, subresource_index=1, flags=0x1,
                  cbs=[lockcb(1, 0x1C)])
    assert found(evs) == [("LA-2", "LockAsync(vb0@dev0 sub 1, NoOverwrite) on dev0.worker: "
                           "LockAsync must be made on the application thread, not the "
                           "runtime's worker", {})]


def test_a_resource_is_named_after_the_last_part_of_a_dotted_device_name() -> None:
    """A device named ``gpu.a.dev3`` names its resources ``vb0@dev3`` (LK-6's message)."""
    dev = "gpu.a.dev3"
    evs: Events = [*create(device=dev),
                   *ddi("app", "CreateResource", device=dev, cbs=[
                       ("pfnAllocateCb", {}, {"hr": S_OK, "allocations": [1]})]),
                   ("app", "rt.resource.create", {"device": dev, "resource": 7,
                                                  "rt_resource": RT, "kind": "vb",
                                                  "pool": 1, "dynamic": True}),
                   *ddi("app", "Lock", device=dev, resource=7, flags=0)]
    assert found(evs) == [("LK-6", "Lock(vb0@dev3, 0) on app" + LK6_TAIL, {"resource": 7})]


def test_a_resource_created_without_allocations_owns_none() -> None:
    """The allocations of one CreateResource go to the resource it created, once: a second
    rt.resource.create after it (vb1) owns none, and allocation 1 stays vb0's."""
    second: Events = [("app", "rt.resource.create", {"device": "dev0", "resource": 9,
                                                     "rt_resource": 0x2000, "kind": "vb",
                                                     "pool": 1, "dynamic": True})]
    evs = R + second + lk(res=9) + lk(cbs=[lockcb(1, 0x10)]) + ul()
    assert found(evs) == [
        ("LK-6", "Lock(vb1@dev0, 0) on app" + LK6_TAIL, {"resource": 9}),
        ("LK-11", "Unlock(vb0@dev0) on app succeeded without calling pfnUnlockCb on vb0@dev0 "
         "inst 0 (0x1) (only a Dynamic resource's NoOverwrite pointer may stay cached, LCB-3)",
         {"resource": 7})]


def test_instances_are_numbered_per_subresource() -> None:
    """Each Discard makes the next instance of its (resource, sub): vb0's second is inst 2,
    vb1's first inst 1 (UA-4's wrong-handle message, LCB-20)."""
    evs = (R9 + discard(0xC1) + ua(cbs=[unlockcb(2)]) + discard(0xC2, old=2, new=4)
           + ua(cbs=[unlockcb(1)]) + discard(0xC3, res=9, old=3, new=5)
           + ua(res=9, cbs=[unlockcb(3)]))
    tail = "had locked vb{} (LCB-20)"
    assert found(evs) == [
        ("UA-4", "UnlockAsync(vb0@dev0) on app unlocked ['vb0@dev0 inst 0 (0x1)'] but "
         "LockAsync(vb0@dev0, Discard) on app " + tail.format("0@dev0 inst 2 (0x4)"),
         {"resource": 7, "locked": 4}),
        ("UA-4", "UnlockAsync(vb1@dev0) on app unlocked ['vb1@dev0 inst 0 (0x3)'] but "
         "LockAsync(vb1@dev0, Discard) on app " + tail.format("1@dev0 inst 1 (0x5)"),
         {"resource": 9, "locked": 5})]


def test_unlock_flags_are_shown_in_hex_and_lock_flags_by_name() -> None:
    """Unlock's flag word has no names (``flags 0x4``); Lock's has (``NoOverwrite``): LK-13."""
    lk13 = (" on app returned S_OK, but vb0@dev0 was not locked by Lock (it must return "
            "E_INVALIDARG)")
    assert found(R + ddi("app", "Unlock", resource=7, flags=0x4)) == [
        ("LK-13", "Unlock(vb0@dev0, flags 0x4)" + lk13, {"resource": 7})]
    assert found(R + ddi("app", "Unlock", resource=7, flags=0)) == [
        ("LK-13", "Unlock(vb0@dev0, flags 0x0)" + lk13, {"resource": 7})]
    assert found(R + lk(flags=0x4)) == [
        ("LK-6", "Lock(vb0@dev0, NoOverwrite) on app" + LK6_TAIL, {"resource": 7})]


def test_a_draw_is_named_by_its_id() -> None:
    """LK-8 names the DrawPrimitive by its draw id."""
    evs = (R + lk(cbs=[lockcb(1, 0x10)])
           + [("app", "rt.draw", {"device": "dev0", "draw_id": 5, "reads": [[RT, 0]]})]
           + ddi(W, "DrawPrimitive", draw_id=5))
    assert found(evs) == [("LK-8", "the runtime passed DrawPrimitive(draw 5) on dev0.worker to "
                           "the driver while vb0@dev0, which it reads, is locked through Lock "
                           "(Lock(vb0@dev0, 0) on app)", {"draw": 5, "resource": 7})]


def test_a_queued_command_is_named_with_its_thread_and_who_queued_it() -> None:
    """A DDI the worker makes for a queued command names the thread, the command and the
    thread that queued it (RN-2's message)."""
    evs = R + put(3, "Rename", [RT]) + get(3, "Rename") + ddi(W, "Rename", resource=7,
                                                             cookie=0x99)
    assert found(evs) == [("RN-2", "the runtime called Rename(vb0@dev0, cookie 0x99) on "
                           "dev0.worker (command 3 queued by app), but no successful Discard "
                           "LockAsync returned that cookie", {"cookie": 0x99})]


# ---- the kernel-lock ledger: cached pointers (LCB-3), leaks (LCB-17) -----------------------


def test_a_kernel_lock_of_another_resource_is_no_cached_pointer() -> None:
    """LCB-3: only a pfnLockCb of the resource's own allocation excuses a lock without one.
    vb1's cached NoOverwrite pointer does not excuse vb0's Lock (LK-6) or LockAsync (LA-14)."""
    cached_vb1 = la(res=9, cbs=[lockcb(3, 0x1C)]) + ua(res=9)
    assert found(R9 + cached_vb1 + lk(flags=0x4)) == [
        ("LK-6", "Lock(vb0@dev0, NoOverwrite) on app" + LK6_TAIL, {"resource": 7})]
    assert found(R9 + cached_vb1 + la()) == [
        ("LA-14", "LockAsync(vb0@dev0, NoOverwrite) on app succeeded without a pfnLockCb "
         "carrying IgnoreSync (and had no cached NoOverwrite pointer, LCB-3)", {"resource": 7})]


def test_a_kernel_lock_of_an_unknown_allocation_is_no_resources_cached_pointer() -> None:
    """LCB-3: a pfnLockCb on an allocation no resource owns (0x99) is no cached pointer of
    resource 1, nor of resource 0 (a driver may number its resources from 0: the checker once
    took an unowned handle for resource 0's and excused that resource's LK-6)."""
    stray: Events = [("app", "cb.enter", {"cb": "pfnLockCb", "device": "dev0",
                                          "allocation": 0x99, "flags": 0x1C}),
                     ("app", "cb.exit", {"cb": "pfnLockCb", "device": "dev0", "hr": S_OK,
                                         "allocation": 0x99, "new_allocation": 0x99})]
    for res in (1, 0):
        evs = CREATE + resource(res, allocations=(5,)) + stray + lk(res=res, flags=0x4)
        assert found(evs) == [("LK-6", "Lock(vb0@dev0, NoOverwrite) on app" + LK6_TAIL,
                               {"resource": res})], res


def test_each_pfnunlockcb_releases_one_pfnlockcb() -> None:
    """LCB-17: two pfnLockCb of one allocation need two pfnUnlockCb before DestroyDevice."""
    locked = R + lk(cbs=[lockcb(1, 0x10)] * 3)
    destroy = ddi("app", "DestroyDevice")
    assert found(locked + ul(cbs=[unlockcb(1)] * 3) + destroy) == []
    assert found(locked + ul(cbs=[unlockcb(1)] * 2) + destroy) == [(
        "LCB-17", "DestroyDevice() on app returned with pfnLockCb locks still outstanding on "
        "['vb0@dev0 inst 0 (0x1)']: DestroyDevice must release them; Unlock(vb0@dev0) on app "
        "released 2 of the 3 pfnLockCb that Lock(vb0@dev0, 0) on app took on vb0@dev0 inst 0 "
        "(0x1)", {"allocations": [1]})]


# ---- LCB-19: what the application may be using ----------------------------------------------


def test_lcb19_under_a_lockasync_still_in_progress() -> None:
    """The worker unlocks what the app's LockAsync has just locked: the app gets that pointer
    when LockAsync returns, so it is LCB-19 (no holder yet)."""
    lock = la(cbs=[lockcb(1, 0x1C)])
    evs: Events = R + lock[:-1] + bare_unlockcb(1, thread=W) + lock[-1:]
    assert found(evs) == [lcb19(W, "vb0@dev0 inst 0 (0x1)", 1, "", None)]


def test_a_lock_in_progress_protects_only_what_it_locked() -> None:
    """LCB-19 covers the allocation a lock DDI in progress locked successfully, no other: a
    release of vb1's allocation 3 meanwhile is no finding, nor of one its pfnLockCb failed on,
    nor of handle 1 while a pfnLockCb that names no new_allocation (handle 0) is in progress."""
    ok = lk(cbs=[lockcb(1, 0x10)])
    assert found(R9 + ok[:-1] + bare_unlockcb(3, thread=W) + ok[-1:]) == []
    failed = lk(hr="0x80070057", cbs=[lockcb(1, 0x10, hr="0x80070057")])
    assert found(R9 + failed[:-1] + bare_unlockcb(1, thread=W) + failed[-1:]) == []
    nameless = la(res=9, cbs=[("pfnLockCb", {"allocation": 3, "flags": 0x1C},
                               {"hr": S_OK, "allocation": 3})])
    assert found(R9 + nameless[:-1] + bare_unlockcb(1, thread=W) + nameless[-1:]) == []


# ---- origins: what a DATA finding says made the instance the GPU read ----------------------


def _gpu_read(instance: int, draw_id: int = 1) -> Any:
    """A checker's end of run on one fake device whose draw ``draw_id`` expected byte 0x05 of
    vb0 and whose GPU read 0x09 from ``instance`` (the data oracle's DATA finding)."""
    snaps = DrawSnapshots("dev0")
    snaps.pending[draw_id] = DrawRecord(draw_id, "app", 0, [
        StreamRead(0, RT, 0, 1, b"\x05", b"\x01")])
    dev = SimpleNamespace(name="dev0", km_device=1, snapshots=snaps, lost=False)
    cmd = SimpleNamespace(kind="draw", draw_id=draw_id, data=b"\x09", instance=instance,
                          allocation=instance)
    rec = SimpleNamespace(device=1, status="completed", dropped=[], commands=[cmd])

    def then(checker: Checker) -> None:
        checker.on_dma(rec, [dev])
        checker.final([], [dev])
    return then


def _data(events: Events, instance: int) -> list[tuple[str, str, dict[str, Any]]]:
    draw: Events = [("app", "rt.draw", {"device": "dev0", "draw_id": 1, "reads": [[RT, 0]]}),
                    *ddi(W, "DrawPrimitive", draw_id=1)]
    return [(v.rule, v.message, dict(v.fields))
            for v in run_events(events + draw, then=_gpu_read(instance))]


def _data_finding(read: str, instance: int) -> tuple[str, str, dict[str, Any]]:
    return ("DATA", "draw 1 on dev0: byte 0 of the draw (offset 0 in the buffer) is 0x09, but "
            "the application had written 0x05 when it issued the draw — the GPU read " + read
            + "; no Rename or renaming Lock had bound another instance when the draw reached "
            "the driver; draw encoded by DrawPrimitive on dev0.worker",
            {"draw": 1, "instance": instance, "allocation": instance, "first_offset": 0})


def test_data_names_the_ddi_that_made_the_instance_the_gpu_read() -> None:
    """DATA: instance 0 was made by CreateResource, instance 1 by the Discard LockAsync."""
    assert _data(R, 1) == [
        _data_finding("vb0@dev0 inst 0 (0x1); made by CreateResource(vb0@dev0)", 1)]
    assert _data(R + discard(0xC1) + ua(cbs=[unlockcb(2)]), 2) == [_data_finding(
        "vb0@dev0 inst 1 (0x2); made by LockAsync(vb0@dev0, Discard) on app", 2)]


# ---- the Discard index ----------------------------------------------------------------------


def _latest(dev: DeviceState) -> dict[int, Discard]:
    """The promise of ``discard_of``: each new allocation → the latest Discard in ``discards``
    order that returned it (a reused cookie keeps its place, as a dict assignment does)."""
    out: dict[int, Discard] = {}
    for d in dev.discards.values():
        out[d.new_allocation] = d
    return out


def test_the_discard_index_is_the_latest_discard_of_each_allocation() -> None:
    """Every sequence of up to four Discards over three cookies and two allocations: reused
    cookies for the same or another allocation, before or after other cookies."""
    for n in range(1, 5):
        for seq in product(product((1, 2, 3), (10, 11)), repeat=n):
            dev = DeviceState(name="dev0")
            for i, (cookie, new) in enumerate(seq):
                dev.add_discard(Discard(cookie, (7, 0), new, i, f"discard {i}"))
                want = _latest(dev)
                assert dev.discard_of.keys() == want.keys(), seq[:i + 1]
                assert all(dev.discard_of[h] is d for h, d in want.items()), seq[:i + 1]
