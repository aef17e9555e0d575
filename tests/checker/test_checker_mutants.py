"""Mutation tests of the checker (issue 16): each test drives the checker with a synthetic
stream of seam events (the checker reads nothing else, so a made-up stream is a fair test) and
asserts the exact findings — rule ids in order, each message word for word and its fields — so
that a changed condition, code, name or message shows. This file holds the harness and the
plumbing/threading rules of ``wddmemu/_checker.py`` and the naming of ``_checker_state.py``;
``test_checker_mutants_ddi.py`` and ``test_checker_mutants_cb.py`` the rule families."""

from __future__ import annotations

from typing import Any

from tests.support.seam import WORKER, Events, run_events

S_OK = "0x00000000"
E_INVALIDARG = "0x80070057"
E_NOTIMPL = "0x80004001"
E_OUTOFMEMORY = "0x8007000E"
WSD = "0x8876021C"  # D3DERR_WASSTILLDRAWING
REMOVED = "0x88760870"  # D3DDDIERR_DEVICEREMOVED
W = WORKER


def found(events: Events) -> list[tuple[str, str, dict[str, Any]]]:
    """(rule, message, fields) of every finding, in the order reported."""
    return [(v.rule, v.message, dict(v.fields)) for v in run_events(events)]


def rules(events: Events) -> list[str]:
    return [v.rule for v in run_events(events)]


def ddi(thread: str, name: str, hr: str | int = S_OK, cbs: tuple | list = (),
        exit_: dict[str, Any] | None = None, device: str = "dev0", **enter: Any) -> Events:
    """One DDI call: its enter, each callback's enter and exit, its exit (with ``exit_``'s
    extra fields, a cookie say)."""
    evs: Events = [(thread, "ddi.enter", {"ddi": name, "device": device, **enter})]
    for cb, e, x in cbs:
        evs.append((thread, "cb.enter", {"cb": cb, "device": device, **e}))
        evs.append((thread, "cb.exit", {"cb": cb, "device": device, **x}))
    evs.append((thread, "ddi.exit", {"ddi": name, "device": device, "hr": hr,
                                     **(exit_ or {})}))
    return evs


def create(version: int = 0xC, device: str = "dev0",
           implements: tuple[str, ...] = ("LockAsync", "UnlockAsync", "Rename")) -> Events:
    return [("app", "ddi.exit", {"ddi": "CreateDevice", "device": device, "hr": S_OK,
                                 "driver_version": version, "implements": list(implements)})]


CREATE = create()
RT = 0x1000  # the runtime's handle of resource 7


def resource(res: int = 7, rt: int = RT, pool: int = 1, kind: str = "vb",
             dynamic: bool = True, allocations: tuple[int, ...] = (1,)) -> Events:
    """CreateResource whose pfnAllocateCb made ``allocations`` (one per subresource), then the
    runtime's rt.resource.create naming it ``vb0@dev0``."""
    made = ddi("app", "CreateResource", cbs=[
        ("pfnAllocateCb", {}, {"hr": S_OK, "allocations": list(allocations)})])
    return [*made, ("app", "rt.resource.create", {
        "device": "dev0", "resource": res, "rt_resource": rt, "kind": kind, "pool": pool,
        "dynamic": dynamic})]


def lockcb(alloc: int, flags: int, new: int | None = None, hr: str = S_OK, **enter: Any
           ) -> tuple:
    x: dict[str, Any] = {"hr": hr, "allocation": alloc}
    if hr == S_OK:
        x["new_allocation"] = alloc if new is None else new
    return ("pfnLockCb", {"allocation": alloc, "flags": flags, **enter}, x)


def unlockcb(*allocs: int, hr: str = S_OK) -> tuple:
    return ("pfnUnlockCb", {"allocations": list(allocs)},
            {"hr": hr, "allocations": list(allocs)})


def put(seq: int, ddi_name: str, refs: list[int], thread: str = "app") -> Events:
    return [("app", "rt.queue.put", {"queue": "dev0.cmdq", "ddi": ddi_name, "seq": seq,
                                     "refs": refs, "thread": thread})]


def get(seq: int, ddi_name: str) -> Events:
    return [(W, "rt.queue.get", {"queue": "dev0.cmdq", "ddi": ddi_name, "seq": seq,
                                 "thread": W})]
