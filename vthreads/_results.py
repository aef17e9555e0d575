"""Records a run hands back: failures, rule violations, the run result and statistics.

All of them are frozen: a result is evidence, and evidence does not change after the fact.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._decisions import Decisions


@dataclass(frozen=True)
class Violation:
    """A broken rule. ``rule`` is an id from ``reference/`` (``LA-13``, ``KL-6``…) or one of the
    emulator's own oracles (``RACE``, ``DATA``, ``DEADLOCK``…)."""

    rule: str
    message: str
    step: int
    thread: str
    t: int = 0
    fields: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.rule} at step {self.step} on {self.thread}: {self.message}"


@dataclass(frozen=True)
class Failure:
    """Why a run stopped early.

    ``kind`` is one of ``exception`` (Python exception escaped an emulated thread), ``deadlock``,
    ``step-budget`` (livelock guard), ``divergence`` (a replay no longer matches its program) or
    ``violation`` (``stop_on_violation`` was set and a rule broke)."""

    kind: str
    message: str
    step: int
    thread: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        where = f" on {self.thread}" if self.thread else ""
        return f"{self.kind} at step {self.step}{where}: {self.message}"


@dataclass(frozen=True)
class EngineStatistics:
    """What the scheduler did, as returned by :meth:`Engine.statistics`."""

    steps: int
    switches: int
    decisions: int
    threads: int
    time_ns: int
    timers_fired: int


@dataclass(frozen=True)
class RunResult:
    """The outcome of :meth:`Engine.run`.

    ``ok`` is true when no failure stopped the run and no rule broke. ``decisions`` is the compact
    schedule: the chosen thread's tid at every point where more than one thread could run; feed it
    to ``Engine(strategy="replay", decisions=...)`` to reproduce the run exactly. It is a
    :class:`~vthreads.Decisions` (one byte a decision), which compares, hashes and indexes as the
    tuple of ints it stands for."""

    failure: Failure | None
    violations: tuple[Violation, ...]
    decisions: Decisions
    statistics: EngineStatistics
    threads: tuple[tuple[str, str], ...]
    value: Any = None

    @property
    def ok(self) -> bool:
        return self.failure is None and not self.violations

    @property
    def steps(self) -> int:
        return self.statistics.steps

    @property
    def time_ns(self) -> int:
        return self.statistics.time_ns

    def rules(self) -> list[str]:
        """The rule ids that broke, in the order they first broke (no repeats)."""
        seen: dict[str, None] = {}
        for v in self.violations:
            seen.setdefault(v.rule, None)
        return list(seen)

    def summary(self) -> str:
        lines = [f"{'ok' if self.ok else 'FAILED'}: {self.steps} steps, t={self.time_ns} ns"]
        if self.failure is not None:
            lines.append(f"failure: {self.failure}")
        lines.extend(f"violation: {v}" for v in self.violations)
        return "\n".join(lines)

    def check(self) -> RunResult:
        """Raise ``AssertionError`` with the summary unless the run is ok (for tests)."""
        if not self.ok:
            raise AssertionError(self.summary())
        return self
