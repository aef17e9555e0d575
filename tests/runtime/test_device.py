"""The emulated D3D9 runtime: MP layer, Rename ordering, sync paths, the DDI-version gate."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kmd
import runtime as rt
import umd
import vthreads as vt
from runtime import d3d9
from wddmemu._checker import Checker

DISCARD, NOOVERWRITE = d3d9.D3DLOCK_DISCARD, d3d9.D3DLOCK_NOOVERWRITE
TRI = d3d9.D3DPT_TRIANGLELIST


def pattern(tag: int, n: int) -> bytes:
    return bytes(((tag * 37 + i) & 0xFF) for i in range(n))


@dataclass
class Box:
    kernel: Any = None
    devices: list[Any] = field(default_factory=list)
    value: Any = None


def run_app(
    body: Callable[[Any, Box], Awaitable[Any]],
    *,
    driver: Any = None,
    version: int = 0xC,
    strategy: str = "fifo",
    seed: int = 0,
    kernel: dict[str, Any] | None = None,
    device: rt.DeviceConfig | None = None,
    backend: str = "asyncio",
    check: bool = True,
) -> tuple[vt.RunResult, Box]:
    """Run ``body(dev, box)`` on a fresh kernel + driver + device, with the checker attached
    and the data oracle run at the end."""
    box = Box()
    eng = vt.Engine(strategy, seed=seed, backend=backend, pct_steps=300)
    checker = Checker().attach(eng) if check else None

    async def main() -> None:
        k = kmd.Kernel(kmd.KernelConfig(**(kernel or {})))
        box.kernel = k
        drv = driver or umd.ReferenceDriver(umd.DriverConfig(driver_version=version))
        adapter = await rt.open_adapter(k, drv)
        dev = await adapter.create_device(device or rt.DeviceConfig())
        box.devices.append(dev)
        box.value = await body(dev, box)
        await dev.close()
        if checker is not None:
            checker.final([k], box.devices)

    return eng.run(main, name="app"), box


def gpu_reads(kernel: Any) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = {}
    for rec in kernel.dma_records:
        for c in rec.commands:
            if c.kind == "draw":
                out.setdefault(c.draw_id, []).append(c)
    return out


# ---- Rename ordering (RN-4, LA-13) --------------------------------------------------------


async def _old_then_new(dev: Any, box: Box) -> tuple[int, int]:
    vb = await dev.create_vertex_buffer(64)
    await dev.set_stream_source(0, vb, 0, 16)
    v = await dev.lock(vb, 0, 0, DISCARD)
    v.write(0, pattern(1, 64))
    await dev.unlock(vb)
    before = await dev.draw_primitive(TRI, 0, 4)  # queued before the Discard below
    v = await dev.lock(vb, 0, 0, DISCARD)  # LockAsync on this thread; Rename queued
    v.write(0, pattern(2, 64))
    await dev.unlock(vb)
    after = await dev.draw_primitive(TRI, 0, 4)
    return before, after


@pytest.mark.parametrize("version", [0xA, 0xC])
@pytest.mark.parametrize("strategy", ["fifo", "random", "pct"])
def test_draw_before_discard_reads_old_bytes_and_after_reads_new(strategy: str,
                                                                 version: int) -> None:
    for seed in range(15 if strategy != "fifo" else 1):
        r, box = run_app(_old_then_new, strategy=strategy, seed=seed, version=version)
        assert r.ok, r.summary()
        before, after = box.value
        reads = gpu_reads(box.kernel)
        assert reads[before][0].data == pattern(1, 64)
        assert reads[after][0].data == pattern(2, 64)
        assert reads[before][0].instance != reads[after][0].instance  # it really renamed
        stats = box.devices[0].statistics()
        assert stats.renames == 2
        assert stats.ddi_calls["Rename"] == {"dev0.worker": 2}  # RN-3
        assert stats.ddi_calls["LockAsync"] == {"app": 2}  # LA-2


# ---- the synchronous path, reason by reason ---------------------------------------------


def _syncs(body, **kw) -> dict[str, int]:
    r, box = run_app(body, **kw)
    assert r.failure is None, r.summary()
    return box.devices[0].statistics().syncs


async def _lock_once(dev: Any, box: Box, *, usage: int | None = None, flags: int = DISCARD,
                     surface: bool = False) -> None:
    if surface:
        res = await dev.create_surface(16, 4)
    elif usage is None:
        res = await dev.create_vertex_buffer(64)
    else:
        res = await dev.create_vertex_buffer(64, usage=usage)
    v = await dev.lock(res, 0, 0, flags)
    if not flags & d3d9.D3DLOCK_READONLY:
        v.write(0, pattern(3, 16))
    await dev.unlock(res)


def test_sync_reason_no_async_ddi() -> None:
    drv = umd.ReferenceDriver(umd.DriverConfig(implements=()))
    r, box = run_app(_lock_once, driver=drv)
    assert r.ok, r.summary()
    s = box.devices[0].statistics()
    assert not s.mp_layer and s.syncs == {"no-async-ddi": 1}
    assert "LockAsync" not in s.ddi_calls and s.ddi_calls["Lock"] == {"app": 1}


def test_sync_reason_readonly_not_dynamic_plain_and_createresource() -> None:
    async def body(dev: Any, box: Box) -> None:
        await _lock_once(dev, box, flags=d3d9.D3DLOCK_READONLY)
        await _lock_once(dev, box, usage=0)  # not dynamic
        await _lock_once(dev, box, flags=0)  # dynamic, but neither DISCARD nor NOOVERWRITE

    r, box = run_app(body)
    assert r.ok, r.summary()
    s = box.devices[0].statistics()
    assert s.syncs == {"createresource": 3, "readonly": 1, "not-dynamic": 1, "plain-lock": 1,
                       "close": 1, "destroydevice": 1}
    assert s.ddi_calls["Lock"] == {"dev0.worker": 3}  # the worker makes the sync Lock


@pytest.mark.parametrize("version,expect_async", [(0xA, False), (0xB, True)])
def test_sysmem_surfaces_take_lockasync_only_at_0xb(version: int, expect_async: bool) -> None:
    r, box = run_app(lambda d, b: _lock_once(d, b, surface=True), version=version)
    assert r.ok, r.summary()
    s = box.devices[0].statistics()
    if expect_async:
        assert s.ddi_calls["LockAsync"] == {"app": 1} and "sysmem-below-0xB" not in s.syncs
    else:
        assert s.syncs["sysmem-below-0xB"] == 1 and "LockAsync" not in s.ddi_calls


def test_sync_reason_lockasync_failed_wasstilldrawing() -> None:
    async def body(dev: Any, box: Box) -> None:
        vb = await dev.create_vertex_buffer(64)
        await dev.set_stream_source(0, vb, 0, 16)
        for f in range(3):
            await dev.draw_primitive(TRI, 0, 4)
            v = await dev.lock(vb, 0, 0, DISCARD)
            v.write(0, pattern(f, 64))
            await dev.unlock(vb)
            await dev.draw_primitive(TRI, 0, 4)
            await dev.present()

    syncs = _syncs(body, kernel={"max_rename_instances": 2, "dma_base_cost_ns": 10**6})
    assert syncs["lockasync-failed:WASSTILLDRAWING"] >= 1


def test_sync_reason_lockasync_failed_e_notimpl() -> None:
    usage = d3d9.D3DUSAGE_DYNAMIC | d3d9.D3DUSAGE_RENDERTARGET  # the driver keeps it local-only
    syncs = _syncs(lambda d, b: _lock_once(d, b, usage=usage, flags=NOOVERWRITE))
    assert syncs["lockasync-failed:E_NOTIMPL"] == 1


def test_sync_reason_lockasync_failed_e_outofmemory() -> None:
    costs = umd.HEAP_COSTS
    # room for the resource, not for a Discard's lock + cookie records: LockAsync fails with
    # E_OUTOFMEMORY, the runtime falls back to Lock, which needs as much and fails the same way
    heap = costs["resource"] + costs["descriptor"] + costs["lock"]
    drv = umd.ReferenceDriver(umd.DriverConfig(heap_bytes=heap))
    seen: list[int] = []

    async def body(dev: Any, box: Box) -> None:
        try:
            await _lock_once(dev, box)
        except d3d9.D3DError as e:
            seen.append(e.hr)

    r, box = run_app(body, driver=drv)
    assert r.ok, r.summary()
    s = box.devices[0].statistics()
    assert s.lock_async_results == {"E_OUTOFMEMORY": 1}
    assert s.syncs["lockasync-failed:E_OUTOFMEMORY"] == 1
    assert s.ddi_calls["Lock"] == {"dev0.worker": 1}
    assert seen == [int(kmd.E_OUTOFMEMORY)]


def test_sync_reasons_queue_full_and_frame_latency() -> None:
    async def body(dev: Any, box: Box) -> None:
        vb = await dev.create_vertex_buffer(64)
        await dev.set_stream_source(0, vb, 0, 16)
        for _ in range(4):
            await dev.draw_primitive(TRI, 0, 4)
            await dev.present()

    syncs = _syncs(body, device=rt.DeviceConfig(queue_size=1))
    assert syncs["queue-full"] >= 1
    assert "frame-latency" not in syncs  # the full queue throttled first
    syncs = _syncs(body, device=rt.DeviceConfig(queue_size=16, max_frame_latency=1))
    assert syncs["frame-latency"] >= 1
    assert "queue-full" not in syncs


# ---- the DDI-version gate (LA-3, MP-1, MP-2) ----------------------------------------------


class InsideWatcher:
    """Who is inside the driver, from the runtime's ddi.enter/ddi.exit events."""

    def __init__(self) -> None:
        self.inside: dict[str, str] = {}
        self.overlaps: list[tuple[str, str]] = []

    def __call__(self, ev: dict[str, Any]) -> None:
        if ev["event"] == "ddi.enter" and ev["ddi"] not in ("OpenAdapter", "CreateDevice"):
            for th, ddi in self.inside.items():
                if th != ev["thread"]:
                    self.overlaps.append((ddi, ev["ddi"]))
            self.inside[ev["thread"]] = ev["ddi"]
        elif ev["event"] == "ddi.exit":
            self.inside.pop(ev["thread"], None)


