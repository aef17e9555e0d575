"""Mutation tests of ``wddmemu/_checker_cb.py``, second part (issue 16): LCB-19 (which
pfnUnlockCb calls release a lock the application still holds), the pfnLockCb bookkeeping,
pfnRenderCb and the KMD lock rules, each judged by its exact findings. The harness is in
``test_checker_mutants.py``."""

from __future__ import annotations

from typing import Any

from tests.checker.test_checker_mutants import (
    CREATE,
    E_INVALIDARG,
    RT,
    S_OK,
    Events,
    W,
    ddi,
    found,
    lockcb,
    unlockcb,
)
from tests.checker.test_checker_mutants_ddi import NOOVERWRITE, R9, R, la, lk, ua, ul

#: the application holds vb0@dev0 (allocation 1) and vb1@dev0 (allocation 3), both NoOverwrite
HOLD = R9 + NOOVERWRITE + la(res=9, cbs=[lockcb(3, 0x1C)])
TAIL = ", which the application still holds locked"


def lcb19(who: str, alloc: str, h: int, by: str, ddi_name: str | None) -> tuple:
    return ("LCB-19", f"{who} called pfnUnlockCb on {alloc}{TAIL}{by}: only its unlock may "
            "release it", {"allocation": h, "ddi": ddi_name})


def bare_unlockcb(*allocs: int, thread: str = "app") -> Events:
    """A pfnUnlockCb outside any DDI call (no call to blame: the thread is named)."""
    return [(thread, "cb.enter", {"cb": "pfnUnlockCb", "device": "dev0",
                                  "allocations": list(allocs)})]


def held_by(res: str) -> str:
    return f" (LockAsync({res}@dev0, NoOverwrite) on app)"


def test_lcb19_each_allocation_is_its_own_finding() -> None:
    """LCB-19 outside a DDI: the thread is the culprit, ddi is None, one finding per handle."""
    assert found(HOLD + bare_unlockcb(1, 3)) == [
        lcb19("app", "vb0@dev0 inst 0 (0x1)", 1, held_by("vb0"), None),
        lcb19("app", "vb1@dev0 inst 0 (0x3)", 3, held_by("vb1"), None)]
    # an allocation the application does not hold is skipped, not the end of the list
    assert found(R9 + NOOVERWRITE + bare_unlockcb(3, 1)) == [
        lcb19("app", "vb0@dev0 inst 0 (0x1)", 1, held_by("vb0"), None)]


def test_lcb19_a_lock_ddi_undoing_its_own_lock_then_releasing_another() -> None:
    evs = R9 + NOOVERWRITE + lk(res=9, cbs=[lockcb(3, 0x10), unlockcb(3, 1)])
    assert found(evs) == [lcb19("Lock(vb1@dev0, 0) on app", "vb0@dev0 inst 0 (0x1)", 1,
                                held_by("vb0"), "Lock")]


def test_lcb19_an_unlock_ddi_releases_its_own_allocation_not_another() -> None:
    assert found(HOLD + ua(cbs=[unlockcb(1, 3)])) == [
        lcb19("UnlockAsync(vb0@dev0) on app", "vb1@dev0 inst 0 (0x3)", 3, held_by("vb1"),
              "UnlockAsync")]
    # DestroyResource may release anything it destroys under the application
    assert found(HOLD + ddi("app", "DestroyResource", resource=9, cbs=[unlockcb(1)])) == []


def test_lcb19_released_once_and_not_again_as_lk11() -> None:
    """After LCB-19 the application's Unlock without pfnUnlockCb is not also an LK-11."""
    evs = (R9 + lk(cbs=[lockcb(1, 0x10)]) + lk(res=9, cbs=[lockcb(3, 0x10), unlockcb(1)])
           + ul())
    assert found(evs) == [lcb19("Lock(vb1@dev0, 0) on app", "vb0@dev0 inst 0 (0x1)", 1,
                                " (Lock(vb0@dev0, 0) on app)", "Lock")]


def test_lcb19_under_a_lock_still_in_progress_names_no_holder() -> None:
    """The worker unlocks what the app's Lock has just locked: no holder yet, so no "(by)"."""
    lock = ddi("app", "Lock", resource=7, cbs=[lockcb(1, 0x10)])
    evs: Events = R + lock[:-1] + bare_unlockcb(1, thread=W) + lock[-1:]
    assert found(evs) == [lcb19(W, "vb0@dev0 inst 0 (0x1)", 1, "", None)]




