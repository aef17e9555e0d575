"""The engine's core loop: emulated threads, one running at a time.

A thread runs only while it holds the *baton*; at each scheduling point the running thread asks
the strategy who runs next, and if that is someone else it hands the baton over and parks. When
the strategy keeps the current thread, the point returns without touching the event loop — most
points are like that, so they cost a few attribute lookups.

Blocking works the same way: a thread that waits on a mutex, queue, event, condition, join or
timer leaves the ready list, says what it waits for, and hands the baton to a ready thread. When
no thread is ready the virtual clock jumps to the earliest timer (ties in the order the timers were
set: a monotonic counter, as in SimPy); when there is no timer either and a non-daemon thread is
still alive, the run has deadlocked.

*How* threads run is a runner's job. Under a controlled strategy the trampoline
(:mod:`vthreads._trampoline`) drives the threads' coroutines from one host task, so a handoff is
a generator round trip and a run needs no task group. The *free* strategy turns control off:
threads are anyio tasks (:mod:`vthreads._tasks`), points become plain checkpoints and parkers
are woken as soon as their thread becomes ready, so the backend's scheduler decides. The engine
still keeps the clock and still detects deadlock (by counting active threads), so the same
programs run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from pathlib import Path
from typing import IO, Any

import anyio
import anyio.lowlevel
import sniffio

from ._decisions import Decisions, new_log, widened
from ._errors import Divergence, EngineUsageError, _Abort
from ._events import EngineEvents
from ._hb import Race, vc_join
from ._host import check_backend, run_sync
from ._origin import from_host, unwatch_sigint, watch_sigint
from ._os_threads import guard_os_threads
from ._reports import Reports
from ._results import EngineStatistics, Failure, RunResult, Violation
from ._safe import describe_exception, safe_repr, type_name
from ._strategies import Strategy, check_int, make_strategy
from ._tasks import TaskRunner
from ._threads import (
    BLOCKED,
    FINISHED,
    READY,
    RUNNING,
    SLEEPING,
    VThread,
    _engine_var,
    _thread_var,
)
from ._timers import Timer, TimerHeap
from ._trampoline import (
    TO_HOST,
    Trampoline,
    foreign_await_message,
    foreign_loop_call,
    park_forever,
)

__all__ = ["BLOCKED", "FINISHED", "READY", "RUNNING", "SLEEPING", "Engine", "VThread"]

#: how many times a thread may swallow the engine's abort (call an engine operation again after
#: the run was stopped) before the engine gives up on it: a well-behaved thread meets it once
#: per ``finally`` block that awaits the engine while it unwinds
ABORT_LIMIT = 16
#: the largest virtual time, in ns: the clock is a signed 64-bit int in every trace
MAX_TIME = 2**63 - 1


class Engine(EngineEvents):
    """Runs a program of emulated threads under a scheduling strategy.

    ``strategy`` is ``"fifo"`` (default), ``"random"``, ``"pct"``, ``"replay"`` (with
    ``decisions``), ``"free"``, or a :class:`~vthreads.Strategy` instance. ``trace`` is a path,
    an open binary file, ``True`` (through the processors, not stored) or ``None``; runs inside
    :func:`vthreads.testing.capture_events` are traced whatever ``trace`` says.
    ``context`` is bound into every trace line (``scenario`` and friends). With
    ``stop_on_violation`` the first rule break ends the run (explorers use it)."""

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
        check_backend(backend)
        _check_arguments(step_budget, context)
        self.strategy = make_strategy(
            strategy, seed=seed, depth=depth, pct_steps=pct_steps, decisions=decisions
        )
        self.seed = seed
        self.backend = backend
        self.step_budget = step_budget
        self.stop_on_violation = stop_on_violation
        self._controlled = self.strategy.controlled
        ctx = {"seed": seed, "strategy": self.strategy.name, **(context or {})}
        ctx["backend"] = backend
        self._init_events(trace, ctx)
        # run state
        self.step = 0
        self.clock = 0
        self._threads: list[VThread] = []
        # the run's threads carry it, primitives bind to it (bind_run); it holds nothing alive
        self._token = object()
        self._ready: list[VThread] = []
        self._current: VThread | None = None
        self._timers = TimerHeap()  # exactly the pending timers (cancel removes)
        self._active = 0  # free mode: threads not blocked/finished
        self._live_nondaemon = 0
        self._decisions = new_log()  # one byte a decision (see _decisions.py)
        self._switches = 0
        self._timers_fired = 0
        self._reports = Reports(self)
        #: ``access(detector, site, write)``: race-check one access of the running thread
        #: (:func:`vthreads.lowlevel.record_access`); Reports' bound method, no frame between
        self.access = self._reports.access
        self._aborted = False
        self._swallowed: dict[VThread | None, int] = {}  # aborts raised again, per thread
        self.abandoned: list[VThread] = []  # threads given up on (they swallowed the abort)
        self._closing: VThread | None = None  # the thread whose coroutine the runner closes
        self._interrupted = False  # a real SIGINT arrived during the run (vthreads._origin)
        self._started = False
        self._runner: Trampoline | TaskRunner | None = None
        self._value: Any = None
        # DPOR: a strategy that sees every step boundary and operation's footprint carries an
        # ``observer`` (vthreads._dpor.StepObserver); None costs one test per point
        self._observer: Any = getattr(self.strategy, "observer", None)

    # ---- running -----------------------------------------------------------------------------

    def run(self, main: Callable[..., Awaitable[Any]], *args: Any, name: str = "main") -> RunResult:
        """Run ``main(*args)`` as the first emulated thread, to completion, in a loop of its own."""
        return run_sync(partial(self.run_async, main, *args, name=name), self.backend,
                        "Engine.run()")

    async def run_async(
        self, main: Callable[..., Awaitable[Any]], *args: Any, name: str = "main"
    ) -> RunResult:
        """Same as :meth:`run`, from inside an existing event loop of either backend."""
        if self._started:
            raise EngineUsageError("an Engine runs once: make a new one for the next run")
        self._started = True
        guard_os_threads()  # an OS thread started by emulated code is refused: foreign-thread
        lib = sniffio.current_async_library()
        if lib != self.backend:
            self.backend = self._context["backend"] = lib
        token = _engine_var.set(self)
        self._log_on = self._sink.start(self._context)
        self._settle_wanted()
        try:
            self._emit("run.start", **self.strategy.describe(), step_budget=self.step_budget)
            self._runner = Trampoline(self) if self._controlled else TaskRunner(self, lib)
            watched = watch_sigint(self)  # a real Ctrl-C is the host's; a raised one a finding
            try:
                await self._runner.run(partial(self._start_first, name, main, args))
            finally:
                unwatch_sigint(watched)
            if self._interrupted:  # a real Ctrl-C that emulated code swallowed (or none raised)
                raise KeyboardInterrupt
            if self._reports.failure is None:
                try:
                    self.strategy.finish(self.step)
                except Divergence as e:
                    self._reports.failure = Failure("divergence", str(e), e.step)
            return self._reports.result()
        finally:
            self._sink.close()
            _engine_var.reset(token)

    def _start_first(self, name: str, main: Callable[..., Awaitable[Any]], args: Any) -> None:
        first = self._new_thread(name, main, args, daemon=False)
        if self._controlled:
            self._ready.remove(first)
        first.state = RUNNING
        self._current = first
        self._active = 1
        self._runner.wake(first)  # type: ignore[union-attr]

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
    def decisions(self) -> Decisions:
        """The decisions so far, as a view that shares the engine's record (no copy)."""
        return Decisions(self._decisions)

    # ---- threads -----------------------------------------------------------------------------

    def _new_thread(
        self, name: str, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...], daemon: bool
    ) -> VThread:
        t = VThread(name, len(self._threads), daemon, run=self._token)
        self._threads.append(t)
        if not daemon:
            self._live_nondaemon += 1
        self.strategy.on_spawn(t)
        self._runner.start(t, fn, args)  # type: ignore[union-attr]
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
        self._runner.spawned(t)  # type: ignore[union-attr]
        self._emit("spawn", child=name, tid=t.tid, daemon=daemon)
        return t

    async def _thread_main(self, t: VThread, fn: Callable[..., Awaitable[Any]], args: Any) -> None:
        """An emulated thread's whole life, whichever runner runs it.

        Whatever emulated code raises — ``SystemExit``, ``KeyboardInterrupt``, a cancellation,
        a ``BaseException`` of its own, a group — ends the run as an ``exception`` failure
        naming the type. Only the engine's own abort, and what the host raised (a real Ctrl-C,
        a real cancellation in ``free`` mode: :func:`vthreads._origin.from_host`), go on up."""
        try:
            value = await fn(*args)
            if t.tid == 0:
                self._value = value  # the first thread's return value is the run's
        except _Abort:
            return
        except BaseException as e:  # an emulated thread's bug: the run fails, nothing hangs
            if from_host(e, self._controlled) or (self._closing is t
                                                  and isinstance(e, GeneratorExit)):
                raise  # the host's, or the runner closing the coroutine: not emulated code's
            if self._aborted and self._reports.failure is not None:
                return  # raised while it unwound a failed run: the first failure stands
            _thread_raised(self, t, e)
            return
        self._on_finish(t)

    def _on_finish(self, t: VThread) -> None:
        if self._observer is not None:
            self._observer.finish(t, ends_run=_cuts_daemons(t, self._threads,
                                                            self._live_nondaemon))
        t.state = FINISHED
        t.waiting = None
        self._emit("finish")
        for j in t._joiners:
            self._make_ready(j)
        t._joiners.clear()
        if not t.daemon:
            self._live_nondaemon -= 1
        if self._live_nondaemon == 0:
            # every non-daemon thread is done: the run is over; daemons (parked) are ended
            self._done()
            return
        self._runner.finished()  # type: ignore[union-attr]

    def _interrupt(self) -> None:
        """A real SIGINT, from the signal handler: the run stops (emulated code may swallow the
        KeyboardInterrupt; the abort it then meets at every engine operation is bounded) and
        :meth:`run_async` raises KeyboardInterrupt when it has unwound. Only a flag is set:
        the handler may have interrupted the engine anywhere. Under ``free`` the backend's own
        handling of the signal stops the tasks."""
        self._interrupted = True
        if self._controlled:
            self._aborted = True

    def _done(self) -> None:
        self._aborted = True
        if self._runner is not None:  # None: a run.start subscriber ended the run already
            self._runner.stop()

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
        # the abort check and _count_step, inlined: this is the hottest function of a run
        if self._aborted:
            await _aborting(self)
        self.step += 1
        if self.step > self.step_budget:
            self._over_budget()
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
        await TO_HOST  # the trampoline resumes nxt; we come back when chosen again
        if self._aborted:
            await _aborting(self)

    def _count_step(self) -> None:
        self.step += 1
        if self.step > self.step_budget:
            self._over_budget()

    def _over_budget(self) -> None:
        """The step just counted is past the budget: the run fails and stops."""
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
        try:
            self._decisions.append(nxt.tid)
        except OverflowError:  # the 256th thread: a wider record (see _decisions.py)
            self._decisions = widened(self._decisions, nxt.tid)
        if self._ev_sched:
            if self._sched_raw:  # the file alone takes it; the clock is < 2**63 (MAX_TIME)
                t = _thread_var.get(None)
                self._sink.write_sched(self.step, self.clock, t.name if t else None, nxt.name,
                                       len(runnable))
            else:
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
        # controlled mode only: the trampoline resumes whoever is current once we yield
        nxt.state = RUNNING
        nxt.waiting = None
        self._current = nxt
        self._switches += 1

    async def _block(self, me: VThread, what: str, state: str = BLOCKED) -> None:
        """Park ``me`` until someone calls :meth:`_make_ready` on it (or a timer armed for it
        fires). ``what`` names the wait. Public face: :class:`vthreads.lowlevel.WaitQueue`."""
        if self._aborted:
            await _aborting(self)
        me.state = state
        me.waiting = what
        if self._observer is not None:
            self._observer.block(me)
        if self._ev_block:
            self._emit_one("block", what)
        await self._runner.block(me)  # type: ignore[union-attr]
        if self._aborted:
            await _aborting(self)
        if self._ev_block:
            self._emit_one("unblock", what)

    def _make_ready(self, t: VThread) -> None:
        if t.state == FINISHED or t.state == READY or t.state == RUNNING:
            return
        t.state = READY
        self._runner.ready(t)  # type: ignore[union-attr]

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
        """Virtual sleep of ``ns`` nanoseconds: an int from 0 to :data:`MAX_TIME` minus the
        clock (the clock never leaves 63 bits); anything else raises ``ValueError`` /
        ``TypeError`` into the calling thread."""
        when = _deadline(self.clock, ns, "sleep", "cannot go back in time")
        if when == self.clock:
            await self.point("sleep(0)")
            return
        me = self.current_thread()
        if self._aborted:
            await _aborting(self)
        self._count_step()
        self._timers.arm(when, me)
        await self._block(me, f"sleep until t={when}", SLEEPING)

    def arm_timer(self, thread: VThread, ns: int) -> Timer:
        """A timer that makes ``thread`` runnable at ``now + ns`` unless cancelled first. For
        timed waits; see :func:`vthreads.lowlevel.arm_timer`."""
        return self._timers.arm(_deadline(self.clock, ns, "a timer", "cannot be armed in the past"),
                                thread)

    def touch(self, obj: Any, mode: str) -> None:
        """Record that the running thread performs ``mode`` on ``obj`` without a scheduling
        point (a release, a set, a notify, a nowait queue operation): part of its step's
        footprint for DPOR. A no-op unless the strategy observes footprints."""
        if self._observer is not None:
            self._observer.touch(_thread_var.get(), (obj, mode))

    # ---- failures, violations, races (kept by vthreads._reports) -----------------------------

    def _fail(self, kind: str, message: str, t: VThread | None, details: dict[str, Any]) -> None:
        self._reports.fail(kind, message, t, details)

    def violation(self, rule: str, message: str, **fields: Any) -> Violation:
        return self._reports.violation(rule, message, fields)

    def report_race(self, race: Race) -> None:
        self._reports.race(race)


