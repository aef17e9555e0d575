"""What a run reports: its failure (at most one, the first), its rule violations — races among
them (each (cell, site, site) pair once per run) — and the :class:`RunResult` at the end."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._decisions import Decisions
from ._hb import Race, RaceDetector
from ._results import Failure, RunResult, Violation
from ._threads import VThread, _current, _thread_var, bind_run

if TYPE_CHECKING:
    from ._engine import Engine


#: the failures that stop the run inside the failing thread's step (``StepObserver.cut``)
_CUTS = frozenset({"exception", "violation", "foreign-await"})


class Reports:
    """The failure and violations of one engine's run."""

    __slots__ = ("_eng", "_race_seen", "failure", "violations")

    def __init__(self, eng: Engine) -> None:
        self._eng = eng
        self.failure: Failure | None = None
        self.violations: list[Violation] = []
        self._race_seen: set[tuple[str, str, str]] = set()

    def fail(self, kind: str, message: str, t: VThread | None, details: dict[str, Any]) -> None:
        """The run fails (only the first failure counts) and stops."""
        if self.failure is not None:
            return
        eng = self._eng
        if eng._observer is not None and t is not None and kind in _CUTS:
            # the run stops inside t's step (its code raised, or broke a rule): close that
            # step, so its footprint counts for a search that goes on after failures (DPOR
            # with stop_on_failure=False lost its races and claimed exhaustion: h8's F2), and
            # mark it as the end of the run, which takes away every other thread's further
            # steps (without the mark DPOR never ran them before the failing step: exhausted
            # at one execution where dfs found ten classes and a race, sweep F's D1)
            # (a foreign await, yielded or raised, ends the run inside the step the same way)
            eng._observer.cut(t, finished=kind == "exception")
        self.failure = Failure(kind, message, eng.step, t.name if t else None, details)
        if eng._tracing:
            eng._emit("run.failure", kind=kind, message=message)
        eng._done()

    def violation(self, rule: str, message: str, fields: dict[str, Any]) -> Violation:
        """Record that ``rule`` broke (both strs: the trace's reader refuses anything else,
        sweep F D8); under ``stop_on_violation`` the run stops."""
        if type(rule) is not str or type(message) is not str:
            raise TypeError(f"violation takes a rule id and a message, both str, not "
                            f"{type(rule).__name__} and {type(message).__name__}")
        eng = self._eng
        t = _thread_var.get(None)
        v = Violation(rule, message, eng.step, t.name if t else "-", eng.clock, fields)
        self.violations.append(v)
        if eng._tracing:
            eng._emit("violation", rule=rule, message=message, **fields)
        if eng.stop_on_violation:
            self.fail("violation", f"{rule}: {message}", t, {"rule": rule})
        return v

    def race(self, race: Race) -> None:
        a, b = race.first, race.second
        key = (race.cell, a.site, b.site)
        if key in self._race_seen:
            return
        self._race_seen.add(key)
        self.violation(
            "RACE",
            f"{race.kind} race on {race.cell}: {a.thread} at {a.site} (step {a.step}) and "
            f"{b.thread} at {b.site} (step {b.step}) are not ordered by happens-before",
            {
                "cell": race.cell,
                "first": {"thread": a.thread, "site": a.site, "step": a.step, "write": a.write},
                "second": {"thread": b.thread, "site": b.site, "step": b.step,
                           "write": b.write},
            },
        )

    def access(self, det: RaceDetector, site: str, write: bool) -> None:
        """Race-check one access by the running thread to the state ``det`` guards."""
        # what eng.current_thread() returns, its errors only when there is no thread
        me = _thread_var.get(None) or _current()
        if det._run is not me._run:
            bind_run(det, me, f"the shared state {det.name}")
        vc = me.vc
        # Access's fields as a plain tuple: the detector makes the records of a race only
        acc = (me.tid, me.name, vc[me.tid], site, self._eng.step, write)
        races = det.on_write(acc, vc) if write else det.on_read(acc, vc)
        for r in races:
            self.race(r)

    def result(self) -> RunResult:
        """The run's result (traced as ``run.end``)."""
        eng = self._eng
        result = RunResult(
            failure=self.failure,
            violations=tuple(self.violations),
            decisions=Decisions(eng._decisions),  # shared, not copied
            statistics=eng.statistics(),
            threads=tuple((t.name, t.state) for t in eng._threads),
            value=eng._value,
        )
        if eng._tracing:
            f = result.failure
            eng._emit(
                "run.end",
                ok=result.ok,
                failure=None if f is None else {"kind": f.kind, "message": f.message,
                                                "step": f.step},
                violations=[v.rule for v in result.violations],
                decisions=len(result.decisions),
            )
        return result
