"""Mutation tests of ``wddmemu/_checker.py``'s plumbing and threading rules (issue 16): what
``attach`` subscribes to, the DDI enter/exit bookkeeping (who is inside the driver, which command
the worker runs, a lost device), LA-1, the overlap rules MP-1 / LA-3, MP-6 (with MP-5's drain)
and DV-1. Each test drives the checker with synthetic seam events and asserts the exact findings:
rule ids in order, each message word for word and its fields, so that a changed condition, key,
default or message shows. The harness is in ``test_checker_mutants.py``."""

from __future__ import annotations

from typing import Any

import vthreads as vt
from tests.checker.test_checker_mutants import (
    CREATE,
    REMOVED,
    S_OK,
    create,
    ddi,
    found,
    lockcb,
    put,
    rules,
)
from tests.checker.test_checker_mutants_ddi import NOOVERWRITE, R9, R, la, ua
from tests.support.seam import WORKER as W
from tests.support.seam import Events, run_events
from wddmemu._checker import Checker

MP = [("app", "rt.device.create", {"device": "dev0", "mp": True})]


def _enter(thread: str, name: str, **fields: Any) -> Events:
    """A ddi.enter alone, logged on the app thread but naming ``thread`` (a third thread)."""
    return [("app", "ddi.enter", {"ddi": name, "device": "dev0", "thread": thread, **fields})]


def _exit(thread: str, name: str, **fields: Any) -> Events:
    return [("app", "ddi.exit", {"ddi": name, "device": "dev0", "thread": thread, "hr": S_OK,
                                 **fields})]


def _bare(thread: str, event: str, name: str, **fields: Any) -> Events:
    """A device-less ddi event (no ``device`` field)."""
    return [(thread, event, {"ddi": name, **fields})]


def _opened(version: int | None) -> Events:
    x: dict[str, Any] = {"ddi": "OpenAdapter", "device": "adapter", "hr": S_OK}
    if version is not None:
        x["driver_version"] = version
    return [("app", "ddi.exit", x)]


def _get(seq: int, ddi_name: str) -> Events:
    return [(W, "rt.queue.get", {"queue": "dev0.cmdq", "ddi": ddi_name, "seq": seq,
                                 "thread": W})]


# ---- attach / on_event / _violate ------------------------------------------------------------

def test_attach_subscribes_only_to_the_events_it_handles() -> None:
    """The checker names its events to the engine: the others stay unbuilt (no trace)."""
    eng = vt.Engine()
    assert Checker().attach(eng) is not None
    wanted: list[bool] = []

    async def main() -> None:
        wanted.extend(vt.tracing(e) for e in ("ddi.enter", "cb.exit", "rt.queue.get",
                                               "kmd.lock.wait", "rt.present", "kmd.submit"))
    assert eng.run(main, name="app").failure is None
    assert wanted == [True, True, True, True, False, False]


def test_events_seen_counts_the_handled_events_only() -> None:
    """``events_seen`` (the runner's summary) counts each event the checker was given once."""
    checker = Checker()
    evs = [*CREATE, ("app", "rt.present", {"device": "dev0"}), *ddi("app", "Flush")]
    assert run_events(evs, checker) == []
    assert checker.events_seen == 3


def test_a_finding_without_a_key_is_keyed_by_its_message() -> None:
    """_violate: one finding per (rule, device, message) when no key is given."""
    def raise_three(c: Checker) -> None:
        for msg in ("first", "second", "first"):
            c._violate("T-1", msg, where=msg)
    got = [(v.rule, v.message, dict(v.fields)) for v in run_events(CREATE, then=raise_three)]
    assert got == [("T-1", "first", {"where": "first"}), ("T-1", "second", {"where": "second"})]


# ---- _on_device_create / device-less events --------------------------------------------------

