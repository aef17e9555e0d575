"""Mutation tests of ``wddmemu/_checker_data.py`` (issue 16): the data oracle (``DATA``,
``KMD-INVARIANT``, ``APP-NOOVERWRITE``; docs/checker.md). Synthetic seam events build the
checker's picture of the device; the draws' snapshots are the runtime's own
(``runtime/_oracle.py:DrawSnapshots``), the DMA buffers the GPU ran are ``kmd.DmaRecord``s, and
``Checker.final`` runs inside the run, as the runner calls it. Each test asserts the exact
findings: rule ids in order, messages word for word, fields."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import kmd
from runtime import DrawRecord
from runtime._oracle import DrawSnapshots, StreamRead
from tests.checker.test_checker_mutants import (
    CREATE,
    E_OUTOFMEMORY,
    RT,
    S_OK,
    Events,
    W,
    ddi,
    found,
    lockcb,
    resource,
    unlockcb,
)
from tests.checker.test_checker_mutants_ddi import discard, lk, rename, ua, ul
from tests.support.seam import run_events
from wddmemu._checker import Checker

R = CREATE + resource()  # vb0@dev0: resource 7 (runtime 0x1000), allocation 1 (inst 0)
FLUSH = "Flush() on dev0.worker"
CREATED = "the GPU read vb0@dev0 inst 0 (0x1); made by CreateResource(vb0@dev0)"
UNBOUND = "no Rename or renaming Lock had bound another instance when the draw reached the driver"
ENCODED = "draw encoded by DrawPrimitive on dev0.worker"


@dataclass
class Dev:
    """The runtime device as the data oracle reads it: name, kernel handle, snapshots, lost."""

    name: str = "dev0"
    km_device: int = 0x10
    lost: bool = False
    snapshots: DrawSnapshots = field(init=False)

    def __post_init__(self) -> None:
        self.snapshots = DrawSnapshots(self.name)

    def issue(self, draw_id: int, *reads: StreamRead, thread: str = "app") -> Dev:
        """``thread`` issued draw ``draw_id`` reading ``reads`` (its snapshot)."""
        self.snapshots.pending[draw_id] = DrawRecord(draw_id, thread, 0, list(reads))
        return self


@dataclass
class Kernel:
    """The kernel as the data oracle reads it: kept DMA records, removals, invariants."""

    dma_records: list[kmd.DmaRecord] = field(default_factory=list)
    device_removals: list[int] = field(default_factory=list)
    invariants: list[str] = field(default_factory=list)
    watchers: list[tuple[Any, bool]] = field(default_factory=list)

    def check_invariants(self) -> list[str]:
        return list(self.invariants)

    def watch_dma(self, callback: Any, keep_records: bool = True) -> None:
        self.watchers.append((callback, keep_records))


def read(expected: bytes, defined: bytes | None = None, stream: int = 0,
         offset: int = 16) -> StreamRead:
    """Stream ``stream`` of a draw: ``expected`` at ``offset`` of vb0@dev0."""
    return StreamRead(stream, RT, offset, len(expected), expected,
                      b"\x01" * len(expected) if defined is None else defined)


def cmd(draw_id: int, data: bytes | None, instance: int | None = 1,
        allocation: int | None = 1) -> kmd.ExecRecord:
    return kmd.ExecRecord(0, "draw", draw_id, 0, allocation, instance, 0, 16,
                          len(data or b""), data, "", 0)


def dma(*commands: kmd.ExecRecord, device: int = 0x10, status: str = "completed",
        dropped: tuple[int, ...] = ()) -> kmd.DmaRecord:
    return kmd.DmaRecord(1, device, 0, status, 0, 0, 0, tuple(commands), dropped)


def judged(events: Events, devices: list[Dev], kernels: list[Kernel] | None = None,
           watch: list[kmd.DmaRecord] | None = None) -> list[tuple[str, str, dict[str, Any]]]:
    """(rule, message, fields) of every finding: ``events`` logged, then — when ``watch`` is
    given — the checker watching the first kernel gets those DMA buffers as they finish, and
    ``Checker.final`` runs over ``kernels`` (one empty kernel by default) and ``devices``."""
    ks = [Kernel()] if kernels is None else kernels

    def end(chk: Checker) -> None:
        if watch is not None:
            chk.watch_dma(ks[0], devices)
            for rec in watch:
                chk.on_dma(rec)
        chk.final(ks, devices)

    return [(v.rule, v.message, dict(v.fields)) for v in run_events(events, then=end)]


def draw(draw_id: int, handle: int = 1, thread: str = W) -> Events:
    """rt.draw of vb0@dev0, DrawPrimitive, then a Flush whose pfnRenderCb carries the draw
    with ``handle``."""
    return [("app", "rt.draw", {"device": "dev0", "draw_id": draw_id, "reads": [[RT, 16, 4]]}),
            *ddi(thread, "DrawPrimitive", draw_id=draw_id),
            *ddi(thread, "Flush", cbs=[("pfnRenderCb", {"allocations": [handle],
                                                        "refs": [[draw_id, handle]]},
                                        {"hr": S_OK})])]


def bad_byte(draw_id: int, off: int, got: str, want: str, explain: str, at: int = 16,
             dev: str = "dev0") -> str:
    return (f"draw {draw_id} on {dev}: byte {off} of the draw (offset {at + off} in the "
            f"buffer) is {got}, but the application had written {want} when it issued the "
            f"draw — {explain}")


def fields(draw_id: int, off: int, instance: int | None = 1,
           allocation: int | None = 1) -> dict[str, Any]:
    return {"draw": draw_id, "instance": instance, "allocation": allocation,
            "first_offset": off}


# ---- the comparison --------------------------------------------------------------------------

def test_the_first_wrong_defined_byte_of_each_stream_is_the_finding() -> None:
    """DATA: only bytes the application defined are compared; the first one the GPU read
    otherwise is reported, with its offset in the draw and in the buffer."""
    dev = Dev().issue(1, read(b"\x01\x02\x03\x04", defined=b"\x00\x01\x01\x01"))
    rec = dma(cmd(1, b"\x09\x02\x07\x00"))
    full = f"{CREATED}; {UNBOUND}; {ENCODED}; submitted by {FLUSH}"
    assert judged(R + draw(1), [dev], [Kernel([rec])]) == [
        ("DATA", bad_byte(1, 2, "0x07", "0x03", full), fields(1, 2))]
    # the same bytes, all right: byte 0 differs but the application never defined it
    dev = Dev().issue(1, read(b"\x01\x02\x03\x04", defined=b"\x00\x01\x01\x01"))
    assert judged(R + draw(1), [dev], [Kernel([dma(cmd(1, b"\x09\x02\x03\x04"))])]) == []


def test_a_short_read_is_missing_from_the_first_byte_the_gpu_did_not_read() -> None:
    """DATA: the GPU read fewer bytes than the draw references (or none at all, no data)."""
    full = f"{CREATED}; {UNBOUND}; {ENCODED}; submitted by {FLUSH}"
    for data, off in [(b"\x01\x02", 2), (b"", 0), (None, 0)]:
        dev = Dev().issue(1, read(b"\x01\x02\x03"))
        assert judged(R + draw(1), [dev], [Kernel([dma(cmd(1, data))])]) == [
            ("DATA", bad_byte(1, off, "missing", f"{off + 1:#04x}", full), fields(1, off))]
    # more bytes than the draw references: the rest is not the draw's
    dev = Dev().issue(1, read(b"\x01\x02"))
    assert judged(R + draw(1), [dev], [Kernel([dma(cmd(1, b"\x01\x02\x09"))])]) == []


def test_each_stream_is_judged_and_reported_once() -> None:
    """DATA: one finding per stream of a draw (its first wrong byte); the streams in order. A
    second snapshot of the same stream number is the same finding (keyed by the stream)."""
    dev = Dev().issue(1, read(b"\x01\x02\x03"), read(b"\x04\x05", stream=1, offset=0),
                      read(b"\x06", stream=1, offset=8))
    rec = dma(cmd(1, b"\x01\x02\x00"), cmd(1, b"\x00\x00"), cmd(1, b"\x00"))
    full = f"{CREATED}; {UNBOUND}; {ENCODED}; submitted by {FLUSH}"
    assert judged(R + draw(1), [dev], [Kernel([rec])]) == [
        ("DATA", bad_byte(1, 2, "0x00", "0x03", full), fields(1, 2)),
        ("DATA", bad_byte(1, 0, "0x00", "0x04", full, at=0), fields(1, 0))]


def test_a_stream_the_driver_did_not_encode() -> None:
    """DATA: a draw the GPU executed for fewer streams than it reads: the first stream it did
    not read is the finding (the later ones are not reported), after the streams it read, and
    the message says what became of the draw."""
    dev = Dev().issue(1, read(b"\x01"), read(b"\x02", stream=1), read(b"\x03", stream=2))
    rec = dma(cmd(1, b"\x00"))
    assert judged(R + draw(1), [dev], [Kernel([rec])]) == [
        ("DATA", bad_byte(1, 0, "0x00", "0x01",
                          f"{CREATED}; {UNBOUND}; {ENCODED}; submitted by {FLUSH}"),
         fields(1, 0)),
        ("DATA", "draw 1 on dev0: stream 1 was not read by the GPU (the driver encoded 1 of 3 "
         f"streams; it was submitted by {FLUSH})", {"draw": 1})]
    dev = Dev().issue(1, read(b"\x01"), read(b"\x02", stream=1))
    assert judged(R + draw(1), [dev], [Kernel([dma(cmd(1, b"\x01"))])]) == [
        ("DATA", "draw 1 on dev0: stream 1 was not read by the GPU (the driver encoded 1 of 2 "
         f"streams; it was submitted by {FLUSH})", {"draw": 1})]


def never(draw_id: int, fate: str, thread: str = "app", dev: str = "dev0"
          ) -> tuple[str, str, dict[str, Any]]:
    return ("DATA", f"draw {draw_id} on {dev} (issued by {thread}) never executed on the GPU: "
            f"{fate}", {"draw": draw_id})


def test_a_draw_that_never_executed_says_what_became_of_it() -> None:
    """DATA (never executed): the driver never received it, it never returned, refused it,
    dropped it after S_OK, or submitted it (and the GPU still did not run it)."""
    enter = [("app", "rt.draw", {"device": "dev0", "draw_id": 2, "reads": [[RT, 16, 1]]}),
             (W, "ddi.enter", {"ddi": "DrawPrimitive", "device": "dev0", "draw_id": 2})]
    cases = [
        (R, "the driver never received its DrawPrimitive"),
        (R + enter, "DrawPrimitive on dev0.worker never returned"),
        (R + ddi(W, "DrawPrimitive", hr=E_OUTOFMEMORY, draw_id=2),
         "DrawPrimitive on dev0.worker returned E_OUTOFMEMORY"),
        (R + ddi(W, "DrawPrimitive", draw_id=2),
         "DrawPrimitive on dev0.worker returned S_OK, but no pfnRenderCb ever carried the "
         "draw: the driver dropped it"),
        (R + draw(2), f"it was submitted by {FLUSH}"),
    ]
    for events, fate in cases:
        assert judged(events, [Dev().issue(2, read(b"\x01"))]) == [never(2, fate)]


def test_a_draw_an_aborted_buffer_dropped_or_a_lost_device_had_is_no_finding() -> None:
    """DATA (never executed) is not reported for a draw an aborted DMA buffer carried or
    dropped, nor for a lost device's or a removed device's draws (docs/kmd.md §7)."""
    def dev() -> Dev:
        return Dev().issue(1, read(b"\x01")).issue(2, read(b"\x02"), thread="app2")

    assert judged(R, [dev()]) == [
        never(1, "the driver never received its DrawPrimitive"),
        never(2, "the driver never received its DrawPrimitive", thread="app2")]
    aborted = dma(cmd(1, b"\x00"), status="aborted", dropped=(2,))
    assert judged(R, [dev()], [Kernel([aborted])]) == []
    lost = dev()
    lost.lost = True
    assert judged(R, [lost]) == []
    assert judged(R, [dev()], [Kernel(device_removals=[0x10])]) == []
    # another device's removal leaves this one's draws judged
    assert judged(R, [dev()], [Kernel(device_removals=[0x11])]) == [
        never(1, "the driver never received its DrawPrimitive"),
        never(2, "the driver never received its DrawPrimitive", thread="app2")]
    # the removal of a handle no listed device has excuses no device, whatever its name (it
    # excused a device named "?" before issue 16)
    odd = Dev("?").issue(1, read(b"\x01"))
    assert judged([], [odd], [Kernel(device_removals=[0x11])]) == [
        never(1, "the driver never received its DrawPrimitive", dev="?")]


# ---- attribution: which DDI made, bound and submitted the instance read ------------------------

RENAMED = R + discard() + ua(cbs=[unlockcb(2)]) + rename()  # inst 1 (0x2), bound by Rename
DISCARD = "LockAsync(vb0@dev0, Discard) on app"
RENAME = "Rename(vb0@dev0, cookie 0xc1) on dev0.worker"


def wrong(events: Events, instance: int | None, draw_id: int = 1) -> list[tuple[str, str, str]]:
    """The findings when draw ``draw_id`` read 0x00 for 0x01 from ``instance``: rule, the
    message's explanation (after the dash) or the whole message, and the fields' instance."""
    dev = Dev().issue(draw_id, read(b"\x01"))
    rec = dma(cmd(draw_id, b"\x00", instance=instance, allocation=instance))
    return [(r, m.split(" — ")[-1], str(f.get("instance"))) for r, m, f in
            judged(events, [dev], [Kernel([rec])])]


def test_explain_names_the_instance_its_maker_its_binder_and_the_submitter() -> None:
    """DATA: the finding names the instance the GPU read, the DDI that made it, the one that
    bound it (or that bound another, or that none did), the DrawPrimitive and the submitter."""
    drawn = f"{ENCODED}; submitted by {FLUSH}"
    assert wrong(RENAMED + draw(1, 2), 2) == [(
        "DATA", f"the GPU read vb0@dev0 inst 1 (0x2); made by {DISCARD}; bound by {RENAME}; "
        f"{drawn}", "2")]
    assert wrong(RENAMED + draw(1, 1), 1) == [
        ("RN-4", f"draw 1 reached the driver (dev0.worker) after {RENAME}, which made vb0@dev0 "
         "inst 1 (0x2) the instance to draw from, but it reads vb0@dev0 inst 0 (0x1)", "None"),
        ("DATA", f"{CREATED}; although {RENAME} had bound vb0@dev0 inst 1 (0x2) before the "
         f"draw reached the driver; {drawn}", "1")]
    assert wrong(R + draw(1), 1) == [("DATA", f"{CREATED}; {UNBOUND}; {drawn}", "1")]
    # an instance the checker never saw made: no maker, no binding
    assert wrong(R + draw(1, 0x63), 0x63) == [
        ("DATA", f"the GPU read allocation 0x63; {UNBOUND}; {drawn}", "99")]
    assert wrong(R + draw(1), None) == [("DATA", "the GPU read no instance", "None")]
    # no DrawPrimitive reached the driver: only the instance and its maker
    assert wrong(R, 1) == [("DATA", CREATED, "1")]
    # received, never submitted through pfnRenderCb: no submitter
    assert wrong(R + ddi(W, "DrawPrimitive", draw_id=1), 1) == [
        ("DATA", f"{CREATED}; {UNBOUND}; {ENCODED}", "1")]


BARE = [*CREATE, ("app", "rt.resource.create", {"device": "dev0", "resource": 7,
                                                 "rt_resource": RT, "kind": "vb", "pool": 1,
                                                 "dynamic": True})]  # no pfnAllocateCb seen


def test_the_instance_a_discard_lockasync_or_a_renaming_lock_made() -> None:
    """DATA names the DDI that made the instance the GPU read when no pfnLockCb named it (its
    allocation was never seen allocated): the Discard LockAsync with its cookie (LA-8), or the
    renaming Lock (LCB-8), which also bound it."""
    drawn = f"{ENCODED}; submitted by {FLUSH}"
    renamed = BARE + discard() + ua(cbs=[unlockcb(2)]) + rename()
    assert wrong(renamed + draw(1, 2), 2) == [(
        "DATA", f"the GPU read vb0@dev0 inst 1 (0x2); made by {DISCARD} (cookie 0xc1); bound "
        f"by {RENAME}; {drawn}", "2")]
    locked = BARE + lk(flags=0x8, cbs=[lockcb(1, 0x90, new=2)]) + ul(cbs=[unlockcb(2)])
    assert wrong(locked + draw(1, 2), 2) == [(
        "DATA", "the GPU read vb0@dev0 inst 1 (0x2); made by Lock(vb0@dev0, Discard) on app; "
        f"bound by Lock(vb0@dev0, Discard) on app; {drawn}", "2")]


# ---- when and in what order ------------------------------------------------------------------

def test_findings_are_reported_by_device_then_draw_then_as_found() -> None:
    """DATA findings are held until ``final`` and reported in the devices' order, then by draw
    id, then in the order found — whatever order the DMA buffers finished in; a device the
    final pass does not list comes last. Watching, each buffer is judged as it finishes."""
    d0 = Dev().issue(1, read(b"\x01"), read(b"\x01", stream=1)).issue(2, read(b"\x02"))
    d1 = Dev("dev1", 0x11).issue(1, read(b"\x03"))
    d2 = Dev("dev2", 0x12).issue(1, read(b"\x04"))
    recs = [dma(cmd(1, b"\x00"), device=0x12), dma(cmd(1, b"\x00"), device=0x11),
            dma(cmd(2, b"\x00")), dma(cmd(1, b"\x01"), cmd(1, b"\x00", instance=None))]

    def lines(got: list[tuple[str, str, dict[str, Any]]]) -> list[str]:
        return [m.split(" — ")[0] for _r, m, _f in got]

    want = ["draw 1 on dev0: byte 0 of the draw (offset 16 in the buffer) is 0x00, but the "
            "application had written 0x01 when it issued the draw",
            "draw 2 on dev0: byte 0 of the draw (offset 16 in the buffer) is 0x00, but the "
            "application had written 0x02 when it issued the draw",
            "draw 1 on dev1: byte 0 of the draw (offset 16 in the buffer) is 0x00, but the "
            "application had written 0x03 when it issued the draw",
            "draw 1 on dev2: byte 0 of the draw (offset 16 in the buffer) is 0x00, but the "
            "application had written 0x04 when it issued the draw"]
    assert lines(judged([], [d0, d1, d2], [Kernel(recs)])) == want
    d0 = Dev().issue(1, read(b"\x01"), read(b"\x01", stream=1)).issue(2, read(b"\x02"))
    d1 = Dev("dev1", 0x11).issue(1, read(b"\x03"))
    d2 = Dev("dev2", 0x12).issue(1, read(b"\x04"))
    kernel = Kernel()
    chk = Checker()

    def end(c: Checker) -> None:
        c.watch_dma(kernel, [d0, d1, d2])
        for rec in recs:
            c.on_dma(rec)
        assert c._held != [] and d0.snapshots.pending == {}
        c.final([kernel], [d1, d0])  # dev2 is not listed: last

    got = [v.message.split(" — ")[0] for v in run_events([], chk, then=end)]
    assert got == [want[2], *want[:2], want[3]]
    assert kernel.watchers == [(chk.on_dma, False)] and chk._held == []


def test_two_findings_of_one_draw_keep_the_order_they_were_found_in() -> None:
    """Within a draw the findings are in stream order (not sorted by their text)."""
    dev = Dev().issue(1, read(b"\x00\x00\x05"), read(b"\x06", stream=1))
    rec = dma(cmd(1, b"\x00\x00\x00"), cmd(1, b"\x00"))
    assert [m.split(" — ")[0] for _r, m, _f in judged([], [dev], [Kernel([rec])])] == [
        "draw 1 on dev0: byte 2 of the draw (offset 18 in the buffer) is 0x00, but the "
        "application had written 0x05 when it issued the draw",
        "draw 1 on dev0: byte 0 of the draw (offset 16 in the buffer) is 0x00, but the "
        "application had written 0x06 when it issued the draw"]


def test_watching_judges_each_buffer_once_and_forgets_the_draw() -> None:
    """Watching, a finished buffer's draws are judged then and their per-draw state goes; the
    kernel's kept records are not read again by ``final`` (a record the watch never delivered
    leaves its draw never executed). A buffer of no listed device is nobody's."""
    dev = Dev().issue(1, read(b"\x01")).issue(2, read(b"\x02"))
    kernel = Kernel([dma(cmd(2, b"\x02"))])
    chk = Checker()
    seen: list[tuple[Any, ...]] = []

    def end(c: Checker) -> None:
        c.watch_dma(kernel, [dev])
        c.on_dma(dma(cmd(1, b"\x01"), device=0x11))  # not dev0's
        seen.append((sorted(c._devices["dev0"].draws), sorted(c._devices["dev0"].draw_resources),
                     sorted(dev.snapshots.pending)))
        c.on_dma(dma(cmd(1, b"\x01")))
        seen.append((sorted(c._devices["dev0"].draws), sorted(c._devices["dev0"].draw_resources),
                     sorted(dev.snapshots.pending)))
        c.final([kernel], [dev])

    events = R + draw(1) + draw(2)
    assert [(v.rule, v.message) for v in run_events(events, chk, then=end)] == [
        never(2, f"it was submitted by {FLUSH}")[:2]]
    assert seen == [([1, 2], [1, 2], [1, 2]), ([2], [2], [2])]
    # not watching, final reads the kept records: draw 2 read the right bytes
    dev = Dev().issue(2, read(b"\x02"))
    assert judged(events, [dev], [kernel]) == []