def _thread_raised(eng: Engine, t: VThread, e: BaseException) -> None:
    """Emulated thread ``t`` raised ``e``: the run fails as an ``exception``, or as a
    ``foreign-await`` when ``e`` is the other backend's loop library refusing a call made
    outside its loop (:func:`foreign_loop_call`, sweep E D7)."""
    called = foreign_loop_call(e) if eng._controlled else None
    if called is not None:
        eng._fail("foreign-await", foreign_await_message(t.name), t, {"awaited": called})
        return
    name, message, tb = describe_exception(e)
    eng._fail("exception", message, t, {"exception": name, "traceback": tb})


async def _aborting(self: Engine) -> None:
    """An engine operation of a run that has been stopped: raise the abort into the calling
    thread again. A thread that keeps swallowing it (``except BaseException`` around engine
    calls, in a loop) would never end, so after :data:`ABORT_LIMIT` times the engine gives
    up on it: it is reported (``swallowed-abort``, when the run has no failure yet) and
    parked for good; the runner abandons its coroutine (never resumed, never closed)."""
    t = _thread_var.get(None)
    n = self._swallowed[t] = self._swallowed.get(t, 0) + 1
    if n <= ABORT_LIMIT:
        raise _Abort
    if n == ABORT_LIMIT + 1 and t is not None:
        self.abandoned.append(t)
        self._fail(
            "swallowed-abort",
            f"thread {t.name} swallowed the engine's abort {ABORT_LIMIT} times and went on "
            "calling the engine (an except BaseException around an engine call?): it was "
            "abandoned, its coroutine never resumed",
            t,
            {"swallowed": ABORT_LIMIT},
        )
    await park_forever(self._controlled)


