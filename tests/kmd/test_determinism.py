"""The kernel is deterministic: the same program, strategy and seed give the same decisions and
a byte-identical trace on asyncio and trio (only the ``backend`` field differs)."""

from __future__ import annotations

import io

import pytest

import vthreads as vt
from kmd import D3DDDICB_LOCKFLAGS as LF
from kmd import CmdDraw, CmdSpin, CmdWrite, KernelConfig
from tests.support.kernel import OK, Rig


async def scenario() -> list[tuple[int, tuple[int, ...], str]]:
    rig = await Rig(KernelConfig(tdr_timeout_ns=50_000_000, max_rename_instances=3)).setup()
    vb = await rig.alloc(segments="aperture")
    tex = await rig.alloc(segments="local")

    async def app() -> None:
        for i in range(6):
            st, lk = await rig.lock(vb, LF.LockEntire | LF.Discard)
            if st == OK:
                lk.data.write(0, bytes([i]) * 4)
                await rig.unlock(lk.allocation)
            await rig.lock(tex, LF.LockEntire | LF.DonotWait)
            await vt.checkpoint("app.between")

    async def worker() -> None:
        for i in range(6):
            cmds = [CmdDraw(i, 0, 0, 4), CmdWrite(1, 0, b"w"), CmdSpin(1_000_000)]
            if i == 4:
                cmds.append(CmdSpin(100_000_000))  # → TDR
            st, _ = await rig.render(cmds, [vb, tex], writes=[False, True])
            if st != OK:
                break

    a = vt.spawn("app", app)
    w = vt.spawn("worker", worker)
    await a.join()
    await w.join()
    await rig.k.wait_idle()
    return [(r.fence, r.draw_ids, r.status) for r in rig.k.dma_records]


def _trace(backend: str, seed: int) -> tuple[vt.RunResult, bytes]:
    buf = io.BytesIO()
    r = vt.Engine("random", seed=seed, backend=backend, trace=buf).run(scenario)
    assert r.failure is None, r.summary()
    return r, buf.getvalue()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_byte_identical_traces_across_backends(seed: int) -> None:
    ra, ta = _trace("asyncio", seed)
    rt_, tt = _trace("trio", seed)
    assert ra.decisions == rt_.decisions
    assert ra.value == rt_.value
    assert ta.replace(b'"backend":"asyncio"', b'"backend":"trio"') == tt
    assert b'"event":"kmd.tdr"' in ta
    ra2, ta2 = _trace("asyncio", seed)
    assert ta2 == ta and ra2.decisions == ra.decisions


def test_replay_reproduces_the_run() -> None:
    r, t = _trace("asyncio", 5)
    buf = io.BytesIO()
    rep = vt.Engine("replay", decisions=r.decisions, trace=buf).run(scenario)
    assert rep.failure is None and rep.value == r.value
    kmd_lines = [line for line in t.splitlines() if b'"event":"kmd.' in line]
    replayed = [line for line in buf.getvalue().splitlines() if b'"event":"kmd.' in line]
    strip = b'"strategy":"random"', b'"strategy":"replay"'
    assert [x.replace(*strip) for x in kmd_lines] == [
        x.replace(b',"seed":0', b',"seed":5') for x in replayed
    ]
