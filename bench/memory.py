"""Memory and per-call cost of long runs, and what tracing costs (issue 13).

Rows, each measured in this one invocation:

* **long run**: ``dynamic-vb-ring`` with N frames (~15 DDI calls per frame) run once in a fresh
  subprocess (``python bench/memory.py --child FRAMES``), which reports its CPU time, its DDI
  calls and its max RSS (``resource.getrusage``). Printed: max RSS, µs of CPU per DDI call, and
  the per-call cost against the small run's (the goal: ≤ 1.1×; RSS ≤ 200 MB at 1M calls).
* **trace on ÷ off**: the same small run with and without ``trace=<file>``, interleaved
  repetitions, CPU-time medians, the ratio (goal ≤ 1.3×).

Default: 1,000 frames (15k calls) against 4,000 frames (60k calls), three reps of the trace row:
a couple of minutes. ``--full``: 1,000 frames against 66,700 frames (~1,000,000 calls, several
minutes of CPU). ``--root DIR`` runs the children from another checkout (a worktree of the
baseline commit) to measure before and after in the same invocation.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

SMALL = 1_000
DEFAULT_BIG = 4_000
FULL_BIG = 66_700


def child(frames: int, trace: str | None) -> None:
    from wddmemu import RunSpec, run_scenario

    spec = RunSpec("dynamic-vb-ring", params={"frames": frames}, step_budget=10**10)
    t0 = time.process_time()
    r = run_scenario(spec, trace=trace)
    cpu = time.process_time() - t0
    calls = sum(n for d in r.devices for per in d.ddi_calls.values() for n in per.values())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    print(json.dumps({"ok": r.ok, "cpu": cpu, "calls": calls, "rss": rss}))


def run_child(frames: int, root: str | None, trace: str | None = None) -> dict:
    env = dict(os.environ)
    if root:
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, os.path.abspath(__file__), "--child", str(frames)]
    if trace:
        cmd += ["--trace", trace]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    got = json.loads(out.strip().splitlines()[-1])
    if not got["ok"]:
        raise SystemExit(f"the {frames}-frame run failed: the bench measures a passing run")
    return got


def long_rows(big: int, root: str | None) -> None:
    small = run_child(SMALL, root)
    large = run_child(big, root)
    per_small = small["cpu"] / small["calls"] * 1e6
    per_large = large["cpu"] / large["calls"] * 1e6
    for name, r, per in (("small", small, per_small), ("large", large, per_large)):
        print(f"  {name:5} {r['calls']:>9,} calls  {r['cpu']:8.1f} s CPU  {per:6.1f} µs/call  "
              f"max RSS {r['rss'] / 2**20:7.1f} MB")
    print(f"  per-call cost {large['calls']:,} ÷ {small['calls']:,} calls: "
          f"{per_large / per_small:.2f}× (goal ≤ 1.1×)")


def trace_row(frames: int, reps: int, root: str | None) -> None:
    offs, ons = [], []
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "t.jsonl")
        for _ in range(reps):  # interleaved: off, on, off, on, ...
            offs.append(run_child(frames, root)["cpu"])
            ons.append(run_child(frames, root, trace=path)["cpu"])
        size = os.path.getsize(path)
    off, on = statistics.median(offs), statistics.median(ons)
    print(f"  trace off {off:.2f} s, on {on:.2f} s CPU (medians of {reps}; trace "
          f"{size / 2**20:.1f} MB): on ÷ off {on / off:.2f}× (goal ≤ 1.3×)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--full", action="store_true", help="the 1M-call row (66,700 frames)")
    ap.add_argument("--frames", type=int, help="frames of the large run")
    ap.add_argument("--reps", type=int, default=3, help="repetitions of the trace row")
    ap.add_argument("--trace-frames", type=int, default=300, help="frames of the trace row")
    ap.add_argument("--root", help="run the children from this checkout (a baseline)")
    ap.add_argument("--skip-trace", action="store_true")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--trace", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child is not None:
        child(a.child, a.trace)
        return
    big = a.frames or (FULL_BIG if a.full else DEFAULT_BIG)
    print(f"long run, dynamic-vb-ring, {SMALL:,} vs {big:,} frames"
          + (f" (from {a.root})" if a.root else ""))
    long_rows(big, a.root)
    if not a.skip_trace:
        print(f"trace on ÷ off, dynamic-vb-ring, {a.trace_frames} frames")
        trace_row(a.trace_frames, a.reps, a.root)


if __name__ == "__main__":
    main()
