"""The compact record of a run's schedule: :class:`Decisions`.

A long run makes a decision at most scheduling points (~173 per frame of ``dynamic-vb-ring``,
~11.5 million in a 1M-call run). A ``list`` of ints costs 8 bytes a decision (a pointer per
element; the small ints themselves are shared), and the tuple the result used to copy it into
cost 8 more at the end of the run. Here each decision is one byte in an ``array('B')`` while
every tid fits (fewer than 256 threads), widening to two, then eight bytes, only when a tid
needs it; the result shares the engine's array instead of copying it.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload

# typecodes in widening order: a tid that does not fit one moves the record to the next
_WIDER = {"B": "H", "H": "Q"}
_REPR_MAX = 64  # a longer record reprs as its first 64 decisions and its length


def new_log() -> array:
    """An empty decision record for the engine, which appends to it directly (the hot path: a
    bare ``array.append``) and calls :func:`widened` when a tid does not fit."""
    return array("B")


def widened(a: array, tid: int) -> array:
    """``a`` copied into the next wider typecode(s) until ``tid`` fits, with ``tid`` appended.
    Rare: only the 256th (or 65,536th) thread to be chosen gets here."""
    if type(tid) is not int or not 0 <= tid < 1 << 64:  # no typecode holds it (sweep F D6)
        raise ValueError(f"a decision is a thread index 0..2**64-1, not {tid!r}"[:200])
    while True:
        a = array(_WIDER[a.typecode], a)
        try:
            a.append(tid)
            return a
        except OverflowError:
            continue


class Decisions(Sequence[int]):
    """The decisions of a run: the chosen thread's tid at every point where more than one thread
    could run. It behaves as the tuple it stands for: ``==``, ``hash`` and ordering agree with
    ``tuple(decisions)``, indexing gives ints, slicing gives :class:`Decisions`, ``+`` gives a
    tuple, and it pickles. Feed it (or any iterable of ints) to ``Engine("replay",
    decisions=...)``."""

    __slots__ = ("_a",)

    def __init__(self, tids: Iterable[int] = ()) -> None:
        if isinstance(tids, array):
            self._a = tids
        else:
            a = new_log()
            for t in tids:
                try:
                    a.append(t)
                except OverflowError:
                    a = widened(a, t)
            self._a = a

    @overload
    def __getitem__(self, i: int) -> int: ...
    @overload
    def __getitem__(self, i: slice) -> Decisions: ...
    def __getitem__(self, i: int | slice) -> int | Decisions:
        if isinstance(i, slice):
            return Decisions(self._a[i])
        return self._a[i]

    def __len__(self) -> int:
        return len(self._a)

    def __iter__(self) -> Iterator[int]:
        return iter(self._a)

    def _key(self, other: object) -> tuple[int, ...] | None:
        if isinstance(other, Decisions):
            return tuple(other._a)
        if isinstance(other, tuple):
            return other
        return None

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Decisions):
            return len(self._a) == len(other._a) and self._a.tolist() == other._a.tolist()
        if isinstance(other, tuple):
            return len(self._a) == len(other) and tuple(self._a) == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self._a))

    def _cmp(self, other: object) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
        o = self._key(other)
        return None if o is None else (tuple(self._a), o)

    def __lt__(self, other: object) -> bool:
        p = self._cmp(other)
        return NotImplemented if p is None else p[0] < p[1]

    def __le__(self, other: object) -> bool:
        p = self._cmp(other)
        return NotImplemented if p is None else p[0] <= p[1]

    def __gt__(self, other: object) -> bool:
        p = self._cmp(other)
        return NotImplemented if p is None else p[0] > p[1]

    def __ge__(self, other: object) -> bool:
        p = self._cmp(other)
        return NotImplemented if p is None else p[0] >= p[1]

    def __add__(self, other: Any) -> tuple[int, ...]:
        return tuple(self._a) + tuple(other)

    def __radd__(self, other: Any) -> tuple[int, ...]:
        return tuple(other) + tuple(self._a)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Decisions, (self._a,))

    def __repr__(self) -> str:
        # short on purpose: asyncio reprs a finished task's result (the host task's RunResult)
        # as its loop closes, and a full repr of a million-call run's record was a transient
        # ~11 bytes a decision at the very end of the run, i.e. the run's peak RSS
        n = len(self._a)
        if n <= _REPR_MAX:
            return f"Decisions({self._a.tolist()!r})"
        head = ", ".join(map(str, self._a[:_REPR_MAX]))
        return f"<Decisions of {n}: [{head}, ...]>"

    def nbytes(self) -> int:
        """The bytes the tids take (``len × itemsize``): 1 a decision below 256 threads."""
        return len(self._a) * self._a.itemsize
