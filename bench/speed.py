"""Issue 13's table, every row a ratio measured in one run of this script.

Rows (the goal in brackets):

1. ``explore dynamic-vb-ring --strategy pct``, schedules per second, this tree ÷ commit
   ad65d7d [>= 5]. The old commit is materialised with ``git archive`` into a temporary directory
   and runs the same workload in a subprocess (the ``runtime`` package it had then); each
   repetition runs the old tree and this one, one after the other. Each subprocess times its own
   exploration with ``time.process_time`` (imports and start-up excluded).
2. the micro-model, 3 threads x 10 checkpoints, ÷ the same program as bare trio tasks under
   ``trio.run`` [>= 2]: ``bench/sched.py``'s measurement.
3. trace on ÷ off, one ``dynamic-vb-ring`` run with a trace file against the same run without
   [<= 1.3], in a fresh process. One invocation's figure moves by ~0.05 here, so
   ``--only-trace`` measures it for this tree and ``--baseline`` in ``--repeats`` alternating
   invocations of each, with their spread.
4. ``--full`` only: one run of ~1M DDI calls (``dynamic-vb-ring`` with 66,700 frames, ~15 calls a
   frame) in a subprocess: its max RSS [<= 200 MB] and its CPU per frame ÷ that of a 1,000-frame
   (15k-call) run [<= 1.1].
5. ``--jobs 2`` ÷ ``--jobs 1`` on an exploration of ``--jobs-schedules`` schedules (120), against
   the same ratio for a pure-Python burn in 2 processes ÷ 1, its pool's start and shutdown timed
   as explore's are [>= 0.9 of the burn's]. Wall time here: a parallel speed-up is what is
   measured, and CPU time would hide it.
6. start-up: the CPU time of ``wddmemu --help`` in a fresh process [<= 0.5 s], an absolute figure
   (the issue's goal is one).

Every figure is a median over interleaved repetitions (``--repeats``, default 3); the machine is
shared, so only the ratios mean anything. Run: ``python bench/speed.py [--full] [--repeats N]``;
``--only-schedules`` / ``--only-trace`` with ``--baseline C`` for row 1 / row 3 against commit C.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = "ad65d7d"

# Runs in a subprocess with the tree under test first on sys.path: today's layout (wddmemu) or
# the baseline's (runtime). Prints the exploration's CPU seconds and schedules run.
WORKLOAD = """
import json, os, sys, time
if os.path.isdir("wddmemu"):  # the cwd is the tree; the installed one must not answer for it
    from wddmemu._explore import ExploreOptions, explore
    from wddmemu._runner import RunSpec
else:
    from runtime._explore import ExploreOptions, explore
    from runtime._runner import RunSpec
n = int(sys.argv[1])
spec = RunSpec(scenario="dynamic-vb-ring")
opts = ExploreOptions(schedules=n, strategy="pct", stop_on_first=False, minimise=False)
explore(spec, ExploreOptions(schedules=2, strategy="pct", stop_on_first=False, minimise=False))
c0 = time.process_time()
res = explore(spec, opts)
print(json.dumps({"cpu": time.process_time() - c0, "runs": res.runs,
                  "where": sys.modules[explore.__module__].__file__}))
"""

# Row 3 in a fresh process: ``pairs`` traced/untraced pairs of a 40-frame run after a warm-up
# pair (the first traced run also pays for the trace writer's first use), the order inside a
# pair alternating so that a drift of the machine falls on both sides; the medians.
TRACE_PAIRS = """
import json, os, statistics, sys, tempfile, time
from pathlib import Path
if os.path.isdir("wddmemu"):
    from wddmemu._runner import RunSpec, run_scenario
else:
    from runtime._runner import RunSpec, run_scenario
spec = RunSpec(scenario="dynamic-vb-ring", params={"frames": 40})
path = Path(tempfile.mkdtemp()) / "t.jsonl"
def cpu(trace):
    c0 = time.process_time()
    run_scenario(spec, trace=trace)
    return time.process_time() - c0
cpu(path), cpu(None)
on, off = [], []
for i in range(int(sys.argv[1])):
    if i % 2:
        off.append(cpu(None))
        on.append(cpu(path))
    else:
        on.append(cpu(path))
        off.append(cpu(None))
os.remove(path)
print(json.dumps({"on": statistics.median(on), "off": statistics.median(off)}))
"""

# One long run in a fresh process: its CPU seconds and max RSS.
LONG_RUN = """
import json, resource, sys, time
from wddmemu._runner import RunSpec, run_scenario
frames = int(sys.argv[1])
c0 = time.process_time()
# no step budget to speak of: the default (200,000 steps) ends the run after ~3,000 frames,
# and a row measured on that cut run said 2 s CPU for "a million calls"
r = run_scenario(RunSpec(scenario="dynamic-vb-ring", params={"frames": frames},
                         step_budget=10**12))