def test_a_device_less_event_is_filed_under_device_question_mark() -> None:
    """MP-6 on a device named by no event: rt.device.create and the DDI both file it as "?"."""
    evs = [("app", "rt.device.create", {"mp": True}), *_bare("app", "ddi.enter", "Flush")]
    assert found(evs) == [("MP-6", "the runtime made the batched Flush() on app on an "
                           "application thread: with the MP layer it is queued for the worker",
                           {})]


def test_device_less_enter_and_exit_name_the_same_device() -> None:
    """A device-less DDI that returned is out of the driver: the worker's entry overlaps
    nobody; one still inside is named "?" in MP-1 (after LA-3 and LA-1 of a 0x0 driver)."""
    done = _bare("app", "ddi.enter", "Flush") + _bare("app", "ddi.exit", "Flush", hr=S_OK)
    assert found(done + _bare(W, "ddi.enter", "Flush")) == []
    inside = _bare("app", "ddi.enter", "LockAsync") + _bare(W, "ddi.enter", "Flush")
    assert found(inside) == [
        ("LA-1", "the runtime called LockAsync on app but the driver implements only [] of "
                 "LockAsync/UnlockAsync/Rename", {"ddi": "LockAsync"}),
        ("LA-3", "the runtime let Flush() on dev0.worker in while LockAsync() on app is inside "
                 "the driver (DDI version 0x0): reentrant entry is allowed only at >= 0xB",
         {"threads": ["app", W], "ddis": ["LockAsync", "Flush"]}),
        ("MP-1", "two threads inside the driver on ?: app in LockAsync, dev0.worker in Flush",
         {})]


# ---- _on_ddi_enter ---------------------------------------------------------------------------

def test_openadapter_and_createdevice_never_count_as_inside_the_driver() -> None:
    """MP-1: OpenAdapter's and CreateDevice's enters are not DDIs of a device's driver."""
    opened = (_bare("app", "ddi.enter", "OpenAdapter", device="dev0") + _opened(0xC)
              + _bare("app", "ddi.enter", "CreateDevice", device="dev0") + CREATE)
    assert found(opened + ddi(W, "Flush")) == []


def test_la1_exact_finding_once_per_ddi() -> None:
    """LA-1: LockAsync on a driver with only LockAsync of the three; once per DDI, whatever the
    thread (the worker's also breaks LA-2); a DDI outside the three is never LA-1."""
    only = create(implements=("LockAsync", "Present"))
    evs = only + _enter("app", "LockAsync", resource=7, flags=1) + _enter(
        W, "LockAsync", resource=7, flags=1)
    assert found(evs) == [
        ("LA-1", "the runtime called LockAsync on app but the driver implements only "
                 "['LockAsync'] of LockAsync/UnlockAsync/Rename", {"ddi": "LockAsync"}),
        ("LA-2", "LockAsync(resource 0x7, NoOverwrite) on dev0.worker: LockAsync must be made "
                 "on the application thread, not the runtime's worker", {})]
    assert found(create(implements=()) + ddi("app", "Flush") + ddi("app", "Present")) == []


def test_the_worker_names_the_command_it_runs() -> None:
    """A DDI the worker makes for a queued command names it and its app thread (MP-1)."""
    evs = (CREATE + put(4, "Flush", [], thread="app") + _get(4, "Flush")
           + _enter("app2", "Present") + ddi(W, "Flush"))
    assert found(evs) == [("MP-1", "the runtime let Flush() on dev0.worker (command 4 queued by "
                           "app) in while Present() on app2 is inside the driver (DDI version "
                           "0xc): two threads inside the driver for one device",
                           {"threads": ["app2", W], "ddis": ["Present", "Flush"]})]


def test_a_barrier_the_worker_took_names_no_command() -> None:
    """A barrier is no command: the DDI the worker makes next names none (no KeyError)."""
    evs = (CREATE + put(4, "(barrier)", []) + _get(4, "(barrier)")
           + _enter("app2", "Present") + ddi(W, "Flush"))
    assert [m[:40] for _r, m, _f in found(evs)] == ["the runtime let Flush() on dev0.worker i"]


# ---- _check_overlap --------------------------------------------------------------------------

