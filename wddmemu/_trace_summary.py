"""``wddmemu trace summary``: what a trace says, in a few tables.

:class:`TraceSummary` reads events one at a time and keeps only counts (per DDI and thread, per
result code, per sync reason, per rule …), the submission times of DMA buffers still in flight,
and a fixed-size histogram of fence latencies, so its memory does not grow with the trace.
:func:`render_summary` prints it with rich; :meth:`TraceSummary.as_dict` is the same as JSON.

Fence latency is measured in virtual time from the submission (``kmd.render`` with a fence) to
the start (``kmd.dma.start``: time spent queued) and to the end (``kmd.dma.end``: total) of that
DMA buffer. Percentiles come from a log-scale histogram (16 buckets per power of two, so within
about 4 %); count, min, max and mean are exact.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ._files import printable
from ._trace_read import (
    CONTEXT_KEYS,
    MAX_INT,
    feed_events,
    get_bool,
    get_failure,
    get_int,
    get_list,
    get_scalar,
    get_str,
    run_context,
)

#: DDIs of the lock path, in the order the table lists them
LOCK_PATH_DDIS = ("LockAsync", "UnlockAsync", "Rename", "Lock", "Unlock")
_SUB = 16  # histogram buckets per power of two
_MAX_MESSAGES = 3  # example messages kept per violated rule


class Histogram:
    """Count, min, max, mean exactly; quantiles from log-scale buckets (bounded memory)."""

    def __init__(self) -> None:
        self.n = 0
        self.total = 0
        self.min: int | None = None
        self.max: int | None = None
        self._zero = 0
        self._buckets: dict[int, int] = {}

    def add(self, v: int) -> None:
        self.n += 1
        self.total += v
        self.min = v if self.min is None else min(self.min, v)
        self.max = v if self.max is None else max(self.max, v)
        if v <= 0:
            self._zero += 1
            return
        b = math.floor(math.log2(v) * _SUB)
        self._buckets[b] = self._buckets.get(b, 0) + 1

    def quantile(self, q: float) -> int | None:
        if not self.n:
            return None
        rank = max(1, math.ceil(q * self.n))
        if rank <= self._zero:
            return 0
        seen = self._zero
        for b in sorted(self._buckets):
            seen += self._buckets[b]
            if seen >= rank:
                mid = 2 ** ((b + 0.5) / _SUB)
                lo, hi = self.min or 0, self.max or 0
                return round(min(max(mid, lo), hi))
        return self.max  # pragma: no cover

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.n, "min": self.min, "p50": self.quantile(0.5),
            "p95": self.quantile(0.95), "max": self.max,
            "mean": None if not self.n else round(self.total / self.n, 1),
        }


def _inc(d: dict[Any, int], k: Any, n: int = 1) -> None:
    d[k] = d.get(k, 0) + n


def _result(ev: dict[str, Any], name: str, code: str) -> str:
    """A result's label: its name (``hr_name``, a string), else its code (``hr``, a string or
    a number), else ``?``."""
    label = get_str(ev, name)
    return label if label is not None else str(get_scalar(ev, code, "?"))


class TraceSummary:
    """Accumulates the summary of one trace, one event at a time (:meth:`feed`)."""

    def __init__(self) -> None:
        self.lines = 0
        self.context: dict[str, Any] = {}
        self.run_start: dict[str, Any] = {}
        self.run_end: dict[str, Any] | None = None
        self.failures: list[dict[str, Any]] = []
        self.last_step = 0
        self.last_t = 0
        self.threads: dict[str, dict[str, Any]] = {}  # name → {events, daemon}
        self.ddi_calls: dict[str, dict[str, int]] = {}  # ddi → thread → calls
        self.ddi_results: dict[str, dict[str, int]] = {}  # ddi → hr_name → count
        self.cb_calls: dict[str, dict[str, int]] = {}
        self.cb_results: dict[str, dict[str, int]] = {}
        self.lockasync_flags: dict[str, int] = {}
        # the DDI-version gate as the trace shows it: calls that entered without the entry
        # lock, and entries made while another thread of the device was inside the driver
        self.ungated: dict[str, int] = {}
        self.overlapping_entries = 0
        self._inside: dict[str, dict[str, int]] = {}  # device → thread → open DDI calls
        self.kmd_renames = 0
        self.track_switches: dict[str, int] = {}  # thread → umd.track.switch count
        self.kmd_lock: dict[str, int] = {}  # status_name → count
        self.kmd_lock_waits = 0
        self.syncs: dict[str, int] = {}
        self.queue_max: dict[str, int] = {}
        self.queue_puts: dict[str, int] = {}
        self.render_submits = 0
        self.render_failures: dict[str, int] = {}
        self.render_commands = 0
        self.render_draws = 0
        self.dma_started = 0
        self.dma_ended: dict[str, int] = {}
        self.dma_draws = 0
        self.tdrs = 0
        self.removed = 0
        self.deferred_errors: dict[str, int] = {}
        self.violations: dict[str, dict[str, Any]] = {}  # rule → {count, first_step, …}
        self.latency_total = Histogram()
        self.latency_queued = Histogram()
        self.latency_exec = Histogram()
        self._submitted: dict[int, int] = {}  # fence → submit t (while in flight)
        self._started: dict[int, int] = {}  # fence → start t
        self._max_inflight_tracked = 100_000  # bounds memory on a trace that never ends DMA
        self.max_inflight = 0

    # ---- feeding ---------------------------------------------------------------------------

    def feed(self, ev: dict[str, Any]) -> None:
        self.lines += 1
        if not self.context:
            self.context = run_context(ev)
        self.last_step = ev["step"]
        self.last_t = ev["t"]
        thread = ev.get("thread")
        name = ev["event"]
        if thread is not None:
            th = self.threads.get(thread)
            if th is None:
                th = self.threads[thread] = {"events": 0, "daemon": False}
            th["events"] += 1
        h = _HANDLERS.get(name)
        if h is not None:
            h(self, ev, thread)

    def _run_start(self, ev: dict[str, Any], thread: str | None) -> None:
        self.run_start = {k: v for k, v in ev.items()
                          if k not in ("step", "t", "thread", "event", *CONTEXT_KEYS)}

    def _run_end(self, ev: dict[str, Any], thread: str | None) -> None:
        self.run_end = {"ok": get_bool(ev, "ok"), "failure": get_failure(ev),
                        "violations": len(get_list(ev, "violations")),
                        "decisions": get_int(ev, "decisions")}

    def _run_failure(self, ev: dict[str, Any], thread: str | None) -> None:
        if len(self.failures) < 10:
            self.failures.append({"kind": get_str(ev, "kind"),
                                  "message": get_str(ev, "message"),
                                  "step": ev["step"], "thread": thread})

    def _spawn(self, ev: dict[str, Any], thread: str | None) -> None:
        child, daemon = get_str(ev, "child"), get_bool(ev, "daemon")
        if child is not None:
            th = self.threads.setdefault(child, {"events": 0, "daemon": False})
            th["daemon"] = bool(daemon)

    def _ddi_enter(self, ev: dict[str, Any], thread: str | None) -> None:
        ddi = get_str(ev, "ddi", "?")
        device = str(get_scalar(ev, "device", "?"))
        flags = get_int(ev, "flags") if ddi == "LockAsync" else None
        _inc(self.ddi_calls.setdefault(ddi, {}), thread or "-")
        if ddi not in ("OpenAdapter", "CreateDevice"):
            if ev.get("gated") is False:
                _inc(self.ungated, ddi)
            inside = self._inside.setdefault(device, {})
            if any(n and th != thread for th, n in inside.items()):
                self.overlapping_entries += 1
            _inc(inside, thread or "-")
        if flags is not None:
            f = flags
            # D3DDDI_LOCKASYNCFLAGS: NoOverwrite 0x1, Discard 0x2 (umd/ddi.py)
            kind = "discard" if f & 0x2 else "nooverwrite" if f & 0x1 else "other"
            _inc(self.lockasync_flags, kind)

    def _ddi_exit(self, ev: dict[str, Any], thread: str | None) -> None:
        ddi = get_str(ev, "ddi", "?")
        inside = self._inside.get(str(get_scalar(ev, "device", "?")), {})
        if inside.get(thread or "-", 0) > 0:
            inside[thread or "-"] -= 1
        _inc(self.ddi_results.setdefault(ddi, {}), _result(ev, "hr_name", "hr"))

    def _cb_enter(self, ev: dict[str, Any], thread: str | None) -> None:
        _inc(self.cb_calls.setdefault(get_str(ev, "cb", "?"), {}), thread or "-")

    def _cb_exit(self, ev: dict[str, Any], thread: str | None) -> None:
        cb = get_str(ev, "cb", "?")
        _inc(self.cb_results.setdefault(cb, {}), _result(ev, "hr_name", "hr"))

    def _sync(self, ev: dict[str, Any], thread: str | None) -> None:
        _inc(self.syncs, get_str(ev, "reason", "?"))

    def _queue(self, ev: dict[str, Any], thread: str | None) -> None:
        q = get_str(ev, "queue", "?")
        d = get_int(ev, "depth", 0, MAX_INT)
        if d is not None and d > self.queue_max.get(q, -1):
            self.queue_max[q] = d
        if ev["event"].endswith("put"):
            _inc(self.queue_puts, q)

    def _render(self, ev: dict[str, Any], thread: str | None) -> None:
        fence = get_int(ev, "fence")
        if fence is not None:
            self.render_submits += 1
            self.render_commands += get_int(ev, "commands", 0, MAX_INT) or 0
            self.render_draws += len(get_list(ev, "draws"))
            if len(self._submitted) < self._max_inflight_tracked:
                self._submitted[fence] = ev["t"]
            self.max_inflight = max(self.max_inflight, len(self._submitted))
        else:
            _inc(self.render_failures, _result(ev, "status_name", "status"))

    def _dma_start(self, ev: dict[str, Any], thread: str | None) -> None:
        self.dma_started += 1
        fence = get_int(ev, "fence")
        if fence is not None:
            sub = self._submitted.get(fence)
            if sub is not None:
                self.latency_queued.add(ev["t"] - sub)
            if len(self._started) < self._max_inflight_tracked:
                self._started[fence] = ev["t"]

    def _dma_end(self, ev: dict[str, Any], thread: str | None) -> None:
        result = get_str(ev, "result")
        _inc(self.dma_ended, result or "?")
        self.dma_draws += len(get_list(ev, "draws"))
        fence = get_int(ev, "fence")
        if fence is not None:
            sub = self._submitted.pop(fence, None)
            start = self._started.pop(fence, None)
            if ev.get("result", "completed") == "completed":
                if sub is not None:
                    self.latency_total.add(ev["t"] - sub)
                if start is not None:
                    self.latency_exec.add(ev["t"] - start)

    def _kmd_rename(self, ev: dict[str, Any], thread: str | None) -> None:
        self.kmd_renames += 1

    def _track_switch(self, ev: dict[str, Any], thread: str | None) -> None:
        _inc(self.track_switches, thread or "-")

    def _kmd_lock(self, ev: dict[str, Any], thread: str | None) -> None:
        _inc(self.kmd_lock, _result(ev, "status_name", "status"))

    def _kmd_lock_wait(self, ev: dict[str, Any], thread: str | None) -> None:
        self.kmd_lock_waits += 1

    def _tdr(self, ev: dict[str, Any], thread: str | None) -> None:
        self.tdrs += 1

    def _removed(self, ev: dict[str, Any], thread: str | None) -> None:
        self.removed += 1

    def _deferred(self, ev: dict[str, Any], thread: str | None) -> None:
        _inc(self.deferred_errors, f"{get_str(ev, 'ddi', '?')} → {get_str(ev, 'hr_name', '?')}")

    def _violation(self, ev: dict[str, Any], thread: str | None) -> None:
        rule = get_str(ev, "rule", "?")
        msg = get_str(ev, "message")
        v = self.violations.get(rule)
        if v is None:
            v = self.violations[rule] = {"count": 0, "first_step": ev["step"],
                                         "first_t": ev["t"], "threads": {}, "messages": []}
        v["count"] += 1
        _inc(v["threads"], thread or "-")
        if msg is not None and len(v["messages"]) < _MAX_MESSAGES and (
            msg not in v["messages"]
        ):
            v["messages"].append(msg)

    # ---- reporting -------------------------------------------------------------------------

    def lock_path(self) -> dict[str, Any]:
        """Counts of the lock path: calls of each DDI and the kernel's renames."""
        calls = {d: sum(self.ddi_calls.get(d, {}).values()) for d in LOCK_PATH_DDIS}
        return {"calls": calls, "lockasync_flags": dict(self.lockasync_flags),
                "kmd_renames": self.kmd_renames,
                "driver_track_switches": dict(self.track_switches),
                "kmd_lock": dict(self.kmd_lock),
                "kmd_lock_waits": self.kmd_lock_waits,
                "ungated_calls": dict(self.ungated),
                "overlapping_entries": self.overlapping_entries}

    def as_dict(self) -> dict[str, Any]:
        """The whole summary as JSON-able data (``wddmemu trace summary --json``)."""
        return {
            "run": {"lines": self.lines, **self.context, "start": self.run_start,
                    "end": self.run_end, "failures": self.failures, "last_step": self.last_step,
                    "last_t_ns": self.last_t},
            "threads": self.threads,
            "ddi": {d: {"calls": self.ddi_calls.get(d, {}), "results": self.ddi_results.get(d, {})}
                    for d in sorted(set(self.ddi_calls) | set(self.ddi_results))},
            "callbacks": {c: {"calls": self.cb_calls.get(c, {}),
                              "results": self.cb_results.get(c, {})}
                          for c in sorted(set(self.cb_calls) | set(self.cb_results))},
            "lock_path": self.lock_path(),
            "syncs": dict(sorted(self.syncs.items())),
            "queues": {q: {"puts": self.queue_puts.get(q, 0), "max_depth": self.queue_max[q]}
                       for q in sorted(self.queue_max)},
            "command_buffers": {
                "pfnRenderCb": sum(self.cb_calls.get("pfnRenderCb", {}).values()),
                "pfnRenderCb_results": self.cb_results.get("pfnRenderCb", {}),
                "submitted": self.render_submits, "rejected": self.render_failures,
                "commands": self.render_commands, "draws": self.render_draws,
            },
            "dma": {"started": self.dma_started, "ended": self.dma_ended,
                    "draws_executed": self.dma_draws, "max_in_flight": self.max_inflight,
                    "in_flight_at_end": len(self._submitted)},
            "fence_latency_ns": {"submit_to_done": self.latency_total.as_dict(),
                                 "submit_to_start": self.latency_queued.as_dict(),
                                 "start_to_done": self.latency_exec.as_dict()},
            "kernel": {"tdrs": self.tdrs, "devices_removed": self.removed,
                       "deferred_errors": self.deferred_errors},
            "violations": self.violations,
        }


