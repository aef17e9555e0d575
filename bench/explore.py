"""Exploration benchmark: how fast each strategy finds each seeded bug, and how many schedules
per second each runs.

For every entry of the seeded-bug corpus (``wddmemu.corpus``) it prints the number of schedules
until the first detection for ``random``, ``pct`` with d = 2 and d = 3, and the uncontrolled
baseline: the scenario run again and again under trio's own scheduler with no control at all
(the ``free`` strategy). ``>N`` means not found within the cap. Then schedules per second for
each strategy, and for ``pct`` with ``--jobs 2``, with ratios against the uncontrolled baseline
measured in the same process. The machine has 2 cores and is noisy: rates are best of three.
Run: ``python bench/explore.py [--quick]``.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from wddmemu import ExploreOptions, Finding, RunSpec, explore, run_scenario
from wddmemu.corpus import CORPUS


def to_first(spec: RunSpec, strategy: str, depth: int, cap: int) -> str:
    res = explore(spec, ExploreOptions(schedules=cap, strategy=strategy, depth=depth,
                                       minimise=False))
    return str(res.failures[0].index + 1) if res.failures else f">{cap}"


def free_to_first(spec: RunSpec, cap: int) -> str:
    for i in range(cap):
        r = run_scenario(replace(spec, strategy="free", backend="trio"),
                         stop_on_violation=True).run
        if Finding.of(r) is not None:
            return str(i + 1)
    return f">{cap}"


def rate(fn, n: int) -> float:
    best = 0.0
    for _ in range(3):
        t0 = time.perf_counter()
        fn(n)
        best = max(best, n / (time.perf_counter() - t0))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small caps (smoke run)")
    args = ap.parse_args()
    cap, free_cap, n = (100, 30, 40) if args.quick else (1000, 200, 200)

    print(f"{'seeded bug':36} {'layer':7} {'random':>7} {'pct d=2':>8} {'pct d=3':>8} "
          f"{'free (trio)':>11}")
    for b in CORPUS:
        spec = b.spec()
        print(f"{b.name:36} {b.layer:7} {to_first(spec, 'random', 3, cap):>7} "
              f"{to_first(spec, 'pct', 2, cap):>8} {to_first(spec, 'pct', 3, cap):>8} "
              f"{free_to_first(spec, free_cap):>11}", flush=True)

    spec = RunSpec("dynamic-vb-ring")

    def runs(strategy: str, jobs: int = 1):
        def go(k: int) -> None:
            explore(spec, ExploreOptions(schedules=k, strategy=strategy, jobs=jobs,
                                         stop_on_first=False, minimise=False))
        return go

    def free(k: int) -> None:
        for _ in range(k):
            run_scenario(replace(spec, strategy="free", backend="trio"))

    base = rate(free, n)
    print("\nschedules/s on dynamic-vb-ring (reference driver), ratio to uncontrolled trio:")
    print(f"{'free (trio)':14} {base:8.1f}/s  1.00x")
    for label, fn in (("random", runs("random")), ("pct", runs("pct")),
                      ("dfs", runs("dfs")), ("pct --jobs 2", runs("pct", 2))):
        r = rate(fn, n)
        print(f"{label:14} {r:8.1f}/s  {r / base:.2f}x")


if __name__ == "__main__":
    main()