def test_a_device_the_checker_never_saw_is_judged_too() -> None:
    """A device with no seam events: its draws are judged (the driver never received them),
    and watching forgets nothing the checker does not have."""
    dev = Dev("dev1", 0x11).issue(1, read(b"\x01"))
    assert judged([], [dev], watch=[dma(cmd(1, b"\x00"), device=0x11)]) == [(
        "DATA", bad_byte(1, 0, "0x00", "0x01", "the GPU read allocation 0x1", dev="dev1"),
        fields(1, 0))]


def test_kmd_invariant_each_broken_invariant_once_before_the_data_findings() -> None:
    """KMD-INVARIANT: every inconsistency the kernels report, once per text, reported by
    ``final`` before the held DATA findings."""
    ks = [Kernel(invariants=["fence 3 > 2", "segment 0 over"]), Kernel(invariants=["fence 3 > 2"])]
    dev = Dev().issue(1, read(b"\x01"))
    assert judged([], [dev], ks) == [
        ("KMD-INVARIANT", "fence 3 > 2", {}), ("KMD-INVARIANT", "segment 0 over", {}),
        never(1, "the driver never received its DrawPrimitive")]


def test_app_nooverwrite_names_the_resource_the_draw_and_the_thread() -> None:
    """APP-NOOVERWRITE: the application changed bytes a pending draw reads through a
    NoOverwrite lock; once per (device, draw, resource)."""
    def broke(rt: int = RT, draw_id: int = 3, **more: Any) -> Events:
        return [("app", "rt.nooverwrite.overwrite", {"device": "dev0", "draw_id": draw_id,
                                                     "resource": rt, "offset": 8, "bytes": 2,
                                                     **more})]

    def text(res: str, draw_id: int = 3, dev: str = "dev0") -> str:
        return (f"the application broke its NoOverwrite promise on app: it changed 2 byte(s) of "
                f"{res} from offset 8 that draw {draw_id} on {dev} still reads (issued earlier, "
                "not yet executed by the GPU); the data oracle leaves those bytes out (a "
                "scenario bug, not the driver's)")

    evs = R + broke() + broke(offset=12) + broke(draw_id=4) + broke(rt=0x2000)
    assert found(evs) == [
        ("APP-NOOVERWRITE", text("vb0@dev0"), {"draw": 3}),
        ("APP-NOOVERWRITE", text("vb0@dev0", 4), {"draw": 4}),
        ("APP-NOOVERWRITE", text("runtime resource 0x2000"), {"draw": 3})]
    nameless = [("app", "rt.nooverwrite.overwrite", {"draw_id": 3, "resource": RT,
                                                     "offset": 8, "bytes": 2})]
    assert found(nameless) == [
        ("APP-NOOVERWRITE", text("runtime resource 0x1000", dev="?"), {"draw": 3})]


