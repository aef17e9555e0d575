"""Stopping a run from outside it: the wall-clock watchdog (``timeout=``, ``wddmemu --timeout``).

The scheduler counts steps, so a livelock that keeps yielding ends at the step budget. Two hangs
it cannot see: a CPU-bound loop in emulated code (no scheduling point is ever reached) and,
under the uncontrolled ``free`` strategy only, a raw ``anyio.sleep_forever()`` (a wait the
engine does not control, so the event loop idles forever; under every other strategy the
trampoline reports it at once as ``foreign-await``). :class:`Watchdog` arms ``SIGALRM`` for one
run; when it fires, the run fails as ``hang`` naming the emulated thread that held the baton,
and :class:`Hang` is raised into the running code to unwind it.

This is the one place wall time decides anything, and only whether a run that has not ended
after its limit is stopped: the watchdog never makes or changes a scheduling decision, so a run
that ends in time is untouched (the same decisions, the same trace) and every outcome under the
limit is deterministic. ``0`` turns it off.

On the main thread it arms ``SIGALRM``, unless the caller's own real-time alarm is armed (it is
left alone, with its handler). Anywhere else — a Dask worker runs its tasks on a thread of its
own — and under a caller's alarm, a timer thread does the same job: when the limit passes it
looks at the watched thread's current frame, and either asks the event loop to fail the run
(the loop idles) or fails it and raises :class:`Hang` into that thread with
``PyThreadState_SetAsyncExc`` (CPU-bound code), which CPython delivers at the thread's next
bytecode boundary, as it delivers a signal handler's exception on the main thread.

Kept apart from the scheduling loop on purpose: it is the only code that fails a run from a
signal handler. :func:`fail_run` records the failure exactly as the engine records its own
(``run.failure`` in the trace, the run stopped) and :func:`result_of` gives the run's result once
it has unwound; the harness's watchdog (``wddmemu._watchdog``) adds the DDI each thread is in.
"""

from __future__ import annotations

import ctypes
import dis
import functools
import itertools
import os
import signal
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sniffio

from ._engine import Engine
from ._results import RunResult
from ._safe import safe_repr
from ._threads import _thread_var

#: the longest limit (seconds): a year; the interval timers overflow far beyond it
MAX_TIMEOUT = 31_622_400


class Hang(BaseException):
    """Raised into the running code when a watchdog stops the run. A ``BaseException`` so that
    emulated code's ``except Exception`` cannot swallow it."""


def running_thread(engine: Engine) -> str | None:
    """The name of the emulated thread whose code is running: the one whose context the caller
    (a signal handler) interrupted, else the one that holds the baton."""
    t = _thread_var.get(None) or engine._current
    return t.name if t is not None else None


def fail_run(engine: Engine, kind: str, message: str, details: dict[str, Any]) -> None:
    """Fail the run as ``kind`` on the running thread and stop it (first failure wins)."""
    engine._fail(kind, message, _thread_var.get(None) or engine._current, details)


def result_of(engine: Engine) -> RunResult:
    """The result of a run stopped by :func:`fail_run` whose ``run`` raised :class:`Hang`."""
    return engine._reports.result()


def check_timeout(seconds: object, what: str = "timeout") -> float:
    """``seconds`` as a float if it is a usable limit (a number 0..:data:`MAX_TIMEOUT`; 0 is
    off); else ``ValueError`` naming ``what`` (the keyword, or the option)."""
    if type(seconds) not in (int, float) or not 0 <= seconds <= MAX_TIMEOUT:  # type: ignore[operator]
        # nan fails every comparison; a bool, a str or None is no number of seconds
        raise ValueError(f"{what} takes seconds >= 0 (0: off; at most {MAX_TIMEOUT:,}, a "
                         f"year), not {safe_repr(seconds)}")
    return float(seconds)  # type: ignore[arg-type]


#: where an interrupted frame belongs to the event loop, not to emulated code
_LOOP_PARTS = ("/asyncio/", "/selectors.py", "/trio/", "/anyio/", "/sniffio/")


_OWN = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _in_code_under_test(frame: Any) -> bool:
    """Whether ``frame`` (what the alarm interrupted) is emulated code — a layer's, the
    driver's, a program's — rather than the engine's own or the event loop's."""
    if frame is None or _in_event_loop(frame):
        return False
    return not os.path.abspath(frame.f_code.co_filename).startswith(_OWN)


