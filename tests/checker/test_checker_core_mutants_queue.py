"""Mutation tests of ``wddmemu/_checker.py`` (issue 16): the runtime's events (the command
queue, resources, draws), the callbacks' plumbing and the per-DDI bookkeeping hooks — MP-5,
MP-6, LA-2, LA-9, LK-8, LCB-7, LCB-17 and the data oracle's account of a draw, each judged by
its exact findings (ids in order, messages word for word, fields). What the queue accounting,
the resource table and the draw table record is read by later rules, so each test makes a
later rule read it. The harness is in ``test_checker_mutants.py``."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, ClassVar

from tests.checker.test_checker_mutants import (
    CREATE,
    E_OUTOFMEMORY,
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
)
from tests.checker.test_checker_mutants_ddi import R9, R, la, lk
from tests.support.seam import run_events
from wddmemu._checker import Checker

LA2 = ": LockAsync must be made on the application thread, not the runtime's worker"
ON_WORKER = la(thread=W, cbs=[lockcb(1, 0x1C)])  # LA-2, whose message describes the call
MP5 = ": batched calls must reach the driver in the order the application made them (RN-4)"
MP = [("app", "rt.device.create", {"device": "dev0", "mp": True})]
ALLOC1 = ("pfnAllocateCb", {}, {"hr": S_OK, "allocations": [1]})
#: draw 0 reads vb0@dev0, and its DrawPrimitive says no draw_id
DRAW0 = [("app", "rt.draw", {"device": "dev0", "draw_id": 0, "reads": [[RT, 0]]}),
         *ddi(W, "DrawPrimitive")]


def draw(draw_id: int, cbs: tuple | list = (), hr: str = S_OK) -> Events:
    """Draw ``draw_id`` reading vb0@dev0 (runtime handle RT), made on the worker (whose
    DrawPrimitive makes ``cbs`` and returns ``hr``)."""
    return [("app", "rt.draw", {"device": "dev0", "draw_id": draw_id, "reads": [[RT, 0]]}),
            *ddi(W, "DrawPrimitive", hr=hr, draw_id=draw_id, cbs=cbs)]


def lk8(draw_id: int | None, res: str = "vb0@dev0") -> str:
    return (f"the runtime passed DrawPrimitive(draw {draw_id}) on dev0.worker to the driver "
            f"while {res}, which it reads, is locked through Lock (Lock({res}, 0) on app)")


def lcb17(*names: str) -> str:
    return (f"DestroyDevice() on app returned with pfnLockCb locks still outstanding on "
            f"{list(names)}: DestroyDevice must release them")


def nodev(events: Events) -> Events:
    """The same events without their ``device`` field (every handler then files them under
    the device "?")."""
    return [(t, e, {k: v for k, v in f.items() if k != "device"}) for t, e, f in events]


def queue(event: str, q: str, **fields: Any) -> Events:
    return [(W if event == "rt.queue.get" else "app", event, {"queue": q, **fields})]


# ---- the command queue: MP-5, and who queued what (_on_queue_put / _on_queue_get) ------------

def test_mp5_out_of_order_command_once_per_seq() -> None:
    """MP-5: a command taken after a later one; keyed by its seq, so the same command taken
    again after another later one is not a second finding."""
    evs = get(5, "DrawPrimitive") + get(3, "Flush") + get(7, "Present") + get(3, "Flush")
    assert found(CREATE + evs) == [(
        "MP-5", f"the worker took command 3 (Flush) after command 5{MP5}", {"seq": 3})]


def test_mp5_the_first_command_or_a_repeated_one_is_in_order() -> None:
    """A seq equal to the last one taken is no MP-5 (only a lower one is), command 0 included."""
    assert found(CREATE + get(0, "DrawPrimitive") + get(0, "DrawPrimitive")) == []


def test_mp5_a_command_without_its_ddi_field_is_named_by_nothing() -> None:
    late = [(W, "rt.queue.get", {"queue": "dev0.cmdq", "seq": 3, "thread": W})]
    assert found(CREATE + get(5, "Flush") + late) == [(
        "MP-5", f"the worker took command 3 () after command 5{MP5}", {"seq": 3})]


def test_mp5_a_barrier_is_no_command_and_leaves_no_queued_entry() -> None:
    """A "(…)" item (a barrier, the stop) carries no DDI: it is not ordered (MP-5), and it is no
    command a DDI on the worker runs — neither described as one, nor released at its exit."""
    assert found(CREATE + get(5, "Flush") + get(3, "(barrier)")) == []
    worker_la2 = [("LA-2", f"LockAsync(vb0@dev0, NoOverwrite) on dev0.worker{LA2}", {})]
    assert found(R + put(2, "(barrier)", []) + get(2, "(barrier)") + ON_WORKER) == worker_la2
    # a barrier the checker never saw queued: nothing to drop, nothing to release
    assert found(R + get(2, "(barrier)") + ON_WORKER) == worker_la2


def test_a_worker_ddi_names_the_command_and_the_thread_that_queued_it() -> None:
    """describe(): "(command 1 queued by app)" — the put's thread, on the put's device; a put
    without refs is a command with none."""
    want = [("LA-2", "LockAsync(vb0@dev0, NoOverwrite) on dev0.worker (command 1 queued by "
                     f"app.2){LA2}", {})]
    assert found(R + put(1, "DrawPrimitive", [RT], thread="app.2") + get(1, "DrawPrimitive")
                 + ON_WORKER) == want
    bare = [("app", "rt.queue.put", {"queue": "dev0.cmdq", "ddi": "Flush", "seq": 1,
                                     "thread": "app.2"})]
    assert found(R + bare + get(1, "Flush") + ON_WORKER) == want


def test_a_put_without_its_thread_field_was_queued_by_question_mark() -> None:
    """The engine names the logging thread in every event it hands the checker; an event fed
    to ``on_event`` without one (here before the run) says "?"."""
    checker = Checker()
    checker.on_event({"event": "rt.queue.put", "queue": "dev0.cmdq", "ddi": "Flush",
                      "seq": 1, "refs": []})
    got = [(v.rule, v.message) for v in run_events(R + get(1, "Flush") + ON_WORKER, checker)]
    assert got == [("LA-2", "LockAsync(vb0@dev0, NoOverwrite) on dev0.worker (command 1 "
                            f"queued by ?){LA2}")]


def test_a_dotted_device_name_is_the_queue_name_without_its_last_part() -> None:
    """Queue "card.dev0.cmdq" belongs to device "card.dev0" (only the last dot splits)."""
    dev = "card.dev0"
    evs = (queue("rt.queue.put", "card.dev0.cmdq", ddi="Flush", seq=1, refs=[], thread="app")
           + queue("rt.queue.get", "card.dev0.cmdq", ddi="Flush", seq=1, thread=W)
           + ddi(W, "LockAsync", device=dev, resource=7, flags=1,
                 cbs=[lockcb(1, 0x1C)]))
    assert found(create(device=dev) + evs) == [(
        "LA-2", f"LockAsync(resource 0x7, NoOverwrite) on dev0.worker (command 1 queued by "
        f"app){LA2}", {})]


def test_mp6_drain_counts_queued_commands_but_not_barriers() -> None:
    """MP-5 / MP-6: CreateResource on the application thread only once the queue is drained;
    a queued barrier is no command left to drain."""
    drain = ddi("app", "CreateResource")
    assert found(CREATE + MP + put(1, "(barrier)", []) + drain) == []
    assert found(CREATE + MP + put(1, "Flush", []) + put(2, "(barrier)", []) + drain) == [(
        "MP-6", "the runtime made CreateResource() on app without draining its queue first "
        "(commands [1] still queued, MP-5)", {})]


# ---- what the queue still references (_release_queued, read by LA-9) -----------------------

def test_la9_counts_the_commands_left_after_one_ran() -> None:
    """Each command the worker finished no longer references its resources (LA-9 counts the
    others)."""
    evs = (R + put(1, "Flush", [RT]) + put(2, "Flush", [RT]) + put(3, "Flush", [RT])
           + get(1, "Flush") + ddi(W, "Flush") + la(flags=0x21, cbs=[lockcb(1, 0x1C)]))
    assert found(evs) == [(
        "LA-9", "the runtime set NoExistingReferences on LockAsync(vb0@dev0, "
        "NoOverwrite|NoExistingReferences) on app while 2 queued command(s) still reference "
        "vb0@dev0", {"resource": 7})]


# ---- rt.resource.create and rt.draw (_on_resource / _on_draw) ------------------------------

def test_a_resource_event_without_its_fields_is_resource_0_kind_res() -> None:
    """rt.resource.create's missing fields: driver handle 0, runtime handle 0, kind "res",
    video memory; LA-9 then reads runtime handle 0's queued command under the name res0@dev0."""
    made = [*ddi("app", "CreateResource", cbs=[ALLOC1]),
            ("app", "rt.resource.create", {"device": "dev0"})]
    evs = CREATE + made + put(1, "Flush", [0]) + la(flags=0x21, res=0, cbs=[lockcb(1, 0x1C)])
    assert found(evs) == [(
        "LA-9", "the runtime set NoExistingReferences on LockAsync(res0@dev0, "
        "NoOverwrite|NoExistingReferences) on app while 1 queued command(s) still reference "
        "res0@dev0", {"resource": 0})]


