"""The engine's core loop: emulated threads on anyio, one running at a time.

Every emulated thread is an anyio task. A thread runs only while it holds the *baton*; at each
scheduling point the running thread asks the strategy who runs next, and if that is someone else
it hands the baton over (wakes the other's parker) and parks on its own. When the strategy keeps
the current thread, the point returns without touching the event loop — most points are like
that, so they cost a few attribute lookups.

Blocking works the same way: a thread that waits on a mutex, queue, event, condition, join or
timer leaves the ready list, says what it waits for, and hands the baton to a ready thread. When
no thread is ready the virtual clock jumps to the earliest timer (ties in the order the timers were
set: a monotonic counter, as in SimPy); when there is no timer either and a non-daemon thread is
still alive, the run has deadlocked.

The *free* strategy turns all of this off: points become plain checkpoints and parkers are woken
as soon as their thread becomes ready, so the backend's scheduler decides. The engine still keeps
the clock and still detects deadlock (by counting active threads), so the same programs run.
"""

from __future__ import annotations

import traceback
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from functools import partial
from pathlib import Path
from typing import IO, Any

import anyio
import anyio.lowlevel
import sniffio

from ._errors import Divergence, EngineUsageError, WouldBlock, _Abort
from ._hb import Access, Race, RaceDetector, vc_join
from ._results import EngineStatistics, Failure, RunResult, Violation
from ._strategies import Strategy, make_strategy
from ._timers import Timer, TimerHeap
from ._trace import TraceSink

_engine_var: ContextVar[Engine] = ContextVar("wddmemu_engine")
_thread_var: ContextVar[VThread] = ContextVar("wddmemu_thread")

READY, RUNNING, BLOCKED, SLEEPING, FINISHED = "ready", "running", "blocked", "sleeping", "finished"


# --------------------------------------------------------------------------------------------
# Parkers: the one place that touches a backend's low-level task API.
#
# Why not anyio.Event: a handoff is "wake the other thread, park myself", millions of times per
# exploration. anyio.Event builds a backend event object per wait; a bare asyncio future or
# trio's wait_task_rescheduled/reschedule pair does the same job with less machinery, and lets a
# wake arrive *before* the thread parks (a freshly spawned thread may be chosen before its task
# has started).


class _AsyncioParker:
    __slots__ = ("_fut", "_loop")

    def __init__(self) -> None:
        import asyncio

        self._loop = asyncio.get_running_loop()
        self._fut = self._loop.create_future()

    def wake(self) -> None:
        if not self._fut.done():
            self._fut.set_result(None)

    async def park(self) -> None:
        fut = self._fut
        try:
            await fut
        finally:
            self._fut = self._loop.create_future()


class _TrioParker:
    __slots__ = ("_pending", "_task")

    def __init__(self) -> None:
        self._task: Any = None
        self._pending = False

    def wake(self) -> None:
        import trio

        task, self._task = self._task, None
        if task is not None:
            trio.lowlevel.reschedule(task)
        else:
            self._pending = True

    async def park(self) -> None:
        import trio

        if self._pending:
            self._pending = False
            return
        self._task = trio.lowlevel.current_task()

        def abort(_: Any) -> Any:
            self._task = None
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)


# --------------------------------------------------------------------------------------------


