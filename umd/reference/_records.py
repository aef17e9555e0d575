"""The reference driver's records: what its shared cells hold and what policy hooks receive.

Every record but :class:`CommandBuffer` is frozen: the driver replaces a record in its cell
rather than changing it, so a record a hook or a :class:`~umd.DeviceView` read handed out never
changes under its holder. :class:`CommandBuffer` is the one mutable record (the driver appends
commands to the very list the runtime handed it, RCB-2); hooks that receive it may read it and,
in ``before_render``, append whole commands — nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CommandBuffer",
    "Cookie",
    "LockRecord",
    "LockedRange",
    "Resource",
    "StreamBinding",
    "Subresource",
    "Tracking",
]

#: a (resource handle, subresource index) pair: what tracking, cookies and locks are keyed by
Key = tuple[int, int]


@dataclass(frozen=True)
class Subresource:
    """One subresource of a resource. It has its own allocation: ``base`` is instance 0's
    kernel handle. ``placement`` is the ``kmd.AllocationDesc.segments`` the driver asked for
    (``"aperture"``, ``"local"``, ``"any"``) or ``"sysmem"`` for the runtime's memory (AC-6)."""

    index: int
    size: int
    pitch: int
    slice_pitch: int
    base: int
    placement: str

    @property
    def render_while_locked(self) -> bool:
        """Whether VidMm can render from it while it is locked (LA-15, RCB-5): it must be able
        to live in an aperture/AGP segment, i.e. it is not local-video-memory-only."""
        return self.placement != "local"


@dataclass(frozen=True)
class Resource:
    """A resource the driver created: its handle (``0x00D00000 + n``), the runtime's handle,
    its pool and flags as CreateResource gave them, the kernel resource and its subresources."""

    handle: int
    rt_resource: int
    pool: int
    flags: int
    km_resource: int
    subresources: tuple[Subresource, ...]


@dataclass(frozen=True)
class Tracking:
    """The tracking entry of one (resource, subresource).

    ``current`` is *the* tracking: the instance draws are encoded against (RN-4); only Rename
    and a renaming synchronous Lock move it (LA-13, RN-5, LCB-8). ``newest`` is the latest
    instance pfnLockCb handed out — what the application sees after a Discard LockAsync — and is
    what later locks lock (a NoOverwrite after an unrenamed Discard must reach the bytes the app
    just wrote)."""

    current: int
    newest: int


@dataclass(frozen=True)
class Cookie:
    """A pending Discard LockAsync cookie (Q-4): ``cookie`` is the opaque id the runtime got,
    ``allocation`` the new instance it names, ``seq`` its order among the device's cookies
    (Renames apply in cookie order, Q-3)."""

    cookie: int
    key: tuple[int, int]
    allocation: int
    seq: int


@dataclass(frozen=True)
class LockRecord:
    """An outstanding lock of one (resource, subresource).

    ``path`` is ``"async"`` (LockAsync) or ``"sync"`` (Lock): a lock is released only by its
    own path's unlock (Q-20). ``kind`` is ``"discard"``, ``"nooverwrite"``, ``"notify"`` or
    ``"plain"``. ``allocation`` is the handle pfnLockCb locked — what pfnUnlockCb gets (UA-4,
    LCB-20) — or 0 while a waiting pfnLockCb is under way (the subresource is claimed, not yet
    locked). ``cookie`` is the Discard LockAsync's cookie, else 0."""

    path: str
    kind: str
    allocation: int
    cookie: int = 0


@dataclass(frozen=True)
class StreamBinding:
    """A vertex stream bound by SetStreamSource: resolved to an instance only when a draw is
    encoded (RN-4)."""

    resource: int
    offset: int
    stride: int


@dataclass
class CommandBuffer:
    """The command buffer being filled and its allocation list (RCB-1, RCB-2). Mutable and
    owned by the device: read it, don't change it (``before_render`` may append whole
    commands).

    ``commands`` is the runtime's buffer (a list of ``kmd.CmdDraw``), ``capacity`` its size in
    bytes and ``used`` the bytes filled; ``alist`` the allocation list
    (``kmd.D3DDDI_ALLOCATIONLIST``), ``alist_capacity`` its entries; ``slots`` maps an instance
    handle to its list index, ``owners`` names the (resource, subresource) of every slot;
    ``superseded`` counts descriptors of instances tracking moved away from, freed at submit."""

    commands: list[Any]
    capacity: int
    alist: list[Any]
    alist_capacity: int
    slots: dict[int, int] = field(default_factory=dict)
    owners: list[tuple[int, int]] = field(default_factory=list)
    used: int = 0
    superseded: int = 0

    def references(self, key: tuple[int, int]) -> bool:
        """Whether any instance of ``key``'s allocation is referenced (LA-9, LCB-7)."""
        return key in self.owners


class LockedRange:
    """``pSurfData`` for a ``RangeValid`` lock: the kernel's ``CpuPointer`` advanced by the range
    offset (what ``(BYTE*)pData + Range.Offset`` is in C). Reads and writes go through the
    kernel pointer, so its checks (LCB-1 after unlock, read-only locks…) still apply."""

    __slots__ = ("_base", "_offset")

    def __init__(self, base: Any, offset: int) -> None:
        self._base = base
        self._offset = offset

    @property
    def base(self) -> Any:
        return self._base

    @property
    def offset(self) -> int:
        return self._base.offset + self._offset

    @property
    def allocation(self) -> int:
        return self._base.allocation

    @property
    def state(self) -> str:
        return self._base.state

    def __len__(self) -> int:
        return max(0, len(self._base) - self._offset)

    def read(self, offset: int, n: int) -> bytes:
        return self._base.read(self._offset + offset, n)

    def write(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        self._base.write(self._offset + offset, data)

    def _shift(self, key: int | slice) -> int | slice:
        if isinstance(key, slice):
            start = 0 if key.start is None else key.start
            stop = len(self) if key.stop is None else key.stop
            return slice(start + self._offset, stop + self._offset, key.step)
        return key + self._offset

    def __getitem__(self, key: int | slice) -> Any:
        return self._base[self._shift(key)]

    def __setitem__(self, key: int | slice, value: Any) -> None:
        self._base[self._shift(key)] = value

    def __repr__(self) -> str:
        return f"<LockedRange +{self._offset} of {self._base!r}>"
