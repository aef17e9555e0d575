"""From trace events to a timeline: per-thread slices, instants, flows and counters.

:class:`TimelineBuilder` reads the events of one trace in order (one at a time: it keeps only
each thread's stack of open slices, the flows waiting for their other end and a few counters)
and hands what it finds to a *sink*: the Chrome trace writer (``_trace_chrome``) or the PNG
plotter (``_trace_plot``). Both draw the same timeline.

What becomes what
-----------------
* ``ddi.enter``/``ddi.exit`` → a slice named after the DDI (category ``ddi``);
  ``cb.enter``/``cb.exit`` → a slice named after the callback (``cb``), nested in the DDI that
  called it; ``block``/``unblock`` of an application or worker thread → a ``wait …`` slice
  nested in whatever the thread was doing (a thread that blocks inside a DDI stays inside its
  slice). Daemon threads (GPU engine, watchdog) get no wait slices: the GPU's sleeps are its busy
  time, which its DMA slices show.
* ``kmd.dma.start``/``kmd.dma.end`` → a ``dma fence N`` slice (``dma``) on the GPU engine thread.
* ``rt.queue.put`` → a short ``enqueue X`` slice on the enqueuing thread and a flow arrow to the
  worker's execution of that command (the next ``ddi.enter`` of the same DDI after its
  ``rt.queue.get``; barriers end in a short ``(barrier)`` slice). ``kmd.render`` (or, failing
  that, the ``pfnRenderCb`` exit with a fence) → a flow arrow to the ``kmd.dma.start`` of that
  fence.
* Instants: ``kmd.rename``, ``umd.track.switch`` (the driver starts using the renamed
  instance), ``rt.sync``, ``violation``, ``run.failure``, ``kmd.tdr``,
  ``kmd.device.removed``, ``rt.deferred_error``, ``kmd.lock.wait``, ``kmd.evict``,
  ``kmd.page_in``, ``kmd.inject.removal``, ``kmd.inject.tdr``, ``app.device_lost``.
* Counters: the depth of every queue (``rt.queue.*``, ``queue.*``) and the DMA buffers in
  flight (submitted by ``kmd.render``, not yet ended by ``kmd.dma.end``).

Timestamps
----------
Virtual time only moves when every thread sleeps, so most CPU work happens at one ``t``. The
timeline gives every event a timestamp ``ts`` (integer nanoseconds) that is strictly increasing
in trace order: ``ts = max(base, previous ts + cpu_ns)``, where ``base`` is the event's ``t``
(``time="virtual"``) or ``step × 1000`` (``time="steps"``: one scheduling step = 1 µs). So each
event takes at least ``cpu_ns`` of CPU time on the timeline; when virtual time is ahead, the
timeline jumps to it; when a burst of CPU events outruns virtual time, the timeline runs ahead of
``t`` (the *drift*, reported as ``max_drift_ns``) until the clock catches up. Because no two
events share a ``ts``, slices on one thread never overlap and always nest, and zero-virtual-time
DDI calls have a visible width.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ._files import printable, shown_number
from ._trace_read import (
    CONTEXT_KEYS,
    HEAD_KEYS,
    MAX_INT,
    TraceFormatError,
    get_bool,
    get_int,
    get_scalar,
    get_str,
    run_context,
)

TIME_MODES = ("virtual", "steps")
#: default minimum timeline duration of one event, in ns
DEFAULT_CPU_NS = 10
#: the smallest ``cpu_ns``: markers sit at quarters of it, which must stay whole, distinct ns
MIN_CPU_NS = 8
#: the largest ``cpu_ns`` (1 s): the timeline's timestamps stay well inside 64 bits
MAX_CPU_NS = 1_000_000_000
#: timeline nanoseconds per scheduling step in ``time="steps"``
STEP_NS = 1000
#: open slices kept per thread: deeper ``*.enter`` events (only a malformed trace has them) are
#: not drawn, so that no trace can make the builder's memory grow
MAX_DEPTH = 64
#: thread id of the run-level pseudo track (global instants: run failures, violations without
#: a thread)
RUN_TID = 0

_DROP = frozenset(HEAD_KEYS) | frozenset(CONTEXT_KEYS)


class Sink(Protocol):
    """Where a :class:`TimelineBuilder` sends what it finds. Times are integer ns."""

    #: whether slices, instants and counters need their ``args`` (the plotter does not)
    wants_args: bool

    def process(self, name: str) -> None: ...

    def thread(self, tid: int, name: str, sort_index: int, daemon: bool) -> None: ...

    def slice(self, tid: int, depth: int, name: str, cat: str, ts: int, dur: int,
              args: dict[str, Any] | None, parent: tuple[str, str] | None) -> None:
        """A complete slice at nesting ``depth`` (0 = outermost); ``parent`` is the
        ``(name, cat)`` of the slice it is nested in."""

    def instant(self, tid: int, name: str, cat: str, ts: int, scope: str,
                args: dict[str, Any] | None) -> None: ...

    def flow(self, fid: int, name: str, cat: str, src: tuple[int, int],
             dst: tuple[int, int]) -> None: ...

    def counter(self, tid: int, name: str, ts: int, values: dict[str, int]) -> None: ...


@dataclass
class TimelineInfo:
    """What one pass over a trace produced (also written as the Chrome trace's ``otherData``)."""

    time: str
    cpu_ns: int
    events: int = 0
    first_ts: int = 0
    last_ts: int = 0
    last_t: int = 0
    last_step: int = 0
    max_drift_ns: int = 0
    slices: int = 0
    instants: int = 0
    flows: int = 0
    counters: int = 0
    unfinished_slices: int = 0
    unmatched_exits: int = 0
    dropped_flows: int = 0
    too_deep: int = 0
    threads: dict[str, int] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "time": self.time, "cpu_ns": self.cpu_ns, "events": self.events,
            "first_ts_ns": self.first_ts, "last_ts_ns": self.last_ts, "last_t_ns": self.last_t,
            "last_step": self.last_step, "max_drift_ns": self.max_drift_ns,
            "slices": self.slices, "instants": self.instants, "flows": self.flows,
            "counters": self.counters, "unfinished_slices": self.unfinished_slices,
            "unmatched_exits": self.unmatched_exits, "dropped_flows": self.dropped_flows,
            "too_deep": self.too_deep,
            "threads": dict(self.threads), **self.context,
        }


