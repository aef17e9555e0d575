"""Reading trace logs from Python: what ``wddmemu trace`` does, as functions.

A trace is the JSON-lines file ``wddmemu run … --trace FILE.jsonl`` writes (docs/trace.md)::

    from wddmemu import trace

    for line, event in trace.iter_events("t.jsonl"):       # every event, streaming
        ...
    s = trace.summarize("t.jsonl")                           # wddmemu trace summary
    print(s.as_dict()["violations"])
    trace.export_chrome("t.jsonl", "t.json")                 # load t.json in Perfetto
    trace.plot_png("t.jsonl", "t.png")                       # needs matplotlib

Every reader raises :class:`TraceFormatError` (``.path``, ``.line``, ``.message``; ``str(e)``
is one line) for a missing, empty or malformed file, and never imports or runs anything the
file names. Another output format plugs in as a :class:`Sink` of :class:`TimelineBuilder`;
fed an event whose field has the wrong kind, its ``feed`` raises :class:`FieldError`
(``field 'ddi' is a list, not a string``), which :func:`feed_events` turns into a
:class:`TraceFormatError` at that line.
"""

from __future__ import annotations

from ._trace_chrome import export_chrome
from ._trace_plot import PlotUnavailable, plot_png
from ._trace_read import FieldError, TraceFormatError, event_fields, feed_events, iter_events
from ._trace_summary import TraceSummary, render_summary, summarize
from ._trace_timeline import Sink, TimelineBuilder, TimelineInfo

__all__ = [
    "FieldError",
    "PlotUnavailable",
    "Sink",
    "TimelineBuilder",
    "TimelineInfo",
    "TraceFormatError",
    "TraceSummary",
    "event_fields",
    "export_chrome",
    "feed_events",
    "iter_events",
    "plot_png",
    "render_summary",
    "summarize",
]
