"""The runtime's command queue between the application thread(s) and the worker thread.

The D3D9 runtime's multiprocessor layer batches every DDI call that returns nothing into a queue
that a worker thread drains into the driver, in order (MP-5). This is that queue: a bounded ring
kept in a :class:`~vthreads.SharedCell` and guarded by the runtime's own mutex, with a condition
for "not empty" / "not full".

Why a cell and a mutex rather than the engine's ready-made :class:`~vthreads.Queue`: the queue is
shared state of the emulated runtime, and one of the bugs the project pins is a worker that reads
it without taking the lock. Modelled this way, that bug is a real unsynchronised access that the
happens-before checker reports as a ``RACE`` — the same way a driver's unlocked table is.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from vthreads import Condition, Event, Mutex, SharedCell, current_engine


@dataclass(eq=False)
class Command:
    """One queued DDI call.

    ``ddi`` names the ``D3DDDI_DEVICEFUNCS`` entry; ``refs`` are the runtime resources the call
    references (for ``NoExistingReferences``, LA-9); ``reply`` is set when the worker has run it
    (synchronous commands wait on it); ``seq`` is the queue's monotonic sequence number."""

    ddi: str
    args: Any
    refs: tuple[int, ...] = ()
    reply: Event | None = None
    result: int | None = None
    seq: int = 0
    app_thread: str = ""


class CommandQueue:
    """Bounded FIFO of :class:`Command` with blocking ``put``/``get``.

    ``get`` takes a command through :meth:`take`, which holds the queue's mutex around the ring
    (MP-5). A seeded bug overrides :meth:`take` to pop without it (``runtime/_bugs.py``): the
    happens-before checker then reports the unsynchronised ring access as a ``RACE``."""

    def __init__(self, name: str, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("the command queue needs room for at least one command")
        self.name = name
        self.maxsize = maxsize
        self._ring: SharedCell[deque[Command]] = SharedCell(f"{name}.ring", deque())
        self._lock = Mutex(f"{name}.lock")
        self._changed = Condition(f"{name}.changed")
        self._seq = 0
        self.high_water = 0
        self.blocked_puts = 0

    def snapshot(self) -> list[Command]:
        """Queued commands, oldest first (no scheduling point, no race check: for policy code
        that already holds the runtime's API lock, and for reports)."""
        return list(self._ring.peek())

    def __len__(self) -> int:
        return len(self._ring.peek())

    async def put(self, cmd: Command, *, front: bool = False) -> bool:
        """Append ``cmd`` (``front=True`` pushes it ahead of every queued command: only a seeded
        bug asks for that, RN-4).

        Blocks while the queue is full — the application feels backpressure. Returns whether it
        had to block."""
        eng = current_engine()
        blocked = False
        while True:
            async with self._lock:
                ring = await self._ring.read("cmdq.put.check")
                if len(ring) < self.maxsize:
                    self._seq += 1
                    cmd.seq = self._seq
                    ring = deque(ring)
                    if front:
                        ring.appendleft(cmd)
                    else:
                        ring.append(cmd)
                    await self._ring.write(ring, "cmdq.put")
                    self.high_water = max(self.high_water, len(ring))
                    if eng.wants("rt.queue.put"):
                        eng.emit(
                            "rt.queue.put", queue=self.name, ddi=cmd.ddi, seq=cmd.seq,
                            depth=len(ring), front=front, refs=list(cmd.refs),
                        )
                    self._changed.notify_all()
                    return blocked
            if not blocked:
                blocked = True
                self.blocked_puts += 1
            await self._changed.wait_for(
                lambda: len(self._ring.peek()) < self.maxsize, what=f"queue {self.name} full"
            )

    async def take(self) -> tuple[Command, int] | None:
        """One attempt at the oldest command, under the queue's mutex: ``(command, depth
        left)``, or None when the queue is empty. The hook a seeded bug overrides."""
        async with self._lock:
            return await self.pop_ring("")

    async def pop_ring(self, how: str) -> tuple[Command, int] | None:
        """Pop the oldest command off the ring; the caller holds the mutex (or, in a seeded bug,
        deliberately does not: ``how`` then names that in the race report's access labels)."""
        ring = await self._ring.read("cmdq.get.check" + how if how else "cmdq.get.check")
        if not ring:
            return None
        ring = deque(ring)
        cmd = ring.popleft()
        await self._ring.write(ring, "cmdq.get" + how if how else "cmdq.get")
        self._changed.notify_all()
        return cmd, len(ring)

    async def get(self) -> Command:
        """Take the oldest command, blocking while the queue is empty."""
        eng = current_engine()
        while True:
            got = await self.take()
            if got is not None:
                break
            await self._changed.wait_for(
                lambda: len(self._ring.peek()) > 0, what=f"queue {self.name} empty"
            )
        cmd, depth = got
        if eng.wants("rt.queue.get"):
            eng.emit("rt.queue.get", queue=self.name, ddi=cmd.ddi, seq=cmd.seq, depth=depth)
        return cmd