class VThread:
    """An emulated thread. ``tid`` is its spawn index (0 for the first thread of the run)."""

    __slots__ = (
        "_joiners",
        "_parker",
        "daemon",
        "name",
        "state",
        "tid",
        "vc",
        "waiting",
    )

    def __init__(self, name: str, tid: int, daemon: bool, parker: Any) -> None:
        self.name = name
        self.tid = tid
        self.daemon = daemon
        self.state = READY
        self.waiting: str | None = None
        self.vc: list[int] = [0] * (tid + 1)
        self.vc[tid] = 1
        self._parker = parker
        self._joiners: list[VThread] = []

    def tick(self) -> None:
        """Advance this thread's own clock component (after a release-type operation)."""
        self.vc[self.tid] += 1

    async def join(self) -> None:
        """Wait until this thread has finished; its whole history happens-before what follows."""
        eng = _engine()
        me = eng.current_thread()
        if me is self:
            raise EngineUsageError(f"thread {self.name} cannot join itself")
        await eng.point("join", op=(self, "join"))
        while self.state != FINISHED:
            self._joiners.append(me)
            await eng._block(me, f"join {self.name}")
        vc_join(me.vc, self.vc)

    def join_nowait(self) -> None:
        """Take the join edge if this thread has finished; raise :class:`WouldBlock`
        otherwise."""
        me = _engine().current_thread()
        if self.state != FINISHED:
            raise WouldBlock(f"thread {self.name} has not finished")
        vc_join(me.vc, self.vc)

    def __repr__(self) -> str:
        return f"<VThread {self.name} tid={self.tid} {self.state}>"


