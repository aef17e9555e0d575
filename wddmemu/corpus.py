"""The seeded-bug corpus: every named bug the project pins, with the scenario that exposes it.

Each entry is a real bug class a driver or runtime author makes — in the user-mode driver
(``umd.variants``), in the runtime (``runtime.RUNTIME_BUGS``) or in the kernel
(``kmd.KERNEL_BUGS``) — and the rule ids a checker may cite first when it shows. ``explore``
must find every entry with ``pct`` within 1,000 schedules (``tests/explore``); ``bench/explore.py``
measures how fast each strategy finds it.

:data:`HARD_CORPUS` (issue 12) holds the bugs a strategy has to earn: fifo never exposes them
and random sampling rarely does on its first schedule — lost updates under a lock whose window
opens only while the *other* thread runs a long stretch of independent steps, all at DDI 0xB
(below it the runtime never overlaps the app thread and the worker). One bug may appear with
several scenarios (``name@scenario``): each is its own window. Each entry names the strategy
the tests use to find it (``finder``) and the bound they allow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._runner import RunSpec


@dataclass(frozen=True)
class SeededBug:
    name: str
    layer: str  # "umd" | "runtime" | "kmd"
    rules: tuple[str, ...]  # acceptable first findings
    scenario: str
    params: dict[str, Any] = field(default_factory=dict)
    driver: str = "reference"
    bugs: tuple[str, ...] = ()
    ddi_version: int | None = None
    #: only some interleavings expose it (fifo does not)
    schedule_dependent: bool = False
    #: hard corpus: the strategy ``tests/explore/test_hard_corpus.py`` finds it with
    finder: str = "pct"

    @property
    def bug(self) -> str:
        """The seeded bug's registry name (``name`` without its ``@scenario``)."""
        return self.name.partition("@")[0]

    def spec(self) -> RunSpec:
        return RunSpec(self.scenario, params=dict(self.params), driver=self.driver,
                       ddi_version=self.ddi_version, bugs=self.bugs)

    def reference(self) -> RunSpec:
        return RunSpec(self.scenario, params=dict(self.params), ddi_version=self.ddi_version)


def _d(name: str, rules: tuple[str, ...], scenario: str, **kw: Any) -> SeededBug:
    return SeededBug(name, "umd", rules, scenario, driver=name, **kw)


def _r(name: str, rules: tuple[str, ...], scenario: str, **kw: Any) -> SeededBug:
    layer = "kmd" if name == "donotwait-waits" else "runtime"
    bugs = (name,)
    return SeededBug(name, layer, rules, scenario, bugs=bugs, **kw)


CORPUS: tuple[SeededBug, ...] = (
    # --- the user-mode driver
    _d("track-in-lockasync", ("LA-13", "DATA"), "dynamic-vb-ring"),
    _d("flush-on-rename-failure", ("LA-10",), "rename-failure-recovery",
       schedule_dependent=True),
    _d("noexistingref-with-queued-refs", ("LA-9", "DATA"), "dynamic-vb-ring",
       schedule_dependent=True),
    _d("nooverwrite-local-vidmem", ("LA-14", "LA-15"), "nooverwrite-local-vidmem"),
    _d("discard-ignored", ("DATA", "LA-8"), "discard-every-frame"),
    _d("no-driver-lock", ("RACE",), "reentrant-lockasync", ddi_version=0xB,
       schedule_dependent=True),
    _d("unlockasync-skips-unlockcb", ("UA-4",), "dynamic-vb-ring"),
    _d("wasstilldrawing-without-discard", ("LA-14", "LA-11"), "dynamic-vb-ring"),
    _d("swallow-callback-errors", ("ERR-1",), "tdr-mid-lock"),
    _d("lock-order-deadlock", ("deadlock",), "reentrant-lockasync", ddi_version=0xB,
       schedule_dependent=True),
    _d("unlockasync-wrong-handle", ("UA-4",), "dynamic-vb-ring"),
    _d("rename-ignores-cookie", ("RN-4", "LA-13", "DATA"), "discard-every-frame",
       params={"frames": 6}),
    _d("lockcb-readonly-writeonly", ("KL-6",), "dynamic-vb-ring"),
    _d("lockcb-ignoresync-acquireaperture", ("KL-9",), "dynamic-vb-ring"),
    _d("lockcb-alternateva-alone", ("KL-10",), "dynamic-vb-ring"),
    _d("crash-in-rename", ("exception",), "dynamic-vb-ring"),
    # --- the runtime
    _r("gate-missing", ("LA-3", "MP-1"), "reentrant-lockasync", ddi_version=0xA,
       schedule_dependent=True),
    _r("rename-jumps-queue", ("MP-5", "LA-13", "DATA"), "dynamic-vb-ring"),
    _r("rename-wrong-cookie", ("RN-2",), "dynamic-vb-ring"),
    _r("rename-twice", ("RN-1",), "dynamic-vb-ring"),
    _r("worker-queue-unlocked", ("RACE",), "reentrant-lockasync"),
    SeededBug("lockasync-without-triple", "runtime", ("LA-1",), "dynamic-vb-ring",
              driver="no-rename", bugs=("lockasync-without-triple",)),
    _r("sysmem-lockasync-below-b", ("LA-4",), "sysmem-surface-lock", ddi_version=0xA),
    _r("noexistingrefs-always", ("LA-9", "DATA"), "dynamic-vb-ring"),
    _r("unlockasync-after-sync-lock", ("UA-3",), "dynamic-vb-ring"),
    _r("lockasync-conflicting-flags", ("LA-5",), "lock-flags"),
    _r("lockasync-two-regions", ("LA-6",), "dynamic-vb-ring"),
    _r("lockasync-reserved-bit", ("LA-7",), "dynamic-vb-ring"),
    # skipping the drain shows on every schedule (MP-6); two threads inside the driver only on
    # some (MP-1)
    _r("create-resource-ungated", ("MP-1", "MP-6"), "multi-app-threads"),
    _r("rename-on-app-thread", ("RN-3",), "dynamic-vb-ring"),
    _r("draw-while-locked", ("LK-8",), "lock-flags"),
    # --- the kernel
    _r("donotwait-waits", ("KL-21",), "gl-icd-lock-entire"),
)


