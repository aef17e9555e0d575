"""What the checker remembers per device, rebuilt from seam events only, and how it names things.

Everything here is derived from ``ddi.*``, ``cb.*``, ``rt.*`` and ``kmd.*`` events: nothing is
read from inside a driver, so the state means the same for the reference driver and for a
user's. The naming helpers turn the raw ints of the trace into words a reader of a finding
needs without the trace at hand: flag words by name (``NoOverwrite|RangeValid``), codes by name
(``E_INVALIDARG``), resources as ``vb0@dev0`` and allocation instances as ``vb0@dev0 inst 2``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntFlag
from functools import cached_property
from typing import Any

import kmd
from kmd.flags import int_masks
from umd.ddi import (
    D3DDDI_LOCKASYNCFLAGS,
    D3DDDI_LOCKFLAGS,
    D3DDDI_UNLOCKASYNCFLAGS,
)

#: the flag words' members as plain ints, for the bit tests (``flags & LAF.Discard``): the
#: checker tests a word on every lock it judges, and ``int & IntFlag`` is no int operation —
#: Python hands it to the IntFlag's ``__rand__``, whose result goes through enum's
#: ``__call__`` and ``__new__``, ~1 µs of Python for one ``&``, ~250 of them a
#: ``dynamic-vb-ring`` schedule (issue 13; :func:`kmd.flags.int_masks`). Words are named
#: (:func:`flag_names`) by the flag classes themselves.
LAF = int_masks(D3DDDI_LOCKASYNCFLAGS)
LKF = int_masks(D3DDDI_LOCKFLAGS)
UAF = int_masks(D3DDDI_UNLOCKASYNCFLAGS)
CBF = int_masks(kmd.D3DDDICB_LOCKFLAGS)
S_OK = 0
WSD = int(kmd.D3DERR_WASSTILLDRAWING)
REMOVED = int(kmd.D3DDDIERR_DEVICEREMOVED)
CANT_RENDER_LOCKED = int(kmd.D3DDDIERR_CANTRENDERLOCKEDALLOCATION)
E_NOTIMPL = int(kmd.E_NOTIMPL)
E_OUTOFMEMORY = int(kmd.E_OUTOFMEMORY)
E_INVALIDARG = int(kmd.E_INVALIDARG)

#: ``cb.exit``'s ``invalid`` for a callback the runtime refused because the driver's
#: DestroyDevice had returned (``runtime/_callbacks.py:DESTROYED``; the checker reads events
#: only, so it has its own copy, and a test keeps the two equal)
DESTROYED = "destroyed device"
#: the DDIs the runtime's worker makes for batched calls when the MP layer is on (MP-6)
BATCHED = frozenset({"SetStreamSource", "DrawPrimitive", "Flush", "Present", "DestroyResource"})
#: information-returning DDIs: app thread, after a drain of the queue (MP-5, MP-6)
APP_AFTER_DRAIN = frozenset({"CreateResource", "DestroyDevice"})


def as_int(v: Any) -> int:
    """Trace fields carry codes and flag words as ints or as hex strings ("0x90")."""
    if v.__class__ is int:  # nearly every field: ~550 calls a schedule (issue 13)
        return v
    if isinstance(v, str):
        try:
            return int(v, 0)
        except ValueError:
            return 0
    return int(v or 0)


#: how many items of a driver-controlled list a finding or report line names
FEW = 5


def few(items: Sequence[Any], name: Callable[[Any], str] = repr, n: int = FEW) -> str:
    """``items`` as a bounded list for a message: ``['a', 'b']`` when there are at most ``n``,
    else the first ``n`` and how many more — ``['a', …, 'e', … (99995 more)]``. Every
    finding built from a list the driver controls (the handles of a pfnUnlockCb, say) goes
    through this: a driver unlocking 100 000 handles once made one 2 MB finding."""
    shown = ", ".join(name(x) for x in items[:n])
    more = f", … ({len(items) - n} more)" if len(items) > n else ""
    return f"[{shown}{more}]"


def hr_of(ev: dict[str, Any]) -> int:
    return as_int(ev.get("hr", 0))


#: each flag class's members as plain (value, name) pairs, in definition order: iterating an
#: IntFlag and reading ``.value``/``.name`` through the enum descriptors was most of what
#: describing a call cost (issue 13)
_MEMBERS: dict[type[IntFlag], tuple[tuple[int, str], ...]] = {}


def flag_names(flags: type[IntFlag], value: int) -> str:
    """``NoOverwrite|RangeValid`` for a flag word; bits no member names are shown in hex."""
    members = _MEMBERS.get(flags)
    if members is None:
        members = _MEMBERS[flags] = tuple((int(m.value), str(m.name)) for m in flags)
    names, known = [], 0
    for v, name in members:
        if value & v:
            names.append(name)
            known |= v
    if value & ~known:
        names.append(f"{value & ~known:#x}")
    return "|".join(names) or "0"


def code(hr: int) -> str:
    return kmd.hresult_name(hr)


def is_worker(thread: str) -> bool:
    return thread.endswith(".worker")


@dataclass
class Call:
    """A DDI call in progress on one thread, with the callbacks it made so far."""

    ddi: str
    device: str
    thread: str
    enter: dict[str, Any]
    seq: int
    callbacks: list[tuple[str, dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    cb_open: dict[str, Any] | None = None
    allocated: list[int] = field(default_factory=list)  # pfnAllocateCb handles (CreateResource)
    queued: tuple[int, str] | None = None  # (command seq, app thread) when the worker runs it
    #: (subject, text) of DeviceState.describe's last answer for this call
    described: tuple[str, str] | None = None

    # read once each: the rules ask a call for its key and flags ~3 times each, and the enter
    # event they come from never changes
    @cached_property
    def key(self) -> tuple[int, int]:
        return int(self.enter.get("resource", 0)), int(self.enter.get("subresource_index", 0))

    @cached_property
    def flags(self) -> int:
        return as_int(self.enter.get("flags", 0))

    def cbs(self, name: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        return [(e, x) for n, e, x in self.callbacks if n == name]

    def unlocked(self, h: int) -> int:
        """How many of ``h``'s kernel locks this call's successful pfnUnlockCb released."""
        return sum(as_int(a) == h for _e, x in self.cbs("pfnUnlockCb") if hr_of(x) == 0
                   for a in x.get("allocations", ()))

    def net_locks(self, h: int) -> int:
        """The kernel locks on ``h`` this call took and kept: successful pfnLockCb that
        returned ``h``, less its own pfnUnlockCb of ``h`` (LCB-17, LCB-18)."""
        took = sum(as_int(x.get("new_allocation", 0)) == h
                   for _e, x in self.cbs("pfnLockCb") if hr_of(x) == 0)
        return max(took - self.unlocked(h), 0)


@dataclass
class Discard:
    """A successful Discard LockAsync: its cookie, (resource, sub), the new instance handle and
    who made it (for attribution)."""

    cookie: int
    key: tuple[int, int]
    new_allocation: int
    seq: int
    made_by: str
    renamed_seq: int | None = None
    renames: int = 0


@dataclass
class Held:
    """A lock the application holds: from a successful LockAsync/Lock until its unlock DDI has
    returned. ``handle`` is the allocation the lock DDI locked (or its cached pointer's)."""

    path: str  # "async" | "sync"
    handle: int
    flags: int
    made_by: str
    #: the kernel locks on ``handle`` the lock DDI took and kept (0 for a cached pointer):
    #: what its unlock DDI must release (LCB-17, LCB-18)
    taken: int = 1


@dataclass
class Binding:
    """What made an instance the one draws of (resource, sub) must use: a Rename or a renaming
    Lock (RN-4, LCB-8)."""

    handle: int
    seq: int
    made_by: str


@dataclass
class DrawInfo:
    thread: str = ""  # the thread that made DrawPrimitive (the worker under the MP layer)
    seq: int = 0
    hr: int | None = None
    expect: dict[tuple[int, int], Binding] = field(default_factory=dict)
    submitted_by: str = ""
    handles: list[int] = field(default_factory=list)


@dataclass
class DeviceState:
    """Per device: the checker's picture of the runtime, the driver and the kernel locks."""

    name: str = "?"
    version: int = 0
    implements: frozenset[str] = frozenset()
    mp: bool | None = None
    lost: bool = False
    inside: dict[str, Call] = field(default_factory=dict)  # thread → call
    # resources
    res_name: dict[int, str] = field(default_factory=dict)
    kinds: dict[str, int] = field(default_factory=dict)
    sysmem: set[int] = field(default_factory=set)
    dynamic: set[int] = field(default_factory=set)
    rt_of_driver: dict[int, int] = field(default_factory=dict)
    last_allocated: list[int] = field(default_factory=list)
    owner: dict[int, tuple[tuple[int, int], int]] = field(default_factory=dict)  # h → key, inst
    instances: dict[tuple[int, int], int] = field(default_factory=dict)
    origin: dict[int, str] = field(default_factory=dict)  # instance → the DDI that made it
    # locks
    held: dict[tuple[int, int], Held] = field(default_factory=dict)
    kernel_locks: dict[int, int] = field(default_factory=dict)  # h → outstanding pfnLockCb
    leak_reported: set[int] = field(default_factory=set)
    #: h → how the application's unlock DDI returned while the driver kept a pfnLockCb its
    #: lock DDI took on h (a cached pointer, a wrong handle unlocked): what LCB-18 / LCB-17
    #: name as where the lock was left behind
    kept_by: dict[int, str] = field(default_factory=dict)
    released_under_app: set[int] = field(default_factory=set)
    #: LA-15 was found when a NoOverwrite LockAsync succeeded (the CANTRENDERLOCKEDALLOCATION
    #: it leads to is not reported again)
    la15_at_lock: bool = False
    # LockAsync / Rename
    discards: dict[int, Discard] = field(default_factory=dict)  # cookie → discard
    # new allocation → the latest (in ``discards`` order) Discard that returned it, and each
    # cookie's position in that order: an index, so that naming a draw's instance does not scan
    # every Discard of the run (which made a long run quadratic)
    discard_of: dict[int, Discard] = field(default_factory=dict)
    discard_pos: dict[int, int] = field(default_factory=dict)
    other_cookies: set[int] = field(default_factory=set)  # cookies of non-Discard LockAsyncs
    #: cookies a successful Discard LockAsync returned that are no HANDLE (0, out of range):
    #: LA-12 against the driver, so the runtime's Rename passing one back is no RN-2
    bad_cookies: set[int] = field(default_factory=set)
    #: cookies a Discard LockAsync returned while an earlier one's was still pending (no
    #: Rename yet): LA-12 against the driver; which Discard a later Rename of it means cannot be
    #: told, so its Renames are no RN-1 or RN-6 of the runtime's (sweep G D1)
    reused_cookies: set[int] = field(default_factory=set)
    bound: dict[tuple[int, int], Binding] = field(default_factory=dict)
    # draws
    draws: dict[int, DrawInfo] = field(default_factory=dict)
    draw_resources: dict[int, tuple[int, ...]] = field(default_factory=dict)  # id → rt res
    received: dict[int, None] = field(default_factory=dict)  # draws the driver has, unsubmitted
    #: the highest draw id the runtime has issued (``rt.draw``, DrawPrimitive): the runtime
    #: numbers a device's draws 1, 2, 3…, so a pfnRenderCb carrying any other id carries a
    #: draw no application made (DATA)
    max_draw: int = 0
    # the runtime's queue
    queued: dict[int, tuple[str, str, tuple[int, ...]]] = field(default_factory=dict)
    rt_queued: dict[int, int] = field(default_factory=dict)  # rt resource → queued commands
    executing: dict[str, int] = field(default_factory=dict)  # worker thread → seq it runs
    last_seq: int = 0
    # the command buffer / allocation list sizes the last pfnRenderCb handed back (RCB-3)
    handed: tuple[int, int] | None = None

    def resource(self, res: int) -> str:
        return self.res_name.get(res, f"resource {res:#x}")

    def key_name(self, key: tuple[int, int]) -> str:
        res, sub = key
        return self.resource(res) + (f" sub {sub}" if sub else "")

    def alloc(self, h: int) -> str:
        """``vb0@dev0 inst 2 (0x40000013)``, or the bare handle when it is none of ours."""
        got = self.owner.get(h)
        if got is None:
            return f"allocation {h:#x}"
        key, inst = got
        return f"{self.key_name(key)} inst {inst} ({h:#x})"

    def add_resource(self, res: int, rt: int, kind: str, sysmem: bool, dynamic: bool) -> None:
        n = self.kinds.get(kind, 0)
        self.kinds[kind] = n + 1
        dev = self.name.rsplit(".", 1)[-1]
        self.res_name[res] = f"{kind}{n}@{dev}"
        self.rt_of_driver[res] = rt
        if sysmem:
            self.sysmem.add(res)
        if dynamic:
            self.dynamic.add(res)
        for sub, h in enumerate(self.last_allocated):
            self.owner[h] = ((res, sub), 0)
            self.instances[(res, sub)] = 0
            self.origin[h] = f"CreateResource({self.res_name[res]})"
        self.last_allocated = []

    def new_instance(self, key: tuple[int, int], h: int, made_by: str) -> None:
        if h in self.owner:
            return
        n = self.instances.get(key, 0) + 1
        self.instances[key] = n
        self.owner[h] = (key, n)
        self.origin[h] = made_by

    def add_discard(self, d: Discard) -> None:
        """Record a successful Discard LockAsync (a reused cookie replaces its entry in place,
        as a dict assignment does)."""
        old = self.discards.get(d.cookie)
        self.discards[d.cookie] = d
        pos = self.discard_pos.setdefault(d.cookie, len(self.discard_pos))
        if old is not None and self.discard_of.get(old.new_allocation) is old:
            # a reused cookie for another handle (rare): find that handle's latest again
            del self.discard_of[old.new_allocation]
            again = next((x for x in reversed(self.discards.values())
                          if x.new_allocation == old.new_allocation), None)
            if again is not None:
                self.discard_of[old.new_allocation] = again
        cur = self.discard_of.get(d.new_allocation)
        if cur is None or self.discard_pos[cur.cookie] <= pos:
            self.discard_of[d.new_allocation] = d

    def kernel_unlock(self, h: int) -> None:
        """One pfnUnlockCb of ``h``: a handle with no lock left leaves the map."""
        n = self.kernel_locks.get(h, 0)
        if n > 1:
            self.kernel_locks[h] = n - 1
        elif n == 1:
            del self.kernel_locks[h]
            self.kept_by.pop(h, None)

    def app_unlocked(self, held: Held, call: Call, what: str) -> None:
        """The application's lock ``held`` ended with ``call`` (its unlock DDI ``what``
        returned S_OK): if the driver still holds a pfnLockCb on its handle and this call
        released fewer than its lock DDI took, remember that this is where the lock was left
        (LCB-17, LCB-18). An unlock that released its own lock is not blamed for another's
        (h7: an UnlockAsync was named for the lock a synchronous Lock(Discard) had left)."""
        h = held.handle
        if self.kernel_locks.get(h, 0) <= 0:
            return
        released = call.unlocked(h)
        if released >= held.taken:
            return
        if released:
            self.kept_by[h] = (f"{what} released {released} of the {held.taken} pfnLockCb "
                               f"that {held.made_by} took on {self.alloc(h)}")
        else:
            self.kept_by[h] = (f"{what} returned without pfnUnlockCb on {self.alloc(h)}, which "
                               f"{held.made_by} had locked")

    def left_by(self, handles: Sequence[int]) -> str:
        """``; UnlockAsync(vb0@dev0) on app returned without pfnUnlockCb on vb0@dev0 inst 1,
        which LockAsync(vb0@dev0, NoOverwrite) on app had locked`` for each of ``handles`` an
        application's unlock DDI left locked (at most :data:`FEW`), or nothing: where a lock
        the driver kept began to be a leak."""
        kept = [h for h in handles if h in self.kept_by]
        return "" if not kept else "; " + few(kept, lambda h: self.kept_by[h]).strip("[]")

    def locked_by_driver(self, res: int) -> list[int]:
        """Handles of ``res`` the driver holds a kernel lock on (a cached pointer, LCB-3). A
        handle no resource owns is none's: not resource 0's either (a driver may number its
        resources from 0)."""
        return [h for h, n in self.kernel_locks.items()
                if n > 0 and (got := self.owner.get(h)) is not None and got[0][0] == res]

    def app_side(self, h: int) -> bool:
        """Whether the application may be using ``h``: a lock it holds, or one a lock DDI in
        progress has just taken (the app gets the pointer when that DDI returns)."""
        if any(held.handle == h for held in self.held.values()):
            return True
        for call in self.inside.values():
            if call.ddi in ("LockAsync", "Lock") and any(
                hr_of(x) == 0 and as_int(x.get("new_allocation", 0)) == h
                for _e, x in call.cbs("pfnLockCb")
            ):
                return True
        return False

    def describe(self, call: Call) -> str:
        """``LockAsync(vb0@dev0, Discard|RangeValid) on app`` — the DDI, its subject, thread.

        Remembered on the call: the rules describe a LockAsync at its enter, at each callback
        and at its exit, to have the words ready should one break (~85 a schedule of
        ``dynamic-vb-ring``, issue 13). Only the subject's name can change meanwhile (a
        resource handle the driver hands out again is named afresh), so the text is reused
        while that name stays the same: the same words as describing it anew."""
        subject = self.key_name(call.key) if "resource" in call.enter else ""
        memo = call.described
        if memo is not None and memo[0] == subject:
            return memo[1]
        bits = [subject] if subject else []
        if call.ddi == "LockAsync" and "flags" in call.enter:
            bits.append(flag_names(D3DDDI_LOCKASYNCFLAGS, call.flags))
        elif call.ddi in ("Lock", "Unlock") and "flags" in call.enter:
            bits.append(flag_names(D3DDDI_LOCKFLAGS, call.flags) if call.ddi == "Lock"
                        else f"flags {call.flags:#x}")
        elif call.ddi == "UnlockAsync" and call.flags:
            bits.append(flag_names(D3DDDI_UNLOCKASYNCFLAGS, call.flags))
        if call.ddi == "Rename":
            bits.append(f"cookie {as_int(call.enter.get('cookie', 0)):#x}")
        if call.ddi == "DrawPrimitive":
            bits.append(f"draw {call.enter.get('draw_id')}")
        where = f" on {call.thread}"
        if call.queued is not None:
            where += f" (command {call.queued[0]} queued by {call.queued[1]})"
        text = f"{call.ddi}({', '.join(bits)}){where}"
        call.described = (subject, text)
        return text
