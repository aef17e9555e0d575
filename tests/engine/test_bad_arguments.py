"""The engine's own arguments refused in one line before a run (sweep F's D5-D7): a seed that
is no int made "the same seed" nondeterministic, a decision no typecode holds raised KeyError,
and a trace that is no binary stream failed after the run from inside the sink."""

from __future__ import annotations

import io
import sys
from typing import Any

import pytest

import vthreads as vt


async def _main() -> None:
    await vt.checkpoint()


@pytest.mark.parametrize("strategy", ["random", "pct", "pos"])
@pytest.mark.parametrize(("seed", "error", "says"), [
    (None, TypeError, "seed takes an int, not NoneType"),
    (float("nan"), TypeError, "seed takes an int, not float"),
    ("3", TypeError, "seed takes an int, not str"),
    (True, TypeError, "seed takes an int, not bool"),
    (-1, ValueError, "seed takes an int >= 0, not -1"),
])
def test_a_seed_that_is_no_int_from_0_is_refused(strategy: str, seed: Any, error: type,
                                                 says: str) -> None:
    with pytest.raises(error, match=f"^{says}$"):
        vt.Engine(strategy, seed=seed)


@pytest.mark.parametrize(("kw", "says"), [
    ({"pct_steps": 2**70}, "pct_steps takes an int 1..9,223,372,036,854,775,807"),
    ({"pct_steps": None}, "pct_steps takes an int, not NoneType"),
    ({"depth": 1.5}, "pct depth takes an int, not float"),
    ({"depth": 0}, "pct depth must be >= 1"),
    ({"depth": 10**7}, "pct depth takes an int 1..1,000,000, not 10000000"),
])
def test_pct_parameters_out_of_range_are_refused(kw: dict[str, Any], says: str) -> None:
    with pytest.raises((TypeError, ValueError), match=says):
        vt.Engine("pct", **kw)


def test_a_big_seed_is_a_seed_and_the_same_one_decides_the_same() -> None:
    runs = [vt.Engine("pct", seed=2**80).run(_main).decisions for _ in range(2)]
    assert runs[0] == runs[1]


@pytest.mark.parametrize("tid", [-1, 2**64])
def test_a_decision_no_thread_index_can_be_is_a_value_error(tid: int) -> None:
    with pytest.raises(ValueError, match=r"a decision is a thread index 0\.\.2\*\*64-1"):
        vt.Decisions([0, tid])
    assert list(vt.Decisions([0, 2**64 - 1])) == [0, 2**64 - 1]


@pytest.mark.parametrize("trace", [5, sys.stdout, io.StringIO()], ids=["int", "stdout", "text"])
def test_a_trace_that_is_no_binary_stream_is_refused_before_the_run(trace: Any) -> None:
    ran: list[int] = []

    async def main() -> None:
        ran.append(1)

    with pytest.raises(TypeError, match=r"a trace goes to a path, True .* or a binary stream"):
        vt.Engine("fifo", trace=trace).run(main)
    assert ran == []
    buf = io.BytesIO()
    vt.Engine("fifo", trace=buf).run(main).check()
    assert b'"event":"run.end"' in buf.getvalue()


@pytest.mark.parametrize(("context", "error", "says"), [
    ({"obj": object()}, TypeError, "context 'obj' takes a str, int, float, bool or None"),
    ({"seed": "s"}, TypeError, "context 'seed' takes int, not str"),
    ({"step": 1}, ValueError, "context key 'step' is no field name a line can carry"),
    ([("a", 1)], TypeError, "context takes a dict of trace fields, not list"),
])
def test_a_context_the_traces_reader_would_refuse_is_refused(context: Any, error: type,
                                                             says: str) -> None:
    """A context value written with its address changed the trace from process to process; a
    str seed put a seed the reader refuses on every line (sweep F D8)."""
    with pytest.raises(error, match=says):
        vt.Engine("fifo", context=context)
    vt.Engine("fifo", context={"scenario": "s", "x": 1.5, "flag": None}).run(_main).check()