def test_lcb19_an_allocation_of_no_known_resource() -> None:
    """Allocation 0x32 was locked on a resource the checker never saw made, so it has no
    owner: an unlock DDI on any resource — resource 0 too — releasing it under the app is
    LCB-19. (An ownerless handle used to default to resource 0's key, so a driver numbering
    its resources from 0 had this excused.)"""
    base = lk(res=5, cbs=[lockcb(50, 0x10)])
    for res in (0, 1):
        unlock = ddi("app", "UnlockAsync", resource=res, cbs=[unlockcb(50)])
        assert found(CREATE + base + unlock) == [
            lcb19(f"UnlockAsync(resource {res:#x}) on app", "allocation 0x32", 50, "",
                  "UnlockAsync"),
            ("UA-3", f"UnlockAsync(resource {res:#x}) on app returned S_OK without an "
             f"outstanding LockAsync on resource {res:#x} (it must return E_INVALIDARG)",
             {"resource": res})]


DRAW4 = [("app", "rt.draw", {"device": "dev0", "draw_id": 4, "reads": [[RT, 0]]}),
         *ddi(W, "DrawPrimitive", draw_id=4)]  # draw 4 reads vb0@dev0, not yet submitted


def lcb11(who: str, what: str, flags: int, names: str) -> tuple:
    return ("LCB-11", f"{who} called pfnLockCb on vb0@dev0 inst 0 (0x1) with {what} (flags "
            f"{names}): LockEntire means NumPages 0 and no pPages, and without it the pages to "
            "lock must be listed", {"flags": flags})


def test_kl6_a_pfnlockcb_outside_any_ddi_names_its_thread() -> None:
    bare = [("app", "cb.enter", {"cb": "pfnLockCb", "device": "dev0", "allocation": 1,
                                 "flags": 0x1F})]
    assert found(R + bare) == [(
        "KL-6", "app called pfnLockCb on vb0@dev0 inst 0 (0x1) with flags "
        "ReadOnly|WriteOnly|DonotWait|IgnoreSync|LockEntire, which break KL-6: "
        "ReadOnly and WriteOnly together are invalid", {"flags": 0x1F})]


def test_lcb11_no_flags_field_is_flags_0_and_each_ddi_is_its_own_finding() -> None:
    none = "neither LockEntire nor a page list"
    noflags = ("pfnLockCb", {"allocation": 1, "pages": None},
               {"hr": S_OK, "allocation": 1, "new_allocation": 1})
    assert found(R + lk(cbs=[noflags])) == [lcb11("Lock(vb0@dev0, 0) on app", none, 0, "0")]
    evs = (R + la(cbs=[lockcb(1, 0x0C, pages=None)]) + ua(cbs=[unlockcb(1)])
           + lk(cbs=[lockcb(1, 0x00, pages=None)]))
    assert found(evs) == [
        lcb11("LockAsync(vb0@dev0, NoOverwrite) on app", none, 0x0C, "DonotWait|IgnoreSync"),
        lcb11("Lock(vb0@dev0, 0) on app", none, 0, "0")]


def test_lcb7_lock_with_noexistingreference_over_an_unsubmitted_draw() -> None:
    """With Discard the flag word is legal, so the draw decides (LCB-7 on Lock, not LA-9);
    without Discard the word itself breaks LCB-7 and that is the one finding."""
    assert found(R + DRAW4 + lk(cbs=[lockcb(1, 0x190)])) == [(
        "LCB-7", "Lock(vb0@dev0, 0) on app passed NoExistingReference to pfnLockCb while the "
        "driver still holds unsubmitted draws [4] reading vb0@dev0", {"draws": [4], "resource": 7})]
    assert found(R + DRAW4 + lk(cbs=[lockcb(1, 0x110)])) == [(
        "LCB-7", "Lock(vb0@dev0, 0) on app called pfnLockCb on vb0@dev0 inst 0 (0x1) with flags "
        "LockEntire|NoExistingReference, which break LCB-7: "
        "NoExistingReference is only used with Discard", {"flags": 0x110})]
    assert found(R + lk(cbs=[lockcb(1, 0x190)])) == []  # no draw pending


def bare_rendercb(**enter: Any) -> Events:
    return [(W, "cb.enter", {"cb": "pfnRenderCb", "device": "dev0", **enter})]