_HANDLERS = {
    "run.start": TraceSummary._run_start,
    "run.end": TraceSummary._run_end,
    "run.failure": TraceSummary._run_failure,
    "spawn": TraceSummary._spawn,
    "ddi.enter": TraceSummary._ddi_enter,
    "ddi.exit": TraceSummary._ddi_exit,
    "cb.enter": TraceSummary._cb_enter,
    "cb.exit": TraceSummary._cb_exit,
    "rt.sync": TraceSummary._sync,
    "rt.queue.put": TraceSummary._queue,
    "rt.queue.get": TraceSummary._queue,
    "queue.put": TraceSummary._queue,
    "queue.get": TraceSummary._queue,
    "kmd.render": TraceSummary._render,
    "kmd.dma.start": TraceSummary._dma_start,
    "kmd.dma.end": TraceSummary._dma_end,
    "kmd.rename": TraceSummary._kmd_rename,
    "umd.track.switch": TraceSummary._track_switch,
    "kmd.lock": TraceSummary._kmd_lock,
    "kmd.lock.wait": TraceSummary._kmd_lock_wait,
    "kmd.tdr": TraceSummary._tdr,
    "kmd.device.removed": TraceSummary._removed,
    "rt.deferred_error": TraceSummary._deferred,
    "violation": TraceSummary._violation,
}


