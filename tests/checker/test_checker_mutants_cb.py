"""Mutation tests of ``wddmemu/_checker_cb.py`` (issue 16): the LCB, RCB, ERR and KL rules,
driven by synthetic seam events and judged by their exact findings (ids in order, messages word
for word, fields). The harness is in ``test_checker_mutants.py``."""

from __future__ import annotations

import kmd
from tests.checker.test_checker_mutants import (
    CREATE,
    E_INVALIDARG,
    E_NOTIMPL,
    E_OUTOFMEMORY,
    REMOVED,
    RT,
    S_OK,
    Events,
    W,
    ddi,
    found,
    lockcb,
    rules,
    unlockcb,
)
from tests.checker.test_checker_mutants_ddi import NOOVERWRITE, R9, R, discard, la, lk, ua, ul
from tests.support.seam import run_events
from wddmemu._checker import Checker


def rcb(hr: str = S_OK, x: dict | None = None, **enter: object) -> tuple:
    return ("pfnRenderCb", {"allocations": [], "refs": [], **enter}, {"hr": hr, **(x or {})})


def flush(*cbs: tuple) -> Events:
    return ddi(W, "Flush", cbs=list(cbs))


def test_kl6_and_lcb11_the_pfnlockcb_flag_word_and_pages() -> None:
    assert found(R + la(cbs=[lockcb(1, 0x1F)])) == [(
        "KL-6", "LockAsync(vb0@dev0, NoOverwrite) on app called pfnLockCb on vb0@dev0 inst 0 "
        "(0x1) with flags ReadOnly|WriteOnly|DonotWait|IgnoreSync|LockEntire, which break KL-6: "
        "ReadOnly and WriteOnly together are invalid",
        {"flags": 0x1F})]
    tail = ("LockEntire means NumPages 0 and no pPages, and without it the pages to lock must "
            "be listed")
    assert found(R + la(cbs=[lockcb(1, 0x1C, pages=[0, 1])])) == [(
        "LCB-11", "LockAsync(vb0@dev0, NoOverwrite) on app called pfnLockCb on vb0@dev0 inst 0 "
        "(0x1) with LockEntire with a page list of [0, 1] (flags DonotWait|IgnoreSync|"
        f"LockEntire): {tail}", {"flags": 0x1C})]
    assert found(R + la(cbs=[lockcb(1, 0x0C, pages=None)])) == [(
        "LCB-11", "LockAsync(vb0@dev0, NoOverwrite) on app called pfnLockCb on vb0@dev0 inst 0 "
        f"(0x1) with neither LockEntire nor a page list (flags DonotWait|IgnoreSync): {tail}",
        {"flags": 0x0C})]
    assert found(R + la(cbs=[lockcb(1, 0x1C, pages=None)])) == []
    assert found(R + la(cbs=[lockcb(1, 0x0C, pages=[0])])) == []


def test_each_pfnlockcb_flag_rule_says_the_combination_it_forbids() -> None:
    """KL-5, KL-6, KL-9, KL-10, LCB-7 (h7): the finding names the flags and says in words which
    combination rule they break (kernel-contract.md KL-*, umd-runtime-contract.md LCB-7), not
    only its id."""
    words = {
        0x13: ("KL-6", "ReadOnly and WriteOnly together are invalid"),
        0x58: ("KL-9", "IgnoreSync together with AcquireAperture is invalid"),
        0x210: ("KL-10", "UseAlternateVA requires AcquireAperture to be set too"),
        0x110: ("LCB-7", "NoExistingReference is only used with Discard"),
        0x1810: ("KL-5", "Reserved bits 0x1800 are set; all of 0xFFFFF800 must be zero"),
        1 << 40: ("KL-5", "the flag word is not a 32-bit UINT"),
    }
    for flags, (rule, said) in words.items():
        got = [(r, m.partition(f", which break {rule}: ")[2])
               for r, m, _f in found(R + lk(cbs=[lockcb(1, flags)])) if r == rule]
        assert got == [(rule, said)], hex(flags)
    assert found(R + lk(cbs=[lockcb(1, 0x250)])) == []  # UseAlternateVA|AcquireAperture
    # every id the validator returns has its words (and nothing else is worded)
    assert set(kmd.LOCK_FLAG_RULE_WORDS) == {r for r, _w in words.values()}


