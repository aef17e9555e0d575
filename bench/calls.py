"""Python function calls per unit of work: a deterministic companion to ``bench/speed.py``.

On the shared 2-core machine the CPU-time ratios of ``bench/speed.py`` move by 10-20 % between
invocations (other sessions' processes share the caches), which hides a change of that size.
The number of Python-level calls (``cProfile``'s count, C calls included) a workload makes does
not depend on the machine at all: it is the same in every run of one tree, so a change to the
interpreter-bound hot path (the engine, the race detector, the checker, the trace writer) shows
exactly. It is a proxy, not a speed: a call saved is worth ~50-100 ns, an allocation or a
``bytes`` copy is not counted at all, so report it beside the timed rows, never instead.

Rows, each for this tree and for ``--baseline`` (a commit, materialised with ``git archive``):

1. ``explore dynamic-vb-ring --strategy pct``, 30 schedules (the workload of speed.py's row 1);
2. one 40-frame ``dynamic-vb-ring`` run with a trace file, and the same run without (row 3).

Run: ``python bench/calls.py [--baseline 6afee7f]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WORKLOAD = """
import cProfile, json, pstats, sys, tempfile
from pathlib import Path
from wddmemu._explore import ExploreOptions, explore
from wddmemu._runner import RunSpec, run_scenario
def calls(fn):
    pr = cProfile.Profile()
    pr.enable()
    fn()
    pr.disable()
    return pstats.Stats(pr).total_calls
spec = RunSpec(scenario="dynamic-vb-ring")
warm = ExploreOptions(schedules=2, strategy="pct", stop_on_first=False, minimise=False)
explore(spec, warm)  # imports and first-run caches out of the count
opts = ExploreOptions(schedules=30, strategy="pct", stop_on_first=False, minimise=False)
short = RunSpec(scenario="dynamic-vb-ring", params={"frames": 40})
path = Path(tempfile.mkdtemp()) / "t.jsonl"
print(json.dumps({"explore": calls(lambda: explore(spec, opts)),
                  "on": calls(lambda: run_scenario(short, trace=path)),
                  "off": calls(lambda: run_scenario(short)),
                  "where": sys.modules[explore.__module__].__file__}))
"""


def measure(tree: Path) -> dict:
    """The call counts of ``tree`` (its own packages first on ``sys.path``)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, "-c", WORKLOAD], cwd=tree, env=env, check=True,
                         capture_output=True, text=True).stdout
    got = json.loads(out.strip().splitlines()[-1])
    assert got["where"].startswith(str(tree)), f"{tree} did not answer for itself"
    return got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="6afee7f", help="the commit to compare against")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="wddmemu-baseline-") as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        old = measure(Path(tmp))
    new = measure(ROOT)
    print(f"| workload | {args.baseline} | this tree | ratio |\n|---|---|---|---|")
    for key, what in (("explore", "`explore dynamic-vb-ring --strategy pct`, 30 schedules"),
                      ("on", "40-frame run, trace on"), ("off", "40-frame run, trace off")):
        print(f"| {what} | {old[key]:,} | {new[key]:,} | {new[key] / old[key]:.3f} |")
    print(f"| trace on ÷ off (calls) | {old['on'] / old['off']:.3f} | "
          f"{new['on'] / new['off']:.3f} | |")


if __name__ == "__main__":
    main()