def _in_event_loop(frame: Any) -> bool:
    return frame is not None and any(p in frame.f_code.co_filename.replace("\\", "/")
                                     for p in _LOOP_PARTS)


@functools.lru_cache(maxsize=256)
def _await_points(code: types.CodeType) -> frozenset[int]:
    """The offsets in ``code`` of each ``GET_AWAITABLE`` and of the instruction before it."""
    ins = list(dis.get_instructions(code))
    return frozenset(o for a, b in itertools.pairwise(ins) if b.opname == "GET_AWAITABLE"
                     for o in (a.offset, b.offset))


def _between_call_and_await(frame: Any) -> bool:
    """Whether ``frame`` stopped where a coroutine it just made (``x.__aexit__()``, ``f()`` in
    ``await f()``) is on its stack, not yet awaited. CPython runs a signal handler right after
    a call returns; a Hang raised there drops the coroutine, and its ``RuntimeWarning:
    coroutine '_Held.__aexit__' was never awaited`` came out of runs stopped as ``hang``."""
    return frame.f_lasti in _await_points(frame.f_code)


def _loop_waker() -> Callable[[Callable[[], None]], None]:
    """A thread- and signal-safe "run this soon inside the running loop" that wakes it."""
    if sniffio.current_async_library() == "trio":
        import trio

        return trio.lowlevel.current_trio_token().run_sync_soon
    import asyncio

    return asyncio.get_running_loop().call_soon_threadsafe


@contextmanager
def _quiet_hangs() -> Iterator[None]:
    """While a run is watched: a Hang of ours that CPython had to swallow (see Watchdog._fire)
    is not printed as "Exception ignored in …"; the repeat delivers it. Anything else goes to
    the hook that was there."""
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if not isinstance(unraisable.exc_value, Hang):
            previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        if sys.unraisablehook is hook:
            sys.unraisablehook = previous


#: how often the alarm repeats once the limit has passed and the run still goes on (seconds):
#: the Hang raised at the limit may have been swallowed (see Watchdog._fire)
REFIRE_S = 0.01


#: how long past the limit the backup of the main thread's alarm waits (seconds): SIGALRM
#: stops a run within REFIRE_S of it, so the backup only acts when the alarm was taken away
BACKUP_S = 1.0


#: how long after the limit a run still going is given up on (seconds), when the application
#: has set a last resort (:func:`set_last_resort`): the code under test swallows every stop
LAST_RESORT_S = 5.0
#: the application's last resort, and the process that set it (a forked worker inherits the
#: module, not the job: only the process that set it calls it)
_last_resort: tuple[Callable[[str], None], int] | None = None


def set_last_resort(fn: Callable[[str], None] | None) -> Callable[[str], None] | None:
    """Have ``fn(line)`` called, from a watchdog thread, when a watched run of this process is
    still going :data:`LAST_RESORT_S` after its limit: the code under test swallows every
    ``Hang`` (and so every Ctrl-C), an ``except BaseException`` in a CPU loop, which nothing
    inside the process can stop (sweep E D6). ``line`` is the run's failure, "hang at step N
    on THREAD: …". What to do is the application's choice — a CLI prints and ends the process
    (``os._exit``) — so a library never sets one; None takes it away. Returns the one before."""
    global _last_resort
    before = last_resort()
    _last_resort = (fn, os.getpid()) if fn is not None else None
    return before


def last_resort() -> Callable[[str], None] | None:
    """The last resort this process set (:func:`set_last_resort`), or None: one a forked
    worker inherited from its parent is not its own."""
    resort = _last_resort
    return resort[0] if resort is not None and resort[1] == os.getpid() else None


