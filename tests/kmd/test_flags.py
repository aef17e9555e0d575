"""Flag words: documented masks, and every illegal combination of the reference rejected —
by the validator (naming the rule) and by the thunk (STATUS_INVALID_PARAMETER)."""

from __future__ import annotations

import pytest

import kmd
from kmd import D3DDDICB_LOCKFLAGS as LF
from kmd import DXGK_ALLOCATIONINFOFLAGS as AF
from tests.support.kernel import OK, Rig, kmd_events, run_traced


def test_documented_masks() -> None:
    assert [(f.name, f.value) for f in LF] == [
        ("ReadOnly", 0x1),
        ("WriteOnly", 0x2),
        ("DonotWait", 0x4),
        ("IgnoreSync", 0x8),
        ("LockEntire", 0x10),
        ("DonotEvict", 0x20),
        ("AcquireAperture", 0x40),
        ("Discard", 0x80),
        ("NoExistingReference", 0x100),
        ("UseAlternateVA", 0x200),
        ("IgnoreReadSync", 0x400),
    ]
    assert kmd.D3DDDI_ALLOCATIONINFO_FLAGS.Primary == 1
    assert kmd.D3DDDI_ALLOCATIONINFO_FLAGS.Stereo == 2
    assert AF.CpuVisible == 1 and AF.Swizzled == 0x80 and AF.Overlay == 0x100


# (flags, rule) for every illegal D3DDDICB_LOCKFLAGS combination in kernel-contract §1
ILLEGAL_LOCK_FLAGS = [
    (LF.LockEntire | 0x800, "KL-5"),
    (LF.LockEntire | 0x80000000, "KL-5"),
    (LF.LockEntire | LF.ReadOnly | LF.WriteOnly, "KL-6"),
    (LF.LockEntire | LF.IgnoreSync | LF.AcquireAperture, "KL-9"),
    (LF.LockEntire | LF.UseAlternateVA, "KL-10"),
    (LF.LockEntire | LF.NoExistingReference, "LCB-7"),
]


@pytest.mark.parametrize(("flags", "rule"), ILLEGAL_LOCK_FLAGS)
def test_lock_flag_validator_names_the_rule(flags: int, rule: str) -> None:
    assert kmd.validate_lock_flags(flags) == rule


@pytest.mark.parametrize(
    "flags",
    [
        LF.LockEntire,
        LF.LockEntire | LF.Discard | LF.IgnoreSync,  # KL-7: legal, no effect
        LF.LockEntire | LF.Discard | LF.DonotWait,  # KL-8: legal, no effect
        LF.LockEntire | LF.Discard | LF.NoExistingReference,
        LF.LockEntire | LF.AcquireAperture | LF.UseAlternateVA,
        LF.LockEntire | LF.IgnoreReadSync | LF.DonotWait,
    ],
)
def test_legal_lock_flags(flags: int) -> None:
    assert kmd.validate_lock_flags(flags) is None


@pytest.mark.parametrize("garbage", [-1, 1 << 32, True, "0x10", 1.0, None])
def test_lock_flags_that_are_not_a_uint(garbage: object) -> None:
    assert kmd.validate_lock_flags(garbage) == "KL-5"


def test_lock2_flags_must_be_zero() -> None:
    assert kmd.validate_lock2_flags(0) is None
    for v in (1, 0x10, 0x80000000, -1, True, None):
        assert kmd.validate_lock2_flags(v) == "KL2-1"


def test_allocationinfo_flags() -> None:
    P, ST = kmd.D3DDDI_ALLOCATIONINFO_FLAGS.Primary, kmd.D3DDDI_ALLOCATIONINFO_FLAGS.Stereo
    assert kmd.validate_allocationinfo_flags(0) is None
    assert kmd.validate_allocationinfo_flags(P | ST) is None
    assert kmd.validate_allocationinfo_flags(ST) == "AC-8"
    assert kmd.validate_allocationinfo_flags(4) == "AC-8"


@pytest.mark.parametrize(
    ("flags", "primary", "rule"),
    [
        (AF.PermanentSysMem, False, "CA-11"),
        (AF.Cached, False, "CA-11"),
        (AF.HistoryBuffer, False, "CA-11"),
        (AF.CpuVisible | AF.Protected | AF.ExistingSysMem, False, "CA-12"),
        (AF.CpuVisible | AF.PermanentSysMem | AF.ExistingKernelSysMem, False, "CA-12"),
        (AF.CpuVisible | AF.Cached, True, "CA-13"),
        (AF.CpuVisible | AF.PermanentSysMem, True, "CA-13"),
        (AF.CpuVisible | AF.UseAlternateVA, False, "CA-14"),
        (AF.ExplicitResidencyNotification, False, "CA-17"),
    ],
)
def test_dxgk_allocation_flag_rules(flags: int, primary: bool, rule: str) -> None:
    assert kmd.validate_dxgk_allocation_flags(flags, primary) == rule
    assert kmd.validate_dxgk_allocation_flags(AF.CpuVisible | AF.UseAlternateVA, True) is None


def test_every_illegal_lock_combination_is_rejected_by_the_thunk() -> None:
    async def main() -> None:
        rig = await Rig().setup()
        h = await rig.alloc(segments="aperture")
        for flags, _rule in ILLEGAL_LOCK_FLAGS:
            st, a = await rig.lock(h, flags)
            assert st == kmd.STATUS_INVALID_PARAMETER
            assert a.data is None  # KL-1: nothing written on failure
        st, _ = await rig.lock(h, LF.LockEntire, gpu_virtual_address=0x1000)  # KL-5
        assert st == kmd.STATUS_INVALID_PARAMETER
        for v in (1, 0x80000000):
            st, a = await rig.lock2(h, v)  # KL2-1
            assert st == kmd.STATUS_INVALID_PARAMETER and a.data is None
        st, _ = await rig.lock(h)
        assert st == OK

    _, events = run_traced(main)
    rules = [e.get("rule") for e in kmd_events(events, "kmd.lock") if e["status"] != "0x00000000"]
    assert rules == [r for _, r in ILLEGAL_LOCK_FLAGS] + ["KL-5"]
    assert [e["rule"] for e in kmd_events(events, "kmd.lock2")] == ["KL2-1", "KL2-1"]


# ---- mutants bench/mutants.py found alive (issue 16) -------------------------------------


def test_flag_words_are_32_bit_uints_up_to_and_including_all_ones() -> None:
    from kmd.flags import as_flag_value

    assert as_flag_value(0xFFFFFFFF) == 0xFFFFFFFF  # the boundary is a valid UINT
    assert as_flag_value(0x1_0000_0000) is None
    assert as_flag_value(-1) is None and as_flag_value(True) is None


def test_writeonly_alone_is_a_valid_lock_and_readonly_with_it_is_kl6() -> None:
    LF = kmd.D3DDDICB_LOCKFLAGS
    assert kmd.validate_lock_flags(int(LF.WriteOnly)) is None
    assert kmd.validate_lock_flags(int(LF.ReadOnly)) is None
    assert kmd.validate_lock_flags(int(LF.ReadOnly | LF.WriteOnly)) == "KL-6"


def test_a_miniport_flag_word_that_is_no_uint_is_ca2() -> None:
    for bad in (None, -1, 2**32, True, "1"):
        assert kmd.validate_dxgk_allocation_flags(bad, primary=False) == "CA-2"
