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
    """Mixin of :class:`~wddmemu._checker.Checker`: ``DATA`` and ``KMD-INVARIANT``.

    Watching (:meth:`watch_dma`), each DMA buffer is compared as the GPU finishes it and the
    draws it completed are forgotten — by the runtime's snapshots, the kernel and the checker —
    so that a long run's memory stays flat. Findings are held back and reported by
    :meth:`final` in the order the whole-run comparison reported them (device, then draw), so
    a run's trace is the same either way. Not watching, :meth:`final` reads the kernel's
    records instead."""

    _violate: Callable[..., None]
    _devices: dict[str, DeviceState]
    _watched: list[Any] | None
    _kernel: Any
    _held: list[tuple[str, int, int, tuple[Any, ...], dict[str, Any]]]

    def watch_dma(self, kernel: Any, devices: list[Any]) -> None:
        """Compare each DMA buffer of ``kernel`` when it finishes; ``devices`` is the live list
        of runtime devices (it grows as the scenario creates them). The kernel is also what
        :meth:`~wddmemu._checker_ddi.DdiRules._check_la15` asks where an allocation may live."""
        self._watched = devices
        self._kernel = kernel
        kernel.watch_dma(self.on_dma, keep_records=False)

    def on_dma(self, rec: Any, devices: Iterable[Any] | None = None) -> None:
        """One finished DMA buffer: compare every draw it completed with its snapshot."""
        for d in self._watched if devices is None else devices:
            if d.km_device == rec.device:
                break
        else:
            return
        for draw, got in d.snapshots.executed(rec):
            self._judge(d.name, draw, got)
            state = self._devices.get(d.name)
            if state is not None:  # the draw is closed: its per-draw state goes too
                state.draws.pop(draw.draw_id, None)
                state.draw_resources.pop(draw.draw_id, None)

    def _on_nooverwrite_overwrite(self, ev: dict[str, Any]) -> None:
        """``APP-NOOVERWRITE``: the application wrote, through a NoOverwrite lock, bytes a draw
        it issued earlier still reads (the GPU has not executed it). The flag is the
        application's promise to leave such bytes alone, so what the GPU reads of them is no
        driver's fault: the runtime took them out of the data oracle's judgement, and the
        finding points at the scenario instead."""
        devname = str(ev.get("device", "?"))
        dev = self._state(devname)
        rt = int(ev["resource"])
        names = [dev.resource(d) for d, r in dev.rt_of_driver.items() if r == rt]
        res = names[0] if names else f"runtime resource {rt:#x}"
        draw_id = int(ev["draw_id"])
        self._violate(
            "APP-NOOVERWRITE",
            f"the application broke its NoOverwrite promise on {ev.get('thread')}: it changed "
            f"{ev['bytes']} byte(s) of {res} from offset {ev['offset']} that draw {draw_id} on "
            f"{devname} still reads (issued earlier, not yet executed by the GPU); the data "
            "oracle leaves those bytes out (a scenario bug, not the driver's)",
            key=(devname, draw_id, rt), draw=draw_id)

    def _hold(self, devname: str, draw_id: int, *args: Any, **kw: Any) -> None:
        self._held.append((devname, draw_id, len(self._held), args, kw))

    def final(self, kernels: Iterable[Any], devices: Iterable[Any]) -> None:
        """End-of-run checks, called inside the run once the scenario finished: the data oracle
        over every draw, and the kernel's own invariants."""
        devices = list(devices)
        dev_of_km = {d.km_device: d.name for d in devices}
        # a device the kernel removed (TDR-10, an injected fault) loses the draws it had not
        # run, whether the driver ever got to report D3DDDIERR_DEVICEREMOVED or not
        removed = {dev_of_km[h] for k in kernels for h in k.device_removals if h in dev_of_km}
        for k in kernels:
            for bad in k.check_invariants():
                self._violate("KMD-INVARIANT", str(bad))  # once per text
            if self._watched is None:
                for rec in k.dma_records:
                    self.on_dma(rec, devices)
        for d in devices:
            for draw, got in d.snapshots.unexecuted():
                key = (d.name, draw.draw_id)
                if not got:
                    if (draw.draw_id not in d.snapshots.aborted and not d.lost
                            and d.name not in removed):
                        self._hold(d.name, draw.draw_id, "DATA",
                                   f"draw {draw.draw_id} on {d.name} (issued by {draw.thread}) "
                                   f"never executed on the GPU: "
                                   f"{self._fate(d.name, draw.draw_id)}",
                                   key=f"lost/{key}", draw=draw.draw_id)
                    continue
                self._judge(d.name, draw, got)
        order = {d.name: i for i, d in enumerate(devices)}
        held = self._held
        held.sort(key=lambda h: (order.get(h[0], len(order)), h[1], h[2]))
        self._held = []
        for _dev, _draw, _n, args, kw in held:
            self._violate(*args, **kw)

    def _judge(self, devname: str, draw: Any, got: list[Any]) -> None:
        key = (devname, draw.draw_id)
        for i, read in enumerate(draw.reads):
            if i >= len(got):
                self._hold(devname, draw.draw_id, "DATA",
                           f"draw {draw.draw_id} on {devname}: stream {read.stream} was not read "
                           f"by the GPU (the driver encoded {len(got)} of {len(draw.reads)} "
                           f"streams; {self._fate(devname, draw.draw_id)})",
                           key=f"stream/{key}/{i}", draw=draw.draw_id)
                return  # the first stream the GPU did not read is the finding
            self._compare(devname, draw.draw_id, read, got[i])

    def _state(self, devname: str) -> DeviceState:
        """The device's state, or an empty one (nothing seen of it: only read, never named)."""
        return self._devices.get(devname) or DeviceState()

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
        if n == read.length and data[:n] == read.expected:
            return  # every byte as written, defined or not: the clean case, at C speed
        for off in range(read.length):
            if not read.defined[off]:
                continue
            if off >= n or data[off] != read.expected[off]:
                gpu = data[off] if off < n else None
                self._hold(
                    devname, draw_id, "DATA",
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