async def _busy_app(dev: Any, box: Box) -> None:
    vbs = [await dev.create_vertex_buffer(128) for _ in range(2)]
    for f in range(3):
        for i, vb in enumerate(vbs):
            await dev.set_stream_source(0, vb, 0, 16)
            for half in (0, 1):
                v = await dev.lock(vb, half * 64, 64, DISCARD if half == 0 else NOOVERWRITE)
                v.write(0, pattern(f * 4 + i * 2 + half, 64))
                await dev.unlock(vb)
                await dev.draw_primitive(TRI, half * 4, 4)
        await dev.present()


def _overlaps(version: int, seed: int, bugs: frozenset[str] = frozenset()) -> list:
    w = InsideWatcher()
    box = Box()
    eng = vt.Engine("random", seed=seed)
    eng.subscribe(w)

    async def main() -> None:
        k = kmd.Kernel()
        adapter = await rt.open_adapter(k, umd.ReferenceDriver(umd.DriverConfig(
            driver_version=version)))
        dev = await adapter.create_device(rt.DeviceConfig(bugs=bugs))
        box.devices.append(dev)
        await _busy_app(dev, box)
        await dev.close()

    r = eng.run(main, name="app")
    assert r.failure is None, r.summary()
    return w.overlaps


@pytest.mark.slow  # a long one (docs/testing.md); CI runs it with --slow
def test_below_0xb_no_two_threads_are_ever_inside_the_driver() -> None:
    for seed in range(200):
        assert _overlaps(0xA, seed) == [], f"seed {seed}"


