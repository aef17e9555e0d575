"""``KernelConfig``: every size, limit and cost of the emulated adapter, in one frozen record."""

from __future__ import annotations

from dataclasses import dataclass, field

from ._hooks import KERNEL_BUG_REGISTRY, KernelBugSummaries
from .flags import SegmentKind

__all__ = ["KernelConfig", "MiB", "SegmentDesc"]

MiB = 1024 * 1024


@dataclass(frozen=True)
class SegmentDesc:
    """One DXGK_SEGMENTDESCRIPTOR (SEG-1). ``kind``: ``"memory"`` (linear memory-space:
    allocating consumes it), ``"aperture"`` or ``"agp"`` (address space mapped onto system pages;
    always CPU-visible)."""

    name: str
    size: int
    kind: str = SegmentKind.MEMORY
    cpu_visible: bool = False

    def __post_init__(self) -> None:
        if self.kind not in SegmentKind.ALL:
            raise ValueError(f"segment kind must be one of {SegmentKind.ALL}, not {self.kind!r}")
        if self.size <= 0:
            raise ValueError("segment size must be > 0")
        if self.kind != SegmentKind.MEMORY and not self.cpu_visible:
            object.__setattr__(self, "cpu_visible", True)

    @property
    def is_aperture(self) -> bool:
        return self.kind != SegmentKind.MEMORY


def _default_segments() -> tuple[SegmentDesc, ...]:
    return (
        SegmentDesc("local", 32 * MiB, SegmentKind.MEMORY, cpu_visible=False),
        SegmentDesc("aperture", 64 * MiB, SegmentKind.APERTURE, cpu_visible=True),
    )


#: named seeded kernel bugs -> one-line summary, for the harness and ``KernelConfig.bugs``: a
#: live view of ``KERNEL_BUG_REGISTRY`` (the entries register beside the code they break)
KERNEL_BUGS: KernelBugSummaries = KernelBugSummaries()


@dataclass(frozen=True)
class KernelConfig:
    """Sizes, limits and virtual-time costs of one emulated adapter (see docs/kmd.md §1.1)."""

    segments: tuple[SegmentDesc, ...] = field(default_factory=_default_segments)
    system_memory_bytes: int = 256 * MiB
    page_size: int = 4096
    max_rename_instances: int = 4
    max_pending_references: int = 64
    swizzling_apertures: int = 2
    vidpn_sources: int = 1
    dma_base_cost_ns: int = 2_000
    dma_cost_per_command_ns: int = 1_000
    tdr_timeout_ns: int = 2_000_000_000
    tdr_limit: int = 6
    tdr_window_ns: int = 60_000_000_000
    max_allocation_list: int = 4096
    max_allocations_per_call: int = 256
    bugs: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        unknown = sorted(b for b in self.bugs if b not in KERNEL_BUG_REGISTRY)
        if unknown:
            raise ValueError(
                f"unknown kernel bug {unknown[0]!r}: choose from {sorted(KERNEL_BUGS)}"
            )
        object.__setattr__(self, "bugs", frozenset(self.bugs))
        if not self.segments:
            raise ValueError("an adapter needs at least one segment")
        if len(self.segments) > 32:
            raise ValueError("segment sets are 32-bit masks: at most 32 segments")
        ints = (
            "system_memory_bytes",
            "page_size",
            "max_rename_instances",
            "max_pending_references",
            "vidpn_sources",
            "tdr_timeout_ns",
            "tdr_limit",
            "tdr_window_ns",
            "max_allocation_list",
            "max_allocations_per_call",
        )
        for name in ints:
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1")
        for name in ("swizzling_apertures", "dma_base_cost_ns", "dma_cost_per_command_ns"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.page_size & (self.page_size - 1):
            raise ValueError("page_size must be a power of two")
        object.__setattr__(self, "segments", tuple(self.segments))
