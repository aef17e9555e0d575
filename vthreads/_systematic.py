"""Systematic exploration: run a program again and again under schedules chosen to cover it.

Two searches share the driver here. :func:`explore_dfs` enumerates schedules by *iterative
preemption bounding*: every schedule with no preemption first, then every schedule with exactly
one, then two… (Musuvathi and Qadeer's observation, PLDI 2007, that most concurrency bugs need
very few preemptions). :func:`explore_dpor` (in ``_dpor``) explores one schedule per Mazurkiewicz
trace. Both are given either a program (``async def main()``, run afresh on a new
:class:`Engine` per execution) or, for harnesses that build their own engines, a factory
``run_one(strategy) -> RunResult`` that runs one execution under the strategy it is handed.

A *preemption* is a choice point where the running thread could go on (it is at a point and its
next operation would not block) and another thread is chosen instead. At every choice the
searches leave out threads whose next operation would block (see ``_footprint``): running them
would only park them again, and skipping them changes no outcome.
"""

from __future__ import annotations

import heapq
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ._engine import Engine, VThread
from ._errors import Divergence
from ._footprint import Analysis, StepObserver, would_block
from ._results import RunResult
from ._strategies import Strategy
from ._watchdog import Watchdog, check_timeout
from .registry import Registry

RunOne = Callable[[Strategy], RunResult]
Program = Callable[[], Awaitable[Any]]
Failing = Callable[[RunResult], bool]


def not_ok(result: RunResult) -> bool:
    """The default failure test: a failure stopped the run or a rule broke (``RACE``
    included)."""
    return not result.ok

#: The systematic searches by name (``dfs``, ``dpor``). Each entry is a function
#: ``(run_one, *, max_executions, preemption_bound, stop_on_failure) -> SystematicResult``: what
#: a harness calls for ``--strategy dpor`` with its own ``run_one(strategy) -> RunResult``.
SYSTEMATIC: Registry[Callable[..., SystematicResult]] = Registry("systematic search")


@dataclass(frozen=True)
class SystematicResult:
    """What a systematic search did and what it can claim.

    ``executions`` counts every run, including runs cut short because they could only repeat
    an explored class (``redundant``: sleep-set blocked, or blocked by the preemption bound).
    ``classes`` is the number of distinct Mazurkiewicz traces among the completed runs.
    ``exhausted`` means nothing is left to explore (within ``preemption_bound`` if one was set
    and ``pruned`` says it cut something). ``failure`` is the first failing run, replayable
    with ``Engine("replay", decisions=failure.decisions)``; ``failing_execution`` its 1-based
    index."""

    strategy: str
    executions: int
    classes: int
    redundant: int
    exhausted: bool
    preemption_bound: int | None
    pruned: bool
    max_executions: int
    failure: RunResult | None = None
    failing_execution: int | None = None
    failures: tuple[RunResult, ...] = ()
    #: the search ended because ``stop_on_failure`` met a failing execution
    stopped_on_failure: bool = False
    #: the 1-based index of every failing execution, in search order
    failing_executions: tuple[int, ...] = ()

    @property
    def ok(self) -> bool:
        """No execution failed (an exhausted ok search is a proof, for the program's
        equivalence classes and within the bound)."""
        return self.failure is None

    @property
    def bounded(self) -> bool:
        """A dpor search that ran its whole tree but pruned at a preemption bound it reached:
        bounded DPOR prunes with a conservative heuristic, so it can miss schedules within the
        bound that dfs with the same bound runs (h8) — best-effort, not a proof. Only a bound
        never reached makes an exhausted dpor search one."""
        return self.exhausted and self.strategy == "dpor" and self.pruned

    def claim(self) -> str:
        """One line: what this search proves, or why it stopped."""
        if self.stopped_on_failure:
            f = self.failure
            first = str(f.failure) if f.failure is not None else str(f.violations[0])
            return (f"stopped at the first failure, execution {self.failing_execution} of "
                    f"{self.executions}: {first}")
        if self.bounded:  # h8: a bug dfs finds at bound 2, an "exhausted" claim from dpor
            found = f"; {len(self.failures)} failing" if self.failures else ""
            return (f"bounded: {self.classes} equivalence classes explored within preemption "
                    f"bound {self.preemption_bound} ({self.executions} executions{found}); "
                    "bounded DPOR is best-effort, not a proof: raise the bound until it is "
                    "never reached, or use dfs for every schedule within it")
        if self.exhausted:
            bound = ("no preemption bound" if self.preemption_bound is None
                     else f"preemption bound {self.preemption_bound}"
                     + (", schedules needing more preemptions not explored" if self.pruned
                        else ", never reached"))
            found = f"; {len(self.failures)} failing" if self.failures else ""
            return (f"exhausted: every interleaving of {self.classes} equivalence classes "
                    f"explored ({bound}; {self.executions} executions{found})")
        found = f", {len(self.failures)} failing" if self.failures else ""
        return (f"stopped after {self.executions} executions (limit {self.max_executions}): "
                f"{self.classes} equivalence classes explored{found}, search not exhausted")


