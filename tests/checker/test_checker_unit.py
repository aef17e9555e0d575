"""Checker branches that no seeded bug reaches, driven by synthetic seam events: the checker
reads only events, so a made-up stream of them is a fair test."""

from __future__ import annotations

from typing import Any

import vthreads as vt
from wddmemu._checker import Checker

S_OK, E_INVALIDARG = "0x00000000", "0x80070057"


def rules_for(events: list[tuple[str, str, dict[str, Any]]]) -> list[str]:
    """Log ``events`` in order, each from its named emulated thread ("app" or the worker)."""
    eng = vt.Engine()
    Checker().attach(eng)

    async def worker(inbox: vt.Queue, acks: vt.Queue) -> None:
        while True:
            item = await inbox.get()
            if item is None:
                return
            vt.log(item[0], **item[1])
            await acks.put(True)

    async def main() -> None:
        inbox: vt.Queue = vt.Queue("inbox")
        acks: vt.Queue = vt.Queue("acks")
        w = vt.spawn("dev0.worker", worker, inbox, acks)
        for thread, event, fields in events:
            if thread == "app":
                vt.log(event, **fields)
            else:
                await inbox.put((event, fields))
                await acks.get()
        await inbox.put(None)
        await w.join()

    r = eng.run(main, name="app")
    assert r.failure is None, r.summary()
    return r.rules()


def ddi(thread: str, name: str, hr: str = S_OK, cbs: tuple = (), **enter: Any) -> list:
    evs = [(thread, "ddi.enter", {"ddi": name, "device": "dev0", **enter})]
    for cb, e, x in cbs:
        evs.append((thread, "cb.enter", {"cb": cb, "device": "dev0", **e}))
        evs.append((thread, "cb.exit", {"cb": cb, "device": "dev0", **x}))
    evs.append((thread, "ddi.exit", {"ddi": name, "device": "dev0", "hr": hr}))
    return evs


CREATE = [("app", "ddi.exit", {"ddi": "CreateDevice", "device": "dev0", "hr": S_OK,
                               "driver_version": 0xC,
                               "implements": ["LockAsync", "UnlockAsync", "Rename"]})]


def test_lock_without_pfnlockcb_is_lk6_and_unlock_without_pfnunlockcb_is_lk11() -> None:
    evs = CREATE + ddi("app", "Lock", resource=7, flags=0) + ddi("app", "Unlock", resource=7)
    assert rules_for(evs) == ["LK-6", "LK-11"]
    good = CREATE + ddi("app", "Lock", resource=7, flags=0, cbs=[
        ("pfnLockCb", {"allocation": 1, "flags": 0x10}, {"hr": S_OK, "new_allocation": 1})
    ]) + ddi("app", "Unlock", resource=7, cbs=[
        ("pfnUnlockCb", {"allocations": [1]}, {"hr": S_OK, "allocations": [1]})
    ])
    assert rules_for(good) == []


def _discard(resource: int, cookie: int) -> list:
    evs = ddi("app", "LockAsync", resource=resource, flags=0x2, cbs=[
        ("pfnLockCb", {"allocation": 1, "flags": 0x80},
         {"hr": S_OK, "allocation": 1, "new_allocation": 2})
    ])
    evs[-1][2]["cookie"] = cookie  # LockAsync's exit carries the cookie it handed out
    return evs


def test_rename_of_another_resource_is_rn6() -> None:
    evs = CREATE + _discard(7, 0xC1) + ddi("dev0.worker", "Rename", resource=9, cookie=0xC1)
    assert rules_for(evs) == ["RN-6"]
    ok = CREATE + _discard(7, 0xC1) + ddi("dev0.worker", "Rename", resource=7, cookie=0xC1)
    assert rules_for(ok) == []


def test_unlockasync_ok_without_outstanding_lockasync_is_ua3() -> None:
    evs = CREATE + ddi("app", "UnlockAsync", resource=7)
    assert rules_for(evs) == ["UA-3"]
    refused = CREATE + ddi("app", "UnlockAsync", hr=E_INVALIDARG, resource=7)
    assert rules_for(refused) == []
