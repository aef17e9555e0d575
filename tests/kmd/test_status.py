"""Status codes: real values, helpers, and the NTSTATUS → HRESULT callback mapping (§13)."""

from __future__ import annotations

import pytest

import kmd
from kmd import HRESULT, NTSTATUS, ntstatus_to_hresult_for_callback


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("STATUS_SUCCESS", 0x00000000),
        ("STATUS_INVALID_HANDLE", 0xC0000008),
        ("STATUS_INVALID_PARAMETER", 0xC000000D),
        ("STATUS_NO_MEMORY", 0xC0000017),
        ("STATUS_ILLEGAL_INSTRUCTION", 0xC000001D),
        ("STATUS_PRIVILEGED_INSTRUCTION", 0xC0000096),
        ("STATUS_INVALID_USER_BUFFER", 0xC00000E8),
        ("STATUS_DEVICE_REMOVED", 0xC00002B6),
        ("STATUS_GRAPHICS_NO_VIDEO_MEMORY", 0xC01E0100),
        ("STATUS_GRAPHICS_CANT_LOCK_MEMORY", 0xC01E0101),
        ("STATUS_GRAPHICS_ALLOCATION_BUSY", 0xC01E0102),
        ("STATUS_GRAPHICS_TOO_MANY_REFERENCES", 0xC01E0103),
        ("STATUS_GRAPHICS_UNSWIZZLING_APERTURE_UNAVAILABLE", 0xC01E0107),
        ("STATUS_GRAPHICS_CANT_EVICT_PINNED_ALLOCATION", 0xC01E0109),
        ("STATUS_GRAPHICS_CANT_RENDER_LOCKED_ALLOCATION", 0xC01E0111),
        ("STATUS_GRAPHICS_INVALID_ALLOCATION_INSTANCE", 0xC01E0113),
        ("STATUS_GRAPHICS_GPU_EXCEPTION_ON_DEVICE", 0xC01E0200),
        ("S_OK", 0),
        ("E_NOTIMPL", 0x80004001),
        ("E_OUTOFMEMORY", 0x8007000E),
        ("E_INVALIDARG", 0x80070057),
        ("D3DERR_WASSTILLDRAWING", 0x8876021C),
        ("D3DDDIERR_WASSTILLDRAWING", 0x8876021C),
        ("D3DERR_OUTOFVIDEOMEMORY", 0x8876017C),
        ("D3DERR_NOTAVAILABLE", 0x8876086A),
        ("D3DERR_DEVICELOST", 0x88760868),
        ("D3DDDIERR_DEVICEREMOVED", 0x88760870),
        ("D3DDDIERR_INVALIDCALL", 0x8876086C),
        ("D3DDDIERR_PRIVILEGEDINSTRUCTION", 0x88760871),
        ("D3DDDIERR_INVALIDINSTRUCTION", 0x88760872),
        ("D3DDDIERR_ILLEGALINSTRUCTION", 0x88760872),
        ("D3DDDIERR_INVALIDHANDLE", 0x88760873),
        ("D3DDDIERR_INVALIDUSERBUFFER", 0x88760879),
        ("D3DDDIERR_CANTEVICTPINNEDALLOCATION", 0xC0262109),
        ("D3DDDIERR_CANTRENDERLOCKEDALLOCATION", 0xC0262111),
    ],
)
def test_real_values(name: str, value: int) -> None:
    assert getattr(kmd, name) == value


def test_device_removed_is_not_device_lost() -> None:
    # kernel-contract §13: one third-party shim aliases them; they differ
    assert kmd.D3DDDIERR_DEVICEREMOVED != kmd.D3DERR_DEVICELOST


def test_nt_success_and_failed_accept_signed_and_unsigned() -> None:
    assert kmd.NT_SUCCESS(0)
    assert kmd.NT_SUCCESS(0x401E000A)  # informational
    assert not kmd.NT_SUCCESS(0xC01E0102)
    assert not kmd.NT_SUCCESS(-1071775486)  # the same code as int32
    assert kmd.FAILED(0x8876021C) and kmd.FAILED(-2005532132)
    assert kmd.SUCCEEDED(0) and not kmd.FAILED(0)


def test_readable_names() -> None:
    assert kmd.status_name(0xC01E0102) == "STATUS_GRAPHICS_ALLOCATION_BUSY"
    assert kmd.status_name(-1071775486) == "STATUS_GRAPHICS_ALLOCATION_BUSY"
    assert kmd.status_name(HRESULT.D3DDDIERR_DEVICEREMOVED) == "D3DDDIERR_DEVICEREMOVED"
    assert kmd.status_name(0x8876021C) == "D3DERR_WASSTILLDRAWING"
    assert kmd.status_name(0x12345678) == "0x12345678"
    assert kmd.status_name("garbage") == "'garbage'"  # type: ignore[arg-type]
    assert kmd.hex32(0xC01E0102) == "0xC01E0102"
    assert kmd.hex32(-1071775486) == "0xC01E0102"