class Search(Protocol):
    """One systematic search, driven by :func:`run_search`."""

    name: str
    pruned: bool

    def strategy(self) -> Strategy:
        """The strategy for the next execution."""

    def after(self, strategy: Strategy, result: RunResult) -> None:
        """Learn from the execution just run."""

    def advance(self) -> bool:
        """Pick the next execution; False when nothing is left."""


class Observing(Strategy):
    """Base of the systematic strategies: carries a :class:`StepObserver` (so the engine
    reports steps and footprints), sees which runnable threads would block, and can cut a run
    short when it can only repeat explored work (``redundant``)."""

    def __init__(self) -> None:
        self.observer = StepObserver()
        #: the run can only repeat explored work (it still runs to its end unless cut short)
        self.redundant = False
        #: the strategy ended the run itself (its Divergence is not a failure of the program)
        self.cut_short = False
        self.error: str | None = None

    def candidates(self, current: VThread | None, ready: Sequence[VThread]
                   ) -> tuple[dict[int, VThread], tuple[int, ...], int | None]:
        """Every runnable thread by tid, the tids that would not block (sorted), and the
        running thread's tid if it can go on (else None)."""
        cands = {t.tid: t for t in ready}
        if current is not None:
            cands[current.tid] = current
        pending = self.observer.pending
        enabled = tuple(sorted(tid for tid in cands if not would_block(pending.get(tid))))
        cur = current.tid if current is not None and current.tid in enabled else None
        return cands, enabled, cur

    def cut(self, step: int) -> Divergence:
        """End this run: everything after this point is explored already."""
        self.redundant = self.cut_short = True
        return Divergence("redundant schedule: cut short by the systematic search", step)

    def mismatch(self, step: int, what: str) -> Divergence:
        self.error = (f"the program is not deterministic: a replayed prefix met {what} at step "
                      f"{step}; keep wall clock, unseeded randomness and set order out of it")
        return Divergence(self.error, step)


@dataclass(frozen=True)
class Outcome:
    """What the search keeps of one execution: the result (a split search may drop it when
    the execution passed), its trace key (None: redundant, it only repeated explored work) and
    whether it counts as a failure."""

    result: RunResult | None
    key: int | None
    failed: bool


def observe(strategy: Strategy, result: RunResult, failing: Failing = not_ok) -> Outcome:
    """The :class:`Outcome` of one execution run under ``strategy`` (an :class:`Observing`)."""
    err = getattr(strategy, "error", None)
    if err is not None:
        raise RuntimeError(err)
    redundant = getattr(strategy, "redundant", False)
    key = None if redundant else Analysis(strategy.observer.steps).trace_key()  # type: ignore[attr-defined]
    failed = not getattr(strategy, "cut_short", False) and failing(result)
    return Outcome(result, key, failed)


