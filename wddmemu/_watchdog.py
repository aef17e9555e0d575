"""The wall-clock watchdog behind ``--timeout SECONDS`` (issue 14; ``docs/explore.md``).

The scheduler counts steps, so a livelock that keeps yielding ends at the step budget. Two hangs
it cannot see: a CPU-bound loop in driver code (no scheduling point is ever reached) and, under
the uncontrolled ``free`` strategy only, a raw ``anyio.sleep_forever()`` (a wait the emulator
does not control, so the event loop idles forever; under every other strategy the trampoline
reports it at once as ``foreign-await``, docs/engine.md). The watchdog arms ``SIGALRM`` for
the run; when it fires, the run fails as ``hang``
naming the emulated thread that held the baton and the DDI it was in (``run.failure`` goes to
the trace like any failure), and :class:`vthreads.lowlevel.Hang` is raised into the running
code to unwind it.

This is the one place wall time decides anything, and only whether a run that has not ended
after SECONDS is stopped: a run that ends in time is untouched, so every outcome under the
limit is deterministic. ``0`` turns it off.

On the main thread it arms ``SIGALRM``. Anywhere else — a Dask worker runs its tasks on a thread
of its own, and a stuck task there would hold the worker for good — a timer thread does the same
job: when the limit passes it looks at the watched thread's current frame, and either asks the
event loop to fail the run (the loop idles) or fails it and raises :class:`Hang` into that thread
with ``PyThreadState_SetAsyncExc`` (CPU-bound code), which CPython delivers at the thread's next
bytecode boundary, as it delivers a signal handler's exception on the main thread.
"""

from __future__ import annotations

import ctypes
import math
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sniffio

from vthreads import RunResult
from vthreads.lowlevel import Engine, Hang, fail_run, result_of, running_thread

#: explore's default limit for one schedule (seconds); ``run`` and ``replay`` default to off
EXPLORE_TIMEOUT = 60.0


def check_timeout(seconds: float) -> float:
    """``seconds`` if it is a usable limit (finite, >= 0); ``ValueError`` otherwise."""
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"--timeout takes seconds >= 0 (0: off), not {seconds}")
    return seconds


#: where an interrupted frame belongs to the event loop, not to emulated code
_LOOP_PARTS = ("/asyncio/", "/selectors.py", "/trio/", "/anyio/", "/sniffio/")


def _in_event_loop(frame: Any) -> bool:
    return frame is not None and any(p in frame.f_code.co_filename.replace("\\", "/")
                                     for p in _LOOP_PARTS)


def _loop_waker() -> Callable[[Callable[[], None]], None]:
    """A thread- and signal-safe "run this soon inside the running loop" that wakes it."""
    if sniffio.current_async_library() == "trio":
        import trio

        return trio.lowlevel.current_trio_token().run_sync_soon
    import asyncio

    return asyncio.get_running_loop().call_soon_threadsafe


class Watchdog:
    """Watches one run: tracks which DDI each emulated thread is in, and stops the run when
    the limit passes."""

    def __init__(self, seconds: float) -> None:
        self.seconds = check_timeout(seconds)
        self.fired = False
        self._over = False
        self._engine: Engine | None = None
        self._wake: Callable[[Callable[[], None]], None] | None = None
        self._in: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def attach(self, engine: Engine) -> Watchdog:
        self._engine = engine
        if self.active:
            # only the DDI boundaries: a catch-all would build every event of every run
            engine.subscribe(self._on_event, events=("ddi.enter", "ddi.exit"))
        return self

    @property
    def active(self) -> bool:
        return self.seconds > 0

    def _on_event(self, ev: dict[str, Any]) -> None:
        if self._wake is None:  # the first event is emitted inside the running event loop
            self._wake = _loop_waker()
        kind = ev["event"]
        if kind == "ddi.enter":
            self._in.setdefault(ev.get("thread") or "?", []).append(str(ev.get("ddi")))
        elif kind == "ddi.exit":
            stack = self._in.get(ev.get("thread") or "?")
            if stack:
                stack.pop()

    def _fire(self, signum: int, frame: Any) -> None:
        if self._over or self.fired:
            return
        self.fired = True
        if _in_event_loop(frame) and self._wake is not None:
            # the event loop idles (a raw sleep_forever) or is between steps: fail the run from
            # inside the loop, which cancels it cleanly; raising here would escape the loop
            # itself and leave trio's run state behind
            self._wake(self._stop)
            return
        self._stop()
        raise Hang  # into the CPU-bound code that holds the baton

    def _stop(self) -> None:
        assert self._engine is not None
        thread = running_thread(self._engine) or "?"
        stack = self._in.get(thread)
        where = f"in DDI {stack[-1]}" if stack else "outside any DDI"
        fail_run(self._engine, "hang",
                 f"the run did not end within {self.seconds:g} s of wall time: thread {thread} "
                 f"was {where} (a CPU-bound loop, or a wait the emulator does not control?)",
                 {"timeout_s": self.seconds, "ddi": stack[-1] if stack else None})

    def _fire_from_timer(self, ident: int) -> None:
        """The limit passed while thread ``ident`` (not the main thread) ran the engine."""
        with self._lock:  # the run cannot end (``_done``) between the look and the raise
            frame = sys._current_frames().get(ident)
            try:
                self._fire(signal.SIGALRM, frame)
            except Hang:  # meant for the watched thread, not for this timer thread
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident),
                                                           ctypes.py_object(Hang))

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
        if not (hasattr(signal, "setitimer")
                and threading.current_thread() is threading.main_thread()):
            timer = threading.Timer(self.seconds, self._fire_from_timer,
                                    (threading.get_ident(),))
            timer.daemon = True
            timer.start()
            try:
                yield
            finally:
                timer.cancel()
                timer.join()
            return
        old = signal.signal(signal.SIGALRM, self._fire)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)

    def run(self, engine: Engine, main: Any) -> RunResult:
        """``engine.run(main)`` under the watchdog."""
        with self.armed():
            try:
                run = engine.run(main, name="app")
                self._done()
            except BaseException:
                if not self.fired:
                    raise
                return result_of(engine)  # stopped by the watchdog: unwound, failure recorded
        return run

    async def run_async(self, engine: Engine, main: Any) -> RunResult:
        """``await engine.run_async(main)`` under the watchdog (a run inside a running loop,
        as explore's one loop for many schedules makes them)."""
        with self.armed():
            try:
                run = await engine.run_async(main, name="app")
                self._done()
            except BaseException:
                if not self.fired:
                    raise
                return result_of(engine)
        return run
