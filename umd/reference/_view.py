"""``device.view``: the race-checked read view of a reference device's state.

Every read is a ``vthreads.SharedCell`` read of the device's own cells: a scheduling point,
and an access the happens-before checker sees. Read under ``async with device.locked():`` (or
from a policy hook, which runs with the lock held) and the read is ordered with every writer;
read without it while another thread changes the same state and the run reports a RACE — which
is the point: an override that peeks at driver state unlocked is a real driver bug.

What comes back is the device's frozen records (``Tracking``, ``Resource``…) and fresh
containers: changing them changes nothing in the device.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._records import Cookie, LockRecord, Resource, StreamBinding, Subresource, Tracking

if TYPE_CHECKING:
    from ._state import DeviceState

__all__ = ["DeviceView"]


class DeviceView:
    """Race-checked reads of one device's resources, tracking, cookies, locks and command
    buffer (see the module doc). Each method is one or two ``SharedCell`` reads whose site is
    ``view.<method>``."""

    __slots__ = ("_dev",)

    def __init__(self, device: DeviceState) -> None:
        self._dev = device

    async def tracking(self, resource: int, subresource: int = 0) -> Tracking | None:
        """The tracking entry of (resource, subresource), None if there is none."""
        return (await self._dev._tracking.read("view.tracking")).get((resource, subresource))

    async def tracked(self, resource: int, subresource: int = 0) -> int | None:
        """The instance draws of (resource, subresource) are encoded against now (RN-4,
        LA-13), None for an unknown subresource."""
        tr = (await self._dev._tracking.read("view.tracked")).get((resource, subresource))
        return None if tr is None else tr.current

    async def newest(self, resource: int, subresource: int = 0) -> int | None:
        """The latest instance pfnLockCb handed out for (resource, subresource), or None."""
        tr = (await self._dev._tracking.read("view.newest")).get((resource, subresource))
        return None if tr is None else tr.newest

    async def resource(self, handle: int) -> Resource | None:
        """The resource the driver handle names, or None."""
        return (await self._dev._resources.read("view.resource")).get(handle)

    async def resources(self) -> tuple[Resource, ...]:
        """Every live resource, in creation order."""
        return tuple((await self._dev._resources.read("view.resources")).values())

    async def subresource(self, resource: int, subresource: int = 0) -> Subresource | None:
        """One subresource (its size, pitch, base allocation, placement), or None."""
        res = (await self._dev._resources.read("view.subresource")).get(resource)
        if res is None or not 0 <= subresource < len(res.subresources):
            return None
        return res.subresources[subresource]

    async def cookies(self, resource: int | None = None) -> tuple[Cookie, ...]:
        """The pending Discard cookies (of ``resource``, or all), oldest first (Q-3, Q-4)."""
        cookies = await self._dev._cookies.read("view.cookies")
        return tuple(c for c in cookies.values() if resource is None or c.key[0] == resource)

    async def locks(self) -> dict[tuple[int, int], LockRecord]:
        """(resource, subresource) → the outstanding (or claimed, ``allocation`` 0) lock."""
        return dict(await self._dev._locks.read("view.locks"))

    async def streams(self) -> dict[int, StreamBinding]:
        """Stream number → its binding (SetStreamSource)."""
        return dict(await self._dev._streams.read("view.streams"))

    async def pending_commands(self) -> tuple[Any, ...]:
        """The commands encoded and not yet submitted (``kmd.CmdDraw`` …)."""
        return tuple((await self._dev._cmdbuf.read("view.pending_commands")).commands)

    async def references(self, resource: int, subresource: int = 0) -> bool:
        """Whether the unsubmitted command buffer references any instance of (resource,
        subresource) (LA-9, LCB-7)."""
        cb = await self._dev._cmdbuf.read("view.references")
        return cb.references((resource, subresource))

    async def heap_used(self) -> int:
        """Bytes of the driver heap in use (``HEAP_COSTS``)."""
        return await self._dev._heap.read("view.heap_used")
