"""The trace tools stream: memory stays flat however long the trace is.

Two tests (each well under 30 s on a 2-core machine):

* ``test_peak_memory_does_not_grow`` measures each tool's peak Python allocation with tracemalloc
  on 10 000 and on 100 000 lines of a synthetic trace in the real schema: the peak must not grow
  with the trace (tracemalloc slows Python allocation several times over, so it runs on the
  smaller sizes).
* ``test_a_million_lines`` runs ``summary``, ``export`` and ``plot`` through the CLI on 1 000 000
  lines, each in its own process, and compares the process's peak RSS with the same command on
  10 000 lines: the difference must stay small (it is a few MiB).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from tests.support.traces import write_synthetic
from wddmemu._trace_chrome import export_chrome
from wddmemu._trace_summary import summarize

KiB = 1024
MiB = 1024 * KiB
ROOT = Path(__file__).resolve().parents[2]


def _peak(fn: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_peak_memory_does_not_grow(tmp_path: Path) -> None:
    small = write_synthetic(tmp_path / "small.jsonl", 10_000)
    large = write_synthetic(tmp_path / "large.jsonl", 100_000)
    tools: dict[str, Callable[[Path], object]] = {
        "summary": lambda p: summarize(p),
        "export": lambda p: export_chrome(p, tmp_path / "out.json"),
    }
    caps = {"summary": 256 * KiB, "export": 2 * MiB, "plot": 12 * MiB}
    try:
        import matplotlib.backends.backend_agg
        import matplotlib.figure  # noqa: F401 - imported before measuring

        from wddmemu._trace_plot import plot_png

        tools["plot"] = lambda p: plot_png(p, tmp_path / "out.png")
    except ImportError:  # pragma: no cover - the plot extra is not installed
        pass
    for name, tool in tools.items():
        tool(small)  # warm up: first-use allocations (caches, fonts) are not the trace's
        p_small = _peak(lambda tool=tool: tool(small))
        p_large = _peak(lambda tool=tool: tool(large))
        assert p_large <= p_small * 1.25 + 512 * KiB, (name, p_small, p_large)
        assert p_large < caps[name], (name, p_large)


# The child reports its own peak RSS: VmHWM from /proc (ru_maxrss would carry over the forking
# pytest process's high-water mark across exec on Linux).
_MEASURE = r"""
import json, resource, sys, time
from wddmemu._trace_cli import trace
t = time.perf_counter()
rc = trace.main(sys.argv[2:], standalone_mode=False)
seconds = time.perf_counter() - t
try:
    with open("/proc/self/status") as f:
        rss = next(int(ln.split()[1]) for ln in f if ln.startswith("VmHWM:"))
except (OSError, StopIteration):
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with open(sys.argv[1], "w") as f:
    json.dump({"rc": rc, "seconds": seconds, "rss_kib": rss}, f)
"""


def _measure(tmp_path: Path, *args: str) -> dict[str, float]:
    m = tmp_path / "measure.json"
    r = subprocess.run([sys.executable, "-c", _MEASURE, str(m), *args], cwd=ROOT,
                       capture_output=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    return orjson.loads(m.read_bytes())


@pytest.mark.slow
def test_a_million_lines(tmp_path: Path) -> None:
    n = 1_000_000
    big = write_synthetic(tmp_path / "big.jsonl", n)
    small = write_synthetic(tmp_path / "small.jsonl", 10_000)
    cmds = {"summary": ["summary", "{trace}", "--json"],
            "export": ["export", "{trace}", "--chrome", str(tmp_path / "out.json")]}
    try:
        import matplotlib  # noqa: F401

        cmds["plot"] = ["plot", "{trace}", "--png", str(tmp_path / "out.png")]
    except ImportError:  # pragma: no cover
        pass
    report = {}
    for name, cmd in cmds.items():
        base = _measure(tmp_path, *[a.format(trace=small) for a in cmd])
        got = _measure(tmp_path, *[a.format(trace=big) for a in cmd])
        assert got["rc"] == 0 and base["rc"] == 0
        grew = (got["rss_kib"] - base["rss_kib"]) * KiB
        report[name] = (round(got["seconds"], 1), got["rss_kib"] // 1024, grew // MiB)
        assert grew < 24 * MiB, (name, base, got)
    # the export is complete: it ends with the trailer that counts every event
    out = tmp_path / "out.json"
    with open(out, "rb") as f:
        assert f.read(16) == b'{"traceEvents":['
        f.seek(-4096, os.SEEK_END)
        tail = f.read()
    other = orjson.loads(tail[tail.index(b'"otherData":') + 12:-2])
    assert other["events"] == n
    assert other["flows"] > 0 and other["unfinished_slices"] <= 3
    print(f"\n1M lines (seconds, peak RSS MiB, RSS growth over 10k lines MiB): {report}")
