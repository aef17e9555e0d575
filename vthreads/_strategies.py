"""Scheduling strategies: who runs next at a scheduling point.

At every real choice (more than one thread can run) the engine builds the runnable set once and
calls ``strategy.choose(runnable, step, current=current)``, as shuttle's ``next_task`` does:

* ``runnable`` — a tuple of every thread that can run, in one documented order: the current
  thread first when it can go on running, then the ready threads in the order they became ready
  (longest-ready first). So ``runnable[0]`` is always what ``fifo`` picks.
* ``current`` — the running thread when it is still runnable (then ``runnable[0] is current``),
  ``None`` when it has just blocked or finished.
* ``step`` — the step counter (scheduling points so far).

A strategy returns one element of ``runnable``. It must be a pure function of what it is shown
and of its own seeded state: that is all determinism rests on. It is asked only at real
choices, so one decision is recorded per call.

Besides the engine's strategies (fifo, random, pct, replay, free) this module holds the ones
explorers drive — :class:`Recorder`, :class:`FifoWithOverrides`, :class:`PrefixThenFifo` — so
that every strategy lives in one place.
"""

from __future__ import annotations

import inspect
import random
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._errors import Divergence
from .registry import Registry

if TYPE_CHECKING:
    from ._engine import VThread

STRATEGY_NAMES = ("fifo", "random", "pct", "pos", "replay", "free")

#: seeded sampling strategies defined beside the machinery they need, by name: each entry is a
#: factory ``(seed=, depth=, pct_steps=) -> Strategy`` that :func:`make_strategy` calls. POS
#: (``vthreads._pos``) lives here: it reads step footprints (``_footprint``), which need the
#: engine's types, and the engine imports this module, so it registers itself instead.
STRATEGIES: Registry[Callable[..., Strategy]] = Registry("strategy")


class Strategy:
    """Base class. Subclasses override :meth:`choose` (and :meth:`on_spawn` if they need to).

    Subclasses written against the old ``choose(self, current, ready, step)`` signature (the
    parameters literally named ``current, ready, step``) keep working: they are adapted when the
    class is defined, with a ``DeprecationWarning``."""

    name = "strategy"
    controlled = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fn = cls.__dict__.get("choose")
        if fn is not None and _is_legacy_choose(fn):
            warnings.warn(
                f"{cls.__qualname__}.choose(current, ready, step) is the old signature: define "
                "choose(self, runnable, step, *, current) instead (see docs/engine.md)",
                DeprecationWarning,
                stacklevel=2,  # the class statement that defines the legacy choose
            )
            cls.choose = _adapt_legacy_choose(fn)  # type: ignore[method-assign]

    def on_spawn(self, thread: VThread) -> None:
        """Called once per new thread, in spawn order."""

    def choose(
        self, runnable: Sequence[VThread], step: int, *, current: VThread | None
    ) -> VThread:
        """Return the thread to run next: one element of ``runnable`` (see the module doc)."""
        raise NotImplementedError

    def finish(self, step: int) -> None:
        """Called when the run ends normally (replay checks that the recording was used up)."""

    def describe(self) -> dict[str, object]:
        return {"strategy": self.name}


def _is_legacy_choose(fn: Any) -> bool:
    try:
        params = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):  # pragma: no cover - builtins, odd callables
        return False
    return params[1:4] == ["current", "ready", "step"]


def _adapt_legacy_choose(fn: Callable[..., VThread]) -> Callable[..., VThread]:
    def choose(self: Strategy, runnable: Sequence[VThread], step: int, *,
               current: VThread | None) -> VThread:
        ready = runnable[1:] if current is not None else runnable
        return fn(self, current, ready, step)

    choose.__doc__ = fn.__doc__
    choose.__wrapped__ = fn  # type: ignore[attr-defined]
    return choose


class Fifo(Strategy):
    """Run the current thread until it blocks; then the thread that has been ready longest."""

    name = "fifo"

    def choose(self, runnable, step, *, current):
        return runnable[0]


