"""The checker's rules about the driver's callbacks: pfnLockCb, pfnUnlockCb, pfnRenderCb, and
what a DDI does with the codes they return.

The kernel-lock ledger (which allocation handles the driver holds a pfnLockCb on) is rebuilt
from ``cb.exit`` events; together with the locks the application holds (from the lock DDIs) it
says when the driver unlocks under the application's feet (LCB-19), submits with a lock it no
longer needs (LCB-4 / LCB-18) or leaves a lock behind at DestroyDevice (LCB-17).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import kmd
from umd.ddi import D3DDDICB_RENDERFLAGS

from ._checker_state import (
    CANT_RENDER_LOCKED,
    CBF,
    LAF,
    REMOVED,
    WSD,
    Call,
    DeviceState,
    as_int,
    code,
    few,
    flag_names,
    hr_of,
)

_UNLOCKS = ("Unlock", "UnlockAsync", "DestroyDevice", "DestroyResource")
#: D3DDDICB_RENDER.Flags bits that mean something; the rest is Reserved (RCB-10)
_RENDER_FLAGS = int(D3DDDICB_RENDERFLAGS.ResizeCommandBuffer
                    | D3DDDICB_RENDERFLAGS.ResizeAllocationList
                    | D3DDDICB_RENDERFLAGS.ResizePatchLocationList
                    | D3DDDICB_RENDERFLAGS.NullRendering)


def _callback_detail(dev: DeviceState, name: str, ev: dict[str, Any]) -> str:
    """`` on vb0@dev0 inst 2``: the allocations a failed lock callback named, for a message."""
    if name == "pfnLockCb":
        return f" on {dev.alloc(as_int(ev.get('allocation')))}"
    if name == "pfnUnlockCb":
        handles = list(ev.get("allocations", ()))
        return f" on {few(handles, lambda h: repr(dev.alloc(as_int(h))))}"
    return ""


def _undoes_own_lock(dev: DeviceState, call: Call, h: int) -> bool:
    """A lock DDI unlocking what it has itself just locked (a probe, or an in-place lock it
    refuses): the application never had that pointer, so nothing is released under it."""
    if call.ddi not in ("LockAsync", "Lock") or any(
        held.handle == h for held in dev.held.values()
    ):
        return False
    return any(hr_of(x) == 0 and as_int(x.get("new_allocation", 0)) == h
               for _e, x in call.cbs("pfnLockCb"))


class CallbackRules:
    """Mixin of :class:`~wddmemu._checker.Checker`: ERR, LCB, RCB and KL checks."""

    _violate: Callable[..., None]

    # ---- callbacks -----------------------------------------------------------------------

    def _lockcb_enter(self, dev: DeviceState, call: Call | None, ev: dict[str, Any]) -> None:
        """KL-5, KL-6, KL-9, KL-10 and LCB-7 (the flag word); LA-9 / LCB-7 (NoExistingReference
        is true: no unsubmitted draw of the resource)."""
        flags = as_int(ev.get("flags", 0))
        who = dev.describe(call) if call is not None else ev.get("thread", "?")
        rule = kmd.validate_lock_flags(flags)
        if rule is not None:
            target = dev.alloc(as_int(ev.get("allocation")))
            self._violate(rule, f"{who} called pfnLockCb on {target} with flags "
                          f"{flag_names(kmd.D3DDDICB_LOCKFLAGS, flags)}, which break {rule}: "
                          f"{kmd.lock_flag_breach(rule, flags)}",
                          key=flags, flags=flags)
        self._check_lcb11(dev, call, ev, flags, who)
        if flags & CBF.NoExistingReference and call is not None:
            if call.ddi == "LockAsync":
                self._check_la9(dev, call, who)
            elif rule is None:
                self._check_noref_truth(dev, call, who, "LCB-7")

    def _check_lcb11(self, dev: DeviceState, call: Call | None, ev: dict[str, Any], flags: int,
                     who: str) -> None:
        """LCB-11: LockEntire ⇒ no page list; without LockEntire a page list is needed (the
        kernel would answer D3DERR_NOTAVAILABLE — the driver asked for nothing lockable)."""
        if "pages" not in ev:
            return
        pages = ev.get("pages")
        entire = bool(flags & CBF.LockEntire)
        if entire == (pages is None):
            return
        target = dev.alloc(as_int(ev.get("allocation")))
        what = (f"LockEntire with a page list of {pages}" if entire
                else "neither LockEntire nor a page list")
        names = flag_names(kmd.D3DDDICB_LOCKFLAGS, flags)
        self._violate("LCB-11", f"{who} called pfnLockCb on {target} with {what} (flags "
                      f"{names}): LockEntire means NumPages 0 and no pPages, "
                      "and without it the pages to lock must be listed",
                      key=(call.ddi if call else "", entire), flags=flags)

    def _check_la9(self, dev: DeviceState, call: Call, who: str) -> None:
        if not call.flags & LAF.NoExistingReferences:
            self._violate("LA-9", f"{who} passed NoExistingReference to pfnLockCb although the "
                          "runtime did not set NoExistingReferences", key=("rt", call.key[0]),
                          resource=call.key[0])
            return
        self._check_noref_truth(dev, call, who, "LA-9")

    def _check_noref_truth(self, dev: DeviceState, call: Call, who: str, rule: str) -> None:
        res = call.key[0]
        rt_res = dev.rt_of_driver.get(res)
        pending = [d for d in dev.received if rt_res in dev.draw_resources.get(d, ())]
        if pending:
            self._violate(rule, f"{who} passed NoExistingReference to pfnLockCb while the "
                          f"driver still holds unsubmitted draws {pending[:5]} reading "
                          f"{dev.resource(res)}", key=("drv", res), resource=res,
                          draws=pending[:10])

    def _unlockcb_enter(self, dev: DeviceState, call: Call | None, ev: dict[str, Any]) -> None:
        """LCB-19: no pfnUnlockCb on an allocation the application may still be writing."""
        for h in ev.get("allocations", ()):
            h = as_int(h)
            if not dev.app_side(h) or h in dev.released_under_app:
                continue
            # a handle no resource owns is none's: not resource 0's (a driver may number from 0)
            owner = dev.owner.get(h)
            key = owner[0] if owner is not None else None
            if call is not None and _undoes_own_lock(dev, call, h):
                continue
            if call is not None and call.ddi in _UNLOCKS:
                mine = dev.held.get(call.key)
                if call.ddi.startswith("Destroy") or call.key == key or (
                    mine is not None and mine.handle == h
                ):
                    continue
            dev.released_under_app.add(h)
            who = dev.describe(call) if call is not None else ev.get("thread", "?")
            held = dev.held.get(key)
            by = f" ({held.made_by})" if held is not None else ""
            self._violate("LCB-19", f"{who} called pfnUnlockCb on {dev.alloc(h)}, which the "
                          f"application still holds locked{by}: only its unlock may release it",
                          key=h, allocation=h, ddi=call.ddi if call else None)

    def _lockcb_exit(self, dev: DeviceState, call: Call | None, ev: dict[str, Any]) -> None:
        if hr_of(ev) != 0:
            return
        h = as_int(ev.get("new_allocation", ev.get("allocation", 0)))
        dev.kernel_locks[h] = dev.kernel_locks.get(h, 0) + 1
        old = as_int(ev.get("allocation", 0))
        if h != old and old in dev.owner and call is not None:
            dev.new_instance(dev.owner[old][0], h, dev.describe(call))

    def _unlockcb_exit(self, dev: DeviceState, ev: dict[str, Any]) -> None:
        if hr_of(ev) != 0:
            return
        for h in ev.get("allocations", ()):
            h = as_int(h)
            dev.kernel_unlock(h)

    def _rendercb_enter(self, dev: DeviceState, call: Call | None, ev: dict[str, Any]) -> None:
        """LA-13 / RN-5 and RN-4 (which instance each draw reads), LCB-4 / LCB-18 (no lock
        the application does not hold survives into a submission)."""
        who = dev.describe(call) if call is not None else str(ev.get("thread", "?"))
        self._check_render_fill(dev, ev, who)
        for draw_id, handle in ev.get("refs", ()):
            if not isinstance(draw_id, int) or not 1 <= draw_id <= dev.max_draw:
                self._violate("DATA", f"{who} submitted with pfnRenderCb a draw command with "
                              f"draw id {draw_id}, which the runtime never issued on {dev.name} "
                              f"(its draws are 1…{dev.max_draw}): the GPU would execute a draw "
                              "no application made", key=("never-issued", draw_id),
                              draw=draw_id, allocation=handle)
                continue
            dev.received.pop(draw_id, None)
            info = dev.draws.get(draw_id)
            if info is not None:
                info.submitted_by = who
                info.handles.append(handle)
                self._check_instance(dev, draw_id, handle)
        for h in ev.get("allocations", ()):
            if dev.kernel_locks.get(h, 0) > 0 and not dev.app_side(h) and (
                h not in dev.leak_reported
            ):
                dev.leak_reported.add(h)
                self._violate("LCB-18", f"{who} submitted with pfnRenderCb while the driver "
                              f"still held a pfnLockCb on {dev.alloc(h)}, which the application "
                              "no longer holds: unlock (uncache) before rendering (LCB-4)"
                              f"{dev.left_by((h,))}",
                              key=h, allocation=h)

    def _check_render_fill(self, dev: DeviceState, ev: dict[str, Any], who: str) -> None:
        """RCB-1 (CommandLength filled in, and right), RCB-3 (the buffer fits in the sizes the
        last pfnRenderCb handed back — a driver that did not read them back overflows), RCB-4
        (hContext: NULL, the device's default context — this callback table has no
        pfnCreateContextCb, so no other handle is valid) and RCB-10 (Flags.Reserved zero)."""
        if "command_bytes" not in ev:
            return
        length, real = ev.get("command_length"), as_int(ev.get("command_bytes"))
        if length != real:
            self._violate("RCB-1", f"{who} called pfnRenderCb with CommandLength {length} for "
                          f"a command buffer of {real} bytes: the UMD must fill it in",
                          key=("len", length is None), command_length=length, bytes=real)
        n_alloc = len(ev.get("allocations", ()))
        if dev.handed is not None:
            cb_size, al_size = dev.handed
            if real > cb_size or n_alloc > al_size:
                self._violate("RCB-3", f"{who} submitted {real} bytes and {n_alloc} allocation "
                              f"list entries, but the last pfnRenderCb handed back a "
                              f"{cb_size}-byte buffer and a {al_size}-entry list: whether or not "
                              "a resize was asked for, the sizes must be read back",
                              key="sizes", bytes=real, handed=[cb_size, al_size])
        context = as_int(ev.get("context", 0))
        if context:
            self._violate("RCB-4", f"{who} called pfnRenderCb with hContext {context:#x}: only "
                          "NULL (the device's default context) or a handle from "
                          "pfnCreateContextCb is valid, and no context was created",
                          key=context, context=context)
        reserved = as_int(ev.get("flags", 0)) & ~_RENDER_FLAGS
        if reserved:
            self._violate("RCB-10", f"{who} called pfnRenderCb with reserved Flags bits "
                          f"{reserved:#x} set", key=reserved, flags=reserved)

    def _check_instance(self, dev: DeviceState, draw_id: int, handle: int) -> None:
        """LA-13 / RN-5: a draw that reached the driver before Rename(cookie) reads the old
        instance; RN-4: one that came after reads the cookie's. A draw reading an instance a
        later Discard made is blamed on LockAsync when no Rename happened since that Discard
        (the driver switched early), on the last Rename otherwise (it switched wrongly)."""
        owner = dev.owner.get(handle)
        info = dev.draws[draw_id]
        if owner is None:
            return
        key = owner[0]
        want = info.expect.get(key)
        # the latest Discard that produced this handle (VidMm may hand an instance out again)
        made = dev.discard_of.get(handle)
        early = made is not None and (made.renamed_seq is None or info.seq < made.renamed_seq)
        if want is not None and want.handle == handle:
            return
        if early and made is not None and (want is None or want.seq < made.seq):
            self._violate(
                "LA-13",
                f"draw {draw_id} reached the driver ({info.thread}) before "
                f"Rename(cookie {made.cookie:#x}) but reads {dev.alloc(handle)}, which "
                f"{made.made_by} returned: the driver switched its tracking before Rename",
                key=made.cookie, draw=draw_id, allocation=handle, cookie=made.cookie,
            )
        elif want is not None:
            self._violate(
                "RN-4",
                f"draw {draw_id} reached the driver ({info.thread}) after {want.made_by}, which "
                f"made {dev.alloc(want.handle)} the instance to draw from, but it reads "
                f"{dev.alloc(handle)}",
                key=(key, want.seq), draw=draw_id, allocation=handle,
            )

    def _rendercb_exit(self, dev: DeviceState, ev: dict[str, Any]) -> None:
        if "new_command_buffer_size" in ev:
            dev.handed = (as_int(ev["new_command_buffer_size"]),
                          as_int(ev.get("new_allocation_list_size", 0)))
        if hr_of(ev) == CANT_RENDER_LOCKED and not dev.la15_at_lock:
            # the consequence; a NoOverwrite LockAsync already judged when it succeeded is
            # not reported twice
            self._violate("LA-15", "pfnRenderCb failed with D3DDDIERR_CANTRENDERLOCKEDALLOCATION: "
                          "a NoOverwrite lock succeeded on an allocation that cannot be rendered "
                          "while locked (RCB-5)", key="render", thread=ev["thread"])

    # ---- DDI results ---------------------------------------------------------------------

    def _check_err(self, dev: DeviceState, call: Call, hr: int) -> None:
        """ERR-1 / ERR-3 / LCB-16: a DDI returns the error its callbacks gave it. A callback
        retried until it succeeded (the sync Discard recovery, LCB-6) is no error; LockAsync's
        failed rename is LA-10's business."""
        cbs = [(n, hr_of(x), e) for n, e, x in call.callbacks]
        if not cbs:
            return
        # described only when a rule breaks (nothing in between changes what it reads): most
        # calls with callbacks break none, and describing was ~5 % of an exploration (issue 13)
        removed = [n for n, c, _e in cbs if c == REMOVED]
        if removed and hr != REMOVED:
            self._violate("ERR-1", f"{dev.describe(call)} returned {code(hr)} after "
                          f"{removed[0]} returned D3DDDIERR_DEVICEREMOVED (ERR-3, LCB-16: it "
                          "must pass it on)",
                          key=(call.ddi, "removed"), ddi=call.ddi)
            return
        if hr != 0:
            self._err_substituted(dev, call, hr, cbs)
            return
        last: dict[str, tuple[int, dict[str, Any]]] = {}
        for n, c, e in cbs:
            last[n] = (c, e)
        for n, (c, e) in last.items():
            if c == 0 or (call.ddi == "LockAsync" and c == WSD):
                continue
            what, detail = dev.describe(call), _callback_detail(dev, n, e)
            self._violate("ERR-1", f"{what} returned S_OK although its last {n}{detail} failed "
                          f"with {code(c)}", key=(call.ddi, n), ddi=call.ddi, callback=n)
            return

    def _err_substituted(self, dev: DeviceState, call: Call, hr: int,
                         cbs: list[tuple[str, int, dict[str, Any]]]) -> None:
        """ERR-1's other half: a DDI that fails after a callback failed must return that
        callback's code, not one of its own (CreateResource turning pfnAllocateCb's
        D3DERR_OUTOFVIDEOMEMORY into E_OUTOFMEMORY hides why it failed). Any failed callback's
        code will do (a retry may fail differently). LockAsync is exempt: its own table maps
        a failed rename to WASSTILLDRAWING and other callback failures to E_NOTIMPL, and LA-16
        judges the codes it may return (Q-13)."""
        failed = [(n, c, e) for n, c, e in cbs if c != 0]
        if call.ddi == "LockAsync" or not failed or any(c == hr for _n, c, _e in failed):
            return
        n, c, e = failed[-1]
        what, detail = dev.describe(call), _callback_detail(dev, n, e)
        self._violate("ERR-1", f"{what} returned {code(hr)} after its {n}{detail} failed with "
                      f"{code(c)}: it must return the callback's code", key=(call.ddi, n, "code"),
                      ddi=call.ddi, callback=n)

    def _after_destroy(self, dev: DeviceState, ev: dict[str, Any]) -> None:
        """``CB-AFTER-DESTROY`` (the emulator's own oracle, docs/checker.md): a callback made
        after the driver's DestroyDevice returned. ``hDevice`` must be the runtime handle
        supplied at CreateDevice (the callback pages); once DestroyDevice has returned it names
        no device, so the runtime refused the call with E_INVALIDARG before it reached the
        kernel (``runtime/_callbacks.py:RuntimeCallbacks.destroy``). Typically a thread the
        driver left running. Once per callback."""
        cb = ev["cb"]
        self._violate("CB-AFTER-DESTROY", f"{ev.get('thread', '?')} called {cb} on {dev.name} "
                      "after the driver's DestroyDevice had returned: the device handle is "
                      "dead, so the runtime refused it with E_INVALIDARG (a thread the driver "
                      "left running must stop before DestroyDevice returns)", key=cb,
                      callback=cb, thread=ev.get("thread"))

    def _destroy_device_exit(self, dev: DeviceState, call: Call) -> None:
        """LCB-17: every pfnLockCb is paired with a pfnUnlockCb by the end of DestroyDevice
        (a lock already reported as leaked by its unlock DDI is not reported again)."""
        if dev.lost:
            return
        left = [h for h, n in sorted(dev.kernel_locks.items())
                if n > 0 and h not in dev.leak_reported]
        if left:
            self._violate("LCB-17", f"{dev.describe(call)} returned with pfnLockCb locks still "
                          f"outstanding on {few(left, lambda h: repr(dev.alloc(h)))}: "
                          f"DestroyDevice must release them{dev.left_by(left)}",
                          key="destroy", allocations=left[:10])

    # ---- kernel events -------------------------------------------------------------------

    def _on_kmd_lock(self, ev: dict[str, Any]) -> None:
        """KL-21: without DonotWait a lock on a busy allocation waits; with DonotWait it fails at
        once with STATUS_GRAPHICS_ALLOCATION_BUSY and never waits (Discard and honoured
        IgnoreSync|DonotWait excepted, KL-7, KL-8, Q-10)."""
        flags = as_int(ev.get("flags", 0))
        if flags & CBF.Discard or (flags & CBF.IgnoreSync and flags & CBF.DonotWait):
            return
        if ev["event"] == "kmd.lock.wait" and flags & CBF.DonotWait:
            self._violate("KL-21", "a DonotWait lock waited for the GPU instead of failing with "
                          "STATUS_GRAPHICS_ALLOCATION_BUSY", key="donotwait",
                          allocation=ev.get("allocation"))
        if (ev["event"] == "kmd.lock" and ev.get("rule") == "KL-21"
                and not flags & CBF.DonotWait):
            self._violate("KL-21", "a lock without DonotWait failed as busy instead of waiting",
                          key="wait", allocation=ev.get("allocation"))
