"""``wddmemu trace plot``: the timeline as a PNG (matplotlib, the ``plot`` extra).

Lanes, top to bottom: application threads and workers in spawn order, then daemon threads (the
GPU engine with its DMA buffers, the watchdog). In a lane, a DDI call is a full-height bar in the
DDI's colour; what runs inside it (a callback, a wait) is drawn over its lower part, so a
``pfnRenderCb`` inside ``Present`` or a wait inside ``Lock`` shows as a band inside the DDI's
bar. Waits are light grey. Markers: renames (purple ▾), the driver switching to a renamed instance
(green ◆), syncs (black ▴), violations (red ▼ with the rule id and a red line across all lanes),
TDRs and device removal (black ✕). A bottom panel
shows the command-queue depth and the DMA buffers in flight.

The picture is built in two streaming passes over the trace (the same timeline as ``trace
export``, ``_trace_timeline``): the first finds the lanes and the time span, the second paints
fixed-size bins (one per horizontal pixel or so), keeping in each the item that covers most of
it. Memory is therefore bounded by lanes × bins whatever the trace's length.
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path
from typing import Any

from ._files import atomic_path
from ._trace_read import iter_events
from ._trace_timeline import DEFAULT_CPU_NS, TimelineBuilder, TimelineInfo


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed."""


#: a stable colour per DDI / callback / kind (anything else: a colour from its name's CRC)
COLOURS = {
    # DDIs of the lock path
    "LockAsync": "#e6550d", "UnlockAsync": "#fdae6b", "Rename": "#9467bd",
    "Lock": "#3182bd", "Unlock": "#9ecae1",
    # queued DDIs
    "DrawPrimitive": "#31a354", "SetStreamSource": "#a1d99b", "Present": "#e377c2",
    "Flush": "#bcbd22", "CreateResource": "#8c564b", "DestroyResource": "#c49c94",
    "CreateDevice": "#7f7f7f", "OpenAdapter": "#7f7f7f", "DestroyDevice": "#7f7f7f",
    # callbacks
    "pfnRenderCb": "#17becf", "pfnLockCb": "#1f3f8f", "pfnUnlockCb": "#6baed6",
    "pfnAllocateCb": "#c5b0d5", "pfnDeallocateCb": "#dbdb8d",
    # kinds
    "DMA buffer": "#393b79", "DMA buffer aborted": "#b2182b", "wait": "#d9d9d9",
    "enqueue": "#525252", "kernel": "#636363", "barrier": "#ffd92f", "stop": "#737373",
}
_TAB20 = ["#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#8c564b",
          "#c49c94", "#e377c2", "#f7b6d2", "#7f7f7f", "#c7c7c7", "#bcbd22", "#dbdb8d",
          "#17becf", "#9edae5", "#393b79", "#637939", "#8c6d31", "#843c39"]

#: instant categories drawn as markers: category → (label, marker, colour, size)
MARKERS = {
    "rename": ("rename", "v", "#6a3d9a", 30),
    "switch": ("driver switch", "D", "#1b9e77", 18),
    "sync": ("sync", "^", "#000000", 30),
    "violation": ("violation", "v", "#e31a1c", 90),
    "tdr": ("TDR / removal", "X", "#000000", 70),
    "removed": ("TDR / removal", "X", "#000000", 70),
}

_ROWS = 3  # nesting depths drawn per lane (deeper ones are drawn in the last row)
#: bar extent (bottom offset, height) inside a lane of height 1, per depth
_ROW_EXTENT = ((0.1, 0.8), (0.1, 0.45), (0.1, 0.22))


def colour(label: str) -> str:
    """The colour of a slice label: fixed for the project's DDIs, callbacks and kinds, stable
    for anything else."""
    c = COLOURS.get(label)
    if c is None:
        c = _TAB20[zlib.crc32(label.encode()) % len(_TAB20)]
    return c


def _label(name: str, cat: str) -> str:
    if cat == "dma":
        return "DMA buffer aborted" if name.endswith("aborted") else "DMA buffer"
    if cat == "wait":
        return "wait"
    if cat == "queue":
        return "enqueue" if name.startswith("enqueue") else name.strip("()")
    if cat == "kmd":
        return "kernel"
    return name


