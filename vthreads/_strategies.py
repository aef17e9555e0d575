"""Scheduling strategies: who runs next at a scheduling point.

A strategy sees the threads that can run — the current one (if it is still runnable) and the
ready list in the order the threads became ready — and returns one of them. It must be a pure
function of what it is shown and of its own seeded state: that is all determinism rests on.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from ._errors import Divergence

if TYPE_CHECKING:
    from ._engine import VThread

STRATEGY_NAMES = ("fifo", "random", "pct", "replay", "free")


class Strategy:
    """Base class. Subclasses override :meth:`choose` (and :meth:`on_spawn` if they need to)."""

    name = "strategy"
    controlled = True

    def on_spawn(self, thread: VThread) -> None:
        """Called once per new thread, in spawn order."""

    def choose(self, current: VThread | None, ready: Sequence[VThread], step: int) -> VThread:
        raise NotImplementedError

    def finish(self, step: int) -> None:
        """Called when the run ends normally (replay checks that the recording was used up)."""

    def describe(self) -> dict[str, object]:
        return {"strategy": self.name}


class Fifo(Strategy):
    """Run the current thread until it blocks; then the thread that has been ready longest."""

    name = "fifo"

    def choose(self, current, ready, step):
        return current if current is not None else ready[0]


class Random(Strategy):
    """Uniform choice among the runnable threads at every point (seeded)."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._rng = random.Random(seed)

    def choose(self, current, ready, step):
        cands = sorted((*ready, current) if current is not None else ready, key=_tid)
        return cands[self._rng.randrange(len(cands))]

    def describe(self):
        return {"strategy": self.name, "seed": self.seed}


class PCT(Strategy):
    """Probabilistic Concurrency Testing (Burckhardt, Kothari, Musuvathi, Nagarakatte, ASPLOS 2010).

    Every thread gets a distinct random priority above ``depth``; ``depth - 1`` priority-change
    points are drawn uniformly from steps ``1..k``. The highest-priority runnable thread runs; at
    the i-th change point the running thread's priority drops to ``i`` (below every initial
    priority). A bug of depth ``d`` is then found with probability at least ``1/(n k^(d-1))``.
    ``k`` should be about the number of steps of a run; explorers measure it with a probe run.
    """

    name = "pct"

    def __init__(self, seed: int = 0, depth: int = 3, k: int = 1000) -> None:
        if depth < 1:
            raise ValueError("pct depth must be >= 1")
        if k < 1:
            raise ValueError("pct_steps must be >= 1")
        self.seed, self.depth, self.k = seed, depth, k
        self._rng = random.Random(seed)
        n_changes = min(depth - 1, k)
        points = self._rng.sample(range(1, k + 1), n_changes)
        # the i-th change point (in step order) lowers priority to i: 1 is the lowest
        self._changes = [(s, i + 1) for i, s in enumerate(sorted(points))]
        self._next_change = 0
        self._prio: dict[int, float] = {}

    def on_spawn(self, thread):
        # distinct with probability 1 and always > depth, as the algorithm requires
        self._prio[thread.tid] = self.depth + 1 + self._rng.random() * 1_000_000

    def choose(self, current, ready, step):
        # The engine asks only at real choices, so a change point may have passed while one
        # thread ran alone; it applies to the running thread at the next choice.
        changes = self._changes
        while self._next_change < len(changes) and changes[self._next_change][0] <= step:
            if current is not None:
                self._prio[current.tid] = changes[self._next_change][1]
            self._next_change += 1
        best = current
        for t in ready:
            if best is None or self._prio[t.tid] > self._prio[best.tid]:
                best = t
        assert best is not None
        return best

    def describe(self):
        return {"strategy": self.name, "seed": self.seed, "depth": self.depth, "pct_steps": self.k}


class Replay(Strategy):
    """Follow a recorded decision list.

    With ``fallback`` (another strategy), the recording is a *prefix*: once it is used up the
    fallback decides (explorers and the minimiser use this). Without it, running out of
    decisions, a decision naming a thread that cannot run, or finishing with decisions left over
    is a :class:`Divergence`, reported with its step."""

    name = "replay"

    def __init__(self, decisions: Iterable[int], fallback: Strategy | None = None,
                 *, lenient: bool = False) -> None:
        self.decisions = list(decisions)
        self.fallback = fallback
        #: with ``lenient`` (and a fallback), a decision that no longer applies hands the rest
        #: of the run to the fallback instead of raising; ``diverged_at`` records the step
        self.lenient = lenient and fallback is not None
        self.diverged_at: int | None = None
        self._i = 0

    def on_spawn(self, thread):
        if self.fallback is not None:
            self.fallback.on_spawn(thread)

    def choose(self, current, ready, step):
        if self._i >= len(self.decisions):
            if self.fallback is not None:
                return self.fallback.choose(current, ready, step)
            raise Divergence(
                f"the program asked for decision {self._i + 1} but the recording has only "
                f"{len(self.decisions)}",
                step,
            )
        tid = self.decisions[self._i]
        self._i += 1
        if current is not None and current.tid == tid:
            return current
        for t in ready:
            if t.tid == tid:
                return t
        if self.lenient and self.fallback is not None:
            self.diverged_at = step
            self._i = len(self.decisions)
            return self.fallback.choose(current, ready, step)
        names = sorted(t.name for t in (*ready, *([current] if current else [])))
        raise Divergence(
            f"decision {self._i} names thread tid {tid}, which cannot run here "
            f"(runnable: {', '.join(names)})",
            step,
        )

    def finish(self, step):
        if self.fallback is None and self._i < len(self.decisions):
            raise Divergence(
                f"the program finished after {self._i} decisions; the recording has "
                f"{len(self.decisions)}",
                step,
            )

    def describe(self):
        return {"strategy": self.name, "decisions": len(self.decisions)}


class Free(Strategy):
    """No control at all: the backend's own scheduler interleaves the threads.

    Scheduling points become plain ``anyio.lowlevel.checkpoint()`` calls. Not deterministic, not
    replayable: it exists as the uncontrolled baseline for benchmarks."""

    name = "free"
    controlled = False

    def choose(self, current, ready, step):  # pragma: no cover - never asked
        raise AssertionError("the free strategy makes no decisions")


def _tid(t: VThread) -> int:
    return t.tid


def make_strategy(
    name: str | Strategy,
    *,
    seed: int = 0,
    depth: int = 3,
    pct_steps: int = 1000,
    decisions: Iterable[int] | None = None,
) -> Strategy:
    """Build a strategy from its CLI name."""
    if isinstance(name, Strategy):
        return name
    if name == "fifo":
        return Fifo()
    if name == "random":
        return Random(seed)
    if name == "pct":
        return PCT(seed, depth, pct_steps)
    if name == "replay":
        if decisions is None:
            raise ValueError("the replay strategy needs a decision list")
        return Replay(decisions)
    if name == "free":
        return Free()
    raise ValueError(f"unknown strategy {name!r}: use one of {', '.join(STRATEGY_NAMES)}")