def test_mp1_after_a_nested_entry_on_the_same_thread() -> None:
    """MP-1: a thread's own earlier entry is skipped, not the end of the search."""
    evs = (CREATE + _enter("app", "Lock", resource=7) + _enter(W, "Flush")
           + _enter("app", "Present"))
    assert rules(evs) == ["MP-1", "MP-1"]
    assert found(evs)[1] == (
        "MP-1", "the runtime let Present() on app in while Flush() on dev0.worker is inside the "
                "driver (DDI version 0xc): two threads inside the driver for one device",
        {"threads": [W, "app"], "ddis": ["Flush", "Present"]})


def test_mp1_past_an_allowed_reentrant_pair() -> None:
    """At 0xC a reentrant pair is allowed (skipped), and the next thread inside still counts."""
    evs = (CREATE + _enter("app", "LockAsync", resource=7, flags=1) + _enter(W, "Flush")
           + _enter("app2", "Present"))
    assert found(evs) == [
        ("MP-1", "the runtime let Present() on app2 in while Flush() on dev0.worker is inside "
                 "the driver (DDI version 0xc): two threads inside the driver for one device",
         {"threads": [W, "app2"], "ddis": ["Flush", "Present"]})]


def test_mp1_is_one_finding_per_pair_of_ddis() -> None:
    """MP-1 is keyed by the two DDIs, not by their resources."""
    def overlap(res: int) -> Events:
        return (_enter("app", "SetStreamSource", resource=res) + ddi(W, "Flush")
                + _exit("app", "SetStreamSource"))
    assert [m for _r, m, _f in found(R9 + overlap(7) + overlap(9))] == [
        "the runtime let Flush() on dev0.worker in while SetStreamSource(vb0@dev0) on app is "
        "inside the "
        "driver (DDI version 0xc): two threads inside the driver for one device"]


def test_la3_exact_findings_once_per_pair_of_ddis() -> None:
    """LA-3 (reentrant entry below 0xB) and its MP-1, keyed by the two DDIs: the same pair on
    swapped threads or another resource is the same finding."""
    old = create(0xA)
    app = la(cbs=[lockcb(1, 0x1C)])
    first = app[:1] + ddi(W, "Flush") + app[1:]
    worker = la(thread=W, res=9, cbs=[lockcb(3, 0x1C)])
    swapped = worker[:1] + ddi("app", "Flush") + worker[1:]
    got = found(old + R9[len(CREATE):] + first + swapped)  # vb0, vb1 on a 0xA driver
    assert got == [
        ("LA-3", "the runtime let Flush() on dev0.worker in while LockAsync(vb0@dev0, "
                 "NoOverwrite) on app is inside the driver (DDI version 0xa): reentrant entry "
                 "is allowed only at >= 0xB",
         {"threads": ["app", W], "ddis": ["LockAsync", "Flush"]}),
        ("MP-1", "two threads inside the driver on dev0: app in LockAsync, dev0.worker in "
                 "Flush", {}),
        ("LA-2", "LockAsync(vb1@dev0, NoOverwrite) on dev0.worker: LockAsync must be made on "
                 "the application thread, not the runtime's worker", {})]


# ---- _check_thread (MP-6, MP-5's drain) ------------------------------------------------------

def test_mp6_batched_on_the_app_thread_exact_and_once_per_ddi() -> None:
    """MP-6: a batched DDI on the app thread, one finding per DDI whatever its resource."""
    evs = R9 + MP + ddi("app", "DestroyResource", resource=7) + ddi(
        "app", "DestroyResource", resource=9)
    assert found(evs) == [("MP-6", "the runtime made the batched DestroyResource(vb0@dev0) on "
                           "app on an application thread: with the MP layer it is queued for "
                           "the worker", {})]