def summarize(trace: str | Path) -> TraceSummary:
    """Read the trace at ``trace`` (streaming) and return its summary. Raises
    :class:`~wddmemu.trace.TraceFormatError` for a malformed trace."""
    s = TraceSummary()
    feed_events(trace, s.feed)
    return s


# ---- rich rendering --------------------------------------------------------------------------

#: the most characters of one text from the trace in a table (a message, a name)
_SHOWN = 200


def _t(text: object) -> str:
    """Text from the trace, safe inside rich markup: control and other non-printable
    characters escaped (``\\x1b``), cut to :data:`_SHOWN` characters, markup escaped."""
    return escape(printable(str(text), _SHOWN))


def _results(d: dict[str, int]) -> str:
    ok = {k: v for k, v in d.items() if k in ("S_OK", "STATUS_SUCCESS")}
    bad = {k: v for k, v in d.items() if k not in ok}
    parts = [f"[green]{_t(k)}[/green] {v}" for k, v in sorted(ok.items())]
    parts += [f"[red]{_t(k)}[/red] {v}" for k, v in sorted(bad.items(), key=lambda kv: -kv[1])]
    return ", ".join(parts) or "-"


def _ns(v: int | float | None) -> str:
    if v is None:
        return "-"
    if abs(v) >= 1_000_000:
        return f"{v / 1e6:.3f} ms"
    if abs(v) >= 1_000:
        return f"{v / 1e3:.2f} µs"
    return f"{v:g} ns"


