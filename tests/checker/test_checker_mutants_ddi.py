"""Mutation tests of ``wddmemu/_checker_ddi.py`` (issue 16): the LA, UA, RN and LK rules, each
driven by synthetic seam events and judged by its exact findings (ids in order, messages word
for word, fields). The harness is in ``test_checker_mutants.py``."""

from __future__ import annotations

import pytest

from tests.checker.test_checker_mutants import (
    CREATE,
    E_INVALIDARG,
    E_NOTIMPL,
    E_OUTOFMEMORY,
    REMOVED,
    RT,
    S_OK,
    WSD,
    Events,
    W,
    create,
    ddi,
    found,
    lockcb,
    put,
    resource,
    rules,
    unlockcb,
)

R = CREATE + resource()  # vb0@dev0: resource 7, allocation 1, Dynamic, video memory
R9 = R + resource(9, 0x2000, allocations=(3,))  # vb1@dev0: resource 9, allocation 3
RENDER = ("pfnRenderCb", {"allocations": [], "refs": []}, {"hr": S_OK})
LA16_TAIL = (" but LockAsync may fail only for a failed rename, unsupported NoOverwrite or "
             "E_OUTOFMEMORY; no callback failed, so it should have succeeded")


def la(hr: str = S_OK, flags: int = 0x1, cbs: tuple | list = (), res: int = 7,
       thread: str = "app", **exit_: object) -> Events:
    return ddi(thread, "LockAsync", hr=hr, resource=res, flags=flags, cbs=cbs, exit_=exit_)


def ua(hr: str = S_OK, flags: int = 0, cbs: tuple | list = (), res: int = 7,
       thread: str = "app") -> Events:
    return ddi(thread, "UnlockAsync", hr=hr, resource=res, flags=flags, cbs=cbs)


def lk(hr: str = S_OK, flags: int = 0, cbs: tuple | list = (), res: int = 7,
       thread: str = "app") -> Events:
    return ddi(thread, "Lock", hr=hr, resource=res, flags=flags, cbs=cbs)


def ul(hr: str = S_OK, cbs: tuple | list = (), res: int = 7) -> Events:
    return ddi("app", "Unlock", hr=hr, resource=res, cbs=cbs)


def discard(cookie: int = 0xC1, res: int = 7, old: int = 1, new: int = 2) -> Events:
    """A successful Discard LockAsync renaming ``old`` to ``new``, returning ``cookie``."""
    return la(flags=0x2, res=res, cbs=[lockcb(old, 0x80, new=new)], cookie=cookie)


NOOVERWRITE = la(cbs=[lockcb(1, 0x1C)])  # NoOverwrite with IgnoreSync|LockEntire|DonotWait


# ---- LockAsync: the runtime's half ---------------------------------------------------------

def test_la2_lockasync_on_the_worker_once_per_thread() -> None:
    """LA-2 is keyed by the thread: two worker LockAsyncs of two resources are one finding."""
    evs = R9 + la(thread=W, cbs=[lockcb(1, 0x1C)]) + la(thread=W, res=9, cbs=[lockcb(3, 0x1C)])
    assert found(evs) == [("LA-2", "LockAsync(vb0@dev0, NoOverwrite) on dev0.worker: LockAsync "
                           "must be made on the application thread, not the runtime's worker",
                           {})]
    assert found(R + NOOVERWRITE) == []


@pytest.mark.parametrize("flags,rule,text", [
    (0x3, "LA-5", "NoOverwrite|Discard) on app with flags 0x3: NoOverwrite and Discard both "
                  "set"),
    (0xC, "LA-6", "RangeValid|AreaValid) on app with flags 0xc: more than one of "
                  "RangeValid/AreaValid/BoxValid"),
    (0x81, "LA-7", "NoOverwrite|0x80) on app with flags 0x81: reserved bits set"),
])
def test_la5_la6_la7_the_lockasync_flag_word_once_per_word(flags: int, rule: str,
                                                           text: str) -> None:
    """Refused with E_INVALIDARG (the runtime's mistake, no LA-16); keyed by the flag word, so
    the same word on a second resource is not reported again."""
    evs = R9 + la(hr=E_INVALIDARG, flags=flags) + la(hr=E_INVALIDARG, flags=flags, res=9)
    assert found(evs) == [(rule, f"the runtime called LockAsync(vb0@dev0, {text}",
                           {"flags": flags})]


def test_la9_noexistingreferences_with_queued_references() -> None:
    lock = la(flags=0x21, cbs=[lockcb(1, 0x1C)])
    queued = put(1, "DrawPrimitive", [RT]) + put(2, "DrawPrimitive", [RT])
    assert found(R + queued + lock + lock) == [(
        "LA-9", "the runtime set NoExistingReferences on LockAsync(vb0@dev0, "
        "NoOverwrite|NoExistingReferences) on app while 2 queued command(s) still reference "
        "vb0@dev0", {"resource": 7})]
    assert found(R + lock) == []  # known to the runtime, nothing queued
    # a resource the runtime never named has no queued references
    assert found(CREATE + la(flags=0x21, res=9, cbs=[lockcb(3, 0x1C)])) == []


def test_la4_sysmem_lockasync_below_0xb_only() -> None:
    lock = la(cbs=[lockcb(1, 0x1C)])
    assert found(create(0xA) + resource(pool=2) + lock) == [(
        "LA-4", "the runtime called LockAsync(vb0@dev0, NoOverwrite) on app on a system-memory "
        "surface with DDI version 0xa < 0xB", {"resource": 7})]
    assert found(create(0xB) + resource(pool=2) + lock) == []
    assert found(create(0xA) + resource(pool=1) + lock) == []


# ---- LockAsync: the driver's answer ----------------------------------------------------------

