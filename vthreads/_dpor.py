"""Source-DPOR with sleep sets over the engine's own dependency relation.

Stateless dynamic partial-order reduction (Abdulla, Aronis, Jonsson, Sagonas, "Optimal dynamic
partial order reduction", POPL 2014, the source-set algorithm with sleep sets): explore one
execution, find its *races* — pairs of dependent steps of different threads that nothing else
orders (``_footprint.Analysis.races``) — and for each, make sure some thread that can start the
reversed order is in the *backtrack set* of the choice point before the first step of the race.
Sleep sets stop a thread from being explored again at a point where an equivalent execution was
explored already; an execution that can only repeat explored work is *sleep-set blocked* and is
cut short (the strategy raises :class:`Divergence`, which ends the run without a failure of the
program). Every completed execution is then in its own Mazurkiewicz trace, and every trace of
the program has a completed execution: when the search is exhausted, every interleaving was
covered, up to reordering independent steps.

Executions are driven by replay: the search keeps the stack of choice points of the current
execution (enabled threads, the choice made, backtrack, done and sleep sets) and runs the next
execution with :class:`DporStrategy` following the stack's choices, then choosing freely (the
running thread if it can go on and is not asleep, else the lowest such tid) past its end.

With ``preemption_bound`` the search is *bounded POR* (Coons, Musuvathi, McKinley, OOPSLA 2013):
a reversal that would need more preemptions than the bound at its own choice point is placed,
conservatively, at the latest earlier choice point where switching to that thread costs nothing;
what still does not fit is not explored, and the result says so (``pruned``). Bounded DPOR
covers the schedules within the bound on a best-effort basis, not as a proof.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ._footprint import CLOCK, END, Analysis, Footprint, Step, dependent
from ._results import RunResult
from ._strategies import Strategy
from ._systematic import (
    SYSTEMATIC,
    Failing,
    Observing,
    Program,
    RunOne,
    SystematicResult,
    not_ok,
    program_runner,
    run_search,
)


@dataclass(eq=False)
class Node:
    """One choice point of the current execution. ``pos`` is the index of the step chosen here
    (steps before it: ``pos``); ``enabled`` the tids that would not block; ``current`` the
    running thread's tid if it could go on; ``preempts`` the preemptions spent before it.
    ``sleep`` and ``done`` map tids to the footprint of their step from here."""

    pos: int
    enabled: tuple[int, ...]
    current: int | None
    chosen: int
    preempts: int
    sleep: dict[int, Footprint]
    done: dict[int, Footprint] = field(default_factory=dict)
    backtrack: dict[int, None] = field(default_factory=dict)  # an ordered set

    def cost(self, tid: int) -> int:
        """Preemptions spent up to and including choosing ``tid`` here."""
        return self.preempts + int(self.current is not None and tid != self.current)


class DporStrategy(Observing):
    """Follows the search's stack of choice points, then extends it with new ones."""

    name = "dpor"

    def __init__(self, stack: list[Node], bound: int | None) -> None:
        super().__init__()
        self.stack = stack
        self.bound = bound
        self.replayed = len(stack)
        self.bound_hit = False
        self._depth = 0

    def choose(self, runnable, step, *, current):
        # runnable is the current thread (when it can go on) and then the ready ones
        ready = runnable[1:] if current is not None else runnable
        cands, enabled, cur = self.candidates(current, ready)
        pos = len(self.observer.steps)
        if self._depth < len(self.stack):
            node = self.stack[self._depth]
            if node.pos != pos or node.enabled != enabled or node.chosen not in cands:
                raise self.mismatch(step, f"choice point {self._depth + 1} changed")
        else:
            node = self._new_node(pos, enabled, cur, cands, step)
            self.stack.append(node)
        self._depth += 1
        return cands[node.chosen]

    def _new_node(self, pos, enabled, cur, cands, step) -> Node:
        sleep: dict[int, Footprint] = {}
        preempts = 0
        if self.stack:
            par = self.stack[-1]
            preempts = par.cost(par.chosen)
            sleep = {q: f for q, f in {**par.sleep, **par.done}.items() if q != par.chosen}
            sleep = self.carry(sleep, par.pos, pos)
        if self.redundant:
            raise self.cut(step)
        if not enabled:  # every runnable thread would block: let one block (deadlock ahead)
            chosen = min(cands)
        else:
            avail = [t for t in enabled if t not in sleep]
            if not avail:
                raise self.cut(step)
            chosen = cur if cur in avail else avail[0]
            if (self.bound is not None and cur is not None and chosen != cur
                    and preempts + 1 > self.bound):
                self.bound_hit = True
                raise self.cut(step)
        node = Node(pos, enabled, cur, chosen, preempts, sleep)
        node.backtrack[chosen] = None
        return node

    def carry(self, sleep: dict[int, Footprint], start: int, end: int) -> dict[int, Footprint]:
        """The sleep set after steps ``start..end-1``: a thread stays asleep through steps
        independent of its own. An asleep thread that runs anyway (the engine ran it without a
        choice, being the only runnable thread) makes the run redundant."""
        for st in self.observer.steps[start:end]:
            if st.tid in sleep:
                self.redundant = True
            sleep = {q: f for q, f in sleep.items() if q != st.tid and not dependent(f, st.fp)}
        return sleep

    def finish_run(self) -> None:
        """Check the steps after the last choice point the same way."""
        if self.stack and not self.redundant:
            par = self.stack[-1]
            sleep = {q: f for q, f in {**par.sleep, **par.done}.items() if q != par.chosen}
            self.carry(sleep, par.pos, len(self.observer.steps))


