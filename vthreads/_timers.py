"""Virtual-time timers: a heap of pending wake-ups, ordered by (when, arming order).

Invariant: the heap holds exactly the *pending* timers. Cancelling a timer takes it out of the
heap at once, so a cancelled timer can never move the clock, wake a thread or count as fired —
the engine's idle step may trust the heap's top without checking anything. Ties at the same
virtual time fire in the order the timers were armed (a monotonic counter, as in SimPy), which
is what makes the wake-up order of simultaneous sleepers deterministic.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._engine import VThread

PENDING, FIRED, CANCELLED = "pending", "fired", "cancelled"


class Timer:
    """A wake-up for ``thread`` at virtual time ``when`` (ns), unless cancelled first.

    Made by :func:`vthreads.lowlevel.arm_timer`. When it fires, its thread is made runnable
    from whatever it is parked on; the thread's wait loop then sees :attr:`fired`."""

    __slots__ = ("_heap", "state", "thread", "when")

    def __init__(self, when: int, thread: VThread, heap: TimerHeap) -> None:
        self.when = when
        self.thread = thread
        self.state = PENDING
        self._heap: TimerHeap | None = heap

    @property
    def fired(self) -> bool:
        return self.state == FIRED

    @property
    def pending(self) -> bool:
        return self.state == PENDING

    def cancel(self) -> bool:
        """Take the timer out of the heap; returns whether it was still pending. Idempotent."""
        if self.state != PENDING:
            return False
        self.state = CANCELLED
        assert self._heap is not None
        self._heap._remove(self)
        self._heap = None
        return True

    def __repr__(self) -> str:
        return f"<Timer t={self.when} {self.thread.name} {self.state}>"


class TimerHeap:
    """The pending timers of one engine."""

    __slots__ = ("_heap", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Timer]] = []
        self._seq = 0

    def __bool__(self) -> bool:
        return bool(self._heap)

    def __len__(self) -> int:
        return len(self._heap)

    def arm(self, when: int, thread: VThread) -> Timer:
        timer = Timer(when, thread, self)
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, timer))
        return timer

    def _remove(self, timer: Timer) -> None:
        # O(n), n = pending timers (a handful: one per sleeping or timed-waiting thread)
        heap = self._heap
        for i, entry in enumerate(heap):
            if entry[2] is timer:
                last = heap.pop()
                if i < len(heap):
                    heap[i] = last
                    heapq.heapify(heap)
                return

    def pop_due(self) -> tuple[int, list[Timer]]:
        """Remove and return the earliest time and every timer due then, in arming order.
        The heap must not be empty."""
        heap = self._heap
        when = heap[0][0]
        due = []
        while heap and heap[0][0] == when:
            timer = heapq.heappop(heap)[2]
            timer.state = FIRED
            timer._heap = None
            due.append(timer)
        return when, due