def test_a_draw_event_without_reads_reads_nothing() -> None:
    bare = [("app", "rt.draw", {"device": "dev0", "draw_id": 4}),
            *ddi(W, "DrawPrimitive", draw_id=4)]
    assert found(R + lk(cbs=[lockcb(1, 0x10)]) + bare) == []


def test_events_without_a_device_are_all_device_question_mark() -> None:
    """Every handler files an event without ``device`` under "?": the callbacks find their
    DDI there, the resource is named vb0@? and its allocation is known (KL-6's message)."""
    bad = ("pfnLockCb", {"allocation": 1, "flags": 0x1F},
           {"hr": S_OK, "allocation": 1, "new_allocation": 1})
    evs = nodev(R + lk(cbs=[bad]))
    assert found(evs) == [(
        "KL-6", "Lock(vb0@?, 0) on app called pfnLockCb on vb0@? inst 0 (0x1) with flags "
        "ReadOnly|WriteOnly|DonotWait|IgnoreSync|LockEntire, which break KL-6: "
        "ReadOnly and WriteOnly together are invalid", {"flags": 0x1F})]
    evs = nodev(R + lk(cbs=[lockcb(1, 0x10)]) + draw(4) + ddi("app", "DestroyDevice"))
    assert found(evs) == [
        ("LK-8", lk8(4, "vb0@?"), {"draw": 4, "resource": 7}),
        ("LCB-17", lcb17("vb0@? inst 0 (0x1)"), {"allocations": [1]})]