def test_la11_wasstilldrawing_without_discard() -> None:
    evs = R + la(hr=WSD, flags=0x4) + la(hr=WSD, flags=0x4)
    assert found(evs) == [("LA-11", "LockAsync(vb0@dev0, RangeValid) on app returned "
                           "D3DDDIERR_WASSTILLDRAWING without Discard (flags RangeValid)",
                           {"flags": 4})]


def test_la10_flush_after_a_failed_rename() -> None:
    failed = lockcb(1, 0x80, hr=WSD)
    evs = R + la(hr=WSD, flags=0x2, cbs=[failed, RENDER])
    assert found(evs) == [("LA-10", "LockAsync(vb0@dev0, Discard) on app flushed its command "
                           "buffer (pfnRenderCb) after a failed Discard pfnLockCb (RCB-8); it "
                           "must return the failure instead", {"resource": 7})]
    # the flush before the failed rename, or a failed non-Discard pfnLockCb, is no LA-10
    assert found(R + la(hr=WSD, flags=0x2, cbs=[RENDER, failed])) == []
    # (a failed callback: its failure passed on is no LA-16 either, ERR-1)
    assert found(R + la(hr=WSD, flags=0x2, cbs=[lockcb(1, 0x10, hr=WSD), RENDER])) == []


def test_la10_ok_after_a_failed_rename_and_la8_ok_without_one() -> None:
    failed = la(flags=0x2, cbs=[lockcb(1, 0x80, hr=WSD)], cookie=0xC1)
    assert found(R + failed) == [(
        "LA-10", "LockAsync(vb0@dev0, Discard) on app returned S_OK although its rename failed "
        "(pfnLockCb(Discard) said D3DERR_WASSTILLDRAWING): a failed rename must be returned to "
        "the runtime", {"resource": 7})]
    assert found(R + la(flags=0x2, cookie=0xC1)) == [(
        "LA-8", "LockAsync(vb0@dev0, Discard) on app returned S_OK without renaming: no "
        "pfnLockCb with Discard succeeded", {"resource": 7})]
    # a failed then a successful rename: renamed after all
    retried = la(flags=0x2, cookie=0xC1, cbs=[lockcb(1, 0x80, hr=WSD), lockcb(1, 0x80, new=2)])
    assert found(R + retried) == []
    # NotifyOnly: no rename is expected of a notified Discard
    assert found(R + la(flags=0x42, cookie=0xC1)) == []


def test_la8_wasstilldrawing_discard_without_trying_to_rename() -> None:
    assert found(R + la(hr=WSD, flags=0x2)) == [(
        "LA-8", "LockAsync(vb0@dev0, Discard) on app reported a failed rename "
        "(D3DDDIERR_WASSTILLDRAWING) without trying one: no pfnLockCb with Discard",
        {"resource": 7})]
    assert found(R + la(hr=WSD, flags=0x2, cbs=[lockcb(1, 0x80, hr=WSD)])) == []


def test_la16_the_refusals_the_contract_allows() -> None:
    assert found(R + la(hr=E_OUTOFMEMORY)) == []
    assert found(R + la(hr=REMOVED)) == []
    assert found(R + la(hr=E_INVALIDARG, cbs=[lockcb(1, 0x1C, hr=E_INVALIDARG)])) == []
    assert found(R + NOOVERWRITE + la(hr=E_INVALIDARG)) == []  # a second lock
    assert found(R + la(hr=E_NOTIMPL, flags=0x2)) == []  # cannot rename this resource
    assert found(R + la(hr=E_NOTIMPL, flags=0x1)) == []  # NoOverwrite unsupported (LA-15)


@pytest.mark.parametrize("hr,flags,code,shown", [
    (E_INVALIDARG, 0x1, "E_INVALIDARG", "NoOverwrite"),
    (E_NOTIMPL, 0x40, "E_NOTIMPL", "NotifyOnly"),
    (E_NOTIMPL, 0x41, "E_NOTIMPL", "NoOverwrite|NotifyOnly"),
    (E_NOTIMPL, 0x42, "E_NOTIMPL", "Discard|NotifyOnly"),
    (E_NOTIMPL, 0x4, "E_NOTIMPL", "RangeValid"),
])
def test_la16_a_refusal_the_contract_does_not_allow(hr: str, flags: int, code: str,
                                                     shown: str) -> None:
    evs = R + la(hr=hr, flags=flags) + la(hr=hr, flags=flags)
    assert found(evs) == [("LA-16", f"LockAsync(vb0@dev0, {shown}) on app failed with {code},"
                           + LA16_TAIL, {"resource": 7, "hr": code})]


def test_la14_nooverwrite_without_ignoresync() -> None:
    evs = R + la(cbs=[lockcb(1, 0x10)])
    assert found(evs) == [("LA-14", "LockAsync(vb0@dev0, NoOverwrite) on app succeeded without "
                           "a pfnLockCb carrying IgnoreSync (and had no cached NoOverwrite "
                           "pointer, LCB-3)", {"resource": 7})]
    assert found(R + la(flags=0x41, cbs=[lockcb(1, 0x10)])) == []  # NotifyOnly
    assert found(R + la(flags=0x0, cbs=[lockcb(1, 0x10)])) == []
    # a Dynamic resource's cached NoOverwrite pointer: no pfnLockCb needed (LCB-3)
    cached = R + NOOVERWRITE + ua(flags=0) + la()
    assert found(cached) == []
    # not for a resource that is not Dynamic
    static = CREATE + resource(dynamic=False) + NOOVERWRITE + ua(flags=0) + la()
    assert rules(static) == ["UA-4", "LA-14"]  # and its unlock had to pfnUnlockCb


