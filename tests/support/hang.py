"""A driver that spins in Rename (a CPU loop, no scheduling point), importable by name
(``tests.support.hang:driver``) so a worker process that was not forked can build it."""

from __future__ import annotations

import time
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


#: the Renames that take their time (each :data:`SLOW_S` of CPU) before the next one spins
SLOW_RENAMES = 3
SLOW_S = 0.1


class SlowThenSpinsInRename(ReferenceDevice):
    """Reaches its stuck code only after ``SLOW_RENAMES * SLOW_S`` seconds of wall time: a
    replay under a shorter limit stops short of the stuck step."""

    renames = 0

    async def pfn_rename(self, args: Any) -> int:
        self.renames += 1
        if self.renames <= SLOW_RENAMES:
            end = time.monotonic() + SLOW_S
            while time.monotonic() < end:  # CPU, no scheduling point
                pass
            return await super().pfn_rename(args)
        while True:
            pass


def slow_driver() -> ReferenceDriver:
    return ReferenceDriver(device_class=SlowThenSpinsInRename)