def test_rcb1_and_lcb18_a_pfnrendercb_outside_any_ddi() -> None:
    """No refs or allocations field: nothing to walk; the thread is the culprit."""
    assert found(R + bare_rendercb(command_bytes=64, command_length=32)) == [(
        "RCB-1", "dev0.worker called pfnRenderCb with CommandLength 32 for a command buffer of "
        "64 bytes: the UMD must fill it in", {"bytes": 64, "command_length": 32})]
    left = R + ddi(W, "Flush", cbs=[lockcb(1, 0x10)])
    assert found(left + bare_rendercb(allocations=[1])) == [(
        "LCB-18", "dev0.worker submitted with pfnRenderCb while the driver still held a "
        "pfnLockCb on vb0@dev0 inst 0 (0x1), which the application no longer holds: unlock "
        "(uncache) before rendering (LCB-4)", {"allocation": 1})]


def lcb18(alloc: str, h: int) -> tuple:
    return ("LCB-18", "Flush() on dev0.worker submitted with pfnRenderCb while the driver still "
            f"held a pfnLockCb on {alloc}, which the application no longer holds: unlock "
            "(uncache) before rendering (LCB-4)", {"allocation": h})


def test_lcb18_the_kernel_lock_ledger_of_pfnlockcb() -> None:
    """Which allocation a successful pfnLockCb locked: new_allocation, else allocation, else
    none; each pfnLockCb counts, so two locks and one unlock leave one."""
    render = ("pfnRenderCb", {"allocations": [1, 5], "refs": []}, {"hr": S_OK})

    def flush(*exit_fields: dict[str, Any]) -> Events:
        return R + ddi(W, "Flush", cbs=[
            *[("pfnLockCb", {"allocation": 1, "flags": 0x10}, {"hr": S_OK, **x})
              for x in exit_fields], render])

    assert found(flush({"allocation": 1})) == [lcb18("vb0@dev0 inst 0 (0x1)", 1)]
    assert found(flush({})) == []
    # a new allocation from no known one is not an instance of vb0@dev0
    assert found(flush({"new_allocation": 5})) == [lcb18("allocation 0x5", 5)]
    twice = ddi(W, "Flush", cbs=[lockcb(1, 0x10), lockcb(1, 0x10), unlockcb(1), render])
    assert found(R + twice) == [lcb18("vb0@dev0 inst 0 (0x1)", 1)]


def test_kl21_ignoresync_alone_does_not_exempt_a_busy_failure() -> None:
    assert found([("app", "kmd.lock", {"rule": "KL-21", "flags": 0x8, "allocation": 1})]) == [
        ("KL-21", "a lock without DonotWait failed as busy instead of waiting",
         {"allocation": 1})]


def test_lcb19_which_unlocks_a_lock_ddi_may_make_of_its_own_lock() -> None:
    """A lock DDI may undo a lock it took itself, not one the application holds (even when its
    own pfnLockCb returned that allocation), nor one another thread's Lock just took."""
    lock = "Lock(vb1@dev0, 0) on "
    assert found(R9 + NOOVERWRITE + lk(res=9, cbs=[lockcb(1, 0x10), unlockcb(1)])) == [
        lcb19(lock + "app", "vb0@dev0 inst 0 (0x1)", 1, held_by("vb0"), "Lock")]
    assert found(R9 + NOOVERWRITE + lk(res=9, cbs=[lockcb(3, 0x10), unlockcb(3)])) == []
    other = ddi("app", "Lock", resource=7, cbs=[lockcb(1, 0x10)])
    evs = R9 + other[:-1] + lk(res=9, thread=W, cbs=[lockcb(3, 0x10), unlockcb(1)]) + other[-1:]
    assert found(evs) == [
        ("MP-1", f"the runtime let {lock}dev0.worker in while Lock(vb0@dev0) on app is inside "
         "the driver (DDI version 0xc): two threads inside the driver for one device",
         {"ddis": ["Lock", "Lock"], "threads": ["app", W]}),
        lcb19(lock + W, "vb0@dev0 inst 0 (0x1)", 1, "", "Lock")]


