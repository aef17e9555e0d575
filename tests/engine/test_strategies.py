"""Strategy.choose(runnable, step, *, current): what strategies are shown, the old signature,
PCT's change points, and the explorers' strategies that moved here from wddmemu."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import vthreads as vt
from vthreads.testing import capture_events

from .test_engine import _three_step_model, prodcons


class Watcher(vt.Strategy):
    """fifo, checking the documented shape of what it is shown."""

    name = "watcher"

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[int, ...], int | None]] = []

    def choose(self, runnable, step, *, current):
        assert isinstance(runnable, tuple) and len(runnable) >= 2
        assert len({t.tid for t in runnable}) == len(runnable)
        assert current is None or runnable[0] is current
        assert all(t.state in ("ready", "running") for t in runnable)
        self.calls.append((tuple(t.tid for t in runnable), current and current.tid))
        return runnable[0]


def test_choose_sees_the_current_thread_first_then_the_ready_list() -> None:
    w = Watcher()
    r = vt.Engine(w).run(prodcons)
    assert r.ok and len(w.calls) == len(r.decisions) > 3
    # same decisions as fifo, since runnable[0] is what fifo picks
    assert r.decisions == vt.Engine("fifo").run(prodcons).decisions
    assert any(cur is None for _, cur in w.calls) and any(cur is not None for _, cur in w.calls)


def test_a_strategy_with_the_old_signature_still_works_with_a_warning() -> None:
    with pytest.warns(DeprecationWarning, match="old signature"):

        class OldLast(vt.Strategy):
            name = "old-last"

            def choose(self, current, ready, step):
                return ready[-1]

    class NewLast(vt.Strategy):
        name = "new-last"

        def choose(self, runnable, step, *, current):
            return runnable[-1]

    old = vt.Engine(OldLast()).run(prodcons)
    new = vt.Engine(NewLast()).run(prodcons)
    assert old.ok and old.decisions == new.decisions
    assert old.decisions != vt.Engine("fifo").run(prodcons).decisions


def test_new_style_strategies_define_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")

        class Fine(vt.Strategy):
            def choose(self, runnable, step, *, current):
                return runnable[0]


@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_pct_draws_depth_minus_one_change_points(depth: int) -> None:
    for seed in range(10):
        points = vt.PCT(seed, depth, k=50).change_points
        assert len(points) == depth - 1
        assert list(points) == sorted(points) and all(1 <= s <= 50 for s in points)


def test_pct_of_depth_one_never_preempts() -> None:
    # no change point: the highest-priority runnable thread always runs, so each body runs to
    # its end once started; one change point would interleave the bodies on some seed
    orders = set()
    for seed in range(60):
        main, order = _three_step_model()
        vt.Engine("pct", seed=seed, depth=1, pct_steps=12).run(main).check()
        orders.add("".join(order))
    assert orders == {"AAABBB", "BBBAAA"}


def test_recorder_records_every_choice_and_keeps_the_decisions() -> None:
    rec = vt.Recorder(vt.Random(3))
    r = vt.Engine(rec).run(prodcons)
    assert r.decisions == vt.Engine("random", seed=3).run(prodcons).decisions
    assert [c.chosen for c in rec.choices] == list(r.decisions)
    assert all(c.options == tuple(sorted(c.options)) and c.chosen in c.options
               for c in rec.choices)
    assert any(c.preemption for c in rec.choices)
    # fifo's pick is the current thread whenever there is one (runnable[0])
    assert all(c.fifo == c.current for c in rec.choices if c.current is not None)


def test_fifo_with_overrides_and_prefix_then_fifo() -> None:
    base = vt.Engine("random", seed=9).run(prodcons)
    pre = vt.PrefixThenFifo(base.decisions[:4])
    r = vt.Engine(pre).run(prodcons)
    assert r.decisions[:4] == base.decisions[:4] and len(pre.choices) == len(r.decisions)
    # overriding nothing is fifo; overriding choice k with fifo's own choice changes nothing
    fifo = vt.Engine("fifo").run(prodcons).decisions
    assert vt.Engine(vt.FifoWithOverrides({})).run(prodcons).decisions == fifo
    assert vt.Engine(vt.FifoWithOverrides({1: fifo[1]})).run(prodcons).decisions == fifo


def test_the_explorer_uses_these_very_classes() -> None:
    from wddmemu import _explore

    assert _explore.Recorder is vt.Recorder
    assert _explore.FifoWithOverrides is vt.FifoWithOverrides
    assert _explore.SYSTEMATIC is vt.SYSTEMATIC  # dfs and dpor come from the engine too


# ---- records and nowait twins ------------------------------------------------------------


def test_statistics_is_a_frozen_record() -> None:
    r = vt.Engine("random", seed=2).run(prodcons)
    assert isinstance(r.statistics, vt.EngineStatistics)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.statistics.steps = 0  # type: ignore[misc]
    assert r.statistics.decisions == len(r.decisions)


def test_event_wait_nowait_and_join_nowait() -> None:
    async def child(ev: vt.Event, cell: vt.SharedCell) -> None:
        await cell.write(1, "child")
        ev.set()

    async def main() -> None:
        ev, cell = vt.Event("ev"), vt.SharedCell("x", 0)
        t = vt.spawn("child", child, ev, cell)
        with pytest.raises(vt.WouldBlock, match="not set"):
            ev.wait_nowait()
        with pytest.raises(vt.WouldBlock, match="not finished"):
            t.join_nowait()
        await vt.sleep(1)  # the child runs and finishes
        ev.wait_nowait()  # the set -> wait edge: this read is ordered after the child's write
        t.join_nowait()
        assert await cell.read("main") == 1

    vt.Engine().run(main).check()


def test_mutex_acquire_nowait() -> None:
    async def main() -> None:
        m = vt.Mutex("m")
        m.acquire_nowait()
        with pytest.raises(vt.WouldBlock, match="held by main"):
            m.acquire_nowait()
        m.release()
        async with m:
            assert m.locked()

    vt.Engine().run(main).check()


# ---- capture_events and the host's logging ---------------------------------------------------


def test_capture_events_nest_and_hold_the_trace_line_dicts(tmp_path) -> None:
    path = tmp_path / "t.jsonl"
    with capture_events() as outer:
        vt.Engine("fifo").run(prodcons)
        with capture_events() as inner:
            vt.Engine("random", seed=1, trace=path, context={"scenario": "s"}).run(prodcons)
    assert len(outer) > len(inner) > 20
    assert outer[-len(inner):] == inner
    import orjson

    lines = [orjson.loads(x) for x in path.read_bytes().splitlines()]
    assert lines == [orjson.loads(orjson.dumps(e)) for e in inner]
    assert list(inner[0])[:4] == ["step", "t", "thread", "event"]
    assert list(inner[5])[-4:] == ["scenario", "seed", "strategy", "backend"]
    with capture_events() as after:
        pass
    assert after == []


def test_importing_the_stack_leaves_structlog_configuration_alone() -> None:
    code = (
        "import logging, structlog; structlog.configure(processors=[]); "
        "import vthreads, kmd, umd, runtime, wddmemu; "
        "assert structlog.get_config()['processors'] == []; "
        "import io; b = io.BytesIO(); "
        "from tests.engine.test_engine import prodcons; "
        "vthreads.Engine(trace=b).run(prodcons).check(); "
        "assert structlog.get_config()['processors'] == [] and b.getvalue().count(b'\\n') > 20"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
