"""Screen one hard-corpus candidate (issue 12): fifo, then per strategy the schedules to the
first detection over 10 seeds (seed ``s`` from ``s * 1000``), the median, on how many seeds
schedule 1 already finds it, and the rules found.

Run: ``python bench/hard_screen.py SCENARIO DRIVER BUGS CAP [STRATEGIES]`` — ``DRIVER`` a
variant name or ``reference``, ``BUGS`` comma-separated runtime bugs (``""`` for none),
``STRATEGIES`` comma-separated from ``random``, ``pct3``, ``pos`` (default all three). DDI 0xB.
Example: ``python bench/hard_screen.py discard-every-frame reference refs-from-queue-length 30``.
"""

from __future__ import annotations

import statistics
import sys
from dataclasses import replace

from wddmemu import ExploreOptions, RunSpec, explore
from wddmemu._runner import run_scenario


def main(argv: list[str]) -> None:
    scenario, driver, bugs, cap = argv[0], argv[1], argv[2], int(argv[3])
    strategies = argv[4].split(",") if len(argv) > 4 else ["random", "pct3", "pos"]
    spec = RunSpec(scenario, driver=driver, ddi_version=0xB,
                   bugs=tuple(b for b in bugs.split(",") if b))
    fifo = run_scenario(replace(spec, strategy="fifo")).run
    print("fifo clean:", fifo.ok, "" if fifo.ok else fifo.summary()[:200], flush=True)
    for st in strategies:
        name, depth = ("pct", 3) if st == "pct3" else (st, 3)
        counts, rules = [], set()
        for s in range(10):
            res = explore(spec, ExploreOptions(schedules=cap, strategy=name, depth=depth,
                                               seed=s * 1000, minimise=False))
            if res.failures:
                counts.append(res.failures[0].index + 1)
                rules.add(res.failures[0].finding.rule)
            else:
                counts.append(cap + 1)
        print(f"{st}: counts={counts} median={statistics.median(counts)} "
              f"schedule-1={sum(c == 1 for c in counts)}/10 rules={sorted(rules)}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 5:
        sys.exit("usage: hard_screen.py SCENARIO DRIVER BUGS CAP [STRATEGIES]")
    main(sys.argv[1:])