def test_lcb17_and_lcb7_name_five_and_list_ten() -> None:
    handles = list(range(0x41, 0x4C))  # eleven allocations no resource owns
    leaked = ddi(W, "Flush", cbs=[lockcb(h, 0x10) for h in handles])
    names = [f"allocation {h:#x}" for h in handles[:5]]
    assert found(R + leaked + ddi("app", "DestroyDevice")) == [(
        "LCB-17", f"DestroyDevice() on app returned with pfnLockCb locks still outstanding on "
        f"{str(names)[:-1]}, … (6 more)]: DestroyDevice must release them",
        {"allocations": handles[:10]})]
    draws: Events = []
    for d in range(11):
        draws += [("app", "rt.draw", {"device": "dev0", "draw_id": d, "reads": [[RT, 0]]}),
                  *ddi(W, "DrawPrimitive", draw_id=d)]
    assert found(R + draws + lk(cbs=[lockcb(1, 0x190)])) == [(
        "LCB-7", "Lock(vb0@dev0, 0) on app passed NoExistingReference to pfnLockCb while the "
        "driver still holds unsubmitted draws [0, 1, 2, 3, 4] reading vb0@dev0",
        {"draws": list(range(10)), "resource": 7})]


def test_rcb3_a_missing_list_size_is_a_0_entry_list() -> None:
    def rcb(x: dict[str, Any] | None = None, **enter: Any) -> tuple:
        return ("pfnRenderCb", {"allocations": [], "refs": [], **enter}, {"hr": S_OK, **(x or {})})

    handed = rcb(x={"new_command_buffer_size": 8}, command_bytes=8, command_length=8)
    over = rcb(command_bytes=8, command_length=8, allocations=[1])
    assert found(R + ddi(W, "Flush", cbs=[handed, over])) == [(
        "RCB-3", "Flush() on dev0.worker submitted 8 bytes and 1 allocation list entries, but "
        "the last pfnRenderCb handed back a 8-byte buffer and a 0-entry list: whether or not a "
        "resize was asked for, the sizes must be read back", {"bytes": 8, "handed": [8, 0]})]


def test_lcb7_once_per_resource_and_a_draw_of_no_known_resources() -> None:
    def draw(d: int) -> Events:
        return [("app", "rt.draw", {"device": "dev0", "draw_id": d, "reads": [[RT, 0]]}),
                *ddi(W, "DrawPrimitive", draw_id=d)]

    discard = lk(cbs=[lockcb(1, 0x190)])
    # a draw the runtime never described reads nothing the checker knows of
    assert found(R + ddi(W, "DrawPrimitive", draw_id=4) + discard) == []
    evs = R + draw(4) + discard + ul(cbs=[unlockcb(1)]) + draw(5) + discard
    assert found(evs) == [(
        "LCB-7", "Lock(vb0@dev0, 0) on app passed NoExistingReference to pfnLockCb while the "
        "driver still holds unsubmitted draws [4] reading vb0@dev0", {"draws": [4], "resource": 7})]


def test_lcb11_outside_any_ddi_and_la9_once_per_resource() -> None:
    bare = [("app", "cb.enter", {"cb": "pfnLockCb", "device": "dev0", "allocation": 1,
                                 "flags": 0x0C, "pages": None})]
    assert found(R + bare) == [
        lcb11("app", "neither LockEntire nor a page list", 0x0C, "DonotWait|IgnoreSync")]
    la9 = [("LA-9", f"LockAsync({vb}@dev0, NoOverwrite) on app passed NoExistingReference to "
            "pfnLockCb although the runtime did not set NoExistingReferences", {"resource": res})
           for vb, res in (("vb0", 7), ("vb1", 9))]
    evs = R9 + la(cbs=[lockcb(1, 0x19C)]) + la(res=9, cbs=[lockcb(3, 0x19C)])
    assert found(evs) == la9


def test_err1_a_failed_pfnunlockcb_after_a_good_render_naming_no_allocation() -> None:
    """ERR-1 looks past the callbacks that succeeded; a pfnUnlockCb with no allocations field
    names an empty list."""
    ok = ("pfnRenderCb", {"allocations": [], "refs": []}, {"hr": S_OK})
    failed = ("pfnUnlockCb", {}, {"hr": E_INVALIDARG})
    assert found(R + ddi(W, "Flush", cbs=[ok, failed])) == [(
        "ERR-1", "Flush() on dev0.worker returned S_OK although its last pfnUnlockCb on [] "
        "failed with E_INVALIDARG", {"callback": "pfnUnlockCb", "ddi": "Flush"})]