def test_at_0xb_lockasync_overlaps_a_worker_ddi_on_some_schedule() -> None:
    found = set()
    for seed in range(200):
        for pair in _overlaps(0xB, seed):
            found.add(pair)
        if found:
            break
    assert found, "no schedule of 200 overlapped LockAsync/UnlockAsync with a worker DDI"
    assert all(a in ("LockAsync", "UnlockAsync") or b in ("LockAsync", "UnlockAsync")
               for a, b in found)


def test_the_broken_gate_lets_threads_overlap_below_0xb() -> None:
    assert any(_overlaps(0xA, s, frozenset({"gate-missing"})) for s in range(200))


# ---- random application programs (Hypothesis) -----------------------------------------

DOCUMENTED_APP_ERRORS = {
    d3d9.D3DERR_INVALIDCALL, d3d9.D3DERR_WASSTILLDRAWING, d3d9.D3DERR_OUTOFVIDEOMEMORY,
    d3d9.D3DERR_DEVICEREMOVED, int(kmd.E_OUTOFMEMORY), int(kmd.D3DERR_NOTAVAILABLE),
}

op = st.one_of(
    st.tuples(st.just("create"), st.sampled_from(["dyn", "static", "sysmem"]),
              st.sampled_from([64, 256, 4096])),
    st.tuples(st.just("lock"), st.integers(0, 3), st.sampled_from([0, 16, 48, 128]),
              st.sampled_from([0, 16, 64, 300]),
              st.sampled_from([0, DISCARD, NOOVERWRITE, DISCARD | NOOVERWRITE,
                               d3d9.D3DLOCK_READONLY, d3d9.D3DLOCK_DONOTWAIT,
                               NOOVERWRITE | d3d9.D3DLOCK_DONOTWAIT, 0x1])),
    st.tuples(st.just("unlock"), st.integers(0, 3)),
    st.tuples(st.just("stream"), st.integers(0, 3), st.sampled_from([0, 0, 0, 1])),
    st.tuples(st.just("draw"), st.integers(0, 3), st.integers(1, 4)),
    st.tuples(st.just("draw"), st.integers(0, 3), st.integers(1, 4)),
    st.tuples(st.just("present")),
    st.tuples(st.just("flush")),
    st.tuples(st.just("release"), st.integers(0, 3)),
)