def test_la9_and_lcb7_the_driver_half_of_noexistingreference() -> None:
    assert found(R + la(cbs=[lockcb(1, 0x11C)])) == [
        ("LCB-7", "LockAsync(vb0@dev0, NoOverwrite) on app called pfnLockCb on vb0@dev0 inst 0 "
         "(0x1) with flags DonotWait|IgnoreSync|LockEntire|NoExistingReference, which break "
         "LCB-7: NoExistingReference is only used with Discard", {"flags": 0x11C}),
        ("LA-9", "LockAsync(vb0@dev0, NoOverwrite) on app passed NoExistingReference to "
         "pfnLockCb although the runtime did not set NoExistingReferences", {"resource": 7})]
    draw = [("app", "rt.draw", {"device": "dev0", "draw_id": 4, "reads": [[RT, 0]]}),
            *ddi(W, "DrawPrimitive", draw_id=4)]
    noref = la(flags=0x21, cbs=[lockcb(1, 0x11C)])
    assert found(R + draw + noref) == [
        ("LCB-7", "LockAsync(vb0@dev0, NoOverwrite|NoExistingReferences) on app called "
         "pfnLockCb on vb0@dev0 inst 0 (0x1) with flags DonotWait|IgnoreSync|LockEntire|"
         "NoExistingReference, which break LCB-7: "
         "NoExistingReference is only used with Discard", {"flags": 0x11C}),
        ("LA-9", "LockAsync(vb0@dev0, NoOverwrite|NoExistingReferences) on app passed "
         "NoExistingReference to pfnLockCb while the driver still holds unsubmitted draws [4] "
         "reading vb0@dev0", {"resource": 7, "draws": [4]})]


def test_lcb19_unlocking_under_the_application() -> None:
    evs = R9 + NOOVERWRITE + lk(res=9, cbs=[lockcb(3, 0x10), unlockcb(1)])
    assert found(evs) == [(
        "LCB-19", "Lock(vb1@dev0, 0) on app called pfnUnlockCb on vb0@dev0 inst 0 (0x1), which "
        "the application still holds locked (LockAsync(vb0@dev0, NoOverwrite) on app): only its "
        "unlock may release it", {"allocation": 1, "ddi": "Lock"})]
    # its own unlock, a DestroyResource, or a lock DDI undoing its own lock: no LCB-19
    assert found(R + NOOVERWRITE + ua(cbs=[unlockcb(1)])) == []
    assert found(R + lk(cbs=[lockcb(1, 0x10), unlockcb(1), lockcb(1, 0x10)])
                 + ul(cbs=[unlockcb(1)])) == []


def test_lcb18_a_lock_left_into_a_submission() -> None:
    evs = flush(lockcb(1, 0x10), rcb(allocations=[1]), rcb(allocations=[1]))
    assert found(R + evs) == [(
        "LCB-18", "Flush() on dev0.worker submitted with pfnRenderCb while the driver still "
        "held a pfnLockCb on vb0@dev0 inst 0 (0x1), which the application no longer holds: "
        "unlock (uncache) before rendering (LCB-4)", {"allocation": 1})]
    # the UnlockAsync that returned leaving the NoOverwrite lock cached is named (it is where
    # the lock began to leak; the render is only where LCB-18 sees it)
    cached = found(R + NOOVERWRITE + ua() + flush(rcb(allocations=[1])))
    assert [(r, m.rpartition("(LCB-4)")[2]) for r, m, _ in cached] == [
        ("LCB-18", "; UnlockAsync(vb0@dev0) on app returned without pfnUnlockCb on vb0@dev0 "
                   "inst 0 (0x1), which LockAsync(vb0@dev0, NoOverwrite) on app had locked")]
    unlocked = found(R + NOOVERWRITE + ua() + flush(unlockcb(1), lockcb(1, 0x10),
                                                    rcb(allocations=[1])))
    assert [(r, m.endswith("(LCB-4)")) for r, m, _ in unlocked] == [("LCB-18", True)]
    assert found(R + flush(lockcb(1, 0x10), unlockcb(1), rcb(allocations=[1]))) == []
    assert found(R + NOOVERWRITE + flush(rcb(allocations=[1]))) == []  # the app holds it