class SearchRun:
    """One systematic search, one execution at a time: :attr:`pending` is the strategy of the
    next execution, :meth:`record` files its :class:`Outcome`, :attr:`finished` says the search
    ended (exhausted, at ``max_executions``, or at a failure with ``stop_on_failure``).
    :func:`run_search` drives it by running each execution; :class:`SplitDfs` drives it from
    executions that ran elsewhere, so both give the same :class:`SystematicResult`."""

    def __init__(self, search: Search, *, max_executions: int, stop_on_failure: bool,
                 preemption_bound: int | None) -> None:
        if max_executions < 1:
            raise ValueError("max_executions must be >= 1")
        self.search = search
        self.max_executions, self.stop_on_failure = max_executions, stop_on_failure
        self.preemption_bound = preemption_bound
        self.executions = self.redundant = 0
        self.keys: set[int] = set()
        self.failures: list[RunResult] = []
        self.failing_at: list[int] = []  # 1-based execution index of each failure
        self.exhausted = self.stopped = self.finished = False
        self.pending: Strategy = search.strategy()

    def record(self, outcome: Outcome) -> None:
        """File the outcome of the execution run under :attr:`pending` and pick the next."""
        assert not self.finished
        self.executions += 1
        self.search.after(self.pending, outcome.result)  # type: ignore[arg-type]
        if outcome.key is None:
            self.redundant += 1
        else:
            self.keys.add(outcome.key)
        if outcome.failed:
            self.failures.append(outcome.result)  # type: ignore[arg-type]
            self.failing_at.append(self.executions)
        if self.failures and self.stop_on_failure:
            self.stopped = self.finished = True
        elif not self.search.advance():
            self.exhausted = self.finished = True
        elif self.executions >= self.max_executions:
            self.finished = True
        else:
            self.pending = self.search.strategy()

    def result(self) -> SystematicResult:
        f = self.failures
        return SystematicResult(
            self.search.name, self.executions, len(self.keys), self.redundant, self.exhausted,
            self.preemption_bound, self.search.pruned, self.max_executions,
            f[0] if f else None, self.failing_at[0] if f else None, tuple(f), self.stopped,
            tuple(self.failing_at),
        )


def run_search(search: Search, run_one: RunOne, *, max_executions: int,
               stop_on_failure: bool, preemption_bound: int | None,
               failing: Failing = not_ok) -> SystematicResult:
    """Run ``search`` until it is exhausted, hits ``max_executions`` or (with
    ``stop_on_failure``) finds an execution that ``failing`` calls failed."""
    run = SearchRun(search, max_executions=max_executions, stop_on_failure=stop_on_failure,
                    preemption_bound=preemption_bound)
    while not run.finished:
        strat = run.pending
        run.record(observe(strat, run_one(strat), failing))
    return run.result()


def program_runner(program: Program, *, backend: str = "asyncio",
                   step_budget: int = 200_000, timeout: float = 0.0) -> RunOne:
    """The ``run_one`` factory for a plain program: a new :class:`Engine` per execution.
    ``timeout`` (seconds, 0: off) stops an execution that has not ended after that much wall
    time as a ``hang`` failure (a CPU-bound loop never reaches a scheduling point, so the step
    budget cannot end it); the watchdog decides nothing else, so an execution that ends in time
    is the same with or without it (:class:`vthreads.lowlevel.Watchdog`)."""
    check_timeout(timeout)

    def run_one(strategy: Strategy) -> RunResult:
        eng = Engine(strategy, backend=backend, step_budget=step_budget)
        if not timeout:
            return eng.run(program)
        return Watchdog(timeout).attach(eng).run(eng, program)

    return run_one


# ---- dfs with iterative preemption bounding -------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Choice:
    enabled: tuple[int, ...]
    current: int | None
    chosen: int

    def cost(self, tid: int) -> int:
        return int(self.current is not None and tid != self.current)


class DfsStrategy(Observing):
    """Follow ``prefix`` (tids, one per choice point), then never preempt: keep the running
    thread while it can go on, else the lowest tid that would not block."""

    name = "dfs"

    def __init__(self, prefix: Sequence[int]) -> None:
        super().__init__()
        self.prefix = prefix
        self.choices: list[_Choice] = []

    def choose(self, runnable, step, *, current):
        # runnable is the current thread (when it can go on) and then the ready ones
        ready = runnable[1:] if current is not None else runnable
        cands, enabled, cur = self.candidates(current, ready)
        d = len(self.choices)
        if d < len(self.prefix):
            tid = self.prefix[d]
            if tid not in cands:
                raise self.mismatch(step, f"tid {tid} not runnable")
        elif cur is not None:
            tid = cur
        else:
            tid = enabled[0] if enabled else min(cands)
        self.choices.append(_Choice(enabled, cur, tid))
        return cands[tid]