def test_la12_what_a_successful_rename_returns() -> None:
    def renamed(**exit_: object) -> Events:
        return R + la(flags=0x2, cbs=[lockcb(1, 0x80, new=2)], cookie=0xC1, **exit_)

    head = "LockAsync(vb0@dev0, Discard) on app renamed"
    assert found(renamed(surf_data=0, surf_allocation=None, pitch=64)) == [(
        "LA-12", f"{head} to vb0@dev0 inst 1 (0x2) but returned pSurfData NULL",
        {"resource": 7})]
    assert found(renamed(surf_data=0x5000, surf_allocation=1, pitch=64)) == [(
        "LA-12", f"{head} to vb0@dev0 inst 1 (0x2) but returned pSurfData a pointer into "
        "vb0@dev0 inst 0 (0x1)", {"resource": 7})]
    for pitch, shown, kind in ((0, "Pitch 0", {}), (-4, "Pitch -4", {}), (None, "no Pitch", {}),
                               (None, "a Pitch that is a str", {"pitch_kind": "a str"})):
        assert found(renamed(surf_data=0x5000, surf_allocation=2, pitch=pitch, **kind)) == [(
            "LA-12", f"{head} but returned {shown}: a successful rename returns "
            "pSurfData, Pitch, SlicePitch and hCookie", {"resource": 7})]
    assert found(renamed(surf_data=0x5000, surf_allocation=2, pitch=1)) == []
    # a wrapper's pointer (no allocation known) into the right rename is fine
    assert found(renamed(surf_data=0x5000, surf_allocation=None, pitch=64)) == []
    assert found(renamed()) == []  # nothing returned to judge
    assert found(R + la(flags=0x2, cbs=[lockcb(1, 0x80, new=2)], cookie=0)) == [(
        "LA-12", "LockAsync(vb0@dev0, Discard) on app renamed but returned no hCookie (0): the "
        "runtime has nothing to pass to Rename", {"resource": 7})]
    # an hCookie that is no int reaches the event as None, with what it was
    assert found(R + la(flags=0x2, cbs=[lockcb(1, 0x80, new=2)], cookie=None,
                        cookie_kind="a float")) == [(
        "LA-12", "LockAsync(vb0@dev0, Discard) on app renamed but returned an hCookie that is a "
        "float, not a HANDLE (an int in [1, 2**64)): no Rename can carry it back",
        {"resource": 7})]


# ---- UnlockAsync ---------------------------------------------------------------------------

def test_ua2_unlockasync_on_the_worker() -> None:
    evs = R + NOOVERWRITE + ua(thread=W, cbs=[unlockcb(1)])
    assert found(evs) == [("UA-2", "UnlockAsync(vb0@dev0) on dev0.worker: UnlockAsync must be "
                           "made on the application thread, not the runtime's worker", {})]


def test_ua3_unlockasync_of_a_lock_lock() -> None:
    sync = R + lk(cbs=[lockcb(1, 0x10)])
    assert found(sync + ua(hr=E_INVALIDARG)) == [(
        "UA-3", "the runtime called UnlockAsync(vb0@dev0) on app, but vb0@dev0 was locked "
        "through Lock (Lock(vb0@dev0, 0) on app), not LockAsync (Q-20)", {"resource": 7})]
    assert found(sync + ua(cbs=[unlockcb(1)])) == [
        ("UA-3", "the runtime called UnlockAsync(vb0@dev0) on app, but vb0@dev0 was locked "
         "through Lock (Lock(vb0@dev0, 0) on app), not LockAsync (Q-20)", {"resource": 7}),
        ("UA-3", "UnlockAsync(vb0@dev0) on app returned S_OK without an outstanding LockAsync "
         "on vb0@dev0 (it must return E_INVALIDARG)", {"resource": 7})]
    # S_OK twice: the lock is gone after the first
    twice = R + NOOVERWRITE + ua(cbs=[unlockcb(1)]) + ua()
    assert found(twice) == [
        ("UA-3", "UnlockAsync(vb0@dev0) on app returned S_OK without an outstanding LockAsync "
         "on vb0@dev0 (it must return E_INVALIDARG)", {"resource": 7})]


def test_ua7_and_ua6_the_unlockasync_flags() -> None:
    assert found(R + NOOVERWRITE + ua(flags=0x6, cbs=[unlockcb(1)])) == [(
        "UA-7", "the runtime called UnlockAsync(vb0@dev0, 0x6) on app with reserved flag bits "
        "0x6", {"flags": 6})]
    assert found(R + NOOVERWRITE + ua(flags=0x1, cbs=[unlockcb(1)])) == [(
        "UA-6", "the runtime called UnlockAsync(vb0@dev0, NotifyOnly) on app for a lock made by "
        "LockAsync(vb0@dev0, NoOverwrite) on app: NotifyOnly must be set on both or on neither",
        {"resource": 7})]
    notify = la(flags=0x40, cbs=[lockcb(1, 0x10)])
    assert found(R + notify + ua(flags=0x1, cbs=[unlockcb(1)])) == []


def test_ua4_unlockcb_on_the_wrong_handle_and_none() -> None:
    assert found(R9 + NOOVERWRITE + ua(cbs=[unlockcb(3)])) == [(
        "UA-4", "UnlockAsync(vb0@dev0) on app unlocked ['vb1@dev0 inst 0 (0x3)'] but "
        "LockAsync(vb0@dev0, NoOverwrite) on app had locked vb0@dev0 inst 0 (0x1) (LCB-20)",
        {"resource": 7, "locked": 1})]
    # the right one among others, or a failed pfnUnlockCb of the right one then success
    assert found(R9 + NOOVERWRITE + ua(cbs=[unlockcb(3, 1)])) == []
    assert found(R + discard() + ua(cbs=[unlockcb(2)])) == []
    assert found(R + discard() + ua()) == [(
        "UA-4", "UnlockAsync(vb0@dev0) on app returned S_OK without calling pfnUnlockCb on "
        "vb0@dev0 inst 1 (0x2), which LockAsync(vb0@dev0, Discard) on app had locked (LCB-17)",
        {"resource": 7, "locked": 2})]
    assert rules(R + discard() + ua(cbs=[unlockcb(2, hr=E_INVALIDARG)])) == ["ERR-1", "UA-4"]
    # refused: no UA-4, and the lock is still held (a second UnlockAsync may succeed)
    assert found(R + discard() + ua(hr=E_INVALIDARG) + ua(cbs=[unlockcb(2)])) == []
    # a Dynamic resource's NoOverwrite pointer may stay cached (LCB-3); a static one's not
    assert found(R + NOOVERWRITE + ua()) == []
    static = CREATE + resource(dynamic=False) + NOOVERWRITE + ua() + ua()
    assert found(static) == [
        ("UA-4", "UnlockAsync(vb0@dev0) on app returned S_OK without calling pfnUnlockCb on "
         "vb0@dev0 inst 0 (0x1), which LockAsync(vb0@dev0, NoOverwrite) on app had locked "
         "(LCB-17)", {"resource": 7, "locked": 1}),
        ("UA-3", "UnlockAsync(vb0@dev0) on app returned S_OK without an outstanding LockAsync "
         "on vb0@dev0 (it must return E_INVALIDARG)", {"resource": 7})]
    # the leak is reported once: not again at DestroyDevice (LCB-17)
    assert rules(static + ddi("app", "DestroyDevice")) == ["UA-4", "UA-3"]


