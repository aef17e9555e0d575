"""The compact decision record (issue 13): one byte a decision, shared by the result, and the
tuple's behaviour wherever a user compares, hashes, slices or replays it."""

from __future__ import annotations

import pickle
import tracemalloc

import vthreads as vt


def _spinner(rounds: int):
    async def spin() -> None:
        for _ in range(rounds):
            await vt.checkpoint()

    async def main() -> None:
        for i in range(3):
            vt.spawn(f"s{i}", spin)

    return main


def _run(rounds: int) -> tuple[vt.RunResult, int]:
    tracemalloc.start()
    try:
        r = vt.Engine("random", seed=7, step_budget=10**7).run(_spinner(rounds))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return r, peak


def test_memory_per_decision_is_about_one_byte():
    small, peak_small = _run(500)
    big, peak_big = _run(2000)
    assert small.ok and big.ok
    extra = len(big.decisions) - len(small.decisions)
    assert extra > 3000
    assert big.decisions.nbytes() == len(big.decisions)  # one byte each, below 256 threads
    # the whole run's peak grows by the record and not by a list or a tuple copy of it (a list
    # alone is 8 bytes a decision, the old end-of-run tuple 8 more, and the loop's closing repr
    # of the result ~11 more)
    assert (peak_big - peak_small) / extra < 3
    assert len(repr(big.decisions)) < 400 and repr(small.decisions[:3]).startswith("Decisions([")


def test_result_shares_the_engines_record():
    eng = vt.Engine("random", seed=1)
    r = eng.run(_spinner(20))
    assert r.decisions._a is eng.decisions._a  # no copy at the end of the run


def test_behaves_as_the_tuple():
    r = vt.Engine("random", seed=3).run(_spinner(10))
    d, t = r.decisions, tuple(r.decisions)
    assert d == t and t == d and d != t + (0,) and d != list(t)  # noqa: RUF005
    assert hash(d) == hash(t) and {d, t} == {t}
    assert d[1] == t[1] and d[-1] == t[-1] and d[2:5] == t[2:5]
    assert isinstance(d[2:5], vt.Decisions) and list(d) == list(t) and len(d) == len(t)
    assert (d < t + (0,)) and (d + (9,)) == t + (9,) and ((9,) + d) == (9,) + t  # noqa: RUF005
    assert pickle.loads(pickle.dumps(d)) == d
    again = vt.Engine("replay", decisions=d).run(_spinner(10))
    assert again.ok and again.decisions == d


def test_widens_past_255_threads():
    tids = [0, 255, 256, 3, 70_000, 1]
    d = vt.Decisions(tids)
    assert d == tuple(tids) and d.nbytes() == 8 * len(tids)
    assert vt.Decisions([1, 2]).nbytes() == 2 and vt.Decisions([1, 300]).nbytes() == 4

    async def one() -> None:
        await vt.checkpoint()

    async def main() -> None:
        for i in range(300):
            vt.spawn(f"t{i}", one)

    r = vt.Engine("random", seed=5).run(main)
    assert r.ok and max(r.decisions) > 255
    assert vt.Engine("replay", decisions=r.decisions).run(main).decisions == r.decisions