class _DporSearch:
    name = "dpor"

    def __init__(self, bound: int | None) -> None:
        self.bound = bound
        self.pruned = False
        self.stack: list[Node] = []

    def strategy(self) -> DporStrategy:
        return DporStrategy(self.stack, self.bound)

    def after(self, strategy: Strategy, result: RunResult) -> None:
        assert isinstance(strategy, DporStrategy)
        self.pruned |= strategy.bound_hit
        strategy.finish_run()
        steps = strategy.observer.steps
        for node in self.stack:
            if node.chosen not in node.done:
                ok = node.pos < len(steps) and steps[node.pos].tid == node.chosen
                node.done[node.chosen] = steps[node.pos].fp if ok else CLOCK
        # and after them, the step each unfinished thread would have taken next: a step the
        # end of the run took away (the kmd watchdog woken by the GPU's last notify), or one
        # another thread's step disabled for good (a lock it held to the end), races with
        # that step, and only analysing the step never taken shows the race (h8's F4: DPOR
        # called gl-icd-lock-entire exhausted at 4 classes, dfs ran 22 within the same bound)
        virtual = strategy.observer.never_taken()
        # steps before the replayed prefix's last choice were analysed by an earlier execution
        start = self.stack[strategy.replayed - 1].pos if strategy.replayed else 0
        at = {n.pos: k for k, n in enumerate(self.stack)}
        self._reverse(Analysis(steps, virtual), range(start, len(steps) + len(virtual)), at)
        if virtual and steps and END in steps[-1].fp:  # the end is the run's last step
            # a step never taken comes after the end and conflicts with it, so in the pass above
            # it is ordered after every step and races only with the end; it races with the
            # real steps too (a daemon's put that could have gone before the worker's last
            # put), which only a pass without the end's marker shows (fuzzed against dfs, h8 F4)
            last = steps[-1]
            cut = Step(last.tid, tuple(x for x in last.fp if x != END), last.spawns)
            self._reverse(Analysis([*steps[:-1], cut], virtual),
                          range(len(steps), len(steps) + len(virtual)), at)

    def _reverse(self, an: Analysis, js: range, at: dict[int, int]) -> None:
        """Put an initial of each race's reversal into the backtrack set of the choice point
        before the race's first step, for every race whose second step is in ``js``."""
        for j in js:
            for i in an.races(j):
                k = at.get(i)
                if k is not None:
                    self._backtrack(k, an.initials(i, j))

    def _backtrack(self, k: int, initials: set[int]) -> None:
        node = self.stack[k]
        if any(q in node.backtrack or q in node.sleep for q in initials):
            return
        choices = [q for q in sorted(initials) if q in node.enabled]
        if not choices:
            return  # the reversal cannot start here: its threads would block
        q = choices[0]
        if self.bound is None or node.cost(q) <= self.bound:
            node.backtrack[q] = None
            return
        self.pruned = True
        for i in range(k - 1, -1, -1):  # conservative bounded POR
            n = self.stack[i]
            if q in n.enabled and n.cost(q) == n.preempts <= self.bound:
                if q not in n.sleep:
                    self._add(i, q)
                return

    def _add(self, k: int, q: int) -> None:
        # the one write to a backtrack set outside _backtrack's own node (the split search
        # logs it when node k belongs to another process: vthreads._split_dpor)
        self.stack[k].backtrack.setdefault(q, None)

    def advance(self, floor: int = 0) -> bool:
        """Choose the next alternative at the deepest choice point that has one, popping the
        exhausted ones; False when the stack is down to ``floor`` nodes (0: the search is
        exhausted; a split subtree passes its root's depth + 1)."""
        while len(self.stack) > floor:
            n = self.stack[-1]
            opts = [q for q in n.backtrack if q not in n.done and q not in n.sleep]
            if self.bound is not None:
                over = [q for q in opts if n.cost(q) > self.bound]
                self.pruned |= bool(over)
                opts = [q for q in opts if q not in over]
            if opts:
                n.chosen = n.current if n.current in opts else min(opts)
                return True
            self.stack.pop()
        return False


