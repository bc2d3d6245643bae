"""The kit's own SSE reading under network faults (issue 14): a frame cut in half is never an
event, and a stream that stalls past the read deadline ends with a timeout that names what was
awaited and the last frame seen.  A bare socket server plays the target behind the fault proxy."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from conformance.drivers.base import Recorder, StreamControl, Transport
from harness.netproxy import FaultProxy, NetFault

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
FRAMES = [f'event: e\ndata: {{"sequence_number": {n}, "text": "{"x" * 40}"}}\n\n'.encode() for n in range(4)]


class SSEServer:
    """Answers one request with HEAD and the first two frames, then the rest when ``go`` is set."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.go = threading.Event()
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        self.conns.append(conn)
        try:
            conn.recv(65536)
            conn.sendall(HEAD + FRAMES[0] + FRAMES[1])
            if self.go.wait(10):
                conn.sendall(FRAMES[2] + FRAMES[3])
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        self.go.set()
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(5)
        for conn in self.conns:
            conn.close()


@pytest.fixture
def server() -> Iterator[SSEServer]:
    s = SSEServer()
    yield s
    s.close()


def read_in_thread(transport: Transport, control: StreamControl) -> tuple[threading.Thread, list]:
    out: list = []
    thread = threading.Thread(target=lambda: out.append(transport.call("live", "GET", "/s", control=control)), daemon=True)
    thread.start()
    return thread, out


def test_a_frame_cut_in_half_is_not_an_event(server: SSEServer) -> None:
    with FaultProxy(server.port) as proxy:
        rec = Recorder(lambda: 0.0, lambda: 0)
        transport = Transport(proxy.url, rec, timeout_s=10)
        control = StreamControl()
        thread, out = read_in_thread(transport, control)
        assert rec.wait_until(lambda: rec.calls and len(rec.calls[0].frames) == 2, 10), "two whole frames first"
        outcome = proxy.arm(NetFault("cut_mid_frame"), control.local_port())
        server.go.set()
        detail = proxy.wait_applied(outcome, 10)
        thread.join(10)
        [call] = out
        assert detail["partial_bytes"] == len(FRAMES[2]) // 2
        assert [f.seq for f in call.frames] == [0, 1]  # the half of frame 2 is not an event
        assert call.ended == "complete" and call.error is None  # the server's close ends the stream
        transport.close()


def test_a_stall_past_the_read_deadline_names_what_was_awaited(server: SSEServer) -> None:
    with FaultProxy(server.port) as proxy:
        rec = Recorder(lambda: 0.0, lambda: 0)
        transport = Transport(proxy.url, rec, timeout_s=0.5)
        control = StreamControl()
        thread, out = read_in_thread(transport, control)
        assert rec.wait_until(lambda: rec.calls and len(rec.calls[0].frames) == 2, 10)
        proxy.arm(NetFault("stall", seconds=5, then="resume"), control.local_port())
        server.go.set()
        thread.join(10)
        [call] = out
        assert call.ended == "broken" and len(call.frames) == 2
        assert call.error.startswith(f"ReadTimeout: timed out after 0.5s waiting for the next SSE frame of GET {proxy.url}/s; "
                                     "last seen: status 200, 2 frame(s), last frame: 'event: e")
        assert '"sequence_number": 1' in call.error
        transport.close()
