"""Partial-order sampling: a random walk that is uniform over orderings, not over schedules.

POS (Yuan, Yang, Gu, "Partial Order Aware Concurrency Sampling", CAV 2018). Plain random
sampling re-draws a thread at every point, so an ordering of two far-apart dependent steps
that needs one thread to run *many* steps before the other is exponentially unlikely. POS gives
every pending event (the operation a parked thread will perform next) a random priority and
runs the highest-priority enabled one; after an event ``e`` runs, ``e``'s thread has a new
pending event with a fresh priority, and only the pending events that *race* with ``e`` (are
dependent with it, ``_footprint.dependent``) get their priorities re-drawn. Independent events
keep theirs, so a thread that won once keeps winning until something it conflicts with
happens: the probability of an ordering depends on the dependent pairs in it, not on how many
independent steps lie between them.

The engine tells POS what every parked thread does next through the same seam DPOR uses:
the strategy carries a :class:`~vthreads._footprint.StepObserver` as ``observer``, which the
engine feeds every point (``op=``), touch, block, finish and clock advance. A thread whose next
operation would block (a held mutex, an empty queue…) is not enabled and is passed over while
an enabled thread exists. Priorities are drawn lazily, in tid order, from a seeded
``random.Random``: same seed, same decisions.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from ._engine import VThread
from ._footprint import CLOCK_TID, Footprint, StepObserver, dependent, key_of, would_block
from ._strategies import STRATEGIES, Strategy, check_int


class POS(Strategy):
    """Partial-order sampling (see the module doc). ``seed`` is the only parameter."""

    name = "pos"

    def __init__(self, seed: int = 0) -> None:
        self.seed = check_int("seed", seed, 0)
        self._rng = random.Random(seed)
        self.observer = StepObserver()
        #: tid -> priority of its pending event; absent: to be drawn when next needed
        self._prio: dict[int, float] = {}
        #: re-draws caused by a racing step (not counting the stepping thread's own)
        self.redraws = 0

    def _forget_executed(self) -> None:
        obs = self.observer
        pending = obs.pending
        for st in obs.steps:
            if st.tid == CLOCK_TID:  # time moved: dependent with everything
                self._prio.clear()
                continue
            self._prio.pop(st.tid, None)  # its next event is a new event
            for tid in [t for t in self._prio if _races(st.fp, pending.get(t))]:
                del self._prio[tid]
                self.redraws += 1
        obs.steps.clear()  # POS needs only the steps since the last choice

    def choose(self, runnable: Sequence[VThread], step: int, *,
               current: VThread | None) -> VThread:
        self._forget_executed()
        pending = self.observer.pending
        cands = [t for t in runnable if not would_block(pending.get(t.tid))] or list(runnable)
        best: VThread | None = None
        best_p = -1.0
        for t in sorted(cands, key=_tid):
            p = self._prio.get(t.tid)
            if p is None:
                p = self._prio[t.tid] = self._rng.random()
            if p > best_p:
                best, best_p = t, p
        assert best is not None
        return best

    def describe(self) -> dict[str, object]:
        return {"strategy": self.name, "seed": self.seed}


def _races(fp: Footprint, op: object) -> bool:
    if op is None:
        return False
    obj, mode = op  # type: ignore[misc]
    return dependent(fp, ((key_of(obj), mode),))


def _tid(t: VThread) -> int:
    return t.tid


STRATEGIES.register("pos", lambda seed=0, depth=3, pct_steps=1000: POS(seed),
                    summary="partial-order sampling (Yuan et al., CAV 2018)")
