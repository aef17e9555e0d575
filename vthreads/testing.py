"""Helpers for tests of code that runs on vthreads.

:func:`capture_events` is to vthreads what ``structlog.testing.capture_logs`` is to structlog,
without touching structlog's global configuration: every run that *starts* inside the block is
traced (whatever its ``trace=`` argument says), and each of its events is appended, as a dict,
to the list the block yields::

    from vthreads.testing import capture_events

    with capture_events() as events:
        Engine("fifo", context={"scenario": "unit"}).run(main)
    assert [e["event"] for e in events][:2] == ["run.start", "spawn"]

Each dict is exactly what the trace line would be rendered from: ``step, t, thread, event``
first, the event's own fields, then the run context (``scenario, seed, strategy, backend``), in
that order; values are not JSON-normalised (a tuple stays a tuple). Blocks nest: an inner run
is seen by every enclosing block.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ._trace import _captures

__all__ = ["capture_events"]


@contextmanager
def capture_events() -> Iterator[list[dict[str, Any]]]:
    """Collect the trace events of every run started inside the ``with`` block."""
    events: list[dict[str, Any]] = []
    token = _captures.set((*_captures.get(), events))
    try:
        yield events
    finally:
        _captures.reset(token)
