"""Property test: random handles, flags, page lists and command buffers thrown at every thunk
from two emulated threads. No Python exception escapes, every answer is one of the thunk's
documented codes, and the kernel's invariants hold afterwards: no freed instance is readable,
fences are monotonic, reference counts are ≥ 0, segment accounting is consistent."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kmd
import vthreads as vt
from kmd import D3DDDICB_LOCKFLAGS as LF

# ---- strategies -------------------------------------------------------------------------------

# a handle reference: an index into the pool of every handle created so far (any type), a raw
# integer, or garbage of another type
ref = st.one_of(
    st.tuples(st.just("pool"), st.integers(0, 63)),
    st.tuples(st.just("pool"), st.integers(0, 63)),
    st.tuples(st.just("int"), st.one_of(st.integers(-3, 3), st.integers(0x40000000, 0x40000800))),
    st.tuples(st.just("junk"), st.sampled_from([None, "h", 1.5, True, (), b"\x01"])),
)


def tref(kind: str) -> st.SearchStrategy[tuple[str, Any]]:
    """Mostly a live handle of the right type (so that calls get deep), sometimes anything."""
    right = st.tuples(st.just(kind), st.integers(0, 63))
    return st.one_of(right, right, right, right, right, ref)


OWNER = st.tuples(st.just("owner"), st.just(0))  # the device / a context of the allocation
DEV = st.one_of(OWNER, OWNER, OWNER, tref("device"))
CTX = st.one_of(OWNER, OWNER, OWNER, tref("context"))
ALLOC, ADAPTER, RES = tref("allocation"), tref("adapter"), tref("resource")
ALLOC_OK = st.tuples(st.just("allocation"), st.integers(0, 63))

good_lock_flags = st.sampled_from(
    [
        LF.LockEntire,
        LF.LockEntire | LF.DonotWait,
        LF.LockEntire | LF.Discard,
        LF.LockEntire | LF.Discard | LF.NoExistingReference,
        LF.LockEntire | LF.IgnoreSync | LF.DonotWait,
        LF.LockEntire | LF.IgnoreReadSync,
        LF.LockEntire | LF.ReadOnly,
        LF.LockEntire | LF.DonotEvict,
    ]
)

lock_flags = st.one_of(
    st.sampled_from(
        [
            LF.LockEntire,
            LF.LockEntire | LF.DonotWait,
            LF.LockEntire | LF.Discard,
            LF.LockEntire | LF.Discard | LF.NoExistingReference,
            LF.LockEntire | LF.IgnoreSync | LF.DonotWait,
            LF.LockEntire | LF.IgnoreReadSync,
            LF.LockEntire | LF.ReadOnly,
            LF.LockEntire | LF.AcquireAperture,
            LF.LockEntire | LF.AcquireAperture | LF.UseAlternateVA,
            LF.LockEntire | LF.DonotEvict,
            0,
        ]
    ),
    st.integers(0, 0x7FF),
    st.integers(0, 0xFFFFFFFF),
    st.sampled_from([-1, None, "x", 2.0]),
)

pages = st.one_of(
    st.none(),
    st.lists(st.integers(-1, 5), max_size=4),
    st.lists(st.integers(0, 3), min_size=1, max_size=3, unique=True).map(sorted),
    st.just("junk"),
)

command = st.one_of(
    st.builds(
        kmd.CmdDraw,
        st.integers(0, 9),
        st.integers(-1, 3),
        st.integers(-1, 9000),
        st.integers(0, 64),
    ),
    st.builds(kmd.CmdWrite, st.integers(0, 3), st.integers(0, 9000), st.binary(max_size=8)),
    st.builds(kmd.CmdSpin, st.sampled_from([0, 1_000, 1_000_000, 3_000_000_000, -5])),
    st.builds(kmd.CmdNop),
    st.sampled_from(["junk", None, 7]),
)

desc = st.one_of(
    st.builds(
        kmd.AllocationDesc,
        size=st.sampled_from([1, 4096, 8192, 3 * 4096 + 5, 1 << 30]),
        segments=st.sampled_from(["any", "local", "aperture", "moon"]),
        cpu_visible=st.booleans(),
        swizzled=st.booleans(),
        overlay=st.booleans(),
        cached=st.booleans(),
        use_alternate_va=st.booleans(),
    ),
    st.sampled_from([None, "junk"]),
)

op = st.one_of(
    st.tuples(
        st.just("lock"), DEV, ALLOC, lock_flags, pages, st.integers(-1, 4), st.integers(0, 2)
    ),
    st.tuples(st.just("lock"), OWNER, ALLOC, good_lock_flags, st.none(), st.just(0), st.just(0)),
    st.tuples(st.just("lock"), OWNER, ALLOC, good_lock_flags, st.none(), st.just(0), st.just(0)),
    st.tuples(st.just("unlock"), OWNER, st.lists(tref("allocation"), min_size=1, max_size=1)),
    st.tuples(st.just("lock2"), DEV, ALLOC, st.sampled_from([0, 0, 1, -1])),
    st.tuples(st.just("unlock"), DEV, st.lists(ALLOC, min_size=1, max_size=3)),
    st.tuples(st.just("unlock2"), DEV, ALLOC),
    st.tuples(
        st.just("render"),
        ref,
        st.lists(command, max_size=4),
        st.lists(st.tuples(ref, st.booleans()), max_size=3),
    ),
    st.tuples(
        st.just("create"),
        ref,
        st.lists(st.tuples(desc, st.integers(0, 3)), min_size=0, max_size=3),
        st.booleans(),
        ref,
    ),
    st.tuples(st.just("destroy"), ref, ref, st.lists(ref, max_size=2)),
    st.tuples(st.just("device"), ref),
    st.tuples(st.just("context"), ref),
    st.tuples(st.just("destroy_device"), ref),
    st.tuples(st.just("touch"), st.integers(0, 15), st.integers(-2, 9000), st.booleans()),
    st.tuples(st.just("sleep"), st.sampled_from([0, 1_000, 100_000, 5_000_000])),
    st.tuples(st.just("hang")),
    st.tuples(st.just("remove"), st.booleans()),
    st.tuples(st.just("state"), DEV),
)

# operations that are usually valid, so that runs get deep into the kernel's state machine
good_op = st.one_of(
    st.tuples(st.just("lock"), OWNER, ALLOC_OK, good_lock_flags, st.none(), st.just(0), st.just(0)),
    st.tuples(st.just("lock2"), OWNER, ALLOC_OK, st.just(0)),
    st.tuples(st.just("unlock"), OWNER, st.lists(ALLOC_OK, min_size=1, max_size=1)),
    st.tuples(st.just("unlock2"), OWNER, ALLOC_OK),
    st.tuples(
        st.just("render"),
        OWNER,
        st.lists(
            st.one_of(
                st.builds(kmd.CmdDraw, st.integers(0, 9), st.just(0), st.just(0), st.just(4)),
                st.builds(kmd.CmdSpin, st.sampled_from([1_000, 1_000_000])),
            ),
            min_size=1,
            max_size=3,
        ),
        st.lists(st.tuples(ALLOC_OK, st.booleans()), min_size=1, max_size=1),
    ),
    st.tuples(
        st.just("create"),
        OWNER,
        st.lists(
            st.tuples(
                st.builds(
                    kmd.AllocationDesc,
                    size=st.sampled_from([4096, 8192]),
                    segments=st.sampled_from(["any", "local", "aperture"]),
                ),
                st.just(0),
            ),
            min_size=1,
            max_size=2,
        ),
        st.booleans(),
        RES,
    ),
    st.tuples(st.just("touch"), st.integers(0, 15), st.integers(0, 100), st.booleans()),
)

ALLOWED_RULES = {"LCB-1", "KL-4", "TDR-2"}  # pointer misuse by the random "app", TDR storms


class World:
    def __init__(self, k: kmd.Kernel) -> None:
        self.k = k
        self.pool: list[int] = []
        self.pointers: list[kmd.CpuPointer] = []
        self.answers: list[tuple[str, int]] = []
        self.touch_errors = 0

    def h(self, r: tuple[str, Any]) -> Any:
        kind, v = r
        if kind == "pool":
            return self.pool[v % len(self.pool)] if self.pool else v
        if kind in ("int", "junk"):
            return v
        if kind == "owner":
            return 0  # resolved by the caller (see ``owner``)
        live = [
            h for h in self.pool if (t := self.k.handles.kind_of(h)) is not None and t.value == kind
        ]
        if not live:
            return self.pool[v % len(self.pool)] if self.pool else v
        return live[v % len(live)]

    def owner(self, r: tuple[str, Any], alloc: Any, want: str = "device") -> Any:
        """Resolve an ``owner`` ref to the device (or first context) owning ``alloc``."""
        if r[0] != "owner":
            return self.h(r)
        inst = self.k.handles.get(alloc, kmd.dxgkrnl.HandleType.ALLOCATION)
        if inst is None:
            return self.h(("device", 0)) if want == "device" else self.h(("context", 0))
        dev = inst.alloc.device
        if want == "device":
            return dev.handle
        return dev.contexts[0].handle if dev.contexts else 0

    def note(self, name: str, st_: int, *new: int) -> None:
        assert st_ in kmd.THUNK_CODES[name], (name, kmd.status_name(st_))
        assert isinstance(st_, kmd.NTSTATUS)
        self.answers.append((name, int(st_)))
        if st_ == kmd.STATUS_SUCCESS:
            self.pool.extend(h for h in new if isinstance(h, int) and h)


async def apply(w: World, o: tuple[Any, ...]) -> None:
    k = w.k
    kind = o[0]
    if kind == "lock":
        _, dev, alloc, flags, pg, n, pdd = o
        h = w.h(alloc)
        npages = len(pg) if isinstance(pg, list) and n < 0 else n
        a = kmd.D3DKMT_LOCK(w.owner(dev, h), h, flags, pg, npages, pdd)
        st_ = await kmd.D3DKMTLock(k, a)
        w.note("D3DKMTLock", st_, a.allocation)
        if st_ == kmd.STATUS_SUCCESS:
            assert isinstance(a.data, kmd.CpuPointer) and a.data.state == "mapped"
            w.pointers.append(a.data)
    elif kind == "lock2":
        _, dev, alloc, flags = o
        h = w.h(alloc)
        a2 = kmd.D3DKMT_LOCK2(w.owner(dev, h), h, flags)
        st_ = await kmd.D3DKMTLock2(k, a2)
        w.note("D3DKMTLock2", st_)
        if st_ == kmd.STATUS_SUCCESS:
            w.pointers.append(a2.data)
    elif kind == "unlock":
        hs = [w.h(r) for r in o[2]]
        st_ = await kmd.D3DKMTUnlock(k, kmd.D3DKMT_UNLOCK(w.owner(o[1], hs[0]), hs))
        w.note("D3DKMTUnlock", st_)
    elif kind == "unlock2":
        h = w.h(o[2])
        st_ = await kmd.D3DKMTUnlock2(k, kmd.D3DKMT_UNLOCK2(w.owner(o[1], h), h))
        w.note("D3DKMTUnlock2", st_)
    elif kind == "render":
        _, ctx, cmds, slots = o
        hs = [w.h(s) for s, _ in slots]
        r = kmd.D3DKMT_RENDER(
            context=w.owner(ctx, hs[0] if hs else 0, "context"),
            commands=cmds,
            allocation_list=[kmd.D3DDDI_ALLOCATIONLIST(h, wr) for h, (_, wr) in zip(hs, slots)],
        )
        st_ = await kmd.D3DKMTRender(k, r)
        w.note("D3DKMTRender", st_)
        if st_ == kmd.STATUS_SUCCESS:
            assert r.fence == k.submitted_fence
    elif kind == "create":
        _, dev, items, resource, res = o
        infos = []
        for d, extra in items:
            if extra == 3:
                infos.append(kmd.D3DDDI_ALLOCATIONINFO(system_mem=bytearray(4096)))
            elif extra == 2:
                infos.append(
                    kmd.D3DDDI_ALLOCATIONINFO(d, flags=kmd.D3DDDI_ALLOCATIONINFO_FLAGS.Primary)
                )
            else:
                infos.append(kmd.D3DDDI_ALLOCATIONINFO(d, vidpn_source_id=extra))
        ca = kmd.D3DKMT_CREATEALLOCATION(
            w.owner(dev, w.h(("allocation", 0))),
            infos,
            create_resource=resource,
            resource=0 if resource else w.h(res),
        )
        st_ = await kmd.D3DKMTCreateAllocation(k, ca)
        w.note("D3DKMTCreateAllocation", st_, *(i.allocation for i in infos), ca.resource)
        if st_ != kmd.STATUS_SUCCESS:
            assert all(i.allocation == 0 for i in infos)  # AC-12
    elif kind == "destroy":
        _, dev, res, hs = o
        handles = [w.h(x) for x in hs]
        d = kmd.D3DKMT_DESTROYALLOCATION(
            w.owner(dev, handles[0] if handles else 0), w.h(res) if not hs else 0, handles
        )
        w.note("D3DKMTDestroyAllocation", await kmd.D3DKMTDestroyAllocation(k, d))
    elif kind == "device":
        cd = kmd.D3DKMT_CREATEDEVICE(w.h(o[1]))
        st_ = await kmd.D3DKMTCreateDevice(k, cd)
        w.note("D3DKMTCreateDevice", st_, cd.device)
    elif kind == "context":
        cc = kmd.D3DKMT_CREATECONTEXT(w.owner(o[1], w.h(("allocation", 0))))
        st_ = await kmd.D3DKMTCreateContext(k, cc)
        w.note("D3DKMTCreateContext", st_, cc.context)
    elif kind == "destroy_device":
        dd = kmd.D3DKMT_DESTROYDEVICE(w.h(o[1]))
        st_ = await kmd.D3DKMTDestroyDevice(k, dd)
        w.note("D3DKMTDestroyDevice", st_)
    elif kind == "state":
        gs = kmd.D3DKMT_GETDEVICESTATE(w.owner(o[1], w.h(("allocation", 0))))
        w.note("D3DKMTGetDeviceState", await kmd.D3DKMTGetDeviceState(k, gs))
    elif kind == "touch" and w.pointers:
        _, i, off, write = o
        p = w.pointers[i % len(w.pointers)]
        dead = p.state in ("unlocked", "freed")
        try:
            if write:
                p.write(off, b"zz")
            else:
                p.read(off, 2)
        except kmd.AccessViolation:
            w.touch_errors += 1
        else:
            assert not dead, f"{p!r} was usable after its lock/instance died"
    elif kind == "sleep":
        await vt.sleep(o[1])
    elif kind == "hang":
        k.inject_hang()
    elif kind == "remove":
        devices = [h for h in w.pool if k.handles.kind_of(h) is kmd.dxgkrnl.HandleType.DEVICE]
        k.inject_removal(devices[-1] if o[1] and devices else None)


@pytest.mark.slow  # 250 storms (docs/testing.md)
@settings(
    max_examples=250,
    deadline=None,
    derandomize=True,  # no unseeded randomness: the same examples on every run
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    app_ops=st.lists(st.one_of(good_op, op), min_size=3, max_size=24),
    worker_ops=st.lists(st.one_of(good_op, op), min_size=3, max_size=24),
    seed=st.integers(0, 2**16),
    small=st.booleans(),
)
def test_random_thunk_storm(
    app_ops: list[tuple[Any, ...]], worker_ops: list[tuple[Any, ...]], seed: int, small: bool
) -> None:
    cfg = (
        kmd.KernelConfig(
            segments=(
                kmd.SegmentDesc("local", 32 * 1024, "memory"),
                kmd.SegmentDesc("aperture", 32 * 1024, "aperture"),
            ),
            system_memory_bytes=48 * 1024,
            max_rename_instances=2,
            max_pending_references=3,
            swizzling_apertures=1,
            tdr_timeout_ns=10_000_000,
        )
        if small
        else kmd.KernelConfig()
    )
    k = kmd.Kernel(cfg)
    w = World(k)

    async def setup() -> None:
        oa = kmd.D3DKMT_OPENADAPTER()
        w.note("D3DKMTOpenAdapter", await kmd.D3DKMTOpenAdapter(k, oa), oa.adapter)
        cd = kmd.D3DKMT_CREATEDEVICE(oa.adapter)
        w.note("D3DKMTCreateDevice", await kmd.D3DKMTCreateDevice(k, cd), cd.device)
        cc = kmd.D3DKMT_CREATECONTEXT(cd.device)
        w.note("D3DKMTCreateContext", await kmd.D3DKMTCreateContext(k, cc), cc.context)
        info = kmd.D3DDDI_ALLOCATIONINFO(kmd.AllocationDesc(8192, segments="aperture"))
        ca = kmd.D3DKMT_CREATEALLOCATION(cd.device, [info])
        w.note("D3DKMTCreateAllocation", await kmd.D3DKMTCreateAllocation(k, ca), info.allocation)

    async def thread(ops: list[tuple[Any, ...]]) -> None:
        for o in ops:
            await apply(w, o)

    async def main() -> None:
        await setup()
        worker = vt.spawn("worker", thread, worker_ops)
        await thread(app_ops)
        await worker.join()
        # every pointer whose instance is gone must refuse access
        for p in w.pointers:
            if p._inst.freed:
                try:
                    p.read(0, 1)
                except kmd.AccessViolation:
                    continue
                raise AssertionError(f"freed instance readable through {p!r}")

    result = vt.Engine(strategy="random", seed=seed).run(main)
    assert result.failure is None, result.summary()
    assert set(result.rules()) <= ALLOWED_RULES, result.summary()
    assert k.check_invariants() == []
    fences = [r.fence for r in k.dma_records]
    assert fences == sorted(set(fences))
    assert k.completed_fence <= k.submitted_fence
    for inst in k.vidmm.instances.values():
        # a live instance is placed, and waits only on fences submitted and not yet completed
        assert inst.placed and not inst.freed, inst
        assert all(k.completed_fence < f <= k.submitted_fence for f in inst.pending), inst
