"""What strategies say about themselves and how they refuse bad input (issue 16: mutants of
``vthreads/_strategies.py`` that survived the suite)."""

from __future__ import annotations

import pytest

import vthreads as vt
from vthreads import PCT, STRATEGY_NAMES, Divergence, Fifo, Free, Random, Replay, make_strategy


def test_describe_records_name_every_parameter() -> None:
    assert Fifo().describe() == {"strategy": "fifo"}
    assert Random(7).describe() == {"strategy": "random", "seed": 7}
    assert PCT(5, 2, 40).describe() == {"strategy": "pct", "seed": 5, "depth": 2,
                                        "pct_steps": 40}
    assert Replay([0, 1, 0]).describe() == {"strategy": "replay", "decisions": 3}


def test_make_strategy_builds_each_name_with_its_parameters() -> None:
    assert isinstance(make_strategy("fifo"), Fifo)
    r = make_strategy("random", seed=9)
    assert isinstance(r, Random) and r.seed == 9
    p = make_strategy("pct", seed=4, depth=2, pct_steps=30)
    assert isinstance(p, PCT) and (p.seed, p.depth, p.k) == (4, 2, 30)
    rp = make_strategy("replay", decisions=[1, 0])
    assert isinstance(rp, Replay) and rp.decisions == [1, 0] and rp.fallback is None
    assert isinstance(make_strategy("free"), Free) and not Free.controlled
    mine = Fifo()
    assert make_strategy(mine) is mine
    with pytest.raises(ValueError, match="needs a decision list"):
        make_strategy("replay")
    with pytest.raises(ValueError, match=r"unknown strategy 'nope': use one of fifo, random"):
        make_strategy("nope")
    assert STRATEGY_NAMES == ("fifo", "random", "pct", "pos", "replay", "free")


def test_pct_draws_depth_minus_one_distinct_change_points_within_k() -> None:
    for seed in range(20):
        p = PCT(seed, depth=4, k=10)
        pts = p.change_points
        assert len(pts) == 3 and len(set(pts)) == 3 and list(pts) == sorted(pts)
        assert all(1 <= s <= 10 for s in pts)
    assert PCT(0, depth=3, k=1).change_points == (1,)  # at most k of them
    assert PCT(3, 2, 50).change_points == PCT(3, 2, 50).change_points  # seeded
    with pytest.raises(ValueError, match="pct depth must be >= 1"):
        PCT(0, depth=0)
    with pytest.raises(ValueError, match="pct_steps must be >= 1"):
        PCT(0, k=0)


async def _two() -> None:
    async def w() -> None:
        await vt.checkpoint("w")

    a, b = vt.spawn("a", w), vt.spawn("b", w)
    await a.join()
    await b.join()


def test_pct_priorities_decide_and_follow_the_seed() -> None:
    runs = {tuple(vt.Engine(PCT(s, 1, 50)).run(_two).decisions) for s in range(30)}
    assert len(runs) > 1  # the seed changes the priorities, so the order
    again = {tuple(vt.Engine(PCT(s, 1, 50)).run(_two).decisions) for s in range(30)}
    assert runs == again


def test_replay_divergence_messages_say_what_went_wrong() -> None:
    full = vt.Engine("random", seed=1).run(_two).decisions
    strategy = Replay(full[:1])
    short = vt.Engine(strategy).run(_two)
    assert short.failure is not None and short.failure.kind == "divergence"
    assert ("the program asked for decision 2 but the recording has only 1"
            in short.failure.message)
    assert strategy.divergence is not None and strategy.divergence.kind == "ran-out"
    strategy = Replay([*full, 0, 0])
    long = vt.Engine(strategy).run(_two)
    assert long.failure is not None
    assert f"the program finished after {len(full)} decisions; the recording has" in (
        long.failure.message)
    assert strategy.divergence is not None and strategy.divergence.kind == "left-over"
    # a tid no thread of the run ever had by then: told apart from one that cannot run
    strategy = Replay([99])
    bad = vt.Engine(strategy).run(_two)
    assert bad.failure is not None
    assert "decision 1 names thread tid 99, but the run has started only 3 threads" in (
        bad.failure.message)
    assert strategy.divergence is not None and strategy.divergence.kind == "unknown-thread"
    lenient = Replay([99], fallback=Fifo(), lenient=True)
    r = vt.Engine(lenient).run(_two)
    assert r.ok and lenient.diverged_at is not None
    assert not Replay([99], lenient=True).lenient  # lenient needs a fallback
    with pytest.raises(Divergence):
        Replay([1]).finish(5)