def _deadline(clock: int, ns: int, what: str, past: str) -> int:
    """``clock + ns``, for an int ``ns`` that keeps it within :data:`MAX_TIME`."""
    if type(ns) is not int:
        if not isinstance(ns, int) or isinstance(ns, bool):
            raise TypeError(f"{what} takes an int of nanoseconds, not {type_name(ns)}")
        ns = int(ns)  # an int subclass (an IntEnum): its value
    if ns < 0:
        raise ValueError(f"{what} {past}: ns must be >= 0")
    if ns > MAX_TIME - clock:
        raise ValueError(f"{what} of {safe_repr(ns)} ns from t={clock} ends past the "
                         f"largest virtual time (2**63-1 ns)")
    return clock + ns


#: the run context's keys every trace line has, and the type the trace's reader wants of each
_CONTEXT_TYPES = {"seed": int, "strategy": str, "backend": str, "scenario": str}
_HEAD = ("step", "t", "thread", "event")


def _check_arguments(step_budget: Any, context: Any) -> None:
    """Refuse, in one line, a step budget that is no int from 1 (True and 1.0 passed the range
    test: sweep F D10) and a context :func:`_check_context` refuses."""
    check_int("step_budget", step_budget)
    if step_budget < 1:
        raise ValueError("step_budget must be >= 1")
    _check_context(context)


