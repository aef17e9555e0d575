"""``wddmemu trace``: summary, export and plot of a trace log (JSON lines).

The lead attaches the group to the main CLI (``cli.add_command(trace)`` in ``runtime/_cli.py``)::

    wddmemu trace summary run.jsonl [--json]
    wddmemu trace export run.jsonl --chrome run.json [--time virtual|steps] [--cpu-ns N]
    wddmemu trace plot run.jsonl --png run.png [--time virtual|steps] [--cpu-ns N] [--width IN]
                                               [--lanes N]

All three stream the trace (bounded memory for any length). Bad input — a missing or empty file,
a malformed line (reported as ``FILE:LINE: what``), an unwritable output, matplotlib missing for
``plot``, a pipe for ``plot`` (it reads the trace twice), running out of memory — raises
:class:`TraceInputError`, a :class:`click.ClickException` with exit code 2, which the main entry
point prints as one line (``wddmemu: error: …``).
"""

from __future__ import annotations

import contextlib
import sys

import click

from ._errors import SpecError
from ._files import check_output, stdout_may_close
from ._trace_plot import DEFAULT_LANES, MAX_LANES  # (matplotlib is imported by a plot only)
from ._trace_read import TraceFormatError, dumps, iter_events
from ._trace_timeline import DEFAULT_CPU_NS, MAX_CPU_NS, MIN_CPU_NS, TIME_MODES


class TraceInputError(click.ClickException):
    """Bad input to a ``trace`` command: one line, exit code 2."""

    exit_code = 2


def _writable(path: str, what: str, reads: str) -> None:
    """``path`` (``-``: stdout) can be written and is not the trace ``reads`` (``trace export
    T --chrome T`` replaced the trace: sweep H D5), or one line and exit 2
    (``check_output``)."""
    if path != "-":
        try:
            check_output(path, what, reads=(reads,))
        except SpecError as e:
            raise TraceInputError(str(e)) from None


def _readable(path: str) -> None:
    """Fail early (one line, exit 2) if ``path`` is missing, empty or starts malformed."""
    events = iter_events(path)
    try:
        next(events)
    except TraceFormatError as e:
        raise TraceInputError(str(e)) from None
    finally:
        events.close()


def _time_options(fn: click.decorators.FC) -> click.decorators.FC:
    fn = click.option(
        "--cpu-ns", default=DEFAULT_CPU_NS, show_default=True, metavar="NS",
        type=click.IntRange(MIN_CPU_NS, MAX_CPU_NS),
        help="least timeline time one event takes (CPU work costs no virtual time), "
        f"{MIN_CPU_NS}..{MAX_CPU_NS:,}",
    )(fn)
    fn = click.option(
        "--time", "time_mode", type=click.Choice(TIME_MODES), default="virtual",
        show_default=True,
        help="timestamps from virtual time (stretched so CPU work shows) or from scheduling "
        "steps (1 µs = 1 step)",
    )(fn)
    return fn


@click.group("trace", context_settings={"help_option_names": ["-h", "--help"]})
def trace() -> None:
    """Read a trace log (wddmemu run … --trace FILE.jsonl): summary table, Chrome/Perfetto
    timeline, PNG picture."""


@trace.command("summary", short_help="tables: DDI calls, lock path, syncs, DMA, fence "
               "latency, violations")
@click.argument("file", metavar="FILE.jsonl")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON instead")
def summary_cmd(file: str, as_json: bool) -> int:
    """DDI calls per function and thread with their results, LockAsync/Rename/Unlock counts,
    syncs by reason, command buffers and DMA buffers, fence latency, violations."""
    from ._trace_summary import render_summary, summarize

    try:
        s = summarize(file)
    except TraceFormatError as e:
        raise TraceInputError(str(e)) from None
    except MemoryError:
        raise TraceInputError(f"out of memory summarising {file}") from None
    with stdout_may_close():  # `trace summary FILE --json | head -1` is exit 0
        if as_json:
            import orjson

            # dumps: a value orjson refuses (a sum past 64 bits, a run.start field nested
            # deeper than orjson follows) is written as text (docs/trace.md)
            sys.stdout.buffer.write(dumps(s.as_dict(), option=orjson.OPT_INDENT_2) + b"\n")
        else:
            from ._console import command_console  # run's: off a terminal, no wrapping

            render_summary(s, command_console(), source=file)
    return 0