def test_lcb18_names_the_unlock_that_left_the_lock_not_a_later_balanced_one() -> None:
    """h7: a renaming Lock(Discard) locks inst 1, its quiet Unlock pfnUnlockCb's inst 0 (LCB-20,
    refused) and returns S_OK; a NoOverwrite LockAsync then locks inst 1 again and its
    UnlockAsync releases that lock. The lock still held at the render is the Lock(Discard)'s,
    left by the Unlock: the UnlockAsync, which released what its LockAsync took, was named."""
    renamed = R + lk(flags=0x8, cbs=[lockcb(1, 0x90, new=2)])
    quiet = ul(cbs=[unlockcb(1, hr=E_INVALIDARG)])
    again = la(cbs=[lockcb(2, 0x1C)]) + ua(cbs=[unlockcb(2)])
    got = found(renamed + quiet + again + flush(rcb(allocations=[2])))
    lcb18 = [m.rpartition("(LCB-4)")[2] for r, m, _f in got if r == "LCB-18"]
    assert lcb18 == ["; Unlock(vb0@dev0) on app returned without pfnUnlockCb on vb0@dev0 inst 1 "
                     "(0x2), which Lock(vb0@dev0, Discard) on app had locked"]
    # the UnlockAsync that did not release its own lock is the one named
    leaky = la(cbs=[lockcb(2, 0x1C)]) + ua(cbs=[unlockcb(3)])
    got = found(renamed + ul(cbs=[unlockcb(2)]) + leaky + flush(rcb(allocations=[2])))
    assert [m.rpartition("(LCB-4)")[2] for r, m, _f in got if r == "LCB-18"] == [
        "; UnlockAsync(vb0@dev0) on app returned without pfnUnlockCb on vb0@dev0 inst 1 (0x2), "
        "which LockAsync(vb0@dev0, NoOverwrite) on app had locked"]


def test_lcb17_locks_left_at_destroydevice() -> None:
    left = R + NOOVERWRITE + ua()
    assert found(left + ddi("app", "DestroyDevice")) == [(
        "LCB-17", "DestroyDevice() on app returned with pfnLockCb locks still outstanding on "
        "['vb0@dev0 inst 0 (0x1)']: DestroyDevice must release them; UnlockAsync(vb0@dev0) on "
        "app returned without pfnUnlockCb on vb0@dev0 inst 0 (0x1), which LockAsync(vb0@dev0, "
        "NoOverwrite) on app had locked", {"allocations": [1]})]
    assert found(left + ddi("app", "DestroyDevice", cbs=[unlockcb(1)])) == []
    lost = left + flush(rcb(hr=REMOVED)) + ddi("app", "DestroyDevice")
    assert rules(lost) == ["ERR-1"]  # a lost device leaks nothing