# ---- Rename --------------------------------------------------------------------------------

def rename(cookie: int = 0xC1, res: int = 7, thread: str = W, hr: str = S_OK) -> Events:
    return ddi(thread, "Rename", hr=hr, resource=res, cookie=cookie)


def test_rn2_rn1_rn3_the_runtime_rename_calls() -> None:
    assert found(R + rename() + rename(res=9)) == [(
        "RN-2", "the runtime called Rename(vb0@dev0, cookie 0xc1) on dev0.worker, but no "
        "successful Discard LockAsync returned that cookie", {"cookie": 0xC1})]
    assert found(R + discard() + rename() + rename() + rename()) == [
        ("RN-1", "the runtime called Rename 2 times for cookie 0xc1 of LockAsync(vb0@dev0, "
         "Discard) on app (at most once per successful Discard LockAsync)", {"cookie": 0xC1})]
    assert found(R + discard() + rename(thread="app") + rename(thread="app")) == [
        ("RN-3", "the runtime called Rename(vb0@dev0, cookie 0xc1) on app: Rename belongs on "
         "the worker thread", {}),
        ("RN-1", "the runtime called Rename 2 times for cookie 0xc1 of LockAsync(vb0@dev0, "
         "Discard) on app (at most once per successful Discard LockAsync)", {"cookie": 0xC1})]
    assert found(R + discard() + rename()) == []


def test_rn6_and_la18_once_per_cookie() -> None:
    evs = R9 + discard() + rename(res=9)
    assert found(evs) == [("RN-6", "the runtime called Rename(vb1@dev0, cookie 0xc1) on "
                           "dev0.worker with a cookie LockAsync(vb0@dev0, Discard) on app "
                           "returned for vb0@dev0", {"cookie": 0xC1})]
    plain = la(cbs=[lockcb(1, 0x1C)], cookie=0xC7)
    assert found(R + plain + rename(0xC7) + rename(0xC7, res=9)) == [(
        "LA-18", "the runtime called Rename(vb0@dev0, cookie 0xc7) on dev0.worker with the "
        "cookie of a LockAsync without Discard (meaningless outside Discard)", {"cookie": 0xC7})]


def _draw(draw_id: int, handle: int, thread: str = W) -> Events:
    """The runtime's rt.draw reading resource 7, DrawPrimitive, then a pfnRenderCb carrying it
    with ``handle``."""
    return [("app", "rt.draw", {"device": "dev0", "draw_id": draw_id, "reads": [[RT, 0]]}),
            *ddi(thread, "DrawPrimitive", draw_id=draw_id),
            *ddi(thread, "Flush", cbs=[("pfnRenderCb", {"allocations": [handle],
                                                        "refs": [[draw_id, handle]]},
                                        {"hr": S_OK})])]


def test_rename_binds_the_new_instance_for_later_draws() -> None:
    """A successful Rename makes its cookie's instance the one draws must read (RN-4); a failed
    one binds nothing, and a draw before it reads the old instance (LA-13)."""
    renamed = R + discard() + ua(cbs=[unlockcb(2)]) + rename()
    assert found(renamed + _draw(1, 2)) == []
    assert rules(renamed + _draw(1, 1)) == ["RN-4"]
    failed = R + discard() + ua(cbs=[unlockcb(2)]) + rename(hr=E_INVALIDARG)
    assert rules(failed + _draw(1, 2)) == ["LA-13"]
    assert found(failed + _draw(1, 1)) == []
    # renamed once more (RN-1) does not move the rename's point in the run
    early = R + discard() + ua(cbs=[unlockcb(2)]) + _draw(1, 2) + rename()
    assert rules(early) == ["LA-13"]


# ---- Lock / Unlock ---------------------------------------------------------------------------

def test_lk7_wasstilldrawing_from_lock() -> None:
    # the callback's E_INVALIDARG was not passed on either (ERR-1)
    assert found(R + lk(hr=WSD, flags=0x200, cbs=[lockcb(1, 0x14, hr=E_INVALIDARG)])) == [(
        "ERR-1", "Lock(vb0@dev0, DoNotWait) on app returned D3DERR_WASSTILLDRAWING after its "
        "pfnLockCb on vb0@dev0 inst 0 (0x1) failed with E_INVALIDARG: it must return the "
        "callback's code", {"ddi": "Lock", "callback": "pfnLockCb"}), (
        "LK-7", "Lock(vb0@dev0, DoNotWait) on app returned D3DDDIERR_WASSTILLDRAWING, but no "
        "pfnLockCb of the call said the resource was busy", {"resource": 7})]
    assert found(R + lk(hr=WSD, flags=0x200, cbs=[lockcb(1, 0x14, hr=WSD)])) == []
    assert found(R + lk(hr=WSD, flags=0x8, cbs=[lockcb(1, 0x14, hr=WSD)])) == [(
        "LK-7", "Lock(vb0@dev0, Discard) on app returned D3DDDIERR_WASSTILLDRAWING without "
        "DoNotWait (without it Lock waits)", {"resource": 7})]
    # a failed Lock holds nothing: its Unlock is LK-13
    assert rules(R + lk(hr=WSD, flags=0x200, cbs=[lockcb(1, 0x14, hr=WSD)]) + ul()) == ["LK-13"]


