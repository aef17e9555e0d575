"""DeviceState.describe remembers its answer on the call (issue 13), and gives the words a
fresh description would: only the subject's name can change while a call is open."""

from __future__ import annotations

from umd.ddi import D3DDDI_LOCKASYNCFLAGS
from wddmemu._checker_state import Call, DeviceState

DISCARD = int(D3DDDI_LOCKASYNCFLAGS.Discard)


def _call(**enter: object) -> Call:
    return Call("LockAsync", "dev0", "app", {"resource": 0x100, "flags": DISCARD, **enter}, 1)


def test_describe_is_remembered_while_the_subject_keeps_its_name() -> None:
    dev = DeviceState(name="dev0")
    dev.res_name[0x100] = "vb0@dev0"
    call = _call()
    first = dev.describe(call)
    assert first == "LockAsync(vb0@dev0, Discard) on app"
    assert dev.describe(call) is first  # the remembered text, not built again


def test_a_renamed_subject_is_described_afresh() -> None:
    dev = DeviceState(name="dev0")
    dev.res_name[0x100] = "vb0@dev0"
    call = _call()
    dev.describe(call)
    dev.res_name[0x100] = "vb1@dev0"  # the driver handed handle 0x100 out again
    assert dev.describe(call) == "LockAsync(vb1@dev0, Discard) on app" == dev.describe(_call())


def test_a_call_without_a_subject_is_remembered_too() -> None:
    dev = DeviceState(name="dev0")
    call = Call("Flush", "dev0", "dev0.worker", {}, 1)
    call.queued = (3, "app")
    first = dev.describe(call)
    assert first == "Flush() on dev0.worker (command 3 queued by app)"
    assert dev.describe(call) is first
