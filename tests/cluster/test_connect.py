"""``--cluster`` at an address that is no (usable) Dask scheduler: one line, exit 2, within the
connect timeout, with nothing left behind (docs/cluster.md, "explore --cluster").

Each peer here is a socket server in a thread of the test: one that answers HTTP (its reply
read as a dask frame length was a MemoryError, exit 3), one that accepts and stays silent (the
handshake had no deadline: 121 s for a timeout of 2 s), and the schemes dask cannot use without
more set-up (``tls`` without its configuration, ``ucx``: a TypeError, exit 3)."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator

import distributed
import pytest

from wddmemu import _cli
from wddmemu._cluster import ClusterError, connect, explore_on_cluster, parse_address
from wddmemu._explore import ExploreOptions, explore
from wddmemu._runner import RunSpec

HTTP_REPLY = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
#: how long the silent peer keeps a connection open: longer than any deadline used here, so a
#: connect without a deadline on its handshake ends on the peer's hang-up, not on its own
SILENT_S = 3.0


class Peer:
    """A TCP server on 127.0.0.1 that answers each connection ``how``: ``"http"`` (an error
    page, then close) or ``"silent"`` (read, say nothing; close after :data:`SILENT_S` or when
    the test ends). ``hung_up`` is set once a silent connection saw the client close it."""

    def __init__(self, how: str) -> None:
        self.how = how
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.address = f"tcp://127.0.0.1:{self.sock.getsockname()[1]}"
        self.hung_up = threading.Event()
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed by stop()
                return
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            if self.how == "http":
                conn.sendall(HTTP_REPLY)
                return
            conn.settimeout(SILENT_S)
            try:
                while conn.recv(1 << 16):  # the client's handshake, then its hang-up (b"")
                    pass
                self.hung_up.set()
            except OSError:  # SILENT_S passed: the client kept the socket open
                pass

    def stop(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept (a close alone does not)
        self.sock.close()
        for t in self.threads:
            t.join(SILENT_S + 1)


@pytest.fixture
def peer(request) -> Iterator[Peer]:
    p = Peer(request.param)
    yield p
    p.stop()


def _client_threads() -> list[threading.Thread]:
    """The threads of the remote clients' event loops (``_dask_client.LoopThread``)."""
    return [t for t in threading.enumerate() if t.name == "wddmemu-dask-client"]


def _cli_line(address: str, capsys) -> tuple[int, str]:
    code = _cli.main(["explore", "lock-flags", "--schedules", "2", "--cluster", address])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("peer", ["http"], indirect=True)
def test_a_server_that_is_no_dask_scheduler_is_one_line_exit_2(peer: Peer, capsys) -> None:
    code, err = _cli_line(peer.address, capsys)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"wddmemu: error: {peer.address} answered, but not as a dask "
                          "scheduler (")


@pytest.mark.parametrize("peer", ["silent"], indirect=True)
def test_a_silent_server_meets_the_deadline_and_nothing_is_left_behind(peer: Peer) -> None:
    with pytest.raises(ClusterError, match=r"within 0\.5 s \(no answer\)"), \
            connect(peer.address, timeout=0.5):
        pass
    assert peer.hung_up.wait(SILENT_S), "the client's socket was left open"
    assert not _client_threads()  # the client's loop ended with it


@pytest.mark.parametrize("address, msg", [
    ("tls://127.0.0.1:1", "tls needs the dask TLS configuration (distributed.comm.tls."),
    ("ucx://127.0.0.1:1", "unsupported scheme 'ucx': give tcp://host:port, tls://host:port"),
    ("inproc://x", "unsupported scheme 'inproc'"),
    ("tcp://::1:80", "ipv6 needs brackets"),
])
def test_schemes_and_addresses_dask_cannot_use_are_one_line_exit_2(address: str, msg: str,
                                                                   capsys) -> None:
    code, err = _cli_line(address, capsys)
    assert code == 2 and err.count("\n") == 1 and msg in err, err


def test_parse_address_takes_tcp_and_tls_only() -> None:
    assert parse_address("tls://h:8786") == ("tls://h:8786", None)
    with pytest.raises(ClusterError, match="unsupported scheme 'ws'"):
        parse_address("ws://h:8786")


def test_a_real_scheduler_over_tcp_gives_the_one_job_answer() -> None:
    spec = RunSpec("dynamic-vb-ring", driver="noexistingref-with-queued-refs")
    opts = ExploreOptions(schedules=4, strategy="pct", chunk=2, max_replays=10)
    with distributed.LocalCluster(n_workers=1, processes=False, threads_per_worker=1,
                                  protocol="tcp://", host="127.0.0.1", dashboard_address=None,
                                  silence_logs=logging.ERROR) as lc:
        with connect(lc.scheduler_address, timeout=5) as client:
            assert client.nthreads() and _client_threads()
            got = explore_on_cluster(client, spec, opts)
        assert not _client_threads()
    one = explore(spec, opts)
    assert got.runs == one.runs
    assert [(f.index, f.finding) for f in got.failures] == \
        [(f.index, f.finding) for f in one.failures]
