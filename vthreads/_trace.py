"""The trace log: one structlog pipeline, configured here and nowhere else.

Every event an emulated layer or the scheduler logs becomes one JSON line (orjson)::

    {"step":12,"t":0,"thread":"app","event":"umd.lock_async.enter", ...fields...,
     "scenario":"dynamic-vb-ring","seed":7,"strategy":"pct","backend":"asyncio"}

``step``, ``t`` and ``thread`` come from the engine at the call; the run context is bound with
``structlog.contextvars`` when a run starts, so each emulated thread (an anyio task, which copies
its context at creation) carries it. There are no wall-clock fields. The schema is documented in
``docs/trace.md``.

Processors are plain callables ``(logger, method_name, event_dict) -> event_dict``. Tests that
want the events as dicts wrap the run in ``structlog.testing.capture_logs()``: that swaps the
processor chain below for a capturing one, and a run binds its logger when it starts.

Tracing off costs one no-op method call per event: the run's logger is then a
``make_filtering_bound_logger(CRITICAL)``, whose ``info`` is ``return None``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import IO, Any

import orjson
import structlog

#: keys that lead every line, in this order; the run context trails it
HEAD_KEYS = ("step", "t", "thread", "event")
CONTEXT_KEYS = ("scenario", "seed", "strategy", "backend")

_ON = structlog.make_filtering_bound_logger(logging.DEBUG)
# trace events are logged at info level; "off" filters everything below critical
_OFF = structlog.make_filtering_bound_logger(logging.CRITICAL)


def order_fields(logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Put ``step, t, thread, event`` first and the run context last, so lines read well and
    compare byte for byte."""
    out: dict[str, Any] = {}
    for k in HEAD_KEYS:
        if k in event_dict:
            out[k] = event_dict.pop(k)
    ctx = {k: event_dict.pop(k) for k in CONTEXT_KEYS if k in event_dict}
    out.update(event_dict)
    out.update(ctx)
    return out


def _default(obj: Any) -> Any:
    if isinstance(obj, bytes | bytearray | memoryview):
        return bytes(obj).hex()
    if isinstance(obj, set | frozenset):
        return sorted(obj)
    if isinstance(obj, tuple):
        return list(obj)
    return repr(obj)


def _dumps(obj: Any, **_: Any) -> bytes:
    return orjson.dumps(obj, default=_default)


PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    order_fields,
    structlog.processors.JSONRenderer(serializer=_dumps),
]


def configure() -> None:
    """Install the project's processor chain. Idempotent; called when ``runtime`` is imported."""
    structlog.configure(
        processors=PROCESSORS,
        wrapper_class=_ON,
        logger_factory=structlog.BytesLoggerFactory(),
        cache_logger_on_first_use=False,
    )


class _NullSink:
    """Where events go when tracing is on but no file was named (tests with capture_logs)."""

    def msg(self, message: Any) -> None:
        pass

    log = debug = info = warn = warning = msg


class TraceSink:
    """The destination of one run's trace: a path (opened, owned, closed here), an open binary
    file (borrowed), ``True`` (events go through the processors but are not stored), or
    ``None``/``False`` (off)."""

    def __init__(self, trace: str | Path | IO[bytes] | bool | None) -> None:
        self.enabled = trace not in (None, False)
        self._own = False
        self._file: IO[bytes] | None = None
        if isinstance(trace, str | Path):
            self._file = open(trace, "wb")  # noqa: SIM115 - closed in close()
            self._own = True
        elif trace is not None and not isinstance(trace, bool):
            self._file = trace

    def logger(self) -> Any:
        """A bound logger for the run, resolved against the configuration in force *now*."""
        if not self.enabled:
            return structlog.wrap_logger(_NullSink(), wrapper_class=_OFF).bind()
        target: Any = structlog.BytesLogger(self._file) if self._file is not None else _NullSink()
        return structlog.wrap_logger(target, wrapper_class=_ON).bind()

    def close(self) -> None:
        if self._file is not None:
            self._file.flush()
            if self._own:
                self._file.close()
        self._file = None


configure()
