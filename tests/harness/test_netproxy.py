"""The fault proxy at the byte level: each fault kind does what it says, and nothing leaks.

The upstream here is a bare socket server the test writes to directly, so every byte the client
gets is known (no HTTP, no framework)."""

from __future__ import annotations

import os
import queue
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from harness.netproxy import FaultProxy, NetFault, ProxyError

FRAME_A = b"event: a\ndata: {\"n\": 1, \"text\": \"0123456789abcdef\"}\n\n"
FRAME_B = b"event: b\r\ndata: {\"n\": 2}\r\n\r\n"


class Upstream:
    """A loopback listener; ``next()`` hands over the server side of the next connection."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted: queue.Queue[socket.socket] = queue.Queue()
        self.all: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.all.append(conn)
            self.accepted.put(conn)

    def next(self) -> socket.socket:
        return self.accepted.get(timeout=5)

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() (close alone does not)
        self.sock.close()
        for conn in self.all:
            conn.close()
        self.thread.join(5)


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    up = Upstream()
    yield up
    up.close()


@pytest.fixture
def proxy(upstream: Upstream) -> Iterator[FaultProxy]:
    p = FaultProxy(upstream.port).start()
    yield p
    p.close()
    assert p.threads_alive() == []


def connect(proxy: FaultProxy, upstream: Upstream) -> tuple[socket.socket, socket.socket]:
    client = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    return client, upstream.next()


def read_exactly(sock: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        assert chunk, f"EOF after {len(out)} of {n} bytes: {out!r}"
        out += chunk
    return out


def read_to_eof(sock: socket.socket) -> bytes:
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out


def test_bytes_pass_both_ways_and_boundaries_are_counted(proxy: FaultProxy, upstream: Upstream) -> None:
    client, server = connect(proxy, upstream)
    client.sendall(b"GET / HTTP/1.1\r\n\r\n")
    assert read_exactly(server, 18) == b"GET / HTTP/1.1\r\n\r\n"
    for piece in (FRAME_A[:10], FRAME_A[10:-1], FRAME_A[-1:], FRAME_B):  # boundaries split across reads
        server.sendall(piece)
    assert read_exactly(client, len(FRAME_A + FRAME_B)) == FRAME_A + FRAME_B
    [stats] = proxy.connections()
    assert (stats.bytes_up, stats.bytes_down, stats.boundaries_down) == (18, len(FRAME_A + FRAME_B), 2)
    server.close()
    assert read_to_eof(client) == b""  # the target's close reaches the client
    client.close()


def test_reset_gives_the_client_econnreset_and_closes_the_upstream(proxy: FaultProxy, upstream: Upstream) -> None:
    client, server = connect(proxy, upstream)
    server.sendall(FRAME_A)
    assert read_exactly(client, len(FRAME_A)) == FRAME_A
    outcome = proxy.arm(NetFault("reset"), client.getsockname()[1])
    detail = proxy.wait_applied(outcome, 5)
    assert detail["applied"] is True
    assert detail["bytes_before"] == len(FRAME_A) and detail["boundaries_before"] == 1
    with pytest.raises(ConnectionResetError):
        client.recv(100)
    server.settimeout(5)
    assert server.recv(100) == b""  # the target sees the client go
    client.close()


def test_cut_mid_frame_delivers_exactly_the_first_half_of_the_next_frame(proxy: FaultProxy, upstream: Upstream) -> None:
    client, server = connect(proxy, upstream)
    server.sendall(FRAME_B)
    assert read_exactly(client, len(FRAME_B)) == FRAME_B
    outcome = proxy.arm(NetFault("cut_mid_frame"), client.getsockname()[1])
    server.sendall(FRAME_A[:7])  # the next frame arrives in pieces, with the one after it
    server.sendall(FRAME_A[7:] + FRAME_B)
    detail = proxy.wait_applied(outcome, 5)
    half = FRAME_A[: len(FRAME_A) // 2]
    assert read_to_eof(client) == half
    assert detail["frame_bytes"] == len(FRAME_A) and detail["partial_bytes"] == len(half)
    assert detail["partial"] == half.decode()
    client.close()


def test_stall_forwards_nothing_for_its_time_then_the_rest(proxy: FaultProxy, upstream: Upstream) -> None:
    client, server = connect(proxy, upstream)
    outcome = proxy.arm(NetFault("stall", seconds=0.6, then="resume"), client.getsockname()[1])
    t0 = time.monotonic()
    server.sendall(FRAME_A)
    client.settimeout(0.3)
    with pytest.raises(socket.timeout):
        client.recv(100)  # nothing during the stall
    client.settimeout(5)
    got = read_exactly(client, len(FRAME_A))
    waited = time.monotonic() - t0
    assert got == FRAME_A and waited >= 0.55, waited
    detail = proxy.wait_applied(outcome, 5)
    assert detail["stalled_s"] >= 0.6 and detail["then"] == "resume"
    server.sendall(FRAME_B)  # and the connection goes on
    assert read_exactly(client, len(FRAME_B)) == FRAME_B
    client.close()


def test_stall_then_close_ends_the_connection_without_a_byte(proxy: FaultProxy, upstream: Upstream) -> None:
    client, server = connect(proxy, upstream)
    outcome = proxy.arm(NetFault("stall", seconds=0.3, then="close"), client.getsockname()[1])
    server.sendall(FRAME_A)
    t0 = time.monotonic()
    assert read_to_eof(client) == b""
    assert time.monotonic() - t0 >= 0.25
    assert proxy.wait_applied(outcome, 5)["then"] == "close"
    client.close()


def test_slow_reader_delivers_at_its_rate_and_the_target_feels_it(upstream: Upstream) -> None:
    rate, total = 40_000, 60_000  # far more than the kernel buffers between the target and the proxy
    with FaultProxy(upstream.port, upstream_rcvbuf=4096) as proxy:
        client, server = connect(proxy, upstream)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        outcome = proxy.arm(NetFault("slow_reader", bytes_per_s=rate), client.getsockname()[1])
        t0 = time.monotonic()
        written = threading.Event()
        sender = threading.Thread(target=lambda: (server.sendall(b"x" * total), written.set()), daemon=True)
        sender.start()
        halfway = read_exactly(client, total // 2)
        # at half the bytes delivered, the target could not have written everything: it is blocked
        assert len(halfway) == total // 2 and not written.is_set()
        read_exactly(client, total - total // 2)
        elapsed = time.monotonic() - t0
        assert 0.7 * total / rate <= elapsed <= 3 * total / rate, elapsed
        sender.join(5)
        server.close()
        assert read_to_eof(client) == b""
        detail = proxy.wait_applied(outcome, 5)
        assert detail["bytes_per_s"] == rate and detail["throttled_bytes"] == total
        client.close()


def test_refuse_refuses_exactly_the_next_connection(proxy: FaultProxy, upstream: Upstream) -> None:
    outcome = proxy.arm(NetFault("refuse"))
    try:  # the reset may reach the client while it is still completing its connect
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as first:
            assert first.recv(10) == b""
    except ConnectionResetError:
        pass
    assert proxy.wait_applied(outcome, 5)["refused_connections"] == 1
    assert upstream.accepted.empty()  # the refused connection never reached the target
    second, server = connect(proxy, upstream)
    server.sendall(FRAME_B)
    assert read_exactly(second, len(FRAME_B)) == FRAME_B
    second.close()


def test_arming_an_unknown_connection_names_what_was_seen(proxy: FaultProxy) -> None:
    with pytest.raises(ProxyError, match="no proxied connection from client port 1; seen: 0 accepted"):
        proxy.arm(NetFault("reset"), 1)
    with pytest.raises(ValueError, match="unknown network fault 'drop'"):
        NetFault("drop")


def test_a_fault_that_never_acts_times_out_with_what_was_awaited(proxy: FaultProxy, upstream: Upstream) -> None:
    client, server = connect(proxy, upstream)
    outcome = proxy.arm(NetFault("cut_mid_frame"), client.getsockname()[1])
    with pytest.raises(ProxyError, match=r"waiting for the cut_mid_frame fault to act on connection #0; last seen: 1 accepted"):
        proxy.wait_applied(outcome, 0.2)
    client.close()


def test_a_fault_whose_connection_ends_first_settles_at_once_as_not_applied(proxy: FaultProxy, upstream: Upstream) -> None:
    client, server = connect(proxy, upstream)
    outcome = proxy.arm(NetFault("cut_mid_frame"), client.getsockname()[1])
    server.sendall(FRAME_A[:10])  # no whole frame before the target closes
    server.close()
    detail = proxy.wait_applied(outcome, 5)
    assert detail["applied"] is False and "closed the connection before the cut_mid_frame could act" in detail["note"]
    assert read_to_eof(client) == FRAME_A[:10]  # what the target sent is passed on, not cut
    client.close()


def test_close_leaves_no_thread_or_socket_behind(upstream: Upstream) -> None:
    before_fds, before_threads = fd_count(), threading.active_count()
    proxy = FaultProxy(upstream.port).start()
    pairs = [connect(proxy, upstream) for _ in range(3)]
    proxy.arm(NetFault("stall", seconds=30, then="resume"), pairs[0][0].getsockname()[1])  # a stalled one too
    proxy.close()
    proxy.close()  # idempotent
    assert proxy.threads_alive() == []
    for client, server in pairs:
        assert read_to_eof(client) == b""
        client.close()
        server.close()
    assert threading.active_count() == before_threads
    assert fd_count() == before_fds
