"""A driver that spins in Rename (a CPU loop, no scheduling point), importable by name
(``tests.support.hang:driver``) so a worker process that was not forked can build it."""

from __future__ import annotations

from typing import Any

from umd import ReferenceDevice, ReferenceDriver


class SpinsInRename(ReferenceDevice):
    async def pfn_rename(self, args: Any) -> int:
        n = 0
        while True:  # never reaches a scheduling point: only the watchdog can end it
            n += 1


def driver() -> ReferenceDriver:
    """A factory, not a driver object: explore gives every schedule a fresh driver."""
    return ReferenceDriver(device_class=SpinsInRename)