def run_program(ops: list, seed: int, version: int, strategy: str) -> tuple[int, int]:
    """Run one application program (a list of ``op`` tuples) on the reference stack and check
    that every answer is a documented code and no rule broke; returns (draws, calls that
    succeeded)."""
    answers: list[int] = []

    async def body(dev: Any, box: Box) -> None:
        # every program starts with a dynamic buffer bound to stream 0, so draws and locks
        # mostly do something; the ops then create, lock, draw, release at random
        res: list[Any] = [await dev.create_vertex_buffer(256)]
        await dev.set_stream_source(0, res[0], 0, 16)
        for o in ops:
            try:
                await _apply(dev, res, o, len(answers))
                answers.append(0)
            except d3d9.D3DError as e:
                answers.append(e.hr)

    r, box = run_app(body, version=version, strategy=strategy, seed=seed)
    assert r.failure is None, r.summary()
    assert set(answers) <= DOCUMENTED_APP_ERRORS | {0}, [kmd.hresult_name(a) for a in answers]
    # the reference driver under the real runtime breaks no rule, whatever the app does; the
    # one finding a random program may earn is its own: writing, under NoOverwrite, bytes a
    # pending draw reads breaks the application's promise, and is reported as such, not DATA
    assert {v.rule for v in r.violations} <= {"APP-NOOVERWRITE"}, r.summary()
    return len(box.devices[0].draws), answers.count(0)


