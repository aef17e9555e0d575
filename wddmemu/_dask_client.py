"""A ``distributed.Client`` on a remote scheduler, opened within one deadline (``--cluster
tcp://…``; docs/cluster.md, "5 s connect timeout").

``distributed.Client(address, timeout=T)`` bounds only the TCP connect. The handshake read that
follows has no deadline, so a server that accepts the connection and never answers held the
command until the peer hung up (121 s for a timeout of 2 s), or for ever.

So the client is made *asynchronous*, on an event loop of our own in a thread of our own, and
its whole start (connect, handshake, the scheduler's identity, the client's registration) is
awaited under ``asyncio.wait_for``. Why not ``Client(...)`` in a thread joined with a timeout:
a construction that times out there goes on running, and its thread, dask's loop thread and
the socket stay behind with nothing to close them by (the object is not returned yet). Here
the timeout cancels the start inside the loop, the client is closed there, and the loop and
its thread end: nothing is left behind. A client made asynchronous on a loop that runs in
another thread is used synchronously from every other thread (dask decides per call, by
``distributed.utils.in_async_call``), which is how ``_cluster`` uses it. The loop is not a
``distributed.utils.LoopRunner``'s, so the client's own runner neither owns nor stops it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

#: the share of the deadline dask's own connect (with its retries) may take
CONNECT_SHARE = 0.8
#: seconds a client's close may take before its loop is stopped anyway
CLOSE_S = 5.0


class LoopThread:
    """An asyncio event loop running in a daemon thread until :meth:`stop`."""

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="wddmemu-dask-client",
                                        daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._loop is None:
            raise RuntimeError("the event loop for the dask client did not start")

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        finally:
            self._ready.set()  # never leave __init__ waiting

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._ready.set()
        await self._stopping.wait()

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float) -> Any:
        """Run ``coro`` on the loop and wait at most ``timeout`` s for its result (a Ctrl-C or
        a timeout here cancels it)."""
        assert self._loop is not None
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result(timeout)
        except BaseException:
            fut.cancel()
            raise

    def stop(self) -> None:
        """End the loop (``asyncio.run`` cancels what still runs on it) and its thread."""
        assert self._loop is not None and self._stopping is not None
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(CLOSE_S)


async def _open(dist: Any, where: str, timeout: float) -> Any:
    """The started asynchronous client, or what its start raised (the client closed)."""
    # dask's own connect gives up a little earlier, so that a refused connection is said as
    # such (its OSError), and only a peer that accepts and stays silent meets our deadline
    client = dist.Client(where, asynchronous=True, timeout=timeout * CONNECT_SHARE)

    async def started() -> Any:
        return await client

    try:
        await asyncio.wait_for(started(), timeout)
    except BaseException:
        await asyncio.wait_for(_close(client), CLOSE_S)
        raise
    return client


async def _close(client: Any) -> None:
    await client.close()


@contextmanager
def remote_client(dist: Any, where: str, timeout: float) -> Iterator[Any]:
    """A client on the scheduler at ``where``, started within ``timeout`` seconds (else
    ``TimeoutError``; what the start raised otherwise, e.g. ``OSError``), closed on exit."""
    loop = LoopThread()
    try:
        # the deadline is _open's own; this one only guards against a close that hangs
        client = loop.call(_open(dist, where, timeout), timeout + 2 * CLOSE_S)
    except BaseException:
        loop.stop()
        raise
    try:
        with client:  # __exit__ closes it from this thread, synchronously, on our loop
            yield client
    finally:
        loop.stop()
