"""The contract checker: watches a run's event stream and reports every broken rule by its id.

It is a subscriber of the engine (``Engine.subscribe``): it sees exactly the events the trace
would hold — DDI and callback enter/exit with their arguments and results (``ddi.*``, ``cb.*``,
logged by the runtime at the seams), the runtime's own events (``rt.*``), kernel events
(``kmd.*``) — in order, whether or not a trace file is written. It treats the driver as a black
box: every check is made from what crossed a seam, so a user's own driver is checked exactly like
the reference one, which is the point: a user's driver does not carry the reference driver's
guards, so the checker alone judges it.

Each check cites the rule it enforces; ``docs/checker.md`` has the full table (every rule id of
the reference → checked where, or why not). The rule families live in mixins:
:mod:`wddmemu._checker_ddi` (LA, UA, RN, LK), :mod:`wddmemu._checker_cb` (LCB, RCB, ERR, KL)
and :mod:`wddmemu._checker_data` (the **data oracle**, run at the end of a scenario by
:meth:`Checker.final`: for every draw, the bytes the GPU read from each referenced allocation
instance must equal what the application had written when it issued the draw). This module
holds the plumbing, the threading rules (MP-1, LA-3, MP-5, MP-6) and the runtime's events.

A finding names the DDI and the thread that made the wrong decision, decodes flag words and
codes by name and names handles (``vb0@dev0 inst 2``), so it can be read without the trace.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, ClassVar

from umd.ddi import D3D_UMD_REENTRANT_VERSION
from vthreads import current_engine

from ._checker_cb import CallbackRules
from ._checker_data import DataOracle
from ._checker_ddi import DdiRules
from ._checker_state import (
    APP_AFTER_DRAIN,
    BATCHED,
    DESTROYED,
    REMOVED,
    Call,
    DeviceState,
    DrawInfo,
    as_int,
    hr_of,
    is_worker,
)

REENTRANT = frozenset({"LockAsync", "UnlockAsync"})
TRIPLE = frozenset({"LockAsync", "UnlockAsync", "Rename"})


class Checker(DdiRules, CallbackRules, DataOracle):
    """Rule engine over one run. ``subscribe`` it to an engine before the run."""

    def __init__(self) -> None:
        self._devices: dict[str, DeviceState] = {}
        self._adapter_version: dict[str, int] = {}
        self._seq = 0
        self._reported: set[tuple[str, str | None, Hashable]] = set()
        self._device: str | None = None  # the device the event last handled names
        self.events_seen = 0
        self._watched = None  # the data oracle's devices, once it watches a kernel's DMA
        self._kernel = None  # that kernel: asked where an allocation may live (LA-15)
        self._held = []  # the data oracle's findings, reported by final()

    # ---- plumbing --------------------------------------------------------------------------

    def attach(self, engine: Any) -> Checker:
        # only the names it handles: every other event stays unbuilt unless a trace is written
        engine.subscribe(self.on_event, events=self._HANDLERS)
        return self

    def _dev(self, name: str) -> DeviceState:
        dev = self._devices.get(name)
        if dev is None:
            dev = self._devices[name] = DeviceState(name=name)
        return dev

    def _violate(self, rule: str, message: str, key: Hashable = None, **fields: Any) -> None:
        """Report once per (rule, device, key): a broken rule repeated in a loop is one
        finding. ``key`` is the value itself (an int, a tuple), never its decimal text: a
        driver's int may have more digits than ``str`` converts (issue 14).

        The device is the one the event being handled names. Keys name objects by their
        handles, and the runtime numbers resources and draws per device (every device's first
        resource is 0x100), so without it a rule each of two devices broke on its own resource
        0x100 would be one finding, the second device's bug hidden behind the first's. The
        end-of-run judgements, raised after the last event, carry their device in ``key``."""
        k = (rule, self._device, message if key is None else key)
        if k in self._reported:
            return
        self._reported.add(k)
        current_engine().violation(rule, message, **fields)

    def on_event(self, ev: dict[str, Any]) -> None:
        self._seq += 1
        self.events_seen += 1
        handler = self._HANDLERS.get(ev["event"])
        if handler is not None:
            self._device = ev.get("device")
            handler(self, ev)

    # ---- DDI enter/exit ----------------------------------------------------------------------

    def _on_ddi_enter(self, ev: dict[str, Any]) -> None:
        ddi, devname, thread = ev["ddi"], ev.get("device", "?"), ev["thread"]
        if ddi in ("OpenAdapter", "CreateDevice"):
            return
        dev = self._dev(devname)
        call = Call(ddi, devname, thread, ev, self._seq)
        seq = dev.executing.get(thread)
        if seq is not None and seq in dev.queued:
            call.queued = (seq, dev.queued[seq][1])
        if ddi in TRIPLE and not dev.implements >= TRIPLE:
            # LA-1 / UA-1 / RN-7: the async DDIs only when the driver has all three
            self._violate(
                "LA-1", f"the runtime called {ddi} on {thread} but the driver implements only "
                f"{sorted(dev.implements & TRIPLE)} of LockAsync/UnlockAsync/Rename",
                key=ddi, ddi=ddi,
            )
        self._check_overlap(dev, call)
        self._check_thread(dev, call)
        dev.inside[thread] = call
        enter = self._ENTER.get(ddi)
        if enter is not None:
            enter(self, dev, call)

    def _check_overlap(self, dev: DeviceState, call: Call) -> None:
        """MP-1 / LA-3 / UA-5 / MP-2: who else is inside the driver for this device?"""
        for other_thread, other in dev.inside.items():
            if other_thread == call.thread:
                continue
            reentrant_pair = call.ddi in REENTRANT or other.ddi in REENTRANT
            if dev.version >= D3D_UMD_REENTRANT_VERSION and reentrant_pair:
                continue
            rule = "LA-3" if reentrant_pair else "MP-1"
            self._violate(
                rule,
                f"the runtime let {dev.describe(call)} in while {dev.describe(other)} is inside "
                f"the driver (DDI version {dev.version:#x}): "
                + ("reentrant entry is allowed only at >= 0xB" if reentrant_pair
                   else "two threads inside the driver for one device"),
                key=f"{call.ddi}/{other.ddi}",
                threads=[other_thread, call.thread], ddis=[other.ddi, call.ddi],
            )
            if rule == "LA-3":
                self._violate("MP-1", f"two threads inside the driver on {dev.name}: "
                              f"{other_thread} in {other.ddi}, {call.thread} in {call.ddi}",
                              key=f"{call.ddi}/{other.ddi}")

    def _check_thread(self, dev: DeviceState, call: Call) -> None:
        """MP-6: with the MP layer, batched DDIs run on the worker; information-returning ones
        on an application thread once the queue is drained (MP-5)."""
        if not dev.mp:
            return
        worker = is_worker(call.thread)
        if call.ddi in BATCHED and not worker:
            self._violate("MP-6", f"the runtime made the batched {dev.describe(call)} on an "
                          "application thread: with the MP layer it is queued for the worker",
                          key=f"{call.ddi}/app")
        elif call.ddi in APP_AFTER_DRAIN:
            pending = sorted(s for s, (ddi, _t, _r) in dev.queued.items()
                             if not ddi.startswith("("))
            if worker:
                self._violate("MP-6", f"the runtime made {dev.describe(call)} on its worker: "
                              "information-returning DDIs run on the application thread",
                              key=f"{call.ddi}/worker")
            elif pending:
                self._violate("MP-6", f"the runtime made {dev.describe(call)} without draining "
                              f"its queue first (commands {pending[:5]} still queued, MP-5)",
                              key=f"{call.ddi}/drain")

    def _on_ddi_exit(self, ev: dict[str, Any]) -> None:
        ddi, devname, thread = ev["ddi"], ev.get("device", "?"), ev["thread"]
        if ddi == "OpenAdapter":
            self._adapter_version[devname] = as_int(ev.get("driver_version", 0))
            return
        dev = self._dev(devname)
        if ddi == "CreateDevice":
            self._create_device_exit(dev, ev)
            return
        call = dev.inside.pop(thread, None)
        if call is None:
            self._release_queued(dev, thread)
            return
        hr = hr_of(ev)
        if hr == REMOVED:
            dev.lost = True
        self._check_err(dev, call, hr)
        exit_ = self._EXIT.get(ddi)
        if exit_ is not None:
            exit_(self, dev, call, ev, hr)
        self._release_queued(dev, thread)

    def _create_device_exit(self, dev: DeviceState, ev: dict[str, Any]) -> None:
        """DV-1: the version the runtime acts on is the DriverVersion OpenAdapter returned."""
        dev.version = as_int(ev.get("driver_version", 0))
        dev.implements = frozenset(ev.get("implements", ()))
        reported = [v for v in self._adapter_version.values()]
        if reported and dev.version not in reported:
            self._violate("DV-1", f"the runtime created {dev.name} with DDI version "
                          f"{dev.version:#x}, but the driver's OpenAdapter reported "
                          f"{reported[-1]:#x} in D3DDDIARG_OPENADAPTER.DriverVersion",
                          key=dev.name)

    # ---- per-DDI hooks (dispatch tables below) --------------------------------------------

    def _draw_enter(self, dev: DeviceState, call: Call) -> None:
        """LK-8: no draw reaches the driver while a resource it reads is locked through Lock;
        and remember which instance each resource must be drawn from now (RN-4)."""
        draw_id = as_int(call.enter.get("draw_id", 0))
        dev.max_draw = max(dev.max_draw, draw_id)
        info = dev.draws.setdefault(draw_id, DrawInfo())
        info.thread, info.seq = call.thread, call.seq
        info.expect = dict(dev.bound)
        rts = set(dev.draw_resources.get(draw_id, ()))
        for key, held in dev.held.items():
            if held.path == "sync" and dev.rt_of_driver.get(key[0]) in rts:
                self._violate("LK-8", f"the runtime passed {dev.describe(call)} to the driver "
                              f"while {dev.key_name(key)}, which it reads, is locked through "
                              f"Lock ({held.made_by})", key=f"{key}", draw=draw_id,
                              resource=key[0])

    def _draw_exit(self, dev: DeviceState, call: Call, ev: dict[str, Any], hr: int) -> None:
        """A draw the driver accepted is its unsubmitted draw (LA-9, LCB-7) until a pfnRenderCb
        carries it — unless one inside this DrawPrimitive already has."""
        draw_id = as_int(call.enter.get("draw_id", 0))
        info = dev.draws.setdefault(draw_id, DrawInfo())
        info.hr = hr
        if hr == 0 and not info.submitted_by:
            dev.received[draw_id] = None

    def _la_exit(self, dev: DeviceState, call: Call, ev: dict[str, Any], hr: int) -> None:
        self._lockasync_exit(dev, call, ev, hr)

    def _ua_exit(self, dev: DeviceState, call: Call, ev: dict[str, Any], hr: int) -> None:
        self._unlockasync_exit(dev, call, hr)

    def _rn_exit(self, dev: DeviceState, call: Call, ev: dict[str, Any], hr: int) -> None:
        self._rename_exit(dev, call, hr)

    def _lk_exit(self, dev: DeviceState, call: Call, ev: dict[str, Any], hr: int) -> None:
        self._lock_exit(dev, call, ev, hr)

    def _ul_exit(self, dev: DeviceState, call: Call, ev: dict[str, Any], hr: int) -> None:
        self._unlock_exit(dev, call, hr)

    def _cr_exit(self, dev: DeviceState, call: Call, ev: dict[str, Any], hr: int) -> None:
        dev.last_allocated = list(call.allocated) if hr == 0 else []

    def _dr_exit(self, dev: DeviceState, call: Call, ev: dict[str, Any], hr: int) -> None:
        """A destroyed resource's kernel locks go with it (the kernel unlocks implicitly)."""
        if hr != 0:
            return
        res = call.key[0]
        for h in [h for h, (key, _i) in dev.owner.items() if key[0] == res]:
            dev.kernel_locks.pop(h, None)
            dev.kept_by.pop(h, None)
        for key in [k for k in dev.held if k[0] == res]:
            del dev.held[key]

    def _dd_exit(self, dev: DeviceState, call: Call, ev: dict[str, Any], hr: int) -> None:
        self._destroy_device_exit(dev, call)

    _ENTER: ClassVar[dict[str, Any]] = {
        "LockAsync": DdiRules._lockasync_enter,
        "UnlockAsync": DdiRules._unlockasync_enter,
        "Rename": DdiRules._rename_enter,
        "Lock": DdiRules._lock_enter,
        "DrawPrimitive": _draw_enter,
    }
    _EXIT: ClassVar[dict[str, Any]] = {
        "LockAsync": _la_exit,
        "UnlockAsync": _ua_exit,
        "Rename": _rn_exit,
        "Lock": _lk_exit,
        "Unlock": _ul_exit,
        "DrawPrimitive": _draw_exit,
        "CreateResource": _cr_exit,
        "DestroyResource": _dr_exit,
        "DestroyDevice": _dd_exit,
    }

    # ---- callbacks ---------------------------------------------------------------------------

    def _on_cb_enter(self, ev: dict[str, Any]) -> None:
        dev = self._dev(ev.get("device", "?"))
        call = dev.inside.get(ev["thread"])
        if call is not None:
            call.cb_open = ev
        cb = ev["cb"]
        if cb == "pfnLockCb":
            self._lockcb_enter(dev, call, ev)
        elif cb == "pfnUnlockCb":
            self._unlockcb_enter(dev, call, ev)
        elif cb == "pfnRenderCb":
            self._rendercb_enter(dev, call, ev)

    def _on_cb_exit(self, ev: dict[str, Any]) -> None:
        dev = self._dev(ev.get("device", "?"))
        call = dev.inside.get(ev["thread"])
        if call is not None:
            call.callbacks.append((ev["cb"], call.cb_open or {}, ev))
            call.cb_open = None
        cb = ev["cb"]
        if ev.get("invalid") == DESTROYED:
            self._after_destroy(dev, ev)
            return
        if hr_of(ev) == REMOVED:
            dev.lost = True
        if cb == "pfnLockCb":
            self._lockcb_exit(dev, call, ev)
        elif cb == "pfnUnlockCb":
            self._unlockcb_exit(dev, ev)
        elif cb == "pfnRenderCb":
            self._rendercb_exit(dev, ev)
        elif cb == "pfnAllocateCb" and call is not None and hr_of(ev) == 0:
            call.allocated = [as_int(h) for h in ev.get("allocations", ())]

    # ---- runtime events ----------------------------------------------------------------------

    def _on_device_create(self, ev: dict[str, Any]) -> None:
        self._dev(ev.get("device", "?")).mp = bool(ev.get("mp"))

    def _on_queue_put(self, ev: dict[str, Any]) -> None:
        dev = self._dev(ev["queue"].rsplit(".", 1)[0])
        refs = tuple(int(r) for r in ev.get("refs", ()))
        dev.queued[int(ev["seq"])] = (str(ev.get("ddi", "")), str(ev.get("thread", "?")), refs)
        for r in refs:
            dev.rt_queued[r] = dev.rt_queued.get(r, 0) + 1

    def _on_queue_get(self, ev: dict[str, Any]) -> None:
        dev = self._dev(ev["queue"].rsplit(".", 1)[0])
        seq = int(ev["seq"])
        dev.executing[ev["thread"]] = seq
        ddi = str(ev.get("ddi", ""))
        if ddi.startswith("("):
            dev.queued.pop(seq, None)  # a barrier or stop: no DDI follows
        # MP-5: batched calls reach the driver in the order the application made them
        elif seq < dev.last_seq:
            self._violate("MP-5", f"the worker took command {seq} ({ddi}) after "
                          f"command {dev.last_seq}: batched calls must reach the driver in the "
                          "order the application made them (RN-4)", key=seq, seq=seq)
        dev.last_seq = max(dev.last_seq, seq)

    def _release_queued(self, dev: DeviceState, thread: str) -> None:
        seq = dev.executing.pop(thread, None)
        if seq is None:
            return
        _ddi, _t, refs = dev.queued.pop(seq, ("", "", ()))
        for r in refs:
            dev.rt_queued[r] = dev.rt_queued.get(r, 0) - 1

    def _on_resource(self, ev: dict[str, Any]) -> None:
        dev = self._dev(ev.get("device", "?"))
        dev.add_resource(int(ev.get("resource", 0)), int(ev.get("rt_resource", 0)),
                         str(ev.get("kind", "res")), int(ev.get("pool", 0)) == 2,
                         bool(ev.get("dynamic")))

    def _on_draw(self, ev: dict[str, Any]) -> None:
        dev = self._dev(ev.get("device", "?"))
        draw_id = int(ev["draw_id"])
        dev.max_draw = max(dev.max_draw, draw_id)
        dev.draw_resources[draw_id] = tuple(int(r[0]) for r in ev.get("reads", ()))

    def _on_kmd_tdr(self, ev: dict[str, Any]) -> None:
        """TDR-1, against the driver: a TDR no injected fault explains (no ``--inject tdr@…``,
        no ``inject_hang``: the kernel's ``unexplained_tdrs``) is a DMA buffer whose own
        commands kept the engine busy past the timeout, and only the driver builds those.
        Judged as it happens, not at the end: the app's next call fails with DEVICEREMOVED,
        and a scenario may end there. The run went on "clean" and nothing said why (sweep G
        D2)."""
        fence, kernel = ev.get("fence"), self._kernel
        if kernel is None or fence not in kernel.unexplained_tdrs:
            return
        self._violate("TDR-1", f"the GPU ran fence {fence} past the "
                      f"{as_int(ev.get('timeout', 0)) / 1e9:g} s TDR timeout with no fault "
                      "injected: a command buffer the driver submitted kept the engine busy "
                      "that long, and the kernel reset the adapter and removed its devices "
                      "(TDR-10)", key=("tdr", fence), fence=fence)

    _HANDLERS: ClassVar[dict[str, Any]] = {
        "ddi.enter": _on_ddi_enter,
        "ddi.exit": _on_ddi_exit,
        "cb.enter": _on_cb_enter,
        "cb.exit": _on_cb_exit,
        "rt.device.create": _on_device_create,
        "rt.resource.create": _on_resource,
        "rt.queue.put": _on_queue_put,
        "rt.queue.get": _on_queue_get,
        "rt.draw": _on_draw,
        "rt.nooverwrite.overwrite": DataOracle._on_nooverwrite_overwrite,
        "kmd.lock": CallbackRules._on_kmd_lock,
        "kmd.lock.wait": CallbackRules._on_kmd_lock,
        "kmd.tdr": _on_kmd_tdr,
    }
