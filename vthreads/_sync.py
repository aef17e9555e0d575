"""Synchronisation objects for emulated code: mutex, event, bounded queue, condition, shared cell.

Built only on :mod:`vthreads.lowlevel` — no private name of the engine's — so they are also
the worked examples for anyone writing a primitive. Two shortcuts, for speed: the mutex logs its
``mutex.acquire``/``mutex.release`` through ``vthreads._api.log_one`` (``emit`` without the
keyword dict; two of the commonest lines of a trace), where a primitive of a user's calls
:func:`~vthreads.lowlevel.emit`; and :class:`SharedCell` (and :meth:`Mutex.acquire`) await the
running engine's ``point`` and call its ``access`` (the public methods behind
:func:`~vthreads.lowlevel.checkpoint` and :func:`~vthreads.lowlevel.record_access`) with the
engine found once. Each operation that can wait is a
scheduling point, and each object carries happens-before: whatever a thread did before a
release/set/put/notify happens-before whatever the thread that acquires/waits/gets/wakes does
after. A thread that waits parks on a :class:`~vthreads.lowlevel.WaitQueue` saying what it waits
for; the trace and the deadlock report show it.

Waiters are unparked in the order they parked and re-check their condition when they run again:
since exactly one thread runs at a time, "check, then park" cannot lose a wake-up, and
re-checking keeps every object correct whatever the strategy chose in between.

Every blocking ``async x()`` has an ``x_nowait()`` twin that does the same without waiting, or
raises :class:`~vthreads.WouldBlock` (trio's convention). :class:`Condition` has none: a
predicate that holds is its own non-blocking check.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from ._api import log_one
from ._errors import EngineUsageError, WouldBlock
from .lowlevel import (
    HBClock,
    RaceDetector,
    VThread,
    WaitQueue,
    acquire,
    arm_timer,
    checkpoint,
    current_engine,
    current_thread,
    emit,
    release,
    same_run,
    touch,
)

T = TypeVar("T")


class Mutex:
    """A non-reentrant mutex. ``async with m:`` acquires and releases.

    Release → next acquire is a happens-before edge. Releasing is not a scheduling point (the
    releasing thread's next operation is)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.owner: VThread | None = None
        what = f"mutex {name}"
        self._hb = HBClock(what)
        self._waiters = WaitQueue(what)

    def locked(self) -> bool:
        return self.owner is not None

    async def acquire(self) -> None:
        me = current_thread()
        if self.owner is me:
            raise EngineUsageError(
                f"mutex {self.name} is not reentrant: {me.name} already holds it"
            )
        # checkpoint("acquire", op=...)'s point, without its coroutine around it (see SharedCell)
        await current_engine().point("acquire", (self, "acquire"))
        while self.owner is not None:
            same_run(self.owner, f"mutex {self.name}")  # not a holder an earlier run left
            await self._waiters.park(f"mutex {self.name} held by {self.owner.name}")
        self.owner = me
        acquire(self._hb)
        log_one("mutex.acquire", self.name)  # built only if wanted

    def acquire_nowait(self) -> None:
        """Take the mutex if it is free; raise :class:`WouldBlock` otherwise. Not a scheduling
        point, and (unlike :meth:`acquire`) no trace event."""
        me = current_thread()
        # a try that fails also depends on the holder's release (after it, the try would have
        # succeeded), so its footprint is recorded before the check: DPOR must see both
        touch(self, "try")
        if self.owner is not None:
            raise WouldBlock(f"mutex {self.name} is held by {self.owner.name}")
        self.owner = me
        acquire(self._hb)

    def release(self) -> None:
        me = current_thread()
        if self.owner is not me:
            holder = self.owner.name if self.owner else "nobody"
            raise EngineUsageError(
                f"{me.name} released mutex {self.name}, which {holder} holds: release only what "
                "you acquired"
            )
        touch(self, "release")
        release(self._hb)
        self.owner = None
        log_one("mutex.release", self.name)  # built only if wanted
        self._waiters.unpark_one()

    async def __aenter__(self) -> Mutex:
        await self.acquire()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()


class Event:
    """A one-shot event: ``set()`` once, ``await wait()`` any number of times."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._set = False
        self._hb = HBClock(f"event {name}")
        self._waiters = WaitQueue(f"event {name}")

    def is_set(self) -> bool:
        """Whether the event is set (no happens-before edge: use :meth:`wait_nowait` for
        one)."""
        return self._set

    def set(self) -> None:
        touch(self, "set")
        if self._set:
            return
        self._set = True
        release(self._hb)
        emit("event.set", event_name=self.name)  # built only if wanted
        self._waiters.unpark_all()

    async def wait(self) -> None:
        await checkpoint("event.wait", op=(self, "wait"))
        while not self._set:
            await self._waiters.park(f"event {self.name}")
        acquire(self._hb)

    def wait_nowait(self) -> None:
        """Return (with the set → wait edge) if the event is set; raise :class:`WouldBlock`
        otherwise. Not a scheduling point."""
        # recorded whether or not it succeeds: its outcome depends on whether set() ran
        # before it, so DPOR must order the two either way (like acquire_nowait)
        touch(self, "wait")
        if not self._set:
            raise WouldBlock(f"event {self.name} is not set")
        acquire(self._hb)


class Queue(Generic[T]):
    """A bounded FIFO queue. ``put`` blocks while full, ``get`` while empty.

    Each item carries the putter's clock to its getter. ``maxsize=0`` means unbounded."""

    def __init__(self, name: str, maxsize: int = 0) -> None:
        if type(maxsize) is not int:  # 1.5 was a queue no put ever filled (sweep F D10)
            raise TypeError(f"maxsize takes an int, not {type(maxsize).__name__}")
        if maxsize < 0:
            raise ValueError("maxsize must be >= 0")
        self.name = name
        self.maxsize = maxsize
        self._items: deque[tuple[T, HBClock]] = deque()
        self._item_clock = f"an item of queue {name}"  # each item's HBClock's name
        self._getters = WaitQueue(f"queue {name} getters")
        self._putters = WaitQueue(f"queue {name} putters")
        self.high_water = 0

    def __len__(self) -> int:
        return len(self._items)

    def full(self) -> bool:
        return self.maxsize > 0 and len(self._items) >= self.maxsize

    def empty(self) -> bool:
        return not self._items

    def items(self) -> list[T]:
        """A snapshot of the queued items, oldest first (no happens-before edge)."""
        return [it for it, _ in self._items]

    def _push(self, item: T) -> None:
        hb = HBClock(self._item_clock)
        release(hb)
        self._items.append((item, hb))
        self.high_water = max(self.high_water, len(self._items))
        emit("queue.put", queue=self.name, depth=len(self._items))  # built only if wanted
        self._getters.unpark_one()

    def _pop(self) -> T:
        item, hb = self._items.popleft()
        acquire(hb)
        emit("queue.get", queue=self.name, depth=len(self._items))  # built only if wanted
        self._putters.unpark_one()
        return item

    def put_nowait(self, item: T) -> None:
        # recorded before the check, like acquire_nowait: a put that fails on a full queue
        # depends on the get that would have made room, so DPOR must see it either way
        touch(self, "put")
        if self.full():
            raise WouldBlock(f"queue {self.name} is full ({self.maxsize} items)")
        self._push(item)

    async def put(self, item: T) -> None:
        await checkpoint("queue.put", op=(self, "put"))
        while self.full():
            await self._putters.park(f"queue {self.name} full")
        self._push(item)

    def get_nowait(self) -> T:
        touch(self, "get")  # before the check: a failed get depends on the put it missed
        if not self._items:
            raise WouldBlock(f"queue {self.name} is empty")
        return self._pop()

    async def get(self) -> T:
        await checkpoint("queue.get", op=(self, "get"))
        while not self._items:
            await self._getters.park(f"queue {self.name} empty")
        return self._pop()


class Condition:
    """Wait until a predicate over emulated state holds; ``notify_all()`` after changing it.

    No mutex is needed: one thread runs at a time, so nothing changes between the predicate check
    and the park. notify → wake is a happens-before edge."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._hb = HBClock(f"condition {name}")
        self._waiters = WaitQueue(f"condition {name}")

    async def wait_for(self, predicate: Callable[[], bool], what: str | None = None, *,
                       timeout_ns: int | None = None) -> bool:
        """Wait until ``predicate()`` holds. With ``timeout_ns``, give up after that much virtual
        time; returns whether the predicate holds. The timer is cancelled when the wait ends
        otherwise, so it never wakes the thread (or moves the clock) later. A timeout is an int
        >= 0 (0: only look), as a sleep's is: -1 gave up at once where ``sleep(-1)`` raises."""
        if timeout_ns is not None and (type(timeout_ns) is not int or timeout_ns < 0):
            raise ValueError(f"wait_for's timeout_ns takes an int >= 0 (or None), not "
                             f"{timeout_ns!r}"[:200])
        await checkpoint("condition.wait", op=(self, "wait"))
        woken = False
        timer = None
        if timeout_ns is not None and not predicate():
            if timeout_ns <= 0:
                return False
            timer = arm_timer(timeout_ns)
        try:
            while not predicate():
                if timer is not None and timer.fired:
                    return False
                await self._waiters.park(what or f"condition {self.name}")
                woken = True
        finally:
            if timer is not None:
                timer.cancel()
        if woken:
            acquire(self._hb)
        return True

    def notify_all(self) -> None:
        touch(self, "notify")
        release(self._hb)
        self._waiters.unpark_all()

    def waiting(self) -> int:
        return len(self._waiters)


class SharedCell(Generic[T]):
    """A piece of shared state whose every access is a scheduling point and is race-checked.

    Two accesses from different threads, at least one a write, that happens-before does not order,
    are reported as a ``RACE`` violation naming both threads, both ``site`` labels and both steps —
    whether or not this schedule let them interleave badly."""

    def __init__(self, name: str, value: T) -> None:
        self.name = name
        self._value = value
        self._det = RaceDetector(name)

    # checkpoint() then record_access(), each finding the engine again, spelled out: the
    # engine once, its point awaited without checkpoint's coroutine around it, its race check
    # called without record_access's frame (a cell access is the commonest operation of a
    # run: ~530 a schedule of dynamic-vb-ring)
    async def read(self, site: str) -> T:
        eng = current_engine()
        await eng.point(site, (self, "read"))
        eng.access(self._det, site, False)
        return self._value

    async def write(self, value: T, site: str) -> None:
        eng = current_engine()
        await eng.point(site, (self, "write"))
        eng.access(self._det, site, True)
        self._value = value

    async def update(self, fn: Callable[[T], T], site: str) -> T:
        """Read, apply ``fn``, write back — two accesses with a scheduling point between them,
        exactly like the racy read-modify-write it models."""
        v = fn(await self.read(site))
        await self.write(v, site)
        return v

    def peek(self) -> T:
        """The value, without a scheduling point or a race check (for checkers and reports)."""
        return self._value