class _DfsSearch:
    """The schedules, level by level: level ``p`` holds the schedules with exactly ``p``
    preemptions. A schedule is its prefix up to its last non-default choice; the children of
    an executed schedule deviate at one choice point after that prefix. Within a level the
    schedules run in the order their parents ran, and one parent's children by depth, then
    tid. Each parent keeps two lazy cursors (children of equal cost, children one preemption
    dearer), so memory grows with the executions, not with the tree."""

    name = "dfs"

    def __init__(self, bound: int | None, roots: Sequence[Subtree] = ()) -> None:
        self.bound = bound
        self.pruned = False
        self._heap: list[tuple[int, int, int]] = []
        self._cursors: dict[int, Iterator[tuple[int, ...]]] = {}
        self._peek: dict[int, tuple[int, ...]] = {}
        self._seq = 0
        self._prefix: tuple[int, ...] = roots[0].prefix if roots else ()
        self._cost = roots[0].cost if roots else 0
        for r in roots[1:]:  # queued like children, in the order given
            self._push(r.cost, iter((r.prefix,)))

    def strategy(self) -> DfsStrategy:
        return DfsStrategy(self._prefix)

    def after(self, strategy: Strategy, result: RunResult) -> None:
        assert isinstance(strategy, DfsStrategy)
        chosen = tuple(c.chosen for c in strategy.choices)
        start = len(self._prefix)
        for extra in (0, 1):
            cost = self._cost + extra
            if self.bound is not None and cost > self.bound:
                if any(c.cost(a) for c in strategy.choices[start:] for a in c.enabled):
                    self.pruned = True
                continue
            self._push(cost, _children(strategy.choices, chosen, start, extra))

    def _push(self, cost: int, it: Iterator[tuple[int, ...]]) -> None:
        first = next(it, None)
        if first is None:
            return
        self._seq += 1
        self._cursors[self._seq], self._peek[self._seq] = it, first
        heapq.heappush(self._heap, (cost, self._seq, self._seq))

    def advance(self) -> bool:
        if not self._heap:
            return False
        cost, seq, cid = heapq.heappop(self._heap)
        self._prefix, self._cost = self._peek.pop(cid), cost
        nxt = next(self._cursors[cid], None)
        if nxt is None:
            del self._cursors[cid]
        else:
            self._peek[cid] = nxt
            heapq.heappush(self._heap, (cost, seq, cid))
        return True

    def next_subtree(self) -> Subtree:
        """The schedule :meth:`advance` picked, as a subtree root."""
        return Subtree(self._prefix, self._cost)

    def untried(self) -> list[Subtree]:
        """Every schedule queued and not run, as subtree roots, in the order they would run."""
        out = []
        while self._heap:
            cost, _seq, cid = heapq.heappop(self._heap)
            out += [Subtree(p, cost) for p in (self._peek.pop(cid), *self._cursors.pop(cid))]
        return out


def _children(choices: Sequence[_Choice], chosen: tuple[int, ...], start: int,
              extra: int) -> Iterator[tuple[int, ...]]:
    for k in range(start, len(choices)):
        c = choices[k]
        for a in c.enabled:
            if a != c.chosen and c.cost(a) == extra:
                yield (*chosen[:k], a)


def explore_dfs_with(run_one: RunOne, *, max_executions: int = 10_000,
                     preemption_bound: int | None = None, stop_on_failure: bool = True,
                     failing: Failing = not_ok) -> SystematicResult:
    """Depth-first schedule enumeration in iterative-preemption-bounding order: all schedules
    with 0 preemptions, then those with exactly 1, then 2… up to ``preemption_bound`` (None:
    no bound). Threads whose next operation would block are never chosen. Each schedule is run
    once; ``run_one(strategy)`` runs one execution (see :func:`program_runner`)."""
    return run_search(_DfsSearch(preemption_bound), run_one, max_executions=max_executions,
                      stop_on_failure=stop_on_failure, preemption_bound=preemption_bound,
                      failing=failing)


# ---- dfs split into subtrees (issue 15: the same search on many processes) -----------------


@dataclass(frozen=True, slots=True)
class Subtree:
    """The schedules of the dfs search that start with ``prefix`` (one tid per choice point,
    ending at its last non-default choice) and spend ``cost`` preemptions in it. The root of
    the whole search is ``Subtree((), 0)``."""

    prefix: tuple[int, ...]
    cost: int


@dataclass(frozen=True, slots=True)
class Executed:
    """One execution of a subtree, as plain data: its prefix, every choice point it met
    (enabled tids, the running tid if it could go on, the tid chosen) and its outcome (the
    result only when it failed: a passing run's result is not needed to merge)."""

    prefix: tuple[int, ...]
    choices: tuple[tuple[tuple[int, ...], int | None, int], ...]
    outcome: Outcome


@dataclass(frozen=True)
class SubtreeRun:
    """What :func:`explore_subtree` did: the executions it ran and the subtrees it left
    untried (when it reached its budget), to hand to other workers."""

    executed: tuple[Executed, ...]
    untried: tuple[Subtree, ...]