def _calls_table(title: str, calls: dict[str, dict[str, int]],
                 results: dict[str, dict[str, int]], threads: list[str], what: str) -> Table:
    t = Table(title=title, title_justify="left", title_style="bold")
    t.add_column(what, style="cyan")
    used = [th for th in threads if any(th in per for per in calls.values())]
    for th in used:
        t.add_column(_t(th), justify="right")
    t.add_column("total", justify="right", style="bold")
    t.add_column("results")
    for name in sorted(calls, key=lambda n: (-sum(calls[n].values()), n)):
        per = calls[name]
        res = results.get(name, {})
        text = _results(res)
        open_ = sum(per.values()) - sum(res.values())
        if open_ > 0:  # entered but never left: the run stopped inside
            text = f"{text}, [yellow]no exit {open_}[/yellow]" if res else (
                f"[yellow]no exit {open_}[/yellow]")
        t.add_row(_t(name), *[str(per.get(th, "")) for th in used], str(sum(per.values())), text)
    return t


def render_summary(s: TraceSummary, console: Console, source: str = "") -> None:
    """Print the summary as rich tables: the run's header, DDI and callback calls, the lock
    path, syncs, command buffers and DMA, fence latency, errors (when any) and violations."""
    _print_header(s, console, source)
    # threads: app threads first, daemons last (the order GPUView shows them)
    threads = sorted(s.threads, key=lambda n: s.threads[n]["daemon"])
    if s.ddi_calls:
        console.print(_calls_table("DDI calls (per thread)", s.ddi_calls, s.ddi_results,
                                   threads, "DDI"))
    if s.cb_calls:
        console.print(_calls_table("callbacks (per thread)", s.cb_calls, s.cb_results,
                                   threads, "callback"))
    console.print(_lock_path_table(s))
    console.print(_syncs_table(s))
    console.print(_dma_table(s))
    console.print(_latency_table(s))
    errors = _errors_table(s)
    if errors is not None:
        console.print(errors)
    console.print(_violations_table(s))