def _hard(name: str, rules: tuple[str, ...], scenario: str, **kw: Any) -> SeededBug:
    bug = name.partition("@")[0]
    if bug.startswith("refs-"):  # the runtime's
        return SeededBug(name, "runtime", rules, scenario, bugs=(bug,), ddi_version=0xB,
                         schedule_dependent=True, finder="pos", **kw)
    return SeededBug(name, "umd", rules, scenario, driver=bug, ddi_version=0xB,
                     schedule_dependent=True, finder="pos", **kw)


HARD_CORPUS: tuple[SeededBug, ...] = (
    # the driver drops its lock around a Discard's pfnLockCb: a whole Rename must fit in
    _hard("discard-lockcb-unlocked", ("RN-4",), "reentrant-lockasync"),
    _hard("discard-lockcb-unlocked@dynamic-vb-ring", ("RN-4",), "dynamic-vb-ring"),
    # Rename drops its lock mid-way: a whole Discard LockAsync must fit in
    _hard("rename-frees-unlocked", ("DATA",), "reentrant-lockasync"),
    # the runtime's queued-reference count: released early, or counted down non-atomically
    _hard("refs-released-on-take", ("LA-9",), "reentrant-lockasync"),
    _hard("refs-released-on-take@discard-every-frame", ("LA-9",), "discard-every-frame"),
    _hard("refs-released-on-take@multi-app-threads", ("LA-9",), "multi-app-threads"),
    _hard("refs-count-lost", ("LA-9",), "reentrant-lockasync"),
    _hard("refs-count-lost@dynamic-vb-ring", ("LA-9",), "dynamic-vb-ring"),
    _hard("refs-count-lost@discard-every-frame", ("LA-9",), "discard-every-frame"),
    # Rename writes back a copy of the pending cookies after a window: a Discard's cookie in
    # between is lost, its Rename refused (the app then sees the batched failure: exception)
    _hard("rename-cookies-unlocked", ("DATA", "exception"), "dynamic-vb-ring"),
    # the worker's submit writes back a copy of tracking: a Discard in between loses `newest`
    _hard("submit-tracking-unlocked", ("DATA", "exception"), "dynamic-vb-ring"),
    # … or of the pending cookies: a Discard's cookie in between is lost
    _hard("submit-cookies-unlocked", ("DATA", "exception"), "dynamic-vb-ring"),
    # DrawPrimitive writes back a copy of tracking: a Discard in between loses `newest`
    # (on dynamic-vb-ring random's first schedule finds it for 7 of 10 seeds: not hard there)
    _hard("draw-tracking-unlocked@discard-every-frame", ("DATA", "exception"),
          "discard-every-frame"),
    # the runtime judges "no queued references" by its queue being empty: a draw the worker
    # has taken and the driver not yet recorded is missed
    _hard("refs-from-queue-length@discard-every-frame", ("LA-9",), "discard-every-frame"),
    # a NoOverwrite LockAsync writes back a copy of tracking taken before its unlocked
    # pfnLockCb: a Rename in between is lost (two app threads: random's first schedule finds
    # it on 8 of 10 seeds with reentrant-lockasync, 5 with dynamic-vb-ring)
    _hard("nooverwrite-lockcb-unlocked@multi-app-threads", ("RN-4",), "multi-app-threads"),
)
