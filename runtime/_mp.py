"""The multiprocessor layer: the command queue, the worker thread, drains and syncs.

It exists only when the driver implements LockAsync, UnlockAsync **and** Rename (LA-1, MP-4).
Then every DDI call that returns nothing is queued (:meth:`MPLayer.enqueue`) and the **worker
thread** makes it, in order (MP-5); calls that return information drain the queue first
(:meth:`MPLayer.call_app`, MP-5, MP-6). Without the triple there is no worker: every DDI runs on
the calling application thread, and the methods here make the call at once.

Every time the application has to wait for the worker it is counted as a *sync* with a named
reason (``DeviceStatistics.syncs``): a drain (``createresource``, ``destroydevice``, ``close``),
a full queue (``queue-full``), the frame latency (``frame-latency``) and the lock path's own
reasons (``runtime/_lock.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import kmd
import vthreads
from vthreads import Condition, Event, VThread, current_engine

from ._cmdqueue import Command, CommandQueue
from ._ddi import DdiDoor
from ._hooks import RuntimeHooks
from ._resource import Resource


class MPLayer:
    """One device's MP layer (or, with ``enabled`` false, its absence)."""

    def __init__(self, device_name: str, door: DdiDoor, hooks: RuntimeHooks, *,
                 queue_size: int, max_frame_latency: int,
                 resource: Callable[[int], Resource]) -> None:
        self.device_name = device_name
        self.door = door
        self.hooks = hooks
        self.queue_size = queue_size
        self.max_frame_latency = max_frame_latency
        #: runtime resource handle → Resource (the worker drops each command's references)
        self._resource = resource
        self.enabled = False
        self.queue: CommandQueue | None = None
        self._worker: VThread | None = None
        #: reason → count (``DeviceStatistics.syncs``)
        self.syncs: dict[str, int] = {}
        #: presents queued and not yet made by the worker (frame latency)
        self.frames_queued = 0
        self._frame_cond = Condition(f"{device_name}.frames")
        #: the first failure of a batched call since the last present, reported at the next
        #: one, and which call it was ((0, "") for none)
        self.deferred: tuple[int, str] = (0, "")
        #: "DDI → HRESULT name" → batched calls that failed (``DeviceStatistics``)
        self.batched_failures: dict[str, int] = {}

    def start(self, funcs: Any) -> None:
        """Turn the MP layer on if the driver's table has the async triple (LA-1, MP-4), with
        its queue and worker thread."""
        self.enabled = self.hooks.mp_layer(funcs, funcs.has_async_triple())
        if self.enabled:
            self.queue = self.hooks.command_queue(f"{self.device_name}.cmdq", self.queue_size)
            self._worker = vthreads.spawn(f"{self.device_name}.worker", self._worker_main)

    @property
    def high_water(self) -> int:
        """The most commands the queue ever held at once."""
        # not ``if self.queue``: the queue has a length, and an empty one is falsy
        return self.queue.high_water if self.queue is not None else 0

    def count_sync(self, reason: str) -> None:
        """The application waited for the worker (or took the synchronous path) for ``reason``."""
        self.syncs[reason] = self.syncs.get(reason, 0) + 1
        eng = current_engine()
        if eng.wants("rt.sync"):
            eng.emit("rt.sync", device=self.device_name, reason=reason)

    async def enqueue(self, ddi: str, args: Any, refs: tuple[Resource, ...] = (),
                      *, reply: bool = False, front: bool = False) -> Command:
        """Queue a DDI for the worker (MP layer) or make it now on this thread (no MP layer).
        ``refs`` count as queued references until the worker has returned from the call
        (LA-9)."""
        if not self.enabled:
            return Command(ddi, args, result=await self.door.call(ddi, args))
        assert self.queue is not None
        for r in refs:
            r.queued_refs += 1
        cmd = Command(ddi, args, tuple([r.handle for r in refs]),
                      reply=Event(f"{self.device_name}.reply") if reply else None,
                      app_thread=current_engine().current_thread().name)
        if await self.queue.put(cmd, front=front):
            self.count_sync("queue-full")
        return cmd

    async def drain(self, reason: str) -> None:
        """Wait until the worker has made every queued call (no-op without the MP layer)."""
        if not self.enabled:
            return
        assert self.queue is not None
        cmd = Command("(barrier)", None, reply=Event(f"{self.device_name}.drained"))
        await self.queue.put(cmd)
        assert cmd.reply is not None
        await cmd.reply.wait()
        self.count_sync(reason)

    async def call_app(self, ddi: str, args: Any) -> int:
        """An information-returning call: drain the queue, then call on this (app) thread
        (MP-5, MP-6)."""
        if self.hooks.drains_before(ddi, True):
            await self.drain(ddi.lower())
        return await self.door.call(ddi, args)

    async def sync_call(self, ddi: str, args: Any, refs: tuple[Resource, ...]) -> int:
        """Have the worker make ``ddi`` after everything queued before it, and wait for its
        answer (the synchronous path)."""
        if not self.enabled:
            return await self.door.call(ddi, args)
        cmd = await self.enqueue(ddi, args, refs, reply=True)
        assert cmd.reply is not None
        await cmd.reply.wait()
        assert cmd.result is not None
        return cmd.result

    async def wait_frame_slot(self) -> None:
        """Before a Present: block while ``max_frame_latency`` presents are queued ahead of the
        worker (sync reason ``frame-latency``), then count this one as queued."""
        if not self.enabled:
            return
        if self.frames_queued >= self.max_frame_latency:
            self.count_sync("frame-latency")
            await self._frame_cond.wait_for(
                lambda: self.frames_queued < self.max_frame_latency,
                what=f"frame latency on {self.device_name}",
            )
        self.frames_queued += 1

    def take_deferred_error(self) -> tuple[int, str]:
        """The first batched call's failure since the last call (0 if none) and which call it
        was ("DrawPrimitive returned E_INVALIDARG (0x80070057) on dev0.worker at step 412"),
        and forget it."""
        deferred, self.deferred = self.deferred, (0, "")
        return deferred

    async def stop(self) -> None:
        """Stop the worker after every queued command (no-op without the MP layer)."""
        if self._worker is None:
            return
        assert self.queue is not None
        stop = Command("(stop)", None, reply=Event(f"{self.device_name}.stopped"))
        await self.queue.put(stop)
        await self._worker.join()

    async def _worker_main(self) -> None:
        """The runtime's worker: drain the queue into the driver, in order (MP-5, RN-3)."""
        assert self.queue is not None
        while True:
            cmd = await self.queue.get()
            if cmd.ddi == "(stop)":
                assert cmd.reply is not None
                cmd.reply.set()
                return
            early = self.hooks.release_refs_before_call()  # a seeded bug's choice
            if early:
                await self._release_refs(cmd)
            if cmd.ddi != "(barrier)":
                await self._make(cmd)
            # The reference leaves the runtime's layer only once the driver has it: a DrawPrimitive
            # the worker is still inside counts as queued, so LockAsync never tells the driver
            # "no existing references" while the driver may not yet have recorded one (LA-9).
            if not early:
                await self._release_refs(cmd)
            if cmd.reply is not None:
                cmd.reply.set()

    async def _release_refs(self, cmd: Command) -> None:
        split = self.hooks.refs_release_split()  # a seeded bug's choice
        for h in cmd.refs:
            r = self._resource(h)
            if split:
                n = r.queued_refs
                await vthreads.checkpoint("rt.refs.release")
                r.queued_refs = n - 1
            else:
                r.queued_refs -= 1

    async def _make(self, cmd: Command) -> None:
        """The worker makes one queued DDI call."""
        hr = await self.door.call(cmd.ddi, cmd.args)
        cmd.result = hr
        if cmd.ddi == "Present":
            self.frames_queued -= 1
            self._frame_cond.notify_all()
        if kmd.FAILED(hr) and cmd.reply is None:
            # a batched call has nobody to return to: the runtime keeps the first such error
            # and reports it at the next Present, as D3D9 reports device loss
            eng = current_engine()
            name = kmd.hresult_name(hr)
            key = f"{cmd.ddi} → {name}"
            self.batched_failures[key] = self.batched_failures.get(key, 0) + 1
            if not self.deferred[0]:
                self.deferred = hr, (f"{cmd.ddi} returned {name} ({kmd.hex32(hr)}) on "
                                     f"{eng.current_thread().name} at step {eng.step}")
            if eng.wants("rt.deferred_error"):
                eng.emit("rt.deferred_error", device=self.device_name, ddi=cmd.ddi,
                         hr=kmd.hex32(hr), hr_name=name)
