"""A long run keeps nothing of a finished frame, events nobody listens to are not built, and the
trace is written in whole-line blocks (issue 13; docs/performance.md)."""

from __future__ import annotations

import tracemalloc

import pytest

import vthreads as vt
from vthreads import _trace
from wddmemu import RunSpec, run_scenario
from wddmemu._checker import Checker
from wddmemu._runner import _prepare


def _run(frames: int):
    engine, checker, box, _ = _prepare(
        RunSpec("dynamic-vb-ring", params={"frames": frames}), None, None, False)
    run = engine.run(box["main"], name="app")
    return run, checker, box["kernel"], box["ctx"].devices[0]


def test_executed_frames_leave_nothing_behind() -> None:
    run, checker, kernel, dev = _run(20)
    assert run.ok
    assert kernel.statistics().dma_completed >= 20
    assert kernel.dma_records == []  # the oracle judged each buffer as it finished
    assert dev.snapshots.issued == 80 and dev.snapshots.pending == {} and dev.draws == []
    state = checker._devices[dev.name]
    assert state.draws == {} and state.draw_resources == {}
    assert all(n > 0 for n in state.kernel_locks.values())
    assert len(kernel._pointers) < 64  # dead lock pointers are swept
    assert checker._held == []


@pytest.mark.parametrize("spec", [
    RunSpec("dynamic-vb-ring", driver="track-in-lockasync", strategy="pct", seed=2),
    RunSpec("discard-every-frame", driver="discard-ignored", strategy="pct", seed=1),
])
def test_judging_at_completion_finds_what_the_end_of_run_pass_finds(
        spec: RunSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same findings, in the same order, whether the data oracle judges each DMA buffer as
    it finishes or (not watching) reads the kernel's kept records at the end."""
    def findings() -> list[tuple[str, str, int]]:
        return [(v.rule, v.message, v.step) for v in run_scenario(spec).run.violations]

    watched = findings()
    assert "DATA" in {r for r, _m, _s in watched}
    monkeypatch.setattr(Checker, "watch_dma", lambda self, kernel, devices: None)
    assert findings() == watched


def test_only_subscribed_events_are_built() -> None:
    seen: list[str] = []
    built: list[str] = []

    async def main() -> None:
        for name in ("wanted", "unwanted"):
            if vt.tracing(name):
                built.append(name)
                vt.log(name, n=1)

    eng = vt.Engine(vt.make_strategy("fifo"))
    eng.subscribe(lambda ev: seen.append(ev["event"]), events={"wanted"})
    assert eng.run(main).ok
    assert built == ["wanted"] and seen == ["wanted"]

    everything: list[str] = []
    eng = vt.Engine(vt.make_strategy("fifo"))
    eng.subscribe(lambda ev: everything.append(ev["event"]))
    assert eng.run(main).ok
    assert {"wanted", "unwanted", "run.start", "run.end"} <= set(everything)


class _Chunks:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, b: bytes) -> int:
        self.chunks.append(bytes(b))
        return len(b)

    def flush(self) -> None:
        pass


def test_trace_is_written_in_whole_line_blocks() -> None:
    out = _Chunks()
    assert run_scenario(RunSpec("dynamic-vb-ring", params={"frames": 20}), trace=out).ok
    data = b"".join(out.chunks)
    lines = data.count(b"\n")
    assert len(out.chunks) > 1 and len(out.chunks) < lines / 50
    assert all(c.endswith(b"\n") for c in out.chunks)  # a kill between writes: whole lines
    assert all(len(c) < _trace.FLUSH_BYTES + 4096 for c in out.chunks)


def _peak(frames: int) -> int:
    tracemalloc.start()
    try:
        assert run_scenario(RunSpec("dynamic-vb-ring", params={"frames": frames})).ok
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_peak_memory_grows_little_per_frame() -> None:
    """Peak traced memory of 4N frames against N: what a frame leaves behind until the end.
    Before issue 13 it was ~14 KB a frame; the engine's decision list (~1.4 KB a frame, kept
    for replay) and the checker's per-instance names remain."""
    _peak(2)
    n = 30
    small, large = _peak(n), _peak(4 * n)
    per_frame = (large - small) / (3 * n)
    assert per_frame < 7_000, f"{per_frame:.0f} B per frame"
