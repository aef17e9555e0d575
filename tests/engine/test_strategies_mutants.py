"""Strategy behaviour pinned at the choice level (issue 16: mutants of ``vthreads/_strategies.py``
that survived ``tests/engine``). The strategies are called directly with stand-in threads: a
strategy is a pure function of what it is shown, so this is its whole contract."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import pytest

from vthreads import (
    PCT,
    Divergence,
    Fifo,
    FifoWithOverrides,
    PrefixThenFifo,
    Random,
    Recorder,
    Replay,
    Strategy,
)


@dataclass(frozen=True)
class T:
    tid: int
    name: str = ""


A, B, C, D = T(0, "a"), T(1, "b"), T(2, "c"), T(3, "d")


class Seen(Strategy):
    """Records every call it gets; chooses the last runnable thread (not what fifo would)."""

    name = "seen"

    def __init__(self) -> None:
        self.spawned: list[T] = []
        self.calls: list[tuple] = []

    def on_spawn(self, thread):
        self.spawned.append(thread)

    def choose(self, runnable, step, *, current):
        self.calls.append((tuple(runnable), step, current))
        return runnable[-1]


# ---- the legacy choose(current, ready, step) adapter -----------------------------------------


def test_the_legacy_warning_points_at_the_class_definition() -> None:
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")

        class Old(Strategy):
            def choose(self, current, ready, step):
                return ready[0]

    (w,) = got
    assert w.category is DeprecationWarning and w.filename == __file__


def test_a_legacy_subclass_is_adapted_with_this_warning() -> None:
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")

        class Old(Strategy):
            def choose(self, current, ready, step):
                """old docs"""
                self.args = (self, current, ready, step)
                return ready[0]

    (w,) = got
    assert str(w.message) == (
        "test_a_legacy_subclass_is_adapted_with_this_warning.<locals>"
        ".Old.choose(current, ready, step) is the old signature: define choose(self, runnable, "
        "step, *, current) instead (see docs/engine.md)")
    old = Old()
    assert old.choose((A, B, C), 7, current=A) is B
    assert old.args == (old, A, (B, C), 7)
    assert old.choose((B, C), 8, current=None) is B
    assert old.args == (old, None, (B, C), 8)
    assert Old.choose.__doc__ == "old docs"
    assert Old.choose.__wrapped__.__name__ == "choose"
    assert Old.choose.__wrapped__ is not Old.choose


# ---- Random and PCT ---------------------------------------------------------------------------


def test_default_seeds_are_zero() -> None:
    assert Random().describe() == {"strategy": "random", "seed": 0}
    assert PCT().describe() == {"strategy": "pct", "seed": 0, "depth": 3, "pct_steps": 1000}


def test_pct_refuses_bad_parameters_with_these_messages() -> None:
    with pytest.raises(ValueError, match=r"^pct depth must be >= 1$"):
        PCT(depth=0)
    with pytest.raises(ValueError, match=r"^pct_steps must be >= 1$"):
        PCT(k=0)


def _pct(seed: int, depth: int, k: int, threads=(A, B)) -> PCT:
    p = PCT(seed, depth, k)
    for t in threads:
        p.on_spawn(t)
    return p


def _top(p: PCT, threads) -> T:
    return p.choose(tuple(threads), 0, current=None)


def test_the_change_point_demotes_the_running_thread_exactly_at_its_step() -> None:
    for seed in range(6):
        probe = _pct(seed, 2, 1000)
        (s,) = probe.change_points
        top = _top(probe, (A, B))
        other = B if top is A else A
        p = _pct(seed, 2, 1000)
        assert p.choose((top, other), s - 1, current=top) is top  # not yet
        assert p.choose((top, other), s, current=top) is other  # demoted below every thread
        assert p.choose((other, top), s + 1, current=other) is other


def test_a_change_point_that_passes_while_no_thread_runs_is_used_up() -> None:
    probe = _pct(3, 2, 5)
    (s,) = probe.change_points
    top = _top(probe, (A, B))
    other = B if top is A else A
    p = _pct(3, 2, 5)
    assert p.choose((other, top), s, current=None) is top
    assert p.choose((top, other), s + 1, current=top) is top  # the change point is gone


def test_every_change_point_lowers_the_running_thread_to_its_rank() -> None:
    # k = 3, depth 4: the change points are steps 1, 2 and 3; the i-th sets priority i
    p = _pct(1, 4, 3, (A, B, C, D))
    assert p.change_points == (1, 2, 3)
    p.choose((A, B, C, D), 1, current=A)
    p.choose((B, C, D), 2, current=B)
    p.choose((C, D), 3, current=C)
    assert p.choose((A, B, C), 4, current=None) is C
    assert p.choose((A, B), 5, current=None) is B
    assert p.choose((D, A, B, C), 6, current=None) is D


def test_one_runnable_thread_is_chosen() -> None:
    assert _pct(0, 3, 10).choose((B,), 1, current=None) is B


# ---- Replay ------------------------------------------------------------------------------------


def test_replay_is_strict_unless_asked_to_be_lenient() -> None:
    r = Replay([5], fallback=Fifo())
    assert r.diverged_at is None
    with pytest.raises(Divergence, match="names thread tid 5"):
        r.choose((A, B), 3, current=A)
    lenient = Replay([5, 1], fallback=Fifo(), lenient=True)
    assert lenient.choose((A, B), 3, current=A) is A and lenient.diverged_at == 3
    assert lenient.choose((A, B), 4, current=A) is A  # the rest is the fallback's
    assert Replay([5], lenient=True).lenient is False  # no fallback: nothing to hand over to


def test_replay_hands_the_fallback_everything_it_would_have_seen() -> None:
    seen = Seen()
    r = Replay([1], fallback=seen)
    r.on_spawn(C)
    assert seen.spawned == [C]
    assert r.choose((A, B), 4, current=A) is B  # the recording
    assert r.choose((A, B, C), 5, current=A) is C  # then the fallback
    assert seen.calls == [((A, B, C), 5, A)]
    lenient = Replay([9], fallback=seen, lenient=True)
    assert lenient.choose((B, C), 6, current=B) is C
    assert seen.calls[-1] == ((B, C), 6, B)


def test_replay_divergences_carry_their_step() -> None:
    with pytest.raises(Divergence) as e:
        Replay([]).choose((A, B), 11, current=A)
    assert e.value.step == 11
    with pytest.raises(Divergence) as e:
        Replay([7]).choose((A, B), 12, current=A)
    assert e.value.step == 12
    with pytest.raises(Divergence) as e:
        Replay([0]).finish(13)
    assert e.value.step == 13


def test_the_runnable_names_are_listed_comma_separated() -> None:
    r = Replay([3])
    for t in (A, B, C, D):
        r.on_spawn(t)
    with pytest.raises(Divergence, match=r"\(runnable: a, b\)$") as e:
        r.choose((B, A), 1, current=None)
    assert e.value.kind == "not-runnable" and r.divergence is e.value


def test_a_tid_no_thread_has_had_is_an_unknown_thread() -> None:
    r = Replay([7])
    for t in (A, B, C, D):
        r.on_spawn(t)
    with pytest.raises(Divergence, match=r"tid 7, but the run has started only 4 threads") as e:
        r.choose((B, A), 1, current=None)
    assert e.value.kind == "unknown-thread"
    # without on_spawn (a strategy driven by hand) the runnable threads still count as started
    with pytest.raises(Divergence, match=r"only 2 threads \(tids 0\.\.1\)"):
        Replay([7]).choose((B, A), 1, current=None)


# ---- Recorder, FifoWithOverrides, PrefixThenFifo ----------------------------------------------


class Finishing(Seen):
    name = "finishing"

    def finish(self, step):
        self.finished = step


def test_the_recorder_passes_everything_through_and_records_each_choice() -> None:
    inner = Finishing()
    rec = Recorder(inner)
    assert rec.name == "finishing" and rec.describe() == {"strategy": "finishing"}
    rec.on_spawn(D)
    assert inner.spawned == [D]
    assert rec.choose((A, B, C), 4, current=A) is C
    assert rec.choose((C, B), 5, current=None) is B
    assert inner.calls == [((A, B, C), 4, A), ((C, B), 5, None)]
    assert [(c.chosen, c.fifo, c.current, c.options) for c in rec.choices] == \
           [(2, 0, 0, (0, 1, 2)), (1, 2, None, (1, 2))]
    assert rec.choices[0].preemption and not rec.choices[1].preemption
    rec.finish(9)
    assert inner.finished == 9


def test_overrides_apply_at_their_choice_index_only() -> None:
    s = FifoWithOverrides({1: 2, 3: 1, 4: 9})
    picks = [s.choose((A, B, C), step, current=A).tid for step in range(6)]
    assert picks == [0, 2, 0, 1, 0, 0]  # 4 names a thread that cannot run: fifo
    assert FifoWithOverrides({0: 1}).choose((A, B), 0, current=None) is B


def test_prefix_then_fifo_follows_the_prefix_then_runs_fifo_and_records() -> None:
    s = PrefixThenFifo([1, 2])
    got = [s.choose((A, B, C), i, current=A).tid for i in range(4)]
    assert got == [1, 2, 0, 0]
    assert [c.chosen for c in s.choices] == got and s.name == "replay"


# ---- odd choose callables and make_strategy's defaults (mutants left by the cheaper PCT) ------


def _warnings_of(make) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        make()
    return got


def test_a_choose_whose_signature_cannot_be_read_is_not_taken_for_the_legacy_one() -> None:
    import operator

    def make() -> None:
        class Odd(Strategy):
            choose = operator.itemgetter(0)  # inspect.signature raises ValueError on it

    assert _warnings_of(make) == []


def test_a_legacy_choose_with_a_fourth_parameter_is_still_adapted() -> None:
    def make() -> None:
        class Old(Strategy):
            def choose(self, current, ready, step, extra=None):
                return ready[-1]

        assert Old().choose([A, B], 0, current=None) is B

    (w,) = _warnings_of(make)
    assert w.category is DeprecationWarning and "old signature" in str(w.message)


def test_make_strategy_defaults_and_what_a_registered_factory_gets() -> None:
    from vthreads import STRATEGIES, make_strategy

    pct = make_strategy("pct")
    assert (pct.seed, pct.depth, pct.k) == (0, 3, 1000)
    assert make_strategy("random").seed == 0
    with pytest.raises(ValueError, match=r"^the replay strategy needs a decision list$"):
        make_strategy("replay")
    got: list[dict] = []

    def factory(**kw):
        got.append(kw)
        return Fifo()

    STRATEGIES.register("test-kwargs", factory)
    try:
        make_strategy("test-kwargs")
        make_strategy("test-kwargs", seed=5, depth=7, pct_steps=11)
    finally:
        STRATEGIES.unregister("test-kwargs")
    assert got == [{"seed": 0, "depth": 3, "pct_steps": 1000},
                   {"seed": 5, "depth": 7, "pct_steps": 11}]