def test_rcb1_rcb3_rcb4_rcb10_the_render_arguments() -> None:
    assert found(R + flush(rcb(command_bytes=64, command_length=None))) == [(
        "RCB-1", "Flush() on dev0.worker called pfnRenderCb with CommandLength None for a "
        "command buffer of 64 bytes: the UMD must fill it in",
        {"bytes": 64, "command_length": None})]
    assert found(R + flush(rcb(command_bytes=64, command_length=32))) == [(
        "RCB-1", "Flush() on dev0.worker called pfnRenderCb with CommandLength 32 for a "
        "command buffer of 64 bytes: the UMD must fill it in",
        {"bytes": 64, "command_length": 32})]
    handed = rcb(x={"new_command_buffer_size": 8, "new_allocation_list_size": 1},
                 command_bytes=8, command_length=8)
    over = rcb(command_bytes=16, command_length=16, allocations=[1])
    assert found(R + flush(handed, over)) == [(
        "RCB-3", "Flush() on dev0.worker submitted 16 bytes and 1 allocation list entries, but "
        "the last pfnRenderCb handed back a 8-byte buffer and a 1-entry list: whether or not a "
        "resize was asked for, the sizes must be read back", {"bytes": 16, "handed": [8, 1]})]
    fits = rcb(command_bytes=8, command_length=8, allocations=[1])
    assert found(R + flush(handed, fits)) == []
    assert found(R + flush(rcb(command_bytes=0, command_length=0, context=5))) == [(
        "RCB-4", "Flush() on dev0.worker called pfnRenderCb with hContext 0x5: only NULL (the "
        "device's default context) or a handle from pfnCreateContextCb is valid, and no context "
        "was created", {"context": 5})]
    assert found(R + flush(rcb(command_bytes=0, command_length=0, flags=0x10F))) == [(
        "RCB-10", "Flush() on dev0.worker called pfnRenderCb with reserved Flags bits 0x100 set",
        {"flags": 0x100})]
    assert found(R + flush(rcb(command_bytes=0, command_length=0, flags=0xF))) == []


class _Kernel:
    """The one question the checker asks the kernel (LA-15): may the instance be rendered
    while locked? ``answers``: handle → True / False (absent: no live instance, None)."""

    def __init__(self, **answers: bool) -> None:
        self.answers = {int(k[1:], 16): v for k, v in answers.items()}

    def renders_while_locked(self, h: int) -> bool | None:
        return self.answers.get(h)


def la15_found(events: Events, kernel: _Kernel | None) -> list[tuple[str, str, dict]]:
    checker = Checker()
    checker._kernel = kernel
    return [(v.rule, v.message, dict(v.fields)) for v in run_events(events, checker)]


def test_la15_judged_when_the_nooverwrite_lockasync_succeeds() -> None:
    """LA-15 (h7): S_OK for NoOverwrite on an allocation VidMm cannot render while locked is
    the breach itself, whether or not a draw is submitted while the app holds the lock (fifo
    never submitted one, so LA-15 was schedule-dependent); the CANTRENDERLOCKEDALLOCATION it
    may lead to is not a second finding. No kernel (or no answer): only the consequence."""
    assert la15_found(R + NOOVERWRITE, _Kernel(x1=False)) == [(
        "LA-15", "LockAsync(vb0@dev0, NoOverwrite) on app returned S_OK, but what it locked, "
        "vb0@dev0 inst 0 (0x1), cannot be rendered while locked: its allocation may live in no "
        "AGP or aperture segment, the only ones VidMm renders a locked allocation from (RCB-5); "
        "NoOverwrite must be refused with E_NOTIMPL there (LA-16)",
        {"resource": 7, "allocation": 1})]
    consequence = NOOVERWRITE + flush(rcb(hr="0xC0262111"))
    assert [r for r, _m, _f in la15_found(R + consequence, _Kernel(x1=False))] == [
        "LA-15", "ERR-1"]
    for kernel in (_Kernel(x1=True), _Kernel(), None):
        assert la15_found(R + NOOVERWRITE, kernel) == []
        assert [r for r, _m, _f in la15_found(R + consequence, kernel)] == ["LA-15", "ERR-1"]
    # Discard and NotifyOnly locks promise no render-while-locked
    assert la15_found(R + discard(), _Kernel(x1=False, x2=False)) == []
    assert la15_found(R + la(flags=0x41, cbs=[lockcb(1, 0x10)]), _Kernel(x1=False)) == []