def test_lk6_lock_without_pfnlockcb() -> None:
    lk6 = ("LK-6", "Lock(vb0@dev0, 0) on app succeeded without calling pfnLockCb (and had no "
           "cached NoOverwrite pointer of a Dynamic resource, LCB-3)", {"resource": 7})
    assert found(R + lk() + lk()) == [lk6]
    assert found(R + lk(flags=0x4)) == [(lk6[0], lk6[1].replace(", 0)", ", NoOverwrite)"),
                                         lk6[2])]
    # a cached NoOverwrite pointer of a Dynamic resource excuses it (LCB-3), not otherwise
    cached = NOOVERWRITE + ua()
    assert found(R + cached + lk(flags=0x4) + ul()) == []
    assert rules(R + cached + lk(flags=0x0)) == ["LK-6"]
    assert rules(CREATE + resource(dynamic=False) + cached + lk(flags=0x4)) == ["UA-4", "LK-6"]
    # a failed pfnLockCb counts as a call
    assert rules(R + lk(cbs=[lockcb(1, 0x10, hr=E_INVALIDARG)])) == ["ERR-1"]


def test_lcb20_unlock_after_a_renaming_lock() -> None:
    """h7: after a renaming Lock(Discard) the new instance is what is locked; an Unlock that
    pfnUnlockCb's the old one broke LCB-20 and no rule said so (UnlockAsync's twin is UA-4)."""
    renamed = R + lk(flags=0x8, cbs=[lockcb(1, 0x90, new=2)])
    lcb20 = ("LCB-20", "Unlock(vb0@dev0) on app unlocked ['vb0@dev0 inst 0 (0x1)'] but "
             "Lock(vb0@dev0, Discard) on app had locked vb0@dev0 inst 1 (0x2)",
             {"resource": 7, "locked": 2})
    assert found(renamed + ul(cbs=[unlockcb(1)])) == [lcb20]
    # judged whatever the Unlock returned: the failed pfnUnlockCb it passed on is no excuse
    assert rules(renamed + ul(hr=E_INVALIDARG, cbs=[unlockcb(1, hr=E_INVALIDARG)])) == ["LCB-20"]
    assert found(renamed + ul(cbs=[unlockcb(2)])) == []


def test_lcb13_and_the_renaming_lock() -> None:
    assert found(R + lk(flags=0x8, cbs=[lockcb(1, 0x10)])) == [(
        "LCB-13", "Lock(vb0@dev0, Discard) on app locked without passing Discard on to "
        "pfnLockCb", {"resource": 7})]
    assert found(R + lk(flags=0x88, cbs=[lockcb(1, 0x10)])) == []  # NotifyOnly
    assert found(CREATE + resource(pool=2) + lk(flags=0x8, cbs=[lockcb(1, 0x10)])) == []
    assert found(R + lk(flags=0x8)) == [(
        "LK-6", "Lock(vb0@dev0, Discard) on app succeeded without calling pfnLockCb (and had no "
        "cached NoOverwrite pointer of a Dynamic resource, LCB-3)", {"resource": 7})]
    # a renaming Lock binds its new instance (draws must read it, RN-4)
    renamed = R + lk(flags=0x8, cbs=[lockcb(1, 0x90, new=2)]) + ul(cbs=[unlockcb(2)])
    assert found(renamed + _draw(1, 2)) == []
    assert rules(renamed + _draw(1, 1)) == ["RN-4"]
    unrenamed = R + lk(flags=0x88, cbs=[lockcb(1, 0x90, new=2)]) + ul(cbs=[unlockcb(2)])
    assert found(unrenamed + _draw(1, 1)) == []


def test_lk13_lk12_lk11_the_unlock() -> None:
    assert found(R + ul() + ul(hr=E_INVALIDARG)) == [(
        "LK-13", "Unlock(vb0@dev0) on app returned S_OK, but vb0@dev0 was not locked by Lock "
        "(it must return E_INVALIDARG)", {"resource": 7})]
    assert rules(R + NOOVERWRITE + ul()) == ["LK-13"]
    sysmem = CREATE + resource(pool=2) + lk(cbs=[lockcb(1, 0x10)])
    lk12 = ("LK-12", "Unlock(vb0@dev0) on app returned without pfnUnlockCb although "
            "Lock(vb0@dev0, 0) on app called pfnLockCb on the system-memory allocation "
            "vb0@dev0 inst 0 (0x1)", {"resource": 7})
    assert found(sysmem + ul() + ddi("app", "DestroyDevice")) == [lk12]
    assert found(sysmem + ul(cbs=[unlockcb(1)])) == []
    lk11 = ("LK-11", "Unlock(vb0@dev0) on app succeeded without calling pfnUnlockCb on "
            "vb0@dev0 inst 0 (0x1) (only a Dynamic resource's NoOverwrite pointer may stay "
            "cached, LCB-3)", {"resource": 7})
    assert found(R + lk(cbs=[lockcb(1, 0x10)]) + ul() + ddi("app", "DestroyDevice")) == [lk11]
    assert found(R + lk(flags=0x4, cbs=[lockcb(1, 0x10)]) + ul()) == []
    static = CREATE + resource(dynamic=False)
    assert found(static + lk(flags=0x4, cbs=[lockcb(1, 0x10)]) + ul()) == [(
        "LK-11", lk11[1], lk11[2])]
    # a refused Unlock keeps the lock: the next one may release it
    assert found(R + lk(cbs=[lockcb(1, 0x10)]) + ul(hr=E_INVALIDARG) + ul(cbs=[unlockcb(1)])
                 ) == []