class _Open:
    """An open slice on a thread's stack."""

    __slots__ = ("args", "cat", "key", "name", "ts")

    def __init__(self, name: str, cat: str, key: Any, ts: int, args: dict[str, Any] | None):
        self.name = name
        self.cat = cat
        self.key = key
        self.ts = ts
        self.args = args


class _Track:
    __slots__ = ("daemon", "name", "pending", "stack", "tid")

    def __init__(self, tid: int, name: str, daemon: bool) -> None:
        self.tid = tid
        self.name = name
        self.daemon = daemon
        self.stack: list[_Open] = []
        #: (flow source, ddi) waiting for this worker's next ddi.enter
        self.pending: tuple[tuple[int, int], str] | None = None


def _fields(ev: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in ev.items() if k not in _DROP}


def _wait_name(waits: str | None) -> str:
    """A short slice name for a ``block`` event's ``waits``."""
    if not waits:
        return "wait"
    w = waits.split(" held by ", 1)[0]
    if w.startswith("sleep until"):
        w = "sleep"
    return f"wait {w}"


_INSTANTS: dict[str, tuple[str, str]] = {
    # event → (category, name prefix)
    "kmd.rename": ("rename", "rename"),
    "umd.track.switch": ("switch", "track switch"),
    "kmd.tdr": ("tdr", "TDR"),
    "kmd.device.removed": ("removed", "device removed"),
    "kmd.inject.removal": ("removed", "inject removal"),
    "kmd.inject.tdr": ("tdr", "inject tdr"),
    "app.device_lost": ("removed", "device lost"),
    "rt.deferred_error": ("error", "deferred error"),
    "kmd.lock.wait": ("wait", "lock waits for GPU"),
    "kmd.evict": ("memory", "evict"),
    "kmd.page_in": ("memory", "page in"),
}


