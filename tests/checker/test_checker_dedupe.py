"""One finding per (rule, device, key): what the checker's dedupe keys name (issue 16).

A rule the driver breaks in a loop is one finding; the key says what "the same" is — an
allocation handle for LCB-18/LCB-19, the device for LCB-17, the binding a draw missed for RN-4.
Runtime handles are per device (every device's first resource is 0x100, its first draw 1), so the
device is part of every key: two devices breaking a rule on their own same-numbered resource are
two findings, not one. Each test asserts the exact findings, so a mutant that widens or narrows a
key fails here."""

from __future__ import annotations

from tests.checker.test_checker_mutants import (
    Events,
    W,
    create,
    ddi,
    found,
    lockcb,
    resource,
    rules,
    unlockcb,
)
from tests.checker.test_checker_mutants_ddi import NOOVERWRITE, R, discard, la, rename, ua

LEAK = R + NOOVERWRITE + ua()  # UnlockAsync without pfnUnlockCb: allocation 1 stays locked


def _on(device: str, events: Events) -> Events:
    """The same events, on ``device`` (its worker named after it)."""
    worker = f"{device}.worker"
    return [(worker if t == W else t, e, {**f, "device": device} if "device" in f else f)
            for t, e, f in events]


def _draw(draw_id: int, handle: int) -> Events:
    """A draw of resource 7 received on the worker and submitted reading ``handle``."""
    return [("app", "rt.draw", {"device": "dev0", "draw_id": draw_id, "reads": [[0x1000, 0]]}),
            *ddi(W, "DrawPrimitive", draw_id=draw_id),
            *ddi(W, "Flush", cbs=[("pfnRenderCb", {"allocations": [handle],
                                                   "refs": [[draw_id, handle]]},
                                   {"hr": "0x00000000"})])]


def test_lcb17_is_one_finding_per_device() -> None:
    """LCB-17 (DestroyDevice leaves no pfnLockCb lock): DestroyDevice returning twice for one
    device with a different set left is still the one finding; another device's is its own."""
    again = ddi("app", "Flush", cbs=[lockcb(5, 0x10)]) + ddi("app", "DestroyDevice")
    assert rules(LEAK + ddi("app", "DestroyDevice") + again) == ["LCB-17"]
    two = LEAK + _on("dev1", create(device="dev1") + resource() + NOOVERWRITE + ua())
    got = found(two + ddi("app", "DestroyDevice") + _on("dev1", ddi("app", "DestroyDevice")))
    assert [(r, m[:24], f) for r, m, f in got] == [
        ("LCB-17", "DestroyDevice() on app r", {"allocations": [1]}),
        ("LCB-17", "DestroyDevice() on app r", {"allocations": [1]})]


def test_the_same_resource_number_on_two_devices_is_two_findings() -> None:
    """LA-14 on vb0 of dev0 and on vb0 of dev1 — the same runtime numbers, two devices."""
    no_ignoresync = la(cbs=[lockcb(1, 0x10)]) + ua(cbs=[unlockcb(1)])
    assert rules(R + no_ignoresync + no_ignoresync) == ["LA-14"]
    two = R + no_ignoresync + _on("dev1", create(device="dev1") + resource() + no_ignoresync)
    assert rules(two) == ["LA-14", "LA-14"]


def test_rn4_is_one_finding_per_binding_missed() -> None:
    """RN-4: every draw after Rename that still reads the old instance misses the same binding:
    one finding, the first draw's."""
    renamed = R + discard() + ua(cbs=[unlockcb(2)]) + rename()
    got = found(renamed + _draw(1, 1) + _draw(2, 1))
    assert [(r, f) for r, _m, f in got] == [("RN-4", {"draw": 1, "allocation": 1})]


def test_a_key_is_the_value_not_its_decimal_text() -> None:
    """A flag word with more digits than ``str`` converts (issue 14) is its own key: the checker
    reports KL-5 once, where a decimal-text key raised ValueError out of the checker."""
    huge = (1 << 20000) | 0x1C
    twice = la(cbs=[lockcb(1, huge)]) + ua(cbs=[unlockcb(1)])
    assert [(r, f) for r, _m, f in found(R + twice + twice)] == [("KL-5", {"flags": huge})]
