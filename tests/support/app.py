"""Driver tests through the real runtime (``runtime.Device``: MP layer, worker thread, DDI
version gate) with a small data oracle of their own: every draw's bytes as the GPU read them
must equal what the application had written when it issued the draw."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import kmd
import runtime as rt
import umd
import vthreads as vt
from runtime import d3d9

from .driver import pattern

DISCARD = d3d9.D3DLOCK_DISCARD
NOOVERWRITE = d3d9.D3DLOCK_NOOVERWRITE
TRI = d3d9.D3DPT_TRIANGLELIST


@dataclass
class AppRun:
    result: vt.RunResult
    mismatches: list[str]
    devices: list[Any]
    kernel: Any

    @property
    def rules(self) -> list[str]:
        rules = self.result.rules()
        if self.result.failure is not None:
            rules.append(self.result.failure.kind.upper())
        if self.mismatches:
            rules.append("DATA")
        return rules


def data_mismatches(kernel: Any, devices: list[Any]) -> list[str]:
    reads: dict[int, list[bytes]] = {}
    for rec in kernel.dma_records:
        if rec.status != "completed":
            continue
        for c in rec.commands:
            if c.kind == "draw":
                reads.setdefault(c.draw_id, []).append(c.data)
    out = []
    for dev in devices:
        for draw in dev.draws:
            got = reads.get(draw.draw_id)
            if got is None:
                if not dev.lost:
                    out.append(f"draw {draw.draw_id} never executed")
                continue
            for read, data in zip(draw.reads, got):
                bad = [i for i, d in enumerate(read.defined)
                       if d and data[i] != read.expected[i]]
                if bad:
                    out.append(f"draw {draw.draw_id} stream {read.stream}: {len(bad)} bytes "
                               f"differ from what the app wrote (first at {bad[0]})")
    return out


def run_app(program: Callable[[Any], Awaitable[Any]], *, driver: Any = None,
            variant: str | None = None, driver_version: int | None = None,
            kernel_config: kmd.KernelConfig | None = None, devices: int = 1,
            **engine_kw: Any) -> AppRun:
    """Run ``program(device)`` (one app thread per device) on the real runtime."""
    if driver is None:
        driver = umd.make_driver(variant, driver_version=driver_version)
    box: dict[str, Any] = {}

    async def main() -> None:
        kernel = kmd.Kernel(kernel_config or kmd.KernelConfig())
        box["kernel"] = kernel
        adapter = await rt.open_adapter(kernel, driver)
        devs = [await adapter.create_device() for _ in range(devices)]
        box["devices"] = devs
        if devices == 1:
            await program(devs[0])
        else:
            threads = [vt.spawn(f"app{i}", program, d) for i, d in enumerate(devs)]
            for t in threads:
                await t.join()
        for d in devs:
            await d.close()

    result = vt.Engine(**engine_kw).run(main, name="app")
    kernel = box.get("kernel")
    devs = box.get("devices", [])
    mism = data_mismatches(kernel, devs) if kernel is not None and result.failure is None else []
    return AppRun(result, mism, devs, kernel)


async def ring(dev: Any, frames: int = 3, quarters: int = 4, size: int = 256) -> None:
    """The dynamic-VB ring: a Discard at the start of each frame, NoOverwrite appends after it,
    a draw after each write."""
    vb = await dev.create_vertex_buffer(size)
    await dev.set_stream_source(0, vb, 0, 16)
    part = size // quarters
    tag = 0
    for _ in range(frames):
        for q in range(quarters):
            tag += 1
            view = await dev.lock(vb, q * part, part, DISCARD if q == 0 else NOOVERWRITE)
            view.write(0, pattern(tag, part))
            await dev.unlock(vb)
            await dev.draw_primitive(TRI, q * part // 16, part // 16)
        await dev.present()


async def two_buffers(dev: Any, frames: int = 2) -> None:
    """Two dynamic VBs, whole-buffer Discards, draws and flushes interleaved."""
    vbs = [await dev.create_vertex_buffer(128) for _ in range(2)]
    tag = 0
    for f in range(frames):
        for i, vb in enumerate(vbs):
            await dev.set_stream_source(0, vb, 0, 16)
            for half in (0, 1):
                tag += 1
                view = await dev.lock(vb, half * 64, 64, DISCARD if half == 0 else NOOVERWRITE)
                view.write(0, pattern(tag, 64))
                await dev.unlock(vb)
                await dev.draw_primitive(TRI, half * 4, 4)
            if (f + i) % 2:
                await dev.flush()
        await dev.present()


async def queued_then_discard(dev: Any, rounds: int = 3) -> None:
    """Draws queued right before a whole-buffer Discard (S-1, S-8): the pre-lock draws must
    still read the pre-lock bytes."""
    vb = await dev.create_vertex_buffer(64)
    await dev.set_stream_source(0, vb, 0, 16)
    for i in range(rounds):
        view = await dev.lock(vb, 0, 0, DISCARD)
        view.write(0, pattern(i + 1, 64))
        await dev.unlock(vb)
        await dev.draw_primitive(TRI, 0, 4)
    await dev.present()
