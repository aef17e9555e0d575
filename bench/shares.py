"""What a schedule of issue 13's row 1 would cost without each of its big parts.

Row 1 (``explore dynamic-vb-ring --strategy pct``) asks for 5x the schedules per second of
commit ad65d7d. This script bounds what any speed-up of one part can give, by running row 1's
workload with that part switched off entirely:

- ``no checker``: the harness's :class:`~wddmemu.Checker` replaced by one that subscribes to
  nothing, so no checker event is built or judged and no data oracle runs;
- ``no race check``: the engine's race check (``Reports.access``, what ``Engine.access`` and
  ``record_access`` call for every :class:`vthreads.SharedCell` access) a no-op; the
  scheduling points stay;
- ``neither``: both.

What is left in ``neither`` is the engine's scheduling and the emulated layers themselves: the
work whose number and order *are* the schedule. The figures are bounds, not goals: a run
without its checker finds nothing. Each variant runs in its own subprocess, the variants
interleaved, CPU time (``time.process_time``) of the exploration only, medians of
``--repeats``. Run: ``python bench/shares.py [--repeats N] [--schedules N]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WORKLOAD = """
import json, sys, time
import vthreads._reports
import wddmemu._runner
from wddmemu._explore import ExploreOptions, explore
from wddmemu._runner import RunSpec

variant, n = sys.argv[1], int(sys.argv[2])


class Silent:
    # the harness's Checker with every duty dropped: attach subscribes to nothing
    def attach(self, engine):
        return self

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


if variant in ("no checker", "neither"):
    wddmemu._runner.Checker = Silent
if variant in ("no race check", "neither"):
    # on the class: each engine binds it as its access when it is made
    vthreads._reports.Reports.access = lambda self, detector, site, write: None
spec = RunSpec(scenario="dynamic-vb-ring")
explore(spec, ExploreOptions(schedules=2, strategy="pct", stop_on_first=False, minimise=False))
c0 = time.process_time()
res = explore(spec, ExploreOptions(schedules=n, strategy="pct", stop_on_first=False,
                                   minimise=False))
print(json.dumps({"cpu": time.process_time() - c0, "runs": res.runs}))
"""

VARIANTS = ("as shipped", "no checker", "no race check", "neither")


def _cpu_per_schedule(variant: str, schedules: int) -> float:
    out = subprocess.run([sys.executable, "-c", WORKLOAD, variant, str(schedules)], cwd=ROOT,
                         check=True, capture_output=True, text=True).stdout
    got = json.loads(out.strip().splitlines()[-1])
    return got["cpu"] / got["runs"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--schedules", type=int, default=30)
    args = ap.parse_args()
    samples: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for _ in range(max(1, args.repeats)):
        for v in VARIANTS:  # interleaved: one of each per repetition
            samples[v].append(_cpu_per_schedule(v, args.schedules))
    med = {v: statistics.median(xs) for v, xs in samples.items()}
    base = med["as shipped"]
    print("| variant | ms CPU a schedule | share of a schedule | speed-up if free |")
    print("|---|---|---|---|")
    for v in VARIANTS:
        share = 1 - med[v] / base
        print(f"| {v} | {1000 * med[v]:.2f} | {100 * share:.0f} % | {base / med[v]:.2f}x |")


if __name__ == "__main__":
    main()