def _print_header(s: TraceSummary, console: Console, source: str) -> None:
    """The run's name and status, its size, and its failures (one line each)."""
    ctx = s.context
    head = f"[bold]{_t(ctx.get('scenario', 'trace'))}[/bold]"
    run = ", ".join(f"{k} {_t(ctx[k])}" for k in ("strategy", "seed", "backend") if k in ctx)
    status = ""
    if s.run_end is not None:
        status = (" — [green]clean[/green]" if s.run_end.get("ok")
                  else " — [red]not clean[/red]")
    else:
        status = " — [yellow]no run.end (trace cut short?)[/yellow]"
    console.print(f"{head} ({run}){status}" if run else f"{head}{status}")
    console.print(
        f"{s.lines} events, {s.last_step} steps, t = {_ns(s.last_t)} virtual, "
        f"{len(s.threads)} threads" + (f"  [dim]{_t(source)}[/dim]" if source else "")
    )
    for f in s.failures:
        console.print(f"[red]failure[/red] {_t(f['kind'])} at step {f['step']}: "
                      f"{_t(f['message'])}",
                      markup=True, highlight=False)


def _lock_path_table(s: TraceSummary) -> Table:
    """LockAsync/Rename/Unlock counts, renames, switches and the kernel's lock work."""
    lp = s.lock_path()
    t = Table(title="lock path", title_justify="left", title_style="bold")
    t.add_column("what", style="cyan")
    t.add_column("count", justify="right")
    for d in LOCK_PATH_DDIS:
        t.add_row(d, str(lp["calls"][d]))
    for kind, n in sorted(s.lockasync_flags.items()):
        t.add_row(f"  LockAsync {kind}", str(n))
    t.add_row("kernel renames (kmd.rename)", str(s.kmd_renames))
    if s.track_switches:
        per = ", ".join(f"{_t(th)} {n}" for th, n in sorted(s.track_switches.items()))
        t.add_row("driver switches to the new instance",
                  f"{sum(s.track_switches.values())} ({per})")
    if s.kmd_lock:
        t.add_row("kernel locks (kmd.lock)", _results(s.kmd_lock))
    t.add_row("kernel lock waits for the GPU", str(s.kmd_lock_waits))
    t.add_row("entered without the entry lock",
              ", ".join(f"{_t(d)} {n}" for d, n in sorted(s.ungated.items())) or "none")
    t.add_row("entries overlapping another thread", str(s.overlapping_entries))
    return t