class Engine:
    """Runs a program of emulated threads under a scheduling strategy.

    ``strategy`` is ``"fifo"`` (default), ``"random"``, ``"pct"``, ``"replay"`` (with
    ``decisions``), ``"free"``, or a :class:`~vthreads.Strategy` instance. ``trace`` is a path,
    an open binary file, ``True`` (through the processors, not stored) or ``None``; runs inside
    :func:`vthreads.testing.capture_events` are traced whatever ``trace`` says.
    ``context`` is bound into every trace line (``scenario`` and friends). With
    ``stop_on_violation`` the first rule break ends the run (explorers use it).
    """

    def __init__(
        self,
        strategy: str | Strategy = "fifo",
        *,
        seed: int = 0,
        depth: int = 3,
        pct_steps: int = 1000,
        decisions: Iterable[int] | None = None,
        backend: str = "asyncio",
        step_budget: int = 200_000,
        trace: str | Path | IO[bytes] | bool | None = None,
        context: dict[str, Any] | None = None,
        stop_on_violation: bool = False,
    ) -> None:
        if backend not in ("asyncio", "trio"):
            raise ValueError(f"unknown backend {backend!r}: use asyncio or trio")
        if step_budget < 1:
            raise ValueError("step_budget must be >= 1")
        self.strategy = make_strategy(
            strategy, seed=seed, depth=depth, pct_steps=pct_steps, decisions=decisions
        )
        self.seed = seed
        self.backend = backend
        self.step_budget = step_budget
        self.stop_on_violation = stop_on_violation
        self._controlled = self.strategy.controlled
        self._sink = TraceSink(trace)
        self._context = {"seed": seed, "strategy": self.strategy.name, **(context or {})}
        self._context["backend"] = backend
        # run state
        self.step = 0
        self.clock = 0
        self._threads: list[VThread] = []
        self._ready: list[VThread] = []
        self._current: VThread | None = None
        self._timers = TimerHeap()  # exactly the pending timers (cancel removes)
        self._active = 0  # free mode: threads not blocked/finished
        self._live_nondaemon = 0
        self._decisions: list[int] = []
        self._switches = 0
        self._timers_fired = 0
        self._violations: list[Violation] = []
        self._race_seen: set[tuple[str, str, str]] = set()
        self._failure: Failure | None = None
        self._aborted = False
        self._started = False
        self._tg: Any = None
        self._parker_cls: Any = None
        self._value: Any = None
        # (fn, the event names it takes or None for all), in subscription order
        self._subscribers: list[tuple[Callable[[dict[str, Any]], None], frozenset[str] | None]]
        self._subscribers = []
        # _tracing: events are built at all (a trace is written, captured, or subscribed to);
        # _log_on: they go to the sink; _all: every event is built (sink or a catch-all
        # subscriber), else only the names in _wanted. Settled when the run starts, so that an
        # event nobody listens to costs one set lookup and its fields are never built.
        self._log_on = False
        self._tracing = False
        self._all = False
        self._wanted: frozenset[str] = frozenset()
        self._ev_sched = self._ev_block = self._ev_clock = False
        # DPOR: a strategy that wants to see every step boundary and every operation's
        # footprint carries an ``observer`` (see vthreads._dpor.StepObserver); None costs one
        # test per point
        self._observer: Any = getattr(self.strategy, "observer", None)

    # ---- running -----------------------------------------------------------------------------

    def run(self, main: Callable[..., Awaitable[Any]], *args: Any, name: str = "main") -> RunResult:
        """Run ``main(*args)`` as the first emulated thread, to completion. Synchronous."""
        return anyio.run(partial(self.run_async, main, *args, name=name), backend=self.backend)

    async def run_async(
        self, main: Callable[..., Awaitable[Any]], *args: Any, name: str = "main"
    ) -> RunResult:
        """Same as :meth:`run`, from inside an existing event loop of either backend."""
        if self._started:
            raise EngineUsageError("an Engine runs once: make a new one for the next run")
        self._started = True
        lib = sniffio.current_async_library()
        self._parker_cls = _TrioParker if lib == "trio" else _AsyncioParker
        if lib != self.backend:
            self.backend = self._context["backend"] = lib
        _engine_var.set(self)
        self._log_on = self._sink.start(self._context)
        self._settle_wanted()
        try:
            self._emit("run.start", **self.strategy.describe(), step_budget=self.step_budget)
            async with anyio.create_task_group() as tg:
                self._tg = tg
                first = self._new_thread(name, main, args, daemon=False)
                if self._controlled:
                    self._ready.remove(first)
                first.state = RUNNING
                self._current = first
                self._active = 1
                first._parker.wake()
            if self._failure is None:
                try:
                    self.strategy.finish(self.step)
                except Divergence as e:
                    self._failure = Failure("divergence", str(e), e.step)
            result = self._result()
            self._emit_end(result)
            return result
        finally:
            self._sink.close()

    def _result(self) -> RunResult:
        return RunResult(
            failure=self._failure,
            violations=tuple(self._violations),
            decisions=tuple(self._decisions),
            statistics=self.statistics(),
            threads=tuple((t.name, t.state) for t in self._threads),
            value=self._value,
        )

    def _emit_end(self, result: RunResult) -> None:
        if not self._tracing:
            return
        f = result.failure
        self._emit(
            "run.end",
            ok=result.ok,
            failure=None if f is None else {"kind": f.kind, "message": f.message, "step": f.step},
            violations=[v.rule for v in result.violations],
            decisions=len(result.decisions),
        )

    def statistics(self) -> EngineStatistics:
        """A frozen snapshot of what the scheduler has done so far."""
        return EngineStatistics(
            steps=self.step,
            switches=self._switches,
            decisions=len(self._decisions),
            threads=len(self._threads),
            time_ns=self.clock,
            timers_fired=self._timers_fired,
        )

    @property
    def decisions(self) -> list[int]:
        return self._decisions

    # ---- threads -----------------------------------------------------------------------------

    def _new_thread(
        self, name: str, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...], daemon: bool
    ) -> VThread:
        t = VThread(name, len(self._threads), daemon, self._parker_cls())
        self._threads.append(t)
        if not daemon:
            self._live_nondaemon += 1
        self.strategy.on_spawn(t)
        if self._controlled:
            self._ready.append(t)
        self._tg.start_soon(self._thread_main, t, fn, args, name=f"wddmemu:{name}")
        return t

    def spawn(
        self, name: str, fn: Callable[..., Awaitable[Any]], *args: Any, daemon: bool = False
    ) -> VThread:
        parent = self.current_thread()
        if any(t.name == name for t in self._threads):
            raise EngineUsageError(f"a thread named {name!r} already exists: names are unique")
        t = self._new_thread(name, fn, args, daemon)
        if self._observer is not None:
            self._observer.touch(parent, (t, "spawn"))
        vc_join(t.vc, parent.vc)
        parent.tick()
        if not self._controlled:
            t.state = RUNNING
            self._active += 1
            t._parker.wake()
        self._emit("spawn", child=name, tid=t.tid, daemon=daemon)
        return t

    async def _thread_main(self, t: VThread, fn: Callable[..., Awaitable[Any]], args: Any) -> None:
        _thread_var.set(t)
        try:
            await t._parker.park()
            if self._aborted:
                return
            value = await fn(*args)
            if t.tid == 0:
                self._value = value  # the first thread's return value is the run's
        except _Abort:
            return
        except Exception as e:  # an emulated thread's bug: the run fails, nothing hangs
            if self._aborted:
                return
            tb = traceback.format_exception(e)
            self._fail(
                "exception",
                f"{type(e).__name__}: {e}",
                t,
                {"exception": type(e).__name__, "traceback": "".join(tb)},
            )
            return
        self._on_finish(t)

    def _on_finish(self, t: VThread) -> None:
        if self._observer is not None:
            self._observer.finish(t)
        t.state = FINISHED
        t.waiting = None
        self._emit("finish")
        for j in t._joiners:
            self._make_ready(j)
        t._joiners.clear()
        if not t.daemon:
            self._live_nondaemon -= 1
        if self._live_nondaemon == 0:
            # every non-daemon thread is done: the run is over; daemons (parked) are cancelled
            self._done()
            return
        if self._controlled:
            try:
                nxt = self._pick(None)
            except _Abort:
                return
            self._handoff(nxt)
        else:
            self._active -= 1
            if self._active == 0:
                try:
                    self._idle()
                except _Abort:
                    return

    def _done(self) -> None:
        self._aborted = True
        self._tg.cancel_scope.cancel()

    # ---- the core loop -----------------------------------------------------------------------

    def current_thread(self) -> VThread:
        try:
            return _thread_var.get()
        except LookupError:
            raise EngineUsageError("not inside an emulated thread of this engine") from None

    async def point(self, label: str = "", op: tuple[Any, str] | None = None) -> None:
        """A scheduling point. Returns at once when the strategy keeps the current thread.

        ``op`` is the operation the thread performs right after this point, as ``(object,
        mode)`` (``(cell, "read")``, ``(mutex, "acquire")``…): the thread's next-step footprint,
        which DPOR reads at the choice point (see docs/engine.md)."""
        self._count_step()
        if self._observer is not None:
            self._observer.point(_thread_var.get(), op)
        if not self._controlled:
            await anyio.lowlevel.checkpoint()
            return
        if not self._ready:
            return
        me = self._current
        assert me is not None
        nxt = self._choose(me)
        if nxt is me:
            return
        self._ready.remove(nxt)
        me.state = READY
        self._ready.append(me)
        self._handoff(nxt)
        await self._park(me)

    def _count_step(self) -> None:
        if self._aborted:
            raise _Abort
        self.step += 1
        if self.step > self.step_budget:
            self._fail(
                "step-budget",
                f"step budget of {self.step_budget} exhausted (livelock?); raise step_budget "
                "if the program is just long",
                _thread_var.get(None),
                {},
            )
            raise _Abort

    def _choose(self, current: VThread | None) -> VThread:
        # Only a real choice is a decision: strategies are asked, and the recording grows, only
        # when more than one thread can run. That keeps recordings short and makes replay exact.
        # The runnable set is built once, in the order Strategy.choose documents: the current
        # thread first (when it can go on), then the ready list, longest-ready first.
        ready = self._ready
        if current is None:
            if len(ready) == 1:
                return ready[0]
            runnable = tuple(ready)
        else:
            runnable = (current, *ready)
        try:
            nxt = self.strategy.choose(runnable, self.step, current=current)
        except Divergence as e:
            self._fail("divergence", str(e), current, {})
            raise _Abort from None
        self._decisions.append(nxt.tid)
        if self._ev_sched:
            self._emit("sched", next=nxt.name, runnable=len(runnable))
        return nxt

    def _pick(self, current: VThread | None) -> VThread:
        """Choose the next thread when ``current`` can no longer run (or is None)."""
        while not self._ready:
            self._idle()
        nxt = self._choose(current)
        self._ready.remove(nxt)
        return nxt

    def _handoff(self, nxt: VThread) -> None:
        nxt.state = RUNNING
        nxt.waiting = None
        self._current = nxt
        self._switches += 1
        nxt._parker.wake()

    async def _park(self, me: VThread) -> None:
        await me._parker.park()
        if self._aborted:
            raise _Abort

    async def _block(self, me: VThread, what: str, state: str = BLOCKED) -> None:
        """Park ``me`` until someone calls :meth:`_make_ready` on it (or a timer armed for it
        fires). ``what`` names the wait. Public face: :class:`vthreads.lowlevel.WaitQueue`."""
        if self._aborted:
            raise _Abort
        me.state = state
        me.waiting = what
        if self._observer is not None:
            self._observer.block(me)
        if self._ev_block:
            self._emit("block", waits=what)
        if self._controlled:
            nxt = self._pick(None)
            self._handoff(nxt)
        else:
            self._active -= 1
            if self._active == 0:
                self._idle()
        await self._park(me)
        if self._ev_block:
            self._emit("unblock", waited=what)

    def _make_ready(self, t: VThread) -> None:
        if t.state == FINISHED or t.state == READY or t.state == RUNNING:
            return
        t.state = READY
        if self._controlled:
            self._ready.append(t)
        else:
            t.state = RUNNING
            t.waiting = None
            self._active += 1
            t._parker.wake()

    def _idle(self) -> None:
        """Nothing can run: advance virtual time, or declare a deadlock."""
        if self._timers:  # only pending timers are in the heap: the top is the next wake-up
            when, due = self._timers.pop_due()
            self.clock = when
            if self._observer is not None:
                self._observer.advance(when)
            for timer in due:
                self._timers_fired += 1
                self._make_ready(timer.thread)
            if self._ev_clock:
                self._emit("clock", to=when)
            return
        waits = {t.name: t.waiting or t.state for t in self._threads if t.state != FINISHED}
        desc = "; ".join(f"{n} waits on {w}" for n, w in waits.items())
        self._fail("deadlock", f"no thread can run: {desc}", None, {"waits": waits})
        raise _Abort

    async def sleep(self, ns: int) -> None:
        if ns <= 0:
            await self.point("sleep(0)")
            return
        me = self.current_thread()
        when = self.clock + int(ns)
        self._count_step()
        self._timers.arm(when, me)
        await self._block(me, f"sleep until t={when}", SLEEPING)

    def arm_timer(self, thread: VThread, ns: int) -> Timer:
        """A timer that makes ``thread`` runnable at ``now + ns`` unless cancelled first. For
        timed waits; see :func:`vthreads.lowlevel.arm_timer`."""
        if ns < 0:
            raise ValueError("a timer cannot be armed in the past: ns must be >= 0")
        return self._timers.arm(self.clock + int(ns), thread)

    def touch(self, obj: Any, mode: str) -> None:
        """Record that the running thread performs ``mode`` on ``obj`` without a scheduling
        point (a release, a set, a notify, a nowait queue operation): part of its step's
        footprint for DPOR. A no-op unless the strategy observes footprints."""
        if self._observer is not None:
            self._observer.touch(_thread_var.get(), (obj, mode))

    # ---- failures, violations, races ---------------------------------------------------------

    def _fail(self, kind: str, message: str, t: VThread | None, details: dict[str, Any]) -> None:
        if self._failure is not None:
            return
        self._failure = Failure(kind, message, self.step, t.name if t else None, details)
        if self._tracing:
            self._emit("run.failure", kind=kind, message=message)
        self._done()

    def violation(self, rule: str, message: str, **fields: Any) -> Violation:
        t = _thread_var.get(None)
        v = Violation(rule, message, self.step, t.name if t else "-", self.clock, fields)
        self._violations.append(v)
        if self._tracing:
            self._emit("violation", rule=rule, message=message, **fields)
        if self.stop_on_violation:
            self._fail("violation", f"{rule}: {message}", t, {"rule": rule})
        return v

    def report_race(self, race: Race) -> None:
        a, b = race.first, race.second
        key = (race.cell, a.site, b.site)
        if key in self._race_seen:
            return
        self._race_seen.add(key)
        self.violation(
            "RACE",
            f"{race.kind} race on {race.cell}: {a.thread} at {a.site} (step {a.step}) and "
            f"{b.thread} at {b.site} (step {b.step}) are not ordered by happens-before",
            cell=race.cell,
            first={"thread": a.thread, "site": a.site, "step": a.step, "write": a.write},
            second={"thread": b.thread, "site": b.site, "step": b.step, "write": b.write},
        )

    def access(self, det: RaceDetector, site: str, write: bool) -> None:
        me = self.current_thread()
        acc = Access(me.tid, me.name, me.vc[me.tid], site, self.step, write)
        races = det.on_write(acc, me.vc) if write else det.on_read(acc, me.vc)
        for r in races:
            self.report_race(r)

    # ---- trace -------------------------------------------------------------------------------

    def _settle_wanted(self) -> None:
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
        self._ev_block = self.wants("block") or self.wants("unblock")
        self._ev_clock = self.wants("clock")

    def _emit(self, event: str, **fields: Any) -> None:
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

    def emit(self, event: str, **fields: Any) -> None:
        """Log one trace event from emulated code (see :func:`vthreads.log`)."""
        if self._all or event in self._wanted:
            self._emit(event, **fields)

    def wants(self, event: str) -> bool:
        """Whether event ``event`` is built at all in this run: a trace is written or captured,
        or a subscriber takes that name. Guard the building of costly fields with it."""
        return self._all or event in self._wanted

    def subscribe(self, fn: Callable[[dict[str, Any]], None],
                  events: Iterable[str] | None = None) -> None:
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


