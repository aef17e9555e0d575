"""Synchronisation objects for emulated code: mutex, event, bounded queue, condition, shared cell.

Each operation that can wait is a scheduling point, and each object carries happens-before:
whatever a thread did before a release/set/put/notify happens-before whatever the thread that
acquires/waits/gets/wakes does after. A thread that waits leaves the ready list and says what it
waits for; the trace and the deadlock report show it.

Waiters are kept in lists, in the order they started waiting, and re-check their condition when
they run again: since exactly one thread runs at a time, "check, then block" cannot lose a
wake-up, and re-checking keeps every object correct whatever the strategy chose in between.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from ._engine import VThread, _engine
from ._errors import EngineUsageError, WouldBlock
from ._hb import RaceDetector, vc_join

T = TypeVar("T")


def _wake_all(eng: Any, waiters: list[VThread]) -> None:
    for w in waiters:
        eng._make_ready(w)
    waiters.clear()


class Mutex:
    """A non-reentrant mutex. ``async with m:`` acquires and releases.

    Release → next acquire is a happens-before edge. Releasing is not a scheduling point (the
    releasing thread's next operation is)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.owner: VThread | None = None
        self._vc: list[int] = []
        self._waiters: list[VThread] = []

    def locked(self) -> bool:
        return self.owner is not None

    async def acquire(self) -> None:
        eng = _engine()
        me = eng.current_thread()
        if self.owner is me:
            raise EngineUsageError(
                f"mutex {self.name} is not reentrant: {me.name} already holds it"
            )
        await eng.point("acquire", op=(self, "acquire"))
        while self.owner is not None:
            self._waiters.append(me)
            await eng.block(me, f"mutex {self.name} held by {self.owner.name}")
        self.owner = me
        vc_join(me.vc, self._vc)
        if eng._tracing:
            eng._emit("mutex.acquire", mutex=self.name)

    def acquire_nowait(self) -> None:
        """Take the mutex if it is free; raise :class:`WouldBlock` otherwise."""
        eng = _engine()
        me = eng.current_thread()
        if self.owner is not None:
            raise WouldBlock(f"mutex {self.name} is held by {self.owner.name}")
        eng.touch(self, "try")
        self.owner = me
        vc_join(me.vc, self._vc)

    def release(self) -> None:
        eng = _engine()
        me = eng.current_thread()
        if self.owner is not me:
            holder = self.owner.name if self.owner else "nobody"
            raise EngineUsageError(
                f"{me.name} released mutex {self.name}, which {holder} holds: release only what "
                "you acquired"
            )
        eng.touch(self, "release")
        self._vc = me.vc.copy()
        me.tick()
        self.owner = None
        if eng._tracing:
            eng._emit("mutex.release", mutex=self.name)
        if self._waiters:
            eng._make_ready(self._waiters.pop(0))

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
        self._vc: list[int] = []
        self._waiters: list[VThread] = []

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        eng = _engine()
        me = eng.current_thread()
        eng.touch(self, "set")
        if self._set:
            return
        self._set = True
        self._vc = me.vc.copy()
        me.tick()
        if eng._tracing:
            eng._emit("event.set", event_name=self.name)
        _wake_all(eng, self._waiters)

    async def wait(self) -> None:
        eng = _engine()
        me = eng.current_thread()
        await eng.point("event.wait", op=(self, "wait"))
        while not self._set:
            self._waiters.append(me)
            await eng.block(me, f"event {self.name}")
        vc_join(me.vc, self._vc)


class Queue(Generic[T]):
    """A bounded FIFO queue. ``put`` blocks while full, ``get`` while empty.

    Each item carries the putter's vector clock to its getter. ``maxsize=0`` means unbounded."""

    def __init__(self, name: str, maxsize: int = 0) -> None:
        if maxsize < 0:
            raise ValueError("maxsize must be >= 0")
        self.name = name
        self.maxsize = maxsize
        self._items: deque[tuple[T, list[int]]] = deque()
        self._getters: list[VThread] = []
        self._putters: list[VThread] = []
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

    def _push(self, eng: Any, me: VThread, item: T) -> None:
        self._items.append((item, me.vc.copy()))
        me.tick()
        self.high_water = max(self.high_water, len(self._items))
        if eng._tracing:
            eng._emit("queue.put", queue=self.name, depth=len(self._items))
        if self._getters:
            eng._make_ready(self._getters.pop(0))

    def _pop(self, eng: Any, me: VThread) -> T:
        item, vc = self._items.popleft()
        vc_join(me.vc, vc)
        if eng._tracing:
            eng._emit("queue.get", queue=self.name, depth=len(self._items))
        if self._putters:
            eng._make_ready(self._putters.pop(0))
        return item

    def put_nowait(self, item: T) -> None:
        eng = _engine()
        me = eng.current_thread()
        if self.full():
            raise WouldBlock(f"queue {self.name} is full ({self.maxsize} items)")
        eng.touch(self, "put")
        self._push(eng, me, item)

    async def put(self, item: T) -> None:
        eng = _engine()
        me = eng.current_thread()
        await eng.point("queue.put", op=(self, "put"))
        while self.full():
            self._putters.append(me)
            await eng.block(me, f"queue {self.name} full")
        self._push(eng, me, item)

    def get_nowait(self) -> T:
        eng = _engine()
        me = eng.current_thread()
        if not self._items:
            raise WouldBlock(f"queue {self.name} is empty")
        eng.touch(self, "get")
        return self._pop(eng, me)

    async def get(self) -> T:
        eng = _engine()
        me = eng.current_thread()
        await eng.point("queue.get", op=(self, "get"))
        while not self._items:
            self._getters.append(me)
            await eng.block(me, f"queue {self.name} empty")
        return self._pop(eng, me)


class Condition:
    """Wait until a predicate over emulated state holds; ``notify_all()`` after changing it.

    No mutex is needed: one thread runs at a time, so nothing changes between the predicate check
    and the block. notify → wake is a happens-before edge."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._vc: list[int] = []
        self._waiters: list[VThread] = []

    async def wait_for(self, predicate: Callable[[], bool], what: str | None = None, *,
                       timeout_ns: int | None = None) -> bool:
        """Wait until ``predicate()`` holds. With ``timeout_ns``, give up after that much virtual
        time; returns whether the predicate holds."""
        eng = _engine()
        me = eng.current_thread()
        await eng.point("condition.wait", op=(self, "wait"))
        woken = False
        token = None
        if timeout_ns is not None and not predicate():
            if timeout_ns <= 0:
                return False
            token = eng.add_timeout(me, timeout_ns)
        try:
            while not predicate():
                if token is not None and not token[0]:
                    return False  # the timer fired
                self._waiters.append(me)
                await eng.block(me, what or f"condition {self.name}")
                if me in self._waiters:  # woken by the timer, not by notify_all
                    self._waiters.remove(me)
                woken = True
        finally:
            if token is not None:
                token[0] = False
        if woken:
            vc_join(me.vc, self._vc)
        return True

    def notify_all(self) -> None:
        eng = _engine()
        me = eng.current_thread()
        eng.touch(self, "notify")
        vc_join(self._vc, me.vc)
        me.tick()
        _wake_all(eng, self._waiters)

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

    async def read(self, site: str) -> T:
        eng = _engine()
        await eng.point(site, op=(self, "read"))
        eng.access(self._det, site, write=False)
        return self._value

    async def write(self, value: T, site: str) -> None:
        eng = _engine()
        await eng.point(site, op=(self, "write"))
        eng.access(self._det, site, write=True)
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