def explore_dpor_with(run_one: RunOne, *, max_executions: int = 10_000,
                      preemption_bound: int | None = None, stop_on_failure: bool = True,
                      failing: Failing = not_ok) -> SystematicResult:
    """Source-DPOR with sleep sets (and, with ``preemption_bound``, bounded POR) over
    executions run by ``run_one(strategy) -> RunResult``: the harness's seam. ``run_one`` must
    run the program once, from scratch, on an engine built with the strategy it is handed
    (``Engine(strategy, ...)``), and return that run's result; the program must be
    deterministic given the schedule and share state only through the engine's objects.
    ``failing(result)`` says which executions count as failures (default: not ``ok``; pass
    ``lambda r: r.failure is not None`` to ignore rule violations such as ``RACE``)."""
    return run_search(_DporSearch(preemption_bound), run_one, max_executions=max_executions,
                      stop_on_failure=stop_on_failure, preemption_bound=preemption_bound,
                      failing=failing)


SYSTEMATIC.register("dpor", explore_dpor_with,
                    summary="one execution per Mazurkiewicz trace (source-DPOR, sleep sets)")


def explore_dpor(program: Program, *, backend: str = "asyncio", max_executions: int = 10_000,
                 preemption_bound: int | None = None, stop_on_failure: bool = True,
                 step_budget: int = 200_000, failing: Failing = not_ok,
                 timeout: float = 0.0) -> SystematicResult:
    """Explore ``program`` (``async def main()``, run afresh on a new :class:`Engine` per
    execution) with DPOR; see :func:`explore_dpor_with`. The result's ``claim()`` says whether
    every equivalence class was explored. ``timeout`` (seconds per execution, 0: off) fails an
    execution that has not ended in that much wall time as ``hang`` (:func:`program_runner`)."""
    run_one = program_runner(program, backend=backend, step_budget=step_budget, timeout=timeout)
    return explore_dpor_with(run_one, max_executions=max_executions,
                             preemption_bound=preemption_bound, stop_on_failure=stop_on_failure,
                             failing=failing)
