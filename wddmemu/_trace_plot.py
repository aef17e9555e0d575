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
it. At most ``lanes`` lanes are drawn (40 by default, :data:`MAX_LANES` at most, fewer when a
wide, high-dpi picture would pass :data:`PIXELS`): the busiest threads, the others left out with
a note on stderr. Memory is therefore bounded by lanes × bins whatever the trace's length and
however many threads it has. A trace that cannot be read twice (a pipe) is refused before it is
read.
"""

from __future__ import annotations

import math
import os
import stat
import sys
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from ._files import atomic_path, is_path, kind_of, printable, shown_number
from ._trace_read import TraceFormatError, check_trace_path, feed_events
from ._trace_timeline import (
    DEFAULT_CPU_NS,
    TimelineBuilder,
    TimelineInfo,
    check_timeline_options,
)


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
        c = _TAB20[zlib.crc32(label.encode("utf-8", "surrogatepass")) % len(_TAB20)]
    return c


def _safe(text: str, limit: int = 80) -> str:
    """Text drawn on the picture (trace names, ``--title``): control, non-printable and
    surrogate-escaped characters (a non-UTF-8 argv byte) written as escapes (``\\x1b``,
    ``\\udcff``), cut to ``limit`` characters, and ``$`` escaped so that matplotlib never
    parses it as mathtext."""
    return printable(text, limit).replace("$", r"\$")


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
    """Pass 1: the lanes, how busy each is, and the time span."""

    wants_args = False

    def __init__(self) -> None:
        self.threads: dict[int, tuple[str, int, bool]] = {}
        self.end = 0
        self.used: set[int] = set()
        self.busy: dict[int, int] = {}  # tid → timeline ns in outermost slices

    def process(self, name: str) -> None:
        self.title = name

    def thread(self, tid: int, name: str, sort_index: int, daemon: bool) -> None:
        self.threads[tid] = (name, sort_index, daemon)

    def slice(self, tid: int, depth: int, name: str, cat: str, ts: int, dur: int,
              args: Any, parent: Any = None) -> None:
        self.used.add(tid)
        if depth == 0:  # nested slices lie inside these: their sum is the busy time
            self.busy[tid] = self.busy.get(tid, 0) + dur
        self.end = max(self.end, ts + dur)

    def instant(self, tid: int, name: str, cat: str, ts: int, scope: str, args: Any) -> None:
        if scope != "g":  # global instants are drawn across all lanes, not in a lane
            self.used.add(tid)
        self.end = max(self.end, ts)

    def flow(self, *a: Any) -> None:
        pass

    def counter(self, tid: int, name: str, ts: int, values: dict[str, int]) -> None:
        self.end = max(self.end, ts)


#: the lane of items from a thread left out (:func:`_lanes`) that are drawn across all lanes
_ELSEWHERE = -1


class _Bins:
    """Pass 2: paint fixed-size bins per lane and depth, instants and counters. Only the
    threads of ``lanes`` (the lanes drawn, top to bottom; None: every thread) are painted, so
    memory is bounded by those lanes × ``nbins``."""

    wants_args = False

    def __init__(self, start: int, end: int, nbins: int,
                 lanes: list[int] | None = None) -> None:
        self.lanes = lanes
        self.keep = None if lanes is None else set(lanes)
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
        if self.keep is not None and tid not in self.keep:
            return
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
        if self.keep is not None and tid not in self.keep:
            if cat not in ("violation", "tdr"):
                return
            tid = _ELSEWHERE  # still a line across the lanes (a bin each at most)
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


def _timeline(trace: str | Path, sink: Any, time: str, cpu_ns: int,
              warn: Any = None) -> TimelineInfo:
    tl = TimelineBuilder(sink, time=time, cpu_ns=cpu_ns)
    feed_events(trace, tl.feed, warn)
    return tl.finish()


def _quiet(message: str) -> None:
    """The second read's warnings: the first read said them already."""


