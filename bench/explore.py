"""Exploration benchmark (issue 12): how many schedules each strategy needs to find each bug.

Strategies: ``random``, ``pct`` with d = 2 and d = 3, ``pos`` (partial-order sampling), and the
systematic ``dfs`` (iterative preemption bounding, bound 2) and ``dpor``. Workloads: the hard
corpus (``wddmemu.corpus.HARD_CORPUS``) and the four small models of ``bench/models.py``.

Printed, per workload and strategy: schedules to the first detection — for the seeded
strategies the median over ``--seeds`` seeds (seed ``s`` explores from ``s * 1000``), for dfs
and dpor the one deterministic count — ``>N`` when not found within the cap; for the models,
dfs/dpor also give executions to exhaust. Then the summary the issue's targets are about: per
strategy, the median over the hard corpus of its per-bug medians, its ratio to random's, and
whether every bug was found within the cap by some strategy. Last, schedules per second (the
machine is loaded: rates are indicative, the counts are the figures).
Run: ``python bench/explore.py --quick`` (smoke run) or ``python bench/explore.py`` (the full
run: 10 seeds, cap 20; the models with cap 2,000); ``--only NAME`` runs one workload,
``--no-models`` / ``--no-corpus`` skip a part.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from wddmemu import ExploreOptions, RunSpec, explore
from wddmemu.corpus import HARD_CORPUS

sys.path.insert(0, str(Path(__file__).parent))
import models

import vthreads as vt

SEEDED = (("random", 3), ("pct", 2), ("pct", 3), ("pos", 3))
COLUMNS = ("random", "pct d=2", "pct d=3", "pos", "dfs", "dpor")


def _median(counts: list[int]) -> float:
    return float(statistics.median(counts))


def _show(v: float, cap: int) -> str:
    if v != v:  # NaN: not run
        return "."
    return f">{cap}" if v > cap else f"{v:g}"


def corpus_row(spec: RunSpec, cap: int, seeds: int, only: set[str] | None = None
               ) -> list[float]:
    """Per strategy: median schedules to the first detection (cap + 1 when not found; NaN for
    a strategy left out with ``--strategies``)."""
    row = []
    for (strategy, depth), col in zip(SEEDED, COLUMNS, strict=False):
        if only is not None and col not in only:
            row.append(float("nan"))
            continue
        counts = []
        for s in range(seeds):
            res = explore(spec, ExploreOptions(schedules=cap, strategy=strategy, depth=depth,
                                               seed=s * 1000, minimise=False))
            counts.append(res.failures[0].index + 1 if res.failures else cap + 1)
        row.append(_median(counts))
    for strategy in ("dfs", "dpor"):
        if only is not None and strategy not in only:
            row.append(float("nan"))
            continue
        res = explore(spec, ExploreOptions(schedules=cap, strategy=strategy, minimise=False))
        row.append(float(res.failures[0].index + 1 if res.failures else cap + 1))
    return row


def model_row(model: models.Model, cap: int, seeds: int) -> list[str]:
    if model is models.correct:
        row = ["-"] * len(SEEDED)
    else:
        row = [models.seeded_to_first(model, s, d, cap, seeds) for s, d in SEEDED]
    for search in ("dfs", "dpor"):
        row.append("/".join(models.systematic(model, search, cap, 2 if search == "dfs" else None)))
    return row


def rates(n: int) -> None:
    spec = RunSpec("reentrant-lockasync", ddi_version=0xB)
    print(f"\nschedules/s on reentrant-lockasync 0xB, reference driver ({n} schedules):")
    for strategy, depth in (*SEEDED, ("portfolio", 3), ("dfs", 3), ("dpor", 3)):
        t0 = time.process_time()
        res = explore(spec, ExploreOptions(schedules=n, strategy=strategy, depth=depth,
                                           stop_on_first=False, minimise=False))
        dt = time.process_time() - t0
        print(f"  {strategy:10} d={depth}  {res.runs / dt:7.1f}/s (CPU time)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small caps (smoke run)")
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--cap", type=int, default=None)
    ap.add_argument("--only", default=None, help="one hard-corpus entry or model by name")
    ap.add_argument("--no-models", action="store_true")
    ap.add_argument("--no-corpus", action="store_true")
    ap.add_argument("--out", default=None, help="write the output to this file instead")
    ap.add_argument("--strategies", default=None,
                    help="comma-separated columns to run on the corpus (default: all)")
    args = ap.parse_args()
    if args.out:
        sys.stdout = open(args.out, "w", buffering=1)  # noqa: SIM115 (for the whole run)
    cap, seeds, model_cap, n = (10, 3, 200, 10) if args.quick else (20, 10, 2000, 40)
    cap, seeds = args.cap or cap, args.seeds or seeds

    print(f"hard corpus: schedules to the first detection (median of {seeds} seeds; cap {cap})")
    print(f"{'bug':44} " + " ".join(f"{c:>8}" for c in COLUMNS))
    table: dict[str, list[float]] = {}
    for b in HARD_CORPUS:
        if args.no_corpus or (args.only and b.name != args.only):
            continue
        only = set(args.strategies.split(",")) if args.strategies else None
        table[b.name] = row = corpus_row(b.spec(), cap, seeds, only)
        print(f"{b.name:44} " + " ".join(f"{_show(v, cap):>8}" for v in row), flush=True)
    if len(table) > 1:
        summary(table, cap)
    if not args.no_models:
        print(f"\nsmall models: executions to the first detection (median of {seeds} seeds) / "
              "for dfs and dpor also to exhaust")
        for name, model in models.MODELS.items():
            if args.only and name != args.only:
                continue
            row = model_row(model, model_cap, seeds)
            print(f"{name:22} " + " ".join(f"{c:>12}" for c in row), flush=True)
    if not args.only:
        rates(n)


def summary(table: dict[str, list[float]], cap: int) -> None:
    print("\nper strategy: median over the hard corpus of the per-bug medians (ratio to random)")
    cols = list(zip(*table.values(), strict=True))
    base = statistics.median(cols[0])
    for name, col in zip(COLUMNS, cols, strict=True):
        if any(v != v for v in col):
            continue  # not run
        med = statistics.median(col)
        print(f"  {name:8} {_show(med, cap):>6}  {med / base:5.2f}x")
    missed = [b for b, row in table.items() if min(v for v in row if v == v) > cap]
    print(f"every bug found within {cap} schedules by some strategy: "
          + ("yes" if not missed else f"no ({', '.join(missed)})"))


if __name__ == "__main__":
    vt.Engine("fifo")  # imports settle before timing
    main()
