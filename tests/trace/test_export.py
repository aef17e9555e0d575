"""``trace export --chrome``: valid Trace Event JSON that draws the run as it happened."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.chrome import check_chrome
from tests.support.traces import load_chrome, mimic_trace, scenario_trace
from wddmemu._trace_chrome import export_chrome
from wddmemu._trace_read import TraceFormatError, iter_events
from wddmemu._trace_timeline import TimelineBuilder

MODES = ["virtual", "steps"]


@pytest.fixture(scope="module")
def mimic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mimic_trace(tmp_path_factory.mktemp("mimic") / "mimic.jsonl")


def _export(trace: Path, tmp_path: Path, **kw: Any) -> dict[str, Any]:
    out = tmp_path / "out.json"
    export_chrome(trace, out, **kw)
    return load_chrome(out)


def _events(trace: Path, name: str) -> list[dict[str, Any]]:
    return [ev for _, ev in iter_events(trace) if ev["event"] == name]


def _tids(doc: dict[str, Any]) -> dict[str, int]:
    return {e["args"]["name"]: e["tid"] for e in doc["traceEvents"]
            if e["ph"] == "M" and e["name"] == "thread_name"}


def _x(doc: dict[str, Any], **match: Any) -> list[dict[str, Any]]:
    return [e for e in doc["traceEvents"] if e["ph"] == "X"
            and all(e.get(k) == v for k, v in match.items())]


def _contains(outer: dict[str, Any], inner: dict[str, Any]) -> bool:
    o0, o1 = outer["ts"] * 1000, (outer["ts"] + outer["dur"]) * 1000
    i0, i1 = inner["ts"] * 1000, (inner["ts"] + inner["dur"]) * 1000
    return round(o0) <= round(i0) and round(i1) <= round(o1)


# ---- the format's rules ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_mimic_export_follows_the_rules(tmp_path: Path, mode: str, backend: str) -> None:
    trace = mimic_trace(tmp_path / "t.jsonl", backend=backend, strategy="random", seed=3)
    doc = _export(trace, tmp_path, time=mode)
    assert check_chrome(doc) == []
    assert doc["displayTimeUnit"] == "ns"
    assert doc["otherData"]["time"] == mode
    assert doc["otherData"]["events"] == sum(1 for _ in iter_events(trace))


@pytest.mark.parametrize(
    ("scenario", "spec"),
    [
        ("dynamic-vb-ring", {}),
        ("reentrant-lockasync", {"ddi_version": 0xB}),
        ("reentrant-lockasync", {"ddi_version": 0xA, "strategy": "random", "seed": 5}),
        ("rename-failure-recovery", {}),
        ("multi-app-threads", {"strategy": "pct", "seed": 2}),
        ("tdr-mid-lock", {}),
    ],
)
def test_scenario_export_follows_the_rules(tmp_path: Path, scenario: str,
                                           spec: dict[str, Any]) -> None:
    trace = scenario_trace(tmp_path / "t.jsonl", scenario, **spec)
    for mode in MODES:
        doc = _export(trace, tmp_path, time=mode)
        assert check_chrome(doc) == [], (scenario, mode)
    # every DDI and callback call is a slice on its thread's track
    tids = _tids(doc)
    for kind in ("ddi", "cb"):
        for ev in _events(trace, f"{kind}.enter"):
            assert ev["thread"] in tids
        assert len(_x(doc, cat=kind)) == len(_events(trace, f"{kind}.enter"))
    assert len(_x(doc, cat="dma")) == len(_events(trace, "kmd.dma.start"))
    # an arrow for every command the worker took and every DMA buffer that started
    arrows = [e["name"] for e in doc["traceEvents"] if e["ph"] == "s"]
    assert arrows.count("enqueue") == len(_events(trace, "rt.queue.get"))
    assert arrows.count("submit") == len(_events(trace, "kmd.dma.start"))


@pytest.mark.parametrize("seed", [1, 2])
def test_timeline_shows_the_ddi_version_gate(tmp_path: Path, seed: int) -> None:
    """Below DDI 0xB no app-thread DDI slice overlaps a worker DDI slice (MP-1); at 0xB the
    app's LockAsync/UnlockAsync run while the worker is inside the driver (MP-2)."""

    def overlaps(version: int) -> list[tuple[str, str]]:
        trace = scenario_trace(tmp_path / f"{version}.jsonl", "reentrant-lockasync",
                               ddi_version=version, strategy="random", seed=seed)
        doc = _export(trace, tmp_path, time="steps")
        tids = _tids(doc)
        app = _x(doc, tid=tids["app"], cat="ddi")
        worker = _x(doc, tid=tids["dev0.worker"], cat="ddi")
        return [(a["name"], w["name"]) for a in app for w in worker
                if a["ts"] < w["ts"] + w["dur"] and w["ts"] < a["ts"] + a["dur"]]

    assert overlaps(0xA) == []
    both = overlaps(0xB)
    assert both and {a for a, _ in both} <= {"LockAsync", "UnlockAsync"}


