"""Helpers for the kmd tests: run an engine program, and a ``Rig`` that opens an adapter, a
device and a context and offers short async helpers over the thunks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import kmd
import vthreads as vt
from kmd import (
    D3DDDI_ALLOCATIONINFO,
    D3DDDI_ALLOCATIONLIST,
    D3DKMT_CREATEALLOCATION,
    D3DKMT_CREATECONTEXT,
    D3DKMT_CREATEDEVICE,
    D3DKMT_LOCK,
    D3DKMT_LOCK2,
    D3DKMT_OPENADAPTER,
    D3DKMT_RENDER,
    D3DKMT_UNLOCK,
    D3DKMT_UNLOCK2,
    AllocationDesc,
    CmdDraw,
    CmdSpin,
    Kernel,
    KernelConfig,
)
from kmd import D3DDDICB_LOCKFLAGS as LF

OK = kmd.STATUS_SUCCESS


def run(main: Callable[[], Awaitable[Any]], backend: str = "asyncio", **kw: Any) -> vt.RunResult:
    """Run ``main`` on a fresh engine; fail the test if the run failed or a rule broke, unless
    the caller passes ``check=False``."""
    check = kw.pop("check", True)
    result = vt.Engine(backend=backend, **kw).run(main)
    if check:
        result.check()
    return result


class Rig:
    """An adapter + device + context on a fresh kernel, inside a run."""

    def __init__(self, config: KernelConfig | None = None, name: str = "kmd") -> None:
        self.k = Kernel(config, name=name)
        self.adapter = 0
        self.device = 0
        self.context = 0

    async def setup(self) -> Rig:
        oa = D3DKMT_OPENADAPTER()
        assert await kmd.D3DKMTOpenAdapter(self.k, oa) == OK
        self.adapter = oa.adapter
        self.device = await self.new_device()
        cc = D3DKMT_CREATECONTEXT(device=self.device)
        assert await kmd.D3DKMTCreateContext(self.k, cc) == OK
        self.context = cc.context
        return self

    async def new_device(self) -> int:
        cd = D3DKMT_CREATEDEVICE(adapter=self.adapter)
        assert await kmd.D3DKMTCreateDevice(self.k, cd) == OK
        return cd.device

    async def new_context(self, device: int) -> int:
        cc = D3DKMT_CREATECONTEXT(device=device)
        assert await kmd.D3DKMTCreateContext(self.k, cc) == OK
        return cc.context

    async def alloc(
        self, size: int = 8192, device: int | None = None, expect: int = OK, **desc: Any
    ) -> int:
        info = D3DDDI_ALLOCATIONINFO(private_driver_data=AllocationDesc(size=size, **desc))
        ca = D3DKMT_CREATEALLOCATION(device=device or self.device, allocation_info=[info])
        st = await kmd.D3DKMTCreateAllocation(self.k, ca)
        assert st == expect, kmd.status_name(st)
        return info.allocation

    async def lock(
        self,
        h: int,
        flags: int = LF.LockEntire,
        device: int | None = None,
        **kw: Any,
    ) -> tuple[kmd.NTSTATUS, D3DKMT_LOCK]:
        a = D3DKMT_LOCK(device=device or self.device, allocation=h, flags=flags, **kw)
        st = await kmd.D3DKMTLock(self.k, a)
        return st, a

    async def lock2(self, h: int, flags: int = 0) -> tuple[kmd.NTSTATUS, D3DKMT_LOCK2]:
        a = D3DKMT_LOCK2(device=self.device, allocation=h, flags=flags)
        st = await kmd.D3DKMTLock2(self.k, a)
        return st, a

    async def unlock(self, *hs: int, device: int | None = None) -> kmd.NTSTATUS:
        return await kmd.D3DKMTUnlock(
            self.k, D3DKMT_UNLOCK(device=device or self.device, allocations=list(hs))
        )

    async def unlock2(self, h: int) -> kmd.NTSTATUS:
        return await kmd.D3DKMTUnlock2(self.k, D3DKMT_UNLOCK2(device=self.device, allocation=h))

    async def render(
        self,
        commands: Sequence[Any],
        handles: Sequence[int],
        writes: Sequence[bool] | None = None,
        context: int | None = None,
    ) -> tuple[kmd.NTSTATUS, D3DKMT_RENDER]:
        writes = writes or [False] * len(handles)
        r = D3DKMT_RENDER(
            context=context or self.context,
            commands=list(commands),
            allocation_list=[
                D3DDDI_ALLOCATIONLIST(allocation=h, write_operation=w)
                for h, w in zip(handles, writes)
            ],
        )
        st = await kmd.D3DKMTRender(self.k, r)
        return st, r

    async def busy(self, h: int, ns: int = 1_000_000, draw_id: int = 99) -> int:
        """Submit a DMA buffer that reads ``h`` and keeps the GPU busy ``ns``; returns its
        fence."""
        st, r = await self.render([CmdDraw(draw_id, 0, 0, 4), CmdSpin(ns)], [h])
        assert st == OK, kmd.status_name(st)
        return r.fence

    def invariants(self) -> None:
        problems = self.k.check_invariants()
        assert not problems, problems


def run_traced(
    main: Callable[[], Awaitable[Any]], backend: str = "asyncio", **kw: Any
) -> tuple[vt.RunResult, list[dict[str, Any]]]:
    """Like :func:`run`, also returning the trace events (dicts)."""
    import io

    import orjson

    buf = io.BytesIO()
    result = run(main, backend=backend, trace=buf, **kw)
    events = [orjson.loads(line) for line in buf.getvalue().splitlines() if line.strip()]
    return result, events


def kmd_events(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in events if e.get("event") == name]
