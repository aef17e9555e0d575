"""Happens-before bookkeeping: vector clocks and the race check on shared cells.

A vector clock is a plain ``list[int]`` indexed by thread id (tids are small, dense spawn
indices). The scheme is FastTrack's (Flanagan & Freund, PLDI 2009) without its read-sharing
optimisation: a cell keeps the epoch ``(tid, clock)`` of its last write and one epoch per thread
for the reads since that write. An access races with an earlier one from another thread when the
earlier epoch is not covered by the accessing thread's clock.

Why vector clocks rather than just watching for bad interleavings: a race is a property of the
program, not of the schedule. Under ``fifo`` the two halves of an unsynchronised read-modify-write
usually run back to back and do no harm; the clocks still show that nothing ordered them, so the
race is reported on the very first schedule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


def vc_join(into: list[int], other: list[int]) -> None:
    """``into = max(into, other)`` element-wise, in place."""
    n = len(other)
    if len(into) < n:
        into.extend([0] * (n - len(into)))
    for i, o in enumerate(other):  # no other[i] lookup: ~10 % of a join on a 5-thread clock
        if o > into[i]:
            into[i] = o


def vc_get(vc: list[int], tid: int) -> int:
    return vc[tid] if tid < len(vc) else 0


class Access(NamedTuple):
    """One access to a shared cell, as remembered for the race check. A named tuple rather
    than a frozen dataclass: one is made for every race-checked access of a run, and a tuple
    is built in one step where a frozen dataclass's ``__init__`` sets each field through
    ``object.__setattr__`` (the same fields, repr, equality and hash)."""

    tid: int
    thread: str
    clock: int
    site: str
    step: int
    write: bool


@dataclass(frozen=True, slots=True)
class Race:
    """Two unordered conflicting accesses to the same cell."""

    cell: str
    first: Access
    second: Access

    @property
    def kind(self) -> str:
        a = "write" if self.first.write else "read"
        b = "write" if self.second.write else "read"
        return f"{a}-{b}"


class RaceDetector:
    """The access history of one shared cell."""

    __slots__ = ("name", "reads", "write")

    def __init__(self, name: str) -> None:
        self.name = name
        self.write: Access | None = None
        self.reads: dict[int, Access] = {}

    def on_read(self, acc: Access, vc: list[int]) -> list[Race]:
        races = []
        w = self.write
        if w is not None and w.tid != acc.tid and w.clock > vc_get(vc, w.tid):
            races.append(Race(self.name, w, acc))
        self.reads[acc.tid] = acc
        return races

    def on_write(self, acc: Access, vc: list[int]) -> list[Race]:
        races = []
        w = self.write
        if w is not None and w.tid != acc.tid and w.clock > vc_get(vc, w.tid):
            races.append(Race(self.name, w, acc))
        # dict order is the order the reads happened: deterministic
        for r in self.reads.values():
            if r.tid != acc.tid and r.clock > vc_get(vc, r.tid):
                races.append(Race(self.name, r, acc))
        self.write = acc
        self.reads = {}
        return races