#: the picture's width in inches (``--width``, ``width=``)
MIN_WIDTH, MAX_WIDTH = 4, 200
#: lanes drawn (``--lanes``, ``lanes=``): the busiest threads; 8,000 lanes were a figure of
#: 440,000 pixels' height (3.3 GB, then a MemoryError)
DEFAULT_LANES, MAX_LANES = 40, 100
#: the most pixels a picture has (512 MiB of RGBA): at a great width × dpi, fewer lanes fit
PIXELS = 1 << 27
#: its resolution (``dpi=``): the widest picture at the most, 200 in × 300 dpi, is 60,000
#: pixels, inside the 2**16 Agg draws (at 10**6 matplotlib failed after half a minute)
MIN_DPI, MAX_DPI = 10, 300


def check_plot_options(out: object, *, width: object = 16.0, dpi: object = 100,
                       title: object = None, lanes: object = DEFAULT_LANES,
                       cli: bool = False) -> None:
    """Refuse what :func:`plot_png` cannot draw with a one-line
    :class:`~wddmemu.trace.TraceFormatError` (``.path`` empty): ``out`` not a file name, a
    ``width`` (inches; int or float) outside 4..200 or NaN, a ``dpi`` not an int in 10..300, a
    ``title`` neither None nor a string, ``lanes`` not an int in 1..100. ``cli`` names them
    as the CLI's options (the CLI calls this, so the two agree)."""
    prefix = "--" if cli else ""
    if not is_path(out) or str(out) == "-":
        shown = repr(str(out)) if isinstance(out, str | Path) else kind_of(out)
        raise TraceFormatError("", None, f"{'--png' if cli else 'out'} needs a file name, not "
                                         f"{shown}")
    if type(width) not in (int, float) or not MIN_WIDTH <= width <= MAX_WIDTH:  # NaN fails
        raise TraceFormatError("", None, f"{prefix}width takes {MIN_WIDTH}..{MAX_WIDTH} "
                                         f"inches, not {shown_number(width)}")
    if type(dpi) is not int or not MIN_DPI <= dpi <= MAX_DPI:
        raise TraceFormatError("", None, f"{prefix}dpi takes an int {MIN_DPI}..{MAX_DPI}, "
                                         f"not {shown_number(dpi)}")
    if title is not None and not isinstance(title, str):
        raise TraceFormatError("", None, f"{prefix}title is a string or None, not "
                                         f"{kind_of(title)}")
    if type(lanes) is not int or not 1 <= lanes <= MAX_LANES:
        raise TraceFormatError("", None, f"{prefix}lanes takes an int 1..{MAX_LANES}, not "
                                         f"{shown_number(lanes)}")


def check_rereadable(trace: object) -> None:
    """Refuse (one-line :class:`~wddmemu.trace.TraceFormatError`) a trace that is a pipe or a
    socket: plot reads the trace twice, and its first read would use it up (``cat T | wddmemu
    trace plot /dev/stdin`` failed on the second read with a misleading "not a JSON line").
    Nothing is opened (a named pipe would wait for a writer); anything else, a missing file
    too, is left to the reader to report. A ``trace`` that names no file is refused first
    (:func:`~wddmemu._trace_read.check_trace_path`)."""
    check_trace_path(trace)
    path = str(trace)  # a str or a Path: check_trace_path
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    what = "a pipe" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else None
    if what is not None:
        raise TraceFormatError(path, None, f"is {what}, and plot reads the trace twice: save it "
                                           "to a file first (trace summary and export read a "
                                           "pipe)")


def _lanes(ext: _Extent, n: int) -> tuple[list[int], int]:
    """The threads drawn, top to bottom (those with something to show, in their sort order)
    and how many were left out: when more than ``n`` have something to show, the ``n``
    busiest (most timeline time in outermost slices; the first in order on a tie) are kept,
    still in their order."""
    tids = [tid for tid in sorted(ext.threads, key=lambda t: ext.threads[t][1])
            if tid in ext.used]
    if len(tids) <= n:
        return tids, 0
    busiest = sorted(range(len(tids)), key=lambda i: (-ext.busy.get(tids[i], 0), i))[:n]
    return [tids[i] for i in sorted(busiest)], len(tids) - n


