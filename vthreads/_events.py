"""The engine's trace-event side: who listens, which events are built, and the fan-out.

An event of a run goes to its *subscribers* (checkers, ``Engine.subscribe``) and to the trace
*sink* (a file, a capture, or nothing). What makes this a job of its own is the promise that an
event nobody listens to costs one set lookup and its fields are never built: which names are
wanted is settled once, when the run starts, into a few flags the hot paths test
(``_ev_sched``, ``_ev_block``, ``_ev_clock``) and the set ``_wanted``.

:class:`EngineEvents` is a base class of :class:`vthreads._engine.Engine`, not an object the
engine holds: ``self._emit`` and the flags are read at every scheduling point, and a delegate
would add an attribute lookup to each (see docs/performance.md, "Engine.emit is Engine._emit").
It keeps its own state (set up by :meth:`EngineEvents._init_events`) and reads only the
engine's ``step``, ``clock`` and ``_started``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from ._errors import EngineUsageError
from ._threads import _thread_var
from ._trace import ONE_FIELD, TraceSink

Subscriber = Callable[[dict[str, Any]], None]


class EngineEvents:
    """Subscriptions, the wanted-event set and event building for one run of an engine."""

    # the engine's, read here
    step: int
    clock: int
    _started: bool

    def _init_events(self, trace: str | Path | IO[bytes] | bool | None,
                     context: dict[str, Any]) -> None:
        """Set up the sink for ``trace`` and an empty subscription list; ``context`` is bound
        into every trace line."""
        self._sink = TraceSink(trace)
        self._context = context
        # (fn, the event names it takes or None for all), in subscription order
        self._subscribers: list[tuple[Subscriber, frozenset[str] | None]] = []
        # _tracing: events are built at all (a trace is written, captured, or subscribed to);
        # _log_on: they go to the sink; _all: every event is built (sink or a catch-all
        # subscriber), else only the names in _wanted. Settled when the run starts, so that an
        # event nobody listens to costs one set lookup and its fields are never built.
        self._log_on = False
        self._tracing = False
        self._all = False
        self._wanted: frozenset[str] = frozenset()
        self._ev_sched = self._ev_block = self._ev_clock = self._sched_raw = False
        self._raw_one: frozenset[str] = frozenset()

    def _settle_wanted(self) -> None:
        """Fix, for the run about to start, which events are built (after ``_log_on`` is set)."""
        names: set[str] = set()
        catch_all = self._log_on
        for _fn, events in self._subscribers:
            if events is None:
                catch_all = True
            else:
                names |= events
        self._all = catch_all
        self._wanted = frozenset(names)
        self._tracing = catch_all or bool(names)
        self._ev_sched = self.wants("sched")
        # sched events straight to the file when no subscriber takes them (see write_sched)
        self._sched_raw = (self._ev_sched and self._log_on and self._sink.sched_fast()
                           and not any(ev is None or "sched" in ev
                                       for _fn, ev in self._subscribers))
        # ONE_FIELD's events straight to the file when no subscriber takes them (write_name)
        self._raw_one = frozenset(
            name for name, key in ONE_FIELD.items()
            if self._log_on and self._sink.one_fast(key)
            and not any(ev is None or name in ev for _fn, ev in self._subscribers))
        self._ev_block = self.wants("block") or self.wants("unblock")
        self._ev_clock = self.wants("clock")

    def _emit(self, event: str, **fields: Any) -> None:
        """Log one trace event from emulated code (see :func:`vthreads.log`): built only when
        a trace is written or captured or a subscriber takes ``event``."""
        # built once: subscribers get this dict, the sink renders it (after the subscribers)
        if self._all or event in self._wanted:
            t = _thread_var.get(None)
            ev = {"step": self.step, "t": self.clock, "thread": t.name if t else None,
                  "event": event, **fields}
            for fn, events in self._subscribers:
                if events is None or event in events:
                    fn(ev)
            if self._log_on:
                self._sink.write(ev)

    def _event(self, event: str, fields: dict[str, Any]) -> None:
        """:meth:`_emit`'s body for an event the caller found wanted (:func:`vthreads.log`),
        its fields as the caller's keyword dict: no second test, no copy of the keywords."""
        t = _thread_var.get(None)
        ev = {"step": self.step, "t": self.clock, "thread": t.name if t else None,
              "event": event, **fields}
        for fn, events in self._subscribers:
            if events is None or event in events:
                fn(ev)
        if self._log_on:
            self._sink.write(ev)

    def _emit_one(self, event: str, value: Any) -> None:
        """``_emit(event, **{ONE_FIELD[event]: value})`` for an event of :data:`ONE_FIELD`
        (the engine's ``block``/``unblock``): a ``str`` nobody subscribes to goes straight to
        :meth:`TraceSink.write_name`, anything else the way :meth:`_event` takes it (a dict,
        the subscribers, the chain). :func:`vthreads._api.log_one` is its twin for the
        mutexes, one call shorter."""
        # _raw_one is empty unless a file is written (_all is then true), so a name in it is
        # wanted: one test for the traced case, and the untraced one tests only _all and
        # _wanted, as _emit does. No clock test: the clock never leaves 63 bits (MAX_TIME),
        # so write_name's %d and orjson's int agree on it
        if self._all:
            if event in self._raw_one and type(value) is str:
                self._sink.write_name(self.step, self.clock, _thread_var.get(None), event,
                                      value)
                return
        elif event not in self._wanted:
            return
        self._event(event, {ONE_FIELD[event]: value})

    # the public name of _emit, not a wrapper around it: a wrapper would repeat the test and
    # copy the keyword arguments on every event of the run
    emit = _emit

    def wants(self, event: str) -> bool:
        """Whether event ``event`` is built at all in this run: a trace is written or captured,
        or a subscriber takes that name. Guard the building of costly fields with it."""
        return self._all or event in self._wanted

    def subscribe(self, fn: Subscriber, events: Iterable[str] | None = None) -> None:
        """Call ``fn(event)`` for every event of the run named in ``events`` (every event when
        ``None``), in order, whether or not a trace file is written. Checkers watch runs this
        way; naming the events keeps the others unbuilt when no trace is written. Subscribe
        before :meth:`run`."""
        if self._started:
            raise EngineUsageError("subscribe before the run starts")
        self._subscribers.append((fn, None if events is None else frozenset(events)))
        self._tracing = True

    @property
    def tracing(self) -> bool:
        """Whether any event is built in this run (see :meth:`wants` for one event)."""
        return self._tracing
