"""Byte-identical traces: the check every speed change must pass (issue 13).

    .venv/bin/python bench/traces.py write DIR          # traces + run output of this tree
    .venv/bin/python bench/traces.py compare A B        # every file of A and B, byte for byte

``write`` runs ``wddmemu run SCENARIO --ddi-version 0xB --strategy S --seed N --backend B
--trace DIR/SCENARIO-S-N-B.jsonl`` for every built-in scenario, strategy (pct, random, pos),
seed (1, 7) and backend (asyncio, trio) — 180 runs — in this process through the CLI's own entry
point, and keeps beside each trace the command's output and exit code (``.out``, with DIR
written as ``OUT`` so two directories compare). Make a baseline from the commit before a change
(``git worktree add``, or ``git archive`` into a directory with its own install), write the
same set from the changed tree, and ``compare``: it prints each file that differs or is missing
and exits 1 if any does, 0 if all 360 files are identical. Decisions are on every ``sched``
line, so identical traces mean identical decisions, findings and outputs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from pathlib import Path

STRATEGIES = ("pct", "random", "pos")
SEEDS = (1, 7)
BACKENDS = ("asyncio", "trio")


def write(out: Path) -> int:
    from scenarios.builtin import BUILTIN_NAMES
    from wddmemu import _cli

    out.mkdir(parents=True, exist_ok=True)
    n = 0
    for name in BUILTIN_NAMES:
        for strategy in STRATEGIES:
            for seed in SEEDS:
                for backend in BACKENDS:
                    stem = f"{name}-{strategy}-{seed}-{backend}"
                    trace = out / f"{stem}.jsonl"
                    buf = io.StringIO()
                    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
                        rc = _cli.main(["run", name, "--ddi-version", "0xB", "--strategy",
                                        strategy, "--seed", str(seed), "--backend", backend,
                                        "--trace", str(trace)])
                    text = buf.getvalue().replace(str(out), "OUT") + f"rc={rc}\n"
                    (out / f"{stem}.out").write_text(text)
                    n += 1
    print(f"{n} runs written to {out}")
    return 0


def compare(a: Path, b: Path) -> int:
    names = sorted({p.name for p in a.iterdir()} | {p.name for p in b.iterdir()})
    bad = []
    for name in names:
        pa, pb = a / name, b / name
        if not pa.is_file() or not pb.is_file():
            bad.append(f"{name}: only in {a if pa.is_file() else b}")
        elif pa.read_bytes() != pb.read_bytes():
            bad.append(f"{name}: differs")
    for line in bad:
        print(line)
    print(f"{len(names)} files, {len(bad)} differ" if bad else f"{len(names)} files identical")
    return 1 if bad else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write", help="write this tree's traces and outputs into DIR")
    w.add_argument("dir", type=Path)
    c = sub.add_parser("compare", help="compare two directories written by 'write'")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    args = ap.parse_args()
    return write(args.dir) if args.cmd == "write" else compare(args.a, args.b)


if __name__ == "__main__":
    sys.exit(main())
