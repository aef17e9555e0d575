"""The data oracle's half in the runtime: shadows of what the application wrote, and the bytes
each draw references, snapshotted at the moment the application issued it (program order).

``wddmemu``'s checker compares these snapshots with what the GPU really read (the ``DATA``
rule): a draw that read other bytes, or never executed, is a finding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vthreads import current_engine

from . import d3d9
from ._resource import Resource


@dataclass(slots=True)
class StreamRead:
    """The bytes one draw references in one stream, as the application had written them when it
    issued the draw. ``defined[i]`` is 0 where the application never wrote since the last
    discard: the oracle compares only defined bytes."""

    stream: int
    resource: int
    offset: int
    length: int
    expected: bytes
    defined: bytes
    #: the resource's Discard generation when the draw was issued (``Resource.discards``)
    generation: int = 0


@dataclass(slots=True)
class DrawRecord:
    """One draw as the application issued it: its id, thread, step and the bytes it reads."""

    draw_id: int
    thread: str
    step: int
    reads: list[StreamRead]


def record_write(res: Resource, offset: int, data: bytes) -> None:
    """The application wrote ``data`` at ``offset`` of ``res`` (through a locked view): the
    shadow takes the bytes and marks them defined. Only buffers are shadowed."""
    if res.buffer:
        res.shadow[offset : offset + len(data)] = data
        res.defined[offset : offset + len(data)] = b"\x01" * len(data)


class DrawSnapshots:
    """Every draw a device issued, in program order (``Device.draws``), and the ones the GPU
    has not executed yet (``pending``).

    ``executed(record)`` pairs each draw command of a finished DMA buffer with its draw's
    snapshot; once a draw has as many executed commands as it reads streams, it is handed back
    (for the checker to compare) and forgotten: with ``keep=False`` nothing of an executed draw
    stays, so memory does not grow with the length of a run."""

    def __init__(self, device_name: str, keep: bool = True) -> None:
        self.device_name = device_name
        self.keep = keep
        self.draws: list[DrawRecord] = []
        self.issued = 0
        #: draw id → snapshot, for the draws the GPU has not (fully) executed yet
        self.pending: dict[int, DrawRecord] = {}
        #: draw id → the executed commands seen so far (a draw may span DMA buffers)
        self._got: dict[int, list[Any]] = {}
        #: draws some aborted (TDR) DMA buffer carried
        self.aborted: set[int] = set()

    def executed(self, record: Any) -> list[tuple[DrawRecord, list[Any]]]:
        """One finished DMA buffer of this device (a ``kmd.DmaRecord``): the draws it completed,
        each with the commands the GPU executed for it, in stream order. An aborted buffer's
        draws are noted in ``aborted``; a command for a draw already complete (or never issued)
        is ignored, as the whole-run comparison ignored it."""
        done: list[tuple[DrawRecord, list[Any]]] = []
        completed = record.status == "completed"
        self.aborted.update(record.dropped)  # queued behind the hang, dropped by the reset
        for c in record.commands:
            if c.kind != "draw":
                continue
            if not completed:
                self.aborted.add(c.draw_id)
                continue
            draw = self.pending.get(c.draw_id)
            if draw is None:
                continue
            got = self._got.setdefault(c.draw_id, [])
            got.append(c)
            if len(got) >= len(draw.reads):
                del self.pending[c.draw_id]
                del self._got[c.draw_id]
                done.append((draw, got))
        return done

    def unexecuted(self) -> list[tuple[DrawRecord, list[Any]]]:
        """The draws not fully executed, in program order, with what the GPU did execute."""
        return [(d, self._got.get(i, [])) for i, d in self.pending.items()]

    def overwritten(self, res: Resource, offset: int, data: bytes) -> list[tuple[int, int, int]]:
        """The application is writing ``data`` at ``offset`` of ``res`` through a NoOverwrite
        lock, whose promise is to leave alone every byte the GPU may still read (the flag's
        definition in the contract: "existing data not modified"). Each draw not yet executed
        whose snapshot has a defined byte there with another value, and that read the same
        contents (no Discard lock since it was issued), is a broken promise: those
        bytes leave the oracle's judgement (what the GPU reads of them is the application's
        doing, not the driver's) and ``rt.nooverwrite.overwrite`` says so. Returns, per such
        draw, (draw id, first byte changed, bytes changed), in draw order."""
        hits = []
        end = offset + len(data)
        for draw in self.pending.values():
            for read in draw.reads:
                lo, hi = max(offset, read.offset), min(end, read.offset + read.length)
                if read.resource != res.handle or lo >= hi or read.generation != res.discards:
                    continue  # another buffer, other bytes, or contents a Discard left behind
                base = read.offset
                changed = [a for a in range(lo, hi) if read.defined[a - base]
                           and read.expected[a - base] != data[a - offset]]
                if not changed:
                    continue
                defined = bytearray(read.defined)
                for a in changed:
                    defined[a - base] = 0
                read.defined = bytes(defined)
                hits.append((draw.draw_id, changed[0], len(changed)))
        eng = current_engine() if hits else None
        if eng is not None and eng.wants("rt.nooverwrite.overwrite"):
            for draw_id, first, n in hits:
                eng.emit("rt.nooverwrite.overwrite", device=self.device_name, draw_id=draw_id,
                         resource=res.handle, offset=first, bytes=n)
        return hits

    def reads(self, streams: dict[int, tuple[Resource, int, int]], start_vertex: int,
              vertex_count: int) -> list[StreamRead]:
        """The bytes a draw of ``vertex_count`` vertices from ``start_vertex`` references in
        each bound stream, as the application wrote them so far. Raises INVALIDCALL for a draw
        that reads past a buffer's end."""
        reads = []
        for s in sorted(streams):
            res, off, stride = streams[s]
            a = off + start_vertex * stride
            n = vertex_count * stride
            if a + n > res.size:
                raise d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, "draw reads past the buffer end")
            reads.append(StreamRead(s, res.handle, a, n, bytes(res.shadow[a : a + n]),
                                    bytes(res.defined[a : a + n]), res.discards))
        return reads

    def record(self, draw_id: int, reads: list[StreamRead]) -> DrawRecord:
        """Keep the snapshot of draw ``draw_id`` (and log ``rt.draw``)."""
        eng = current_engine()
        rec = DrawRecord(draw_id, eng.current_thread().name, eng.step, reads)
        self.issued += 1
        self.pending[draw_id] = rec
        if self.keep:
            self.draws.append(rec)
        if eng.wants("rt.draw"):
            eng.emit("rt.draw", device=self.device_name, draw_id=draw_id,
                     reads=[[r.resource, r.offset, r.length] for r in reads])
        return rec
