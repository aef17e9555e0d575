"""Source-DPOR split into subtrees (issue 15): the one-process search, merged from subtrees that
ran anywhere, with exactly the one-process answer.

Why it is exact. In the one-process search (``_dpor._DporSearch``), the executions below the
choice point ``n`` once ``q`` is chosen there are fixed by the stack from the root down to
``n``: each node's position, enabled and running tids, preemptions, sleep set and choice, and
``n``'s done set at the moment ``q`` is chosen (its first child's sleep set comes from it). The
backtrack sets of ``n`` and its ancestors are *written* by that subtree's race analysis but not
*read* by it: they only decide what runs after the subtree. So a worker given that root state
(:class:`DporSubtree`) runs the subtree's executions exactly as one process would
(:func:`explore_dpor_subtree`), and hands back, per execution, its outcome and the writes it
would have made to the root's nodes — ``_backtrack(k, initials)`` calls and the bounded-POR
additions, in order, because each depends on what the previous ones left. The client
(:class:`SplitDpor`) is the one sequential search: it holds the stack, and when it reaches a
root state for which a result is filed it replays that result's writes on its own stack, in
order, counting the executions and stopping where one process would stop. A result filed for
another root state (a speculation the search did not take: a race found meanwhile put another
sibling first, so ``done`` differs) is never used. A worker stops after ``budget`` executions
and returns the stack below the root (``rest``): the client adopts it and asks for the subtree
below its deepest node next.

Speculation (:meth:`SplitDpor.upcoming`) keeps workers busy with the subtrees the merge is
predicted to need, in the order it will need them: the one it waits for, the continuations of
filed partial results, then the untried backtrack alternatives of the client's stack, deepest
first, each with the done set it will have if no new race adds a sibling before it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

from ._dpor import Node, _DporSearch
from ._footprint import Footprint
from ._results import RunResult
from ._systematic import (
    Failing,
    MergedSearch,
    Outcome,
    RunOne,
    SearchRun,
    not_ok,
    observe,
)

FpPairs = tuple[tuple[int, Footprint], ...]
#: one write to a root node: (node index, tids, kind) — kind False: ``_backtrack(k, set(tids))``,
#: True: the bounded-POR addition of ``tids[0]`` to node k's backtrack set
Write = tuple[int, tuple[int, ...], bool]


@dataclass(frozen=True, slots=True)
class DporNode:
    """One choice point as plain data (``_dpor.Node``). In a :class:`DporSubtree` only the
    last node carries ``done`` and none carries ``backtrack``; in a worker's ``rest`` every
    node carries both."""

    pos: int
    enabled: tuple[int, ...]
    current: int | None
    chosen: int
    preempts: int
    sleep: FpPairs
    done: FpPairs = ()
    backtrack: tuple[int, ...] = ()

    @classmethod
    def of(cls, n: Node, *, done: bool, backtrack: bool) -> DporNode:
        return cls(n.pos, n.enabled, n.current, n.chosen, n.preempts,
                   tuple(sorted(n.sleep.items())), tuple(sorted(n.done.items())) if done else (),
                   tuple(n.backtrack) if backtrack else ())

    def node(self) -> Node:
        n = Node(self.pos, self.enabled, self.current, self.chosen, self.preempts,
                 dict(self.sleep), dict(self.done))
        n.backtrack = dict.fromkeys(self.backtrack)
        return n


@dataclass(frozen=True, slots=True, eq=False)
class DporSubtree:
    """The root state of a DPOR subtree: the executions below the last node's choice, given
    these nodes (``()``: the whole search). Results are keyed by it: equal root states, equal
    executions."""

    nodes: tuple[DporNode, ...] = ()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DporSubtree) and self.nodes == other.nodes

    def __hash__(self) -> int:
        # the depth and the last node tell keys apart well enough; hashing hundreds of nodes
        # (each with its sleep set) per look-up would cost the client more than the merge
        return hash((len(self.nodes), self.nodes[-1] if self.nodes else None))


@dataclass(frozen=True, slots=True)
class DporExecuted:
    """One execution of a subtree: its outcome (the result only when it failed), the writes its
    race analysis made to the root's nodes, in order, and whether its analysis or the advance
    after it (within the subtree) hit the preemption bound."""

    outcome: Outcome
    writes: tuple[Write, ...]
    pruned_after: bool
    pruned_advance: bool


@dataclass(frozen=True)
class DporSubtreeRun:
    """What :func:`explore_dpor_subtree` did with ``subtree``: its executions in order, the
    footprint of the root's chosen step (the client's ``done`` entry; None for the whole
    search), and ``rest``, the stack below the root when the budget ran out (None: the subtree
    is exhausted, or ``stopped`` at a failure with ``stop_on_failure``)."""

    subtree: DporSubtree
    executed: tuple[DporExecuted, ...]
    done_fp: Footprint | None
    rest: tuple[DporNode, ...] | None
    stopped: bool = False

    def continuation(self) -> DporSubtree | None:
        """The subtree the merge needs right after this one's executions (None: none)."""
        if not self.rest:
            return None
        nodes = (*self.subtree.nodes, *self.rest)
        return DporSubtree((*(_stripped(n) for n in nodes[:-1]),
                            replace(nodes[-1], backtrack=())))


