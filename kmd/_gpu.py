"""The GPU hardware: one engine thread that executes DMA buffers over virtual time.

It takes DMA buffers from its ring in submission order, sleeps ``dma_base_cost_ns`` and then
``dma_cost_per_command_ns`` per command (plus a ``spin``'s own time), really reads (draw) or
writes (write) the bytes of the instances the buffer was patched with, writes the fence register
and raises the interrupt (the miniport's DxgkDdiInterruptRoutine). It never spins on an idle
ring: it waits on a condition. A reset (TDR) bumps ``reset_generation``; the engine abandons the
buffer it was running.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import vthreads

from ._trace import klog, kviolation
from ._vidmm import Instance
from .config import KernelConfig

__all__ = ["DmaBuffer", "DmaRecord", "ExecRecord", "GpuEngine", "digest"]


def digest(data: bytes) -> str:
    """blake2b-8 hex of ``data`` (the trace's stand-in for the bytes)."""
    return hashlib.blake2b(data, digest_size=8).hexdigest()


@dataclass(frozen=True)
class ExecRecord:
    """One executed command: what the GPU read (draw) or wrote (write) and from which instance.
    ``allocation`` is the allocation's first handle, ``instance`` the instance handle used."""

    index: int
    kind: str
    draw_id: int | None
    alloc_index: int | None
    allocation: int | None
    instance: int | None
    instance_index: int | None
    offset: int
    length: int
    data: bytes
    digest: str
    t: int


@dataclass(frozen=True)
class DmaRecord:
    """One DMA buffer as the GPU ran it (or as TDR aborted it)."""

    fence: int
    device: int
    context: int
    status: str
    submitted_ns: int
    started_ns: int | None
    ended_ns: int
    commands: tuple[ExecRecord, ...]
    #: an aborted buffer: the draws it carried that the GPU never ran (a reset or removal
    #: dropped them; the data oracle does not report them as never executed)
    dropped: tuple[int, ...] = ()

    @property
    def draw_ids(self) -> tuple[int, ...]:
        return tuple(c.draw_id for c in self.commands if c.kind == "draw" and c.draw_id is not None)


class DmaBuffer:
    """A submitted DMA buffer: the miniport's packets plus the instances patched into its
    allocation-list slots (SCH-1 steps 3-5)."""

    __slots__ = (
        "context",
        "device",
        "executed",
        "fence",
        "hang",
        "packets",
        "slots",
        "started_ns",
        "state",
        "submitted_ns",
        "writes",
    )

    def __init__(
        self,
        device: int,
        context: int,
        packets: list[tuple[Any, ...]],
        slots: list[Instance | None],
        writes: list[bool],
        submitted_ns: int,
    ) -> None:
        self.fence = 0
        self.device = device
        self.context = context
        self.packets = packets
        self.slots = slots
        self.writes = writes
        self.submitted_ns = submitted_ns
        self.started_ns: int | None = None
        self.state = "queued"
        self.hang = False
        self.executed: list[ExecRecord] = []

    def referenced(self) -> list[Instance]:
        """Distinct instances of the allocation list (each is busy until the fence)."""
        out: list[Instance] = []
        for inst in self.slots:
            if inst is not None and inst not in out:
                out.append(inst)
        return out


class GpuEngine:
    """The GPU's one engine (node 0). ``interrupt`` is wired to the miniport's
    DxgkDdiInterruptRoutine by the kernel."""

    def __init__(self, name: str, config: KernelConfig) -> None:
        self.name = name
        self.config = config
        self.ring: deque[DmaBuffer] = deque()
        self.running: DmaBuffer | None = None
        self.fence_register = 0
        self.reset_generation = 0
        self.hang_next = False
        self.hang_fence: int | None = None
        self.interrupt: Callable[[], Any] = lambda: None
        self.on_start: Callable[[DmaBuffer], None] = lambda dma: None
        self.cond: vthreads.Condition | None = None
        self.busy_ns = 0

    def start(self) -> None:
        self.cond = vthreads.Condition(f"{self.name}.ring")

    def ring_push(self, dma: DmaBuffer) -> None:
        """Hardware doorbell (called by the miniport's DxgkDdiSubmitCommand)."""
        if self.hang_next or (self.hang_fence is not None and dma.fence == self.hang_fence):
            dma.hang = True
            self.hang_next = False
            self.hang_fence = None
        self.ring.append(dma)
        assert self.cond is not None
        self.cond.notify_all()

    def reset(self) -> None:
        """Hardware reset (TDR): forget the ring and the running buffer."""
        self.reset_generation += 1
        self.ring.clear()
        self.running = None
        assert self.cond is not None
        self.cond.notify_all()

    async def run(self) -> None:
        """The engine thread's body (a daemon)."""
        assert self.cond is not None
        cond = self.cond
        cfg = self.config
        while True:
            await cond.wait_for(lambda: bool(self.ring), f"{self.name} ring empty")
            dma = self.ring[0]
            gen = self.reset_generation
            self.running = dma
            dma.state = "running"
            dma.started_ns = vthreads.now()
            klog("kmd.dma.start", fence=dma.fence, device=dma.device, context=dma.context)
            self.on_start(dma)
            aborted = not await self._busy(cfg.dma_base_cost_ns, gen)
            for i, pkt in enumerate(dma.packets):
                if aborted:
                    break
                if dma.hang:
                    await cond.wait_for(
                        lambda g=gen: self.reset_generation != g,
                        f"{self.name} hung on fence {dma.fence}",
                    )
                    aborted = True
                    break
                self._execute(dma, i, pkt)
                cost = cfg.dma_cost_per_command_ns + (pkt[1] if pkt[0] == "spin" else 0)
                aborted = not await self._busy(cost, gen)
            if dma.hang and not aborted:  # empty, or hung after its last command started
                await cond.wait_for(lambda g=gen: self.reset_generation != g, "hung")
                aborted = True
            if aborted or self.reset_generation != gen:
                continue  # the TDR path recorded and dropped it
            self.ring.popleft()
            self.running = None
            self.fence_register = dma.fence
            dma.state = "done"
            self.interrupt()

    async def _busy(self, ns: int, gen: int) -> bool:
        """Stay busy ``ns``; returns False when a reset happened meanwhile. Long waits are cut in
        slices of a quarter of the TDR timeout so that a reset frees the engine promptly."""
        step = max(1, self.config.tdr_timeout_ns // 4)
        left = ns
        while left > 0:
            chunk = min(left, step)
            await vthreads.sleep(chunk)
            self.busy_ns += chunk
            left -= chunk
            if self.reset_generation != gen:
                return False
        return self.reset_generation == gen

    def _execute(self, dma: DmaBuffer, index: int, pkt: tuple[Any, ...]) -> None:
        kind = pkt[0]
        t = vthreads.now()
        if kind in ("draw", "write"):
            if kind == "draw":
                _, draw_id, slot, offset, length = pkt
            else:
                _, slot, offset, payload = pkt
                draw_id, length = None, len(payload)
            inst = dma.slots[slot]
            if inst is None or inst.freed or inst.backing is None:
                kviolation(
                    "SCH-4",
                    f"GPU touched a freed instance in DMA buffer with fence {dma.fence}",
                    fence=dma.fence,
                    slot=slot,
                )
                data = b""
            elif kind == "draw":
                data = bytes(inst.backing[offset : offset + length])
            else:
                inst.backing[offset : offset + length] = payload
                data = bytes(payload)
            rec = ExecRecord(
                index=index,
                kind=kind,
                draw_id=draw_id,
                alloc_index=slot,
                allocation=None if inst is None else inst.alloc.handle,
                instance=None if inst is None else inst.handle,
                instance_index=None if inst is None else inst.index,
                offset=offset,
                length=length,
                data=data,
                digest=digest(data),
                t=t,
            )
        else:
            ns = pkt[1] if kind == "spin" else 0
            rec = ExecRecord(index, kind, None, None, None, None, None, 0, ns, b"", digest(b""), t)
        dma.executed.append(rec)