def test_graphics_facility_pattern_matches_winerror() -> None:
    # NTSTATUS 0xC01E0xyz <-> ERROR_GRAPHICS_* 0xC0262xyz (golang.org/x/sys zerrors_windows.go)
    assert kmd.graphics_hresult(0xC01E0109) == 0xC0262109
    assert kmd.graphics_hresult(0xC01E0111) == 0xC0262111
    assert kmd.graphics_hresult(0xC01E0100) == HRESULT.ERROR_GRAPHICS_NO_VIDEO_MEMORY
    assert kmd.graphics_hresult(0xC01E0200) == HRESULT.ERROR_GRAPHICS_GPU_EXCEPTION_ON_DEVICE
    assert kmd.graphics_hresult(0xC0000017) == kmd.hresult_from_nt(0xC0000017) == 0xD0000017


@pytest.mark.parametrize(
    ("status", "call", "expected"),
    [
        (NTSTATUS.STATUS_SUCCESS, "pfnLockCb", HRESULT.S_OK),
        (NTSTATUS.STATUS_GRAPHICS_ALLOCATION_BUSY, "pfnLockCb", HRESULT.D3DERR_WASSTILLDRAWING),
        (NTSTATUS.STATUS_DEVICE_REMOVED, "pfnLockCb", HRESULT.D3DDDIERR_DEVICEREMOVED),
        (NTSTATUS.STATUS_DEVICE_REMOVED, "pfnAllocateCb", HRESULT.D3DDDIERR_DEVICEREMOVED),
        (NTSTATUS.STATUS_DEVICE_REMOVED, "pfnRenderCb", HRESULT.D3DDDIERR_DEVICEREMOVED),
        (NTSTATUS.STATUS_INVALID_PARAMETER, "pfnLockCb", HRESULT.E_INVALIDARG),
        (NTSTATUS.STATUS_INVALID_PARAMETER, "pfnDeallocateCb", HRESULT.E_INVALIDARG),
        (NTSTATUS.STATUS_NO_MEMORY, "pfnAllocateCb", HRESULT.E_OUTOFMEMORY),
        (
            NTSTATUS.STATUS_GRAPHICS_NO_VIDEO_MEMORY,
            "pfnAllocateCb",
            HRESULT.D3DERR_OUTOFVIDEOMEMORY,
        ),
        (NTSTATUS.STATUS_GRAPHICS_CANT_LOCK_MEMORY, "pfnLockCb", HRESULT.D3DERR_NOTAVAILABLE),
        (
            NTSTATUS.STATUS_GRAPHICS_UNSWIZZLING_APERTURE_UNAVAILABLE,
            "pfnLockCb",
            HRESULT.D3DERR_NOTAVAILABLE,
        ),
        (
            NTSTATUS.STATUS_GRAPHICS_CANT_EVICT_PINNED_ALLOCATION,
            "pfnLockCb",
            HRESULT.D3DDDIERR_CANTEVICTPINNEDALLOCATION,
        ),
        (
            NTSTATUS.STATUS_GRAPHICS_CANT_RENDER_LOCKED_ALLOCATION,
            "pfnRenderCb",
            HRESULT.D3DDDIERR_CANTRENDERLOCKEDALLOCATION,
        ),
        (
            NTSTATUS.STATUS_GRAPHICS_TOO_MANY_REFERENCES,
            "pfnLockCb",
            HRESULT.ERROR_GRAPHICS_TOO_MANY_REFERENCES,
        ),
        (
            NTSTATUS.STATUS_GRAPHICS_INVALID_ALLOCATION_INSTANCE,
            "pfnRenderCb",
            HRESULT.ERROR_GRAPHICS_INVALID_ALLOCATION_INSTANCE,
        ),
        (NTSTATUS.STATUS_ILLEGAL_INSTRUCTION, "pfnRenderCb", HRESULT.D3DDDIERR_INVALIDINSTRUCTION),
        (
            NTSTATUS.STATUS_PRIVILEGED_INSTRUCTION,
            "pfnRenderCb",
            HRESULT.D3DDDIERR_PRIVILEGEDINSTRUCTION,
        ),
        (NTSTATUS.STATUS_INVALID_HANDLE, "pfnRenderCb", HRESULT.D3DDDIERR_INVALIDHANDLE),
        (NTSTATUS.STATUS_INVALID_HANDLE, "pfnLockCb", HRESULT.E_INVALIDARG),
        (NTSTATUS.STATUS_INVALID_USER_BUFFER, "pfnRenderCb", HRESULT.D3DDDIERR_INVALIDUSERBUFFER),
    ],
)
def test_callback_mapping(status: int, call: str, expected: int) -> None:
    assert ntstatus_to_hresult_for_callback(status, call) == expected


def test_callback_mapping_fallbacks_and_bad_call() -> None:
    # an NTSTATUS outside FACILITY_GRAPHICS_KERNEL without a table row: HRESULT_FROM_NT
    assert ntstatus_to_hresult_for_callback(0xC0000001, "pfnLockCb") == 0xD0000001
    # the signed form maps the same
    assert (
        ntstatus_to_hresult_for_callback(-1071775486, "pfnLockCb") == HRESULT.D3DERR_WASSTILLDRAWING
    )
    with pytest.raises(ValueError, match="unknown callback"):
        ntstatus_to_hresult_for_callback(0, "pfnFrobCb")


def test_every_thunk_code_maps_to_a_failed_hresult_for_its_callbacks() -> None:
    for codes in kmd.THUNK_CODES.values():
        for st in codes:
            for call in kmd.CALLBACKS:
                hr = ntstatus_to_hresult_for_callback(st, call)
                assert kmd.FAILED(hr) == (not kmd.NT_SUCCESS(st))