@pytest.mark.parametrize("same_bytes", [False, True])
@pytest.mark.parametrize("version", [0xA, 0xC])
def test_an_app_overwriting_a_pending_draw_under_nooverwrite_is_the_apps_finding(
        version: int, same_bytes: bool) -> None:
    """NoOverwrite is the application's promise to leave alone what the GPU may still read. An
    app that breaks it (a static buffer: the runtime's Lock carries NoOverwrite and the driver
    rightly does not wait) gets ``APP-NOOVERWRITE`` naming the draw, and the bytes it changed
    are not judged by the data oracle — no ``DATA`` blaming the driver. Rewriting the very same
    bytes changes nothing the GPU can see and is no finding."""
    first = pattern(1, 48)

    async def body(dev: Any, box: Box) -> None:
        vb = await dev.create_vertex_buffer(256)  # static: no Discard/rename on the way
        (await dev.lock(vb, 0, 0, 0)).write(0, first)
        await dev.unlock(vb)
        await dev.set_stream_source(0, vb, 0, 16)
        await dev.draw_primitive(TRI, 0, 3)  # three 16-byte vertices: bytes 0..47
        v = await dev.lock(vb, 16, 16, NOOVERWRITE)
        v.write(0, first[16:32] if same_bytes else pattern(9, 16))
        await dev.unlock(vb)
        await dev.present()

    r, _box = run_app(body, version=version)
    assert r.failure is None, r.summary()
    got = [(v.rule, v.fields.get("draw")) for v in r.violations]
    assert got == ([] if same_bytes else [("APP-NOOVERWRITE", 1)]), r.summary()
    if not same_bytes:
        assert "changed 16 byte(s) of vb0@dev0 from offset 16 that draw 1" in \
            r.violations[0].message


