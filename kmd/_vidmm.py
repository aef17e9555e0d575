"""The video memory manager: segments, allocations, instances, placement, eviction, and the
``CpuPointer`` a lock hands out.

Every instance owns real bytes (a ``bytearray``; for an ExistingSysMem allocation, the caller's
``system_mem``), allocated on the first CPU or GPU touch: creating (or being refused) a large
allocation costs no host memory. Placement only moves accounting between segments and system
memory — the bytes never move, so a pointer stays valid across an eviction (SW-3). Content is lost
only when a TDR purges video memory (TDR-5): the bytes are zero-filled then.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ._trace import klog, kviolation
from .config import KernelConfig, SegmentDesc
from .flags import DXGK_ALLOCATIONINFOFLAGS, int_masks

#: plain-int masks: these properties are read on every lock and render
AF = int_masks(DXGK_ALLOCATIONINFOFLAGS)

__all__ = ["AccessViolation", "Allocation", "CpuPointer", "Instance", "Resource", "VidMm"]


class AccessViolation(Exception):
    """A CPU access through a ``CpuPointer`` that the mapping does not allow (after Unlock, after
    the instance was freed, outside the locked pages, or a write through a ReadOnly lock)."""


class Segment:
    """One segment (1-based ``id``) and what is resident in it."""

    __slots__ = ("desc", "id", "residents", "used")

    def __init__(self, sid: int, desc: SegmentDesc) -> None:
        self.id = sid
        self.desc = desc
        self.used = 0
        self.residents: dict[int, Instance] = {}  # instance handle -> instance, insertion order

    @property
    def free(self) -> int:
        return self.desc.size - self.used

    @property
    def cpu_visible(self) -> bool:
        return self.desc.cpu_visible

    @property
    def is_aperture(self) -> bool:
        return self.desc.is_aperture

    def __repr__(self) -> str:
        return f"<Segment {self.id} {self.desc.name} {self.used}/{self.desc.size}>"


class Resource:
    """A kernel resource: a group of allocations (AC-3)."""

    __slots__ = ("children", "destroyed", "device", "handle", "private", "private_driver_data")

    def __init__(self, handle: int, device: Any, private: Any, private_driver_data: Any) -> None:
        self.handle = handle
        self.device = device
        self.private = private
        self.private_driver_data = private_driver_data
        self.children: list[Allocation] = []
        self.destroyed = False


class LockRecord:
    """One outstanding lock of an instance."""

    __slots__ = ("exclusive", "pointer", "swizzle_range", "via")

    def __init__(self, pointer: CpuPointer, via: str, exclusive: bool, swizzle_range: bool):
        self.pointer = pointer
        self.via = via
        self.exclusive = exclusive
        self.swizzle_range = swizzle_range


class Allocation:
    """A kernel allocation: the miniport's answer to DxgkDdiCreateAllocation plus its instances.
    ``handle`` is the first handle (instance 0)."""

    def __init__(
        self,
        *,
        device: Any,
        resource: Resource | None,
        private: Any,
        size: int,
        alignment: int,
        flags: int,
        preferred: tuple[int, ...],
        supported: tuple[int, ...],
        primary: bool,
        vidpn_source_id: int,
        system_mem: bytearray | None,
        kind: str,
    ) -> None:
        self.handle = 0
        self.device = device
        self.resource = resource
        self.private = private
        self.size = size
        self.alignment = alignment
        self.flags = flags
        self.preferred = preferred
        self.supported = supported
        self.primary = primary
        self.vidpn_source_id = vidpn_source_id
        self.system_mem = system_mem
        self.kind = kind
        self.instances: list[Instance] = []  # live instances, creation order
        self.current: Instance | None = None
        self.next_index = 0
        self.newest_referenced = -1
        self.destroyed = False

    @property
    def pinned(self) -> bool:
        """Overlay/Capture (CA-15) and primaries (pinned at creation, SW-6)."""
        return bool(int(self.flags) & (AF.Overlay | AF.Capture)) or self.primary

    @property
    def swizzled(self) -> bool:
        return bool(int(self.flags) & AF.Swizzled)

    @property
    def cpu_visible(self) -> bool:
        return bool(int(self.flags) & AF.CpuVisible)

    @property
    def existing_sysmem(self) -> bool:
        return self.system_mem is not None

    @property
    def use_alternate_va(self) -> bool:
        return bool(int(self.flags) & AF.UseAlternateVA)

    def __repr__(self) -> str:
        return f"<Allocation 0x{self.handle:08X} size={self.size} instances={len(self.instances)}>"


class Instance:
    """One backing store of an allocation (LCB-5). ``segment`` None = system memory."""

    __slots__ = (
        "_bytes",
        "alloc",
        "content_lost",
        "freed",
        "handle",
        "index",
        "locks",
        "lru",
        "pending",
        "placed",
        "retired",
        "segment",
    )

    def __init__(self, alloc: Allocation, index: int, system_mem: bytearray | None = None) -> None:
        self.handle = 0
        self.alloc = alloc
        self.index = index
        self._bytes: bytearray | None = system_mem  # None until first touched (or once freed)
        self.segment: Segment | None = None
        self.placed = False  # accounted in a segment or in system memory
        self.pending: dict[int, bool] = {}  # fence -> the DMA buffer writes it
        self.locks: list[LockRecord] = []
        self.retired = False
        self.freed = False
        self.lru = 0
        self.content_lost = False

    @property
    def backing(self) -> bytearray | None:
        """The instance's bytes, allocated (zeros) on first use; None once the instance is
        freed."""
        if self.freed:
            return None
        if self._bytes is None:
            self._bytes = bytearray(self.alloc.size)
        return self._bytes

    @property
    def has_bytes(self) -> bool:
        """Host memory is allocated for this instance (it was touched, or is caller memory)."""
        return self._bytes is not None

    def lose_content(self) -> None:
        """A TDR purged the instance from video memory (TDR-5): its content is zeros now."""
        if self._bytes is not None:
            self._bytes[:] = bytes(len(self._bytes))
        self.content_lost = True

    def busy(self, writes_only: bool = False) -> bool:
        """An unfinished DMA buffer references this instance (SCH-4); with ``writes_only`` only
        buffers that write it count (IgnoreReadSync)."""
        if writes_only:
            return any(self.pending.values())
        return bool(self.pending)

    def last_fence(self, writes_only: bool = False) -> int:
        fences = [f for f, w in self.pending.items() if w or not writes_only]
        return max(fences) if fences else 0

    @property
    def pending_references(self) -> int:
        """Q3: unfinished DMA references plus outstanding locks."""
        return len(self.pending) + len(self.locks)

    @property
    def exclusive_lock(self) -> LockRecord | None:
        for rec in self.locks:
            if rec.exclusive:
                return rec
        return None

    def __repr__(self) -> str:
        where = "system" if self.segment is None else self.segment.desc.name
        return f"<Instance 0x{self.handle:08X} #{self.index} in {where}>"


class CpuPointer:
    """The ``pData`` of a lock: a checked window on one instance's bytes (docs/kmd.md §1.4).

    ``p[0]`` is byte ``offset`` of the instance (the first listed page for a page-list lock,
    KL-4). States: ``mapped`` → ``unlocked`` (Unlock) or ``freed`` (the instance was freed) —
    both refuse access with :class:`AccessViolation` and record ``LCB-1`` —, or ``detached``
    (device removed, Q1): reads give zeros, writes are dropped."""

    __slots__ = ("_inst", "_length", "_page_size", "_pages", "offset", "read_only", "state")

    def __init__(
        self,
        inst: Instance,
        offset: int,
        length: int,
        pages: frozenset[int] | None,
        page_size: int,
        read_only: bool,
    ) -> None:
        self._inst = inst
        self.offset = offset
        self._length = length
        self._pages = pages
        self._page_size = page_size
        self.read_only = read_only
        self.state = "mapped"

    @property
    def allocation(self) -> int:
        """The instance handle this pointer maps."""
        return self._inst.handle

    @property
    def instance(self) -> int:
        """The instance id (0 = the allocation's first instance)."""
        return self._inst.index

    @property
    def valid(self) -> bool:
        return self.state == "mapped"

    def __len__(self) -> int:
        return self._length

    def __repr__(self) -> str:
        return (
            f"<CpuPointer alloc=0x{self._inst.handle:08X} instance={self._inst.index} "
            f"offset={self.offset} len={self._length} {self.state}>"
        )

    def _refuse(self, rule: str, why: str) -> AccessViolation:
        msg = f"CPU access through {self!r}: {why}"
        kviolation(rule, msg, allocation=self._inst.handle, instance=self._inst.index)
        return AccessViolation(f"{rule}: {msg}")

    def _check(self, off: object, n: object, write: bool) -> bytearray | None:
        if self.state in ("unlocked", "freed"):
            raise self._refuse("LCB-1", f"the lock is gone ({self.state}); the pointer is dead")
        if not isinstance(off, int) or not isinstance(n, int) or off < 0 or n < 0:
            raise self._refuse("LCB-1", f"bad offset/length {off!r}/{n!r}")
        if off + n > self._length:
            raise self._refuse("LCB-1", f"[{off}, {off + n}) is outside the {self._length} bytes")
        if write and self.read_only:
            raise self._refuse("LCB-1", "write through a ReadOnly lock")
        if self._pages is not None and n > 0:
            first = (self.offset + off) // self._page_size
            last = (self.offset + off + n - 1) // self._page_size
            for page in range(first, last + 1):
                if page not in self._pages:
                    raise self._refuse("KL-4", f"page {page} is not in the locked page list")
        if self.state == "detached":
            return None
        backing = self._inst.backing
        if backing is None:  # freed underneath a mapped pointer: a kernel bug
            raise AssertionError(f"{self!r} maps a freed instance")
        return backing

    def read(self, offset: int, n: int) -> bytes:
        """``n`` bytes at ``offset`` (relative to the pointer)."""
        backing = self._check(offset, n, write=False)
        if backing is None:
            return bytes(n)
        start = self.offset + offset
        return bytes(backing[start : start + n])

    def write(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        """Write ``data`` at ``offset`` (relative to the pointer)."""
        data = bytes(data)
        backing = self._check(offset, len(data), write=True)
        if backing is None:
            return
        start = self.offset + offset
        backing[start : start + len(data)] = data

    def _slice(self, key: object) -> tuple[int, int]:
        if isinstance(key, slice):
            if key.step not in (None, 1):
                raise self._refuse("LCB-1", "strided access is not supported")
            start = 0 if key.start is None else key.start
            stop = self._length if key.stop is None else key.stop
            if not isinstance(start, int) or not isinstance(stop, int) or stop < start:
                raise self._refuse("LCB-1", f"bad slice {key!r}")
            return start, stop - start
        if isinstance(key, int):
            return key, 1
        raise TypeError(f"CpuPointer indices must be ints or slices, not {type(key).__name__}")

    def __getitem__(self, key: int | slice) -> Any:
        off, n = self._slice(key)
        data = self.read(off, n)
        return data if isinstance(key, slice) else data[0]

    def __setitem__(self, key: int | slice, value: Any) -> None:
        off, n = self._slice(key)
        if isinstance(key, int):
            value = bytes([value])
        value = bytes(value)
        if len(value) != n:
            raise self._refuse("LCB-1", f"slice of {n} bytes assigned {len(value)} bytes")
        self.write(off, value)


class VidMm:
    """Placement, residency and eviction over the adapter's segments (SEG-1, SEG-4, SEG-5, SEG-6,
    SEG-7, SEG-8, SEG-9, SEG-10, SEG-11)."""

    def __init__(self, config: KernelConfig) -> None:
        self.config = config
        self.segments = [Segment(i + 1, d) for i, d in enumerate(config.segments)]
        self.system_used = 0
        self.free_swizzle_ranges = config.swizzling_apertures
        self.instances: dict[int, Instance] = {}  # live instances by handle
        self._tick = 0
        self.evictions = 0
        self.page_ins = 0

    # ---- helpers ---------------------------------------------------------------------------

    def segment(self, sid: int) -> Segment | None:
        if 1 <= sid <= len(self.segments):
            return self.segments[sid - 1]
        return None

    def round_size(self, n: int) -> int:
        ps = self.config.page_size
        return (n + ps - 1) // ps * ps

    def touch(self, inst: Instance) -> None:
        self._tick += 1
        inst.lru = self._tick

    @staticmethod
    def _counts_in_system(inst: Instance) -> bool:
        return inst.alloc.system_mem is None

    def _system_room(self, inst: Instance) -> bool:
        if not self._counts_in_system(inst):
            return True
        return self.system_used + inst.alloc.size <= self.config.system_memory_bytes

    def candidates(self, alloc: Allocation, only: Iterable[int] | None = None) -> list[Segment]:
        """Supported segments in preference order (preferred first, then the rest by id)."""
        order = list(alloc.preferred) + [s for s in alloc.supported if s not in alloc.preferred]
        allowed = None if only is None else set(only)
        out: list[Segment] = []
        for sid in order:
            seg = self.segment(sid)
            if seg is not None and (allowed is None or sid in allowed):
                out.append(seg)
        return out

    def aperture_placeable(self, alloc: Allocation) -> bool:
        """Whether ``alloc``'s supported segment set holds an aperture/AGP segment (SEG-11,
        KL-15): the only segments VidMm renders a locked instance from (RCB-5, LA-15)."""
        return any(self.segments[s - 1].is_aperture for s in alloc.supported)

    def _detach(self, inst: Instance) -> None:
        if not inst.placed:
            return
        if inst.segment is not None:
            inst.segment.used -= inst.alloc.size
            inst.segment.residents.pop(inst.handle, None)
            inst.segment = None
        elif self._counts_in_system(inst):
            self.system_used -= inst.alloc.size
        inst.placed = False

    def _attach(self, inst: Instance, seg: Segment | None) -> None:
        if seg is None:
            if self._counts_in_system(inst):
                self.system_used += inst.alloc.size
        else:
            seg.used += inst.alloc.size
            seg.residents[inst.handle] = inst
        inst.segment = seg
        inst.placed = True

    def move(self, inst: Instance, seg: Segment | None, why: str) -> None:
        """Move ``inst`` to ``seg`` (None = system memory); bytes stay where they are."""
        if inst.placed and inst.segment is seg:
            return
        was_placed = inst.placed
        src = (
            "new"
            if not was_placed
            else "system"
            if inst.segment is None
            else inst.segment.desc.name
        )
        self._detach(inst)
        self._attach(inst, seg)
        dst = "system" if seg is None else seg.desc.name
        if seg is None:
            self.evictions += 1
            event = "kmd.evict"
        else:
            if was_placed:
                self.page_ins += 1
            event = "kmd.page_in"
        klog(
            event,
            allocation=inst.alloc.handle,
            instance=inst.handle,
            src=src,
            dst=dst,
            size=inst.alloc.size,
            why=why,
        )

    # ---- placement ---------------------------------------------------------------------------

    def _evictable(self, inst: Instance, protect: set[int]) -> bool:
        return (
            not inst.alloc.pinned
            and not inst.busy()
            and not inst.locks
            and inst.handle not in protect
        )

    def fit(self, seg: Segment, inst: Instance, protect: set[int]) -> bool:
        """Make room for ``inst`` in ``seg``, evicting idle, unpinned, unlocked instances (least
        recently used first) to system memory. True when ``inst`` now fits."""
        need = inst.alloc.size
        if seg.free >= need:
            return True
        if need > seg.desc.size:
            return False
        victims = sorted(
            (v for v in seg.residents.values() if self._evictable(v, protect)),
            key=lambda v: v.lru,
        )
        freed = 0
        chosen: list[Instance] = []
        budget = self.config.system_memory_bytes - self.system_used
        for v in victims:
            if seg.free + freed >= need:
                break
            cost = v.alloc.size if self._counts_in_system(v) else 0
            if cost > budget:
                continue
            budget -= cost
            freed += v.alloc.size
            chosen.append(v)
        if seg.free + freed < need:
            return False
        for v in chosen:
            self.move(v, None, f"make room for 0x{inst.handle:08X} in {seg.desc.name}")
        return True

    def place(self, inst: Instance, segs: list[Segment], protect: set[int], why: str) -> bool:
        """Place ``inst`` in the first of ``segs`` that has (or can be given) room."""
        for seg in segs:
            if inst.placed and inst.segment is seg:
                return True
            if self.fit(seg, inst, protect | {inst.handle}):
                self.move(inst, seg, why)
                return True
        return False

    def place_new(self, inst: Instance) -> bool:
        """Initial placement (AC-11): a segment if possible, else system memory (paged out);
        pinned allocations must get a segment. False = STATUS_GRAPHICS_NO_VIDEO_MEMORY."""
        alloc = inst.alloc
        segs = self.candidates(alloc)
        if not segs or alloc.size > max(s.desc.size for s in segs):
            return False  # virtualization cannot help: it can never be resident
        self.instances[inst.handle] = inst
        self.touch(inst)
        if self.place(inst, segs, set(), "create"):
            return True
        if not alloc.pinned and self._system_room(inst):
            self._attach(inst, None)
            return True
        del self.instances[inst.handle]
        return False

    def evict_to_system(self, inst: Instance, why: str) -> bool:
        if inst.segment is None:
            return True
        if not self._system_room(inst):
            return False
        self.move(inst, None, why)
        return True

    def make_resident(self, inst: Instance, protect: set[int], aperture_only: bool) -> bool:
        """Page ``inst`` into a supported segment (an aperture/AGP one if ``aperture_only``)."""
        self.touch(inst)
        if inst.segment is not None and (not aperture_only or inst.segment.is_aperture):
            return True
        segs = self.candidates(inst.alloc)
        if aperture_only:
            segs = [s for s in segs if s.is_aperture]
        return self.place(inst, segs, protect, "page-in for DMA")

    def free_instance(self, inst: Instance) -> None:
        """Release an instance's memory; its pointers die (state ``freed``)."""
        if inst.freed:
            return
        self._detach(inst)
        for rec in inst.locks:
            if rec.swizzle_range:
                self.free_swizzle_ranges += 1
            rec.pointer.state = "freed"
        inst.locks.clear()
        inst.freed = True
        inst._bytes = None
        self.instances.pop(inst.handle, None)
        alloc = inst.alloc
        if inst in alloc.instances:
            alloc.instances.remove(inst)
        klog("kmd.instance.free", allocation=alloc.handle, instance=inst.handle, index=inst.index)

    # ---- checks ------------------------------------------------------------------------------

    def check(self) -> list[str]:
        """Accounting invariants (used by ``Kernel.check_invariants``)."""
        problems: list[str] = []
        for seg in self.segments:
            total = sum(i.alloc.size for i in seg.residents.values())
            if total != seg.used:
                problems.append(f"segment {seg.id} accounts {seg.used} bytes, residents {total}")
            if seg.used > seg.desc.size:
                problems.append(f"segment {seg.id} over-committed: {seg.used}")
            for i in seg.residents.values():
                if i.freed or i.segment is not seg:
                    problems.append(f"segment {seg.id} lists a stale instance {i!r}")
        sysmem = sum(
            i.alloc.size
            for i in self.instances.values()
            if i.segment is None and self._counts_in_system(i)
        )
        if sysmem != self.system_used:
            problems.append(f"system memory accounts {self.system_used} bytes, instances {sysmem}")
        for i in self.instances.values():
            if i.freed:
                problems.append(f"freed instance {i!r} still reachable")
            if not i.placed:
                problems.append(f"live instance {i!r} is neither in a segment nor in system memory")
        # every swizzling range is either free or held by exactly one live lock (KL-14, KL-20)
        held = sum(r.swizzle_range for i in self.instances.values() for r in i.locks)
        if self.free_swizzle_ranges < 0 or held + self.free_swizzle_ranges != (
            self.config.swizzling_apertures
        ):
            problems.append(
                f"swizzling ranges: {held} held + {self.free_swizzle_ranges} free != "
                f"{self.config.swizzling_apertures}"
            )
        return problems