# ---- one finding per (rule, key): the same broken decision in other words is not repeated ----

def _disc(flags: int, cookie: int = 0xC1, **exit_: object) -> Events:
    return la(flags=flags, cbs=[lockcb(1, 0x80, new=2)], cookie=cookie, **exit_)


_FAILED = lockcb(1, 0x80, hr=WSD)
ONCE: list[tuple[str, Events, list[str]]] = [
    ("LA-9", R + put(1, "Draw", [RT]) + la(flags=0x21, cbs=[lockcb(1, 0x1C)])
     + put(2, "Draw", [RT]) + la(flags=0x25, cbs=[lockcb(1, 0x1C)]), ["LA-9"]),
    ("LA-4", create(0xA) + resource(pool=2) + la(cbs=[lockcb(1, 0x1C)])
     + la(flags=0x5, cbs=[lockcb(1, 0x1C)]), ["LA-4"]),
    ("LA-11", R + la(hr=WSD, flags=0x4) + la(hr=WSD, flags=0x8), ["LA-11"]),
    ("LA-10 flush", R + la(hr=WSD, flags=0x2, cbs=[_FAILED, RENDER])
     + la(hr=WSD, flags=0x6, cbs=[_FAILED, RENDER]), ["LA-10"]),
    ("LA-10 ok", R + la(flags=0x2, cbs=[_FAILED], cookie=1) + ua(cbs=[unlockcb(1)])
     + la(flags=0x6, cbs=[_FAILED], cookie=2), ["LA-10"]),
    ("LA-8 ok", R + la(flags=0x2, cookie=1) + ua() + la(flags=0x6, cookie=2), ["LA-8"]),
    ("LA-8 wsd", R + la(hr=WSD, flags=0x2) + la(hr=WSD, flags=0x6), ["LA-8"]),
    ("LA-16", R + la(hr=E_NOTIMPL, flags=0x40) + la(hr=E_NOTIMPL, flags=0x44), ["LA-16"]),
    ("LA-14", R + la(cbs=[lockcb(1, 0x10)]) + ua(cbs=[unlockcb(1)])
     + la(flags=0x5, cbs=[lockcb(1, 0x10)]), ["LA-14"]),
    ("LA-12 cookie", R + _disc(0x2, 0) + ua(cbs=[unlockcb(2)]) + _disc(0x6, 0), ["LA-12"]),
    ("LA-12 surf", R + _disc(0x2, surf_data=0, pitch=4) + ua(cbs=[unlockcb(2)])
     + _disc(0x6, 0xC2, surf_data=0, pitch=4), ["LA-12"]),
    ("LA-12 pitch", R + _disc(0x2, surf_data=1, pitch=0) + ua(cbs=[unlockcb(2)])
     + _disc(0x6, 0xC2, surf_data=1, pitch=0), ["LA-12"]),
    ("UA-2", R9 + NOOVERWRITE + la(res=9, cbs=[lockcb(3, 0x1C)])
     + ua(thread=W, cbs=[unlockcb(1)]) + ua(thread=W, res=9, cbs=[unlockcb(3)]), ["UA-2"]),
    ("UA-3 sync", R + lk(cbs=[lockcb(1, 0x10)]) + ua(hr=E_INVALIDARG)
     + ua(hr=E_INVALIDARG, flags=0x1), ["UA-3"]),
    ("UA-7", R9 + NOOVERWRITE + la(res=9, cbs=[lockcb(3, 0x1C)])
     + ua(flags=0x2, cbs=[unlockcb(1)]) + ua(flags=0x2, res=9, cbs=[unlockcb(3)]), ["UA-7"]),
    ("UA-6", R + NOOVERWRITE + ua(hr=E_INVALIDARG, flags=0x1)
     + ua(hr=E_INVALIDARG, flags=0x1, thread=W), ["UA-6", "UA-2"]),
    ("UA-3 ok", R + ua() + ua(flags=0x1), ["UA-3"]),
    ("UA-4 wrong", R9 + NOOVERWRITE + ua(cbs=[unlockcb(3)]) + NOOVERWRITE
     + ua(flags=0x2, cbs=[unlockcb(3)]), ["UA-4", "UA-7"]),
    ("UA-4 none", CREATE + resource(dynamic=False) + NOOVERWRITE + ua()
     + la(flags=0x5, cbs=[lockcb(1, 0x1C)]) + ua(), ["UA-4"]),
    ("RN-6", R9 + discard() + rename(res=9) + rename(res=9, thread="app"), ["RN-6", "RN-1",
                                                                           "RN-3"]),
    ("RN-3", R9 + discard() + discard(0xC2, res=9, old=3, new=4) + rename(thread="app")
     + rename(0xC2, res=9, thread="app"), ["RN-3"]),
    ("LK-7", R + lk(hr=WSD, flags=0x8) + lk(hr=WSD, flags=0x10), ["LK-7"]),
    ("LK-7 busy", R + lk(hr=WSD, flags=0x200) + lk(hr=WSD, flags=0x210), ["LK-7"]),
    ("LK-6", R + lk() + ul(cbs=[unlockcb(1)]) + lk(flags=0x10), ["LK-6"]),
    ("LCB-13", R + lk(flags=0x8, cbs=[lockcb(1, 0x10)]) + ul(cbs=[unlockcb(1)])
     + lk(flags=0x18, cbs=[lockcb(1, 0x10)]), ["LCB-13"]),
    ("LK-13", R + ul() + NOOVERWRITE + ddi(W, "Unlock", resource=7), ["LK-13"]),
    ("LK-12", CREATE + resource(pool=2) + lk(cbs=[lockcb(1, 0x10)]) + ul()
     + lk(flags=0x10, cbs=[lockcb(1, 0x10)]) + ul(), ["LK-12"]),
    ("LK-11", R + lk(cbs=[lockcb(1, 0x10)]) + ul() + lk(cbs=[lockcb(1, 0x10, new=5)]) + ul(),
     ["LK-11"]),
]


