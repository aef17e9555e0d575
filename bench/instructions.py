"""Rows 1 and 3 of issue 13 in machine instructions: figures the shared machine cannot move.

The CPU-time ratios of ``bench/speed.py`` move by 10-30 % between invocations here (other
sessions share the cores and caches). ``valgrind --tool=callgrind`` counts the instructions a
process executes, which do not depend on the load: the same tree, inputs and hash seed give
the same count to a few parts in a million. Each figure is a difference of two runs (n and
n + ``--extra`` schedules or frames), so the interpreter's start-up and the imports cancel:

1. row 1: instructions a schedule of ``explore dynamic-vb-ring --strategy pct``, this tree and
   ``--baseline`` (default ad65d7d, materialised with ``git archive``), and their ratio;
2. row 3: instructions a frame of a ``dynamic-vb-ring`` run with a trace file and without, in
   this tree, and their ratio.

Instructions are a proxy: a cache miss costs more than an add. Report them beside the timed
rows, never instead. Needs valgrind (``apt install valgrind``). Run: ``python
bench/instructions.py [--baseline ad65d7d] [--extra N]`` (a few minutes: valgrind runs Python
~50x slower).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCHEDULES = """
import os, sys
if os.path.isdir("wddmemu"):  # today's layout; the baseline's harness was runtime._explore
    from wddmemu._explore import ExploreOptions, explore
    from wddmemu._runner import RunSpec
else:
    from runtime._explore import ExploreOptions, explore
    from runtime._runner import RunSpec
explore(RunSpec(scenario="dynamic-vb-ring"), ExploreOptions(
    schedules=int(sys.argv[1]), strategy="pct", stop_on_first=False, minimise=False))
"""

FRAMES = """
import os, sys, tempfile
from wddmemu._runner import RunSpec, run_scenario
path = os.path.join(tempfile.mkdtemp(), "t.jsonl") if sys.argv[2] == "on" else None
run_scenario(RunSpec(scenario="dynamic-vb-ring", params={"frames": int(sys.argv[1])}),
             trace=path)
"""


def _instructions(tree: Path, script: str, *args: str) -> int:
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0"}
    err = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
         "-c", script, *args], cwd=tree, env=env, check=True, capture_output=True, text=True,
    ).stderr
    found = re.search(r"Collected : (\d+)", err)
    if found is None:
        raise SystemExit(f"instructions: valgrind printed no count:\n{err[-2000:]}")
    return int(found.group(1))


def _per(tree: Path, script: str, base: int, extra: int, *args: str) -> float:
    """Instructions per unit (schedule or frame) between ``base`` and ``base + extra``."""
    lo = _instructions(tree, script, str(base), *args)
    hi = _instructions(tree, script, str(base + extra), *args)
    return (hi - lo) / extra


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="ad65d7d", help="the commit row 1 compares against")
    ap.add_argument("--extra", type=int, default=10, help="schedules (frames: 3x) counted")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("instructions: valgrind not found: install it (apt install valgrind)")
    with tempfile.TemporaryDirectory(prefix="wddmemu-baseline-") as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        old = _per(Path(tmp), SCHEDULES, 3, args.extra)
    new = _per(ROOT, SCHEDULES, 3, args.extra)
    print("| row | measured (instructions) | ratio |\n|---|---|---|")
    print(f"| 1. a pct schedule of dynamic-vb-ring | {new / 1e6:.1f} M here, {old / 1e6:.1f} M at "
          f"{args.baseline} | **{old / new:.2f}x** fewer |")
    on = _per(ROOT, FRAMES, 10, 3 * args.extra, "on")
    off = _per(ROOT, FRAMES, 10, 3 * args.extra, "off")
    print(f"| 3. a frame of dynamic-vb-ring, trace on / off | {on / 1e6:.2f} M / "
          f"{off / 1e6:.2f} M | **{on / off:.3f}x** |")


if __name__ == "__main__":
    main()