@trace.command("export", short_help="timeline as Chrome trace JSON (Perfetto, "
               "chrome://tracing)")
@click.argument("file", metavar="FILE.jsonl")
@click.option("--chrome", "chrome", required=True, metavar="OUT.json",
              help="write Chrome Trace Event JSON here (open it in ui.perfetto.dev or "
              "chrome://tracing); '-' for stdout")
@_time_options
def export_cmd(file: str, chrome: str, time_mode: str, cpu_ns: int) -> int:
    """Convert the trace into a timeline: one track per emulated thread, slices for DDI calls,
    callbacks, waits and DMA buffers, flow arrows (enqueue → execution, pfnRenderCb → DMA),
    instants for renames, syncs and violations, counters for queue depth and DMA in flight."""
    from ._trace_chrome import export_chrome

    _writable(chrome, "Chrome trace", file)
    try:
        # --chrome - | head: the reader had what it wanted (a file's errors stay errors)
        with stdout_may_close() if chrome == "-" else contextlib.nullcontext():
            info = export_chrome(file, chrome, time=time_mode, cpu_ns=cpu_ns)
    except TraceFormatError as e:
        raise TraceInputError(str(e)) from None
    except OSError as e:
        raise TraceInputError(f"cannot write {chrome}: {e.strerror or e}") from None
    except MemoryError:  # not a bug of ours to report as one (exit 3): the machine's limit
        raise TraceInputError(f"out of memory exporting {file} to {chrome}") from None
    if chrome != "-":
        click.echo(
            f"{chrome}: {info.slices} slices, {info.flows} flows, {info.instants} instants, "
            f"{info.counters} counter samples from {info.events} events "
            f"(time: {info.time}); open it in https://ui.perfetto.dev", err=True,
        )
    return 0


@trace.command("plot", short_help="timeline as a PNG picture (needs wddmemu[plot])")
@click.argument("file", metavar="FILE.jsonl")
@click.option("--png", "png", required=True, metavar="OUT.png", help="write the picture here")
@_time_options
@click.option("--width", default=16.0, show_default=True, type=float,
              help="picture width in inches (100 dpi)")
@click.option("--title", default=None, help="title (default: scenario, strategy, seed)")
@click.option("--lanes", default=DEFAULT_LANES, show_default=True, type=int, metavar="N",
              help=f"draw the N busiest threads (1..{MAX_LANES}); a note says how many were "
              "left out")
def plot_cmd(file: str, png: str, time_mode: str, cpu_ns: int, width: float,
             title: str | None, lanes: int) -> int:
    """Draw the timeline as a PNG: a lane per thread, a colour per DDI, DMA buffers on the GPU
    lane, markers for renames, syncs and violations, queue depth below."""
    from ._trace_plot import PlotUnavailable, check_plot_options, check_rereadable, plot_png

    try:  # the API's own checks (click's FloatRange lets nan through)
        check_plot_options(png, width=width, title=title, lanes=lanes, cli=True)
        check_rereadable(file)  # before _readable: its read would use a pipe up
    except TraceFormatError as e:
        raise TraceInputError(str(e)) from None
    _writable(png, "PNG", file)
    _readable(file)  # a missing or empty trace is reported before a missing matplotlib
    try:
        plot_png(file, png, time=time_mode, cpu_ns=cpu_ns, width=width, title=title,
                 lanes=lanes)
    except PlotUnavailable:
        raise TraceInputError(
            "plot needs matplotlib: install wddmemu[plot] (pip install 'wddmemu[plot]')"
        ) from None
    except TraceFormatError as e:
        raise TraceInputError(str(e)) from None
    except OSError as e:
        raise TraceInputError(str(e)) from None
    except MemoryError:  # not a bug of ours to report as one (exit 3): the machine's limit
        raise TraceInputError(f"out of memory drawing {png}: draw fewer lanes (--lanes) or a "
                              "narrower picture (--width)") from None
    click.echo(f"{png}: timeline of {file}", err=True)
    return 0
