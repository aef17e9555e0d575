"""Steps and footprints: what systematic exploration knows about one run.

A *step* is what one emulated thread does between two consecutive scheduling events of the
engine (a scheduling point, a block, its end). Because exactly one thread runs at a time, a run
is a sequence of steps, and a step's *footprint* is the set of synchronisation objects it touched
and how: ``(("SharedCell", "counter"), "write")``, ``(("Mutex", "m"), "acquire")``… The engine
learns the footprint from the primitives themselves: every operation that follows a scheduling
point names itself at that point (``Engine.point(label, op=(obj, mode))``), and the operations
without a point (release, set, notify, nowait queue operations, spawn, finish) report through
``Engine.touch``. So a thread parked at a point is about to perform exactly the operation the
point names: the *next* step of every runnable thread is known at the choice point, which is
what lets DPOR leave out threads whose next operation would block (a held mutex, an empty
queue, an unset event, an unfinished join) and what sleep sets rest on.

Two steps are *dependent* when they touch the same object and not both only read it (``read``
of a cell, ``wait`` on an event or condition, ``join``); the virtual clock advancing is
dependent with every step (time moves only when no thread can run, so nothing is reordered
across it). Everything else commutes. State shared *outside* these objects (a plain Python list
two threads append to) is invisible here: DPOR is sound only for programs that share through
the engine's objects, like every DPOR tool over its instrumented operations.

:func:`analyse` turns a step sequence into happens-before vector clocks (program order, spawn,
and every dependent pair in run order), from which come the races DPOR reverses and the
canonical key of the run's Mazurkiewicz trace.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ._engine import FINISHED, SLEEPING, VThread
from ._sync import Event, Mutex, Queue

Key = tuple[str, str]
Footprint = tuple[tuple[Key, str], ...]

#: a step that only tried its announced operation and blocked on it (a full queue's put, a held
#: mutex's acquire, an empty queue's get) changed nothing: it only looked at the object, so it
#: is recorded in this mode and reads like a ``read`` (the retry after the wake-up is the step
#: that performs the operation). Recorded as the operation itself, two threads' blocked tries
#: at a deadlock ordered one another, which hid the race of the second try with the first
#: thread's last completed put (fuzzed against dfs: a deadlock with other queue contents)
BLOCKED = "blocked"
#: modes that only observe their object: two of them on one object commute
READ_MODES = frozenset({"read", "wait", "join", BLOCKED})
#: the virtual clock advancing: dependent with every step
CLOCK: Footprint = ((("*", "clock"), "advance"),)
#: spawning changes the engine's thread table (tids are handed out in spawn order)
_SPAWN_KEY: Key = ("Engine", "threads")
CLOCK_TID = -1
#: in the footprint of the step that ends a run with daemons (the last non-daemon thread's
#: finish): the end conflicts with every step, as the clock does, because it takes away
#: whatever the daemons would still have done, and would have cut a daemon that ran to its
#: own end had it come first (a run without daemons ends with an ordinary finish). Without it
#: DPOR took "a daemon runs one more step, then the run ends" for "the run ends, then the
#: daemon runs", which never happens, and every check made at the end tells them apart (h8)
END: tuple[Key, str] = (("*", "end"), "end")


def key_of(obj: Any) -> Key:
    """The footprint key of a synchronisation object: its type and its name. Names keep keys
    stable from one run to the next (objects are new each run); two objects of one type with
    one name share a key, which only adds dependence (safe, just less reduction)."""
    return (type(obj).__name__, str(getattr(obj, "name", "?")))


@dataclass(frozen=True, slots=True)
class Step:
    """One step: the thread (``CLOCK_TID`` for a clock advance), its footprint, and the tids of
    the threads it spawned."""

    tid: int
    fp: Footprint
    spawns: tuple[int, ...] = ()


def dependent(a: Footprint, b: Footprint) -> bool:
    """Whether two footprints conflict: a shared object that not both only read, or a clock
    advance or the end of the run (:data:`END`) on either side."""
    if a == CLOCK or b == CLOCK or END in a or END in b:
        return True
    for ka, ma in a:
        for kb, mb in b:
            if ka == kb and not (ma in READ_MODES and mb in READ_MODES):
                return True
    return False


def would_block(op: tuple[Any, str] | None) -> bool:
    """Whether a thread whose next operation is ``op`` would block if it ran now. Exact for
    mutex acquire, queue put/get, event wait and join; a condition's predicate is unknown, so a
    condition wait counts as runnable (if it blocks, that is just a step like any other)."""
    if op is None:
        return False
    obj, mode = op
    if mode == "acquire" and isinstance(obj, Mutex):
        return obj.owner is not None
    if isinstance(obj, Queue):
        return (mode == "get" and obj.empty()) or (mode == "put" and obj.full())
    if mode == "wait" and isinstance(obj, Event):
        return not obj.is_set()
    if mode == "join" and isinstance(obj, VThread):
        return obj.state != FINISHED
    return False


class StepObserver:
    """Cuts one run into :class:`Step` objects. The engine calls it at every point, touch,
    block, finish and clock advance of a strategy that carries it as ``observer``.

    ``pending[tid]`` is the operation a thread announced at its last point: it is performed at
    the start of the thread's next step (and again after a block, when the thread re-checks and
    completes it), so it belongs to that step's footprint."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.pending: dict[int, tuple[Any, str] | None] = {}
        self._open: list[tuple[Key, str]] = []
        self._spawns: list[int] = []
        self._alive: dict[int, None] = {0: None}  # spawned, not finished (in spawn order)
        self._cut: VThread | None = None  # the thread whose step a failure ended (cut)

    def point(self, t: VThread, op: tuple[Any, str] | None) -> None:
        self._close(t)
        self.pending[t.tid] = op

    def touch(self, t: VThread, op: tuple[Any, str]) -> None:
        obj, mode = op
        if mode == "spawn":
            self._spawns.append(obj.tid)
            self._alive[obj.tid] = None
            self._open.append((_SPAWN_KEY, "spawn"))
        else:
            self._open.append((key_of(obj), mode))

    def block(self, t: VThread) -> None:
        op = self.pending.get(t.tid)
        # nothing done since the point but the try (a condition's wait has released its lock).
        # A sleep blocks with no point of its own: the step before it performed its announced
        # operation (a put that went in, an acquire inside ``async with m: await sleep()``),
        # which recorded as a mere try commuted with the other threads' puts and hid their
        # orders (sweep F's fuzzing: a deadlock end state dpor never reached)
        sleeping = t.state == SLEEPING
        tried = (op is not None and not sleeping and not self._open
                 and isinstance(op[0], (Mutex, Queue)))
        self._close(t, tried=tried)
        if sleeping:  # a sleep is not an announced operation: nothing to complete
            self.pending[t.tid] = None

    def finish(self, t: VThread, *, ends_run: bool = False) -> None:
        self._open.append((key_of(t), "finish"))
        if ends_run or self._cut is t:  # a thread that broke a rule, then returned
            self._open.append(END)
            self._cut = None
        self._close(t)
        self.pending[t.tid] = None
        self._alive.pop(t.tid, None)

    def cut(self, t: VThread, *, finished: bool) -> None:
        """The run ends inside ``t``'s step (it raised, ``finished``, or broke a rule under
        ``stop_on_violation``): that step gets :data:`END` in its footprint, as the last
        non-daemon finish of a run with daemons does. Had another thread's step come first,
        the run would have reached that step and maybe another state (a race two cut-off
        writers make): the end conflicts with every step, so DPOR tries them before it, and
        with each cut-off thread's step never taken, so it tries the threads that never ran.

        The step stays open until :meth:`end_run`: a thread that broke a rule runs on to its
        next engine call, and what it does without one (a nowait get) is part of the step
        and of the run's end state (fuzzed against dfs: a get after a race went unrecorded)."""
        if finished:
            self._open.append((key_of(t), "finish"))
        self._open.append(END)
        self._cut = t

    def end_run(self) -> None:
        """The run's threads stopped running (the runner calls it before it unwinds them, so
        no ``finally`` block's release counts): close the step a failure cut (:meth:`cut`);
        its thread is stopped for good and has no step after the end."""
        t, self._cut = self._cut, None
        if t is not None and t.tid in self._alive:
            self._close(t)
            self.pending[t.tid] = None
            self._alive.pop(t.tid, None)

    def never_taken(self) -> list[Step]:
        """The step each unfinished thread would have taken next, when the run ended (or
        deadlocked) before it could: its announced operation (nothing for a thread that never
        started or sleeps). Never executed, so no race with them shows among the run's steps;
        DPOR analyses them after the run's last step (``_dpor``, h8's F4)."""
        out = []
        for tid in self._alive:
            op = self.pending.get(tid)
            out.append(Step(tid, ((key_of(op[0]), op[1]),) if op is not None else ()))
        return out

    def advance(self, when: int) -> None:
        self.steps.append(Step(CLOCK_TID, CLOCK))

    def _close(self, t: VThread, *, tried: bool = False) -> None:
        """End ``t``'s current step; ``tried``: it only tried its announced operation and
        blocked (:data:`BLOCKED`)."""
        op = self.pending.get(t.tid)
        fp = [(key_of(op[0]), BLOCKED if tried else op[1])] if op is not None else []
        for item in self._open:
            if item not in fp:
                fp.append(item)
        self.steps.append(Step(t.tid, tuple(fp), tuple(self._spawns)))
        self._open = []
        self._spawns = []


