"""Trace sources for the trace-tool tests.

* :func:`mimic_trace` runs a small engine program whose threads log the same events the runtime,
  the driver seam and the kernel log (``ddi.*``, ``cb.*``, ``rt.queue.*``, ``kmd.render``,
  ``kmd.dma.*``, …) on real engine machinery (mutex, queues, a condition, virtual sleeps), so the
  tools are tested on a real engine trace whatever state the upper layers are in.
* :func:`scenario_trace` runs a built-in scenario through the real runtime, driver and kernel
  (skips when those are not importable yet).
* :func:`synthetic_lines` generates a long, well-formed trace quickly (for the memory test).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

import vthreads as vt

DEV = "dev0"


class _State:
    def __init__(self) -> None:
        self.seq = 0
        self.fence = 0
        self.done = 0
        self.cookie = 0


async def _enqueue(q: vt.Queue, st: _State, ddi: str, reply: vt.Event | None = None) -> None:
    st.seq += 1
    await q.put((ddi, st.seq, reply))
    vt.log("rt.queue.put", queue=f"{DEV}.cmdq", ddi=ddi, seq=st.seq, depth=len(q), front=False)


async def _ddi(entry: vt.Mutex | None, ddi: str, body: Any = None, **fields: Any) -> None:
    if entry is not None:
        await entry.acquire()
    vt.log("ddi.enter", ddi=ddi, device=DEV, gated=entry is not None, **fields)
    await vt.checkpoint(f"{ddi}.body")
    out: dict[str, Any] = {}
    if body is not None:
        out = await body() or {}
    vt.log("ddi.exit", ddi=ddi, device=DEV, hr="0x00000000", hr_name="S_OK", **out)
    if entry is not None:
        entry.release()


async def _cb(cb: str, body: Any = None, **fields: Any) -> dict[str, Any]:
    vt.log("cb.enter", cb=cb, device=DEV, **fields)
    await vt.checkpoint(f"{cb}.body")
    out: dict[str, Any] = {}
    if body is not None:
        out = await body() or {}
    vt.log("cb.exit", cb=cb, device=DEV, hr="0x00000000", hr_name="S_OK", **out)
    return out


async def _gpu(ring: vt.Queue, st: _State, done: vt.Condition) -> None:
    while True:
        fence = await ring.get()
        vt.log("kmd.dma.start", fence=fence, device=1, context=2)
        await vt.sleep(2_000)
        await vt.sleep(1_000)
        st.done = fence
        vt.log("kmd.dma.end", fence=fence, device=1, context=2, result="completed",
               draws=[fence], reads=[])
        vt.log("kmd.fence", fence=fence, completed=fence, result="completed")
        done.notify_all()


async def _worker(q: vt.Queue, entry: vt.Mutex, ring: vt.Queue, st: _State,
                  done: vt.Condition) -> None:
    while True:
        ddi, seq, reply = await q.get()
        vt.log("rt.queue.get", queue=f"{DEV}.cmdq", ddi=ddi, seq=seq, depth=len(q))
        if ddi == "(stop)":
            reply.set()
            return
        if ddi == "(barrier)":
            reply.set()
            continue

        async def render() -> dict[str, Any]:
            async def submit() -> dict[str, Any]:
                st.fence += 1
                vt.log("kmd.render", device=1, context=2, fence=st.fence, commands=3,
                       draws=[st.fence], allocations=[0x40], queued=1,
                       status="0x00000000", status_name="STATUS_SUCCESS")
                await ring.put(st.fence)
                return {"fence": st.fence, "draw_ids": [st.fence]}

            await _cb("pfnRenderCb", submit, commands=3, allocations=[0x40], refs=[])
            return {}

        async def throttle() -> dict[str, Any]:
            # a DrawPrimitive that waits for the GPU inside the DDI (blocks inside its slice)
            target = st.fence
            await done.wait_for(lambda: st.done >= target, f"fence {target} on kernel.gpu")
            return {}

        if ddi in ("Present", "Flush"):
            await _ddi(entry, ddi, render)
        elif ddi == "DrawPrimitive" and st.fence >= 1 and seq % 3 == 0:
            await _ddi(entry, ddi, throttle)
        else:
            await _ddi(entry, ddi)
        if reply is not None:
            reply.set()


async def mimic(frames: int = 3, draws: int = 3, violation: bool = True) -> None:
    """The app thread of the mimic program (``Engine(...).run(mimic)``, thread name ``app``)."""
    st = _State()
    entry = vt.Mutex(f"{DEV}.entry")
    q: vt.Queue = vt.Queue(f"{DEV}.cmdq", 4)
    ring: vt.Queue = vt.Queue("kernel.ring")
    done = vt.Condition("kernel.fence")
    vt.spawn("kernel.gpu", _gpu, ring, st, done, daemon=True)
    worker = vt.spawn(f"{DEV}.worker", _worker, q, entry, ring, st, done)
    for frame in range(frames):
        for d in range(draws):
            discard = d == 0

            async def lock_cb(discard: bool = discard) -> dict[str, Any]:
                if discard:
                    vt.log("kmd.rename", device=1, allocation=0x40, old=0x44 + st.cookie,
                           new=0x48 + st.cookie, index=1, live=2, segment="aperture")
                return {"allocation": 0x40, "new_allocation": 0x48}

            async def lock_async() -> dict[str, Any]:
                await _cb("pfnLockCb", lock_cb, allocation=0x40, flags=1)
                st.cookie += 1
                return {"cookie": st.cookie}

            await _ddi(None, "LockAsync", lock_async, resource=0x40, flags=2 if discard else 1)
            if discard:
                await _enqueue(q, st, "Rename")
            await _ddi(None, "UnlockAsync", resource=0x40)
            vt.log("rt.draw", device=DEV, draw_id=frame * draws + d + 1, reads=[[0x100, 0, 64]])
            await _enqueue(q, st, "DrawPrimitive")
        await _enqueue(q, st, "Present")
    # the synchronous path: drain the queue, wait for the worker
    barrier = vt.Event(f"{DEV}.drained")
    await _enqueue(q, st, "(barrier)", barrier)
    await barrier.wait()
    vt.log("rt.sync", device=DEV, reason="lockasync-failed:WASSTILLDRAWING")
    last = st.fence
    await done.wait_for(lambda: st.done >= last, f"fence {last} on kernel.gpu")
    if violation:
        vt.violation("LA-13", "the driver switched to the renamed allocation before Rename",
                     allocation=0x40)
    stop = vt.Event(f"{DEV}.stopped")
    await _enqueue(q, st, "(stop)", stop)
    await worker.join()


def mimic_trace(path: Path, *, frames: int = 3, draws: int = 3, violation: bool = True,
                strategy: str = "fifo", seed: int = 0, backend: str = "asyncio") -> Path:
    """Run the mimic program with a trace at ``path``; returns ``path``."""
    res = vt.Engine(strategy, seed=seed, backend=backend, trace=str(path),
                    context={"scenario": "mimic"}).run(
        mimic, frames, draws, violation, name="app")
    assert res.failure is None, res.failure
    return path


def scenario_available() -> bool:
    try:
        import kmd
        import umd
    except ImportError:  # pragma: no cover
        return False
    return hasattr(kmd, "Kernel") and hasattr(umd, "make_driver")


def scenario_trace(path: Path, scenario: str, **spec: Any) -> Path:
    """Run a built-in scenario with a trace at ``path``."""
    from wddmemu._runner import RunSpec, run_scenario

    run_scenario(RunSpec(scenario=scenario, **spec), trace=str(path))
    return path


def synthetic_lines(n: int) -> Iterator[bytes]:
    """``n`` well-formed trace lines in the real schema: an app thread doing LockAsync/Unlock
    and enqueueing draws, a worker executing them with pfnRenderCb submissions, a GPU running
    the DMA buffers over virtual time, and a violation now and then. Fast (string templates)."""
    ctx = b',"scenario":"synthetic","seed":0,"strategy":"fifo","backend":"asyncio"}\n'
    step = 0
    t = 0
    fence = 0
    seq = 0

    def line(thread: str | None, event: str, rest: str = "") -> bytes:
        nonlocal step
        step += 1
        th = "null" if thread is None else f'"{thread}"'
        return f'{{"step":{step},"t":{t},"thread":{th},"event":"{event}"{rest}'.encode() + ctx

    yield line(None, "run.start", ',"strategy":"fifo","seed":0,"step_budget":200000')
    yield line("app", "spawn", ',"child":"kernel.gpu","tid":1,"daemon":true')
    yield line("app", "spawn", ',"child":"dev0.worker","tid":2,"daemon":false')
    out = 3
    i = 0
    while True:
        i += 1
        seq += 1
        fence += 1
        batch = [
            line("app", "ddi.enter", ',"ddi":"LockAsync","device":"dev0","gated":false'),
            line("app", "cb.enter", ',"cb":"pfnLockCb","device":"dev0","allocation":64'),
            line("app", "kmd.rename", ',"device":1,"allocation":64,"old":68,"new":72'),
            line("app", "cb.exit", ',"cb":"pfnLockCb","device":"dev0","hr":"0x00000000",'
                 '"hr_name":"S_OK"'),
            line("app", "ddi.exit", ',"ddi":"LockAsync","device":"dev0","hr":"0x00000000",'
                 f'"hr_name":"S_OK","cookie":{i}'),
            line("app", "rt.queue.put", f',"queue":"dev0.cmdq","ddi":"DrawPrimitive",'
                 f'"seq":{seq},"depth":1,"front":false'),
            line("app", "block", ',"waits":"queue dev0.cmdq full"'),
            line("dev0.worker", "rt.queue.get", f',"queue":"dev0.cmdq","ddi":"DrawPrimitive",'
                 f'"seq":{seq},"depth":0'),
            line("dev0.worker", "mutex.acquire", ',"mutex":"dev0.entry"'),
            line("dev0.worker", "ddi.enter", ',"ddi":"DrawPrimitive","device":"dev0",'
                 '"gated":true'),
            line("dev0.worker", "cb.enter", ',"cb":"pfnRenderCb","device":"dev0","commands":2'),
            line("dev0.worker", "kmd.render", f',"device":1,"context":2,"fence":{fence},'
                 '"commands":2,"status":"0x00000000","status_name":"STATUS_SUCCESS"'),
            line("dev0.worker", "cb.exit", ',"cb":"pfnRenderCb","device":"dev0",'
                 f'"hr":"0x00000000","hr_name":"S_OK","fence":{fence},"draw_ids":[{i}]'),
            line("dev0.worker", "ddi.exit", ',"ddi":"DrawPrimitive","device":"dev0",'
                 '"hr":"0x00000000","hr_name":"S_OK"'),
            line("dev0.worker", "mutex.release", ',"mutex":"dev0.entry"'),
            line("app", "unblock", ',"waited":"queue dev0.cmdq full"'),
            line("kernel.gpu", "kmd.dma.start", f',"fence":{fence},"device":1,"context":2'),
            line("app", "rt.sync", ',"device":"dev0","reason":"readonly"'),
        ]
        t += 3000
        batch += [
            line("kernel.gpu", "kmd.dma.end", f',"fence":{fence},"device":1,"context":2,'
                 f'"result":"completed","draws":[{i}],"reads":[]'),
            line("kernel.gpu", "kmd.fence", f',"fence":{fence},"completed":{fence},'
                 '"result":"completed"'),
        ]
        if i % 1000 == 0:
            batch.append(line("dev0.worker", "violation", ',"rule":"LA-13","message":"synthetic"'))
        for b in batch:
            if out >= n - 1:
                yield line(None, "run.end", ',"ok":false,"failure":null,"violations":[],'
                           '"decisions":0')
                return
            yield b
            out += 1


def write_synthetic(path: Path, n: int) -> Path:
    with open(path, "wb", buffering=1 << 20) as f:
        f.writelines(synthetic_lines(n))
    return path


def load_chrome(path: Path) -> dict[str, Any]:
    return orjson.loads(path.read_bytes())
