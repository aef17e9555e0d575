"""The data oracle: what every draw read on the GPU against what the application had written.

It runs once the scenario finished (:meth:`DataOracle.final`). A finding says which draw, which
allocation instance the GPU read, which DDI made that instance and which bound it for the draw
(or that none did), and which DDI submitted the draw — so the wrong decision can be found
without the trace.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ._checker_state import DeviceState, code


class DataOracle:
    """Mixin of :class:`~wddmemu._checker.Checker`: ``DATA`` and ``KMD-INVARIANT``."""

    _violate: Callable[..., None]
    _devices: dict[str, DeviceState]

    def final(self, kernels: Iterable[Any], devices: Iterable[Any]) -> None:
        """End-of-run checks, called inside the run once the scenario finished: the data oracle
        over every draw, and the kernel's own invariants."""
        executed: dict[tuple[str, int], list[Any]] = {}
        aborted: set[tuple[str, int]] = set()
        devices = list(devices)
        dev_of_km = {d.km_device: d.name for d in devices}
        # a device the kernel removed (TDR-10, an injected fault) loses the draws it had not
        # run, whether the driver ever got to report D3DDDIERR_DEVICEREMOVED or not
        removed = {dev_of_km.get(h, "?") for k in kernels for h in k.device_removals}
        for k in kernels:
            for bad in k.check_invariants():
                self._violate("KMD-INVARIANT", str(bad), key=str(bad))
            for rec in k.dma_records:
                devname = dev_of_km.get(rec.device, "?")
                aborted.update((devname, d) for d in rec.dropped)  # dropped by a reset
                for c in rec.commands:
                    if c.kind != "draw":
                        continue
                    key = (devname, c.draw_id)
                    if rec.status != "completed":
                        aborted.add(key)
                        continue
                    executed.setdefault(key, []).append(c)
        for d in devices:
            for draw in d.draws:
                key = (d.name, draw.draw_id)
                got = executed.get(key)
                if got is None:
                    if key not in aborted and not d.lost and d.name not in removed:
                        self._violate("DATA", f"draw {draw.draw_id} on {d.name} (issued by "
                                      f"{draw.thread}) never executed on the GPU: "
                                      f"{self._fate(d.name, draw.draw_id)}",
                                      key=f"lost/{key}", draw=draw.draw_id)
                    continue
                for i, read in enumerate(draw.reads):
                    if i >= len(got):
                        self._violate("DATA", f"draw {draw.draw_id} on {d.name}: stream "
                                      f"{read.stream} was not read by the GPU (the driver "
                                      f"encoded {len(got)} of {len(draw.reads)} streams; "
                                      f"{self._fate(d.name, draw.draw_id)})",
                                      key=f"stream/{key}/{i}", draw=draw.draw_id)
                        break
                    self._compare(d.name, draw.draw_id, read, got[i])

    def _state(self, devname: str) -> DeviceState:
        return self._devices.get(devname) or DeviceState(name=devname)

    def _fate(self, devname: str, draw_id: int) -> str:
        """What became of a draw at the seam: received, refused, submitted."""
        info = self._state(devname).draws.get(draw_id)
        if info is None:
            return "the driver never received its DrawPrimitive"
        if info.hr is None:
            return f"DrawPrimitive on {info.thread} never returned"
        if info.hr != 0:
            return f"DrawPrimitive on {info.thread} returned {code(info.hr)}"
        if not info.submitted_by:
            return (f"DrawPrimitive on {info.thread} returned S_OK, but no pfnRenderCb ever "
                    "carried the draw: the driver dropped it")
        return f"it was submitted by {info.submitted_by}"

    def _explain(self, devname: str, draw_id: int, instance: int | None) -> str:
        """Which DDI made the instance the GPU read, and which bound it for this draw."""
        dev = self._state(devname)
        info = dev.draws.get(draw_id)
        if instance is None:
            return "the GPU read no instance"
        parts = [f"the GPU read {dev.alloc(instance)}"]
        origin = dev.origin.get(instance)
        if origin:
            parts.append(f"made by {origin}")
        if info is not None:
            owner = dev.owner.get(instance)
            want = info.expect.get(owner[0]) if owner else None
            if want is not None and want.handle != instance:
                parts.append(f"although {want.made_by} had bound {dev.alloc(want.handle)} "
                             "before the draw reached the driver")
            elif want is not None:
                parts.append(f"bound by {want.made_by}")
            else:
                parts.append("no Rename or renaming Lock had bound another instance when the "
                             "draw reached the driver")
            parts.append(f"draw encoded by DrawPrimitive on {info.thread}")
            if info.submitted_by:
                parts.append(f"submitted by {info.submitted_by}")
        return "; ".join(parts)

    def _compare(self, devname: str, draw_id: int, read: Any, ex: Any) -> None:
        data = bytes(ex.data or b"")
        n = min(len(data), read.length)
        for off in range(read.length):
            if not read.defined[off]:
                continue
            if off >= n or data[off] != read.expected[off]:
                gpu = data[off] if off < n else None
                self._violate(
                    "DATA",
                    f"draw {draw_id} on {devname}: byte {off} of the draw (offset "
                    f"{read.offset + off} in the buffer) is "
                    f"{'missing' if gpu is None else f'{gpu:#04x}'}, but the application had "
                    f"written {read.expected[off]:#04x} when it issued the draw — "
                    f"{self._explain(devname, draw_id, ex.instance)}",
                    key=f"{devname}/{draw_id}/{read.stream}",
                    draw=draw_id, instance=ex.instance, allocation=ex.allocation,
                    first_offset=off,
                )
                return