@pytest.mark.parametrize("evs,want", [(e, w) for _n, e, w in ONCE], ids=[n for n, _e, _w in ONCE])
def test_the_same_broken_decision_is_one_finding(evs: Events, want: list[str]) -> None:
    assert rules(evs) == want


def test_la12_a_discard_lockasync_that_returns_no_cookie_field() -> None:
    evs = R + la(flags=0x2, cbs=[lockcb(1, 0x80, new=2)])
    assert found(evs) == [("LA-12", "LockAsync(vb0@dev0, Discard) on app renamed but returned "
                           "no hCookie (0): the runtime has nothing to pass to Rename",
                           {"resource": 7})]


def test_la10_la16_edges_of_the_failed_rename() -> None:
    ok_rename = lockcb(1, 0x80, new=2)
    # a successful rename then a flush is fine; a non-Discard LockAsync's failed Discard
    # pfnLockCb and flush is no LA-10 (its failure passed on, no LA-16 either)
    assert found(R + la(flags=0x2, cbs=[ok_rename, RENDER], cookie=0xC1)) == []
    assert found(R + la(hr=E_INVALIDARG, flags=0x4, cbs=[lockcb(1, 0x80, hr=WSD), RENDER])
                 ) == []
    # a refusal after a successful callback is still LA-16
    assert found(R + la(hr=E_NOTIMPL, flags=0x40, cbs=[lockcb(1, 0x10), unlockcb(1)])) == [(
        "LA-16", "LockAsync(vb0@dev0, NotifyOnly) on app failed with E_NOTIMPL," + LA16_TAIL,
        {"resource": 7, "hr": "E_NOTIMPL"})]
    assert rules(R + la(hr=E_INVALIDARG, flags=0x2, cbs=[ok_rename, unlockcb(2)])) == ["LA-16"]
    # WASSTILLDRAWING after a tried rename is a failed rename, whatever the callback said
    assert found(R + la(hr=WSD, flags=0x2, cbs=[ok_rename, unlockcb(2)])) == []


def test_the_handle_a_lock_ddi_holds() -> None:
    # a cached NoOverwrite pointer is the handle LockAsync locked: unlocking another is UA-4
    cached = R9 + NOOVERWRITE + ua() + la() + ua(cbs=[unlockcb(3)])
    assert found(cached) == [(
        "UA-4", "UnlockAsync(vb0@dev0) on app unlocked ['vb1@dev0 inst 0 (0x3)'] but "
        "LockAsync(vb0@dev0, NoOverwrite) on app had locked vb0@dev0 inst 0 (0x1) (LCB-20)",
        {"resource": 7, "locked": 1})]
    # Lock with no pfnLockCb holds no handle
    assert found(R + lk() + ul()) == [
        ("LK-6", "Lock(vb0@dev0, 0) on app succeeded without calling pfnLockCb (and had no "
         "cached NoOverwrite pointer of a Dynamic resource, LCB-3)", {"resource": 7}),
        ("LK-11", "Unlock(vb0@dev0) on app succeeded without calling pfnUnlockCb on "
         "allocation 0x0 (only a Dynamic resource's NoOverwrite pointer may stay cached, "
         "LCB-3)", {"resource": 7})]
    # a cached pointer of a Dynamic system-memory resource, locked through Lock
    sysmem = CREATE + resource(pool=2) + NOOVERWRITE + ua() + lk(flags=0x4) + ul()
    assert found(sysmem) == [(
        "LK-12", "Unlock(vb0@dev0) on app returned without pfnUnlockCb although "
        "Lock(vb0@dev0, NoOverwrite) on app called pfnLockCb on the system-memory allocation "
        "vb0@dev0 inst 0 (0x1)", {"resource": 7})]
    # a pfnUnlockCb without an allocation list tries nothing
    assert rules(R + NOOVERWRITE + ua(cbs=[("pfnUnlockCb", {}, {"hr": S_OK})])) == []


def test_the_rename_of_a_discard_is_its_discard_pfnlockcb() -> None:
    """The instance a Discard LockAsync renamed to is its last Discard pfnLockCb's, even when
    a plain pfnLockCb follows it; and it is named after the LockAsync when no pfnLockCb had
    named it (a resource without pfnAllocateCb)."""
    evs = R + la(flags=0x2, cbs=[lockcb(1, 0x80, new=2), lockcb(5, 0x10)], cookie=0xC1)
    assert found(evs + ua(cbs=[unlockcb(2, 5)]) + rename() + _draw(1, 2)) == []
    bare = [*CREATE, ("app", "rt.resource.create", {"device": "dev0", "resource": 7,
                                                     "rt_resource": RT, "kind": "vb",
                                                     "pool": 1, "dynamic": True})]
    assert found(bare + discard() + ua()) == [(
        "UA-4", "UnlockAsync(vb0@dev0) on app returned S_OK without calling pfnUnlockCb on "
        "vb0@dev0 inst 1 (0x2), which LockAsync(vb0@dev0, Discard) on app had locked (LCB-17)",
        {"resource": 7, "locked": 2})]


def test_rn4_names_the_ddi_that_bound_the_instance() -> None:
    renamed = R + discard() + ua(cbs=[unlockcb(2)]) + rename()
    assert found(renamed + _draw(1, 1)) == [(
        "RN-4", "draw 1 reached the driver (dev0.worker) after Rename(vb0@dev0, cookie 0xc1) on "
        "dev0.worker, which made vb0@dev0 inst 1 (0x2) the instance to draw from, but it reads "
        "vb0@dev0 inst 0 (0x1)", {"draw": 1, "allocation": 1})]
    locked = R + lk(flags=0x8, cbs=[lockcb(1, 0x90, new=2)]) + ul(cbs=[unlockcb(2)])
    assert found(locked + _draw(1, 1)) == [(
        "RN-4", "draw 1 reached the driver (dev0.worker) after Lock(vb0@dev0, Discard) on app, "
        "which made vb0@dev0 inst 1 (0x2) the instance to draw from, but it reads "
        "vb0@dev0 inst 0 (0x1)", {"draw": 1, "allocation": 1})]