print(json.dumps({"cpu": time.process_time() - c0, "ok": r.ok,
                  "failure": r.run.failure.kind if r.run.failure else None,
                  "steps": r.run.statistics.steps,
                  "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def _median(xs: list[float]) -> float:
    return statistics.median(xs)


def _python(tree: Path, script: str, *args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, "-c", script, *args], cwd=tree, env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _row(metric: str, value: str, goal: str) -> None:
    print(f"| {metric} | {value} | {goal} |", flush=True)


# ---- row 1: schedules per second against the baseline commit ---------------------------------


@contextmanager
def _baseline_tree(baseline: str) -> Iterator[Path]:
    """Commit ``baseline`` of this repository, materialised with ``git archive`` into a
    temporary directory for the time of the block."""
    with tempfile.TemporaryDirectory(prefix="wddmemu-baseline-") as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", baseline],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        yield Path(tmp)


def schedules_row(repeats: int, schedules: int, baseline: str = BASELINE) -> None:
    with _baseline_tree(baseline) as old_tree:
        old, new = [], []
        for _ in range(repeats):  # interleaved: the baseline, then this tree
            o = _python(old_tree, WORKLOAD, str(schedules))
            n = _python(ROOT, WORKLOAD, str(schedules))
            assert o["where"].startswith(str(old_tree)) and n["where"].startswith(str(ROOT))
            old.append(o["runs"] / o["cpu"])
            new.append(n["runs"] / n["cpu"])
    o, n = _median(old), _median(new)
    _row("`explore dynamic-vb-ring --strategy pct`, schedules/s CPU",
         f"{n:.1f}/s vs {o:.1f}/s at {baseline}: **{n / o:.2f}x**", ">= 5x")


# ---- row 2: the micro-model -----------------------------------------------------------------


def micro_row(repeats: int) -> None:
    spec = importlib.util.spec_from_file_location("bench_sched", ROOT / "bench" / "sched.py")
    assert spec is not None and spec.loader is not None
    sched = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sched)
    per = sched.micro_model(200, repeats)
    bare = per["bare trio tasks, trio.run each"]
    trio_r = bare / per["vthreads run_many, trio"]
    asyncio_r = bare / per["vthreads run_many, asyncio"]
    _row("micro-model, 3 threads x 10 checkpoints, vs bare trio tasks under `trio.run`",
         f"**{trio_r:.2f}x** (trio), **{asyncio_r:.2f}x** (asyncio); one `Engine.run` per "
         f"schedule: {bare / per['vthreads Engine.run, trio']:.2f}x / "
         f"{bare / per['vthreads Engine.run, asyncio']:.2f}x", ">= 2x")


# ---- row 3: trace on / off ------------------------------------------------------------------


def _trace_ratio(tree: Path, pairs: int) -> float:
    got = _python(tree, TRACE_PAIRS, str(pairs))
    return got["on"] / got["off"]


def trace_row(repeats: int) -> None:
    """Row 3: at least 7 pairs (a pair is ~0.2 s; with 3 the median moved 1.08-1.37x between
    invocations here) in a fresh process (``TRACE_PAIRS``)."""
    _row("trace on ÷ off, same run", f"**{_trace_ratio(ROOT, max(7, repeats)):.2f}x**",
         "<= 1.3x")


def trace_against(baseline: str, invocations: int, pairs: int) -> None:
    """Row 3 for this tree and for commit ``baseline``: ``invocations`` fresh processes of each,
    alternating which goes first, each the medians of ``pairs`` pairs. The figure of one
    invocation moves by ~0.05 here (other sessions share the caches), more than a change to the
    trace writer usually moves it; the spread of each tree's invocations says how far to trust
    the difference of their medians."""
    here: list[float] = []
    there: list[float] = []
    with _baseline_tree(baseline) as old_tree:
        for i in range(max(1, invocations)):
            order = [(ROOT, here), (old_tree, there)]
            for tree, into in (order if i % 2 else order[::-1]):
                into.append(_trace_ratio(tree, pairs))
    for name, got in (("this tree", here), (baseline, there)):
        _row(f"trace on ÷ off, {name}", f"**{_median(got):.3f}x** (invocations: "
             f"{min(got):.3f}-{max(got):.3f})", "<= 1.3x")


# ---- row 4 (--full): a million DDI calls -------------------------------------------------------


def million_row(full: bool) -> None:
    if not full:
        _row("one run of ~1M DDI calls (66,700 frames)", "not measured (run with `--full`)",
             "<= 200 MB RSS, per-call <= 1.1x the 15k figure")
        return
    small = _python(ROOT, LONG_RUN, "1000")
    big = _python(ROOT, LONG_RUN, "66700")
    for run in (small, big):
        if run["failure"] is not None:  # a cut run measures nothing: say so, never a ratio
            raise SystemExit(f"the long run failed ({run['failure']} after {run['steps']:,} "
                             "steps): row 4 not measured")
    per_call = (big["cpu"] / 66700) / (small["cpu"] / 1000)
    _row("one run of ~1M DDI calls (66,700 frames)",
         f"{big['cpu']:.0f} s CPU, **{big['rss_kb'] / 1024:.0f} MB** max RSS; per-call cost "
         f"**{per_call:.2f}x** the 15k figure", "<= 200 MB RSS, per-call <= 1.1x the 15k figure")


# ---- row 5: --jobs 2 / --jobs 1 against a pure-Python burn ---------------------------------


def _burn(n: int) -> int:
    x = 0
    for i in range(n):
        x = (x * 31 + i) % 1_000_003
    return x


def _burn_in_two(n: int) -> None:
    # the pool's whole life inside the timing, as explore's own pool is inside explore's:
    # forking the two workers and shutting them down are part of what --jobs 2 costs
    with ProcessPoolExecutor(max_workers=2) as pool:
        list(pool.map(_burn, [n, n]))


def _wall(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def jobs_row(repeats: int, schedules: int) -> None:
    """Row 5 on an exploration of ``schedules`` schedules (``--jobs-schedules``, 120 unless
    told). Fewer make the pool's fixed cost the measurement: ~40 ms of forking, pickling and
    shutting down (docs/performance.md) against ~0.25 s of schedules a worker at 30."""
    from wddmemu._explore import ExploreOptions, explore
    from wddmemu._runner import RunSpec

    spec = RunSpec(scenario="dynamic-vb-ring")
    opts = ExploreOptions(schedules=schedules, strategy="pct", stop_on_first=False,
                          minimise=False, chunk=max(1, schedules // 4))
    n = 3_000_000
    ours, burn = [], []
    for _ in range(repeats):
        one = _wall(lambda: explore(spec, opts))
        two = _wall(lambda: explore(spec, replace(opts, jobs=2)))
        ours.append(one / two)
        b1 = _wall(lambda: [_burn(n), _burn(n)])
        b2 = _wall(lambda: _burn_in_two(n))
        burn.append(b1 / b2)
    o, b = _median(ours), _median(burn)
    _row("`--jobs 2` ÷ `--jobs 1` (wall)",
         f"{o:.2f}x, a pure-Python 2-process burn {b:.2f}x: **{o / b:.2f}** of it",
         ">= 0.9 of the burn's ratio")


# ---- row 6: start-up ------------------------------------------------------------------------


def startup_row(repeats: int) -> None:
    exe = Path(sys.executable).parent / "wddmemu"
    cpus = []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([str(exe), "--help"], check=True, capture_output=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    _row("start-up (`wddmemu --help`, CPU)", f"**{_median(cpus):.2f} s**", "<= 0.5 s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="also the ~1M-call run (minutes)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--schedules", type=int, default=60, help="schedules per exploration")
    ap.add_argument("--jobs-schedules", type=int, default=120,
                    help="schedules of row 5's exploration (see jobs_row)")
    ap.add_argument("--baseline", default=BASELINE, help="the commit row 1 compares against")
    ap.add_argument("--only-schedules", action="store_true", help="row 1 only")
    ap.add_argument("--only-trace", action="store_true",
                    help="row 3 only, for this tree and --baseline, in --repeats invocations "
                         "of each (see trace_against)")
    ap.add_argument("--pairs", type=int, default=9, help="pairs of each --only-trace invocation")
    args = ap.parse_args()
    repeats = max(1, args.repeats)
    print("| metric | measured now | goal |\n|---|---|---|")
    if args.only_trace:
        trace_against(args.baseline, repeats, max(1, args.pairs))
        return
    schedules_row(repeats, args.schedules, args.baseline)
    if args.only_schedules:
        return
    micro_row(repeats)
    trace_row(repeats)
    million_row(args.full)
    jobs_row(repeats, args.jobs_schedules)
    startup_row(repeats)


if __name__ == "__main__":
    main()
