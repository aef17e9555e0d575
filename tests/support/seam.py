"""A synthetic stream of seam events fed to the checker: each event is logged from its named
emulated thread ("app", or the device's worker), in order. The checker reads only events, so a
made-up stream is a fair test of it (tests/checker)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import vthreads as vt
from wddmemu._checker import Checker

WORKER = "dev0.worker"
#: (thread, event, fields): thread "app" logs on the application thread, any other on the worker
Events = list[tuple[str, str, dict[str, Any]]]


def run_events(events: Events, checker: Checker | None = None,
               then: Callable[[Checker], None] | None = None) -> list[vt.Violation]:
    """Log ``events`` in order, each from its named emulated thread ("app" or the worker);
    then, still inside the run on the app thread, call ``then(checker)`` (the end-of-run
    checks, ``Checker.final``, say)."""
    eng = vt.Engine()
    chk = checker or Checker()
    chk.attach(eng)

    async def worker(inbox: vt.Queue, acks: vt.Queue) -> None:
        while True:
            item = await inbox.get()
            if item is None:
                return
            vt.log(item[0], **item[1])
            await acks.put(True)

    async def main() -> None:
        inbox: vt.Queue = vt.Queue("inbox")
        acks: vt.Queue = vt.Queue("acks")
        w = vt.spawn(WORKER, worker, inbox, acks)
        for thread, event, fields in events:
            if thread == "app":
                vt.log(event, **fields)
            else:
                await inbox.put((event, fields))
                await acks.get()
        await inbox.put(None)
        await w.join()
        if then is not None:
            then(chk)

    r = eng.run(main, name="app")
    assert r.failure is None, r.summary()
    return list(r.violations)