async def _apply(dev: Any, res: list[Any], o: tuple, n: int) -> None:
    if o[0] == "create":
        if o[1] == "sysmem":
            res.append(await dev.create_surface(o[2] // 4, 1, 4))
        else:
            usage = d3d9.D3DUSAGE_DYNAMIC if o[1] == "dyn" else 0
            res.append(await dev.create_vertex_buffer(o[2], usage=usage))
    elif o[0] == "lock" and res:
        v = await dev.lock(res[o[1] % len(res)], o[2], o[3], o[4])
        if not o[4] & d3d9.D3DLOCK_READONLY and len(v):
            v.write(0, pattern(n, min(len(v), 16)))
    elif o[0] == "unlock" and res:
        await dev.unlock(res[o[1] % len(res)])
    elif o[0] == "stream" and res:
        await dev.set_stream_source(o[2], res[o[1] % len(res)], 0, 16)
    elif o[0] == "draw":
        await dev.draw_primitive(TRI, o[1], o[2])
    elif o[0] == "present":
        await dev.present()
    elif o[0] == "flush":
        await dev.flush()
    elif o[0] == "release" and res:
        await dev.release(res.pop(o[1] % len(res)))


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(op, min_size=3, max_size=30), seed=st.integers(0, 2**16),
       version=st.sampled_from([0xA, 0xC]), strategy=st.sampled_from(["random", "pct"]))
def test_random_app_call_sequences(ops: list, seed: int, version: int, strategy: str) -> None:
    run_program(ops, seed, version, strategy)


def _seeded_program(rng: random.Random) -> list[tuple]:
    """A program like the ones ``op`` draws, from a seeded generator (no shared state)."""
    lock_flags = [0, DISCARD, NOOVERWRITE, DISCARD | NOOVERWRITE, d3d9.D3DLOCK_READONLY,
                  d3d9.D3DLOCK_DONOTWAIT, NOOVERWRITE | d3d9.D3DLOCK_DONOTWAIT, 0x1]
    makers = [
        lambda: ("create", rng.choice(["dyn", "static", "sysmem"]), rng.choice([64, 256, 4096])),
        lambda: ("lock", rng.randint(0, 3), rng.choice([0, 16, 48, 128]),
                 rng.choice([0, 16, 64, 300]), rng.choice(lock_flags)),
        lambda: ("unlock", rng.randint(0, 3)),
        lambda: ("stream", rng.randint(0, 3), rng.choice([0, 0, 0, 1])),
        lambda: ("draw", rng.randint(0, 3), rng.randint(1, 4)),
        lambda: ("draw", rng.randint(0, 3), rng.randint(1, 4)),
        lambda: ("present",),
        lambda: ("flush",),
        lambda: ("release", rng.randint(0, 3)),
    ]
    return [rng.choice(makers)() for _ in range(rng.randint(3, 30))]


def test_random_app_programs_really_drew_and_locked() -> None:
    """Guard against a vacuous property test: programs of the same shape do real work. The
    programs come from a seeded generator, so the verdict does not depend on which examples
    Hypothesis happened to draw in this process (issue 10: it used to fail one run in two)."""
    stats = []
    for k in range(24):
        rng = random.Random(k)
        ops = _seeded_program(rng)
        stats.append(run_program(ops, rng.randint(0, 2**16), rng.choice([0xA, 0xC]),
                                 rng.choice(["random", "pct"])))
    assert sum(1 for draws, _ in stats if draws) >= len(stats) // 3
    assert sum(ok for _, ok in stats) >= 2 * len(stats)


# ---- textures: several subresources -------------------------------------------------------


@pytest.mark.parametrize("usage", [0, d3d9.D3DUSAGE_DYNAMIC])
def test_texture_levels_lock_and_keep_their_bytes(usage: int) -> None:
    async def body(dev: Any, box: Box) -> list[bytes]:
        tex = await dev.create_texture(16, 8, levels=3, usage=usage)
        assert tex.levels == (16 * 8 * 4, 8 * 4 * 4, 4 * 2 * 4)
        for i, n in enumerate(tex.levels):
            v = await dev.lock(tex, 0, 0, DISCARD if usage else 0, subresource=i)
            assert len(v) == n
            v.write(0, pattern(10 + i, n))
            await dev.unlock(tex, subresource=i)
        back = []
        for i, n in enumerate(tex.levels):
            v = await dev.lock(tex, 0, 0, d3d9.D3DLOCK_READONLY, subresource=i)
            back.append(v.read(0, n))
            await dev.unlock(tex, subresource=i)
        for bad in (-1, 3):
            with pytest.raises(d3d9.D3DError, match="no subresource"):
                await dev.lock(tex, subresource=bad)
        with pytest.raises(d3d9.D3DError, match="only buffers"):
            await dev.set_stream_source(0, tex, 0, 16)
        return back

    for strategy in ("fifo", "random"):
        r, box = run_app(body, strategy=strategy, seed=3)
        assert r.ok, r.summary()
        assert box.value == [pattern(10 + i, n) for i, n in enumerate((512, 128, 32))]
        s = box.devices[0].statistics()
        if usage:
            # a Discard of one level of a multi-level resource: the driver refuses to rename
            # it and the runtime falls back to Lock
            assert s.lock_async_results == {"E_NOTIMPL": 3}
            assert s.syncs["lockasync-failed:E_NOTIMPL"] == 3
        else:
            assert s.syncs["not-dynamic"] == 3
        assert s.syncs["readonly"] == 3


def test_a_systemmem_texture_has_one_level() -> None:
    async def body(dev: Any, box: Box) -> None:
        with pytest.raises(d3d9.D3DError, match="one level"):
            await dev.create_texture(8, 8, levels=2, pool=d3d9.D3DPOOL_SYSTEMMEM)
        tex = await dev.create_texture(8, 8, levels=1, pool=d3d9.D3DPOOL_SYSTEMMEM)
        v = await dev.lock(tex, 0, 0, 0)
        v.write(0, b"\x07" * 16)
        await dev.unlock(tex)

    r, _ = run_app(body)
    assert r.ok, r.summary()


def test_statistics_show_the_ddi_version_difference() -> None:
    """issue 11: what reentrant-lockasync exists to show is in the run's statistics — at 0xB
    LockAsync/UnlockAsync enter without the entry lock and overlap the worker; at 0xA never."""
    from wddmemu import RunSpec, run_scenario

    def stats(version: int, seed: int):
        spec = RunSpec("reentrant-lockasync", ddi_version=version, strategy="random", seed=seed)
        return run_scenario(spec).devices[0]

    below = [stats(0xA, s) for s in range(8)]
    assert all(d.ungated_calls == {} and d.overlapping_entries == 0 for d in below)
    above = [stats(0xB, s) for s in range(8)]
    assert all(set(d.ungated_calls) == {"LockAsync", "UnlockAsync"} for d in above)
    assert all(d.ungated_calls["LockAsync"] == d.ddi_calls["LockAsync"]["app"] for d in above)
    assert sum(d.overlapping_entries for d in above) > 0


# ---- errors of batched calls -------------------------------------------------------------


class _FailsSecondDraw(umd.ReferenceDevice):
    """DrawPrimitive fails with E_INVALIDARG on its second call: a batched call (MP-5)."""

    draws = 0

    @umd.ddi_entry(umd.ddi.D3DDDIARG_DRAWPRIMITIVE)
    async def pfn_draw_primitive(self, args: Any) -> int:
        self.draws += 1
        if self.draws == 2:
            return int(kmd.E_INVALIDARG)
        return await super().pfn_draw_primitive(args)


@pytest.mark.parametrize("present", [True, False])
def test_a_failed_batched_call_is_named_at_the_next_present_and_counted(present: bool) -> None:
    drv = umd.ReferenceDriver(umd.DriverConfig(driver_version=0xC),
                              device_class=_FailsSecondDraw)
    seen: list[d3d9.D3DError] = []

    async def body(dev: Any, box: Box) -> None:
        vb = await dev.create_vertex_buffer(64)
        await dev.set_stream_source(0, vb, 0, 16)
        for _ in range(3):
            await dev.draw_primitive(TRI, 0, 4)  # queued: the failure returns to nobody
        # the first Present after the worker failed the draw reports it (this one, or a later
        # one if the worker had not reached the draw yet)
        for _ in range(4 if present else 0):
            try:
                await dev.present()
            except d3d9.D3DError as e:
                seen.append(e)

    r, box = run_app(body, driver=drv)
    assert r.failure is None, r.summary()
    stats = box.devices[0].statistics()
    assert stats.batched_failures == {"DrawPrimitive → E_INVALIDARG": 1}
    if present:
        assert len(seen) == 1 and seen[0].hr == int(kmd.E_INVALIDARG)
        assert ("an earlier batched call failed: DrawPrimitive returned E_INVALIDARG "
                "(0x80070057) on dev0.worker at step ") in str(seen[0])
    else:
        assert seen == []  # no Present, nobody told: only the statistics have it


# ---- a system-memory buffer drawn from, then locked again ----------------------------------


async def _sysmem_vb_redrawn(dev: Any, box: Box) -> None:
    vb = await dev.create_vertex_buffer(256, usage=0, pool=d3d9.D3DPOOL_SYSTEMMEM)
    await dev.set_stream_source(0, vb, 0, 16)
    for i in range(4):
        v = await dev.lock(vb, 0, 0, 0)  # not NOOVERWRITE: the app overwrites everything
        v.write(0, bytes([i + 1]) * 256)
        await dev.unlock(vb)
        await dev.draw_primitive(TRI, 0, 16)
        await dev.flush()
    await dev.present()


@pytest.mark.parametrize("version", [0xB, 0xC])
@pytest.mark.parametrize("strategy", ["fifo", "pct", "random"])
def test_a_sysmem_buffer_locked_after_a_draw_takes_the_synchronous_path(strategy: str,
                                                                         version: int) -> None:
    """A NotifyOnly LockAsync on the app thread would run ahead of the draws queued before it
    and let the app overwrite the bytes they read (h7: DATA against every driver, the reference
    too): once drawn from, a system-memory lock takes the synchronous Lock (LK-10, Q-14)."""
    for seed in range(8 if strategy != "fifo" else 1):
        r, box = run_app(_sysmem_vb_redrawn, strategy=strategy, seed=seed, version=version)
        assert r.ok, r.summary()
        s = box.devices[0].statistics()
        assert s.ddi_calls["LockAsync"] == {"app": 1}  # the first lock: nothing drawn yet
        assert s.syncs["sysmem-drawn"] == 3