def test_la15_and_err1_the_codes_a_ddi_returns() -> None:
    assert found(R + flush(rcb(hr="0xC0262111"))) == [
        ("LA-15", "pfnRenderCb failed with D3DDDIERR_CANTRENDERLOCKEDALLOCATION: a NoOverwrite "
         "lock succeeded on an allocation that cannot be rendered while locked (RCB-5)",
         {"thread": W}),
        ("ERR-1", "Flush() on dev0.worker returned S_OK although its last pfnRenderCb failed "
         "with D3DDDIERR_CANTRENDERLOCKEDALLOCATION", {"ddi": "Flush", "callback": "pfnRenderCb"})]
    assert found(R + lk(cbs=[lockcb(1, 0x10, hr=REMOVED)])) == [(
        "ERR-1", "Lock(vb0@dev0, 0) on app returned S_OK after pfnLockCb returned "
        "D3DDDIERR_DEVICEREMOVED (ERR-3, LCB-16: it must pass it on)", {"ddi": "Lock"})]
    assert found(R + lk(hr=REMOVED, cbs=[lockcb(1, 0x10, hr=REMOVED)])) == []
    assert found(R + lk(cbs=[lockcb(1, 0x10)]) + ul(cbs=[unlockcb(1, hr=E_INVALIDARG)])) == [(
        "ERR-1", "Unlock(vb0@dev0) on app returned S_OK although its last pfnUnlockCb on "
        "['vb0@dev0 inst 0 (0x1)'] failed with E_INVALIDARG",
        {"ddi": "Unlock", "callback": "pfnUnlockCb"})]
    assert found(R + lk(cbs=[lockcb(1, 0x10, hr=E_INVALIDARG)])) == [(
        "ERR-1", "Lock(vb0@dev0, 0) on app returned S_OK although its last pfnLockCb on "
        "vb0@dev0 inst 0 (0x1) failed with E_INVALIDARG", {"ddi": "Lock", "callback": "pfnLockCb"})]


def test_err1_a_ddi_that_fails_returns_its_callbacks_code() -> None:
    """h7: CreateResource turning pfnAllocateCb's D3DERR_OUTOFVIDEOMEMORY into E_OUTOFMEMORY
    hid why it failed, and no rule said so."""
    oovm = "0x8876017C"  # D3DERR_OUTOFVIDEOMEMORY
    alloc = ("pfnAllocateCb", {}, {"hr": oovm})
    assert found(CREATE + ddi("app", "CreateResource", hr=E_OUTOFMEMORY, cbs=[alloc])) == [(
        "ERR-1", "CreateResource() on app returned E_OUTOFMEMORY after its pfnAllocateCb failed "
        "with D3DERR_OUTOFVIDEOMEMORY: it must return the callback's code",
        {"ddi": "CreateResource", "callback": "pfnAllocateCb"})]
    assert found(CREATE + ddi("app", "CreateResource", hr=oovm, cbs=[alloc])) == []
    # any failed callback's code will do: a retry elsewhere that failed differently
    retry = ("pfnAllocateCb", {}, {"hr": E_OUTOFMEMORY})
    assert found(CREATE + ddi("app", "CreateResource", hr=oovm, cbs=[alloc, retry])) == []
    # LockAsync's own table maps callback failures: LA-16 judges its codes, not ERR-1
    assert "ERR-1" not in rules(R + la(hr=E_NOTIMPL, flags=0x4,
                                       cbs=[lockcb(1, 0x14, hr=E_INVALIDARG)]))


def test_kl21_donotwait_waits_and_a_plain_lock_fails_busy() -> None:
    assert found([("app", "kmd.lock.wait", {"flags": 0x4, "allocation": 1})]) == [(
        "KL-21", "a DonotWait lock waited for the GPU instead of failing with "
        "STATUS_GRAPHICS_ALLOCATION_BUSY", {"allocation": 1})]
    assert found([("app", "kmd.lock", {"flags": 0x0, "allocation": 1, "rule": "KL-21"})]) == [(
        "KL-21", "a lock without DonotWait failed as busy instead of waiting", {"allocation": 1})]
    exempt = [("app", "kmd.lock.wait", {"flags": f, "allocation": 1}) for f in (0x84, 0xC)]
    assert found(exempt) == []
    assert found([("app", "kmd.lock", {"flags": 0x4, "allocation": 1, "rule": "KL-21"}),
                  ("app", "kmd.lock.wait", {"flags": 0x0, "allocation": 1})]) == []


