"""The trace log: each run builds its own chain of structlog processors; structlog's global
configuration is never touched.

Every event an emulated layer or the scheduler logs becomes one JSON line (orjson)::

    {"step":12,"t":0,"thread":"app","event":"ddi.enter", ...fields...,
     "scenario":"dynamic-vb-ring","seed":7,"strategy":"pct","backend":"asyncio"}

``step``, ``t`` and ``thread`` come from the engine at the call; the run context (``scenario``,
``seed``, ``strategy``, ``backend`` and whatever else ``Engine(context=...)`` names) is added by
the first processor. There are no wall-clock fields. The schema is documented in
``docs/trace.md``.

Why not structlog's global ``configure``: a library that configures structlog replaces the host
application's logging. The sink instead runs its own list of processors (structlog's protocol,
its ``JSONRenderer``), every setting given explicitly, so nothing the host configures changes a
trace byte and nothing here changes the host's logs. It does not go through a structlog bound
logger: its ``BytesLogger`` flushes the file after every line, which made tracing cost ~3× a
run; :class:`TraceSink` buffers whole lines instead.

Processors are plain callables ``(logger, method_name, event_dict) -> event_dict``. The engine
builds each event dict once; subscribers get that dict, and the sink passes it through the chain
below. :func:`vthreads.testing.capture_events` adds one processor that keeps a copy of every
event dict of the runs inside it (the dict the JSON line is rendered from).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import IO, Any

import orjson
import structlog

#: keys that lead every line, in this order; the run context trails it
HEAD_KEYS = ("step", "t", "thread", "event")
CONTEXT_KEYS = ("scenario", "seed", "strategy", "backend")
#: the keys of a ``sched`` event, in the engine's order (TraceSink.write_sched)
SCHED_KEYS = ("step", "t", "thread", "event", "next", "runnable")
#: the events of one string field that TraceSink.write_name renders without an event dict,
#: with that field's name: the engine's and the mutexes' (~40 % of a dynamic-vb-ring trace's
#: lines that are not ``sched``)
ONE_FIELD = {"mutex.acquire": "mutex", "mutex.release": "mutex", "block": "waits",
             "unblock": "waited"}
#: write_name's rendered line ends kept at most: a ``block`` line names its wait, and a wait
#: may name a fence, so their number grows with the run; past this the cache starts again
ONE_TAILS_MAX = 1024

Processor = Callable[[Any, str, dict[str, Any]], Any]

#: the event lists of the active :func:`vthreads.testing.capture_events` blocks, innermost last
_captures: ContextVar[tuple[list[dict[str, Any]], ...]] = ContextVar(
    "vthreads_captures", default=()
)


class RunContext:
    """Processor: add the run context to an event, without overriding the event's own fields
    (``run.start`` carries the strategy's own ``seed``/``strategy``, which win)."""

    __slots__ = ("_items",)

    def __init__(self, context: Mapping[str, Any]) -> None:
        self._items = tuple(context.items())

    def __call__(self, logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        for k, v in self._items:
            event_dict.setdefault(k, v)
        return event_dict


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


class Capture:
    """Processor: append a copy of each event dict to ``events`` (for
    :func:`vthreads.testing.capture_events`)."""

    __slots__ = ("events",)

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events

    def __call__(self, logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        self.events.append(dict(event_dict))
        return event_dict


def _default(obj: Any) -> Any:
    if isinstance(obj, bytes | bytearray | memoryview):
        return bytes(obj).hex()
    if isinstance(obj, set | frozenset):
        return sorted(obj)
    if isinstance(obj, tuple):
        return list(obj)
    return repr(obj)


def _wide(obj: Any) -> Any:
    """``obj`` with every int orjson cannot encode (outside -2**63..2**64-1) as text: decimal
    up to 4,300 digits, hex beyond (``str`` refuses more), and every str that is no UTF-8 (a
    lone surrogate: an argv byte that was no UTF-8, PEP 383) with it escaped (``\\udcff``).
    A driver's value may be any int, a scenario's parameter any str, and tracing never changes
    an outcome (issue 14, sweep H D2)."""
    if type(obj) is int:
        if -(1 << 63) <= obj < 1 << 64:
            return obj
        return str(obj) if obj.bit_length() < 14_000 else hex(obj)
    if isinstance(obj, str):
        return _utf8(obj)
    if isinstance(obj, dict):
        return {_utf8(k) if type(k) is str else str(_wide(k)): _wide(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_wide(v) for v in obj]
    return obj


def _utf8(text: str) -> str:
    """``text``, its lone surrogates escaped when it has any (what orjson refuses)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _json_str(text: Any) -> bytes:
    """``orjson.dumps`` of a name (a thread's, a wait's: the fast lines' fields), a str that
    is no UTF-8 escaped as :func:`_wide` escapes it."""
    try:
        return orjson.dumps(text)
    except orjson.JSONEncodeError:
        return orjson.dumps(_wide(text))


def _dumps(obj: Any, **_: Any) -> bytes:
    try:
        return orjson.dumps(obj, default=_default)
    except orjson.JSONEncodeError:  # a huge int (rare): the slow path, once per such line
        return orjson.dumps(_wide(obj), default=lambda o: _wide(_default(o)))


render_json = structlog.processors.JSONRenderer(serializer=_dumps)


def _check_binary(trace: Any) -> None:
    """Refuse, before the run, a ``trace=`` that is no binary stream: an int failed after the
    run with an AttributeError from inside the sink, ``sys.stdout`` with a TypeError (sweep F
    D7)."""
    if not callable(getattr(trace, "write", None)) or isinstance(trace, io.TextIOBase):
        raise TypeError(f"a trace goes to a path, True (events only) or a binary stream "
                        f"(open(path, 'wb'), sys.stdout.buffer), not {type(trace).__name__}")


#: bytes of trace lines held before they are written out (and flushed) in one write
FLUSH_BYTES = 1 << 16


class TraceSink:
    """The destination of one run's trace: a path (opened, owned, closed here), an open binary
    file (borrowed), ``True`` (events go through the processors but are not stored), or
    ``None``/``False`` (off). Active :func:`~vthreads.testing.capture_events` blocks turn it on
    too.

    Lines are rendered as the structlog chain above renders them, but written in blocks: they
    collect in a buffer that is written and flushed when it holds :data:`FLUSH_BYTES`, when the
    run ends, and when it fails (the engine closes the sink in a ``finally``). Only whole lines
    are ever written, so a killed run leaves complete lines up to its last flush: at most the
    last ~64 KiB of events are missing (docs/trace.md). The run context never changes within a
    run, so its JSON tail is serialised once; an event with a field of the same name as a
    context key (``run.start``'s own ``seed``) takes the full chain."""

    def __init__(self, trace: str | Path | IO[bytes] | bool | None) -> None:
        self._requested = trace not in (None, False)
        self.enabled = self._requested
        self._own = False
        self._file: IO[bytes] | None = None
        self._log: Any = None
        self._procs: list[Processor] = []
        self._fast = False
        self._tail = b"}"
        self._tail_nl = b"}\n"
        self._context_keys: frozenset[str] = frozenset()
        # write's test that an event names no context key: the first four keys, padded (see
        # start), and the rest as a set, or None when there are at most four
        self._probe: tuple[Any, Any, Any, Any] = (None, None, None, None)
        self._more: frozenset[str] | None = None
        self._buf = bytearray()
        #: the file is a pipe whose reader left: the rest of the trace is dropped (flush)
        self.reader_gone = False
        # the line heads' ``,"t":CLOCK`` part, for the clock value it was rendered for: the
        # clock moves far less often than the step, and formatting it was a quarter of a head
        self._t = -1
        self._t_part = b""
        # the ``{"step":STEP`` part of the last fast line's head, for that step: half the lines
        # of a trace share the step of the line before (the mutex lines after a ``sched``)
        self._step = -1
        self._step_part = b""
        # write_sched's rendered line ends, by (thread, next, runnable): a run has few of them
        self._sched_tails: dict[tuple[str | None, str, int], bytes] = {}
        # write_name's, by (thread, event, value), at most ONE_TAILS_MAX of them, and their
        # parts before the value, by (thread, event): a run has few of those
        self._one_tails: dict[tuple[str | None, str, str], bytes] = {}
        self._one_prefixes: dict[tuple[str | None, str], bytes] = {}
        if isinstance(trace, str | Path):
            self._file = open(trace, "wb")  # noqa: SIM115 - closed in close()
            self._own = True
        elif trace is not None and not isinstance(trace, bool):
            _check_binary(trace)
            self._file = trace

    def start(self, context: Mapping[str, Any]) -> bool:
        """Build the run's processor chain (captures are looked up *now*, when the run starts);
        returns whether events are to be written at all."""
        captures = _captures.get()
        self.enabled = self._requested or bool(captures)
        if self.enabled:
            procs: list[Processor] = [RunContext(context), order_fields]
            procs.extend(Capture(events) for events in captures)
            self._procs = procs
            # the fast path: a file, no captures; the context's tail as order_fields puts it
            # (keys it does not know first, in context order, then CONTEXT_KEYS in that order)
            self._fast = self._file is not None and not captures
            tail = {k: v for k, v in context.items() if k not in CONTEXT_KEYS}
            tail.update((k, context[k]) for k in CONTEXT_KEYS if k in context)
            self._context_keys = frozenset(context)
            # padded with the first key again (a str keeps the dict's lookup on its fast
            # path), or with None when there is none: no event's key is None
            keys = tuple(context)
            self._probe = (keys + keys[:1] * 4 + (None,) * 4)[:4]
            self._more = frozenset(keys[4:]) or None
            self._tail = b"," + _dumps(tail)[1:] if tail else b"}"
            self._tail_nl = self._tail + b"\n"
            self._sched_tails.clear()  # they end in the tail
            self._one_tails.clear()
        return self.enabled

    def write(self, event: dict[str, Any]) -> None:
        """One event (the engine's dict: ``step, t, thread, event, **fields``; not changed)."""
        buf = self._buf
        # four ``in`` tests for the run context's (usually four) keys, where
        # ``event.keys().isdisjoint(keys)`` made a set iterator: ~390 instructions less a
        # dict line, 14.03 M -> 13.99 M a traced frame (callgrind). A set's own isdisjoint
        # would walk every key of the event through the set
        k0, k1, k2, k3 = self._probe
        if (self._fast and k0 not in event and k1 not in event and k2 not in event
                and k3 not in event
                and (self._more is None or event.keys().isdisjoint(self._more))):
            # _dumps, inlined, and first without ``default``: a keyword argument is ~15 % of
            # orjson's call on a trace line, and it only serves a field orjson cannot encode
            # (bytes, a set, an object), which none of the built-in layers' events has. Such
            # a line raises here and takes _dumps, which renders it as before: same bytes
            try:
                line = orjson.dumps(event)
            except orjson.JSONEncodeError:
                line = _dumps(event)
            # the line, its closing brace replaced by the context's tail, the brace and the
            # newline: ``del buf[-1]`` only shortens the buffer, where ``line[:-1]`` copies the
            # line and ``buf[-1:] = tail`` moves bytes (measured: 0.8x and 0.5x as fast)
            buf += line
            del buf[-1]
            buf += self._tail_nl
        else:
            ev = dict(event)
            for proc in self._procs:
                ev = proc(None, "info", ev)
            if self._file is None:
                return
            buf += render_json(None, "info", ev)
            buf += b"\n"
        if len(buf) >= FLUSH_BYTES:
            self.flush()

    def sched_fast(self) -> bool:
        """Whether :meth:`write_sched` may render a ``sched`` line itself: the fast path (a
        file, no capture) and no context key among the event's."""
        return self._fast and self._context_keys.isdisjoint(SCHED_KEYS)

    def write_sched(self, step: int, t: int, thread: str | None, nxt: str, runnable: int) -> None:
        """The line :meth:`write` makes of ``{"step", "t", "thread", "event": "sched", "next",
        "runnable"}``, without building that dict: ``sched`` is ~40 % of a trace's lines and
        nobody but the file wants it (the engine asks :meth:`sched_fast` and that no
        subscriber takes ``sched`` first). Same bytes: the ints are orjson's decimal (the clock
        never leaves 63 bits), the names are orjson's strings; all after the clock is
        cached per (thread, next, runnable), set when the run starts (the tail is fixed), and
        the clock's part for the last clock value written."""
        rest = self._sched_tails.get((thread, nxt, runnable))
        if rest is None:  # the line after the clock, rendered once per (thread, next, runnable)
            rest = self._sched_tails[thread, nxt, runnable] = (
                b',"thread":%b,"event":"sched","next":%b,"runnable":%d%b' % (
                    _json_str(thread), _json_str(nxt), runnable, self._tail_nl))
        if t != self._t:
            self._t = t
            self._t_part = b',"t":%d' % t
        # a sched line is the first of its step (Engine.point counts the step, then chooses)
        self._step = step
        part = self._step_part = b'{"step":%d' % step
        buf = self._buf
        buf += part
        buf += self._t_part
        buf += rest
        if len(buf) >= FLUSH_BYTES:
            self.flush()

    def one_fast(self, key: str) -> bool:
        """Whether :meth:`write_name` may render an event whose one field is ``key``: the fast
        path, and neither the head keys nor ``key`` among the context's."""
        return (self._fast and self._context_keys.isdisjoint(HEAD_KEYS)
                and key not in self._context_keys)

    def write_name(self, step: int, t: int, thread: Any, event: str, value: str) -> None:
        """The line :meth:`write` makes of ``{"step", "t", "thread", "event", key: value}``
        for an event of :data:`ONE_FIELD` (``key`` is its field there), without building that
        dict: the mutexes' and the waits' lines, a third of a trace's. The caller (the
        engine's ``_emit_one``, :func:`vthreads._api.log_one`) has asked :meth:`one_fast`,
        that no subscriber takes ``event``, and that ``value`` is a ``str``; ``t`` is the
        engine's clock, which never leaves 63 bits (``MAX_TIME``), so ``%d`` writes what
        orjson would. ``thread`` is the emitting thread (its ``name`` is written) or None.
        Same bytes as :meth:`write_sched`'s are: ``%d`` for the ints, orjson for the strings,
        everything after the clock cached per (thread's name, event, value), at most
        :data:`ONE_TAILS_MAX` of them."""
        thread = thread.name if thread is not None else None
        tails = self._one_tails
        rest = tails.get((thread, event, value))
        if rest is None:
            rest = self._one_tail(thread, event, value)
        if t != self._t:
            self._t = t
            self._t_part = b',"t":%d' % t
        buf = self._buf
        if step != self._step:
            self._step = step
            self._step_part = b'{"step":%d' % step
        buf += self._step_part
        buf += self._t_part
        buf += rest
        if len(buf) >= FLUSH_BYTES:
            self.flush()

    def _one_tail(self, thread: str | None, event: str, value: str) -> bytes:
        """write_name's line end for (thread, event, value), rendered and kept. Its part up to
        the value is kept per (thread, event) apart: a ``block`` line's wait often names a
        fence or a time, so most of those values come once, and the prefix is what repeats."""
        tails = self._one_tails
        if len(tails) >= ONE_TAILS_MAX:
            tails.clear()
        prefix = self._one_prefixes.get((thread, event))
        if prefix is None:
            prefix = self._one_prefixes[thread, event] = b',"thread":%b,"event":%b,"%b":' % (
                _json_str(thread), orjson.dumps(event), ONE_FIELD[event].encode())
        rest = tails[thread, event, value] = prefix + _json_str(value) + self._tail_nl
        return rest

    def flush(self) -> None:
        """Write the held lines out and flush the file. A pipe whose reader left (``--trace
        /dev/stdout | head``) takes no more: the rest is dropped and the run goes on, since
        tracing never changes an outcome (a write error of any other kind is raised)."""
        if self._file is not None and self._buf and not self.reader_gone:
            try:
                self._file.write(self._buf)
                self._file.flush()
            except BrokenPipeError:
                self.reader_gone = True
        self._buf.clear()

    def close(self) -> None:
        if self._file is not None:
            try:
                self.flush()
            finally:
                if self._own:
                    try:
                        self._file.close()
                    except BrokenPipeError:  # what the file's own buffer still held
                        if not self.reader_gone:
                            raise
        self._file = None
