"""The data oracle's half in the runtime: shadows of what the application wrote, and the bytes
each draw references, snapshotted at the moment the application issued it (program order).

``wddmemu``'s checker compares these snapshots with what the GPU really read (the ``DATA``
rule): a draw that read other bytes, or never executed, is a finding.
"""

from __future__ import annotations

from dataclasses import dataclass

from vthreads import current_engine

from . import d3d9
from ._resource import Resource


@dataclass
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


@dataclass
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
    """Every draw a device issued, in program order (``Device.draws``)."""

    def __init__(self, device_name: str) -> None:
        self.device_name = device_name
        self.draws: list[DrawRecord] = []

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
                                    bytes(res.defined[a : a + n])))
        return reads

    def record(self, draw_id: int, reads: list[StreamRead]) -> DrawRecord:
        """Keep the snapshot of draw ``draw_id`` (and log ``rt.draw``)."""
        eng = current_engine()
        rec = DrawRecord(draw_id, eng.current_thread().name, eng.step, reads)
        self.draws.append(rec)
        if eng.tracing:
            eng.emit("rt.draw", device=self.device_name, draw_id=draw_id,
                     reads=[[r.resource, r.offset, r.length] for r in reads])
        return rec
