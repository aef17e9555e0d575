"""``HBClock``'s shortcuts give exactly the element-wise joins.

``vthreads.lowlevel.acquire`` skips the join for a thread the clock knows to be covered, and
``release`` copies the releaser's clock when it is covered (``HBClock._covered``, see its
docstring). Any sequence of acquires, releases and a thread's own steps, by any threads on any
clocks, must leave every thread's clock and every ``HBClock`` equal to what plain joins give.
"""

from __future__ import annotations

import contextvars

from hypothesis import given, settings
from hypothesis import strategies as st

from vthreads._hb import vc_join
from vthreads._threads import VThread, _thread_var
from vthreads.lowlevel import HBClock, acquire, release

THREADS, CLOCKS = 4, 3

# (operation, thread, clock): a thread's own step ticks its entry, as any event between two
# synchronisations of a thread does
OPS = st.lists(st.tuples(st.sampled_from(["acquire", "release", "step"]),
                         st.integers(0, THREADS - 1), st.integers(0, CLOCKS - 1)),
               max_size=60)


def _norm(vc: list[int]) -> list[int]:
    """A vector clock without its trailing zeros (a missing entry is 0)."""
    out = list(vc)
    while out and out[-1] == 0:
        out.pop()
    return out


def _as(thread: VThread, fn, clock: HBClock) -> None:
    ctx = contextvars.copy_context()
    ctx.run(lambda: (_thread_var.set(thread), fn(clock)))


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(OPS)
def test_the_shortcuts_give_the_element_wise_joins(ops: list[tuple[str, int, int]]) -> None:
    threads = [VThread(f"t{i}", i, False) for i in range(THREADS)]
    clocks = [HBClock() for _ in range(CLOCKS)]
    # the model: plain joins, no shortcut
    model_threads = [list(t.vc) for t in threads]
    model_clocks: list[list[int]] = [[] for _ in range(CLOCKS)]
    for op, t, c in ops:
        if op == "step":
            threads[t].vc[t] += 1
            model_threads[t][t] += 1
        elif op == "acquire":
            _as(threads[t], acquire, clocks[c])
            vc_join(model_threads[t], model_clocks[c])
        else:
            _as(threads[t], release, clocks[c])
            vc_join(model_clocks[c], model_threads[t])
            model_threads[t][t] += 1
        assert [_norm(th.vc) for th in threads] == [_norm(v) for v in model_threads]
        assert [_norm(k._vc) for k in clocks] == [_norm(v) for v in model_clocks]


def test_a_mutex_round_trip_takes_the_shortcuts() -> None:
    """The common case the shortcuts are for: the holder's release copies its clock, and its
    next acquire of the same clock finds itself covered (so the test above sees both paths)."""
    a, b = VThread("a", 0, False), VThread("b", 1, False)
    m = HBClock()
    _as(a, acquire, m)
    _as(a, release, m)
    assert m._vc == [1] and m._covered == {0} and a.vc == [2]
    a.vc[0] += 5  # a's own steps: it still covers m
    _as(a, acquire, m)
    assert a.vc == [7]  # nothing joined in
    _as(b, acquire, m)  # b learns a's release
    assert b.vc == [1, 1] and m._covered == {0, 1}
    _as(b, release, m)
    assert m._vc == [1, 1] and m._covered == {1} and b.vc == [1, 2]
