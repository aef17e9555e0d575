"""Cluster benchmark (issue 15): what ``--cluster local:2`` buys over ``--jobs 1`` on this machine,
next to the machine's own ceiling, and what one Dask task costs.

In one run, with interleaved repetitions (every repetition measures every variant, so a burst of
load from other processes hits them all alike) and medians:

* schedules/s of ``explore`` with ``--jobs 1`` and on a 2-worker LocalCluster (started once,
  outside the timing; its start-up is reported apart), and their ratio;
* the same for ``dfs`` (preemption bound 1), whose search tree is split into subtrees and merged
  back into the one-process search, with the share of speculative schedules (run by a worker,
  not part of the one-process search);
* the same for ``dpor`` (preemption bound 1): the client keeps the one-process search and the
  workers run subtrees it is predicted to need, with the speculation's hit rate (subtree results
  the merge used ÷ results computed) and the share of executions run but not merged;
* the same ratio for a pure-Python CPU burn run in 1 process vs 2 processes: the real 2-process
  ceiling of this sandbox, which a cluster of 2 local workers cannot beat;
* the cost of one Dask task (a no-op, submitted and awaited the way ``drive`` does: a window of
  two per worker), the cluster's schedules/s for several chunk sizes, and the chunk size at
  which the task cost is under 5 % of a chunk's work.

All times are wall clock (the cluster's work happens in other processes). Run:
``python bench/cluster.py [--quick]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

import distributed

from wddmemu import ExploreOptions, RunSpec, explore, explore_on_cluster
from wddmemu import connect_cluster as connect
from wddmemu._cluster import drive, plan

SPEC = RunSpec("dynamic-vb-ring")  # clean with the reference driver: every schedule runs
DFS_SPEC = RunSpec("reentrant-lockasync", ddi_version=0xB)  # clean: the search runs to its end


def burn(n: int) -> int:
    """Pure-Python CPU work, no I/O, no allocation to speak of."""
    x = 0
    for i in range(n):
        x = (x * 31 + i) & 0xFFFF_FFFF
    return x


def wall(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def task_cost(client, n: int) -> float:
    """Seconds per no-op task, submitted with a window of two per worker thread."""
    window = 2 * sum(client.nthreads().values())
    t0 = time.perf_counter()
    inflight = [client.submit(len, (), pure=False) for _ in range(min(window, n))]
    sent = len(inflight)
    while inflight:
        done = distributed.wait(inflight, return_when="FIRST_COMPLETED").done
        inflight = [f for f in inflight if f not in done]
        while sent < n and len(inflight) < window:
            inflight.append(client.submit(len, (), pure=False))
            sent += 1
    return (time.perf_counter() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer schedules and repetitions")
    args = ap.parse_args()
    n, reps, work = (40, 3, 3_000_000) if args.quick else (120, 5, 6_000_000)
    opts = ExploreOptions(schedules=n, strategy="pct", stop_on_first=False, minimise=False)
    dfs = replace(opts, strategy="dfs", preemption_bound=1, chunk=5)
    dpor = replace(dfs, strategy="dpor")
    spec_dfs = DFS_SPEC

    t0 = time.perf_counter()
    with connect("local:2") as client, ProcessPoolExecutor(2) as pool:
        startup = time.perf_counter() - t0
        list(pool.map(burn, [1000, 1000]))  # warm the pool's processes
        explore_on_cluster(client, SPEC, replace(opts, schedules=4, chunk=2))  # warm workers
        explore_on_cluster(client, DFS_SPEC, replace(dfs, schedules=4, chunk=2))
        explore_on_cluster(client, DFS_SPEC, replace(dpor, schedules=4, chunk=2))
        rows: dict[str, list[float]] = {k: [] for k in ("jobs1", "dask", "dfs1", "dfsdask",
                                                         "dpor1", "dpordask", "burn1", "burn2")}
        spec_runs: list[float] = []
        dpor_waste: list[float] = []
        dpor_hits: list[float] = []
        for _ in range(reps):
            rows["jobs1"].append(n / wall(lambda: explore(SPEC, opts)))
            rows["dask"].append(n / wall(lambda: explore_on_cluster(client, SPEC, opts)))
            one = explore(spec_dfs, dfs)  # untimed: the runs the timed searches make
            rows["dfs1"].append(one.runs / wall(lambda: explore(spec_dfs, dfs)))
            split = plan(spec_dfs, dfs)
            rows["dfsdask"].append(one.runs / wall(lambda s=split: drive(client, [s])))
            spec_runs.append((split.ran - split.runs) / split.ran)
            one = explore(spec_dfs, dpor)
            rows["dpor1"].append(one.runs / wall(lambda: explore(spec_dfs, dpor)))
            split = plan(spec_dfs, dpor)
            rows["dpordask"].append(one.runs / wall(lambda s=split: drive(client, [s])))
            assert split.result().claim == one.claim  # the same search, merged
            dpor_waste.append((split.ran - split.runs) / split.ran)
            dpor_hits.append(split.merged.used / split.merged.filed)
            rows["burn1"].append(2 / wall(lambda: [burn(work), burn(work)]))
            rows["burn2"].append(2 / wall(lambda: list(pool.map(burn, [work, work]))))
        med = {k: statistics.median(v) for k, v in rows.items()}
        per_task = statistics.median(task_cost(client, 200) for _ in range(3))
        sweep = {}
        for chunk in (1, 5, 25, 100):
            o = replace(opts, chunk=chunk)
            sweep[chunk] = statistics.median(
                n / wall(lambda o=o: explore_on_cluster(client, SPEC, o)) for _ in range(2))

    per_schedule = 1 / med["jobs1"]
    print(f"LocalCluster(2) start-up: {startup:.1f} s (once per --cluster local:N run)")
    print(f"{n} pct schedules of {SPEC.scenario}, {reps} interleaved repetitions, medians:")
    print(f"  --jobs 1           {med['jobs1']:7.1f} schedules/s")
    print(f"  --cluster local:2  {med['dask']:7.1f} schedules/s   "
          f"ratio {med['dask'] / med['jobs1']:.2f}x")
    print(f"{dfs.schedules} dfs schedules (bound 1, chunk {dfs.chunk}) of {spec_dfs.scenario}/"
          f"{spec_dfs.driver}:")
    print(f"  --jobs 1           {med['dfs1']:7.1f} schedules/s")
    print(f"  --cluster local:2  {med['dfsdask']:7.1f} schedules/s   "
          f"ratio {med['dfsdask'] / med['dfs1']:.2f}x   speculative "
          f"{statistics.median(spec_runs):.0%} of the schedules run")
    print(f"{dpor.schedules} dpor executions (bound 1, chunk {dpor.chunk}) of "
          f"{spec_dfs.scenario}/{spec_dfs.driver}:")
    print(f"  --jobs 1           {med['dpor1']:7.1f} schedules/s")
    print(f"  --cluster local:2  {med['dpordask']:7.1f} schedules/s   "
          f"ratio {med['dpordask'] / med['dpor1']:.2f}x   subtree results used "
          f"{statistics.median(dpor_hits):.0%} of those computed, executions not merged "
          f"{statistics.median(dpor_waste):.0%}")
    print(f"  pure-Python burn   1 process {med['burn1']:.2f}/s, 2 processes "
          f"{med['burn2']:.2f}/s   ratio {med['burn2'] / med['burn1']:.2f}x (the ceiling)")
    print(f"one Dask task (no-op, windowed): {per_task * 1e3:.2f} ms; one schedule: "
          f"{per_schedule * 1e3:.1f} ms ({per_task / per_schedule:.2f} schedules' worth)")
    print("cluster schedules/s by chunk size: "
          + ", ".join(f"{c}: {r:.1f}" for c, r in sweep.items()))
    print(f"task cost under 5 % of a chunk from chunk >= "
          f"{max(1, round(per_task / (0.05 * per_schedule)))} schedules")


if __name__ == "__main__":
    main()