def explore_subtree(run_one: RunOne, subtrees: Sequence[Subtree], *,
                    preemption_bound: int | None, budget: int,
                    failing: Failing = not_ok) -> SubtreeRun:
    """Run up to ``budget`` schedules of ``subtrees`` (in the dfs search's own order: the
    roots as given, then their children level by level) and return them with the subtrees
    still untried. The dfs tree is fixed by the program: a schedule's children depend on its
    own execution only, never on the order schedules run in, so subtrees can run anywhere in
    any order and :class:`SplitDfs` puts the one-process search back together from them."""
    if budget < 1 or not subtrees:
        raise ValueError("explore_subtree needs a budget >= 1 and at least one subtree")
    search = _DfsSearch(preemption_bound, subtrees)
    executed = []
    for _ in range(budget):
        strat = search.strategy()
        out = observe(strat, run_one(strat), failing)
        search.after(strat, out.result)  # type: ignore[arg-type]
        choices = tuple((c.enabled, c.current, c.chosen) for c in strat.choices)
        executed.append(Executed(tuple(strat.prefix), choices, out if out.failed
                                 else Outcome(None, out.key, False)))
        if not search.advance():
            return SubtreeRun(tuple(executed), ())
    return SubtreeRun(tuple(executed), (search.next_subtree(), *search.untried()))


class MergedSearch:
    """What the split searches share: :attr:`run` is the one-process :class:`SearchRun`,
    walked over executions that ran elsewhere."""

    run: SearchRun

    @property
    def finished(self) -> bool:
        return self.run.finished

    @property
    def executions(self) -> int:
        """Executions of the one-process search merged so far."""
        return self.run.executions

    def result(self) -> SystematicResult:
        return self.run.result()


class SplitDfs(MergedSearch):
    """The one-process dfs search, merged from :class:`SubtreeRun` results that ran anywhere.

    :meth:`add` files a subtree's executions; :meth:`merge` then walks the one-process search
    (same order, same ``max_executions``, ``stop_on_failure`` and bound) as far as the filed
    executions reach, and :meth:`result` is exactly what :func:`explore_dfs_with` returns on
    one process: the same executions, classes, claim and failing execution. Start with
    ``Subtree((), 0)`` and give every untried subtree of every run to some worker."""

    def __init__(self, *, max_executions: int = 10_000, preemption_bound: int | None = None,
                 stop_on_failure: bool = True) -> None:
        self.run = SearchRun(_DfsSearch(preemption_bound), max_executions=max_executions,
                             stop_on_failure=stop_on_failure, preemption_bound=preemption_bound)
        self._filed: dict[tuple[int, ...], Executed] = {}

    @property
    def needed(self) -> tuple[int, ...] | None:
        """The prefix of the next execution of the one-process search (None: finished)."""
        return None if self.run.finished else tuple(self.run.pending.prefix)  # type: ignore[attr-defined]

    def add(self, part: SubtreeRun) -> None:
        for ex in part.executed:
            self._filed.setdefault(ex.prefix, ex)

    def merge(self) -> list[tuple[int, RunResult]]:
        """Advance the one-process search over the filed executions; return the failures it
        met on the way (1-based execution index, result), in search order."""
        met = []
        while not self.run.finished:
            strat = self.run.pending
            assert isinstance(strat, DfsStrategy)
            ex = self._filed.pop(tuple(strat.prefix), None)
            if ex is None:
                break
            strat.choices = [_Choice(*c) for c in ex.choices]
            self.run.record(ex.outcome)
            if ex.outcome.failed:
                met.append((self.run.executions, ex.outcome.result))
        return met


SYSTEMATIC.register("dfs", explore_dfs_with,
                    summary="every schedule, fewest preemptions first (iterative bounding)")


def explore_dfs(program: Program, *, backend: str = "asyncio", max_executions: int = 10_000,
                preemption_bound: int | None = None, stop_on_failure: bool = True,
                step_budget: int = 200_000, failing: Failing = not_ok,
                timeout: float = 0.0) -> SystematicResult:
    """:func:`explore_dfs_with` over ``program`` (``async def main()``), a new engine per
    execution. ``timeout`` (seconds per execution, 0: off) fails an execution that has not
    ended in that much wall time as ``hang`` (:func:`program_runner`)."""
    run_one = program_runner(program, backend=backend, step_budget=step_budget, timeout=timeout)
    return explore_dfs_with(run_one, max_executions=max_executions,
                            preemption_bound=preemption_bound, stop_on_failure=stop_on_failure,
                            failing=failing)