def test_mp6_information_returning_ddi_on_the_worker() -> None:
    """MP-6: CreateResource on the worker, one finding per DDI whatever its resource."""
    evs = R9 + MP + ddi(W, "CreateResource", resource=7) + ddi(W, "CreateResource", resource=9)
    assert found(evs) == [("MP-6", "the runtime made CreateResource(vb0@dev0) on dev0.worker on "
                           "its worker: information-returning DDIs run on the application "
                           "thread", {})]


def test_mp6_without_a_drain_lists_five_commands_once_per_ddi() -> None:
    """MP-5 / MP-6: CreateResource with commands queued; the message lists the first five;
    a barrier is no command; another resource or queue is still the one finding."""
    queued = [e for s in range(1, 7) for e in put(s, "DrawPrimitive", [])]
    evs = (R9 + MP + put(9, "(barrier)", []) + queued + ddi("app", "CreateResource", resource=7)
           + put(10, "Flush", []) + ddi("app", "CreateResource", resource=9))
    assert found(evs) == [("MP-6", "the runtime made CreateResource(vb0@dev0) on app without "
                           "draining its queue first (commands [1, 2, 3, 4, 5] still queued, "
                           "MP-5)", {})]
    assert found(CREATE + MP + put(9, "(barrier)", []) + ddi("app", "CreateResource")) == []


# ---- _on_ddi_exit ----------------------------------------------------------------------------

def test_an_exit_with_no_enter_still_ends_the_command_the_worker_ran() -> None:
    """The worker's exit of a command whose enter the checker never saw releases it: a
    CreateResource after it finds the queue drained (MP-6 not raised)."""
    evs = CREATE + MP + put(1, "DrawPrimitive", []) + _get(1, "DrawPrimitive")
    exit_only = [(W, "ddi.exit", {"ddi": "DrawPrimitive", "device": "dev0", "hr": S_OK})]
    assert found(evs + exit_only + ddi("app", "CreateResource")) == []
    assert rules(evs + ddi("app", "CreateResource")) == ["MP-6"]


def test_openadapter_without_a_version_reported_zero() -> None:
    """DV-1: an OpenAdapter exit with no DriverVersion reported 0."""
    assert found(_opened(None) + create(0)) == []
    assert [m for _r, m, _f in found(_opened(None) + create(1))] == [
        "the runtime created dev0 with DDI version 0x1, but the driver's OpenAdapter reported "
        "0x0 in D3DDDIARG_OPENADAPTER.DriverVersion"]


def test_a_device_removed_ddi_marks_the_device_lost() -> None:
    """LCB-17 is not judged on a lost device: a DDI returned D3DDDIERR_DEVICEREMOVED."""
    leak = R + NOOVERWRITE + ua()  # allocation 1 stays locked through pfnLockCb
    assert rules(leak + ddi("app", "DestroyDevice")) == ["LCB-17"]
    assert found(leak + ddi("app", "Flush", hr=REMOVED) + ddi("app", "DestroyDevice")) == []


# ---- _create_device_exit (DV-1) --------------------------------------------------------------

def test_createdevice_without_a_version_or_implements() -> None:
    """A CreateDevice exit without fields: version 0, nothing implemented (LA-1 on
    LockAsync); OpenAdapter reported 0, so no DV-1."""
    bare = [("app", "ddi.exit", {"ddi": "CreateDevice", "device": "dev0", "hr": S_OK})]
    assert found(_opened(0) + bare + NOOVERWRITE) == [
        ("LA-1", "the runtime called LockAsync on app but the driver implements only [] of "
                 "LockAsync/UnlockAsync/Rename", {"ddi": "LockAsync"})]
    assert found(_opened(0) + bare) == []


def test_dv1_exact_and_once_per_device() -> None:
    """DV-1: the version the device was created with against the one OpenAdapter reported;
    one finding per device, whatever version the next CreateDevice claims."""
    assert found(_opened(0xB) + create(0xC) + create(0xD)) == [
        ("DV-1", "the runtime created dev0 with DDI version 0xc, but the driver's OpenAdapter "
                 "reported 0xb in D3DDDIARG_OPENADAPTER.DriverVersion", {})]
