"""dxgkrnl's kernel handle table (D3DKMT_HANDLE values).

Handles are ``0x40000000 + 0x40 * n`` (n = 1, 2, …), never reused, and typed: a lookup with the
wrong type, a stale handle, or anything that is not a plain int answers ``None`` — the caller
turns that into ``STATUS_INVALID_PARAMETER`` (KL-2, KU-3, DA-3), never an exception.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

HANDLE_BASE = 0x40000000
HANDLE_STEP = 0x40


class HandleType(Enum):
    ADAPTER = "adapter"
    DEVICE = "device"
    CONTEXT = "context"
    RESOURCE = "resource"
    ALLOCATION = "allocation"


def is_handle_value(h: object) -> bool:
    """A D3DKMT_HANDLE is a UINT: a non-bool int in 1..0xFFFFFFFF."""
    return isinstance(h, int) and not isinstance(h, bool) and 0 < h <= 0xFFFFFFFF


class HandleTable:
    """Typed, never-reused handles to kernel objects."""

    def __init__(self) -> None:
        self._objects: dict[int, tuple[HandleType, Any]] = {}
        self._issued = 0

    def new(self, kind: HandleType, obj: Any) -> int:
        self._issued += 1
        h = HANDLE_BASE + HANDLE_STEP * self._issued
        self._objects[h] = (kind, obj)
        return h

    def get(self, h: object, kind: HandleType) -> Any | None:
        """The live object behind ``h`` if it has type ``kind``, else ``None``."""
        if h.__class__ is int:  # the common case: only valid handles are keys, so no range check
            entry = self._objects.get(h)
        elif not is_handle_value(h):
            return None
        else:
            entry = self._objects.get(int(h))  # type: ignore[arg-type]
        if entry is None or entry[0] is not kind:
            return None
        return entry[1]

    def kind_of(self, h: object) -> HandleType | None:
        if not is_handle_value(h):
            return None
        entry = self._objects.get(int(h))  # type: ignore[arg-type]
        return None if entry is None else entry[0]

    def close(self, h: int) -> None:
        self._objects.pop(h, None)

    def live(self, kind: HandleType) -> list[int]:
        return [h for h, (k, _) in self._objects.items() if k is kind]

    @property
    def issued(self) -> int:
        return self._issued

    def __len__(self) -> int:
        return len(self._objects)