def _lane_budget(lanes: int, width: float, dpi: int) -> int:
    """``lanes``, or fewer when that many would make the picture (counted with its counter
    panel, the tallest it can be) more than :data:`PIXELS` at ``width`` × ``dpi``; 1 at
    least (one lane fits in any picture :func:`check_plot_options` allows)."""
    tall = PIXELS / (width * dpi * dpi)  # the height in inches the budget leaves
    return max(1, min(lanes, int((tall - 3.2) / 0.55)))


def plot_png(trace: str | Path, out: str | Path, *, time: str = "virtual",
             cpu_ns: int = DEFAULT_CPU_NS, width: float = 16.0, dpi: int = 100,
             title: str | None = None, lanes: int = DEFAULT_LANES) -> TimelineInfo:
    """Render the trace at ``trace`` as a timeline PNG at ``out``, with the ``lanes`` busiest
    threads (fewer if the picture would pass :data:`PIXELS`; a note on stderr says how many
    were left out). Raises :class:`PlotUnavailable` without matplotlib and
    :class:`~wddmemu.trace.TraceFormatError` for a malformed trace, one that cannot be read
    twice (:func:`check_rereadable`) or an argument it cannot draw with
    (:func:`check_plot_options`), the last two before anything is read."""
    check_plot_options(out, width=width, dpi=dpi, title=title, lanes=lanes)
    check_timeline_options(time, cpu_ns)
    check_rereadable(trace)
    mpl = _matplotlib()
    ext = _Extent()
    info = _timeline(trace, ext, time, cpu_ns)
    start = info.first_ts
    end = max(ext.end, info.last_ts, start + 1)
    nbins = max(200, int(width * dpi * 0.85))
    budget = _lane_budget(lanes, width, dpi)
    tids, left_out = _lanes(ext, budget)
    if left_out:
        why = ("a narrower or lower-dpi picture has room for more" if budget < lanes else
               f"--lanes N draws up to {MAX_LANES}" if lanes < MAX_LANES else
               f"{MAX_LANES} at most")
        sys.stderr.write(f"wddmemu: note: {trace}: {left_out} of {left_out + len(tids)} lanes "
                         f"left out: the {len(tids)} busiest are drawn ({why})\n")
    bins = _Bins(start, end, nbins, tids)
    _timeline(trace, bins, time, cpu_ns, _quiet)  # a cut-short last line is said once

    # matplotlib's warnings (a glyph the font lacks, a time span too small for floats) are
    # about looks, not errors: they stay off stderr, which carries one line per command
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _draw(mpl, ext, bins, info, end, width, dpi, nbins, cpu_ns, title, out)
    return info


def _draw(mpl: _Mpl, ext: _Extent, bins: _Bins, info: TimelineInfo, end: int, width: float,
          dpi: int, nbins: int, cpu_ns: int, title: str | None, out: str | Path) -> None:
    """Draw the picture and write it to ``out`` (atomically)."""
    # the drawing steps run in this order: matplotlib draws artists of equal zorder in the
    # order they were added, so reordering them changes the picture's bytes
    p = _Plot.open(mpl, bins, info, end, width, dpi)
    _draw_lanes(p, bins)
    legend_marks = _draw_markers(p, bins, mpl.Line2D)
    _draw_tdrs(p, bins)
    _draw_violations(p, bins, nbins)
    _draw_run_instants(p, bins)
    xlabel = _style_timeline(p, ext, bins, info, cpu_ns, title)
    ncol = _draw_legend(p, bins, legend_marks, mpl.Patch)
    if p.axc is not None:
        _draw_counters(p, bins, mpl.MaxNLocator)
        p.axc.set_xlabel(xlabel, fontsize=9)
        p.ax.tick_params(axis="x", labelbottom=False)
    else:
        p.ax.set_xlabel(xlabel, fontsize=9)
    right = 0.86 if ncol == 1 else 0.79
    p.fig.subplots_adjust(left=0.09, right=right, top=0.93,
                          bottom=0.08 if p.axc is None else 0.1)
    try:
        with atomic_path(out) as tmp:  # a failed write leaves what was at ``out`` (issue 14)
            p.fig.savefig(str(tmp), format="png")
    except OSError as e:
        raise OSError(f"cannot write {out}: {e.strerror}") from None