def _check_context(context: Any) -> None:
    """Refuse a run context the trace's reader would refuse (sweep F D8): no mapping, a key no
    str or one of a line's head, a value no JSON scalar (an object was written with its
    address, so the trace changed from process to process), or ``seed``/``strategy``/
    ``backend``/``scenario`` of another type than the reader's (a str seed on every line)."""
    if context is None:
        return
    if not isinstance(context, dict):
        raise TypeError(f"context takes a dict of trace fields, not {type(context).__name__}")
    for k, v in context.items():
        if type(k) is not str or k in _HEAD:
            raise ValueError(f"context key {safe_repr(k)} is no field name a line can carry "
                             f"(a str other than {', '.join(_HEAD)})")
        want = _CONTEXT_TYPES.get(k)
        ok = (type(v) is want) if want is not None else (
            v is None or type(v) in (str, int, float, bool))
        if not ok:
            what = want.__name__ if want is not None else "a str, int, float, bool or None"
            raise TypeError(f"context {k!r} takes {what}, not {type(v).__name__}")


def _cuts_daemons(t: VThread, threads: list[VThread], live_nondaemon: int) -> bool:
    """Whether ``t``'s finish ends a run that has daemons (it is the last non-daemon thread):
    an end that takes away the daemons' further steps, or would have, come earlier
    (``_footprint.END``, for DPOR). A daemon that has finished counts too: with the end before
    its last steps it would not have, so the end conflicts with those steps either way."""
    return not t.daemon and live_nondaemon == 1 and any(d.daemon for d in threads)