class _Backup:
    """One daemon thread per process behind the main thread's ``SIGALRM``: the code under test
    may set SIGALRM to SIG_IGN or cancel the interval timer (sweep E D6: such a DDI then looped
    past every limit). The run on the main thread registers its deadline here; if it is still
    watched :data:`BACKUP_S` after it, the thread does what the timer thread of a worker
    thread's run does (``Watchdog._fire_from_timer``), and again every :data:`BACKUP_S`.

    One thread for the process, not one a run: explore runs a schedule in a few ms, and a
    thread's start would cost each of them. Registering wakes the thread only when it would
    sleep past the new deadline (nothing watched, or an older run's later deadline); one that
    sleeps toward an earlier deadline re-reads on waking, which is explore's case: schedule
    after schedule with the same limit, and no wake-up.
    Invariant: ``_watched`` is the main thread's armed watchdog or None, changed under
    ``_cond``; ``_until`` is when the thread wakes by itself (None: never)."""

    def __init__(self) -> None:
        self.forked()

    def forked(self) -> None:
        """Start with no thread and a fresh lock: at creation, and in a forked child
        (``os.register_at_fork``), where the parent's thread is not there and its lock may
        have been held at the fork. Without this a ``--jobs`` worker forked after a watched
        run had no backup thread, the one that calls a main-thread run's last resort: a run
        that swallowed every stop kept the worker for good."""
        self._cond = threading.Condition(threading.Lock())
        self._watched: tuple[Watchdog, int, float, float] | None = None
        self._until: float | None = None
        self._thread: threading.Thread | None = None

    def watch(self, dog: Watchdog, ident: int, limit_at: float) -> None:
        deadline = limit_at + BACKUP_S
        with self._cond:
            self._watched = (dog, ident, deadline, limit_at)
            if self._thread is None:
                self._thread = threading.Thread(target=self._main, name="vthreads-watchdog",
                                                daemon=True)
                self._thread.start()
            elif self._until is None or deadline < self._until:
                self._cond.notify()

    def unwatch(self, dog: Watchdog) -> None:
        with self._cond:
            if self._watched is not None and self._watched[0] is dog:
                self._watched = None

    def _main(self) -> None:
        with self._cond:
            while True:
                watched = self._watched
                if watched is None:
                    self._until = None
                    self._cond.wait()
                    continue
                dog, ident, deadline, limit_at = watched
                left = deadline - time.monotonic()
                if left > 0:
                    self._until = deadline
                    self._cond.wait(left)
                    continue
                now = time.monotonic()
                self._watched = (dog, ident, now + BACKUP_S, limit_at)
                given_up = now - limit_at >= LAST_RESORT_S
                alarm_comes = now - dog._last_alarm < BACKUP_S  # it stops the run, or repeats
                if not given_up and alarm_comes:
                    continue
                self._cond.release()  # _fire takes the watchdog's own lock, not ours
                try:
                    if given_up:  # the last resort, on top of the backup's own repeats
                        dog._give_up()
                    if not alarm_comes:
                        dog._fire_from_timer(ident)
                finally:
                    self._cond.acquire()


_backup = _Backup()
if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_backup.forked)