class _Mpl(NamedTuple):
    """The few matplotlib classes the picture needs (imported only when a plot is drawn)."""

    FigureCanvasAgg: Any
    Figure: Any
    Line2D: Any
    Patch: Any
    MaxNLocator: Any


def _matplotlib() -> _Mpl:
    """Import matplotlib's pieces, or raise :class:`PlotUnavailable` (the extra is optional)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise PlotUnavailable("matplotlib is not installed") from None
    return _Mpl(FigureCanvasAgg, Figure, Line2D, Patch, MaxNLocator)


@dataclass
class _Plot:
    """The figure and where things go on it: lanes (0 = top) and bins → axis units."""

    fig: Any
    ax: Any  # the lanes
    axc: Any  # the counter panel below, or None when the trace has no counters
    tids: list[int]  # the threads drawn, top to bottom
    lane: dict[int, int]
    nl: int  # lanes (at least 1)
    x0: float  # the first bin's left edge, in axis units
    bw: float  # a bin's width, in axis units
    scale: float  # timeline ns per axis unit
    unit: str
    end: int  # the timeline's end, ns

    @classmethod
    def open(cls, mpl: _Mpl, bins: _Bins, info: TimelineInfo, end: int, width: float,
             dpi: int) -> _Plot:
        """A figure sized for the lanes ``bins`` paints (:func:`_lanes`; and a counter panel if
        it has counters), for a timeline from ``bins.start`` to ``end`` ns, with the time axis
        in µs (steps mode: 1 µs = 1 step), ms or s."""
        # run-level instants are drawn across all lanes
        tids = list(bins.lanes or ())
        lane = {tid: i for i, tid in enumerate(tids)}  # 0 = top
        nl = max(1, len(tids))
        has_counters = bool(bins.counters)
        height = 1.6 + 0.55 * nl + (1.6 if has_counters else 0)
        fig = mpl.Figure(figsize=(width, height), dpi=dpi)
        mpl.FigureCanvasAgg(fig)  # the Agg backend, without touching pyplot's global state
        if has_counters:
            gs = fig.add_gridspec(2, 1, height_ratios=[0.55 * nl + 0.4, 1.4], hspace=0.08)
            ax = fig.add_subplot(gs[0])
            axc = fig.add_subplot(gs[1], sharex=ax)
        else:
            ax = fig.add_subplot(1, 1, 1)
            axc = None
        start = bins.start
        steps = info.time == "steps"
        scale, unit = 1000.0, "µs"
        if not steps and end - start >= 20_000_000_000:
            scale, unit = 1e9, "s"
        elif not steps and end - start >= 20_000_000:
            scale, unit = 1e6, "ms"
        return cls(fig, ax, axc, tids, lane, nl, start / scale, bins.width / scale, scale,
                   unit, end)

    def y_of(self, tid: int) -> float:
        """The bottom of thread ``tid``'s lane."""
        return self.nl - 1 - self.lane[tid]

    def x_mid(self, b: int) -> float:
        """The middle of bin ``b``."""
        return self.x0 + (b + 0.5) * self.bw