def test_a_finding_is_one_per_device_name_and_draw() -> None:
    """DATA is reported once per (device name, draw id) and stream: two draws of a device each
    have their finding, but two devices of one name (``Adapter.create_device(name=...)`` allows
    it; the checker's per-device state is by name too) share theirs: the first is reported."""
    dev = Dev().issue(1, read(b"\x01"), read(b"\x02", stream=1))
    dev.issue(2, read(b"\x01"), read(b"\x02", stream=1))
    rec = dma(cmd(1, b"\x01"), cmd(2, b"\x01"))
    fate = "the driver never received its DrawPrimitive"
    assert judged([], [dev], [Kernel([rec])]) == [
        ("DATA", f"draw {d} on dev0: stream 1 was not read by the GPU (the driver encoded 1 of 2 "
         f"streams; {fate})", {"draw": d}) for d in (1, 2)]
    twin = Dev(km_device=0x20).issue(1, read(b"\x01"), read(b"\x02", stream=1),
                                     read(b"\x03", stream=2))
    ones = Dev().issue(1, read(b"\x01"), read(b"\x02", stream=1))
    recs = [dma(cmd(1, b"\x01")), dma(cmd(1, b"\x01"), device=0x20)]
    assert judged([], [ones, twin], [Kernel(recs)]) == [
        ("DATA", "draw 1 on dev0: stream 1 was not read by the GPU (the driver encoded 1 of 2 "
         f"streams; {fate})", {"draw": 1})]
    lost = [Dev().issue(1, read(b"\x01")), Dev(km_device=0x20).issue(1, read(b"\x01"),
                                                                      thread="app2")]
    assert judged([], lost) == [never(1, fate)]


