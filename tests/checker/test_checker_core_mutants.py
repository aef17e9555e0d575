"""Mutation tests of ``wddmemu/_checker.py``, the checker's core (issue 16): attaching to the
engine, dispatching events to their device, the threading rules (MP-1, LA-3, MP-5, MP-6), LA-1,
DV-1, LK-8 and the state the runtime's events build (the queue, resources, draws, callbacks).
Each test drives the checker with a synthetic stream of seam events and asserts the exact
findings: rule ids in order, messages word for word, fields. A field an event may lack (its
device, a default) is left out on purpose, so that a changed default shows. The harness is in
``test_checker_mutants.py``."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import vthreads as vt
from tests.checker.test_checker_mutants import (
    CREATE,
    E_OUTOFMEMORY,
    REMOVED,
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
)
from tests.support.seam import run_events
from wddmemu._checker import Checker

MP = [("app", "rt.device.create", {"device": "dev0", "mp": True})]
T3 = "app2"  # a second application thread
NOOVERWRITE = 0x1
NOREFS = 0x20  # D3DDDI_LOCKASYNCFLAGS.NoExistingReferences
CB_NOREF = 0x100  # D3DDDICB_LOCKFLAGS.NoExistingReference
R9 = CREATE + resource() + resource(9, 0x2000, allocations=(3,))


def on(thread: str, evs: Events) -> Events:
    """``evs`` logged from the app thread but naming ``thread`` (a third thread, say)."""
    return [("app", e, {**f, "thread": thread}) for _t, e, f in evs]


def enter(thread: str, name: str, **f: Any) -> Events:
    return on(thread, [("app", "ddi.enter", {"ddi": name, "device": "dev0", **f})])


def leave(thread: str, name: str, hr: str = S_OK) -> Events:
    return on(thread, [("app", "ddi.exit", {"ddi": name, "device": "dev0", "hr": hr})])


def mp6(what: str, tail: str) -> tuple[str, str, dict[str, Any]]:
    return ("MP-6", f"the runtime made {what} {tail}", {})


WORKER_TAIL = "on its worker: information-returning DDIs run on the application thread"
BATCHED_TAIL = "on an application thread: with the MP layer it is queued for the worker"
UNDRAINED = "without draining its queue first (commands {} still queued, MP-5)"


class Stripping(Checker):
    """A checker fed events without ``field`` in the ``event`` ones: the defaults show."""

    def __init__(self, event: str, field: str) -> None:
        super().__init__()
        self._strip = (event, field)

    def on_event(self, ev: dict[str, Any]) -> None:
        if ev["event"] == self._strip[0]:
            ev = {k: v for k, v in ev.items() if k != self._strip[1]}
        super().on_event(ev)


def found_by(checker: Checker, events: Events) -> list[tuple[str, str, dict[str, Any]]]:
    return [(v.rule, v.message, dict(v.fields)) for v in run_events(events, checker)]


# ---- plumbing -------------------------------------------------------------------------------

def test_attach_subscribes_only_to_the_events_it_handles() -> None:
    """The checker counts the events it was handed: only the names it handles (an rt.present,
    the harness's own queue traffic, never reach it)."""
    checker = Checker()
    evs = [*CREATE, ("app", "rt.present", {"device": "dev0"}), *ddi(W, "Flush")]
    assert found_by(checker, evs) == []
    assert checker.events_seen == 3
    assert Checker().events_seen == 0


def test_every_event_without_a_device_lands_on_the_device_named_question_mark() -> None:
    """An event that names no device is the device "?"'s, for every handler alike: the MP
    layer (rt.device.create), a resource (CreateResource, pfnAllocateCb, rt.resource.create),
    a draw's reads (rt.draw) and a Lock whose pfnLockCb sets a reserved bit (KL-5, LK-8,
    MP-6)."""
    evs = [("app", "ddi.exit", {"ddi": "CreateDevice", "hr": S_OK, "driver_version": 0xC,
                                "implements": ["LockAsync", "UnlockAsync", "Rename"]}),
           ("app", "rt.device.create", {"mp": True}),
           ("app", "ddi.enter", {"ddi": "CreateResource"}),
           ("app", "cb.enter", {"cb": "pfnAllocateCb"}),
           ("app", "cb.exit", {"cb": "pfnAllocateCb", "hr": S_OK, "allocations": [1]}),
           ("app", "ddi.exit", {"ddi": "CreateResource", "hr": S_OK}),
           ("app", "rt.resource.create", {"resource": 7, "rt_resource": RT, "kind": "vb",
                                          "pool": 1}),
           ("app", "rt.draw", {"draw_id": 1, "reads": [[RT, 0]]}),
           ("app", "ddi.enter", {"ddi": "Lock", "resource": 7, "flags": 0}),
           ("app", "cb.enter", {"cb": "pfnLockCb", "allocation": 1, "flags": 0x10000}),
           ("app", "cb.exit", {"cb": "pfnLockCb", "hr": S_OK, "allocation": 1,
                               "new_allocation": 1}),
           ("app", "ddi.exit", {"ddi": "Lock", "hr": S_OK}),
           ("app", "ddi.enter", {"ddi": "DrawPrimitive", "draw_id": 1}),
           ("app", "ddi.exit", {"ddi": "DrawPrimitive", "hr": S_OK})]
    assert found(evs) == [
        ("KL-5", "Lock(vb0@?, 0) on app called pfnLockCb on vb0@? inst 0 (0x1) with flags "
                 "0x10000, which break KL-5: "
                 "Reserved bits 0x10000 are set; all of 0xFFFFF800 must be zero",
         {"flags": 0x10000}),
        mp6("the batched DrawPrimitive(draw 1) on app", BATCHED_TAIL),
        ("LK-8", "the runtime passed DrawPrimitive(draw 1) on app to the driver while vb0@?, "
                 "which it reads, is locked through Lock (Lock(vb0@?, 0) on app)",
         {"draw": 1, "resource": 7}),
    ]


# ---- the runtime's queue (MP-5, MP-6) -------------------------------------------------------

def test_a_command_the_worker_runs_is_named_with_who_queued_it() -> None:
    """MP-6: a worker's DDI is described with the command it runs and the thread that queued
    it (rt.queue.put's ``thread``); a put that names no thread is "?"'s."""
    run = put(1, "CreateResource", []) + get(1, "CreateResource") + ddi(W, "CreateResource")
    assert found(CREATE + MP + run) == [
        mp6("CreateResource() on dev0.worker (command 1 queued by app)", WORKER_TAIL)]
    assert found_by(Stripping("rt.queue.put", "thread"), CREATE + MP + run) == [
        mp6("CreateResource() on dev0.worker (command 1 queued by ?)", WORKER_TAIL)]


def test_a_barrier_the_worker_took_leaves_no_command_behind() -> None:
    """A barrier ("(barrier)") is no DDI: once the worker takes it, the worker's next DDI runs
    no queued command, and a barrier never put is taken all the same (MP-6)."""
    alone = [mp6("CreateResource() on dev0.worker", WORKER_TAIL)]
    taken = put(1, "(barrier)", []) + get(1, "(barrier)")
    assert found(CREATE + MP + taken + ddi(W, "CreateResource")) == alone
    assert found(CREATE + MP + get(1, "(barrier)") + ddi(W, "CreateResource")) == alone


def test_a_queued_barrier_is_not_a_pending_command() -> None:
    """MP-5/MP-6: a barrier still queued does not make CreateResource undrained."""
    assert found(CREATE + MP + put(1, "(barrier)", []) + ddi("app", "CreateResource")) == []


def test_a_device_name_with_a_dot_keeps_its_queue() -> None:
    """The queue "a0.dev0.cmdq" is device "a0.dev0"'s (the last dot ends the device name):
    its pending command makes CreateResource undrained, its worker's command is named."""
    dev, q = "a0.dev0", "a0.dev0.cmdq"
    evs = [*create(device=dev), ("app", "rt.device.create", {"device": dev, "mp": True}),
           ("app", "rt.queue.put", {"queue": q, "ddi": "CreateResource", "seq": 1, "refs": []}),
           *ddi("app", "CreateResource", device=dev),
           (W, "rt.queue.get", {"queue": q, "ddi": "CreateResource", "seq": 1}),
           *ddi(W, "CreateResource", device=dev)]
    assert found(evs) == [
        mp6("CreateResource() on app", UNDRAINED.format([1])),
        mp6("CreateResource() on dev0.worker (command 1 queued by app)", WORKER_TAIL)]


def test_mp5_out_of_order_once_per_command() -> None:
    """MP-5: command 1 taken after command 2 is one finding, named with its DDI (none here:
    the get names none), and taking it again after command 3 is the same finding."""
    g1 = [(W, "rt.queue.get", {"queue": "dev0.cmdq", "seq": 1})]
    evs = (CREATE + MP + put(1, "Flush", []) + put(2, "Flush", []) + put(3, "Flush", [])
           + get(2, "Flush") + g1 + get(3, "Flush") + g1)
    assert found(evs) == [
        ("MP-5", "the worker took command 1 () after command 2: batched calls must reach the "
                 "driver in the order the application made them (RN-4)", {"seq": 1})]


def test_mp5_the_same_command_taken_twice_is_in_order() -> None:
    """MP-5: only an earlier command after a later one is out of order, not a repeat."""
    assert found(CREATE + MP + put(1, "Flush", []) + get(1, "Flush") + get(1, "Flush")) == []


def test_a_put_without_refs_is_still_pending() -> None:
    """MP-6 (MP-5): a queued command that references nothing still must be drained."""
    evs = (CREATE + MP + [("app", "rt.queue.put", {"queue": "dev0.cmdq", "ddi": "Flush",
                                                   "seq": 1})]
           + ddi("app", "CreateResource"))
    assert found(evs) == [mp6("CreateResource() on app", UNDRAINED.format([1]))]


def test_mp6_once_per_ddi_and_kind() -> None:
    """MP-6 is keyed by the DDI and what was wrong (batched on app, on the worker, undrained):
    a second such call on another resource or draw is the same finding."""
    assert found(CREATE + MP + ddi(W, "CreateResource") + ddi(W, "CreateResource", resource=7)
                 ) == [mp6("CreateResource() on dev0.worker", WORKER_TAIL)]
    two_draws = ddi("app", "DrawPrimitive", draw_id=1) + ddi("app", "DrawPrimitive", draw_id=2)
    assert found(CREATE + MP + two_draws) == [
        mp6("the batched DrawPrimitive(draw 1) on app", BATCHED_TAIL)]
    six = [e for s in range(1, 7) for e in put(s, "Flush", [])]
    assert found(CREATE + MP + six + ddi("app", "CreateResource")) == [
        mp6("CreateResource() on app", UNDRAINED.format([1, 2, 3, 4, 5]))]
    undrained = (CREATE + MP + put(1, "Flush", []) + ddi("app", "CreateResource")
                 + put(2, "Flush", []) + ddi("app", "CreateResource"))
    assert found(undrained) == [mp6("CreateResource() on app", UNDRAINED.format([1]))]


def la9(queued: int) -> list[tuple[str, str, dict[str, Any]]]:
    return [("LA-9", "the runtime set NoExistingReferences on LockAsync(vb0@dev0, "
                     f"NoExistingReferences) on app while {queued} queued command(s) still "
                     "reference vb0@dev0", {"resource": 7})]


def test_a_command_the_worker_ran_no_longer_references_its_resources() -> None:
    """LA-9 (the runtime's half): of two queued commands referencing vb0, the one the worker
    ran is released when its DDI returns (an exit without its enter too): one remains."""
    two = CREATE + resource() + put(1, "DrawPrimitive", [RT]) + put(2, "DrawPrimitive", [RT])
    noref = ddi("app", "LockAsync", resource=7, flags=NOREFS)
    ran = get(1, "DrawPrimitive") + ddi(W, "DrawPrimitive", draw_id=1)
    assert found(two + ran + noref) == la9(1)
    bare = [*get(1, "DrawPrimitive"), (W, "ddi.exit", {"ddi": "DrawPrimitive",
                                                       "device": "dev0", "hr": S_OK})]
    assert found(two + bare + noref) == la9(1)
    assert found([*CREATE, ("app", "ddi.exit", {"ddi": "Flush", "device": "dev0",
                                                "hr": S_OK})]) == []


# ---- who else is inside the driver (MP-1, LA-3) and LA-1 -------------------------------------

def mp1(call: str, other: str, version: str, ddis: list[str], threads: list[str]
        ) -> tuple[str, str, dict[str, Any]]:
    return ("MP-1", f"the runtime let {call} in while {other} is inside the driver (DDI "
                    f"version {version}): two threads inside the driver for one device",
            {"ddis": ddis, "threads": threads})


def test_mp1_checks_every_other_thread_inside() -> None:
    """MP-1: a nested call on a thread already inside is checked against every other thread
    inside, whichever entered first; and at 0xB a LockAsync partner (LA-3 allows it) does not
    end the check of the next thread inside."""
    nested = (CREATE + enter("app", "Flush") + enter(T3, "Present")
              + enter("app", "Unlock", resource=7))
    assert found(nested) == [
        mp1("Present() on app2", "Flush() on app", "0xc", ["Flush", "Present"], ["app", T3]),
        mp1("Unlock(resource 0x7) on app", "Present() on app2", "0xc", ["Present", "Unlock"],
            [T3, "app"])]
    allowed_first = (create(0xB) + enter("app", "LockAsync", resource=7, flags=NOOVERWRITE)
                     + enter(T3, "Flush") + enter(W, "Unlock", resource=7))
    assert found(allowed_first) == [
        mp1("Unlock(resource 0x7) on dev0.worker", "Flush() on app2", "0xb",
            ["Flush", "Unlock"], [T3, W])]


def test_mp1_once_per_pair_of_ddis() -> None:
    """MP-1 is keyed by the two DDIs: the same pair again on another resource is one finding."""
    once = enter("app", "Flush", resource=7) + enter(T3, "Present") + leave(T3, "Present")
    again = enter("app", "Flush", resource=9) + enter(T3, "Present")
    evs = CREATE + once + leave("app", "Flush") + again
    assert found(evs) == [mp1("Present() on app2", "Flush(resource 0x7) on app", "0xc",
                              ["Flush", "Present"], ["app", T3])]


def test_la3_names_both_calls_and_mp1_follows_once_per_pair() -> None:
    """LA-3 below 0xB: a reentrant pair is reported word for word with MP-1 after it; the same
    pair of DDIs again (the threads swapped, another resource) is neither again."""
    first = (enter("app", "LockAsync", resource=7, flags=NOOVERWRITE)
             + enter(T3, "Unlock", resource=7) + leave(T3, "Unlock") + leave("app", "LockAsync"))
    second = enter(T3, "LockAsync", resource=9, flags=NOOVERWRITE) + enter("app", "Unlock",
                                                                            resource=9)
    assert found(create(0xA) + first + second) == [
        ("LA-3", "the runtime let Unlock(resource 0x7) on app2 in while LockAsync(resource "
                 "0x7, NoOverwrite) on app is inside the driver (DDI version 0xa): reentrant "
                 "entry is allowed only at >= 0xB",
         {"ddis": ["LockAsync", "Unlock"], "threads": ["app", T3]}),
        ("MP-1", "two threads inside the driver on dev0: app in LockAsync, app2 in Unlock", {}),
        ("LK-13", "Unlock(resource 0x7) on app2 returned S_OK, but resource 0x7 was not locked "
                  "by Lock (it must return E_INVALIDARG)", {"resource": 7}),
        ("LA-14", "LockAsync(resource 0x7, NoOverwrite) on app succeeded without a pfnLockCb "
                  "carrying IgnoreSync (and had no cached NoOverwrite pointer, LCB-3)",
         {"resource": 7})]


def test_la1_the_async_ddis_only_when_the_driver_has_all_three() -> None:
    """LA-1: UnlockAsync of a driver implementing only LockAsync and Rename is one finding per
    DDI (on the worker too), naming what it implements; Lock is no async DDI."""
    evs = (create(implements=("LockAsync", "Rename")) + ddi("app", "UnlockAsync", resource=7)
           + ddi(W, "UnlockAsync", resource=7) + ddi("app", "Lock", resource=7))
    assert found(evs) == [
        ("LA-1", "the runtime called UnlockAsync on app but the driver implements only "
                 "['LockAsync', 'Rename'] of LockAsync/UnlockAsync/Rename",
         {"ddi": "UnlockAsync"}),
        ("UA-3", "UnlockAsync(resource 0x7) on app returned S_OK without an outstanding "
                 "LockAsync on resource 0x7 (it must return E_INVALIDARG)", {"resource": 7}),
        ("UA-2", "UnlockAsync(resource 0x7) on dev0.worker: UnlockAsync must be made on the "
                 "application thread, not the runtime's worker", {}),
        ("LK-6", "Lock(resource 0x7) on app succeeded without calling pfnLockCb (and had no "
                 "cached NoOverwrite pointer of a Dynamic resource, LCB-3)", {"resource": 7})]


# ---- versions (DV-1) and the adapter -------------------------------------------------------

def dv1(created: str, reported: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [("DV-1", f"the runtime created dev0 with DDI version {created}, but the driver's "
                     f"OpenAdapter reported {reported} in D3DDDIARG_OPENADAPTER.DriverVersion",
             {})]


def test_dv1_versions_default_to_zero_and_are_one_finding_per_device() -> None:
    """DV-1: a DriverVersion an exit leaves out is 0 (OpenAdapter's and CreateDevice's), a
    CreateDevice without ``implements`` implements nothing, and a device created twice with
    versions OpenAdapter did not report is one finding."""
    opened = [("app", "ddi.exit", {"ddi": "OpenAdapter", "device": "adapter", "hr": S_OK,
                                   "driver_version": 0xC})]
    bare = [("app", "ddi.exit", {"ddi": "CreateDevice", "device": "dev0", "hr": S_OK})]
    assert found(opened + bare + ddi("app", "Flush")) == dv1("0x0", "0xc")
    unversioned = [("app", "ddi.exit", {"ddi": "OpenAdapter", "device": "adapter",
                                        "hr": S_OK})]
    assert found(unversioned + create(0x9) + create(0xA)) == dv1("0x9", "0x0")


def test_openadapter_is_never_inside_the_driver() -> None:
    """OpenAdapter is made before the device: its enter puts no call inside, so a worker DDI
    after it overlaps nothing (MP-1)."""
    adapter = [("app", "ddi.enter", {"ddi": "OpenAdapter", "device": "dev0"}),
               ("app", "ddi.exit", {"ddi": "OpenAdapter", "device": "dev0", "hr": S_OK,
                                    "driver_version": 0xC})]
    assert found(CREATE + adapter + ddi(W, "Flush")) == []


# ---- DestroyResource, draws (LK-8), lost devices, resources --------------------------------

def lcb17(*names: str, allocations: list[int]) -> list[tuple[str, str, dict[str, Any]]]:
    return [("LCB-17", f"DestroyDevice() on app returned with pfnLockCb locks still outstanding "
                       f"on {list(names)}: DestroyDevice must release them",
             {"allocations": allocations})]


def nooverwrite(res: int, alloc: int) -> Events:
    return ddi("app", "LockAsync", resource=res, flags=NOOVERWRITE, cbs=[lockcb(alloc, 0x1C)])


def test_a_destroyed_resource_takes_its_kernel_locks_with_it() -> None:
    """LCB-17: DestroyResource that succeeded drops the kernel locks on that resource's
    allocations, and only those; one that failed (even with 1, S_FALSE) drops none."""
    both = R9 + nooverwrite(7, 1) + nooverwrite(9, 3)
    evs = both + ddi("app", "DestroyResource", resource=7) + ddi("app", "DestroyDevice")
    assert found(evs) == lcb17("vb1@dev0 inst 0 (0x3)", allocations=[3])
    kept = (R9 + nooverwrite(7, 1) + ddi("app", "DestroyResource", resource=7, hr=1)
            + ddi("app", "DestroyDevice"))
    assert found(kept) == lcb17("vb0@dev0 inst 0 (0x1)", allocations=[1])


def lk8(draw: str, locked: str, draw_id: int, res: int) -> tuple[str, str, dict[str, Any]]:
    return ("LK-8", f"the runtime passed DrawPrimitive(draw {draw}) on app to the driver while "
                    f"{locked}, which it reads, is locked through Lock (Lock({locked}) on app)",
            {"draw": draw_id, "resource": res})


def reads(draw_id: int, *rts: int) -> Events:
    return [("app", "rt.draw", {"device": "dev0", "draw_id": draw_id,
                                "reads": [[rt, 0] for rt in rts]})]


def test_a_destroyed_resource_is_no_longer_locked_through_lock() -> None:
    """LK-8: a draw reading vb0 and vb1, both locked through Lock, after vb0 was destroyed,
    is reported for vb1 only."""
    evs = (R9 + reads(1, RT, 0x2000) + ddi("app", "Lock", resource=7, cbs=[lockcb(1, 0)])
           + ddi("app", "Lock", resource=9, cbs=[lockcb(3, 0)])
           + ddi("app", "DestroyResource", resource=7) + ddi("app", "DrawPrimitive", draw_id=1))
    assert found(evs) == [lk8("1", "vb1@dev0", 1, 9)]


def test_lk8_once_per_locked_subresource_and_a_draw_without_an_id_is_draw_0() -> None:
    """LK-8 is keyed by the locked (resource, sub): a second draw while it is still locked is
    the same finding; a DrawPrimitive whose enter names no draw is draw 0; the finding names
    the resource, not the subresource, in its field."""
    evs = (CREATE + resource() + reads(0, RT) + reads(2, RT)
           + ddi("app", "Lock", resource=7, cbs=[lockcb(1, 0)])
           + ddi("app", "DrawPrimitive") + ddi("app", "DrawPrimitive", draw_id=2))
    assert found(evs) == [lk8("None", "vb0@dev0", 0, 7)]
    tex = ddi("app", "CreateResource", cbs=[("pfnAllocateCb", {}, {"hr": S_OK,
                                                                    "allocations": [1, 2]})])
    made = [("app", "rt.resource.create", {"device": "dev0", "resource": 7, "rt_resource": RT,
                                           "kind": "tex", "pool": 1})]
    sub = (CREATE + tex + made + reads(3, RT)
           + ddi("app", "Lock", resource=7, subresource_index=1, cbs=[lockcb(2, 0)])
           + ddi("app", "DrawPrimitive", draw_id=3))
    assert found(sub) == [lk8("3", "tex0@dev0 sub 1", 3, 7)]


def test_a_draw_without_an_id_that_succeeded_is_draw_0_the_driver_holds() -> None:
    """LA-9 (the driver's half): DrawPrimitive naming no draw is draw 0; once it succeeded the
    driver holds it, unsubmitted, so a NoExistingReference pfnLockCb of what it reads is
    wrong."""
    noref = ddi("app", "LockAsync", resource=7, flags=NOREFS | NOOVERWRITE,
                cbs=[lockcb(1, 0x1C | CB_NOREF)])
    evs = CREATE + resource() + reads(0, RT) + ddi("app", "DrawPrimitive") + noref
    assert found(evs) == [
        ("LCB-7", "LockAsync(vb0@dev0, NoOverwrite|NoExistingReferences) on app called "
                  "pfnLockCb on vb0@dev0 inst 0 (0x1) with flags DonotWait|IgnoreSync|"
                  "LockEntire|NoExistingReference, which break LCB-7: "
                  "NoExistingReference is only used with Discard", {"flags": 0x11C}),
        ("LA-9", "LockAsync(vb0@dev0, NoOverwrite|NoExistingReferences) on app passed "
                 "NoExistingReference to pfnLockCb while the driver still holds unsubmitted "
                 "draws [0] reading vb0@dev0", {"draws": [0], "resource": 7})]


def test_a_device_removed_ddi_makes_the_device_lost() -> None:
    """LCB-17 is not judged on a lost device: a DDI that returned D3DDDIERR_DEVICEREMOVED lost
    it, so the NoOverwrite lock left at DestroyDevice is no finding."""
    evs = (CREATE + resource() + nooverwrite(7, 1) + ddi("app", "Flush", hr=REMOVED)
           + ddi("app", "DestroyDevice"))
    assert found(evs) == []


def test_a_failed_createresource_owns_no_allocation() -> None:
    """The allocations of a CreateResource that failed are none of the resource the runtime
    then names; the allocations of pfnAllocateCb are, whatever callback follows it; one
    with no ``allocations`` made none (LCB-17 names them)."""
    failed = ddi("app", "CreateResource", hr=E_OUTOFMEMORY, cbs=[
        ("pfnAllocateCb", {}, {"hr": S_OK, "allocations": [5]})])
    made = [("app", "rt.resource.create", {"device": "dev0", "resource": 7, "rt_resource": RT,
                                           "kind": "vb", "pool": 1})]
    evs = CREATE + failed + made + nooverwrite(7, 5) + ddi("app", "DestroyDevice")
    assert found(evs) == lcb17("allocation 0x5", allocations=[5])
    other = ddi("app", "CreateResource", cbs=[
        ("pfnAllocateCb", {}, {"hr": S_OK, "allocations": [1]}),
        ("pfnSetDisplayModeCb", {}, {"hr": S_OK})])
    evs = CREATE + other + made + nooverwrite(7, 1) + ddi("app", "DestroyDevice")
    assert found(evs) == lcb17("vb0@dev0 inst 0 (0x1)", allocations=[1])
    outside = [("app", "cb.enter", {"cb": "pfnSetDisplayModeCb", "device": "dev0"}),
               ("app", "cb.exit", {"cb": "pfnSetDisplayModeCb", "device": "dev0", "hr": S_OK})]
    bare = ddi("app", "CreateResource", cbs=[("pfnAllocateCb", {}, {"hr": S_OK})])
    assert found(CREATE + outside + bare) == []


def test_rt_resource_create_defaults_and_rt_draw_without_reads() -> None:
    """A resource event naming nothing is resource 0 of kind "res", runtime handle 0 and video
    memory: LockAsync of it (its enter names no resource either) with a queued command on
    runtime handle 0 is LA-9's "res0@dev0"; an rt.draw without reads reads nothing."""
    made = ddi("app", "CreateResource", cbs=[("pfnAllocateCb", {}, {"hr": S_OK,
                                                                    "allocations": [1]})])
    bare = [("app", "rt.resource.create", {"device": "dev0"})]
    what = "LockAsync(NoOverwrite|Discard|NoExistingReferences) on app"
    evs = (CREATE + made + bare + put(1, "DrawPrimitive", [0])
           + ddi("app", "LockAsync", flags=NOREFS | 0x3))
    assert found(evs) == [
        ("LA-5", f"the runtime called {what} with flags 0x23: NoOverwrite and Discard both "
                 "set", {"flags": 0x23}),
        ("LA-9", f"the runtime set NoExistingReferences on {what} while 1 queued command(s) "
                 "still reference res0@dev0", {"resource": 0}),
        ("LA-8", f"{what} returned S_OK without renaming: no pfnLockCb with Discard succeeded",
         {"resource": 0}),
        ("LA-14", f"{what} succeeded without a pfnLockCb carrying IgnoreSync (and had no "
                  "cached NoOverwrite pointer, LCB-3)", {"resource": 0}),
        ("LA-12", f"{what} renamed but returned no hCookie (0): the runtime has nothing to pass "
                  "to Rename", {"resource": 0})]
    assert found([*CREATE, ("app", "rt.draw", {"device": "dev0", "draw_id": 1})]) == []


# ---- dedupe: the device tag and the message as the key ---------------------------------------

def test_a_device_named_none_keys_dv1_by_its_message() -> None:
    """DV-1 is keyed by the device's name; a CreateDevice whose device is None (the field
    there, its value None) has no name to key by, so its message is the key: two versions,
    two findings."""
    opened = [("app", "ddi.exit", {"ddi": "OpenAdapter", "device": "adapter", "hr": S_OK,
                                   "driver_version": 0xC})]
    evs = opened + create(0x9, device=None) + create(0xA, device=None)  # type: ignore[arg-type]
    assert found(evs) == [
        ("DV-1", f"the runtime created None with DDI version {v}, but the driver's OpenAdapter "
                 "reported 0xc in D3DDDIARG_OPENADAPTER.DriverVersion", {})
        for v in ("0x9", "0xa")]


def test_no_device_yet_and_an_event_naming_none_are_the_same_device() -> None:
    """A finding raised before any event (``final`` at the start of a run) is keyed with no
    device, like one raised after an event that names none: the same kernel invariant broken
    at both is one finding (KMD-INVARIANT)."""
    checker = Checker()
    kernel = SimpleNamespace(device_removals=[], dma_records=[],
                             check_invariants=lambda: ["lock count below zero"])
    eng = vt.Engine()
    checker.attach(eng)

    async def main() -> None:
        checker.final([kernel], [])
        vt.log("rt.queue.get", queue="dev0.cmdq", ddi="(stop)", seq=1)
        checker.final([kernel], [])

    r = eng.run(main, name="app")
    assert r.failure is None, r.summary()
    assert [(v.rule, v.message) for v in r.violations] == [
        ("KMD-INVARIANT", "lock count below zero")]