class Analysis:
    """Happens-before over one step sequence, as vector clocks over thread *slots* (tid, and one
    last slot for the clock). ``hb(i, k)``: step ``i`` happens before step ``k``."""

    def __init__(self, steps: Sequence[Step], never_taken: Sequence[Step] = ()) -> None:
        """``never_taken`` steps (:meth:`StepObserver.never_taken`) follow ``steps`` at indices
        ``len(steps)`` on, each analysed as if it alone came after the run: one step never
        taken is neither ordered by nor a start of another (each is a different thread's
        alternative to the run's end), so none of them orders, or is an initial of, another's
        race (a daemon's never-taken write hid a worker's put racing with a get, fuzzed
        against dfs)."""
        self.steps = [*steps, *never_taken]
        self.taken = len(steps)
        n_slots = max((s.tid for s in self.steps), default=0) + 2
        self.clock_slot = n_slots - 1
        self.slot = [s.tid if s.tid >= 0 else self.clock_slot for s in self.steps]
        self.local: list[int] = []
        self.clocks: list[list[int]] = []
        self.prev: list[int | None] = []  # program-order predecessor (or the spawning step)
        self.preds: list[dict[int, int]] = []  # slot -> the last dependent step of that slot
        self._build(n_slots)

    def _build(self, n_slots: int) -> None:
        # per object key, per "only reads" flag, per slot: the last step that touched it
        table: dict[Key, dict[bool, dict[int, int]]] = {}
        last: dict[int, int] = {}
        parent: dict[int, int] = {}
        count = [0] * n_slots
        for j, st in enumerate(self.steps):
            s = self.slot[j]
            if j >= self.taken:  # a step never taken: against the run's steps, recorded nowhere
                self._append(j, st, s, table, last, parent, count[s] + 1, n_slots)
                continue
            count[s] += 1
            self._append(j, st, s, table, last, parent, count[s], n_slots)
            for key, mode in st.fp:
                table.setdefault(key, {}).setdefault(mode in READ_MODES, {})[s] = j
            for child in st.spawns:
                parent[child] = j
            last[s] = j

    def _append(self, j: int, st: Step, s: int, table: dict[Key, dict[bool, dict[int, int]]],
                last: dict[int, int], parent: dict[int, int], local: int, n_slots: int) -> None:
        """Step ``j``'s clock: its program-order predecessor's joined with every step it
        depends on, and its own slot's entry ``local`` (its rank in its thread)."""
        p = last.get(s, parent.get(st.tid))
        c = list(self.clocks[p]) if p is not None else [0] * n_slots
        preds = self._dependencies(st, s, table, last)
        for i in preds.values():
            ci = self.clocks[i]
            for x in range(n_slots):
                if ci[x] > c[x]:
                    c[x] = ci[x]
        c[s] = local
        self.local.append(local)
        self.clocks.append(c)
        self.prev.append(p)
        self.preds.append(preds)

    def _dependencies(self, st: Step, s: int, table: dict[Key, dict[bool, dict[int, int]]],
                      last: dict[int, int]) -> dict[int, int]:
        if st.tid == CLOCK_TID or END in st.fp:
            return {x: i for x, i in last.items() if x != s}
        preds: dict[int, int] = {}
        adv = last.get(self.clock_slot)
        if adv is not None:
            preds[self.clock_slot] = adv
        for x, i in table.get(END[0], {}).get(False, {}).items():
            preds[x] = i  # only a step never taken comes after the end: it conflicts with it
        for key, mode in st.fp:
            reads = mode in READ_MODES
            for only_reads, per in table.get(key, {}).items():
                if reads and only_reads:
                    continue
                for x, i in per.items():
                    if x != s and i > preds.get(x, -1):
                        preds[x] = i
        return preds

    def hb(self, i: int, k: int) -> bool:
        return self.clocks[k][self.slot[i]] >= self.local[i]

    def races(self, j: int) -> Iterator[int]:
        """The steps ``i`` in a reversible race with step ``j``: dependent, of another thread,
        and ordered before ``j`` by nothing but their own conflict (Abdulla et al.'s
        ``i ⋖ j``). A mutex release is never reversible with the acquire it enabled (the
        acquire could not run before it); the race is then with the releasing thread's
        *acquire* of that mutex, so the two critical sections swap (as Nidhugg does)."""
        st = self.steps[j]
        if st.tid == CLOCK_TID:
            return
        preds = self.preds[j]
        for s, i in preds.items():
            if s == self.clock_slot:
                continue
            cands = self._lock_acquires(i, st) if _acquires(st) else [i]
            if _tries(st) and i not in cands:
                # a try (acquire_nowait) can also run before the release: it then fails, an
                # outcome no swap of critical sections reaches
                cands.append(i)
            others = [k for x, k in preds.items() if x != s]
            if self.prev[j] is not None:
                others.append(self.prev[j])  # type: ignore[arg-type]
            for cand in cands:
                if cand is not None and not any(self.hb(cand, k) for k in others):
                    yield cand

    def _lock_acquires(self, i: int, st: Step) -> list[int]:
        """The steps to reverse ``st`` (an acquire) with, for its race with step ``i``, which
        released the lock: the step of ``i``'s thread that began the critical section ``i``'s
        first release of the lock ends — and, while that step began its section right after
        releasing the lock in the same step (``release(); acquire_nowait()``, no scheduling
        point between them: the other thread can never take the lock in between), the one
        that began the section before, and so on. Taking only the nearest acquire pointed the
        race at a state where the lock is held, so DPOR never tried the other thread's
        section first (h8's lock_then_try). ``[i]`` when ``i`` released no lock ``st``
        takes; an infeasible candidate costs nothing (its reversal would block there)."""
        fp = self.steps[i].fp
        released = {k for k, m in fp if m == "release"}
        locks = {k for k, m in st.fp if m in _ACQUIRE_MODES} & released
        if not locks:
            return [i]
        first = next(n for n, (k, m) in enumerate(fp) if m == "release" and k in locks)
        out: list[int] = []
        k: int | None = i
        seg = fp[:first]  # in step i, only what came before the release
        while k is not None and self.slot[k] == self.slot[i]:
            began = _section_start(seg, locks)
            if began is not None:
                out.append(k)
                if began:  # a section that began with the lock free at the step's start
                    return out
            k = self.prev[k]
            seg = self.steps[k].fp if k is not None else ()
        return out

    def initials(self, i: int, j: int) -> set[int]:
        """The threads that can start ``notdep(i).j``: the steps after ``i`` that do not
        happen after it, then ``j``; a thread is initial when its first step there has no
        happens-before predecessor there."""
        v = [k for k in range(i + 1, min(j, self.taken)) if not self.hb(i, k)] + [j]
        seen: set[int] = set()
        out: set[int] = set()
        for n, k in enumerate(v):
            s = self.slot[k]
            if s in seen:
                continue
            seen.add(s)
            if s != self.clock_slot and not any(self.hb(v[m], k) for m in range(n)):
                out.add(self.steps[k].tid)
        return out

    def trace_key(self) -> int:
        """A hash of the run's Mazurkiewicz trace: equal for two runs exactly when they have the
        same steps per thread and order every dependent pair the same way."""
        items = sorted(
            (self.slot[j], self.local[j], st.fp, tuple(self.clocks[j]))
            for j, st in enumerate(self.steps)
        )
        return hash(tuple(items))


#: a mutex is taken by ``acquire`` or by a successful ``acquire_nowait`` (``"try"``): either
#: one is the start of a critical section that a race with another acquire may swap
_ACQUIRE_MODES = frozenset({"acquire", "try"})


def _section_start(seg: Footprint, locks: set[Key]) -> bool | None:
    """Whether the footprint ``seg`` acquires one of ``locks`` (``acquire``, or ``try``, which
    may have failed: counting it only adds candidates): None if it does not; True if such an
    acquire comes before any release of the lock in ``seg`` (the lock was free when the step
    began); False if each follows a release in the same step. (A footprint lists each
    (object, mode) once, in the order first performed.)"""
    released = after_release = False
    for k, m in seg:
        if k not in locks:
            continue
        if m == "release":
            released = True
        elif m in _ACQUIRE_MODES:
            if not released:
                return True
            after_release = True
    return False if after_release else None


def _acquires(st: Step) -> bool:
    return any(m in _ACQUIRE_MODES for _, m in st.fp)


def _tries(st: Step) -> bool:
    return any(m == "try" for _, m in st.fp)