def _stripped(n: DporNode) -> DporNode:
    return replace(n, done=(), backtrack=()) if n.done or n.backtrack else n


class _Keys:
    """The root states of a stack, kept up to date cheaply: a node's key (without done and
    backtrack) changes only when its choice does, and the stack changes at its end."""

    def __init__(self) -> None:
        self._cache: list[tuple[Node, int, DporNode]] = []

    def stripped(self, stack: list[Node]) -> list[DporNode]:
        """Every node of ``stack`` as plain data, without done and backtrack."""
        cache, i = self._cache, 0
        while (i < len(cache) and i < len(stack) and cache[i][0] is stack[i]
               and cache[i][1] == stack[i].chosen):
            i += 1
        del cache[i:]
        cache.extend((n, n.chosen, DporNode.of(n, done=False, backtrack=False))
                     for n in stack[i:])
        return [c[2] for c in cache]

    def of(self, stack: list[Node]) -> DporSubtree:
        """The root state of the subtree below the deepest node of ``stack``."""
        if not stack:
            return DporSubtree()
        return DporSubtree((*self.stripped(stack)[:-1],
                            DporNode.of(stack[-1], done=True, backtrack=False)))


class _SubtreeSearch(_DporSearch):
    """The one-process search below a root: writes to the root's nodes are logged, not made
    (the client makes them on its own stack), and advancing stops at the root."""

    def __init__(self, bound: int | None, subtree: DporSubtree) -> None:
        super().__init__(bound)
        self.stack = [n.node() for n in subtree.nodes]
        self.root = len(self.stack) - 1
        self.writes: list[Write] = []

    def _backtrack(self, k: int, initials: set[int]) -> None:
        if k <= self.root:
            self.writes.append((k, tuple(sorted(initials)), False))
        else:
            super()._backtrack(k, initials)

    def _add(self, k: int, q: int) -> None:
        if k <= self.root:
            self.writes.append((k, (q,), True))
        else:
            super()._add(k, q)


def explore_dpor_subtree(run_one: RunOne, subtree: DporSubtree, *,
                         preemption_bound: int | None, budget: int,
                         stop_on_failure: bool = False,
                         failing: Failing = not_ok) -> DporSubtreeRun:
    """Run up to ``budget`` executions of ``subtree`` in the one-process search's order (stop
    at the first failing one with ``stop_on_failure``) and return them as plain data, with the
    stack left below the root when the budget ran out. The answer depends on ``subtree`` and
    the program only, so it may run anywhere, any number of times."""
    if budget < 1:
        raise ValueError("explore_dpor_subtree needs a budget >= 1")
    search = _SubtreeSearch(preemption_bound, subtree)
    executed: list[DporExecuted] = []
    done_fp: Footprint | None = None
    for _ in range(budget):
        strat = search.strategy()
        out = observe(strat, run_one(strat), failing)
        search.pruned, search.writes = False, []
        search.after(strat, out.result)  # type: ignore[arg-type]
        if done_fp is None and search.root >= 0:
            root = search.stack[search.root]
            done_fp = root.done[root.chosen]
        after_pruned, search.pruned = search.pruned, False
        stop = out.failed and stop_on_failure
        more = not stop and search.advance(search.root + 1)
        executed.append(DporExecuted(out if out.failed else Outcome(None, out.key, False),
                                     tuple(search.writes), after_pruned, search.pruned))
        if not more:
            return DporSubtreeRun(subtree, tuple(executed), done_fp, None, stop)
    rest = tuple(DporNode.of(n, done=True, backtrack=True) for n in search.stack[search.root + 1:])
    return DporSubtreeRun(subtree, tuple(executed), done_fp, rest)


class _MergedSearch(_DporSearch):
    """The one-process search whose executions come from filed :class:`DporSubtreeRun`\\ s:
    ``after`` and ``advance`` replay what the worker saw instead of running anything."""

    def __init__(self, bound: int | None) -> None:
        super().__init__(bound)
        self.part: DporSubtreeRun | None = None
        self.at = 0  # index of the part's execution being recorded

    def strategy(self) -> None:  # type: ignore[override]
        return None  # nothing runs here: SearchRun only hands it back to after()

    def after(self, strategy: object, result: RunResult | None) -> None:  # type: ignore[override]
        part = self.part
        assert part is not None
        ex = part.executed[self.at]
        if self.at == 0 and part.done_fp is not None:
            root = self.stack[-1]
            root.done[root.chosen] = part.done_fp
        for k, tids, add in ex.writes:  # in order: each one reads what the last one left
            if add:
                self._add(k, tids[0])
            else:
                self._backtrack(k, set(tids))
        self.pruned |= ex.pruned_after

    def advance(self, floor: int = 0) -> bool:
        part = self.part
        assert part is not None
        self.pruned |= part.executed[self.at].pruned_advance
        self.at += 1
        if self.at < len(part.executed):
            return True  # still inside the subtree: its next execution is filed too
        self.part = None
        assert not part.stopped, "a subtree stopped at a failure the merge went past"
        if part.rest is None:
            return super().advance(floor)
        self.stack.extend(n.node() for n in part.rest)
        return True


