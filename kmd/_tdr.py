"""Timeout detection and recovery, and device removal.

The watchdog (``VidSch.watchdog``) calls :meth:`TdrMixin._on_timeout` when a DMA buffer runs past
``tdr_timeout_ns``; the reset then happens in one step with no scheduling point (TDR-3):
ResetFromTimeout → abort every DMA buffer → purge video memory → devices removed →
RestartFromTimeout. Tests and app workloads inject removals and hangs through the public
``inject_*`` methods.
"""

from __future__ import annotations

import vthreads

from ._core import Device, KernelCore
from ._gpu import DmaBuffer
from ._trace import klog, kviolation
from .faults import Fault

__all__ = ["TdrMixin"]


class TdrMixin(KernelCore):
    """TDR-1…TDR-12 and injected removals/hangs."""

    _tdr_times: list[int]
    _removal_at_call: tuple[int, int | None] | None
    #: faults armed with :meth:`arm_fault` that have not fired yet, and the ones that fired
    _armed: list[Fault]
    faults_fired: list[str]
    _devices_created: int
    #: every device handle ever removed → why (kept after DestroyDevice, for the data oracle)
    device_removals: dict[int, str]
    unexplained_tdrs: list[int]

    def _on_timeout(self, dma: DmaBuffer) -> None:
        """A TDR: reset the adapter; the ``tdr_limit``-th within ``tdr_window_ns`` stops it for
        good (TDR-2)."""
        now = vthreads.now()
        window = self.config.tdr_window_ns
        self._tdr_times = [t for t in self._tdr_times if now - t < window] + [now]
        self._bump("tdrs")
        if not dma.hang:  # no inject_hang / tdr@step: the buffer's own commands ran that long
            self.unexplained_tdrs.append(dma.fence)
        klog(
            "kmd.tdr",
            fence=dma.fence,
            device=dma.device,
            context=dma.context,
            started=dma.started_ns,
            timeout=self.config.tdr_timeout_ns,
            count=len(self._tdr_times),
        )
        self._reset_adapter(f"TDR: fence {dma.fence} ran past {self.config.tdr_timeout_ns} ns")
        if len(self._tdr_times) >= self.config.tdr_limit and not self.stopped:
            self.stopped = True
            kviolation(
                "TDR-2",
                f"{len(self._tdr_times)} TDRs within {window} ns: the adapter is stopped",
                count=len(self._tdr_times),
            )

    def _reset_adapter(self, reason: str) -> None:
        """ResetFromTimeout → abort DMA → purge video memory → release apertures → devices
        removed → RestartFromTimeout, all in one step (TDR-3…TDR-10, Q14)."""
        self._bump("resets")
        self.miniport.dxgk_ddi_reset_from_timeout(self.h_adapter)
        self.gpu.reset()
        self.vidsch.abort_all()
        self._purge_video_memory()
        for dev in self.devices.values():
            if dev.removed is None:
                self._mark_removed(dev, reason)
        for inst in list(self.vidmm.instances.values()):
            self._maybe_free(inst)
        self.miniport.dxgk_ddi_restart_from_timeout(self.h_adapter)
        self.vidsch.notify()

    def _purge_video_memory(self) -> None:
        """Every instance leaves its segment (pinned ones too, TDR-9); memory-segment content is
        lost (TDR-5), aperture residents are unmapped (TDR-6), swizzling ranges are released and
        lock pointers detached (TDR-4, Q1)."""
        for inst in list(self.vidmm.instances.values()):
            seg = inst.segment
            for rec in inst.locks:
                self._release_range(inst, rec)
                if rec.pointer.state == "mapped":
                    rec.pointer.state = "detached"
            if seg is not None:
                if not seg.is_aperture:
                    inst.lose_content()
                self.vidmm.move(inst, None, "TDR purge")

    def _mark_removed(self, dev: Device, reason: str) -> None:
        """The device is lost (TDR-10): its lock pointers detach (TDR-12, Q1)."""
        dev.removed = reason
        self.device_removals[dev.handle] = reason
        for alloc in dev.allocations.values():
            for inst in alloc.instances:
                for rec in inst.locks:
                    if rec.pointer.state == "mapped":
                        rec.pointer.state = "detached"
        klog("kmd.device.removed", device=dev.handle, reason=reason)

    def inject_removal(self, device: int | None = None, reason: str = "injected") -> bool:
        """Remove ``device`` now (or, with None, reset the whole adapter like a PnP stop: every
        device removed, DMA aborted, video memory purged). Waiters wake with
        STATUS_DEVICE_REMOVED. Returns False if ``device`` is not a live device."""
        self.start()
        if device is None:
            klog("kmd.inject.removal", device=None, reason=reason)
            self._reset_adapter(reason)
            return True
        dev = self._device(device)
        if dev is None:
            return False
        klog("kmd.inject.removal", device=dev.handle, reason=reason)
        if dev.removed is None:
            self._mark_removed(dev, reason)
        self.vidsch.notify()
        return True

    def inject_removal_at_call(self, n: int, device: int | None = None) -> None:
        """Arm a removal that fires on entry of the ``n``-th thunk call from now (n ≥ 1)."""
        if n < 1:
            raise ValueError("n must be >= 1")
        self._removal_at_call = (self.thunk_calls + n, device)

    def inject_hang(self, fence: int | None = None) -> None:
        """The next DMA buffer submitted (or the one with ``fence``) hangs on the GPU; the
        watchdog declares a TDR after ``tdr_timeout_ns``."""
        if fence is None:
            self.gpu.hang_next = True
        else:
            self.gpu.hang_fence = fence

    # ---- armed faults (kmd/faults.py; ``wddmemu --inject``, docs/kmd.md §7) -------------------

    def arm_fault(self, fault: Fault) -> None:
        """Arm ``fault``: it fires once, at its point of the run, through the same path a real
        hang or removal takes. Arm before the run starts (``tdr@step`` and ``removal@call``
        count from the start of the run)."""
        self._armed.append(fault)

    def _fire_due_faults(self) -> None:
        """On every thunk entry (after it is counted): fire the ``tdr@step`` faults whose step
        has come and the ``removal@call`` faults whose call it is, in arming order."""
        step = vthreads.current_engine().step
        for f in list(self._armed):
            if f.at == "step" and step >= f.n:
                self._armed.remove(f)
                self._hang_gpu(f)
            elif f.at == "call" and self.thunk_calls >= f.n:
                self._armed.remove(f)
                self.faults_fired.append(str(f))
                self.inject_removal(None, reason=f"injected {f} at thunk call {self.thunk_calls}")

    def _hang_gpu(self, fault: Fault) -> None:
        """``tdr@step``: the DMA buffer the GPU runs (or the first one queued, or else the next
        one submitted) never completes; the watchdog declares the TDR after
        ``tdr_timeout_ns`` (TDR-1) and the reset aborts it with everything queued (TDR-3)."""
        gpu = self.gpu
        target = gpu.running or (gpu.ring[0] if gpu.ring else None)
        if target is not None:
            target.hang = True
        else:
            gpu.hang_next = True
        self.faults_fired.append(str(fault))
        klog("kmd.inject.tdr", fault=str(fault), fence=None if target is None else target.fence)

    def _device_created(self, dev: Device) -> None:
        """``removal@device=N``: the N-th device created is removed as it is returned (the
        adapter stays up); its first context creation already fails (TDR-10)."""
        self._devices_created += 1
        for f in list(self._armed):
            if f.at == "device" and f.n == self._devices_created:
                self._armed.remove(f)
                self.faults_fired.append(str(f))
                klog("kmd.inject.removal", device=dev.handle, reason=f"injected {f}")
                self._mark_removed(dev, f"injected {f}")
