"""The checker's rules about the lock DDIs: LockAsync, UnlockAsync, Rename, Lock and Unlock.

Each check judges a decision from what crossed the seam — the DDI's arguments, the callbacks it
made and the code it returned — and names the DDI and thread that made it. The contract's own
exceptions are honoured: a Dynamic resource's NoOverwrite pointer may be cached, so a
NoOverwrite lock may skip pfnLockCb and its unlock pfnUnlockCb (LCB-3); a Discard LockAsync may
refuse a resource it cannot rename with E_NOTIMPL (LA-16).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from umd.ddi import (
    D3DDDI_LOCKASYNCFLAGS,
    UNLOCKASYNC_RESERVED,
    lock_flag_rule,
    lockasync_flag_rule,
)

from ._checker_state import (
    CBF,
    E_INVALIDARG,
    E_NOTIMPL,
    E_OUTOFMEMORY,
    LAF,
    LKF,
    REMOVED,
    UAF,
    WSD,
    Binding,
    Call,
    DeviceState,
    Discard,
    Held,
    as_int,
    code,
    few,
    flag_names,
    hr_of,
    is_worker,
)
from ._files import printable

#: a HANDLE is pointer-sized: an hCookie is an int in [1, 2**64) (LA-12)
HANDLE_END = 1 << 64
_LA_WHAT = {"LA-5": "NoOverwrite and Discard both set",
            "LA-6": "more than one of RangeValid/AreaValid/BoxValid",
            "LA-7": "reserved bits set"}
_LK_WHAT = {"LK-1": "ReadOnly and WriteOnly both set", "LK-2": "NoOverwrite and Discard both set",
            "LK-3": "more than one of RangeValid/AreaValid/BoxValid",
            "LK-4": "ReadOnly and Discard both set", "LK-5": "reserved bits set"}


class DdiRules:
    """Mixin of :class:`~wddmemu._checker.Checker`: the LA, UA, RN and LK checks."""

    _violate: Callable[..., None]
    _kernel: Any  # the run's kmd.Kernel, or None (synthetic events): asked by LA-15

    # ---- LockAsync -----------------------------------------------------------------------

    def _lockasync_enter(self, dev: DeviceState, call: Call) -> None:
        """LA-2 (app thread), LA-4 (sysmem only at >= 0xB), LA-5, LA-6, LA-7 (flag words), LA-9
        (the runtime's NoExistingReferences only with no queued reference)."""
        flags, (res, _sub) = call.flags, call.key
        what = dev.describe(call)
        if is_worker(call.thread):
            self._violate("LA-2", f"{what}: LockAsync must be made on the application thread, "
                          "not the runtime's worker", key=call.thread)
        rule = lockasync_flag_rule(flags)
        if rule is not None:
            self._violate(rule, f"the runtime called {what} with flags {flags:#x}: "
                          f"{_LA_WHAT[rule]}", key=flags, flags=flags)
        rt_res = dev.rt_of_driver.get(res)
        queued = dev.rt_queued.get(rt_res, 0) if rt_res is not None else 0
        if flags & LAF.NoExistingReferences and queued > 0:
            self._violate("LA-9", f"the runtime set NoExistingReferences on {what} while "
                          f"{queued} queued command(s) still reference {dev.resource(res)}",
                          key=f"rtq/{res}", resource=res)
        if res in dev.sysmem and dev.version < 0xB:
            self._violate("LA-4", f"the runtime called {what} on a system-memory surface with "
                          f"DDI version {dev.version:#x} < 0xB", key=res, resource=res)

    def _lockasync_exit(self, dev: DeviceState, call: Call, ev: dict[str, Any], hr: int
                        ) -> None:
        """LA-8, LA-10, LA-11, LA-12, LA-14, LA-15, LA-16 — the driver's answer to a LockAsync."""
        flags = call.flags
        what = dev.describe(call)
        discard = bool(flags & LAF.Discard) and not flags & LAF.NotifyOnly
        disc_cbs = [(e, x) for e, x in call.cbs("pfnLockCb")
                    if as_int(e.get("flags", 0)) & CBF.Discard]
        failed_rename = bool(disc_cbs) and hr_of(disc_cbs[-1][1]) != 0
        if hr == WSD and not flags & LAF.Discard:
            self._violate("LA-11", f"{what} returned D3DDDIERR_WASSTILLDRAWING without Discard "
                          f"(flags {flag_names(D3DDDI_LOCKASYNCFLAGS, flags)})", key=call.key,
                          flags=flags)
        self._check_la10_flush(dev, call, what)
        if hr != 0:
            self._check_la16(dev, call, hr, what, discard, disc_cbs)
            return
        if discard and not any(hr_of(x) == 0 for _e, x in disc_cbs):
            if failed_rename:
                self._violate("LA-10", f"{what} returned S_OK although its rename failed "
                              f"(pfnLockCb(Discard) said {code(hr_of(disc_cbs[-1][1]))}): "
                              "a failed rename must be returned to the runtime",
                              key=f"ok/{call.key}", resource=call.key[0])
            else:
                self._violate("LA-8", f"{what} returned S_OK without renaming: no pfnLockCb "
                              "with Discard succeeded", key=call.key, resource=call.key[0])
        self._lockasync_succeeded(dev, call, ev, what, discard)

    def _check_la10_flush(self, dev: DeviceState, call: Call, what: str) -> None:
        """LA-10 / RCB-8: no pfnRenderCb after a failed Discard pfnLockCb inside LockAsync."""
        failed = False
        for n, e, x in call.callbacks:
            if n == "pfnLockCb" and as_int(e.get("flags", 0)) & CBF.Discard and hr_of(x) != 0:
                failed = True
            if n == "pfnRenderCb" and failed and call.flags & LAF.Discard:
                self._violate("LA-10", f"{what} flushed its command buffer (pfnRenderCb) after "
                              "a failed Discard pfnLockCb (RCB-8); it must return the failure "
                              "instead", key=call.key, resource=call.key[0])

    def _check_la16(self, dev: DeviceState, call: Call, hr: int, what: str, discard: bool,
                    disc_cbs: list) -> None:
        """LA-16: LockAsync fails only when renaming fails, when NoOverwrite is unsupported for
        the resource, or with E_OUTOFMEMORY; a callback's own failure may be passed on (ERR-1)
        and DEVICEREMOVED always is. Anything else — E_NOTIMPL for a NotifyOnly lock of a
        system-memory surface, say — is a refusal the contract does not allow."""
        flags = call.flags
        if hr in (E_OUTOFMEMORY, REMOVED) or any(hr_of(x) != 0 for _n, _e, x in call.callbacks):
            return
        if hr == E_INVALIDARG and (lockasync_flag_rule(flags) is not None
                                   or call.key in dev.held):
            return  # the runtime's own mistake (LA-5/6/7, a second lock): undocumented code
        if discard and (hr == E_NOTIMPL or (hr == WSD and disc_cbs)):
            return  # (a) renaming failed or is impossible for this resource
        if hr == WSD and discard:
            self._violate("LA-8", f"{what} reported a failed rename (D3DDDIERR_WASSTILLDRAWING) "
                          "without trying one: no pfnLockCb with Discard", key=call.key,
                          resource=call.key[0])
            return
        if flags & LAF.NoOverwrite and not flags & LAF.NotifyOnly and hr == E_NOTIMPL:
            return  # (b) no-overwrite unsupported for the resource (LA-15)
        if hr == WSD:
            return  # LA-11's business
        self._violate("LA-16", f"{what} failed with {code(hr)}, but LockAsync may fail only "
                      "for a failed rename, unsupported NoOverwrite or E_OUTOFMEMORY; no "
                      "callback failed, so it should have succeeded", key=(call.key, hr),
                      resource=call.key[0], hr=code(hr))

    def _lockasync_succeeded(self, dev: DeviceState, call: Call, ev: dict[str, Any], what: str,
                             discard: bool) -> None:
        """LA-12, LA-14 and LA-15 on S_OK; then remember the lock the app holds and the cookie."""
        flags, key = call.flags, call.key
        ok_locks = [(e, x) for e, x in call.cbs("pfnLockCb") if hr_of(x) == 0]
        cached = dev.locked_by_driver(key[0]) if key[0] in dev.dynamic else []
        if flags & LAF.NoOverwrite and not flags & LAF.NotifyOnly and not any(
            as_int(e.get("flags", 0)) & CBF.IgnoreSync for e, _ in ok_locks
        ) and not (not ok_locks and cached):
            self._violate("LA-14", f"{what} succeeded without a pfnLockCb carrying IgnoreSync "
                          "(and had no cached NoOverwrite pointer, LCB-3)", key=key,
                          resource=key[0])
        handle = as_int(ok_locks[-1][1].get("new_allocation", 0)) if ok_locks else (
            cached[-1] if cached else 0)
        if flags & LAF.NoOverwrite and not flags & LAF.NotifyOnly and handle:
            self._check_la15(dev, key, handle, what)
        dev.held[key] = Held("async", handle, flags, what, call.net_locks(handle))
        cookie = as_int(ev.get("cookie", 0))
        odd = ev.get("cookie_kind")  # the runtime's word for an hCookie that is no int
        if not flags & LAF.Discard:
            if cookie:
                dev.other_cookies.add(cookie)
            return
        if discard and odd is not None:
            dev.bad_cookies.add(cookie)
            self._violate("LA-12", f"{what} renamed but returned an hCookie that is "
                          f"{printable(str(odd))}, not a HANDLE (an int in [1, 2**64)): no "
                          "Rename can carry it back", key=f"cookie/{key}", resource=key[0])
            return
        if discard and not cookie:
            dev.bad_cookies.add(cookie)
            self._violate("LA-12", f"{what} renamed but returned no hCookie (0): the runtime "
                          "has nothing to pass to Rename", key=key, resource=key[0])
            return
        if discard and not 0 < cookie < HANDLE_END:
            dev.bad_cookies.add(cookie)
            kind = "a negative int" if cookie < 0 else f"a {cookie.bit_length()}-bit int"
            self._violate("LA-12", f"{what} renamed but returned an hCookie that is {kind}, "
                          "not a HANDLE (an int in [1, 2**64)): no Rename can carry it back",
                          key=f"cookie/{key}", resource=key[0])
            return
        disc = [(e, x) for e, x in ok_locks if as_int(e.get("flags", 0)) & CBF.Discard]
        new = as_int(disc[-1][1].get("new_allocation", 0)) if disc else handle
        if discard:
            self._check_la12(dev, ev, what, key, new)
            self._check_cookie_pending(dev, cookie, what, key)
        dev.new_instance(key, new, f"{what} (cookie {cookie:#x})")
        dev.add_discard(Discard(cookie, key, new, call.seq, what))

    def _check_cookie_pending(self, dev: DeviceState, cookie: int, what: str,
                              key: tuple[int, int]) -> None:
        """LA-12: the hCookie represents *this* rename's allocation, so it cannot be one an
        earlier successful Discard returned that no Rename has carried back yet: the runtime's
        two Renames would name the same cookie. A cookie reused after its Rename is fine."""
        old = dev.discards.get(cookie)
        if old is None or old.renames:
            return
        dev.reused_cookies.add(cookie)
        self._violate("LA-12", f"{what} renamed but returned hCookie {cookie:#x}, which an "
                      f"earlier {old.made_by} returned and no Rename has carried back yet: one "
                      "cookie for two pending renames, so the runtime's Renames cannot tell "
                      "them apart (a cookie represents one renamed allocation)",
                      key=("cookie-reused", key), resource=key[0], cookie=cookie)

    def _check_la15(self, dev: DeviceState, key: tuple[int, int], handle: int,
                    what: str) -> None:
        """LA-15: an S_OK NoOverwrite LockAsync promises that the worker may render from the
        still-locked allocation, which VidMm can do only from an AGP/aperture segment
        (RCB-5). Judged when the lock succeeds, from the kernel's answer where the allocation
        may live — not only when a draw happens to be submitted while the app holds the lock
        (h7: fifo never did, so LA-15 was found on 7 of 16 random schedules)."""
        kernel = self._kernel
        if kernel is None or kernel.renders_while_locked(handle) is not False:
            return
        dev.la15_at_lock = True
        self._violate("LA-15", f"{what} returned S_OK, but what it locked, {dev.alloc(handle)}, "
                      "cannot be rendered while locked: its allocation may live in no AGP or "
                      "aperture segment, the only ones VidMm renders a locked allocation from "
                      "(RCB-5); NoOverwrite must be refused with E_NOTIMPL there (LA-16)",
                      key=("lock", key), resource=key[0], allocation=handle)

    def _check_la12(self, dev: DeviceState, ev: dict[str, Any], what: str,
                    key: tuple[int, int], new: int) -> None:
        """LA-12: a successful rename returns pSurfData — into the instance pfnLockCb(Discard)
        returned, where the pointer says which (a driver's own wrapper need not) — and a
        Pitch (hCookie is checked by the caller). SlicePitch is not judged: the contract gives
        no value to compare it against."""
        if "surf_data" not in ev:
            return
        surf, pitch = ev.get("surf_allocation"), ev.get("pitch")
        if not ev["surf_data"] or (surf is not None and new and surf != new):
            where = "NULL" if not ev["surf_data"] else f"a pointer into {dev.alloc(as_int(surf))}"
            self._violate("LA-12", f"{what} renamed to {dev.alloc(new)} but returned pSurfData "
                          f"{where}", key=f"surf/{key}", resource=key[0])
        elif not isinstance(pitch, int) or pitch <= 0:
            odd = ev.get("pitch_kind")  # the runtime's word for a Pitch that is no int
            shown = f"a Pitch that is {printable(str(odd))}" if odd is not None else (
                f"Pitch {pitch}" if isinstance(pitch, int) else "no Pitch")
            self._violate("LA-12", f"{what} renamed but returned {shown}: a successful "
                          "rename returns pSurfData, Pitch, SlicePitch and hCookie",
                          key=f"pitch/{key}", resource=key[0])

    # ---- UnlockAsync -----------------------------------------------------------------------

    def _unlockasync_enter(self, dev: DeviceState, call: Call) -> None:
        """UA-2 (app thread), UA-3 (a Lock lock is not a LockAsync lock), UA-6 (NotifyOnly on
        both or neither), UA-7 (reserved bits)."""
        what, key, flags = dev.describe(call), call.key, call.flags
        if is_worker(call.thread):
            self._violate("UA-2", f"{what}: UnlockAsync must be made on the application "
                          "thread, not the runtime's worker", key=call.thread)
        held = dev.held.get(key)
        if held is not None and held.path == "sync":
            self._violate("UA-3", f"the runtime called {what}, but {dev.key_name(key)} was "
                          f"locked through Lock ({held.made_by}), not LockAsync (Q-20)",
                          key=key, resource=key[0])
        if flags & UNLOCKASYNC_RESERVED:
            self._violate("UA-7", f"the runtime called {what} with reserved flag bits "
                          f"{flags & UNLOCKASYNC_RESERVED:#x}", key=flags, flags=flags)
        if held is not None and held.path == "async" and (
            bool(held.flags & LAF.NotifyOnly) != bool(flags & UAF.NotifyOnly)
        ):
            self._violate("UA-6", f"the runtime called {what} for a lock made by "
                          f"{held.made_by}: NotifyOnly must be set on both or on neither",
                          key=key, resource=key[0])

    def _unlockasync_exit(self, dev: DeviceState, call: Call, hr: int) -> None:
        """UA-3 (S_OK needs an outstanding LockAsync) and UA-4 / LCB-20 (pfnUnlockCb on the
        handle LockAsync locked — the new instance after a Discard, before or after Rename)."""
        key, what = call.key, dev.describe(call)
        held = dev.held.get(key)
        if hr == 0 and (held is None or held.path != "async"):
            self._violate("UA-3", f"{what} returned S_OK without an outstanding LockAsync on "
                          f"{dev.key_name(key)} (it must return E_INVALIDARG)",
                          key=f"ok/{key}", resource=key[0])
        if held is None or held.path != "async":
            return
        locked = held.handle
        tried = [h for e, _x in call.cbs("pfnUnlockCb") for h in e.get("allocations", ())]
        done = [h for _e, x in call.cbs("pfnUnlockCb") if hr_of(x) == 0
                for h in x.get("allocations", ())]
        if tried and locked and locked not in tried:
            self._violate("UA-4", f"{what} unlocked {few(tried, lambda h: repr(dev.alloc(h)))} but "
                          f"{held.made_by} had locked {dev.alloc(locked)} (LCB-20)",
                          key=f"wrong/{key}", resource=key[0], locked=locked)
        elif hr == 0 and locked and locked not in done:
            self._ua4_missing(dev, call, held, what)
        if hr == 0:
            dev.held.pop(key, None)
            dev.app_unlocked(held, call, what)

    def _ua4_missing(self, dev: DeviceState, call: Call, held: Held, what: str) -> None:
        locked = held.handle
        if locked in dev.released_under_app:
            return  # already reported as LCB-19 against the DDI that unlocked it early
        if held.flags & LAF.NoOverwrite and call.key[0] in dev.dynamic:
            return  # LCB-3: the NoOverwrite pointer of a Dynamic resource may stay cached
        dev.leak_reported.add(locked)
        self._violate("UA-4", f"{what} returned S_OK without calling pfnUnlockCb on "
                      f"{dev.alloc(locked)}, which {held.made_by} had locked (LCB-17)",
                      key=f"none/{call.key}", resource=call.key[0], locked=locked)

    # ---- Rename ------------------------------------------------------------------------

    def _rename_enter(self, dev: DeviceState, call: Call) -> None:
        """RN-1, RN-2, RN-3, RN-6 and LA-18: the runtime's Rename calls."""
        cookie, key, what = as_int(call.enter.get("cookie", 0)), call.key, dev.describe(call)
        d = dev.discards.get(cookie)
        if d is None:
            if cookie in dev.other_cookies:
                self._violate("LA-18", f"the runtime called {what} with the cookie of a "
                              "LockAsync without Discard (meaningless outside Discard)",
                              key=cookie, cookie=cookie)
                return
            if cookie in dev.bad_cookies:
                return  # the driver's own bad hCookie, passed back as it was: LA-12, reported
            self._violate("RN-2", f"the runtime called {what}, but no successful Discard "
                          "LockAsync returned that cookie", key=cookie, cookie=cookie)
            return
        d.renames += 1
        reused = cookie in dev.reused_cookies  # LA-12, the driver's: whose Rename is unknowable
        if d.renames > 1 and not reused:
            self._violate("RN-1", f"the runtime called Rename {d.renames} times for cookie "
                          f"{cookie:#x} of {d.made_by} (at most once per successful Discard "
                          "LockAsync)", key=cookie, cookie=cookie)
        if key != d.key and not reused:
            self._violate("RN-6", f"the runtime called {what} with a cookie {d.made_by} "
                          f"returned for {dev.key_name(d.key)}", key=cookie, cookie=cookie)
        if not is_worker(call.thread):
            self._violate("RN-3", f"the runtime called {what}: Rename belongs on the worker "
                          "thread", key=call.thread)

    def _rename_exit(self, dev: DeviceState, call: Call, hr: int) -> None:
        d = dev.discards.get(as_int(call.enter.get("cookie", 0)))
        if hr != 0 or d is None:
            return
        if d.renamed_seq is None:
            d.renamed_seq = call.seq
        dev.bound[d.key] = Binding(d.new_allocation, call.seq, dev.describe(call))

    # ---- Lock / Unlock -------------------------------------------------------------------

    def _lock_enter(self, dev: DeviceState, call: Call) -> None:
        """LK-1, LK-2, LK-3, LK-4, LK-5: the runtime's Lock flag words."""
        rule = lock_flag_rule(call.flags)
        if rule is not None:
            self._violate(rule, f"the runtime called {dev.describe(call)} with flags "
                          f"{call.flags:#x}: {_LK_WHAT[rule]}", key=call.flags,
                          flags=call.flags)

    def _lock_exit(self, dev: DeviceState, call: Call, ev: dict[str, Any], hr: int) -> None:
        """LK-6 (pfnLockCb, unless LCB-3's cached NoOverwrite pointer), LK-7 (WASSTILLDRAWING
        only with DoNotWait), LCB-13 (Discard passed on); then remember the app's lock and,
        for a renaming Discard, the new binding (LCB-8); last LK-6's other half, the pointer
        pfnLockCb gave returned (:meth:`_check_lock_pointer`)."""
        key, flags, what = call.key, call.flags, dev.describe(call)
        if hr == WSD and not flags & LKF.DoNotWait:
            self._violate("LK-7", f"{what} returned D3DDDIERR_WASSTILLDRAWING without DoNotWait "
                          "(without it Lock waits)", key=key, resource=key[0])
        elif hr == WSD and not any(hr_of(x) == WSD for _e, x in call.cbs("pfnLockCb")):
            # the busy half: only the kernel knows the GPU is using it, and says so by
            # answering a DonotWait pfnLockCb D3DERR_WASSTILLDRAWING (KL-21)
            self._violate("LK-7", f"{what} returned D3DDDIERR_WASSTILLDRAWING, but no pfnLockCb "
                          "of the call said the resource was busy", key=("busy", key),
                          resource=key[0])
        if hr != 0:
            return
        ok = [(e, x) for e, x in call.cbs("pfnLockCb") if hr_of(x) == 0]
        cached = dev.locked_by_driver(key[0])
        if not call.cbs("pfnLockCb") and not (
            flags & LKF.NoOverwrite and key[0] in dev.dynamic and cached
        ):
            self._violate("LK-6", f"{what} succeeded without calling pfnLockCb (and had no "
                          "cached NoOverwrite pointer of a Dynamic resource, LCB-3)",
                          key=key, resource=key[0])
        discard = flags & LKF.Discard and not flags & LKF.NotifyOnly and key[0] not in dev.sysmem
        if discard and ok and not any(as_int(e.get("flags", 0)) & CBF.Discard for e, _ in ok):
            self._violate("LCB-13", f"{what} locked without passing Discard on to pfnLockCb",
                          key=key, resource=key[0])
        handle = as_int(ok[-1][1].get("new_allocation", 0)) if ok else (
            cached[-1] if cached else 0)
        dev.held[key] = Held("sync", handle, flags, what, call.net_locks(handle))
        disc = [x for e, x in ok if as_int(e.get("flags", 0)) & CBF.Discard]
        if discard and disc:
            new = as_int(disc[-1].get("new_allocation", 0))
            dev.new_instance(key, new, what)
            dev.bound[key] = Binding(new, call.seq, what)
        self._check_lock_pointer(dev, call, ev)

    def _check_lock_pointer(self, dev: DeviceState, call: Call, ev: dict[str, Any]) -> None:
        """LK-6: a successful Lock returns the pointer pfnLockCb gave (translated to the
        subresource) in pSurfData. Not for a NotifyOnly Lock, nor one of runtime system memory:
        the runtime ignores that pSurfData (LK-10) and reads its system memory through its own
        mapping. Pitch is not judged: no rule of Lock's says what it must be (a linear buffer
        has none to speak of)."""
        key, flags = call.key, call.flags
        if ev.get("surf_data", True) or flags & LKF.NotifyOnly or key[0] in dev.sysmem:
            return
        self._violate("LK-6", f"{dev.describe(call)} returned S_OK with pSurfData NULL: Lock "
                      "returns the pointer pfnLockCb gave, translated to the subresource",
                      key=("pointer", key), resource=key[0])

    def _unlock_exit(self, dev: DeviceState, call: Call, hr: int) -> None:
        """LK-13 (S_OK only for a Lock lock), LK-11 / LK-12 (pfnUnlockCb, unless LCB-3's
        cached NoOverwrite pointer; LK-12 for system memory), LCB-20 (pfnUnlockCb on the
        handle Lock locked: the new instance after a renaming Lock(Discard))."""
        key, what = call.key, dev.describe(call)
        held = dev.held.get(key)
        if held is not None and held.path == "sync" and held.handle:
            tried = [h for e, _x in call.cbs("pfnUnlockCb") for h in e.get("allocations", ())]
            if tried and held.handle not in tried:  # LCB-20 on the synchronous path too (h7)
                self._violate("LCB-20", f"{what} unlocked "
                              f"{few(tried, lambda h: repr(dev.alloc(h)))} but {held.made_by} "
                              f"had locked {dev.alloc(held.handle)}", key=f"wrong/{key}",
                              resource=key[0], locked=held.handle)
        if hr != 0:
            return
        if held is None or held.path != "sync":
            self._violate("LK-13", f"{what} returned S_OK, but {dev.key_name(key)} was not "
                          "locked by Lock (it must return E_INVALIDARG)", key=f"ok/{key}",
                          resource=key[0])
            return
        dev.held.pop(key, None)
        dev.app_unlocked(held, call, what)
        if call.cbs("pfnUnlockCb") or held.handle in dev.released_under_app:
            return
        if key[0] in dev.sysmem:
            dev.leak_reported.add(held.handle)
            self._violate("LK-12", f"{what} returned without pfnUnlockCb although "
                          f"{held.made_by} called pfnLockCb on the system-memory allocation "
                          f"{dev.alloc(held.handle)}", key=key, resource=key[0])
        elif not (held.flags & LKF.NoOverwrite and key[0] in dev.dynamic):
            dev.leak_reported.add(held.handle)
            self._violate("LK-11", f"{what} succeeded without calling pfnUnlockCb on "
                          f"{dev.alloc(held.handle)} (only a Dynamic resource's NoOverwrite "
                          "pointer may stay cached, LCB-3)", key=key, resource=key[0])