# ---- what the timeline shows -----------------------------------------------------------------


def test_tracks_slices_and_nesting(mimic: Path, tmp_path: Path) -> None:
    doc = _export(mimic, tmp_path)
    tids = _tids(doc)
    assert {"app", "dev0.worker", "kernel.gpu"} <= set(tids)
    app, worker, gpu = tids["app"], tids["dev0.worker"], tids["kernel.gpu"]
    # the DDI calls on the threads that made them
    assert {e["name"] for e in _x(doc, tid=app, cat="ddi")} == {"LockAsync", "UnlockAsync"}
    assert {e["name"] for e in _x(doc, tid=worker, cat="ddi")} == {
        "Rename", "DrawPrimitive", "Present"}
    # a callback is nested in the DDI that called it
    for cb in _x(doc, cat="cb"):
        parent = {"pfnLockCb": "LockAsync", "pfnRenderCb": "Present"}[cb["name"]]
        assert any(_contains(d, cb) for d in _x(doc, tid=cb["tid"], name=parent)), cb
    # a thread that blocks inside a DDI stays inside its slice: the wait is nested in it
    waits = [w for w in _x(doc, tid=worker, cat="wait") if w["name"].startswith("wait fence")]
    assert waits
    for w in waits:
        assert any(_contains(d, w) and d["dur"] > w["dur"]
                   for d in _x(doc, tid=worker, name="DrawPrimitive"))
    # DMA buffers on the GPU track, one per kmd.dma.start, with the kernel's result
    dma = _x(doc, tid=gpu, cat="dma")
    assert [d["args"]["fence"] for d in dma] == [e["fence"] for e in _events(mimic,
                                                                             "kmd.dma.start")]
    assert all(d["args"]["result"] == "completed" for d in dma)
    # every slice has a positive width although the CPU work took no virtual time
    assert all(e["dur"] > 0 for e in _x(doc))


def test_flows_enqueue_to_execution_and_submit_to_dma(mimic: Path, tmp_path: Path) -> None:
    doc = _export(mimic, tmp_path)
    tids = _tids(doc)
    flows: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
    for e in doc["traceEvents"]:
        if e["ph"] in ("s", "f"):
            flows.setdefault((e["name"], e["id"]), {})[e["ph"]] = e
    enq = [f for (name, _), f in flows.items() if name == "enqueue"]
    sub = [f for (name, _), f in flows.items() if name == "submit"]
    # every command the worker took off the queue has its arrow from the app thread
    assert len(enq) == len(_events(mimic, "rt.queue.get"))
    assert all(f["s"]["tid"] == tids["app"] and f["f"]["tid"] == tids["dev0.worker"]
               for f in enq)
    # every pfnRenderCb submission has its arrow to the DMA buffer on the GPU
    assert len(sub) == len(_events(mimic, "kmd.dma.start"))
    assert all(f["s"]["tid"] == tids["dev0.worker"] and f["f"]["tid"] == tids["kernel.gpu"]
               for f in sub)
    # the arrow ends inside the slice it points at: the DDI that ran the command / the DMA
    for f in enq:
        end = f["f"]
        assert any(_contains(d, {"ts": end["ts"], "dur": 0})
                   for d in _x(doc, tid=end["tid"], cat="ddi") + _x(doc, tid=end["tid"],
                                                                    cat="queue"))


def test_instants_and_counters(mimic: Path, tmp_path: Path) -> None:
    doc = _export(mimic, tmp_path)
    inst = [e for e in doc["traceEvents"] if e["ph"] == "i"]
    names = [e["name"] for e in inst]
    assert names.count("rename 0x40") == len(_events(mimic, "kmd.rename"))
    assert "sync lockasync-failed:WASSTILLDRAWING" in names
    (v,) = [e for e in inst if e["cat"] == "violation"]
    assert v["name"] == "violation LA-13" and v["args"]["rule"] == "LA-13"
    counters = {e["name"] for e in doc["traceEvents"] if e["ph"] == "C"}
    assert {"queue dev0.cmdq", "dma in flight"} <= counters
    depth = [e["args"]["depth"] for e in doc["traceEvents"]
             if e["ph"] == "C" and e["name"] == "queue dev0.cmdq"]
    assert max(depth) == 4  # the mimic's queue holds 4