def check_int(what: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """``value`` if it is an int (not a bool) in ``low..high`` (either bound None: none); else a
    one-line ``TypeError`` or ``ValueError`` naming ``what``. A seed that is no int was hashed
    by ``random.Random``: ``None`` or NaN gave new decisions on every run, ``-1`` those of
    ``1`` (sweep F's D5)."""
    if type(value) is not int:
        raise TypeError(f"{what} takes an int, not {type(value).__name__}")
    if low is None:
        return value
    if value < low or (high is not None and value > high):
        span = f">= {low}" if high is None else f"{low}..{high:,}"
        raise ValueError(f"{what} takes an int {span}, not {value}")
    return value


class Random(Strategy):
    """Uniform choice among the runnable threads at every point (seeded)."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.seed = check_int("seed", seed, 0)
        self._rng = random.Random(seed)

    def choose(self, runnable, step, *, current):
        # by tid, not by runnable order: the draw then names a thread independently of when
        # it became ready
        cands = sorted(runnable, key=_tid)
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
        check_int("seed", seed, 0)
        check_int("pct depth", depth)  # an int first: the lower bounds keep their messages
        check_int("pct_steps", k)
        if depth < 1:
            raise ValueError("pct depth must be >= 1")
        if k < 1:
            raise ValueError("pct_steps must be >= 1")
        check_int("pct depth", depth, 1, 10**6)
        check_int("pct_steps", k, 1, 2**63 - 1)
        self.seed, self.depth, self.k = seed, depth, k
        self._rng = random.Random(seed)
        n_changes = min(depth - 1, k)
        points = self._rng.sample(range(1, k + 1), n_changes)
        # the i-th change point (in step order) lowers priority to i: 1 is the lowest
        self._changes = [(s, i + 1) for i, s in enumerate(sorted(points))]
        self._next_change = 0
        self._prio: dict[int, float] = {}

    @property
    def change_points(self) -> tuple[int, ...]:
        """The steps at which the running thread's priority drops (``depth - 1`` of them)."""
        return tuple(s for s, _ in self._changes)

    def on_spawn(self, thread):
        # distinct with probability 1 and always > depth, as the algorithm requires
        self._prio[thread.tid] = self.depth + 1 + self._rng.random() * 1_000_000

    def choose(self, runnable, step, *, current):
        # The engine asks only at real choices, so a change point may have passed while one
        # thread ran alone; it applies to the running thread at the next choice.
        changes = self._changes
        while self._next_change < len(changes) and changes[self._next_change][0] <= step:
            if current is not None:
                self._prio[current.tid] = changes[self._next_change][1]
            self._next_change += 1
        # strict '>': on a (measure-zero) tie the earlier one in runnable order wins; the best
        # priority so far is kept, not looked up again for every candidate
        prio = self._prio
        best = runnable[0]
        best_p = prio[best.tid]
        for t in runnable:
            p = prio[t.tid]
            if p > best_p:
                best, best_p = t, p
        return best

    def describe(self):
        return {"strategy": self.name, "seed": self.seed, "depth": self.depth, "pct_steps": self.k}


class Replay(Strategy):
    """Follow a recorded decision list.

    With ``fallback`` (another strategy), the recording is a *prefix*: once it is used up the
    fallback decides (explorers and the minimiser use this). Without it, running out of
    decisions, a decision naming a thread that cannot run, or finishing with decisions left over
    is a :class:`Divergence`, reported with its step and its ``kind`` (``ran-out``,
    ``unknown-thread`` — a tid no thread of the run had by then —, ``not-runnable``,
    ``left-over``); the last one raised is kept as :attr:`divergence`."""

    name = "replay"

    def __init__(self, decisions: Iterable[int], fallback: Strategy | None = None,
                 *, lenient: bool = False) -> None:
        try:
            self.decisions = list(decisions)
        except TypeError:
            raise TypeError(f"replay takes an iterable of thread indices (a Decisions, a "
                            f"list of ints), not {type(decisions).__name__}") from None
        self.fallback = fallback
        #: with ``lenient`` (and a fallback), a decision that no longer applies hands the rest
        #: of the run to the fallback instead of raising; ``diverged_at`` records the step
        self.lenient = lenient and fallback is not None
        self.diverged_at: int | None = None
        #: the :class:`Divergence` this strategy raised, if it did
        self.divergence: Divergence | None = None
        self._i = 0
        self._started = 0  # threads spawned so far: tids are 0..started-1, in spawn order

    def on_spawn(self, thread):
        self._started += 1
        if self.fallback is not None:
            self.fallback.on_spawn(thread)

    def _diverge(self, message: str, step: int, kind: str) -> Divergence:
        self.divergence = Divergence(message, step, kind=kind)
        return self.divergence

    def choose(self, runnable, step, *, current):
        if self._i >= len(self.decisions):
            if self.fallback is not None:
                return self.fallback.choose(runnable, step, current=current)
            raise self._diverge(
                f"the program asked for decision {self._i + 1} but the recording has only "
                f"{len(self.decisions)}", step, "ran-out")
        tid = self.decisions[self._i]
        self._i += 1
        for t in runnable:
            if t.tid == tid:
                return t
        if self.lenient and self.fallback is not None:
            self.diverged_at = step
            self._i = len(self.decisions)
            return self.fallback.choose(runnable, step, current=current)
        started = max(self._started, 1 + max(t.tid for t in runnable))
        if tid >= started:
            raise self._diverge(
                f"decision {self._i} names thread tid {tid}, but the run has started only "
                f"{started} threads (tids 0..{started - 1})", step, "unknown-thread")
        names = sorted(t.name for t in runnable)
        raise self._diverge(
            f"decision {self._i} names thread tid {tid}, which cannot run here "
            f"(runnable: {', '.join(names)})", step, "not-runnable")

    def finish(self, step):
        if self.fallback is None and self._i < len(self.decisions):
            raise self._diverge(
                f"the program finished after {self._i} decisions; the recording has "
                f"{len(self.decisions)}", step, "left-over")

    def describe(self):
        return {"strategy": self.name, "decisions": len(self.decisions)}


class Free(Strategy):
    """No control at all: the backend's own scheduler interleaves the threads.

    Scheduling points become plain ``anyio.lowlevel.checkpoint()`` calls. Not deterministic, not
    replayable: it exists as the uncontrolled baseline for benchmarks."""

    name = "free"
    controlled = False

    def choose(self, runnable, step, *, current):  # pragma: no cover - never asked
        raise AssertionError("the free strategy makes no decisions")


# ---- strategies explorers drive ----------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    """One recorded choice point: the chosen tid, what fifo would have chosen, the running
    thread (None after a block) and every runnable tid (ascending)."""

    chosen: int
    fifo: int
    current: int | None
    options: tuple[int, ...]

    @property
    def preemption(self) -> bool:
        """Whether the choice took the processor from a thread that could have gone on."""
        return self.current is not None and self.chosen != self.current


class Recorder(Strategy):
    """Wraps a strategy and records every choice point it decides, in order, in
    :attr:`choices`. Decisions are the inner strategy's, unchanged."""

    def __init__(self, inner: Strategy) -> None:
        self.inner = inner
        self.name = inner.name
        self.choices: list[Choice] = []

    def on_spawn(self, thread: VThread) -> None:
        self.inner.on_spawn(thread)

    def choose(
        self, runnable: Sequence[VThread], step: int, *, current: VThread | None
    ) -> VThread:
        t = self.inner.choose(runnable, step, current=current)
        opts = tuple(sorted(x.tid for x in runnable))
        self.choices.append(
            Choice(t.tid, runnable[0].tid, current.tid if current is not None else None, opts)
        )
        return t

    def finish(self, step: int) -> None:
        self.inner.finish(step)

    def describe(self) -> dict[str, object]:
        return self.inner.describe()


class FifoWithOverrides(Strategy):
    """``fifo``, except at the choice points listed in ``overrides`` (choice index → tid), where
    that thread runs if it can. The minimiser's representation of a schedule."""

    name = "fifo+overrides"

    def __init__(self, overrides: dict[int, int]) -> None:
        self.overrides = dict(overrides)
        self._k = 0

    def choose(
        self, runnable: Sequence[VThread], step: int, *, current: VThread | None
    ) -> VThread:
        k = self._k
        self._k += 1
        want = self.overrides.get(k)
        if want is not None:
            for t in runnable:
                if t.tid == want:
                    return t
        return runnable[0]


class PrefixThenFifo(Recorder):
    """Follow ``prefix`` (tids), then fifo; record every choice point (stateless depth-first
    search runs one of these per schedule)."""

    def __init__(self, prefix: Sequence[int]) -> None:
        super().__init__(Replay(prefix, fallback=Fifo()))


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
    if name in STRATEGIES:
        return STRATEGIES[name](seed=seed, depth=depth, pct_steps=pct_steps)
    raise ValueError(f"unknown strategy {name!r}: use one of {', '.join(STRATEGY_NAMES)}")