#: what a :class:`Sink` is called with
SINK_METHODS = ("process", "thread", "slice", "instant", "flow", "counter")


def check_timeline_options(time: object, cpu_ns: object) -> None:
    """Refuse (one-line :class:`~wddmemu.trace.TraceFormatError`, ``.path`` empty) a time mode
    other than :data:`TIME_MODES` or a ``cpu_ns`` that is not an int (integer nanoseconds, not
    a bool, not 8.5: the timestamps are whole ns, docs/trace.md) in 8..1,000,000,000."""
    if not isinstance(time, str) or time not in TIME_MODES:
        shown = repr(printable(time)) if isinstance(time, str) else type(time).__name__
        raise TraceFormatError("", None, f"unknown time mode {shown}: use virtual or steps")
    if type(cpu_ns) is not int or not MIN_CPU_NS <= cpu_ns <= MAX_CPU_NS:
        raise TraceFormatError("", None, f"cpu_ns takes integer ns {MIN_CPU_NS}.."
                                         f"{MAX_CPU_NS:,}, not {shown_number(cpu_ns)}")


class TimelineBuilder:
    """Turns trace events (in file order) into timeline items for ``sink``.

    ``time`` is ``"virtual"`` or ``"steps"``, ``cpu_ns`` the least timeline time one event
    takes (see the module docstring). ``max_pending`` bounds the flows kept waiting for their
    other end (oldest dropped first), so memory stays bounded whatever the trace holds."""

    def __init__(self, sink: Sink, *, time: str = "virtual", cpu_ns: int = DEFAULT_CPU_NS,
                 max_pending: int = 100_000) -> None:
        check_timeline_options(time, cpu_ns)
        missing = [m for m in SINK_METHODS if not callable(getattr(sink, m, None))]
        if missing or not hasattr(sink, "wants_args"):
            raise TraceFormatError("", None, f"TimelineBuilder feeds a Sink (wants_args and "
                                             f"{', '.join(SINK_METHODS)}), not "
                                             f"{type(sink).__name__}")
        self.sink = sink
        self.args = sink.wants_args
        self.info = TimelineInfo(time=time, cpu_ns=cpu_ns)
        self._steps = time == "steps"
        self._cpu = cpu_ns
        self._q = cpu_ns // 4
        self._h = cpu_ns // 2
        self._last: int | None = None  # the last event's timeline ts
        self._drift = 0
        self._n = 0
        self._ev: dict[str, Any] | None = None
        self._max_pending = max_pending
        self._tracks: dict[str, _Track] = {}
        self._by_tid: dict[int, _Track] = {}
        self._max_tid = RUN_TID  # the largest of _by_tid: a new thread costs O(1), not O(threads)
        self._spawned: dict[str, tuple[int, bool]] = {}
        self._next_flow = 1
        self._puts: dict[tuple[Any, Any], tuple[tuple[int, int], str]] = {}
        self._renders: dict[int, tuple[int, int]] = {}
        self._dma_open: dict[int, _Track] = {}
        self._inflight: set[int] = set()
        self._early: set[int] = set()
        self._max_started = 0
        self._handlers: dict[str, Callable[[dict[str, Any], _Track | None, int], None]] = {
            "spawn": self._on_spawn,
            "ddi.enter": self._on_ddi_enter,
            "ddi.exit": self._on_exit,
            "cb.enter": self._on_cb_enter,
            "cb.exit": self._on_cb_exit,
            "block": self._on_block,
            "unblock": self._on_unblock,
            "finish": self._on_finish,
            "rt.queue.put": self._on_rt_put,
            "rt.queue.get": self._on_rt_get,
            "queue.put": self._on_queue,
            "queue.get": self._on_queue,
            "kmd.render": self._on_render,
            "kmd.dma.start": self._on_dma_start,
            "kmd.dma.end": self._on_dma_end,
            "rt.sync": self._on_sync,
            "violation": self._on_violation,
            "run.failure": self._on_failure,
        }
        for name in _INSTANTS:
            self._handlers[name] = self._on_instant

    # ---- time and threads ----------------------------------------------------------------------

    def _new_track(self, name: str) -> _Track:
        want, daemon = self._spawned.pop(name, (None, False))
        tid = want if want is not None and want not in self._by_tid else None
        if tid is None:
            tid = self._max_tid + 1
        self._max_tid = max(self._max_tid, tid)
        tr = _Track(tid, name, daemon)
        self._tracks[name] = tr
        self._by_tid[tid] = tr
        self.info.threads[name] = tid
        self.sink.thread(tid, name, tid + (1000 if daemon else 0), daemon)
        return tr

    def _start(self, ev: dict[str, Any]) -> None:
        ctx = run_context(ev)
        self.info.context = ctx
        bits = [str(ctx.get("scenario", "trace"))]
        run = ", ".join(f"{k} {ctx[k]}" for k in ("strategy", "seed", "backend") if k in ctx)
        if run:
            bits.append(f"({run})")
        unit = "steps, 1 µs = 1 step" if self._steps else "virtual"
        bits.append(f"[time: {unit}]")
        self.sink.process("wddmemu " + " ".join(bits))
        self.sink.thread(RUN_TID, "run", -1, False)

    # ---- feeding -------------------------------------------------------------------------------

    def feed(self, ev: dict[str, Any]) -> None:
        """Process the next event of the trace (checked by ``iter_events``: ``step`` and ``t``
        ints in ``0..2**63-1``, ``event`` a string, ``thread`` a string or None). Raises
        :class:`~wddmemu._trace_read.FieldError` for a field of the wrong kind (``export_chrome``
        and ``plot_png`` report it as a ``TraceFormatError`` at the event's line)."""
        base = ev["step"] * STEP_NS if self._steps else ev["t"]
        if self._last is None:
            self._start(ev)
            self._last = base - self._cpu
            self.info.first_ts = base
        # the timeline clock: strictly increasing, at least cpu_ns per event, never behind base
        ts = self._last + self._cpu
        if base >= ts:
            ts = base
        elif ts - base > self._drift:
            self._drift = ts - base
        self._last = ts
        self._n += 1
        self._ev = ev
        name = ev.get("thread")
        tr = None
        if name is not None:
            tr = self._tracks.get(name)
            if tr is None:
                tr = self._new_track(name)
        h = self._handlers.get(ev["event"])
        if h is not None:
            h(ev, tr, ts)

    def finish(self) -> TimelineInfo:
        """Close what is still open (a run that failed or was cut short) at the end of the
        timeline; returns the pass's :class:`TimelineInfo`."""
        info = self.info
        info.events = self._n
        info.max_drift_ns = self._drift
        if self._ev is not None:
            info.last_t = self._ev["t"]
            info.last_step = self._ev["step"]
        end = (self._last or 0) + self._cpu
        for tr in self._tracks.values():
            while tr.stack:
                self._pop(tr, end, {"unfinished": True})
                info.unfinished_slices += 1
        info.last_ts = end
        return info

    # ---- slices --------------------------------------------------------------------------------

    def _push(self, tr: _Track, name: str, cat: str, key: Any, ts: int,
              ev: dict[str, Any] | None) -> None:
        if len(tr.stack) >= MAX_DEPTH:
            self.info.too_deep += 1
            return
        args = None
        if self.args and ev is not None:
            args = _fields(ev)
            args["step"] = ev["step"]
            args["t_ns"] = ev["t"]
        tr.stack.append(_Open(name, cat, key, ts, args))

    def _pop(self, tr: _Track, ts: int, extra: dict[str, Any] | None) -> None:
        o = tr.stack.pop()
        args = o.args
        if self.args and extra:
            args = {**(args or {}), **extra}
        self.info.slices += 1
        parent = (tr.stack[-1].name, tr.stack[-1].cat) if tr.stack else None
        self.sink.slice(tr.tid, len(tr.stack), o.name, o.cat, o.ts, ts - o.ts, args, parent)

    def _close(self, tr: _Track, key: Any, ts: int, ev: dict[str, Any] | None) -> bool:
        """Close the innermost open slice with ``key`` (and, unfinished, anything opened inside
        it that is still open). False when no such slice is open."""
        stack = tr.stack
        for i in range(len(stack) - 1, -1, -1):
            if stack[i].key == key:
                break
        else:
            return False
        while len(stack) > i + 1:
            self._pop(tr, ts, {"unfinished": True})
            self.info.unfinished_slices += 1
        extra = None
        if self.args and ev is not None:
            extra = _fields(ev)
            extra["exit_step"] = ev["step"]
            extra["exit_t_ns"] = ev["t"]
        self._pop(tr, ts, extra)
        return True

    def _marker(self, tr: _Track, name: str, cat: str, ts: int,
                args: dict[str, Any] | None) -> int:
        """A short slice ``[ts, ts + cpu_ns/2]`` (e.g. ``enqueue Draw``); returns a timestamp
        inside it for a flow to bind to."""
        self.info.slices += 1
        parent = (tr.stack[-1].name, tr.stack[-1].cat) if tr.stack else None
        self.sink.slice(tr.tid, len(tr.stack), name, cat, ts, self._h, args, parent)
        return ts + self._q

    def _anchor(self, tr: _Track, ts: int, name: str, ev: dict[str, Any]) -> int:
        """A timestamp at which a flow starting at this event binds to a slice: inside the open
        innermost slice, or inside a new marker slice when the thread is in none."""
        if tr.stack:
            return ts + self._q
        return self._marker(tr, name, "kmd", ts, self._args(ev))

    def _args(self, ev: dict[str, Any]) -> dict[str, Any] | None:
        if not self.args:
            return None
        a = _fields(ev)
        a["step"] = ev["step"]
        a["t_ns"] = ev["t"]
        return a

    def _flow(self, name: str, cat: str, src: tuple[int, int], dst: tuple[int, int]) -> None:
        fid = self._next_flow
        self._next_flow += 1
        self.info.flows += 1
        self.sink.flow(fid, name, cat, src, dst)

    def _bound(self, d: dict[Any, Any], key: Any, value: Any) -> None:
        d[key] = value
        if len(d) > self._max_pending:
            del d[next(iter(d))]
            self.info.dropped_flows += 1

    # ---- handlers ------------------------------------------------------------------------------

    def _on_spawn(self, ev: dict[str, Any], tr: _Track | None, ts: int) -> None:
        child, tid = get_str(ev, "child"), get_int(ev, "tid", 0, MAX_INT - 1)
        daemon = bool(get_bool(ev, "daemon"))
        if child is not None and child not in self._tracks:
            self._spawned[child] = (tid + 1 if tid is not None else None, daemon)

    def _on_ddi_enter(self, ev: dict[str, Any], tr: _Track | None, ts: int) -> None:
        ddi = get_str(ev, "ddi", "?")
        if tr is None:
            return
        self._push(tr, ddi, "ddi", ("ddi", ddi), ts, ev)
        pend = tr.pending
        if pend is not None:
            tr.pending = None
            if pend[1] == ddi:
                self._flow("enqueue", "queue", pend[0], (tr.tid, ts + self._h))

    def _on_exit(self, ev: dict[str, Any], tr: _Track | None, ts: int) -> None:
        ddi = get_str(ev, "ddi", "?")
        if tr is None:
            return
        if not self._close(tr, ("ddi", ddi), ts, ev):
            self._unmatched(tr, f"{ddi} exit without enter", ts, ev)

    def _on_cb_enter(self, ev: dict[str, Any], tr: _Track | None, ts: int) -> None:
        cb = get_str(ev, "cb", "?")
        if tr is None:
            return
        self._push(tr, cb, "cb", ("cb", cb), ts, ev)

    def _on_cb_exit(self, ev: dict[str, Any], tr: _Track | None, ts: int) -> None:
        cb, fence = get_str(ev, "cb", "?"), get_int(ev, "fence")
        if tr is None:
            return
        if (cb == "pfnRenderCb" and fence is not None and fence not in self._inflight
                and fence > self._max_started and tr.stack and tr.stack[-1].key == ("cb", cb)):
            # no kmd.render event for this fence: the submission binds to the callback
            self._submitted(fence, (tr.tid, ts - self._q), tr.tid, ts)
        if not self._close(tr, ("cb", cb), ts, ev):
            self._unmatched(tr, f"{cb} exit without enter", ts, ev)

    def _unmatched(self, tr: _Track, name: str, ts: int, ev: dict[str, Any]) -> None:
        self.info.unmatched_exits += 1
        self.info.instants += 1
        self.sink.instant(tr.tid, name, "unmatched", ts, "t", self._args(ev))

    def _on_block(self, ev: dict[str, Any], tr: _Track | None, ts: int) -> None:
        waits = get_str(ev, "waits")
        if tr is None or tr.daemon:
            return
        self._push(tr, _wait_name(waits), "wait", "wait", ts, ev)

    def _on_unblock(self, ev: dict[str, Any], tr: _Track | None, ts: int) -> None:
        if tr is None or tr.daemon:
            return
        self._close(tr, "wait", ts, None)

    def _on_finish(self, ev: dict[str, Any], tr: _Track | None, ts: int) -> None:
        if tr is None:
            return
        while tr.stack:
            self._pop(tr, ts, {"unfinished": True})
            self.info.unfinished_slices += 1
        tr.pending = None

    def _on_rt_put(self, ev: dict[str, Any], tr: _Track | None, ts: int) -> None:
        self._depth(ev, tr, ts)
        key, ddi = (ev.get("queue"), get_scalar(ev, "seq")), get_str(ev, "ddi", "?")
        if tr is None:
            return
        at = self._marker(tr, f"enqueue {ddi}", "queue", ts, self._args(ev))
        self._bound(self._puts, key, ((tr.tid, at), ddi))

    def _on_rt_get(self, ev: dict[str, Any], tr: _Track | None, ts: int) -> None:
        self._depth(ev, tr, ts)
        key, ddi = (ev.get("queue"), get_scalar(ev, "seq")), get_str(ev, "ddi", "?")
        if tr is None:
            return
        put = self._puts.pop(key, None)
        tr.pending = None
        if ddi.startswith("("):  # (barrier), (stop): the runtime's own, no DDI follows
            at = self._marker(tr, ddi, "queue", ts, self._args(ev))
            if put is not None:
                self._flow("enqueue", "queue", put[0], (tr.tid, at))
        elif put is not None:
            tr.pending = put

    def _on_queue(self, ev: dict[str, Any], tr: _Track | None, ts: int) -> None:
        self._depth(ev, tr, ts)

    def _depth(self, ev: dict[str, Any], tr: _Track | None, ts: int) -> None:
        # the queue is a string (checked here for rt.queue.put/get too: they key on it)
        queue, depth = get_str(ev, "queue"), get_int(ev, "depth", 0, MAX_INT)
        if depth is not None:
            self.info.counters += 1
            self.sink.counter(tr.tid if tr else RUN_TID, f"queue {queue}", ts,
                              {"depth": depth})

    def _submitted(self, fence: int, src: tuple[int, int], tid: int, ts: int) -> None:
        self._bound(self._renders, fence, src)
        if fence not in self._inflight and len(self._inflight) < self._max_pending:
            self._inflight.add(fence)
            self.info.counters += 1
            self.sink.counter(tid, "dma in flight", ts, {"buffers": len(self._inflight)})

    def _on_render(self, ev: dict[str, Any], tr: _Track | None, ts: int) -> None:
        fence = get_int(ev, "fence")
        if tr is None or fence is None or fence in self._inflight:
            return
        self._submitted(fence, (tr.tid, self._anchor(tr, ts, "D3DKMTRender", ev)), tr.tid, ts)

    def _on_dma_start(self, ev: dict[str, Any], tr: _Track | None, ts: int) -> None:
        fence = get_int(ev, "fence")
        if tr is None or fence is None:
            return
        self._max_started = max(self._max_started, fence)
        top = tr.stack[-1] if tr.stack else None
        if top is not None and top.cat == "dma":
            # the engine started the next buffer before the last one's end was logged: it
            # finished executing now (its completion is reported later, elsewhere)
            self._dma_open.pop(top.key[1], None)
            if len(self._early) < self._max_pending:
                self._early.add(top.key[1])
            self._pop(tr, ts, {"completion_logged_later": True})
        self._push(tr, f"dma fence {fence}", "dma", ("dma", fence), ts, ev)
        self._dma_open[fence] = tr
        src = self._renders.pop(fence, None)
        if src is not None:
            self._flow("submit", "dma", src, (tr.tid, ts + self._h))

    def _on_dma_end(self, ev: dict[str, Any], tr: _Track | None, ts: int) -> None:
        fence, result = get_int(ev, "fence"), get_str(ev, "result")
        if fence is None:
            return
        gpu = self._dma_open.pop(fence, None)
        if gpu is not None and result is not None and result != "completed":
            for o in reversed(gpu.stack):  # name the buffer by its fate: "dma fence 3 aborted"
                if o.key == ("dma", fence):
                    o.name = f"dma fence {fence} {result}"
                    break
        if fence in self._early:
            self._early.discard(fence)
        elif gpu is None or not self._close(gpu, ("dma", fence), ts, ev):
            self._renders.pop(fence, None)
            if tr is not None:
                self.info.instants += 1
                self.sink.instant(tr.tid, f"dma fence {fence} {result or 'ended'}",
                                  "dma", ts, "t", self._args(ev))
        if fence in self._inflight:
            self._inflight.discard(fence)
            self.info.counters += 1
            self.sink.counter(tr.tid if tr else RUN_TID, "dma in flight", ts,
                              {"buffers": len(self._inflight)})

    def _instant(self, tr: _Track | None, name: str, cat: str, ts: int,
                 ev: dict[str, Any]) -> None:
        self.info.instants += 1
        if tr is None:
            self.sink.instant(RUN_TID, name, cat, ts, "g", self._args(ev))
        else:
            self.sink.instant(tr.tid, name, cat, ts, "t", self._args(ev))

    def _on_sync(self, ev: dict[str, Any], tr: _Track | None, ts: int) -> None:
        self._instant(tr, f"sync {get_str(ev, 'reason', '?')}", "sync", ts, ev)

    def _on_violation(self, ev: dict[str, Any], tr: _Track | None, ts: int) -> None:
        self._instant(tr, f"violation {get_str(ev, 'rule', '?')}", "violation", ts, ev)

    def _on_failure(self, ev: dict[str, Any], tr: _Track | None, ts: int) -> None:
        self._instant(None, f"run failure: {get_str(ev, 'kind', '?')}", "failure", ts, ev)

    def _on_instant(self, ev: dict[str, Any], tr: _Track | None, ts: int) -> None:
        cat, name = _INSTANTS[ev["event"]]
        if ev["event"] == "kmd.rename":
            alloc = get_int(ev, "allocation")
            if alloc is not None:
                name = f"rename {alloc:#x}"
        self._instant(tr, name, cat, ts, ev)
