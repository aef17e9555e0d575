"""The GPU scheduler (VidSch): fences, per-context queues, completion, and the TDR watchdog.

Fences are one monotonically increasing counter per adapter (SCH-5, Q10); DMA buffers complete in
fence order. An instance is busy while any unfinished DMA buffer lists it (SCH-4): ``submit``
adds the fence to every listed instance's pending set and completion removes it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import vthreads

from ._gpu import DmaBuffer, DmaRecord, GpuEngine
from ._trace import klog, kviolation, kwants

if TYPE_CHECKING:
    from ._vidmm import Instance

__all__ = ["VidSch"]


class VidSch:
    """Scheduler state of one adapter. ``on_retire`` is called with every instance whose last
    reference completed (the kernel frees retired idle instances there)."""

    def __init__(
        self,
        name: str,
        gpu: GpuEngine,
        submit_to_miniport: Callable[[DmaBuffer], Any],
        on_idle_instance: Callable[[Instance], None],
        tdr_timeout_ns: int,
    ) -> None:
        self.name = name
        self.gpu = gpu
        self._submit_to_miniport = submit_to_miniport
        self._on_idle_instance = on_idle_instance
        self.tdr_timeout_ns = tdr_timeout_ns
        self.submitted_fence = 0
        self.completed_fence = 0
        self.inflight: deque[DmaBuffer] = deque()
        #: every finished DMA buffer, unless ``keep_records`` is off (``Kernel.watch_dma``)
        self.records: list[DmaRecord] = []
        self.keep_records = True
        self.listeners: list[Callable[[DmaRecord], None]] = []
        self.dma_completed = 0
        self.dma_aborted = 0
        #: fences finish in order, so 1..finished_fence have a record; the aborted among them
        self.finished_fence = 0
        self.aborted_fences: set[int] = set()
        self.fence_history: list[int] = []
        self._queues: dict[int, deque[DmaBuffer]] = {}
        self.cond: vthreads.Condition | None = None  # fences, removal, destruction
        self.watch: vthreads.Condition | None = None  # the watchdog's "a DMA buffer started"
        self.on_timeout: Callable[[DmaBuffer], None] = lambda dma: None

    def start(self) -> None:
        self.cond = vthreads.Condition(f"{self.name}.fence")
        self.watch = vthreads.Condition(f"{self.name}.watchdog")
        self.gpu.on_start = self._dma_started

    def notify(self) -> None:
        if self.cond is not None:
            self.cond.notify_all()

    # ---- submission --------------------------------------------------------------------------

    def submit(self, dma: DmaBuffer, queue: deque[DmaBuffer]) -> int:
        """Give ``dma`` the next fence, mark its instances busy, queue it on its context and hand
        it to the miniport (DxgkDdiSubmitCommand). Returns the fence."""
        self.submitted_fence += 1
        dma.fence = self.submitted_fence
        for inst, write in zip(dma.slots, dma.writes):
            if inst is not None:
                inst.pending[dma.fence] = inst.pending.get(dma.fence, False) or write
        queue.append(dma)
        self.inflight.append(dma)
        self._queues[dma.fence] = queue
        self._submit_to_miniport(dma)
        return dma.fence

    # ---- completion (DxgkCbNotifyInterrupt + DPC) ----------------------------------------------

    def notify_interrupt(self, fence: int) -> None:
        """The miniport reported ``fence`` completed: retire every DMA buffer up to it."""
        if fence <= self.completed_fence or fence > self.submitted_fence:
            kviolation(
                "SCH-5",
                f"interrupt reported fence {fence}; completed {self.completed_fence}, "
                f"submitted {self.submitted_fence}",
                fence=fence,
            )
            return
        while self.inflight and self.inflight[0].fence <= fence:
            self._finish(self.inflight.popleft(), "completed")
        self.notify()

    def abort_all(self) -> None:
        """TDR: every unfinished DMA buffer is dropped; the completed fence jumps to the last
        submitted one so that nobody waits for them forever."""
        while self.inflight:
            self._finish(self.inflight.popleft(), "aborted")
        self.completed_fence = self.submitted_fence
        self.notify()

    def _finish(self, dma: DmaBuffer, status: str) -> None:
        if self.watch is not None:
            self.watch.notify_all()  # the watchdog stops timing this buffer
        now = vthreads.now()
        dma.state = "done" if status == "completed" else "aborted"
        ran = {c.index for c in dma.executed}
        dropped = () if status == "completed" else tuple(
            p[1] for i, p in enumerate(dma.packets) if p[0] == "draw" and i not in ran)
        rec = DmaRecord(
            fence=dma.fence,
            device=dma.device,
            context=dma.context,
            status=status,
            submitted_ns=dma.submitted_ns,
            started_ns=dma.started_ns,
            ended_ns=now,
            commands=tuple(dma.executed),
            dropped=dropped,
        )
        if self.keep_records:
            self.records.append(rec)
        if status == "completed":
            self.dma_completed += 1
        else:
            self.dma_aborted += 1
            self.aborted_fences.add(dma.fence)
        self.finished_fence = max(self.finished_fence, dma.fence)
        queue = self._queues.pop(dma.fence, None)
        if queue is not None and dma in queue:
            queue.remove(dma)
        if dma.fence > self.completed_fence:
            self.completed_fence = dma.fence
            self.fence_history.append(dma.fence)
        if kwants("kmd.dma.end"):
            klog(
                "kmd.dma.end",
                fence=dma.fence,
                device=dma.device,
                context=dma.context,
                result=status,
                draws=[c.draw_id for c in dma.executed if c.kind == "draw"],
                reads=[
                    {"draw": c.draw_id, "instance": c.instance, "digest": c.digest}
                    for c in dma.executed
                    if c.kind == "draw"
                ],
                **({"dropped": list(dropped)} if dropped else {}),
            )
        klog("kmd.fence", fence=dma.fence, completed=self.completed_fence, result=status)
        for fn in self.listeners:
            fn(rec)
        for inst in dma.referenced():
            inst.pending.pop(dma.fence, None)
            if not inst.pending:
                self._on_idle_instance(inst)

    # ---- the watchdog ------------------------------------------------------------------------

    def _dma_started(self, dma: DmaBuffer) -> None:
        if self.watch is not None:
            self.watch.notify_all()

    async def watchdog(self) -> None:
        """TDR watchdog (a daemon). Waits on a condition while the GPU is idle; while a DMA
        buffer runs it waits — with that buffer's deadline as the timeout (TDR-1) — for the
        buffer to finish, and reports a timeout if the same buffer is still running then. It
        never holds a timer past the buffer it watches, so an idle GPU keeps no virtual time
        running."""
        assert self.watch is not None
        gpu = self.gpu
        while True:
            await self.watch.wait_for(
                lambda: gpu.running is not None, f"{self.name}.gpu idle (watchdog)"
            )
            dma = gpu.running
            assert dma is not None and dma.started_ns is not None
            deadline = dma.started_ns + self.tdr_timeout_ns
            wait = deadline - vthreads.now()
            if wait > 0:
                await self.watch.wait_for(
                    lambda d=dma: gpu.running is not d,
                    f"{self.name} fence {dma.fence} to finish by t={deadline}",
                    timeout_ns=wait,
                )
            if gpu.running is dma and vthreads.now() >= deadline:
                self.on_timeout(dma)
            # else: it finished in time; loop (waits on the condition if the GPU is idle)