def _draw_lanes(p: _Plot, bins: _Bins) -> None:
    """Alternating lane backgrounds, then each lane's rows of coloured bars (waits hatched)."""
    ax = p.ax
    for tid, i in p.lane.items():
        if i % 2 == 0:
            ax.axhspan(p.y_of(tid), p.y_of(tid) + 1, color="#f4f4f4", zorder=0, lw=0)
    for tid in p.tids:
        for row, labels in enumerate(bins.winners(tid)):
            off, h = _ROW_EXTENT[row]
            by: dict[str, list[tuple[float, float]]] = {}
            for b0, n, lab in _runs(labels):
                by.setdefault(lab, []).append((p.x0 + b0 * p.bw, n * p.bw))
            for lab, segs in by.items():
                wait = lab == "wait"
                ax.broken_barh(segs, (p.y_of(tid) + off, h), facecolors=colour(lab),
                               edgecolor="#9e9e9e" if wait else "none", linewidth=0.3,
                               hatch="///" if wait else None, zorder=2 + row)


def _draw_markers(p: _Plot, bins: _Bins, line2d: Any) -> dict[str, Any]:
    """The instant markers (renames, switches, syncs, violations, TDRs) in their lanes;
    returns the legend handle of each category drawn, by label."""
    legend_marks: dict[str, Any] = {}
    for cat, marks in bins.marks.items():
        label, marker, col, size = MARKERS[cat]
        xs, ys = [], []
        for (tid, b), _name in marks.items():
            if tid not in p.lane:
                continue
            xs.append(p.x_mid(b))
            ys.append(p.y_of(tid) + (0.93 if marker in ("v", "D") else 0.07))
        if not xs:
            continue
        p.ax.scatter(xs, ys, marker=marker, s=size, c=col, zorder=10, linewidths=0.4,
                     edgecolors="white" if cat == "violation" else "none")
        legend_marks[label] = line2d([], [], ls="none", marker=marker, color=col,
                                     markersize=7 if cat == "violation" else 5)
    return legend_marks


def _draw_tdrs(p: _Plot, bins: _Bins) -> None:
    """TDRs: a black dotted line across the lanes, labelled (the first 50)."""
    for b in sorted({b for (_, b) in bins.marks.get("tdr", {})})[:50]:
        x = p.x_mid(b)
        p.ax.axvline(x, color="#000000", lw=1.0, ls=":", zorder=9)
        p.ax.annotate("TDR", (x, p.nl), xytext=(-3, 2), textcoords="offset points",
                      fontsize=8, fontweight="bold", ha="right", zorder=11,
                      annotation_clip=False)


