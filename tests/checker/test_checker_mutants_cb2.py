"""Mutation tests of ``wddmemu/_checker_cb.py``, second part (issue 16): LCB-19 (which
pfnUnlockCb calls release a lock the application still holds), the pfnLockCb bookkeeping,
pfnRenderCb and the KMD lock rules, each judged by its exact findings. The harness is in
``test_checker_mutants.py``."""

from __future__ import annotations

from tests.checker.test_checker_mutants import Events, W, ddi, found, lockcb, unlockcb
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


