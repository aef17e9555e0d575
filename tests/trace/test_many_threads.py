"""Traces with many threads, and traces that cannot be read twice (fuzzing sweep H).

* ``trace export`` / ``plot`` were quadratic in the threads of a trace: each new thread's track
  id was ``max`` over every id so far (40,000 threads: 13 s of CPU). The test counts the ids
  looked at, not the time taken.
* ``trace plot`` drew a lane per thread: 8,000 lanes made a 440,000-pixel-high figure (3.3 GB,
  then ``MemoryError``, exit 3). It draws the busiest ``--lanes`` (40) and says how many it
  left out; a ``MemoryError`` is one line and exit 2.
* ``trace plot`` reads its trace twice: a pipe (``cat T | … plot /dev/stdin``) was read to its
  end by the first pass, and the second failed with a misleading "not a JSON line". It is
  refused in one line before anything is read.
"""

from __future__ import annotations

import os
import struct
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest

from wddmemu import _cli
from wddmemu._trace_cli import trace
from wddmemu._trace_plot import DEFAULT_LANES, MAX_LANES, _Extent, _lanes, plot_png
from wddmemu._trace_read import TraceFormatError
from wddmemu._trace_timeline import RUN_TID, TimelineBuilder


class _NullSink:
    wants_args = False

    def process(self, *a: Any) -> None: ...
    def thread(self, *a: Any) -> None: ...
    def slice(self, *a: Any) -> None: ...
    def instant(self, *a: Any) -> None: ...
    def flow(self, *a: Any) -> None: ...
    def counter(self, *a: Any) -> None: ...


class _CountingDict(dict):  # type: ignore[type-arg]
    """A dict that counts the keys its iterators hand out (``max(d)`` iterates all of them)."""

    looked_at = 0

    def __iter__(self) -> Any:
        for k in super().__iter__():
            _CountingDict.looked_at += 1
            yield k

    def keys(self) -> Any:
        return list(iter(self))


@pytest.fixture
def main_has_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    # what `cli.add_command(trace)` gives (attached here if not yet)
    if "trace" not in _cli.cli.commands:
        monkeypatch.setitem(_cli.cli.commands, "trace", trace)


def _write(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(ev) + b"\n" for ev in events))
    return path


# ---- 1. linear in the threads -------------------------------------------------------------------

def test_a_new_thread_costs_the_same_however_many_came_before() -> None:
    tl = TimelineBuilder(_NullSink())
    tl._by_tid = _CountingDict()
    tl._tracks = _CountingDict()
    _CountingDict.looked_at = 0
    n = 3000
    for i in range(n):
        tl.feed({"step": i, "t": 0, "thread": f"th{i}", "event": "x"})
    # max() over the ids so far looked at n²/2 = 4.5 million; a running maximum at none
    assert _CountingDict.looked_at < n
    assert tl.finish().threads[f"th{n - 1}"] == n


def _old_tids(events: list[dict[str, Any]]) -> dict[str, int]:
    """The track ids as the quadratic code gave them (spawn index + 1, else max + 1)."""
    spawned: dict[str, int | None] = {}
    by_name: dict[str, int] = {}
    for ev in events:
        name = ev.get("thread")
        if name is not None and name not in by_name:
            want = spawned.pop(name, None)
            used = set(by_name.values())
            by_name[name] = (want if want is not None and want not in used
                             else max(used, default=RUN_TID) + 1)
        if ev["event"] == "spawn" and ev["child"] not in by_name:
            spawned[ev["child"]] = ev["tid"] + 1 if "tid" in ev else None
    return by_name


def test_track_ids_are_what_they_were() -> None:
    # spawned threads take spawn index + 1, others the next id after the largest, collisions
    # (a spawn index already taken) the next id too
    events: list[dict[str, Any]] = [{"step": 0, "t": 0, "thread": "main", "event": "x"}]
    for i, (child, tid) in enumerate([("a", 5), ("b", 1), ("c", 0), ("d", None), ("e", 2)]):
        ev: dict[str, Any] = {"step": 1 + i, "t": 0, "thread": "main", "event": "spawn",
                              "child": child}
        if tid is not None:
            ev["tid"] = tid
        events.append(ev)
    for i, name in enumerate(["stray", "a", "b", "c", "d", "e", "late"]):
        events.append({"step": 10 + i, "t": 0, "thread": name, "event": "x"})
    tl = TimelineBuilder(_NullSink())
    for ev in events:
        tl.feed(ev)
    assert tl.finish().threads == _old_tids(events)


# ---- 2. lanes: the busiest are drawn ------------------------------------------------------------

def _lanes_trace(path: Path, n: int) -> Path:
    """``n`` threads, one Lock call each; thread ``i`` is busy ``(i % 10 + 1)`` µs."""
    events = []
    for i in range(n):
        t = i * 20_000
        events.append({"step": 2 * i, "t": t, "thread": f"th{i}", "event": "ddi.enter",
                       "ddi": "Lock"})
        events.append({"step": 2 * i + 1, "t": t + (i % 10 + 1) * 1000, "thread": f"th{i}",
                       "event": "ddi.exit", "ddi": "Lock"})
    return _write(path, events)


def _png_height(path: Path) -> int:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])[1]


def test_the_busiest_lanes_are_drawn_in_their_order() -> None:
    ext = _Extent()
    for tid, busy in ((1, 5), (2, 50), (3, 7), (4, 50), (5, 1)):
        ext.thread(tid, f"th{tid}", tid, False)
        ext.slice(tid, 0, "Lock", "ddi", 0, busy, None)
    ext.thread(6, "idle", 6, False)  # nothing to show: never a lane
    assert _lanes(ext, 3) == ([2, 3, 4], 2)
    assert _lanes(ext, 10) == ([1, 2, 3, 4, 5], 0)


