"""The contract checker: watches a run's event stream and reports every broken rule by its id.

It is a subscriber of the engine (``Engine.subscribe``): it sees exactly the events the trace
would hold — DDI and callback enter/exit with their arguments and results (``ddi.*``, ``cb.*``,
logged by the runtime at the seams), the runtime's own events (``rt.*``), kernel events
(``kmd.*``) — in order, whether or not a trace file is written. It treats the driver as a black
box: every check is made from what crossed a seam, so a user's own driver is checked exactly like
the reference one.

Each check cites the rule it enforces; ``docs/checker.md`` has the full table (every rule id of
the reference → checked where, or why not). The **data oracle** runs at the end of a scenario
(:meth:`Checker.final`): for every draw, the bytes the GPU read from each referenced allocation
instance must equal what the application had written when it issued the draw.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import kmd
from umd.ddi import (
    D3D_UMD_REENTRANT_VERSION,
    D3DDDI_LOCKASYNCFLAGS,
    lockasync_flag_rule,
)
from vthreads import current_engine

_LAF = D3DDDI_LOCKASYNCFLAGS
_CBF = kmd.D3DDDICB_LOCKFLAGS
_WSD = int(kmd.D3DERR_WASSTILLDRAWING)
_REMOVED = int(kmd.D3DDDIERR_DEVICEREMOVED)
_CANT_RENDER_LOCKED = int(kmd.D3DDDIERR_CANTRENDERLOCKEDALLOCATION)
REENTRANT = frozenset({"LockAsync", "UnlockAsync"})
TRIPLE = frozenset({"LockAsync", "UnlockAsync", "Rename"})


def _int(v: Any) -> int:
    """Trace fields carry codes and flag words as ints or as hex strings ("0x90")."""
    if isinstance(v, str):
        try:
            return int(v, 0)
        except ValueError:
            return 0
    return int(v or 0)


def _hr(ev: dict[str, Any]) -> int:
    return _int(ev.get("hr", 0))


@dataclass
class _Call:
    """A DDI call in progress on one thread."""

    ddi: str
    device: str
    enter: dict[str, Any]
    seq: int
    callbacks: list[tuple[str, dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    cb_open: dict[str, Any] | None = None


@dataclass
class _Discard:
    """A successful Discard LockAsync: its cookie, resource and the new instance handle."""

    cookie: int
    resource: int
    new_allocation: int
    renamed_seq: int | None = None
    renames: int = 0


@dataclass
class _DeviceState:
    version: int = 0
    implements: frozenset[str] = frozenset()
    inside: dict[str, _Call] = field(default_factory=dict)  # thread → call
    sysmem: set[int] = field(default_factory=set)  # driver resource handles in system memory
    rt_of_driver: dict[int, int] = field(default_factory=dict)
    locks: dict[int, str] = field(default_factory=dict)  # resource → "async" | "sync"
    discards: dict[int, _Discard] = field(default_factory=dict)  # cookie → discard
    new_instances: dict[int, _Discard] = field(default_factory=dict)  # A1 handle → discard
    draw_seq: dict[int, int] = field(default_factory=dict)  # draw id → DrawPrimitive enter seq
    draw_resources: dict[int, tuple[int, ...]] = field(default_factory=dict)  # id → rt resources
    received: dict[int, None] = field(default_factory=dict)  # draws the driver has, unsubmitted
    async_locked: dict[int, int] = field(default_factory=dict)  # resource → handle LockAsync locked
    queued: dict[int, tuple[int, ...]] = field(default_factory=dict)  # seq → rt resources
    rt_queued: dict[int, int] = field(default_factory=dict)  # rt resource → queued commands
    executing: dict[str, int] = field(default_factory=dict)  # worker thread → seq it runs
    last_seq: int = 0


class Checker:
    """Rule engine over one run. ``subscribe`` it to an engine before the run."""

    def __init__(self) -> None:
        self._devices: dict[str, _DeviceState] = {}
        self._seq = 0
        self._reported: set[tuple[str, str]] = set()
        self.events_seen = 0

    # ---- plumbing --------------------------------------------------------------------------

    def attach(self, engine: Any) -> Checker:
        engine.subscribe(self.on_event)
        return self

    def _dev(self, name: str) -> _DeviceState:
        return self._devices.setdefault(name, _DeviceState())

    def _violate(self, rule: str, message: str, key: str = "", **fields: Any) -> None:
        """Report once per (rule, key): a broken rule repeated in a loop is one finding."""
        k = (rule, key or message)
        if k in self._reported:
            return
        self._reported.add(k)
        current_engine().violation(rule, message, **fields)

    def on_event(self, ev: dict[str, Any]) -> None:
        self._seq += 1
        self.events_seen += 1
        handler = self._HANDLERS.get(ev["event"])
        if handler is not None:
            handler(self, ev)

    # ---- DDI enter/exit ----------------------------------------------------------------------

    def _on_ddi_enter(self, ev: dict[str, Any]) -> None:
        ddi, devname, thread = ev["ddi"], ev.get("device", "?"), ev["thread"]
        if ddi in ("OpenAdapter", "CreateDevice"):
            return
        dev = self._dev(devname)
        call = _Call(ddi, devname, ev, self._seq)
        # LA-1 / UA-1 / RN-7: the async DDIs only when the driver has all three
        if ddi in TRIPLE and not dev.implements >= TRIPLE:
            self._violate(
                "LA-1", f"the runtime called {ddi} but the driver implements only "
                f"{sorted(dev.implements & TRIPLE)} of LockAsync/UnlockAsync/Rename",
                key=ddi, ddi=ddi,
            )
        # MP-1 / LA-3 / UA-5 / MP-2: who else is inside the driver for this device?
        for other_thread, other in dev.inside.items():
            if other_thread == thread:
                continue
            reentrant_pair = ddi in REENTRANT or other.ddi in REENTRANT
            if dev.version < D3D_UMD_REENTRANT_VERSION or not reentrant_pair:
                rule = "LA-3" if reentrant_pair else "MP-1"
                self._violate(
                    rule,
                    f"{thread} entered {ddi} while {other_thread} is inside {other.ddi} on "
                    f"{devname} (DDI version {dev.version:#x}): "
                    + ("reentrant entry is allowed only at >= 0xB" if reentrant_pair
                       else "two threads inside the driver for one device"),
                    key=f"{ddi}/{other.ddi}",
                    threads=[other_thread, thread], ddis=[other.ddi, ddi],
                )
                if rule == "LA-3":
                    self._violate("MP-1", f"two threads inside the driver on {devname}: "
                                  f"{other_thread} in {other.ddi}, {thread} in {ddi}",
                                  key=f"{ddi}/{other.ddi}")
        dev.inside[thread] = call
        if ddi == "LockAsync":
            flags = _int(ev.get("flags", 0))
            rule = lockasync_flag_rule(flags)
            if rule is not None:
                what = {"LA-5": "NoOverwrite and Discard both set",
                        "LA-6": "more than one of RangeValid/AreaValid/BoxValid",
                        "LA-7": "reserved bits set"}[rule]
                self._violate(rule, f"LockAsync flags {flags:#x}: {what}", key=str(flags),
                              flags=flags)
            res = int(ev.get("resource", 0))
            rt_res = dev.rt_of_driver.get(res)
            if flags & _LAF.NoExistingReferences and dev.rt_queued.get(rt_res, 0) > 0:
                self._violate("LA-9", f"the runtime set NoExistingReferences on LockAsync of "
                              f"resource {res:#x} while {dev.rt_queued[rt_res]} queued "
                              "command(s) still reference it", key=f"rtq/{res}", resource=res)
            if res in dev.sysmem and dev.version < D3D_UMD_REENTRANT_VERSION:
                self._violate("LA-4", f"LockAsync on system-memory resource {res:#x} with DDI "
                              f"version {dev.version:#x} < 0xB", key=str(res), resource=res)
        elif ddi == "UnlockAsync":
            res = int(ev.get("resource", 0))
            if dev.locks.get(res) == "sync":
                self._violate("UA-3", f"UnlockAsync of resource {res:#x}, which was locked "
                              "through Lock, not LockAsync (Q-20)", key=str(res), resource=res)
        elif ddi == "Rename":
            self._check_rename(dev, ev, thread)
        elif ddi == "DrawPrimitive":
            draw_id = int(ev.get("draw_id", 0))
            dev.draw_seq[draw_id] = self._seq
            # LK-8: no draw while a resource it reads is locked through Lock
            rts = set(dev.draw_resources.get(draw_id, ()))
            for res, path in dev.locks.items():
                if path == "sync" and dev.rt_of_driver.get(res) in rts:
                    self._violate("LK-8", f"draw {draw_id} reached the driver while resource "
                                  f"{res:#x}, which it reads, is locked through Lock",
                                  key=f"{res}", draw=draw_id, resource=res)

    def _check_rename(self, dev: _DeviceState, ev: dict[str, Any], thread: str) -> None:
        cookie = int(ev.get("cookie", 0))
        res = int(ev.get("resource", 0))
        d = dev.discards.get(cookie)
        if d is None:
            self._violate("RN-2", f"Rename with cookie {cookie:#x}, which no successful Discard "
                          "LockAsync returned", key=str(cookie), cookie=cookie)
            return
        d.renames += 1
        if d.renames > 1:
            self._violate("RN-1", f"Rename called {d.renames} times for cookie {cookie:#x} "
                          "(at most once per successful Discard LockAsync)", key=str(cookie),
                          cookie=cookie)
        if res != d.resource:
            self._violate("RN-6", f"Rename of resource {res:#x} with a cookie LockAsync returned "
                          f"for resource {d.resource:#x}", key=str(cookie), cookie=cookie)
        if not thread.endswith(".worker"):
            self._violate("RN-3", f"Rename on {thread}, not the runtime's worker thread",
                          key=thread)
        if d.renamed_seq is None:
            d.renamed_seq = self._seq

    def _on_ddi_exit(self, ev: dict[str, Any]) -> None:
        ddi, devname, thread = ev["ddi"], ev.get("device", "?"), ev["thread"]
        if ddi == "OpenAdapter":
            return
        dev = self._dev(devname)
        if ddi == "CreateDevice":
            dev.version = int(ev.get("driver_version", 0))
            dev.implements = frozenset(ev.get("implements", ()))
            return
        call = dev.inside.pop(thread, None)
        self._release_queued(dev, thread)
        if call is None:
            return
        hr = _hr(ev)
        enter = call.enter
        self._check_err(call, hr)
        if ddi == "LockAsync":
            self._lockasync_exit(dev, call, ev, hr)
        elif ddi == "UnlockAsync":
            res = int(enter.get("resource", 0))
            self._check_ua4(dev, call, res, hr)
            if hr == 0:
                if dev.locks.get(res) is None:
                    self._violate("UA-3", f"UnlockAsync of resource {res:#x} succeeded without "
                                  "an outstanding LockAsync (must be E_INVALIDARG)",
                                  key=f"ok/{res}", resource=res)
                dev.locks.pop(res, None)
        elif ddi == "Lock" and hr == 0:
            dev.locks[int(enter.get("resource", 0))] = "sync"
            if not any(n == "pfnLockCb" for n, _e, _x in call.callbacks):
                self._violate("LK-6", "Lock succeeded without calling pfnLockCb",
                              key=str(enter.get("resource")))
        elif ddi == "Unlock" and hr == 0:
            dev.locks.pop(int(enter.get("resource", 0)), None)
            if not any(n == "pfnUnlockCb" for n, _e, _x in call.callbacks):
                self._violate("LK-11", "Unlock succeeded without calling pfnUnlockCb",
                              key=str(enter.get("resource")))
        elif ddi == "DrawPrimitive" and hr == 0:
            dev.received[int(enter.get("draw_id", 0))] = None

    def _check_ua4(self, dev: _DeviceState, call: _Call, res: int, hr: int) -> None:
        """UA-4 / LCB-20: after UnlockAsync the driver calls pfnUnlockCb with the handle its
        LockAsync locked — for a discard the new instance, whether or not Rename came first."""
        locked = dev.async_locked.get(res)
        if locked is None:
            return
        tried = [h for n, e, _x in call.callbacks if n == "pfnUnlockCb"
                 for h in e.get("allocations", ())]
        unlocked = [h for n, _e, x in call.callbacks if n == "pfnUnlockCb" and _hr(x) == 0
                    for h in x.get("allocations", ())]
        if tried and locked not in tried:
            self._violate("UA-4", f"UnlockAsync of resource {res:#x} unlocked {tried} but "
                          f"LockAsync had locked allocation {locked:#x} (LCB-20)",
                          key=f"wrong/{res}", resource=res, locked=locked)
            return
        if hr != 0:
            return
        dev.async_locked.pop(res, None)
        if not unlocked:
            self._violate("UA-4", f"UnlockAsync of resource {res:#x} returned S_OK without "
                          "calling pfnUnlockCb (LCB-17)", key=f"none/{res}", resource=res)
        elif locked not in unlocked:
            self._violate("UA-4", f"UnlockAsync of resource {res:#x} unlocked {unlocked} but "
                          f"LockAsync had locked allocation {locked:#x} (LCB-20)",
                          key=f"wrong/{res}", resource=res, locked=locked)

    def _lockasync_exit(self, dev: _DeviceState, call: _Call, ev: dict[str, Any], hr: int
                        ) -> None:
        enter = call.enter
        flags = _int(enter.get("flags", 0))
        res = int(enter.get("resource", 0))
        # LA-11: WASSTILLDRAWING only with Discard
        if hr == _WSD and not flags & _LAF.Discard:
            self._violate("LA-11", f"LockAsync returned D3DDDIERR_WASSTILLDRAWING for flags "
                          f"{flags:#x} without Discard", key=str(res), flags=flags)
        lock_cbs = [(e, x) for n, e, x in call.callbacks if n == "pfnLockCb"]
        # LA-10 / RCB-8: no flush after a failed rename inside LockAsync
        failed_lock = False
        for n, _e, x in call.callbacks:
            if n == "pfnLockCb" and _hr(x) != 0:
                failed_lock = True
            if n == "pfnRenderCb" and failed_lock and flags & _LAF.Discard:
                self._violate("LA-10", "LockAsync flushed its command buffer (pfnRenderCb) after "
                              "a failed Discard pfnLockCb; it must return the failure instead",
                              key=str(res), resource=res)
        if hr != 0:
            return
        dev.locks[res] = "async"
        for _e, x in lock_cbs:
            if _hr(x) == 0:
                dev.async_locked[res] = int(x.get("new_allocation", 0))
        # LA-14: NoOverwrite → pfnLockCb with IgnoreSync
        if flags & _LAF.NoOverwrite and not flags & _LAF.NotifyOnly and not any(
            _int(e.get("flags", 0)) & _CBF.IgnoreSync for e, _ in lock_cbs
        ):
            self._violate("LA-14", "NoOverwrite LockAsync succeeded without a pfnLockCb carrying "
                          "IgnoreSync", key=str(res), resource=res)
        if flags & _LAF.Discard:
            cookie = int(ev.get("cookie", 0))
            new = 0
            for _e, x in lock_cbs:
                if _hr(x) == 0:
                    new = int(x.get("new_allocation", 0))
            d = _Discard(cookie, res, new)
            dev.discards[cookie] = d
            old = 0
            for e, _x in lock_cbs:
                old = int(e.get("allocation", 0))
            if new and new != old:
                dev.new_instances[new] = d

    def _check_err(self, call: _Call, hr: int) -> None:
        """ERR-1 / ERR-3: a DDI propagates the error codes its callbacks returned."""
        cbs = [(n, _hr(x)) for n, _e, x in call.callbacks]
        if not cbs:
            return
        if any(c == _REMOVED for _n, c in cbs) and hr != _REMOVED:
            self._violate("ERR-1", f"{call.ddi} returned {kmd.hresult_name(hr)} after a callback "
                          "returned D3DDDIERR_DEVICEREMOVED (ERR-3: it must pass it on)",
                          key=f"{call.ddi}/removed", ddi=call.ddi)
            return
        last_name, last = cbs[-1]
        if last != 0 and hr == 0 and not (call.ddi == "LockAsync" and last == _WSD):
            self._violate("ERR-1", f"{call.ddi} returned S_OK although its last callback "
                          f"{last_name} failed with {kmd.hresult_name(last)}",
                          key=f"{call.ddi}/{last_name}", ddi=call.ddi, callback=last_name)

    # ---- callbacks ---------------------------------------------------------------------------

    def _on_cb_enter(self, ev: dict[str, Any]) -> None:
        dev = self._dev(ev.get("device", "?"))
        call = dev.inside.get(ev["thread"])
        if call is not None:
            call.cb_open = ev
        cb = ev["cb"]
        if cb == "pfnLockCb":
            flags = _int(ev.get("flags", 0))
            rule = kmd.validate_lock_flags(flags)
            if rule in ("KL-6", "KL-9", "KL-10"):
                self._violate(rule, f"pfnLockCb flags {flags:#x} break {rule}",
                              key=f"{flags}", flags=flags)
            if flags & _CBF.NoExistingReference and call is not None and call.ddi == "LockAsync":
                self._check_la9(dev, call, ev)
        elif cb == "pfnRenderCb":
            self._check_la13(dev, ev)

    def _check_la9(self, dev: _DeviceState, call: _Call, ev: dict[str, Any]) -> None:
        la_flags = _int(call.enter.get("flags", 0))
        res = int(call.enter.get("resource", 0))
        if not la_flags & _LAF.NoExistingReferences:
            self._violate("LA-9", "pfnLockCb carried NoExistingReference although the runtime "
                          "did not set NoExistingReferences", key=f"rt/{res}", resource=res)
            return
        rt_res = dev.rt_of_driver.get(res)
        pending = [d for d in dev.received if rt_res in dev.draw_resources.get(d, ())]
        if pending:
            self._violate("LA-9", f"pfnLockCb carried NoExistingReference while the driver still "
                          f"holds unsubmitted draws {pending[:5]} referencing resource {res:#x}",
                          key=f"drv/{res}", resource=res, draws=pending[:10])

    def _check_la13(self, dev: _DeviceState, ev: dict[str, Any]) -> None:
        for draw_id, handle in ev.get("refs", ()):
            dev.received.pop(draw_id, None)
            d = dev.new_instances.get(handle)
            if d is None:
                continue
            drawn = dev.draw_seq.get(draw_id)
            if drawn is None:
                continue
            if d.renamed_seq is None or drawn < d.renamed_seq:
                self._violate(
                    "LA-13",
                    f"draw {draw_id} reached the driver before Rename(cookie {d.cookie:#x}) but "
                    f"references the renamed allocation {handle:#x}: the driver switched its "
                    "tracking before Rename",
                    key=f"{d.cookie}", draw=draw_id, allocation=handle, cookie=d.cookie,
                )

    def _on_cb_exit(self, ev: dict[str, Any]) -> None:
        dev = self._dev(ev.get("device", "?"))
        call = dev.inside.get(ev["thread"])
        if call is not None:
            call.callbacks.append((ev["cb"], call.cb_open or {}, ev))
            call.cb_open = None
        if ev["cb"] == "pfnRenderCb" and _hr(ev) == _CANT_RENDER_LOCKED:
            self._violate("LA-15", "pfnRenderCb failed with D3DDDIERR_CANTRENDERLOCKEDALLOCATION: "
                          "a NoOverwrite lock succeeded on an allocation that cannot be rendered "
                          "while locked (RCB-5)", key="render", thread=ev["thread"])

    # ---- runtime events ----------------------------------------------------------------------

    def _on_queue_put(self, ev: dict[str, Any]) -> None:
        dev = self._dev(ev["queue"].rsplit(".", 1)[0])
        refs = tuple(int(r) for r in ev.get("refs", ()))
        dev.queued[int(ev["seq"])] = refs
        for r in refs:
            dev.rt_queued[r] = dev.rt_queued.get(r, 0) + 1

    def _on_queue_get(self, ev: dict[str, Any]) -> None:
        dev = self._dev(ev["queue"].rsplit(".", 1)[0])
        seq = int(ev["seq"])
        dev.executing[ev["thread"]] = seq
        # MP-5: batched calls reach the driver in the order the application made them
        if seq < dev.last_seq and not ev.get("ddi", "").startswith("("):
            self._violate("MP-5", f"the worker took command {seq} ({ev.get('ddi')}) after "
                          f"command {dev.last_seq}: batched calls must reach the driver in the "
                          "order the application made them (RN-4)", key=str(seq), seq=seq)
        dev.last_seq = max(dev.last_seq, seq)

    def _release_queued(self, dev: _DeviceState, thread: str) -> None:
        seq = dev.executing.pop(thread, None)
        if seq is None:
            return
        for r in dev.queued.pop(seq, ()):
            dev.rt_queued[r] = dev.rt_queued.get(r, 0) - 1

    def _on_resource(self, ev: dict[str, Any]) -> None:
        dev = self._dev(ev.get("device", "?"))
        res = int(ev.get("resource", 0))
        dev.rt_of_driver[res] = int(ev.get("rt_resource", 0))
        if int(ev.get("pool", 0)) == 2:
            dev.sysmem.add(res)

    def _on_draw(self, ev: dict[str, Any]) -> None:
        dev = self._dev(ev.get("device", "?"))
        dev.draw_resources[int(ev["draw_id"])] = tuple(int(r[0]) for r in ev.get("reads", ()))

    def _on_kmd_lock(self, ev: dict[str, Any]) -> None:
        """KL-21: without DonotWait a lock on a busy allocation waits; with DonotWait it fails at
        once with STATUS_GRAPHICS_ALLOCATION_BUSY and never waits (Discard and honoured
        IgnoreSync|DonotWait excepted, KL-7, KL-8, Q-10)."""
        flags = _int(ev.get("flags", 0))
        if flags & _CBF.Discard or (flags & _CBF.IgnoreSync and flags & _CBF.DonotWait):
            return
        if ev["event"] == "kmd.lock.wait" and flags & _CBF.DonotWait:
            self._violate("KL-21", "a DonotWait lock waited for the GPU instead of failing with "
                          "STATUS_GRAPHICS_ALLOCATION_BUSY", key="donotwait",
                          allocation=ev.get("allocation"))
        if (ev["event"] == "kmd.lock" and ev.get("rule") == "KL-21"
                and not flags & _CBF.DonotWait):
            self._violate("KL-21", "a lock without DonotWait failed as busy instead of waiting",
                          key="wait", allocation=ev.get("allocation"))

    _HANDLERS: ClassVar[dict[str, Any]] = {
        "ddi.enter": _on_ddi_enter,
        "ddi.exit": _on_ddi_exit,
        "cb.enter": _on_cb_enter,
        "cb.exit": _on_cb_exit,
        "rt.resource.create": _on_resource,
        "rt.queue.put": _on_queue_put,
        "rt.queue.get": _on_queue_get,
        "rt.draw": _on_draw,
        "kmd.lock": _on_kmd_lock,
        "kmd.lock.wait": _on_kmd_lock,
    }

    # ---- the data oracle -----------------------------------------------------------------

    def final(self, kernels: Iterable[Any], devices: Iterable[Any]) -> None:
        """End-of-run checks, called inside the run once the scenario finished: the data oracle
        over every draw, and the kernel's own invariants."""
        executed: dict[tuple[str, int], list[Any]] = {}
        dev_of_km: dict[int, str] = {}
        devices = list(devices)
        for d in devices:
            dev_of_km[d.km_device] = d.name
        aborted: set[tuple[str, int]] = set()
        for k in kernels:
            for bad in k.check_invariants():
                self._violate("KMD-INVARIANT", str(bad), key=str(bad))
            for rec in k.dma_records:
                devname = dev_of_km.get(rec.device, "?")
                for c in rec.commands:
                    if c.kind != "draw":
                        continue
                    key = (devname, c.draw_id)
                    if rec.status != "completed":
                        aborted.add(key)
                        continue
                    executed.setdefault(key, []).append(c)
        for d in devices:
            for draw in d.draws:
                key = (d.name, draw.draw_id)
                got = executed.get(key)
                if got is None:
                    if key not in aborted and not d.lost:
                        self._violate("DATA", f"draw {draw.draw_id} on {d.name} never executed "
                                      "on the GPU", key=f"lost/{key}", draw=draw.draw_id)
                    continue
                for i, read in enumerate(draw.reads):
                    if i >= len(got):
                        self._violate("DATA", f"draw {draw.draw_id}: stream {read.stream} was "
                                      "not read by the GPU", key=f"stream/{key}/{i}",
                                      draw=draw.draw_id)
                        break
                    self._compare(d.name, draw.draw_id, read, got[i])

    def _compare(self, devname: str, draw_id: int, read: Any, ex: Any) -> None:
        data = bytes(ex.data or b"")
        n = min(len(data), read.length)
        for off in range(read.length):
            if not read.defined[off]:
                continue
            if off >= n or data[off] != read.expected[off]:
                gpu = data[off] if off < n else None
                self._violate(
                    "DATA",
                    f"draw {draw_id} on {devname}: the GPU read allocation instance "
                    f"{ex.instance:#x} and byte {off} of the draw (offset "
                    f"{read.offset + off} in the buffer) is "
                    f"{'missing' if gpu is None else f'{gpu:#04x}'}, but the application had "
                    f"written {read.expected[off]:#04x} when it issued the draw",
                    key=f"{devname}/{draw_id}/{read.stream}",
                    draw=draw_id, instance=ex.instance, allocation=ex.allocation,
                    first_offset=off,
                )
                return
