"""The checker's field readers (``wddmemu/_checker_state.py``; issue 16): codes and flag words
arrive as ints or hex strings, and a flag word is described by its member names with any bits
no member names shown in hex."""

from __future__ import annotations

from enum import IntFlag

from kmd import D3DDDICB_LOCKFLAGS
from umd.ddi import D3DDDI_LOCKASYNCFLAGS, D3DDDI_LOCKFLAGS, D3DDDI_UNLOCKASYNCFLAGS
from wddmemu._checker_state import CBF, LAF, LKF, UAF, as_int, flag_names, hr_of


def fresh_flags() -> type[IntFlag]:
    """A flag class flag_names has never seen: its member table is built, not read from a
    cache a previous test (or mutmut's statistics run, in the process it forks) filled."""

    class F(IntFlag):
        A = 0x2
        B = 0x4
    return F


def test_as_int_reads_ints_hex_strings_and_treats_junk_as_zero() -> None:
    assert [as_int(v) for v in (5, "0x90", "12", None, "junk", "")] == [5, 0x90, 12, 0, 0, 0]


def test_hr_of_is_zero_when_the_event_has_no_hr() -> None:
    assert hr_of({}) == 0
    assert hr_of({"hr": "0x8876021c"}) == 0x8876021C and hr_of({"hr": -1}) == -1


def test_flag_names_names_members_in_order_and_shows_the_rest_in_hex() -> None:
    F = fresh_flags()
    for _ in range(2):  # the second call reads the cached member table
        assert flag_names(F, 0) == "0"
        assert flag_names(F, F.A | F.B) == "A|B"
        assert flag_names(F, 0x1 | F.A) == "A|0x1"  # bit 0 is no member: shown, not dropped
        assert flag_names(F, 0x18) == "0x18"


def test_the_checkers_masks_are_the_flag_members_as_plain_ints() -> None:
    """Issue 13: the checker tests flag words with plain ints (``int & IntFlag`` runs enum's
    Python code), every member of each flag class by its name; words are still named by the
    classes."""
    for masks, flags in ((LAF, D3DDDI_LOCKASYNCFLAGS), (LKF, D3DDDI_LOCKFLAGS),
                         (UAF, D3DDDI_UNLOCKASYNCFLAGS), (CBF, D3DDDICB_LOCKFLAGS)):
        for name, member in flags.__members__.items():
            value = getattr(masks, name)
            assert type(value) is int and value == member
    assert type(0xFFFF & LAF.Discard) is int
    assert flag_names(D3DDDI_LOCKASYNCFLAGS, LAF.Discard | LAF.RangeValid) == "Discard|RangeValid"