def test_a_trace_of_many_threads_draws_the_busiest_and_says_so(
        tmp_path: Path, main_has_trace: None, capsys: pytest.CaptureFixture[str]) -> None:
    tr = _lanes_trace(tmp_path / "t.jsonl", 300)
    out = tmp_path / "t.png"
    assert _cli.main(["trace", "plot", str(tr), "--png", str(out)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (f"wddmemu: note: {tr}: {300 - DEFAULT_LANES} of 300 lanes left out: the "
                      f"{DEFAULT_LANES} busiest are drawn (--lanes N draws up to {MAX_LANES})")
    # 300 lanes were 300 × 55 pixels high; the picture is as high as DEFAULT_LANES make it
    assert _png_height(out) <= (1.6 + 0.55 * DEFAULT_LANES + 1.6) * 100
    assert _cli.main(["trace", "plot", str(tr), "--png", str(out), "--lanes", "5"]) == 0
    assert _png_height(out) <= (1.6 + 0.55 * 5 + 1.6) * 100
    assert "295 of 300 lanes left out" in capsys.readouterr().err


def test_lanes_out_of_range_are_refused(tmp_path: Path) -> None:
    tr = _lanes_trace(tmp_path / "t.jsonl", 3)
    for bad in (0, MAX_LANES + 1, True, 2.5):
        with pytest.raises(TraceFormatError, match="lanes takes an int"):
            plot_png(tr, tmp_path / "x.png", lanes=bad)
    assert not (tmp_path / "x.png").exists()


def test_a_high_resolution_picture_draws_fewer_lanes(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    # the canvas stays within PIXELS whatever width and dpi are asked
    tr = _lanes_trace(tmp_path / "t.jsonl", 30)
    plot_png(tr, tmp_path / "x.png", width=100, dpi=300, lanes=30)
    assert "of 30 lanes left out" in capsys.readouterr().err


@pytest.mark.parametrize("cmd, target", [
    (["plot", "--png", "{d}/o.png"], "wddmemu._trace_plot._draw"),
    (["export", "--chrome", "{d}/o.json"], "wddmemu._trace_chrome._export"),
])
def test_out_of_memory_is_one_line_and_exit_2(
        cmd: list[str], target: str, tmp_path: Path, main_has_trace: None,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    tr = _lanes_trace(tmp_path / "t.jsonl", 3)

    def no_memory(*a: Any, **k: Any) -> Any:
        raise MemoryError("std::bad_alloc")

    monkeypatch.setattr(target, no_memory)
    args = ["trace", cmd[0], str(tr), *[a.format(d=tmp_path) for a in cmd[1:]]]
    assert _cli.main(args) == 2  # was 3, "internal error: MemoryError: std::bad_alloc"
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("wddmemu: error: ") and "out of memory" in line
    assert not list(tmp_path.glob("o.*"))


# ---- 3. plot needs a file it can read twice -----------------------------------------------------

def _through_a_pipe(data: bytes) -> tuple[str, Any]:
    """A ``/dev/fd/N`` path to a pipe that holds ``data`` (small: it fits in the pipe), for a
    command that reads it to its end once."""
    r, w = os.pipe()

    def write() -> None:
        with os.fdopen(w, "wb") as f:
            f.write(data)

    th = threading.Thread(target=write)
    th.start()
    return f"/dev/fd/{r}", (th, r)


def test_plot_refuses_a_pipe_in_one_line(tmp_path: Path) -> None:
    # the sweep's case, as a shell runs it (a subprocess: the test cannot hang on a pipe)
    import subprocess
    import sys

    from tests.support.interrupt import ROOT

    data = _lanes_trace(tmp_path / "t.jsonl", 3).read_bytes()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    p = subprocess.run([sys.executable, "-m", "wddmemu._cli", "trace", "plot", "/dev/stdin",
                        "--png", str(tmp_path / "o.png")], input=data, capture_output=True,
                       env=env, timeout=120)
    # was "/dev/stdin:1: not a JSON line (unexpected control character in string): \"}"
    assert (p.returncode, p.stderr.decode().splitlines()) == (2, [
        "wddmemu: error: /dev/stdin: is a pipe, and plot reads the trace twice: save it to a "
        "file first (trace summary and export read a pipe)"])
    assert not (tmp_path / "o.png").exists()


def test_a_named_pipe_is_refused_without_opening_it(tmp_path: Path) -> None:
    from wddmemu._trace_plot import check_rereadable

    fifo = tmp_path / "t.fifo"
    os.mkfifo(fifo)  # opening it would wait for a writer (plot_png's own read did, forever)
    with pytest.raises(TraceFormatError) as e:
        check_rereadable(fifo)
    assert str(e.value) == (f"{fifo}: is a pipe, and plot reads the trace twice: save it to a "
                            "file first (trace summary and export read a pipe)")
    check_rereadable(tmp_path / "missing.jsonl")  # left to the reader to report


def test_plot_png_refuses_a_socket_before_reading(tmp_path: Path) -> None:
    import socket

    path = tmp_path / "t.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
        with pytest.raises(TraceFormatError, match="is a socket, and plot reads the trace twice"):
            plot_png(path, tmp_path / "o.png")


def test_export_still_reads_a_pipe(tmp_path: Path, main_has_trace: None) -> None:
    data = _lanes_trace(tmp_path / "t.jsonl", 3).read_bytes()
    path, (th, r) = _through_a_pipe(data)
    try:
        assert _cli.main(["trace", "export", path, "--chrome", str(tmp_path / "o.json")]) == 0
    finally:
        th.join()
        os.close(r)
    assert orjson.loads((tmp_path / "o.json").read_bytes())["otherData"]["events"] == 6
