"""Checker branches that no seeded bug reaches, driven by synthetic seam events: the checker
reads only events, so a made-up stream of them is a fair test."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.seam import run_events

S_OK, E_INVALIDARG = "0x00000000", "0x80070057"


def rules_for(events: list[tuple[str, str, dict[str, Any]]]) -> list[str]:
    """The rule ids ``events`` break, in the order they first broke (no repeats)."""
    return list(dict.fromkeys(v.rule for v in run_events(events)))


def ddi(thread: str, name: str, hr: str = S_OK, cbs: tuple = (), **enter: Any) -> list:
    evs = [(thread, "ddi.enter", {"ddi": name, "device": "dev0", **enter})]
    for cb, e, x in cbs:
        evs.append((thread, "cb.enter", {"cb": cb, "device": "dev0", **e}))
        evs.append((thread, "cb.exit", {"cb": cb, "device": "dev0", **x}))
    evs.append((thread, "ddi.exit", {"ddi": name, "device": "dev0", "hr": hr}))
    return evs


CREATE = [("app", "ddi.exit", {"ddi": "CreateDevice", "device": "dev0", "hr": S_OK,
                               "driver_version": 0xC,
                               "implements": ["LockAsync", "UnlockAsync", "Rename"]})]


def test_lock_without_pfnlockcb_is_lk6_and_unlock_without_pfnunlockcb_is_lk11() -> None:
    evs = CREATE + ddi("app", "Lock", resource=7, flags=0) + ddi("app", "Unlock", resource=7)
    assert rules_for(evs) == ["LK-6", "LK-11"]
    good = CREATE + ddi("app", "Lock", resource=7, flags=0, cbs=[
        ("pfnLockCb", {"allocation": 1, "flags": 0x10}, {"hr": S_OK, "new_allocation": 1})
    ]) + ddi("app", "Unlock", resource=7, cbs=[
        ("pfnUnlockCb", {"allocations": [1]}, {"hr": S_OK, "allocations": [1]})
    ])
    assert rules_for(good) == []


def _locked(resource: int, flags: int, surf_data: bool) -> list:
    """A Lock that called pfnLockCb and returned S_OK, its exit saying whether pSurfData is set
    (the runtime logs Lock's outputs as it logs LockAsync's)."""
    evs = ddi("app", "Lock", resource=resource, flags=flags, cbs=[
        ("pfnLockCb", {"allocation": 1, "flags": 0}, {"hr": S_OK, "new_allocation": 1})])
    evs[-1][2].update(surf_data=surf_data, surf_allocation=None, pitch=64, slice_pitch=64)
    return evs


def test_a_lock_that_returns_no_pointer_is_lk6() -> None:
    """LK-6's second half: the pointer pfnLockCb gave is returned in pSurfData. A NotifyOnly
    Lock (0x80) of runtime system memory is exempt: the runtime ignores it (LK-10)."""
    assert rules_for(CREATE + _resource() + _locked(7, 0, surf_data=False)) == ["LK-6"]
    assert rules_for(CREATE + _resource() + _locked(7, 0, surf_data=True)) == []
    sysmem = _resource(pool=2)
    assert rules_for(CREATE + sysmem + _locked(7, 0x80, surf_data=False)) == []
    # either alone exempts too: NotifyOnly says the pointer is not wanted, and the runtime
    # reads its system memory through its own mapping (runtime/_lock.py:lock_sync)
    assert rules_for(CREATE + _resource() + _locked(7, 0x80, surf_data=False)) == []
    assert rules_for(CREATE + sysmem + _locked(7, 0, surf_data=False)) == []
    # an exit that says nothing of pSurfData (an older trace) is not judged
    bare = ddi("app", "Lock", resource=7, flags=0, cbs=[
        ("pfnLockCb", {"allocation": 1, "flags": 0}, {"hr": S_OK, "new_allocation": 1})])
    assert rules_for(CREATE + _resource() + bare) == []


def _discard(resource: int, cookie: int) -> list:
    evs = ddi("app", "LockAsync", resource=resource, flags=0x2, cbs=[
        ("pfnLockCb", {"allocation": 1, "flags": 0x80},
         {"hr": S_OK, "allocation": 1, "new_allocation": 2})
    ])
    evs[-1][2]["cookie"] = cookie  # LockAsync's exit carries the cookie it handed out
    return evs


def test_rename_of_another_resource_is_rn6() -> None:
    evs = CREATE + _discard(7, 0xC1) + ddi("dev0.worker", "Rename", resource=9, cookie=0xC1)
    assert rules_for(evs) == ["RN-6"]
    ok = CREATE + _discard(7, 0xC1) + ddi("dev0.worker", "Rename", resource=7, cookie=0xC1)
    assert rules_for(ok) == []


def test_unlockasync_ok_without_outstanding_lockasync_is_ua3() -> None:
    evs = CREATE + ddi("app", "UnlockAsync", resource=7)
    assert rules_for(evs) == ["UA-3"]
    refused = CREATE + ddi("app", "UnlockAsync", hr=E_INVALIDARG, resource=7)
    assert rules_for(refused) == []


# ---- rules a seeded runtime bug cannot reach (the emulated runtime enforces them), driven by
# ---- the events a runtime that broke them would log; each asserts the exact list of ids

RT = 0x1000  # the runtime's handle of resource 7


def _resource(res: int = 7, rt: int = RT, pool: int = 1, kind: str = "vb") -> list:
    return [("app", "rt.resource.create", {"device": "dev0", "resource": res, "rt_resource": rt,
                                           "kind": kind, "pool": pool, "dynamic": True})]


def _put(seq: int, ddi_name: str, refs: list[int]) -> list:
    return [("app", "rt.queue.put", {"queue": "dev0.cmdq", "ddi": ddi_name, "seq": seq,
                                     "refs": refs})]


def test_la9_runtime_half_fires_on_a_single_queued_reference() -> None:
    """NoExistingReferences with exactly one queued command that references the resource (a
    mutant allowing one queued reference survives without this test)."""
    lock = ddi("app", "LockAsync", resource=7, flags=0x21, cbs=[
        ("pfnLockCb", {"allocation": 1, "flags": 0x1C},
         {"hr": S_OK, "allocation": 1, "new_allocation": 1})])
    assert rules_for(CREATE + _resource() + _put(1, "DrawPrimitive", [RT]) + lock) == ["LA-9"]
    assert rules_for(CREATE + _resource() + _put(1, "DrawPrimitive", [0x2000]) + lock) == []


def test_err1_a_swallowed_failure_other_than_device_removed() -> None:
    """ERR-1 for a failure that is not DEVICEREMOVED (a mutant dropping that branch survives
    without this test); a retried callback that succeeded is no error."""
    evs = CREATE + ddi("app", "Present", cbs=[
        ("pfnRenderCb", {"allocations": [], "refs": []}, {"hr": E_INVALIDARG})])
    assert rules_for(evs) == ["ERR-1"]
    retried = CREATE + _resource() + ddi("app", "Lock", resource=7, flags=0x8, cbs=[
        ("pfnLockCb", {"allocation": 1, "flags": 0x90}, {"hr": "0x8876021C", "allocation": 1,
                                                         "new_allocation": 1}),
        ("pfnRenderCb", {"allocations": [], "refs": []}, {"hr": S_OK}),
        ("pfnLockCb", {"allocation": 1, "flags": 0x190}, {"hr": S_OK, "allocation": 1,
                                                         "new_allocation": 2})])
    assert rules_for(retried) == []


def test_la18_a_non_discard_cookie_passed_to_rename() -> None:
    nooverwrite = ddi("app", "LockAsync", resource=7, flags=0x1, cbs=[
        ("pfnLockCb", {"allocation": 1, "flags": 0x1C},
         {"hr": S_OK, "allocation": 1, "new_allocation": 1})])
    nooverwrite[-1][2]["cookie"] = 0xC7
    evs = CREATE + nooverwrite + ddi("dev0.worker", "Rename", resource=7, cookie=0xC7)
    assert rules_for(evs) == ["LA-18"]


def test_ua6_and_ua7_the_runtime_unlockasync_flags() -> None:
    notify = ddi("app", "LockAsync", resource=7, flags=0x40, cbs=[
        ("pfnLockCb", {"allocation": 1, "flags": 0x10},
         {"hr": S_OK, "allocation": 1, "new_allocation": 1})])
    unlock = ddi("app", "UnlockAsync", resource=7, flags=0, cbs=[
        ("pfnUnlockCb", {"allocations": [1]}, {"hr": S_OK, "allocations": [1]})])
    assert rules_for(CREATE + notify + unlock) == ["UA-6"]
    reserved = ddi("app", "UnlockAsync", resource=7, flags=0x41, cbs=[
        ("pfnUnlockCb", {"allocations": [1]}, {"hr": S_OK, "allocations": [1]})])
    assert rules_for(CREATE + notify + reserved) == ["UA-7"]


@pytest.mark.parametrize("flags,rule", [(0x3, "LK-1"), (0xC, "LK-2"), (0x30, "LK-3"),
                                        (0x9, "LK-4"), (0x400, "LK-5")])
def test_lk1_to_lk5_the_runtime_lock_flags(flags: int, rule: str) -> None:
    evs = CREATE + ddi("app", "Lock", hr=E_INVALIDARG, resource=7, flags=flags)
    assert rules_for(evs) == [rule]


def test_la2_ua2_the_async_ddis_on_the_worker() -> None:
    lock = ddi("dev0.worker", "LockAsync", resource=7, flags=0x1, cbs=[
        ("pfnLockCb", {"allocation": 1, "flags": 0x1C},
         {"hr": S_OK, "allocation": 1, "new_allocation": 1})])
    unlock = ddi("dev0.worker", "UnlockAsync", resource=7, cbs=[
        ("pfnUnlockCb", {"allocations": [1]}, {"hr": S_OK, "allocations": [1]})])
    assert rules_for(CREATE + lock + unlock) == ["LA-2", "UA-2"]


def test_mp6_batched_on_the_app_thread_and_createresource_without_a_drain() -> None:
    mp = [("app", "rt.device.create", {"device": "dev0", "mp": True})]
    assert rules_for(CREATE + mp + ddi("app", "Flush")) == ["MP-6"]
    undrained = CREATE + mp + _put(1, "DrawPrimitive", []) + ddi("app", "CreateResource")
    assert rules_for(undrained) == ["MP-6"]
    assert rules_for(CREATE + mp + ddi("app", "CreateResource")) == []


def test_dv1_the_runtime_uses_the_version_openadapter_reported() -> None:
    opened = [("app", "ddi.exit", {"ddi": "OpenAdapter", "device": "adapter", "hr": S_OK,
                                   "driver_version": 0xB})]
    assert rules_for(opened + CREATE) == ["DV-1"]
    opened[0][2]["driver_version"] = 0xC
    assert rules_for(opened + CREATE) == []


def test_la12_a_discard_lockasync_that_renamed_returns_a_cookie() -> None:
    evs = CREATE + _discard(7, 0)
    assert rules_for(evs) == ["LA-12"]


def test_lk7_wasstilldrawing_from_lock_needs_donotwait() -> None:
    lock = ddi("dev0.worker", "Lock", hr="0x8876021C", resource=7, flags=0, cbs=[
        ("pfnLockCb", {"allocation": 1, "flags": 0x14}, {"hr": "0x8876021C", "allocation": 1,
                                                         "new_allocation": 1})])
    assert rules_for(CREATE + lock) == ["LK-7"]
    lock[0][2]["flags"] = 0x200  # DoNotWait
    assert rules_for(CREATE + lock) == []


def test_lcb13_a_discard_lock_passes_discard_to_pfnlockcb() -> None:
    lock = ddi("dev0.worker", "Lock", resource=7, flags=0x8, cbs=[
        ("pfnLockCb", {"allocation": 1, "flags": 0x10},
         {"hr": S_OK, "allocation": 1, "new_allocation": 1})])
    assert rules_for(CREATE + _resource() + lock) == ["LCB-13"]


def test_kl5_reserved_pfnlockcb_flag_bits() -> None:
    lock = ddi("app", "LockAsync", hr="0x80004001", resource=7, flags=0x1, cbs=[
        ("pfnLockCb", {"allocation": 1, "flags": 0x80C}, {"hr": E_INVALIDARG})])
    assert rules_for(CREATE + lock) == ["KL-5"]