# --------------------------------------------------------------------------------------------
# Module-level API for emulated code: finds the running engine through a context variable.


def _engine() -> Engine:
    try:
        return _engine_var.get()
    except LookupError:
        raise EngineUsageError("no engine is running: call this inside Engine.run()") from None


def current_engine() -> Engine:
    """The engine running the calling emulated thread."""
    return _engine()


def spawn(
    name: str, fn: Callable[..., Awaitable[Any]], *args: Any, daemon: bool = False
) -> VThread:
    """Start emulated thread ``name`` running ``fn(*args)``. Not a scheduling point."""
    return _engine().spawn(name, fn, *args, daemon=daemon)


async def checkpoint(label: str = "", op: tuple[Any, str] | None = None) -> None:
    """A scheduling point: another thread may run here. ``op`` names the operation on a shared
    object that follows the point, as ``(object, mode)`` — ``"read"``/``"write"`` of a cell,
    ``"acquire"`` of a mutex, … — so systematic search (DPOR) knows which steps depend on each
    other; a primitive built on :mod:`vthreads.lowlevel` passes it at every point."""
    await _engine().point(label, op)


def touch(obj: Any, mode: str) -> None:
    """Record an operation on a shared object that has no scheduling point of its own (a
    release, a set, a notify, a nowait queue operation): part of the running step's footprint
    for DPOR. Primitives call it; a no-op unless the strategy observes footprints."""
    _engine().touch(obj, mode)


async def sleep(ns: int) -> None:
    """Sleep ``ns`` nanoseconds of virtual time."""
    await _engine().sleep(ns)


def now() -> int:
    """Virtual time in nanoseconds."""
    return _engine().clock


def current_thread() -> VThread:
    """The emulated thread that is running."""
    return _engine().current_thread()


def log(event: str, **fields: Any) -> None:
    """One trace event; ``step``, ``t``, ``thread`` and the run context are added."""
    eng = _engine()
    if eng._all or event in eng._wanted:
        eng._emit(event, **fields)


def tracing(event: str | None = None) -> bool:
    """Whether trace events are built at all, or (given a name) whether ``event`` is: a guard
    for fields that cost to build."""
    eng = _engine()
    if event is None:
        return eng._tracing
    return eng._all or event in eng._wanted


def violation(rule: str, message: str, **fields: Any) -> Violation:
    """Record that ``rule`` broke; the run's result is then not ok."""
    return _engine().violation(rule, message, **fields)