@pytest.mark.parametrize("mode", MODES)
def test_timestamps_keep_order_and_follow_the_clock(mimic: Path, mode: str) -> None:
    got: list[tuple[int, int, int]] = []

    class Sink:
        wants_args = True

        def process(self, name: str) -> None:
            pass

        def thread(self, *a: Any) -> None:
            pass

        def slice(self, tid: int, depth: int, name: str, cat: str, ts: int, dur: int,
                  args: Any, parent: Any = None) -> None:
            got.append((ts, args["step"], args["t_ns"]))

        def instant(self, *a: Any) -> None:
            pass

        def flow(self, *a: Any) -> None:
            pass

        def counter(self, *a: Any) -> None:
            pass

    tl = TimelineBuilder(Sink(), time=mode, cpu_ns=10)
    for _, ev in iter_events(mimic):
        tl.feed(ev)
    info = tl.finish()
    assert got
    for ts, step, t in got:
        base = step * 1000 if mode == "steps" else t
        assert base <= ts <= base + info.max_drift_ns
    # slices that start later in the trace start later on the timeline
    by_step = sorted(got, key=lambda g: (g[1], g[0]))
    assert [g[0] for g in by_step] == sorted(g[0] for g in by_step)


def test_same_trace_same_bytes_across_backends(tmp_path: Path) -> None:
    a = mimic_trace(tmp_path / "a.jsonl", backend="asyncio", strategy="pct", seed=9)
    b = mimic_trace(tmp_path / "b.jsonl", backend="trio", strategy="pct", seed=9)
    export_chrome(a, tmp_path / "a.json")
    export_chrome(b, tmp_path / "b.json")
    ja = (tmp_path / "a.json").read_bytes()
    jb = (tmp_path / "b.json").read_bytes()
    assert ja.replace(b"asyncio", b"X").replace(str(a).encode(), b"F") == jb.replace(
        b"trio", b"X").replace(str(b).encode(), b"F")


# ---- cut-short and odd traces --------------------------------------------------------------


def test_trace_cut_mid_call_closes_open_slices(mimic: Path, tmp_path: Path) -> None:
    lines = mimic.read_bytes().splitlines(keepends=True)
    # cut right after the first pfnRenderCb entry: the worker is inside Present → pfnRenderCb
    cut = next(i for i, ln in enumerate(lines) if b'"cb":"pfnRenderCb"' in ln) + 1
    short = tmp_path / "short.jsonl"
    short.write_bytes(b"".join(lines[:cut]))
    doc = _export(short, tmp_path)
    assert check_chrome(doc) == []
    unfinished = [e for e in _x(doc) if e.get("args", {}).get("unfinished")]
    assert {"Present", "pfnRenderCb"} <= {e["name"] for e in unfinished}
    assert doc["otherData"]["unfinished_slices"] == len(unfinished)


def test_exit_without_enter_is_an_instant_not_a_broken_slice(tmp_path: Path) -> None:
    p = tmp_path / "odd.jsonl"
    p.write_bytes(
        b'{"step":0,"t":0,"thread":"app","event":"ddi.exit","ddi":"Lock","hr_name":"S_OK"}\n'
        b'{"step":1,"t":0,"thread":"app","event":"ddi.enter","ddi":"Unlock"}\n'
        b'{"step":2,"t":0,"thread":"app","event":"cb.enter","cb":"pfnUnlockCb"}\n'
        b'{"step":3,"t":5,"thread":"app","event":"ddi.exit","ddi":"Unlock"}\n'
        b'{"step":4,"t":5,"thread":null,"event":"violation","rule":"X-1","message":"m"}\n'
    )
    doc = _export(p, tmp_path)
    assert check_chrome(doc) == []
    assert [e["name"] for e in doc["traceEvents"] if e["ph"] == "i"] == [
        "Lock exit without enter", "violation X-1"]
    # the callback left open inside Unlock is closed with it
    (cb,) = _x(doc, name="pfnUnlockCb")
    assert cb["args"]["unfinished"] is True
    assert doc["otherData"]["unmatched_exits"] == 1


def test_export_to_a_stream_and_bad_input(tmp_path: Path, mimic: Path) -> None:
    buf = io.BytesIO()
    info = export_chrome(mimic, buf)
    assert check_chrome(orjson.loads(buf.getvalue())) == []
    assert info.events > 0
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(mimic.read_bytes() + b"oops\n")
    out = tmp_path / "bad.json"
    with pytest.raises(TraceFormatError, match=r"bad\.jsonl:\d+: not a JSON line"):
        export_chrome(bad, out)
    assert not out.exists()  # no half-written output left behind


def test_builder_rejects_bad_options() -> None:
    with pytest.raises(ValueError, match="time mode"):
        TimelineBuilder(object(), time="wall")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cpu_ns"):
        TimelineBuilder(object(), cpu_ns=1)  # type: ignore[arg-type]


# ---- the checker itself catches what it should ------------------------------------------------


def _doc(*events: dict[str, Any]) -> dict[str, Any]:
    meta = [{"ph": "M", "name": "thread_name", "pid": 1, "tid": t, "args": {"name": f"t{t}"}}
            for t in (1, 2)]
    return {"traceEvents": meta + list(events)}