# ---- LK-8 (_draw_enter) --------------------------------------------------------------------

def test_lk8_a_draw_of_a_resource_locked_through_lock_once_per_resource() -> None:
    """LK-8: keyed by the locked (resource, sub), so a second draw under the same lock is not
    a second finding; a draw of another resource is none."""
    evs = R + lk(cbs=[lockcb(1, 0x10)]) + draw(4) + draw(5)
    assert found(evs) == [("LK-8", lk8(4), {"draw": 4, "resource": 7})]
    assert found(R9 + lk(res=9, cbs=[lockcb(3, 0x10)]) + draw(4)) == []


def test_lk8_a_drawprimitive_without_draw_id_is_draw_0() -> None:
    want = [("LK-8", lk8(None), {"draw": 0, "resource": 7})]
    assert found(R + lk(cbs=[lockcb(1, 0x10)]) + DRAW0) == want


# ---- the driver's unsubmitted draws (_draw_exit, read by LCB-7) ----------------------------

def test_lcb7_a_drawprimitive_without_draw_id_holds_draw_0() -> None:
    assert found(R + DRAW0 + lk(cbs=[lockcb(1, 0x190)])) == [(
        "LCB-7", "Lock(vb0@dev0, 0) on app passed NoExistingReference to pfnLockCb while the "
        "driver still holds unsubmitted draws [0] reading vb0@dev0",
        {"draws": [0], "resource": 7})]


