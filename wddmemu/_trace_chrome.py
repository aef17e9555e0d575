"""Chrome Trace Event JSON (for the Perfetto UI and chrome://tracing), written as it is built.

The output is one object, ``{"traceEvents": [...], "displayTimeUnit": "ns", "otherData": {...}}``,
written incrementally: the header, then one event per line as the timeline builder produces it,
then the trailer. Nothing but the builder's small state is kept in memory.

Event kinds used (Trace Event Format): ``X`` complete slices (DDI calls, callbacks, waits, DMA
buffers, enqueue markers) with ``dur``; ``i`` instants (``s`` = ``t`` thread or ``g`` global);
``s``/``f`` flow pairs with the same ``id``, ``cat`` and ``name`` (``f`` with ``bp: "e"``: it
binds to the slice that encloses it); ``C`` counters; ``M`` metadata (``process_name``,
``thread_name``, ``thread_sort_index``). ``ts`` and ``dur`` are microseconds (floats with
nanosecond precision) of the timeline's clock (``_trace_timeline``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Any

from ._files import atomic_open, kind_of
from ._trace_read import TraceFormatError, check_trace_path, dumps, feed_events
from ._trace_timeline import (
    DEFAULT_CPU_NS,
    TimelineBuilder,
    TimelineInfo,
    check_timeline_options,
)

PID = 1


def _us(ns: int) -> float | int:
    """Nanoseconds → microseconds, exact ints where possible (smaller files)."""
    return ns // 1000 if ns % 1000 == 0 else ns / 1000


class ChromeWriter:
    """A timeline sink that writes Chrome trace events to a binary stream as they come."""

    wants_args = True

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self._n = 0
        out.write(b'{"traceEvents":[\n')

    @property
    def events(self) -> int:
        return self._n

    def _emit(self, obj: dict[str, Any]) -> None:
        data = dumps(obj)  # a trace's odd value (deep, huge) is written as text: json_safe
        self._out.write(b",\n" + data if self._n else data)
        self._n += 1

    def process(self, name: str) -> None:
        self._emit({"ph": "M", "name": "process_name", "pid": PID, "tid": 0,
                    "args": {"name": name}})

    def thread(self, tid: int, name: str, sort_index: int, daemon: bool) -> None:
        self._emit({"ph": "M", "name": "thread_name", "pid": PID, "tid": tid,
                    "args": {"name": name}})
        self._emit({"ph": "M", "name": "thread_sort_index", "pid": PID, "tid": tid,
                    "args": {"sort_index": sort_index}})

    def slice(self, tid: int, depth: int, name: str, cat: str, ts: int, dur: int,
              args: dict[str, Any] | None, parent: tuple[str, str] | None = None) -> None:
        ev: dict[str, Any] = {"ph": "X", "name": name, "cat": cat, "pid": PID, "tid": tid,
                              "ts": _us(ts), "dur": _us(dur)}
        if args:
            ev["args"] = args
        self._emit(ev)

    def instant(self, tid: int, name: str, cat: str, ts: int, scope: str,
                args: dict[str, Any] | None) -> None:
        ev: dict[str, Any] = {"ph": "i", "name": name, "cat": cat, "pid": PID, "tid": tid,
                              "ts": _us(ts), "s": scope}
        if args:
            ev["args"] = args
        self._emit(ev)

    def flow(self, fid: int, name: str, cat: str, src: tuple[int, int],
             dst: tuple[int, int]) -> None:
        self._emit({"ph": "s", "name": name, "cat": cat, "id": fid, "pid": PID, "tid": src[0],
                    "ts": _us(src[1])})
        self._emit({"ph": "f", "bp": "e", "name": name, "cat": cat, "id": fid, "pid": PID,
                    "tid": dst[0], "ts": _us(dst[1])})

    def counter(self, tid: int, name: str, ts: int, values: dict[str, int]) -> None:
        self._emit({"ph": "C", "name": name, "pid": PID, "tid": tid, "ts": _us(ts),
                    "args": values})

    def close(self, info: TimelineInfo, source: str) -> None:
        other = {"source": source, "generator": "wddmemu trace export", **info.as_dict()}
        self._out.write(b'\n],"displayTimeUnit":"ns","otherData":')
        self._out.write(dumps(other))
        self._out.write(b"}\n")


def export_chrome(trace: str | Path, out: str | Path | IO[bytes], *, time: str = "virtual",
                  cpu_ns: int = DEFAULT_CPU_NS) -> TimelineInfo:
    """Convert the trace at ``trace`` into Chrome trace JSON at ``out`` (a path, ``"-"`` for
    stdout, or a binary stream), streaming. Raises
    :class:`~wddmemu.trace.TraceFormatError` for a malformed trace. A path is written
    atomically (a temporary file beside it, renamed when complete): a failed export leaves
    whatever was at the path untouched (issue 14). A ``trace`` that names no file, or an
    ``out`` that is neither a path nor a stream, is a :class:`TraceFormatError` before anything
    is read or written."""
    check_trace_path(trace)
    check_timeline_options(time, cpu_ns)
    if not isinstance(out, str | Path) and not callable(getattr(out, "write", None)):
        raise TraceFormatError("", None, "export_chrome writes to a path, '-' or a binary "
                                         f"stream, not {kind_of(out)}")
    if isinstance(out, str | Path) and str(out) != "-":
        with atomic_open(out, buffering=1 << 20) as f:
            return _export(trace, f, time, cpu_ns)
    stream = sys.stdout.buffer if isinstance(out, str | Path) else out
    return _export(trace, stream, time, cpu_ns)


def _export(trace: str | Path, f: IO[bytes], time: str, cpu_ns: int) -> TimelineInfo:
    sink = ChromeWriter(f)
    tl = TimelineBuilder(sink, time=time, cpu_ns=cpu_ns)
    feed_events(trace, tl.feed)
    info = tl.finish()
    sink.close(info, str(trace))
    return info