class _Extent:
    """Pass 1: the lanes and the time span."""

    wants_args = False

    def __init__(self) -> None:
        self.threads: dict[int, tuple[str, int, bool]] = {}
        self.end = 0
        self.used: set[int] = set()

    def process(self, name: str) -> None:
        self.title = name

    def thread(self, tid: int, name: str, sort_index: int, daemon: bool) -> None:
        self.threads[tid] = (name, sort_index, daemon)

    def slice(self, tid: int, depth: int, name: str, cat: str, ts: int, dur: int,
              args: Any, parent: Any = None) -> None:
        self.used.add(tid)
        self.end = max(self.end, ts + dur)

    def instant(self, tid: int, name: str, cat: str, ts: int, scope: str, args: Any) -> None:
        if scope != "g":  # global instants are drawn across all lanes, not in a lane
            self.used.add(tid)
        self.end = max(self.end, ts)

    def flow(self, *a: Any) -> None:
        pass

    def counter(self, tid: int, name: str, ts: int, values: dict[str, int]) -> None:
        self.end = max(self.end, ts)


class _Bins:
    """Pass 2: paint fixed-size bins per lane and depth, instants and counters."""

    wants_args = False

    def __init__(self, start: int, end: int, nbins: int) -> None:
        self.start = start
        self.n = nbins
        self.width = max(1.0, (end - start) / nbins)
        # (tid, row) → per bin {(parent label, label): coverage} (None where nothing was drawn)
        self.cover: dict[tuple[int, int], list[dict[tuple[str | None, str], float] | None]] = {}
        self.marks: dict[str, dict[tuple[int, int], str]] = {}  # category → (tid, bin) → name
        self.mark_counts: dict[str, int] = {}
        self.counters: dict[str, list[int | None]] = {}
        self.labels: dict[str, int] = {}
        self.globals: list[tuple[int, str, str]] = []  # run-level instants: (bin, name, cat)

    def _bin(self, ts: float) -> int:
        b = int((ts - self.start) / self.width)
        return 0 if b < 0 else self.n - 1 if b >= self.n else b

    def process(self, name: str) -> None:
        pass

    def thread(self, *a: Any) -> None:
        pass

    def slice(self, tid: int, depth: int, name: str, cat: str, ts: int, dur: int,
              args: Any, parent: tuple[str, str] | None = None) -> None:
        row = min(depth, _ROWS - 1)
        bins = self.cover.get((tid, row))
        if bins is None:
            bins = self.cover[(tid, row)] = [None] * self.n
        label = _label(name, cat)
        key = (None if row == 0 or parent is None else _label(*parent), label)
        self.labels[label] = self.labels.get(label, 0) + 1
        w = self.width
        a = (ts - self.start) / w
        b = (ts + dur - self.start) / w
        i0 = min(int(a), self.n - 1)
        i1 = min(max(i0, math.ceil(b) - 1), self.n - 1)  # the end is exclusive
        for i in range(i0, i1 + 1):
            cov = min(b, i + 1) - max(a, i)
            # a slice narrower than a bin still shows: count it as at least a sliver
            cov = max(cov, 1e-3)
            d = bins[i]
            if d is None:
                bins[i] = {key: cov}
            else:
                d[key] = d.get(key, 0.0) + cov

    def instant(self, tid: int, name: str, cat: str, ts: int, scope: str, args: Any) -> None:
        if scope == "g":
            if len(self.globals) < 50:
                self.globals.append((self._bin(ts), name, cat))
            return
        if cat not in MARKERS:
            return
        self.mark_counts[cat] = self.mark_counts.get(cat, 0) + 1
        m = self.marks.setdefault(cat, {})
        key = (tid, self._bin(ts))
        if key not in m:
            m[key] = name

    def flow(self, *a: Any) -> None:
        pass

    def counter(self, tid: int, name: str, ts: int, values: dict[str, int]) -> None:
        v = next(iter(values.values()), None)
        if not isinstance(v, int):
            return
        series = self.counters.get(name)
        if series is None:
            series = self.counters[name] = [None] * self.n
        b = self._bin(ts)
        cur = series[b]
        series[b] = v if cur is None else max(cur, v)

    def winners(self, tid: int) -> list[list[str | None]]:
        """Per row, the label drawn in each bin: the one covering most of it, among those
        nested in the row above's winner (so a bin never shows a callback inside a wait it was
        not in)."""
        out: list[list[str | None]] = []
        above: list[str | None] | None = None
        for row in range(_ROWS):
            bins = self.cover.get((tid, row))
            if bins is None:
                break
            win: list[str | None] = []
            for i, d in enumerate(bins):
                best = None
                if d:
                    want = None if above is None else above[i]
                    if above is None or want is not None:
                        cands = [(c, lab) for (par, lab), c in d.items()
                                 if above is None or par == want]
                        if cands:
                            best = max(cands)[1]
                win.append(best)
            out.append(win)
            above = win
        return out


def _runs(labels: list[str | None]) -> list[tuple[int, int, str]]:
    """Run-length encode painted bins: (first bin, length, label)."""
    out: list[tuple[int, int, str]] = []
    cur: str | None = None
    start = 0
    for i, lab in enumerate(labels):
        if lab != cur:
            if cur is not None:
                out.append((start, i - start, cur))
            cur, start = lab, i
    if cur is not None:
        out.append((start, len(labels) - start, cur))
    return out