def test_la13_a_draw_that_switched_before_rename() -> None:
    evs = R + discard() + ua(cbs=[unlockcb(2)]) + [
        ("app", "rt.draw", {"device": "dev0", "draw_id": 1, "reads": [[RT, 0]]}),
        *ddi(W, "DrawPrimitive", draw_id=1),
        *flush(rcb(allocations=[2], refs=[[1, 2]]))]
    assert found(evs) == [(
        "LA-13", "draw 1 reached the driver (dev0.worker) before Rename(cookie 0xc1) but reads "
        "vb0@dev0 inst 1 (0x2), which LockAsync(vb0@dev0, Discard) on app returned: the driver "
        "switched its tracking before Rename", {"draw": 1, "allocation": 2, "cookie": 0xC1})]


def _draws(*pairs: tuple[int, int]) -> Events:
    """Draws of resource 7 (id, handle), each received and submitted on the worker."""
    evs: Events = []
    for draw_id, h in pairs:
        evs += [("app", "rt.draw", {"device": "dev0", "draw_id": draw_id, "reads": [[RT, 0]]}),
                *ddi(W, "DrawPrimitive", draw_id=draw_id),
                *flush(rcb(allocations=[h], refs=[[draw_id, h]]))]
    return evs


_KMD = "kmd.lock"
ONCE: list[tuple[str, Events, list[str]]] = [
    ("KL-6", R9 + la(cbs=[lockcb(1, 0x1F)]) + la(res=9, cbs=[lockcb(3, 0x1F)]), ["KL-6"]),
    ("LCB-11", R9 + la(cbs=[lockcb(1, 0x1C, pages=[0])]) + la(res=9, cbs=[
        lockcb(3, 0x1C, pages=[1])]), ["LCB-11"]),
    ("LA-9 rt", R + la(cbs=[lockcb(1, 0x11C)]) + ua(cbs=[unlockcb(1)])
     + la(flags=0x5, cbs=[lockcb(1, 0x11C)]), ["LCB-7", "LA-9"]),
    ("LCB-19", R9 + NOOVERWRITE + lk(res=9, cbs=[lockcb(3, 0x10), unlockcb(1)])
     + ul(res=9, cbs=[unlockcb(3)]) + lk(res=9, flags=0x10, cbs=[lockcb(3, 0x10), unlockcb(1)]),
     ["LCB-19"]),
    ("RCB-1", R + flush(rcb(command_bytes=64, command_length=32),
                        rcb(command_bytes=64, command_length=16)), ["RCB-1"]),
    ("RCB-3", R + flush(rcb(x={"new_command_buffer_size": 8, "new_allocation_list_size": 0}),
                        rcb(command_bytes=16, command_length=16),
                        rcb(command_bytes=32, command_length=32)), ["RCB-3"]),
    ("RCB-4", R + flush(rcb(command_bytes=0, command_length=0, context=5))
     + ddi(W, "Present", cbs=[rcb(command_bytes=0, command_length=0, context=5)]), ["RCB-4"]),
    ("RCB-10", R + flush(rcb(command_bytes=0, command_length=0, flags=0x100))
     + ddi(W, "Present", cbs=[rcb(command_bytes=0, command_length=0, flags=0x100)]),
     ["RCB-10"]),
    ("ERR-1", R + lk(cbs=[lockcb(1, 0x10, hr=REMOVED)]) + ul(cbs=[unlockcb(1)])
     + lk(flags=0x10, cbs=[lockcb(1, 0x10, hr=REMOVED)]), ["ERR-1"]),
    ("ERR-1 cb", R + lk(cbs=[lockcb(1, 0x10, hr=E_INVALIDARG)])
     + lk(flags=0x10, cbs=[lockcb(1, 0x10, hr=E_INVALIDARG)]), ["ERR-1"]),
    ("KL-21", [("app", "kmd.lock.wait", {"flags": 0x4, "allocation": a}) for a in (1, 2)]
     + [("app", _KMD, {"flags": 0, "allocation": a, "rule": "KL-21"}) for a in (1, 2)],
     ["KL-21", "KL-21"]),
    ("LA-13", R + discard() + ua(cbs=[unlockcb(2)]) + _draws((1, 2), (2, 2)), ["LA-13"]),
]


def test_the_same_broken_decision_is_one_finding() -> None:
    for name, evs, want in ONCE:
        assert rules(evs) == want, name