class Watchdog:
    """Watches one run (:meth:`attach`, then :meth:`run` or :meth:`run_async`): stops it as
    ``hang`` when ``seconds`` of wall time pass (0: never). A subclass says more about where
    the run was stuck (:meth:`where`) from the events it subscribes to (:attr:`events`).
    ``resort``, if given, is this run's last resort, called in place of the process's
    (:func:`set_last_resort`, same promise: once, with the failure line)."""

    #: the events :meth:`on_event` gets (``run.start``: the running loop, to wake it)
    events: tuple[str, ...] = ("run.start",)

    def __init__(self, seconds: float, *,
                 resort: Callable[[str], None] | None = None) -> None:
        self.seconds = check_timeout(seconds)
        self.fired = False
        #: this run's last resort, before the process's (:func:`set_last_resort`): a worker
        #: thread that runs tasks of several owners tells the owner of this one
        self.resort = resort
        #: while :meth:`where` runs: the frame the limit interrupted when it was the stuck
        #: code's own (a CPU loop under a controlled strategy), None when the run waited on
        #: the loop or had not started; a subclass reads what the code was in from it
        self.stuck_frame: Any = None
        self._over = False
        #: whether :meth:`_stop` has failed the run, and since when it is doing so (None: not
        #: now); the alarm's repeats leave a stop in progress alone (see :meth:`_fire`)
        self._stopped = False
        #: whether the last resort was called for this run (:meth:`_give_up`, once)
        self._given_up = False
        self._stopping_since: float | None = None
        #: when the main thread's alarm last came (monotonic; 0: never): the backup stays out
        #: while it keeps coming, and acts only for a run whose alarm was taken away
        self._last_alarm = 0.0
        self._engine: Engine | None = None
        self._wake: Callable[[Callable[[], None]], None] | None = None
        self._lock = threading.Lock()

    def attach(self, engine: Engine) -> Watchdog:
        self._engine = engine
        if self.active:  # the events are emitted inside the running loop
            engine.subscribe(self.on_event, events=self.events)
        return self

    @property
    def active(self) -> bool:
        return self.seconds > 0

    def on_event(self, ev: dict[str, Any]) -> None:
        if self._wake is None:
            self._wake = _loop_waker()
            if self.fired:  # the limit passed before the run started (see _fire): fail it now
                self._stop()

    def where(self, thread: str) -> tuple[str, dict[str, Any]]:
        """What thread ``thread`` was doing when the limit passed, for the message (after
        "thread T was "), and the failure's details beside ``timeout_s``."""
        return "running", {}

    def _fire(self, signum: int, frame: Any) -> None:
        """The limit has passed (and, from then on, every REFIRE_S until the run ends). What
        is done depends on where the alarm landed (``frame``)."""
        since = self._stopping_since
        if self._over or (since is not None and time.monotonic() - since < BACKUP_S):
            # _stop is failing the run: a repeat raising into it (into where(), or into a
            # subscriber of run.failure, both code outside the engine) cut the failure short,
            # with run.failure never written and the run never cancelled; from the loop's
            # callback the Hang escaped the loop, which then slept for ever. Only a stop that
            # itself spins past BACKUP_S (a subscriber's CPU loop) is interrupted
            return
        if threading.current_thread() is threading.main_thread():
            self._last_alarm = time.monotonic()  # the signal came: the backup need not act
        if self._wake is None:
            # the run has not started (a limit of microseconds passes while the alarm is set
            # or the loop starts): no emulated code runs to raise into, and a Hang here
            # escaped as a traceback. on_event fails the run at its start instead, which then
            # stops at its first scheduling point
            self.fired = True
            return
        if _in_event_loop(frame):
            # the event loop idles (a raw sleep_forever) or is between steps: fail the run from
            # inside the loop, which cancels it cleanly; raising here would escape the loop
            # itself and leave trio's run state behind
            if not self.fired:
                self.fired = True
                self._wake(self._stop)
            return
        if not _in_code_under_test(frame) or _between_call_and_await(frame):
            # the engine's own code: nothing there loops, a Hang raised into it left a
            # coroutine never awaited, and failing the run here (which writes run.failure to
            # the trace) could cut into a trace line being written. The repeat comes back in
            # REFIRE_S, where the run then is; so does it for code about to await a coroutine
            # it has just made (a Hang there leaves the coroutine never awaited)
            return
        self.fired = True
        if not self._stopped:
            # first here, or the loop's stop (above) has not run yet: a CPU loop that holds
            # the loop would never let it run, so the failure is recorded now
            self.stuck_frame = frame
            try:
                self._stop()
            finally:
                self.stuck_frame = None  # a frame kept would keep the stuck code's locals
        # into the CPU-bound code that holds the baton. Again at each repeat: the Hang raised
        # before was swallowed — it landed in a weakref callback, a __del__, a gc callback,
        # which CPython cannot pass an exception out of ("Exception ignored in …") — and a
        # CPU loop would spin on for ever
        raise Hang

    def _stop(self) -> None:
        """Fail the run as ``hang`` (once: from the loop's callback or from the alarm, which
        ever comes first), with the alarm's repeats held off meanwhile (see :meth:`_fire`)."""
        if self._stopped:
            return
        self._stopping_since = time.monotonic()
        try:
            self._fail_as_hang()
        finally:
            self._stopped = True
            self._stopping_since = None

    def _fail_as_hang(self) -> None:
        assert self._engine is not None
        thread = running_thread(self._engine)
        if thread is None:  # before the first thread ran: a limit shorter than a start-up
            fail_run(self._engine, "hang",
                     f"the run did not end within {self.seconds:g} s of wall time: the limit "
                     "passed before it started (raise the timeout)",
                     {"timeout_s": self.seconds})
            return
        doing, details = self.where(thread)
        fail_run(self._engine, "hang",
                 f"the run did not end within {self.seconds:g} s of wall time: thread {thread} "
                 f"was {doing} (a CPU-bound loop, or a wait the emulator does not control?)",
                 {"timeout_s": self.seconds, **details})

    def _fire_from_timer(self, ident: int) -> None:
        """The limit passed while thread ``ident`` (not the main thread) ran the engine."""
        with self._lock:  # the run cannot end (``_done``) between the look and the raise
            frame = sys._current_frames().get(ident)
            try:
                self._fire(signal.SIGALRM, frame)
            except Hang:  # meant for the watched thread, not for this timer thread
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident),
                                                           ctypes.py_object(Hang))

    def _give_up(self) -> None:
        """The run is still going :data:`LAST_RESORT_S` after its limit: the run's own last
        resort (:attr:`resort`) or else the application's (:func:`set_last_resort`), if this
        process set one, gets its failure line."""
        resort = self.resort if self.resort is not None else last_resort()
        if resort is None:
            return
        with self._lock:
            if self._over or self._engine is None or self._given_up:
                return
            self._given_up = True  # once a run: a resort that returns is not called again
            f = self._engine._reports.failure
        if f is None:  # the stop itself was swallowed before it could fail the run
            line = (f"hang: the run did not end within {self.seconds:g} s of wall time "
                    f"(thread {running_thread(self._engine) or '-'})")
        else:
            line = f"{f.kind} at step {f.step}" + (f" on {f.thread}" if f.thread else "")
            line += f": {f.message}"
        resort(line)

    def _done(self) -> None:
        # inside the run's try: a Hang raised into the thread just before is delivered here,
        # at the latest, and taken as the hang it is; from now on an alarm is too late to matter
        with self._lock:
            self._over = True

    @contextmanager
    def armed(self) -> Iterator[None]:
        if not self.active:
            yield
            return
        if not self._may_take_sigalrm():
            stop = threading.Event()
            ident = threading.get_ident()

            def alarm() -> None:  # the limit, then every REFIRE_S until the run ends (_fire)
                wait = self.seconds
                give_up_at = time.monotonic() + self.seconds + LAST_RESORT_S
                while not stop.wait(wait):
                    if time.monotonic() >= give_up_at:
                        self._give_up()
                    self._fire_from_timer(ident)
                    wait = REFIRE_S

            timer = threading.Thread(target=alarm, name="vthreads-watchdog", daemon=True)
            timer.start()
            try:
                with _quiet_hangs():
                    yield
            finally:
                stop.set()
                timer.join()
            return
        old = signal.signal(signal.SIGALRM, self._fire)
        signal.setitimer(signal.ITIMER_REAL, self.seconds, REFIRE_S)  # repeats: see _fire
        _backup.watch(self, threading.get_ident(), time.monotonic() + self.seconds)
        try:
            with _quiet_hangs():
                yield
        finally:
            _backup.unwatch(self)
            with self._lock:  # a backup fire in progress ends first; none comes after
                self._over = True
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)

    @staticmethod
    def _may_take_sigalrm() -> bool:
        # SIGALRM is the process's one real-time alarm: a caller that armed it (its own
        # setitimer or alarm, running under a test runner's timeout, say) would have its alarm
        # cancelled by ours and its handler away for the run; the timer thread does the job
        # without touching either (our choice, docs/engine.md: "`timeout`")
        return (hasattr(signal, "setitimer")
                and threading.current_thread() is threading.main_thread()
                and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0))

    def run(self, engine: Engine, main: Any, *, name: str = "main") -> RunResult:
        """``engine.run(main, name=name)`` under the watchdog."""
        with self.armed():
            try:
                run = engine.run(main, name=name)
                self._done()
            except BaseException:
                if not self.fired:
                    raise
                return result_of(engine)  # stopped by the watchdog: unwound, failure recorded
        return run

    async def run_async(self, engine: Engine, main: Any, *, name: str = "main") -> RunResult:
        """``await engine.run_async(main, name=name)`` under the watchdog (a run inside a
        running loop, as explore's one loop for many schedules makes them)."""
        with self.armed():
            try:
                run = await engine.run_async(main, name=name)
                self._done()
            except BaseException:
                if not self.fired:
                    raise
                return result_of(engine)
        return run