def _timeline(trace: str | Path, sink: Any, time: str, cpu_ns: int) -> TimelineInfo:
    tl = TimelineBuilder(sink, time=time, cpu_ns=cpu_ns)
    for _, ev in iter_events(trace):
        tl.feed(ev)
    return tl.finish()


def plot_png(trace: str | Path, out: str | Path, *, time: str = "virtual",
             cpu_ns: int = DEFAULT_CPU_NS, width: float = 16.0, dpi: int = 100,
             title: str | None = None) -> TimelineInfo:
    """Render the trace at ``trace`` as a timeline PNG at ``out``. Raises
    :class:`PlotUnavailable` without matplotlib and
    :class:`~runtime._trace_read.TraceFormatError` for a malformed trace."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise PlotUnavailable("matplotlib is not installed") from None

    ext = _Extent()
    info = _timeline(trace, ext, time, cpu_ns)
    start = info.first_ts
    end = max(ext.end, info.last_ts, start + 1)
    nbins = max(200, int(width * dpi * 0.85))
    bins = _Bins(start, end, nbins)
    _timeline(trace, bins, time, cpu_ns)

    # lanes: every thread that has something to show (run-level instants are drawn across all)
    tids = [tid for tid in sorted(ext.threads, key=lambda t: ext.threads[t][1])
            if tid in ext.used]
    lane = {tid: i for i, tid in enumerate(tids)}  # 0 = top
    nl = max(1, len(tids))
    has_counters = bool(bins.counters)
    height = 1.6 + 0.55 * nl + (1.6 if has_counters else 0)
    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)  # the Agg backend, without touching pyplot's global state
    if has_counters:
        gs = fig.add_gridspec(2, 1, height_ratios=[0.55 * nl + 0.4, 1.4], hspace=0.08)
        ax = fig.add_subplot(gs[0])
        axc = fig.add_subplot(gs[1], sharex=ax)
    else:
        ax = fig.add_subplot(1, 1, 1)
        axc = None

    steps = info.time == "steps"
    # timeline ns → axis units: µs (steps mode: 1 µs = 1 step), ms or s for long runs
    scale, unit = 1000.0, "µs"
    if not steps and end - start >= 20_000_000_000:
        scale, unit = 1e9, "s"
    elif not steps and end - start >= 20_000_000:
        scale, unit = 1e6, "ms"
    x0 = start / scale
    bw = bins.width / scale

    def y_of(tid: int) -> float:
        return nl - 1 - lane[tid]

    # lanes: alternating background
    for tid, i in lane.items():
        if i % 2 == 0:
            ax.axhspan(y_of(tid), y_of(tid) + 1, color="#f4f4f4", zorder=0, lw=0)
    for tid in tids:
        for row, labels in enumerate(bins.winners(tid)):
            off, h = _ROW_EXTENT[row]
            by: dict[str, list[tuple[float, float]]] = {}
            for b0, n, lab in _runs(labels):
                by.setdefault(lab, []).append((x0 + b0 * bw, n * bw))
            for lab, segs in by.items():
                wait = lab == "wait"
                ax.broken_barh(segs, (y_of(tid) + off, h), facecolors=colour(lab),
                               edgecolor="#9e9e9e" if wait else "none", linewidth=0.3,
                               hatch="///" if wait else None, zorder=2 + row)

    # markers
    legend_marks: dict[str, Any] = {}
    for cat, marks in bins.marks.items():
        label, marker, col, size = MARKERS[cat]
        xs, ys = [], []
        for (tid, b), _name in marks.items():
            if tid not in lane:
                continue
            xs.append(x0 + (b + 0.5) * bw)
            ys.append(y_of(tid) + (0.93 if marker in ("v", "D") else 0.07))
        if not xs:
            continue
        ax.scatter(xs, ys, marker=marker, s=size, c=col, zorder=10, linewidths=0.4,
                   edgecolors="white" if cat == "violation" else "none")
        legend_marks[label] = Line2D([], [], ls="none", marker=marker, color=col,
                                     markersize=7 if cat == "violation" else 5)
    # TDRs: a black line across the lanes, labelled
    for b in sorted({b for (_, b) in bins.marks.get("tdr", {})})[:50]:
        x = x0 + (b + 0.5) * bw
        ax.axvline(x, color="#000000", lw=1.0, ls=":", zorder=9)
        ax.annotate("TDR", (x, nl), xytext=(-3, 2), textcoords="offset points", fontsize=8,
                    fontweight="bold", ha="right", zorder=11, annotation_clip=False)
    viol = sorted(bins.marks.get("violation", {}).items(), key=lambda kv: kv[0][1])
    seen_bins: set[int] = set()
    labelled: list[int] = []
    gap = max(1, nbins // 14)  # bins between two rule labels, so they never overlap
    for (tid, b), name in viol:
        x = x0 + (b + 0.5) * bw
        if b not in seen_bins:
            seen_bins.add(b)
            ax.axvline(x, color="#e31a1c", lw=0.8, alpha=0.6, zorder=9)
            if axc is not None:
                axc.axvline(x, color="#e31a1c", lw=0.8, alpha=0.6)
        if tid in lane and (not labelled or b - labelled[-1] >= gap):
            labelled.append(b)
            ax.annotate(name.replace("violation ", ""), (x, y_of(tid) + 1.0),
                        xytext=(2, 1), textcoords="offset points", fontsize=8,
                        color="#b10026", fontweight="bold", zorder=11,
                        annotation_clip=False)

    for b, name, cat in bins.globals:
        x = x0 + (b + 0.5) * bw
        col = "#e31a1c" if cat in ("violation", "failure") else "#000000"
        ax.axvline(x, color=col, lw=1.4, ls="--", zorder=9)
        if axc is not None:
            axc.axvline(x, color=col, lw=1.4, ls="--")
        ax.annotate(name, (x, nl), xytext=(-3, 2), textcoords="offset points", fontsize=8,
                    color=col, fontweight="bold", ha="right", zorder=11, annotation_clip=False)
    ax.set_ylim(0, nl)
    ax.set_yticks([y_of(t) + 0.5 for t in tids])
    ax.set_yticklabels([ext.threads[t][0] for t in tids], fontsize=10)
    ax.tick_params(axis="y", length=0)
    ax.set_xlim(x0, end / scale)
    ax.grid(axis="x", color="#dddddd", lw=0.5, zorder=1)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    xlabel = (f"scheduling steps (logical time; events of one step are {cpu_ns / 1000:g} step "
              "apart)" if steps else
              f"virtual time, {unit} (CPU events stretched to ≥ {cpu_ns} ns each; "
              f"drift ≤ {info.max_drift_ns / 1000:g} µs)")
    head = title or getattr(ext, "title", "wddmemu trace")
    nviol = bins.mark_counts.get("violation", 0)
    ax.set_title(f"{head} — {info.events} events"
                 + (f", {nviol} violation{'s' if nviol != 1 else ''}" if nviol else ""),
                 fontsize=11, loc="left", pad=12)

    # legend: colours actually drawn, most frequent first, then markers
    labs = sorted(bins.labels, key=lambda k: (-bins.labels[k], k))[:24]
    handles = [Patch(facecolor=colour(lab), edgecolor="#9e9e9e" if lab == "wait" else "none",
                     hatch="///" if lab == "wait" else None, label=lab) for lab in labs]
    handles += [h for h in legend_marks.values()]
    names = labs + list(legend_marks)
    rows = max(4, int((0.55 * nl + 0.4) / 0.16))  # legend rows that fit beside the lanes
    ncol = 1 if len(names) <= rows else 2
    if handles:
        ax.legend(handles, names, loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8,
                  frameon=False, handlelength=1.4, ncol=ncol, columnspacing=0.8)

    if axc is not None:
        for name, series in sorted(bins.counters.items()):
            xs, ys = [], []
            last = 0
            for i, v in enumerate(series):
                if v is not None:
                    last = v
                elif not xs:
                    continue
                xs.append(x0 + i * bw)
                ys.append(last)
            if xs:
                axc.step(xs, ys, where="post", lw=1.1, label=name)
        axc.set_ylim(bottom=0, top=max(1, max((v for ser in bins.counters.values()
                                              for v in ser if v is not None), default=1)) + 0.5)
        axc.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
        axc.set_ylabel("depth", fontsize=9)
        axc.grid(color="#dddddd", lw=0.5)
        axc.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, frameon=False)
        for side in ("top", "right"):
            axc.spines[side].set_visible(False)
        axc.set_xlabel(xlabel, fontsize=9)
        ax.tick_params(axis="x", labelbottom=False)
    else:
        ax.set_xlabel(xlabel, fontsize=9)
    right = 0.86 if ncol == 1 else 0.79
    fig.subplots_adjust(left=0.09, right=right, top=0.93, bottom=0.08 if axc is None else 0.1)
    try:
        with atomic_path(out) as tmp:  # a failed write leaves what was at ``out`` (issue 14)
            fig.savefig(str(tmp), format="png")
    except OSError as e:
        raise OSError(f"cannot write {out}: {e.strerror}") from None
    return info