def test_watching_forgets_a_draw_the_driver_never_received() -> None:
    """A draw judged as its buffer finishes leaves no per-draw state behind, even one the
    driver never received (no DrawPrimitive, no rt.draw reached the checker)."""
    dev = Dev().issue(3, read(b"\x01"))
    assert judged(R, [dev], watch=[dma(cmd(3, b"\x00"))]) == [
        ("DATA", bad_byte(3, 0, "0x00", "0x01", CREATED), fields(3, 0))]


def test_every_kind_of_data_finding_is_ordered_by_device_then_draw() -> None:
    """A draw that never executed and a stream the GPU did not read are held like a wrong byte:
    reported by device, then draw, although ``final`` finds them after the buffers' findings."""
    fate = "the driver never received its DrawPrimitive"
    d0 = Dev().issue(1, read(b"\x01")).issue(2, read(b"\x02"), read(b"\x02", stream=1))
    d0.issue(3, read(b"\x03"))
    d1 = Dev("dev1", 0x11).issue(1, read(b"\x04"))
    recs = [dma(cmd(3, b"\x00")), dma(cmd(2, b"\x02")), dma(cmd(1, b"\x00"), device=0x11)]
    got = [(m.split(" — ")[0], f) for _r, m, f in judged([], [d0, d1], [Kernel(recs)])]
    assert got == [
        never(1, fate)[1:],
        ("draw 2 on dev0: stream 1 was not read by the GPU (the driver encoded 1 of 2 streams; "
         f"{fate})", {"draw": 2}),
        ("draw 3 on dev0: byte 0 of the draw (offset 16 in the buffer) is 0x00, but the "
         "application had written 0x03 when it issued the draw", fields(3, 0, 1, 1)),
        ("draw 1 on dev1: byte 0 of the draw (offset 16 in the buffer) is 0x00, but the "
         "application had written 0x04 when it issued the draw", fields(1, 0, 1, 1))]