def test_lcb7_a_draw_its_own_drawprimitive_submitted_is_not_held() -> None:
    """A driver may flush inside DrawPrimitive after encoding the draw: that pfnRenderCb
    carries the draw, so the driver holds no unsubmitted draw of vb0@dev0 when DrawPrimitive
    returns, and Discard|NoExistingReference on it is true (LCB-7). The checker used to count
    the draw as held from DrawPrimitive's return on, and reported a false LCB-7."""
    flush = ("pfnRenderCb", {"allocations": [1], "refs": [[4, 1]]}, {"hr": S_OK})
    assert found(R + draw(4, cbs=[flush]) + lk(cbs=[lockcb(1, 0x190)])) == []
    # the same draw carried by no pfnRenderCb is held (LCB-7), unless DrawPrimitive failed
    assert [r for r, _m, _f in found(R + draw(4) + lk(cbs=[lockcb(1, 0x190)]))] == ["LCB-7"]
    assert found(R + draw(4, hr=E_OUTOFMEMORY) + lk(cbs=[lockcb(1, 0x190)])) == []


class _Oracle(Checker):
    """The checker, with two made-up events that reach the data oracle inside the run:
    ``test.dma`` (the GPU finished draw 4) and ``test.final`` (the scenario ended and draw 4
    never executed). The runtime's device is a stand-in with just what the oracle reads."""

    _DRAW = SimpleNamespace(draw_id=4, thread="app", reads=[])
    _DEV = SimpleNamespace(name="dev0", km_device=1, lost=False, snapshots=SimpleNamespace(
        executed=lambda rec: [(_Oracle._DRAW, [])],
        unexecuted=lambda: [(_Oracle._DRAW, [])], aborted=set()))
    _HANDLERS: ClassVar[dict[str, Any]] = {
        **Checker._HANDLERS,
        "test.dma": lambda self, ev: self.on_dma(SimpleNamespace(device=1), [_Oracle._DEV]),
        "test.final": lambda self, ev: self.final([], [_Oracle._DEV]),
    }


def oracle(events: Events) -> list[tuple[str, str, dict[str, Any]]]:
    return [(v.rule, v.message, dict(v.fields)) for v in run_events(events, _Oracle())]


def test_data_a_dropped_draw_returned_s_ok_and_was_never_submitted() -> None:
    """The data oracle's account of a lost draw reads the hr DrawPrimitive returned."""
    evs = R + draw(4) + [("app", "test.final", {})]
    assert oracle(evs) == [(
        "DATA", "draw 4 on dev0 (issued by app) never executed on the GPU: DrawPrimitive on "
        "dev0.worker returned S_OK, but no pfnRenderCb ever carried the draw: the driver "
        "dropped it", {"draw": 4})]


def test_a_draw_the_gpu_finished_before_drawprimitive_returned() -> None:
    """The oracle closes a draw the GPU executed (its per-draw state goes); a DrawPrimitive
    that returns after that (its driver submitted the draw itself) still records its result."""
    enter, *rest = ddi(W, "DrawPrimitive", draw_id=4)
    assert oracle([*R, enter, ("app", "test.dma", {}), *rest]) == []


# ---- DestroyResource and CreateResource (_dr_exit / _cr_exit) ------------------------------