@pytest.mark.parametrize("flags,rule,text", [
    (0x3, "LK-1", "ReadOnly|WriteOnly) on app with flags 0x3: ReadOnly and WriteOnly both set"),
    (0x400, "LK-5", "0x400) on app with flags 0x400: reserved bits set"),
])
def test_lk1_lk5_messages_once_per_flag_word(flags: int, rule: str, text: str) -> None:
    evs = R9 + lk(hr=E_INVALIDARG, flags=flags) + lk(hr=E_INVALIDARG, flags=flags, res=9)
    assert found(evs) == [(rule, f"the runtime called Lock(vb0@dev0, {text}", {"flags": flags})]


def test_the_rename_point_and_the_binding_it_makes() -> None:
    # a second Discard before its Rename: the draw reading its instance is early (LA-13),
    # blamed on it although the first Rename bound another instance before
    first = R + discard(0xC1, new=2) + ua(cbs=[unlockcb(2)]) + rename(0xC1)
    second = la(flags=0x2, cbs=[lockcb(2, 0x80, new=3)], cookie=0xC2) + ua(cbs=[unlockcb(3)])
    assert rules(first + second + _draw(1, 3)) == ["LA-13"]
    # renamed: a draw reading an instance that belongs to another resource is not early
    other = R9 + la(flags=0x2, cbs=[lockcb(1, 0x80, new=3)], cookie=0xC1)
    assert found(other + ua(cbs=[unlockcb(3)]) + rename() + _draw(1, 3)) == []


def test_a_renaming_lock_names_the_instance_it_made() -> None:
    bare = [*CREATE, ("app", "rt.resource.create", {"device": "dev0", "resource": 7,
                                                     "rt_resource": RT, "kind": "vb",
                                                     "pool": 1, "dynamic": True})]
    evs = bare + lk(flags=0x8, cbs=[lockcb(1, 0x90, new=2)]) + ul()
    assert found(evs) == [(
        "LK-11", "Unlock(vb0@dev0) on app succeeded without calling pfnUnlockCb on vb0@dev0 "
        "inst 1 (0x2) (only a Dynamic resource's NoOverwrite pointer may stay cached, LCB-3)",
        {"resource": 7})]


def test_fields_a_driver_left_out_are_zero() -> None:
    """A pfnLockCb exit without NewAllocation locked no instance the lock DDI can name, a
    Rename without a cookie names cookie 0, and a code other than S_OK is a failure."""
    bare_ok = ("pfnLockCb", {"allocation": 5, "flags": 0x1C}, {"hr": S_OK, "allocation": 5})
    assert found(R + la(cbs=[bare_ok]) + ua(cbs=[unlockcb(5)])) == []
    bare_disc = ("pfnLockCb", {"allocation": 5, "flags": 0x80}, {"hr": S_OK, "allocation": 5})
    assert found(R + la(flags=0x2, cbs=[bare_disc], cookie=0xC1, surf_data=1,
                        surf_allocation=9, pitch=4)) == []
    assert found(R + lk(cbs=[bare_ok]) + ul()) == [(
        "LK-11", "Unlock(vb0@dev0) on app succeeded without calling pfnUnlockCb on allocation "
        "0x0 (only a Dynamic resource's NoOverwrite pointer may stay cached, LCB-3)",
        {"resource": 7})]
    renaming = lk(flags=0x8, cbs=[("pfnLockCb", {"allocation": 1, "flags": 0x90},
                                   {"hr": S_OK, "allocation": 1})]) + ul(cbs=[unlockcb(1)])
    assert found(R + renaming + _draw(1, 1)) == [(
        "RN-4", "draw 1 reached the driver (dev0.worker) after Lock(vb0@dev0, Discard) on app, "
        "which made vb0@dev0 inst 1 (0x0) the instance to draw from, but it reads vb0@dev0 "
        "inst 0 (0x1)", {"draw": 1, "allocation": 1})]
    nameless = ddi(W, "Rename", resource=7)
    assert found(R + discard(1) + nameless) == [(
        "RN-2", "the runtime called Rename(vb0@dev0, cookie 0x0) on dev0.worker, but no "
        "successful Discard LockAsync returned that cookie", {"cookie": 0})]
    assert rules(R + discard(1) + ua(cbs=[unlockcb(2)]) + nameless + _draw(1, 2)) == [
        "RN-2", "LA-13"]
    # S_FALSE from pfnLockCb(Discard) is no rename
    s_false = la(flags=0x2, cbs=[lockcb(1, 0x80, hr="0x1")], cookie=0xC1)
    assert rules(R + s_false) == ["ERR-1", "LA-10"]  # and S_OK after it swallowed it


def test_the_runtime_passing_back_the_drivers_bad_cookie_is_no_rn2() -> None:
    """h7: a driver returning hCookie 0 is LA-12; the runtime's Rename(cookie 0) that follows
    only forwards it, and was reported as RN-2 against the runtime."""
    for cookie in (0, 2**64):
        evs = R + discard(cookie) + ddi(W, "Rename", resource=7, cookie=cookie)
        assert rules(evs) == ["LA-12"], cookie
    # a cookie no LockAsync returned at all is still RN-2
    assert rules(R + discard(0xC1) + ddi(W, "Rename", resource=7, cookie=0)) == ["RN-2"]


def test_a_discard_lock_without_discard_binds_nothing() -> None:
    evs = R + lk(flags=0x8, cbs=[lockcb(1, 0x10, new=5)]) + ul(cbs=[unlockcb(5)])
    assert rules(evs + _draw(1, 1)) == ["LCB-13"]
