"""How the runtime drives one device (:class:`DeviceConfig`) and what it did
(:class:`DeviceStatistics`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ._bugs import RUNTIME_BUGS


@dataclass(frozen=True)
class DeviceConfig:
    """How the runtime drives one device.

    ``queue_size``: commands the MP layer's queue holds before the app blocks (backpressure).
    ``max_frame_latency``: presents queued ahead of the worker before ``present`` blocks.
    ``bugs``: names from :data:`RUNTIME_BUGS` (several may be on at once).
    ``max_km_resources``: entries of the runtime's resource → kernel-resource table (AC-3); a
    ``pfnAllocateCb`` that needs one more gets ``E_OUTOFMEMORY``. None: unbounded.
    ``keep_draws``: keep every draw's snapshot in ``Device.draws`` to the end of the run; off,
    a snapshot lives only until the GPU has executed the draw (``DrawSnapshots.executed``): a
    long run's memory then stays flat (the harness turns it off; docs/runtime.md)."""

    queue_size: int = 16
    max_frame_latency: int = 3
    bugs: frozenset[str] = frozenset()
    max_km_resources: int | None = None
    keep_draws: bool = True

    def __post_init__(self) -> None:
        unknown = sorted(set(self.bugs) - set(RUNTIME_BUGS))
        if unknown:
            raise ValueError(
                f"unknown runtime bug {unknown[0]!r}: choose from {', '.join(RUNTIME_BUGS)}"
            )
        if self.queue_size < 1 or self.max_frame_latency < 1:
            raise ValueError("queue_size and max_frame_latency must be >= 1")
        if self.max_km_resources is not None and self.max_km_resources < 0:
            raise ValueError("max_km_resources must be None or >= 0")


@dataclass(frozen=True)
class DeviceStatistics:
    """What the runtime did for one device (``Device.statistics()``)."""

    ddi_calls: dict[str, dict[str, int]]
    lock_async_results: dict[str, int]
    renames: int
    syncs: dict[str, int]
    queue_high_water: int
    command_buffers_submitted: int
    frames: int
    draws: int
    mp_layer: bool
    driver_version: int
    #: DDI → calls that entered the driver without the device entry lock (the reentrant
    #: LockAsync/UnlockAsync at DDI version >= 0xB: LA-3, UA-5, MP-2); empty below 0xB
    ungated_calls: dict[str, int] = field(default_factory=dict)
    #: driver entries made while another thread of this device was inside the driver — the
    #: overlap 0xB allows and 0xA forbids (MP-1, MP-2)
    overlapping_entries: int = 0
    #: "DDI → HRESULT name" → batched calls (queued for the worker, MP-5) that the driver
    #: failed: nobody waits for their result, so only the first since the last Present reaches
    #: the application, at that Present (docs/runtime.md)
    batched_failures: dict[str, int] = field(default_factory=dict)