def _draw_violations(p: _Plot, bins: _Bins, nbins: int) -> None:
    """A red line across both panels per violation bin, and the rule ids, spaced so that two
    labels never overlap."""
    ax, axc = p.ax, p.axc
    viol = sorted(bins.marks.get("violation", {}).items(), key=lambda kv: kv[0][1])
    seen_bins: set[int] = set()
    labelled: list[int] = []
    gap = max(1, nbins // 14)  # bins between two rule labels, so they never overlap
    for (tid, b), name in viol:
        x = p.x_mid(b)
        if b not in seen_bins:
            seen_bins.add(b)
            ax.axvline(x, color="#e31a1c", lw=0.8, alpha=0.6, zorder=9)
            if axc is not None:
                axc.axvline(x, color="#e31a1c", lw=0.8, alpha=0.6)
        if tid in p.lane and (not labelled or b - labelled[-1] >= gap):
            labelled.append(b)
            ax.annotate(_safe(name.replace("violation ", "")), (x, p.y_of(tid) + 1.0),
                        xytext=(2, 1), textcoords="offset points", fontsize=8,
                        color="#b10026", fontweight="bold", zorder=11,
                        annotation_clip=False)


def _draw_run_instants(p: _Plot, bins: _Bins) -> None:
    """Run-level instants (no thread: run end, failures): a dashed line across both panels,
    red for violations and failures, labelled above the lanes."""
    for b, name, cat in bins.globals:
        x = p.x_mid(b)
        col = "#e31a1c" if cat in ("violation", "failure") else "#000000"
        p.ax.axvline(x, color=col, lw=1.4, ls="--", zorder=9)
        if p.axc is not None:
            p.axc.axvline(x, color=col, lw=1.4, ls="--")
        p.ax.annotate(_safe(name), (x, p.nl), xytext=(-3, 2), textcoords="offset points",
                      fontsize=8,
                      color=col, fontweight="bold", ha="right", zorder=11,
                      annotation_clip=False)


def _style_timeline(p: _Plot, ext: _Extent, bins: _Bins, info: TimelineInfo, cpu_ns: int,
                    title: str | None) -> str:
    """Lane names, limits, grid and title of the lanes panel; returns the time axis' label
    (it goes under the bottom panel)."""
    ax = p.ax
    ax.set_ylim(0, p.nl)
    ax.set_yticks([p.y_of(t) + 0.5 for t in p.tids])
    ax.set_yticklabels([_safe(ext.threads[t][0]) for t in p.tids], fontsize=10)
    ax.tick_params(axis="y", length=0)
    ax.set_xlim(p.x0, p.end / p.scale)
    ax.grid(axis="x", color="#dddddd", lw=0.5, zorder=1)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    xlabel = (f"scheduling steps (logical time; events of one step are {cpu_ns / 1000:g} step "
              "apart)" if info.time == "steps" else
              f"virtual time, {p.unit} (CPU events stretched to ≥ {cpu_ns} ns each; "
              f"drift ≤ {info.max_drift_ns / 1000:g} µs)")
    head = _safe(title or getattr(ext, "title", "wddmemu trace"), 200)
    nviol = bins.mark_counts.get("violation", 0)
    ax.set_title(f"{head} — {info.events} events"
                 + (f", {nviol} violation{'s' if nviol != 1 else ''}" if nviol else ""),
                 fontsize=11, loc="left", pad=12)
    return xlabel


def _draw_legend(p: _Plot, bins: _Bins, legend_marks: dict[str, Any], patch: Any) -> int:
    """The legend beside the lanes: colours actually drawn, most frequent first (24 at most),
    then the markers. Returns its number of columns (the figure's right margin follows)."""
    labs = sorted(bins.labels, key=lambda k: (-bins.labels[k], k))[:24]
    handles = [patch(facecolor=colour(lab), edgecolor="#9e9e9e" if lab == "wait" else "none",
                     hatch="///" if lab == "wait" else None, label=_safe(lab)) for lab in labs]
    handles += [h for h in legend_marks.values()]
    names = [_safe(lab) for lab in labs] + list(legend_marks)
    rows = max(4, int((0.55 * p.nl + 0.4) / 0.16))  # legend rows that fit beside the lanes
    ncol = 1 if len(names) <= rows else 2
    if handles:
        p.ax.legend(handles, names, loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8,
                    frameon=False, handlelength=1.4, ncol=ncol, columnspacing=0.8)
    return ncol


def _draw_counters(p: _Plot, bins: _Bins, max_n_locator: Any) -> None:
    """The bottom panel: each counter (queue depth, DMA buffers in flight) as a step line
    that holds its last value from its first sample on."""
    axc = p.axc
    for name, series in sorted(bins.counters.items()):
        xs, ys = [], []
        last = 0
        for i, v in enumerate(series):
            if v is not None:
                last = v
            elif not xs:
                continue
            xs.append(p.x0 + i * p.bw)
            ys.append(last)
        if xs:
            axc.step(xs, ys, where="post", lw=1.1, label=_safe(name))
    axc.set_ylim(bottom=0, top=max(1, max((v for ser in bins.counters.values()
                                          for v in ser if v is not None), default=1)) + 0.5)
    axc.yaxis.set_major_locator(max_n_locator(integer=True, nbins=5))
    axc.set_ylabel("depth", fontsize=9)
    axc.grid(color="#dddddd", lw=0.5)
    axc.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, frameon=False)
    for side in ("top", "right"):
        axc.spines[side].set_visible(False)