def test_lcb17_destroyresource_takes_its_own_kernel_locks_only_when_it_succeeds() -> None:
    """A destroyed resource's pfnLockCb locks go with it (the kernel unlocks implicitly), and
    its Lock lock too (no LK-8 for a draw after it); another resource's stay (LCB-17). A
    DestroyResource that did not return S_OK destroyed nothing."""
    locked = R9 + lk(cbs=[lockcb(1, 0x10)]) + lk(res=9, cbs=[lockcb(3, 0x10)])
    end = draw(4) + ddi("app", "DestroyDevice")
    evs = locked + ddi("app", "DestroyResource", resource=7) + end
    assert found(evs) == [("LCB-17", lcb17("vb1@dev0 inst 0 (0x3)"), {"allocations": [3]})]
    evs = locked + ddi("app", "DestroyResource", resource=7, hr=1) + ddi("app", "DestroyDevice")
    assert found(evs) == [("LCB-17", lcb17("vb0@dev0 inst 0 (0x1)", "vb1@dev0 inst 0 (0x3)"),
                           {"allocations": [1, 3]})]


def test_a_failed_createresource_owns_no_allocation() -> None:
    """The allocations of a CreateResource that failed are not the next resource's."""
    failed = ddi("app", "CreateResource", hr=E_OUTOFMEMORY, cbs=[
        ("pfnAllocateCb", {}, {"hr": S_OK, "allocations": [5]})])
    named = [("app", "rt.resource.create", {"device": "dev0", "resource": 7, "rt_resource": RT,
                                            "kind": "vb", "pool": 1, "dynamic": True})]
    bare = [("app", "cb.enter", {"cb": "pfnLockCb", "device": "dev0", "allocation": 5,
                                 "flags": 0x1F})]
    assert found(CREATE + failed + named + bare) == [(
        "KL-6", "app called pfnLockCb on allocation 0x5 with flags "
        "ReadOnly|WriteOnly|DonotWait|IgnoreSync|LockEntire, which break KL-6: "
        "ReadOnly and WriteOnly together are invalid", {"flags": 0x1F})]


# ---- pfnAllocateCb (_on_cb_exit) -----------------------------------------------------------

def test_only_a_successful_pfnallocatecb_inside_a_ddi_records_allocations() -> None:
    """What CreateResource's pfnAllocateCb made names the resource's allocation (here in
    KL-6's message); another callback after it, a pfnAllocateCb outside any DDI or one without
    its allocations field records nothing."""
    other = ("pfnDeallocateCb", {}, {"hr": S_OK})
    made = ddi("app", "CreateResource", cbs=[ALLOC1, other])
    named = [("app", "rt.resource.create", {"device": "dev0", "resource": 7, "rt_resource": RT,
                                            "kind": "vb", "pool": 1, "dynamic": True})]
    stray = [("app", "cb.exit", {"cb": "pfnAllocateCb", "device": "dev0", "hr": S_OK,
                                 "allocations": [9]})]
    bare = [("app", "cb.enter", {"cb": "pfnLockCb", "device": "dev0", "allocation": 1,
                                 "flags": 0x1F})]
    assert found(CREATE + made + stray + named + bare) == [(
        "KL-6", "app called pfnLockCb on vb0@dev0 inst 0 (0x1) with flags "
        "ReadOnly|WriteOnly|DonotWait|IgnoreSync|LockEntire, which break KL-6: "
        "ReadOnly and WriteOnly together are invalid", {"flags": 0x1F})]
    empty = ddi("app", "CreateResource", cbs=[("pfnAllocateCb", {}, {"hr": S_OK})])
    assert found(CREATE + empty + named + bare) == [(
        "KL-6", "app called pfnLockCb on allocation 0x1 with flags "
        "ReadOnly|WriteOnly|DonotWait|IgnoreSync|LockEntire, which break KL-6: "
        "ReadOnly and WriteOnly together are invalid", {"flags": 0x1F})]
