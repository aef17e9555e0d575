"""Sweep G D1: a driver whose Discard LockAsync hands out an hCookie still pending from an
earlier Discard (no Rename yet) was reported as the runtime's RN-1 ("the runtime called Rename
2 times for cookie …"), pointing the user at the wrong layer. It is the driver's LA-12: a cookie
represents one renamed allocation. The runtime's Renames of a reused cookie are no RN-1/RN-6,
and a cookie reused after its Rename is fine."""

from __future__ import annotations

from typing import Any

from umd import ReferenceDevice, ReferenceDriver
from umd.ddi import D3DDDI_LOCKASYNCFLAGS as LAF
from wddmemu import RunSpec, run_scenario

#: where the hostile driver's cookie names start (any HANDLE will do)
NAMES = 0xACE0000


class NamesCookiesByCount(ReferenceDevice):
    """Sweep G's bug: a Discard's hCookie is ``NAMES + (cookies pending) + 1``. Once the worker
    has renamed an older Discard but not a newer one, the next Discard's name is the newer
    one's, still pending. Rename maps a name back to the oldest pending real cookie."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pending: list[int] = []

    async def pfn_lock_async(self, args: Any) -> int:
        hr = await super().pfn_lock_async(args)
        if hr == 0 and args.flags & LAF.Discard:
            self.pending.append(args.cookie)
            args.cookie = NAMES + len(self.pending)
        return hr

    async def pfn_rename(self, args: Any) -> int:
        args.cookie = self.pending.pop(0)
        return await super().pfn_rename(args)


class ReusesNamesAfterRename(ReferenceDevice):
    """Names each Discard's hCookie by the lowest name no pending cookie has: a name comes back
    only once its Rename came, which is a cookie reused after its Rename."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.names: dict[int, int] = {}  # name → the real cookie it stands for

    async def pfn_lock_async(self, args: Any) -> int:
        hr = await super().pfn_lock_async(args)
        if hr == 0 and args.flags & LAF.Discard:
            name = next(n for n in range(NAMES + 1, NAMES + 2 + len(self.names))
                        if n not in self.names)
            self.names[name] = args.cookie
            args.cookie = name
        return hr

    async def pfn_rename(self, args: Any) -> int:
        args.cookie = self.names.pop(args.cookie)
        return await super().pfn_rename(args)


def _run(device: type[ReferenceDevice], seed: int) -> Any:
    return run_scenario(RunSpec("dynamic-vb-ring", driver=lambda: ReferenceDriver(
        device_class=device), strategy="pos", seed=seed, params={"frames": 6})).run


def _rules(run: Any) -> list[str]:
    return sorted({v.rule for v in run.violations})


def test_a_cookie_still_pending_handed_out_again_is_the_drivers_la12() -> None:
    seen = [_run(NamesCookiesByCount, seed) for seed in range(1, 9)]
    reused = [r for r in seen if any(v.rule == "LA-12" for v in r.violations)]
    assert reused, [_rules(r) for r in seen]  # pos reuses a pending cookie within 8 seeds
    for run in reused:
        assert "RN-1" not in _rules(run) and "RN-6" not in _rules(run), _rules(run)
        (la12,) = [v for v in run.violations if v.rule == "LA-12"]
        assert "which an earlier LockAsync(" in la12.message, la12.message
        assert "no Rename has carried back yet" in la12.message, la12.message


def test_a_cookie_reused_after_its_rename_is_no_finding() -> None:
    for seed in range(1, 9):
        run = _run(ReusesNamesAfterRename, seed)
        assert "LA-12" not in _rules(run), (seed, run.summary())