def _syncs_table(s: TraceSummary) -> Table:
    """Syncs by reason, most frequent first, with the total."""
    t = Table(title="syncs by reason", title_justify="left", title_style="bold")
    t.add_column("reason", style="cyan")
    t.add_column("count", justify="right")
    for reason, n in sorted(s.syncs.items(), key=lambda kv: (-kv[1], kv[0])):
        t.add_row(_t(reason), str(n))
    if not s.syncs:
        t.add_row("[dim]none[/dim]", "0")
    t.add_row("[bold]total[/bold]", f"[bold]{sum(s.syncs.values())}[/bold]")
    return t


def _dma_table(s: TraceSummary) -> Table:
    """Command buffers submitted and DMA buffers run, and the queues' depths."""
    t = Table(title="command buffers and DMA", title_justify="left", title_style="bold")
    t.add_column("what", style="cyan")
    t.add_column("count", justify="right")
    n_rcb = sum(s.cb_calls.get("pfnRenderCb", {}).values())
    t.add_row("pfnRenderCb calls", str(n_rcb))
    t.add_row("command buffers submitted (kmd.render)", str(s.render_submits))
    if s.render_failures:
        t.add_row("submissions rejected", _results(s.render_failures))
    t.add_row("commands submitted", str(s.render_commands))
    t.add_row("draws submitted", str(s.render_draws))
    t.add_row("DMA buffers started", str(s.dma_started))
    for result, n in sorted(s.dma_ended.items()):
        t.add_row(f"DMA buffers {_t(result)}", str(n))
    t.add_row("draws executed by the GPU", str(s.dma_draws))
    t.add_row("most DMA buffers in flight", str(s.max_inflight))
    if s._submitted:
        t.add_row("[yellow]in flight at the end[/yellow]", str(len(s._submitted)))
    for q in sorted(s.queue_max):
        t.add_row(f"queue {_t(q)}: puts / max depth",
                  f"{s.queue_puts.get(q, 0)} / {s.queue_max[q]}")
    return t


def _latency_table(s: TraceSummary) -> Table:
    """Fence latency in virtual time: submit → done, → GPU start, GPU start → done."""
    t = Table(title="fence latency (virtual time)", title_justify="left", title_style="bold")
    t.add_column("interval", style="cyan")
    for c in ("count", "min", "p50", "p95", "max", "mean"):
        t.add_column(c, justify="right")
    for label, h in (("submit → done", s.latency_total), ("submit → GPU start", s.latency_queued),
                     ("GPU start → done", s.latency_exec)):
        d = h.as_dict()
        t.add_row(label, str(d["count"]), _ns(d["min"]), "≈" + _ns(d["p50"]) if h.n else "-",
                  "≈" + _ns(d["p95"]) if h.n else "-", _ns(d["max"]), _ns(d["mean"]))
    return t


def _errors_table(s: TraceSummary) -> Table | None:
    """TDRs, removed devices and deferred errors; None when the run had none of them."""
    if not (s.tdrs or s.removed or s.deferred_errors):
        return None
    t = Table(title="errors", title_justify="left", title_style="bold")
    t.add_column("what", style="cyan")
    t.add_column("count", justify="right")
    t.add_row("TDRs", str(s.tdrs))
    t.add_row("devices removed", str(s.removed))
    for k, n in sorted(s.deferred_errors.items()):
        t.add_row(f"deferred error {_t(k)}", str(n))
    return t


def _violations_table(s: TraceSummary) -> Table:
    """Violations by rule, in the order they first happened."""
    t = Table(title="violations", title_justify="left", title_style="bold")
    t.add_column("rule", style="red")
    t.add_column("count", justify="right")
    t.add_column("first step", justify="right")
    t.add_column("threads")
    t.add_column("message (first)")
    for rule, v in sorted(s.violations.items(), key=lambda kv: kv[1]["first_step"]):
        ths = ", ".join(f"{_t(k)} {n}" for k, n in sorted(v["threads"].items()))
        t.add_row(_t(rule), str(v["count"]), str(v["first_step"]), ths,
                  _t(v["messages"][0]) if v["messages"] else "")
    if not s.violations:
        t.add_row("[green]none[/green]", "0", "", "", "")
    return t