def X(ts: float, dur: float, tid: int = 1, name: str = "a") -> dict[str, Any]:
    return {"ph": "X", "name": name, "pid": 1, "tid": tid, "ts": ts, "dur": dur}


@pytest.mark.parametrize(
    ("events", "problem"),
    [
        ([X(0, 10), X(5, 10)], "overlaps"),
        ([{"ph": "X", "name": "a", "pid": 1, "tid": 1, "ts": 0}], "dur"),
        ([X(0, -1)], "dur"),
        ([{"ph": "E", "pid": 1, "tid": 1, "ts": 3}], "no open B"),
        ([{"ph": "B", "name": "a", "pid": 1, "tid": 1, "ts": 3}], "never ended"),
        ([{"ph": "B", "name": "a", "pid": 1, "tid": 1, "ts": 0},
          {"ph": "B", "name": "b", "pid": 1, "tid": 1, "ts": 1},
          {"ph": "E", "name": "a", "pid": 1, "tid": 1, "ts": 2},
          {"ph": "E", "name": "b", "pid": 1, "tid": 1, "ts": 3}], "closes B"),
        ([X(0, 10), {"ph": "s", "id": 1, "name": "f", "cat": "c", "pid": 1, "tid": 1, "ts": 1}],
         "want one of each"),
        ([X(0, 10), X(0, 10, tid=2),
          {"ph": "s", "id": 1, "name": "f", "cat": "c", "pid": 1, "tid": 1, "ts": 5},
          {"ph": "f", "bp": "e", "id": 1, "name": "f", "cat": "c", "pid": 1, "tid": 2, "ts": 2}],
         "before it starts"),
        ([X(0, 10), X(20, 10, tid=2),
          {"ph": "s", "id": 1, "name": "f", "cat": "c", "pid": 1, "tid": 1, "ts": 5},
          {"ph": "f", "bp": "e", "id": 1, "name": "f", "cat": "c", "pid": 1, "tid": 2, "ts": 15}],
         "in no slice"),
        ([{"ph": "C", "name": "q", "pid": 1, "tid": 1, "ts": 0, "args": {"d": "x"}}],
         "numeric args"),
        ([{"ph": "i", "name": "q", "pid": 1, "tid": 0, "ts": 0, "s": "t"}], "tid 0"),
        ([X(0, 1, tid=3)], "no thread_name"),
        ([{"ph": "X", "name": "a", "pid": 1, "tid": 1, "dur": 1}], "numeric pid, tid and ts"),
    ],
)
def test_checker_finds_broken_rules(events: list[dict[str, Any]], problem: str) -> None:
    problems = check_chrome(_doc(*events))
    assert any(problem in p for p in problems), problems


def test_checker_accepts_nesting_and_touching_slices() -> None:
    doc = _doc(X(0, 10), X(2, 3), X(5, 5), X(10, 2), X(0, 10, tid=2),
               {"ph": "s", "id": 7, "name": "f", "cat": "c", "pid": 1, "tid": 1, "ts": 3},
               {"ph": "t", "id": 7, "name": "f", "cat": "c", "pid": 1, "tid": 1, "ts": 4},
               {"ph": "f", "id": 7, "name": "f", "cat": "c", "pid": 1, "tid": 2, "ts": 6})
    # an f without bp "e" binds to the next slice to start on its track: there is none
    assert any("no slice after it" in p for p in check_chrome(doc))
    doc["traceEvents"][-1]["bp"] = "e"  # binds to the enclosing slice: X(0, 10) on tid 2
    assert check_chrome(doc) == []


def test_memory_stays_bounded_on_a_hostile_trace(tmp_path: Path) -> None:
    # enters without exits, puts without gets: the builder's state does not grow without bound
    p = tmp_path / "hostile.jsonl"
    with open(p, "wb") as f:
        for i in range(3000):
            f.write(orjson.dumps({"step": i, "t": 0, "thread": "app", "event": "ddi.enter",
                                  "ddi": "Lock"}) + b"\n")
            f.write(orjson.dumps({"step": i, "t": 0, "thread": "app", "event": "rt.queue.put",
                                  "queue": "q", "ddi": "Draw", "seq": i, "depth": i}) + b"\n")

    class Null:
        wants_args = True

        def __getattr__(self, name: str) -> Any:
            return lambda *a, **k: None

    tl = TimelineBuilder(Null(), max_pending=100)  # type: ignore[arg-type]
    for _, ev in iter_events(p):
        tl.feed(ev)
    assert len(tl._tracks["app"].stack) == 64
    assert len(tl._puts) == 100
    info = tl.finish()
    assert info.too_deep == 3000 - 64 and info.dropped_flows == 3000 - 100
    doc = _export(p, tmp_path)
    assert check_chrome(doc) == []