class SplitDpor(MergedSearch):
    """The one-process DPOR search, merged from :class:`DporSubtreeRun` results that ran
    anywhere, in any order (see the module docstring).

    :meth:`add` files a result (a second result for one subtree is ignored: they are equal);
    :meth:`merge` walks the one-process search (same order, ``max_executions``,
    ``stop_on_failure`` and bound) as far as the filed results reach; :meth:`result` is then
    exactly what :func:`explore_dpor_with` returns on one process. :attr:`needed` is the
    subtree the merge waits for, :meth:`upcoming` what it will need next (speculation): give
    each to a worker with :func:`explore_dpor_subtree` and ``stop_on_failure`` as here."""

    def __init__(self, *, max_executions: int = 10_000, preemption_bound: int | None = None,
                 stop_on_failure: bool = True) -> None:
        self.search = _MergedSearch(preemption_bound)
        self.run = SearchRun(self.search, max_executions=max_executions,
                             stop_on_failure=stop_on_failure, preemption_bound=preemption_bound)
        self.preemption_bound, self.stop_on_failure = preemption_bound, stop_on_failure
        self._filed: dict[DporSubtree, DporSubtreeRun] = {}
        # footprint of the step of tid q after the choices ``path``: (path, q) -> footprint
        self._fps: dict[tuple[tuple[int, ...], int], Footprint] = {}
        self._keys = _Keys()
        #: results filed (distinct subtrees) and results the merge used: the speculation's hits
        self.filed = self.used = 0

    @property
    def needed(self) -> DporSubtree | None:
        """The subtree whose result the merge waits for (None: finished)."""
        return None if self.run.finished else self._keys.of(self.search.stack)

    def add(self, part: DporSubtreeRun) -> None:
        if part.subtree in self._filed:
            return
        self._filed[part.subtree] = part
        self.filed += 1
        nodes = (*part.subtree.nodes, *(part.rest or ()))
        path = tuple(n.chosen for n in nodes)
        if part.done_fp is not None:
            self._fps[(path[:len(part.subtree.nodes) - 1], part.subtree.nodes[-1].chosen)] = \
                part.done_fp
        for d, n in enumerate(part.rest or (), start=len(part.subtree.nodes)):
            for q, fp in n.done:
                self._fps[(path[:d], q)] = fp

    def merge(self) -> list[tuple[int, RunResult]]:
        """Advance the one-process search over the filed results; return the failures it met
        on the way (1-based execution index, result), in search order."""
        met = []
        search = self.search
        while not self.run.finished:
            if search.part is None:
                part = self._filed.pop(self._keys.of(search.stack), None)
                if part is None:
                    break
                search.part, search.at = part, 0
                self.used += 1
            ex = search.part.executed[search.at]
            self.run.record(ex.outcome)
            if ex.outcome.failed:
                met.append((self.run.executions, ex.outcome.result))
        return met  # type: ignore[return-value]

    def upcoming(self) -> Iterator[DporSubtree]:
        """Subtrees without a filed result, in the order the merge is predicted to need them:
        :attr:`needed` first (or the continuation of its filed result, and so on). Each
        subtree ahead costs the merge at least one execution, so none is listed that the
        merge could not reach within ``max_executions``."""
        if self.run.finished:
            return
        left = self.run.max_executions - self.run.executions
        for key in self._predicted():
            while key is not None and key in self._filed:
                part = self._filed[key]
                left -= len(part.executed)
                key = part.continuation()
            if key is None:
                continue
            if left <= 0:
                return
            left -= 1
            yield key

    def _predicted(self) -> Iterator[DporSubtree]:
        stack = self.search.stack
        yield self._keys.of(stack)
        keys = self._keys.stripped(stack)
        bound = self.preemption_bound
        for k in range(len(stack) - 1, -1, -1):
            n = stack[k]
            opts = [q for q in n.backtrack if q not in n.done and q not in n.sleep
                    and q != n.chosen and (bound is None or n.cost(q) <= bound)]
            if not opts:
                continue
            path = tuple(x.chosen for x in stack[:k])
            done = dict(n.done)
            if n.chosen not in done:  # the deepest node: known once a result says
                fp = self._fps.get((path, n.chosen))
                if fp is None:
                    continue
                done[n.chosen] = fp
            while opts:  # the order _DporSearch.advance picks them in, if no race adds one
                q = n.current if n.current in opts else min(opts)
                opts.remove(q)
                yield DporSubtree((*keys[:k], replace(keys[k], chosen=q,
                                                      done=tuple(sorted(done.items())))))
                fp = self._fps.get((path, q))
                if fp is None:
                    break
                done[q] = fp
