"""The pieces vthreads' own synchronisation objects are built from (public as
:mod:`vthreads.lowlevel`).

Three ideas, each one small:

* a **wait queue** — threads park on it, saying what they wait for, and are unparked in the order
  they parked. Parking is the only way a thread leaves the runnable set; the deadlock report and
  the trace name what each parked thread waits for.
* a **timer** — a virtual-time wake-up for one thread, cancellable; it is how a wait gets a
  timeout.
* a **happens-before clock** — what a releasing thread knew, handed to the threads that acquire
  it afterwards; this is what makes a primitive order accesses for the race detector.

Primitives combine them the same way every time: check the condition; while it does not hold,
park; when it holds, take the state and :func:`acquire` the clock. The releasing side changes the
state, :func:`release`\\s the clock and unparks. Because exactly one thread runs at a time there
is no lost wake-up between "check" and "park", and because woken threads re-check, an unpark
that turns out to be spurious (a timer, a notify_all) is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._hb import vc_join
from ._threads import (
    BLOCKED,
    VThread,
    _current,
    _engine,
    _engine_var,
    _thread_var,
    bind_run,
)
from ._timers import Timer


@dataclass(frozen=True, slots=True)
class WaitQueueStatistics:
    """What :meth:`WaitQueue.statistics` returns: the queue's name and the names of the parked
    threads, longest-parked first."""

    name: str
    parked: tuple[str, ...]


class WaitQueue:
    """Threads parked until someone unparks them, first parked, first unparked.

    ``name`` is for reports. Invariant: a thread is in the queue from :meth:`park` until it runs
    again — whoever woke it (an unpark, a timer) — and never twice."""

    __slots__ = ("_parked", "_run", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        # an ordered set: insertion order is park order; removal by key is O(1)
        self._parked: dict[VThread, None] = {}
        self._run: object = None  # the run whose threads park here (bind_run)

    async def park(self, what: str) -> None:
        """Park the calling thread until :meth:`unpark_one`/:meth:`unpark_all` picks it, or a
        timer armed for it fires. ``what`` says what it waits for (deadlock report, trace
        ``block``/``unblock`` events). Returning is no promise that the awaited condition
        holds: re-check it in a loop."""
        eng = _engine()
        me = eng.current_thread()
        if self._run is not me._run:
            bind_run(self, me, self.name)
        self._parked[me] = None
        try:
            await eng._block(me, what)
        finally:
            self._parked.pop(me, None)

    def unpark_one(self) -> VThread | None:
        """Make the longest-parked thread runnable; returns it, or None if nobody is parked.
        Not a scheduling point: the caller runs on."""
        eng = _engine_var.get(None) or _engine()
        parked = self._parked
        while parked:
            t = next(iter(parked))
            del parked[t]
            if t.state == BLOCKED:  # not already woken by a timer
                eng._make_ready(t)
                return t
        return None

    def unpark_all(self) -> list[VThread]:
        """Make every parked thread runnable, in park order; returns them."""
        eng = _engine()
        woken = [t for t in self._parked if t.state == BLOCKED]
        self._parked.clear()
        for t in woken:
            eng._make_ready(t)
        return woken

    def __len__(self) -> int:
        return len(self._parked)

    def __bool__(self) -> bool:
        return bool(self._parked)

    def statistics(self) -> WaitQueueStatistics:
        return WaitQueueStatistics(self.name, tuple(t.name for t in self._parked))

    def __repr__(self) -> str:
        return f"<WaitQueue {self.name} parked={len(self._parked)}>"


class HBClock:
    """A happens-before carrier (a vector clock): :func:`release` puts the calling thread's
    knowledge into it, :func:`acquire` takes what it holds. Everything a thread did before a
    ``release(c)`` happens-before everything a thread does after a later ``acquire(c)``.

    Releases accumulate: ``c`` holds the join of every release so far, so an acquirer is ordered
    after all of them (what a mutex, an event, a condition need). A per-message edge, as a queue
    item carries, is one fresh :class:`HBClock` per message.

    Invariant: every tid in ``_covered`` names a thread whose clock is at least ``_vc``, entry
    by entry. A thread's clock only grows, so the invariant holds until ``_vc`` itself changes,
    which only :func:`release` does, and it resets the set. It lets both operations skip the
    element-wise join when its answer is known: an acquire by a covered thread changes nothing,
    and a release by one makes ``_vc`` a copy of the releaser's clock. Those are nearly all the
    operations of a run (a mutex is acquired and released by its holder; a schedule of
    ``dynamic-vb-ring``: ~200 of ~275 acquires changed nothing and every release gave the
    releaser's clock), where the join is a Python loop over every thread's entry.
    """

    __slots__ = ("_covered", "_run", "_vc", "name")

    def __init__(self, name: str = "a happens-before clock") -> None:
        #: what the clock belongs to, for the message that refuses its use by a second run
        self.name = name
        self._vc: list[int] = []
        self._covered: set[int] = set()
        self._run: object = None  # the run that uses it (vthreads._threads.bind_run)

    def __repr__(self) -> str:
        return f"<HBClock {self._vc}>"


def release(clock: HBClock) -> None:
    """Release-type operation of the calling thread on ``clock`` (then its own clock ticks, so
    what it does next is not covered by this release)."""
    me = _thread_var.get(None) or _current()  # _current's errors only when there is no thread
    if clock._run is not me._run:
        bind_run(clock, me, clock.name)
    vc, tid = me.vc, me.tid
    covered = clock._covered
    if tid in covered or not clock._vc:  # the join is the releaser's clock (an empty one: too)
        clock._vc = vc.copy()
        covered.clear()
        covered.add(tid)  # equal now; after the tick below, greater
    else:
        vc_join(clock._vc, vc)
        covered.clear()  # _vc may now exceed every thread's clock, the releaser's too
    vc[tid] += 1  # me.tick(), inlined


def acquire(clock: HBClock) -> None:
    """Acquire-type operation of the calling thread on ``clock``: it now happens-after every
    release into ``clock`` so far."""
    me = _thread_var.get(None) or _current()
    if clock._run is not me._run:
        bind_run(clock, me, clock.name)
    covered = clock._covered
    if me.tid not in covered:  # else its clock already holds every entry of clock's
        vc_join(me.vc, clock._vc)
        covered.add(me.tid)


def arm_timer(ns: int, thread: VThread | None = None) -> Timer:
    """Arm a virtual-time timer that makes ``thread`` (default: the caller) runnable ``ns``
    nanoseconds from now, unless :meth:`Timer.cancel` is called first.

    The clock advances only when no thread can run; then it jumps to the earliest pending timer
    (ties in arming order). A cancelled timer leaves the timer heap at once: it never moves the
    clock. Arm a timer only around a park whose loop checks :attr:`Timer.fired`, and cancel it
    when the wait ends the other way."""
    eng = _engine()
    return eng.arm_timer(eng.current_thread() if thread is None else thread, ns)
