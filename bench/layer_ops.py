"""Work done per schedule by each layer, counted, not timed: Python bytecodes executed and
Python function calls (``sys.settrace`` with opcode events), by package (an enum operation or
a dataclass ``__init__`` counts for the package that called it), on ``explore
dynamic-vb-ring --strategy pct`` — this tree and a baseline commit (``git archive``), each in
a subprocess.

Why counts: the machine is shared, so a CPU-time share of the emulated layers drifts by tens
of percent between runs, while the bytecodes a schedule executes are the same on every run
(the schedules are seeded). A bytecode is not a fixed cost (a ``CALL`` of ``getattr`` is
cheaper than building an enum member), so the counts say where the work is and whether a
change removed some; the CPU ratios stay ``bench/speed.py``'s.

Run: ``python bench/layer_ops.py [--baseline 6afee7f] [--schedules 5]``.
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
PACKAGES = ("vthreads", "kmd", "umd", "runtime", "scenarios", "wddmemu")
#: the emulated layers (the enum operations and dataclass ``__init__`` a package's code runs
#: count as that package's)
LAYERS = ("kmd", "umd", "runtime", "scenarios")

# Runs in a subprocess with the tree under test first on sys.path; prints one JSON line.
COUNT = """
import collections, json, sys
from wddmemu._explore import ExploreOptions, explore
from wddmemu._runner import RunSpec
n, packages = int(sys.argv[1]), sys.argv[2].split(",")
opts = lambda k: ExploreOptions(schedules=k, strategy="pct", stop_on_first=False, minimise=False)
explore(RunSpec(scenario="dynamic-vb-ring"), opts(1))  # imports and caches warm
ops, calls, where = collections.Counter(), collections.Counter(), {}
def package(path):
    if path not in where:
        where[path] = next((p for p in packages if f"/{p}/" in path),
                           "" if path.endswith("/enum.py") or path == "<string>" else "other")
    return where[path]
tracers = {}
def tracer_for(p):  # counts a frame's opcodes for package p
    def local(frame, event, arg):
        if event == "opcode":
            ops[p] += 1
        return local
    return tracers.setdefault(p, local)
def trace(frame, event, arg):
    p = package(frame.f_code.co_filename)
    if not p:  # enum.py or a dataclass's generated __init__: the package that called it
        back = frame.f_back
        while back is not None and not package(back.f_code.co_filename):
            back = back.f_back
        p = "other" if back is None else package(back.f_code.co_filename)
    calls[p] += 1
    frame.f_trace_opcodes = True
    return tracer_for(p)
sys.settrace(trace)
explore(RunSpec(scenario="dynamic-vb-ring"), opts(n))
sys.settrace(None)
print(json.dumps({"ops": ops, "calls": calls}))
"""


def count(tree: Path, schedules: int) -> dict[str, dict[str, int]]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, "-c", COUNT, str(schedules), ",".join(PACKAGES)],
                         cwd=tree, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="6afee7f", help="the commit to compare against")
    ap.add_argument("--schedules", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="wddmemu-baseline-") as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        old = count(Path(tmp), args.schedules)
    new = count(ROOT, args.schedules)
    n = args.schedules
    print(f"| per schedule | {args.baseline} bytecodes | now | ratio | {args.baseline} calls "
          "| now | ratio |\n|---|---|---|---|---|---|---|")
    rows = sorted(set(old["ops"]) | set(new["ops"]), key=lambda k: -old["ops"].get(k, 0))
    for name in [*rows, "emulated layers"]:
        pick = (lambda d: sum(d.get(k, 0) for k in LAYERS)) if name == "emulated layers" else (
            lambda d, name=name: d.get(name, 0))
        o_ops, n_ops = pick(old["ops"]) / n, pick(new["ops"]) / n
        o_calls, n_calls = pick(old["calls"]) / n, pick(new["calls"]) / n
        print(f"| {name} | {o_ops:,.0f} | {n_ops:,.0f} | {o_ops / max(n_ops, 1):.2f}x "
              f"| {o_calls:,.0f} | {n_calls:,.0f} | {o_calls / max(n_calls, 1):.2f}x |")


if __name__ == "__main__":
    main()
