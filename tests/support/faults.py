"""The fault sweep (issue 14): every built-in scenario under injected hangs and removals.

Each scenario is probed once under fifo (its steps and thunk calls, as ``explore --faults``
measures them), then run with ``tdr@step`` at a few fractions of its steps, ``removal@call`` at a
few fractions of its calls and ``removal@device``, on each DDI version, under each schedule. A
run on the reference driver must end with no hang, no escaped exception, no finding (the driver
is correct: any finding is a false one) and a complete trace (its last event is ``run.end``).

    python -m tests.support.faults          # the full sweep, with its counts
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

import orjson

from scenarios import builtin
from wddmemu._explore import fault_space
from wddmemu._runner import RunSpec, run_scenario

#: the hangs: the engine's deadlock and livelock verdicts, and the watchdog's
HANG_KINDS = ("deadlock", "step-budget", "hang", "timeout")


@dataclass
class SweepCounts:
    runs: int = 0
    hangs: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"{self.runs} runs: {len(self.hangs)} hangs, {len(self.exceptions)} escaped "
                f"exceptions, {len(self.findings)} false findings, {len(self.incomplete)} "
                "incomplete traces")


def builtin_names() -> list[str]:
    """The built-in scenarios (not the ones tests or ``--load`` modules registered)."""
    return list(builtin.BUILTIN_NAMES)


def fault_points(steps: int, calls: int, fractions: Iterable[float]) -> tuple[str, ...]:
    """``tdr@step`` and ``removal@call`` at each fraction of the run, and ``removal@device``."""
    fr = tuple(fractions)
    out = [f"tdr@step={max(1, int(steps * f))}" for f in fr]
    out += [f"removal@call={max(1, int(calls * f))}" for f in fr]
    return (*dict.fromkeys(out), "removal@device")


def specs(names: Iterable[str], fractions: Iterable[float], ddis: Iterable[int],
          schedules: Iterable[tuple[str, int]]) -> Iterator[RunSpec]:
    fractions, ddis, schedules = tuple(fractions), tuple(ddis), tuple(schedules)
    for name in names:
        for ddi in ddis:
            base = RunSpec(name, ddi_version=ddi)
            for fault in fault_points(*fault_space(base), fractions):
                for strategy, seed in schedules:
                    yield replace(base, faults=(fault,), strategy=strategy, seed=seed)


def run_one(spec: RunSpec, counts: SweepCounts) -> None:
    buf = io.BytesIO()
    r = run_scenario(spec, trace=buf).run
    what = spec.command()
    counts.runs += 1
    f = r.failure
    if f is not None and f.kind in HANG_KINDS:
        counts.hangs.append(f"{what}: {f.message}")
    elif f is not None and f.kind == "exception":
        counts.exceptions.append(f"{what}: {f.message}")
    if r.violations:
        v = r.violations[0]
        counts.findings.append(f"{what}: {v.rule} {v.message}")
    lines = buf.getvalue().splitlines()
    if not lines or orjson.loads(lines[-1]).get("event") != "run.end":
        counts.incomplete.append(what)


def sweep(names: Iterable[str] | None = None, fractions: Iterable[float] = (0.25, 0.5, 0.75),
          ddis: Iterable[int] = (0xA, 0xB),
          schedules: Iterable[tuple[str, int]] = (("fifo", 0),)) -> SweepCounts:
    counts = SweepCounts()
    for spec in specs(builtin_names() if names is None else names, fractions, ddis,
                      schedules):
        run_one(spec, counts)
    return counts


#: the full sweep: fifo and three random schedules, five points of each kind
FULL = {"fractions": (0.1, 0.3, 0.5, 0.7, 0.9),
        "schedules": (("fifo", 0), ("random", 1), ("random", 2), ("pct", 3))}


def main() -> int:
    counts = sweep(**FULL)  # type: ignore[arg-type]
    for kind in ("hangs", "exceptions", "findings", "incomplete"):
        for line in getattr(counts, kind)[:20]:
            print(f"{kind}: {line}")
    print(counts.line())
    bad = counts.hangs or counts.exceptions or counts.findings or counts.incomplete
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