@pytest.mark.parametrize(("body", "says"), [
    (lambda: vt.violation("R", 5), "violation takes a rule id and a message, both str"),
    (lambda: vt.log(5), "log takes an event name, a str, not int"),
])
def test_trace_lines_the_reader_would_refuse_are_the_callers_exception(body: Any,
                                                                       says: str) -> None:
    async def main() -> None:
        body()

    r = vt.Engine("fifo", trace=True).run(main)
    assert r.failure is not None and r.failure.kind == "exception"
    assert says in r.failure.message


@pytest.mark.parametrize("budget", [True, 1.0])
def test_a_step_budget_that_is_no_int_is_refused(budget: Any) -> None:
    with pytest.raises(TypeError, match="step_budget takes an int"):
        vt.Engine("fifo", step_budget=budget)


@pytest.mark.parametrize(("call", "error", "says"), [
    (lambda: vt.Replay(5), TypeError, "replay takes an iterable of thread indices"),
    (lambda: vt.run_many(lambda x: None, 5), TypeError, "run_many takes an iterable of items"),
    (lambda: vt.Queue("q", maxsize=1.5), TypeError, "maxsize takes an int, not float"),
    (lambda: vt.lowlevel.safe_repr("x", limit=None), ValueError,
     "safe_repr's limit takes an int >= 1, not None"),
], ids=["replay", "run-many", "queue", "safe-repr"])
def test_library_calls_refuse_a_wrong_argument_in_their_own_words(call: Any, error: type,
                                                                  says: str) -> None:
    """Each used to fail from deep inside, or took the value silently (sweep F D10)."""
    with pytest.raises(error, match=says):
        call()


@pytest.mark.parametrize(("body", "says"), [
    (lambda: vt.lowlevel.record_access(5, "s", write=True), "record_access takes a RaceDetector"),
    (lambda: vt.Condition("c").wait_for(lambda: False, timeout_ns=-1),
     "wait_for's timeout_ns takes an int >= 0"),
], ids=["record-access", "wait-for"])
def test_misused_primitives_are_the_callers_exception(body: Any, says: str) -> None:
    async def main() -> None:
        got = body()
        if hasattr(got, "__await__"):
            await got

    r = vt.Engine("fifo").run(main)
    assert r.failure is not None and r.failure.kind == "exception"
    assert says in r.failure.message


async def _checkpoint(op: Any) -> None:
    await vt.checkpoint(op=op)


async def _touch(mode: Any) -> None:
    vt.lowlevel.touch(vt.SharedCell("t", 0), mode)


@pytest.mark.parametrize("strategy", ["fifo", "random", "dpor"])
@pytest.mark.parametrize(("call", "arg", "says"), [
    (_checkpoint, 5, 'checkpoint takes op=(object, mode), mode a str such as "read", not 5'),
    (_checkpoint, (1, 2, 3), "not (1, 2, 3)"),
    (_checkpoint, ("cell", 7), "not ('cell', 7)"),
    (_checkpoint, ["cell", "read"], "not ['cell', 'read']"),
    (_touch, None, 'touch takes a mode str such as "release", not None'),
], ids=["int", "triple", "int-mode", "list", "touch-None"])
def test_an_operation_of_the_wrong_shape_is_refused_under_every_strategy(
        strategy: str, call: Any, arg: Any, says: str) -> None:
    """Sweep F D10: ``checkpoint(op=5)`` passed under fifo and failed under DPOR later, from
    inside the search, as "'int' object is not subscriptable". Now it is the calling thread's
    TypeError, an ``exception`` finding, whatever the strategy."""

    async def main() -> None:
        await call(arg)

    run = vt.explore_dpor(main).failure if strategy == "dpor" else vt.Engine(strategy).run(main)
    assert run is not None and run.failure is not None and run.failure.kind == "exception"
    assert run.failure.message.startswith("TypeError: ") and says in run.failure.message, (
        run.failure.message)


def test_a_mode_of_ones_own_is_taken_as_a_write() -> None:
    async def main() -> None:
        cell = vt.SharedCell("c", 0)
        await vt.checkpoint(op=(cell, "bogus"))
        vt.lowlevel.touch(cell, "bogus")

    assert vt.Engine("fifo").run(main).ok
    assert vt.explore_dpor(main).exhausted
