"""A loopback TCP proxy that injects network faults between a client and a target.

It knows bytes and SSE frame boundaries (a blank line: ``\\n\\n`` or ``\\r\\n\\r\\n``), never
the wire protocol above them.  One proxy sits in front of one target port on its own loopback
port; every client connection it accepts is piped to the target by its own thread.  A fault is
armed on one live connection (``arm``) or on the listener (``refuse``) and reports what it did
(bytes and frame boundaries forwarded, partial bytes, stall time, rate) in a ``NetOutcome``:

- ``reset``: RST the client side at once (``SO_LINGER`` 0, then close); the upstream is closed.
- ``cut_mid_frame``: forward the first half of the next frame (the bytes up to and including the
  next boundary), then close both sides.
- ``stall``: forward nothing for ``seconds``, then resume (``then: resume``) or close both sides.
- ``slow_reader``: forward to the client at ``bytes_per_s``, reading from the target only as fast
  as it forwards, so the target sees a slow consumer (use ``upstream_rcvbuf`` to keep the kernel
  from buffering much on the proxy's side).
- ``refuse``: the next accepted connection is reset at accept; later ones are served.

Every wait is bounded; ``close()`` always works, joins every thread and closes every socket.
Standard library only (threads + selectors): no maintained proxy library fits a fault injector
that must act on SSE frame boundaries.
"""

from __future__ import annotations

import re
import selectors
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .errors import HarnessError

NET_FAULTS = ("reset", "cut_mid_frame", "stall", "slow_reader", "refuse")
BOUNDARY = re.compile(rb"\r\n\r\n|\n\n")
CHUNK = 65536
JOIN_S = 5.0
REGISTER_S = 2.0


class ProxyError(HarnessError):
    """The proxy could not do what was asked (unknown connection, fault never applied in time)."""


@dataclass(frozen=True)
class NetFault:
    """A network fault: its kind and parameters (``seconds``/``then`` for stall, ``bytes_per_s``)."""

    kind: str
    seconds: float = 0.0
    then: str = "resume"
    bytes_per_s: int = 0

    def __post_init__(self) -> None:
        if self.kind not in NET_FAULTS:
            raise ValueError(f"unknown network fault {self.kind!r} (known: {', '.join(NET_FAULTS)})")
        if self.kind == "stall" and (self.seconds <= 0 or self.then not in ("resume", "close")):
            raise ValueError("stall needs seconds > 0 and then: resume | close")
        if self.kind == "slow_reader" and self.bytes_per_s < 1:
            raise ValueError("slow_reader needs bytes_per_s >= 1")


@dataclass
class NetOutcome:
    """What an armed fault did, filled in by the connection's thread.  ``settled`` is set last:
    when the fault acted (``acted``), or when it no longer can (the connection ended first; the
    ``note`` says why)."""

    fault: NetFault
    connection: int | None = None  # the connection index (None for refuse before it hit one)
    armed_at: float = 0.0
    settled: threading.Event = field(default_factory=threading.Event, repr=False)
    acted: bool = False
    detail: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {"kind": self.fault.kind, "connection": self.connection, "applied": self.acted, **self.detail}

    def give_up(self, note: str) -> None:
        if not self.settled.is_set():
            self.detail.setdefault("note", note)
            self.settled.set()


@dataclass
class ConnStats:
    """A snapshot of one connection's counters."""

    index: int
    client_port: int
    bytes_up: int
    bytes_down: int
    boundaries_down: int
    open: bool


class _Conn:
    """One client connection and its upstream, pumped by one thread."""

    def __init__(self, index: int, client: socket.socket, upstream: socket.socket) -> None:
        self.index = index
        self.client = client
        self.upstream = upstream
        self.client_port = client.getpeername()[1]
        self.lock = threading.Lock()
        self.wake_r, self.wake_w = socket.socketpair()
        self.bytes_up = 0
        self.bytes_down = 0
        self.boundaries = 0
        self.carry = b""  # the last bytes forwarded, to find a boundary split across reads
        self.outcome: NetOutcome | None = None
        self.state: dict[str, Any] = {}
        self.closing = False
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"netproxy-conn-{index}", daemon=True)

    # -- control (any thread) -------------------------------------------------------
    def arm(self, outcome: NetOutcome) -> None:
        with self.lock:
            if self.closed.is_set():
                raise ProxyError(f"connection #{self.index} is already closed: cannot arm {outcome.fault.kind}")
            if self.outcome is not None and not self.outcome.settled.is_set():
                raise ProxyError(f"connection #{self.index} already has {self.outcome.fault.kind} armed")
            self.outcome = outcome
            self.state = {"t0": time.monotonic(), "bytes0": self.bytes_down, "pending": b"", "tokens": 0.0}
        self._wake()

    def stop(self) -> None:
        with self.lock:
            self.closing = True
        self._wake()

    def stats(self) -> ConnStats:
        with self.lock:
            return ConnStats(self.index, self.client_port, self.bytes_up, self.bytes_down, self.boundaries,
                             not self.closed.is_set())

    def _wake(self) -> None:
        try:
            self.wake_w.send(b"x")
        except OSError:
            pass

    # -- the pump (its own thread) ------------------------------------------------------
    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        try:
            sel.register(self.client, selectors.EVENT_READ, "client")
            sel.register(self.upstream, selectors.EVENT_READ, "up")
            sel.register(self.wake_r, selectors.EVENT_READ, "wake")
            self._loop(sel)
        except OSError:
            pass
        finally:
            sel.close()
            self._finish()

    def _loop(self, sel: selectors.BaseSelector) -> None:
        up_registered = True
        while True:
            with self.lock:
                if self.closing:
                    return
                outcome = self.outcome if self.outcome and not self.outcome.settled.is_set() else None
            kind = outcome.fault.kind if outcome else None
            read_up, timeout = True, None
            if kind == "reset":
                self._reset(outcome)
                return
            if kind == "stall":
                left = self.state["t0"] + outcome.fault.seconds - time.monotonic()
                if left > 0:
                    read_up, timeout = False, left
                elif self._end_stall(outcome):
                    return
            elif kind == "slow_reader":
                read_up, timeout = self._refill(outcome)
            if read_up != up_registered:
                if read_up:
                    sel.register(self.upstream, selectors.EVENT_READ, "up")
                else:
                    sel.unregister(self.upstream)
                up_registered = read_up
            events = sel.select(timeout)
            if any(key.data == "wake" for key, _ in events):
                self.wake_r.recv(CHUNK)
                continue  # armed or closing: look at the state again before moving a byte
            for key, _ in events:
                if key.data == "client":
                    data = self.client.recv(CHUNK)
                    if not data:
                        return
                    self.upstream.sendall(data)
                    with self.lock:
                        self.bytes_up += len(data)
                elif key.data == "up":
                    limit = CHUNK if kind != "slow_reader" else max(1, int(self.state["tokens"]))
                    data = self.upstream.recv(limit)
                    if not data:
                        self._upstream_ended(outcome)
                        return
                    if self._down(data, outcome):
                        return

    def _down(self, data: bytes, outcome: NetOutcome | None) -> bool:
        """Forward ``data`` to the client (or cut it); True when the connection is done."""
        kind = outcome.fault.kind if outcome else None
        if kind == "cut_mid_frame":
            assert outcome is not None
            pending = self.state["pending"] + data
            hit = next((m for m in BOUNDARY.finditer(self.carry + pending) if m.end() > len(self.carry)), None)
            if hit is None:
                self.state["pending"] = pending
                return False
            frame = pending[: hit.end() - len(self.carry)]
            half = frame[: max(1, len(frame) // 2)]
            self._send_client(half, count=False)
            outcome.detail.update(frame_bytes=len(frame), partial_bytes=len(half),
                                  partial=half.decode("utf-8", "replace")[-300:],
                                  dropped_bytes=len(pending) - len(half))
            self._applied(outcome)
            self._close_client(rst=False)
            return True
        self._send_client(data)
        if kind == "slow_reader":
            self.state["tokens"] -= len(data)
        return False

    def _send_client(self, data: bytes, count: bool = True) -> None:
        with self.lock:  # counted first: a client that has the bytes sees them in the stats
            self.bytes_down += len(data)
            if count:
                buf = self.carry + data
                self.boundaries += sum(1 for m in BOUNDARY.finditer(buf) if m.end() > len(self.carry))
                self.carry = buf[-3:]
        self.client.sendall(data)

    def _refill(self, outcome: NetOutcome) -> tuple[bool, float | None]:
        """Token bucket of the slow reader: (may read upstream now, how long to wait if not)."""
        rate = outcome.fault.bytes_per_s
        now = time.monotonic()
        last = self.state.get("last", self.state["t0"])
        step = max(1.0, rate / 20)  # forward in pieces of about 50 ms worth of bytes
        self.state["tokens"] = min(self.state["tokens"] + (now - last) * rate, max(step, rate / 4))
        self.state["last"] = now
        if not outcome.detail:
            outcome.detail.update(bytes_per_s=rate)
            self._applied(outcome, keep_armed=True)
        sent = self.bytes_down - self.state["bytes0"]
        outcome.detail.update(throttled_bytes=sent, throttled_s=round(now - self.state["t0"], 3))
        if self.state["tokens"] >= step:
            return True, None
        return False, (step - self.state["tokens"]) / rate

    def _end_stall(self, outcome: NetOutcome) -> bool:
        fault = outcome.fault
        outcome.detail.update(stalled_s=round(time.monotonic() - self.state["t0"], 3), then=fault.then,
                              bytes_before=self.state["bytes0"])
        self._applied(outcome)
        if fault.then == "close":
            self._close_client(rst=False)
            return True
        return False

    def _reset(self, outcome: NetOutcome) -> None:
        with self.lock:
            outcome.detail.update(bytes_before=self.bytes_down, boundaries_before=self.boundaries)
        self._close_client(rst=True)
        self._applied(outcome)

    def _upstream_ended(self, outcome: NetOutcome | None) -> None:
        """The target closed: pass the end on (an armed cut that saw no boundary forwards what it held)."""
        if outcome is not None and outcome.fault.kind == "cut_mid_frame" and self.state.get("pending"):
            self._send_client(self.state["pending"])
        if outcome is not None and outcome.fault.kind == "slow_reader":
            self._applied(outcome)
        elif outcome is not None:
            outcome.give_up(f"the target closed the connection before the {outcome.fault.kind} could act")
        self._close_client(rst=False)

    def _applied(self, outcome: NetOutcome, keep_armed: bool = False) -> None:
        outcome.detail.setdefault("at_s", round(time.monotonic() - self.state.get("t0", time.monotonic()), 3))
        outcome.acted = True
        if not keep_armed:
            outcome.settled.set()

    def _close_client(self, rst: bool) -> None:
        try:
            if rst:
                self.client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                self.client.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.client.close()

    def _finish(self) -> None:
        outcome = self.outcome
        if outcome is not None and outcome.fault.kind == "slow_reader" and outcome.acted:
            outcome.settled.set()
        elif outcome is not None:
            outcome.give_up(f"the connection ended before the {outcome.fault.kind} could act")
        for sock in (self.client, self.upstream, self.wake_r, self.wake_w):
            try:
                sock.close()
            except OSError:
                pass
        self.closed.set()


class FaultProxy:
    """A TCP proxy on ``127.0.0.1:<port>`` in front of ``127.0.0.1:<upstream_port>``.

    ``start()`` binds and starts accepting; ``arm(fault, client_port)`` arms a fault on the
    connection whose client uses that local port (``refuse``: on the listener);
    ``wait_applied`` waits (bounded) for it to act; ``close()`` ends everything."""

    def __init__(self, upstream_port: int, *, host: str = "127.0.0.1", upstream_rcvbuf: int | None = None,
                 connect_timeout_s: float = 5.0) -> None:
        self.upstream = (host, upstream_port)
        self.host = host
        self.upstream_rcvbuf = upstream_rcvbuf
        self.connect_timeout_s = connect_timeout_s
        self.port = 0
        self._lock = threading.Lock()
        self._registered = threading.Condition(self._lock)
        self._conns: list[_Conn] = []
        self._refuse: list[NetOutcome] = []
        self._accepted = 0
        self._refused = 0
        self._closed = False
        self._listener: socket.socket | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> FaultProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.bind((self.host, 0))
            listener.listen(64)
        except OSError as exc:
            listener.close()
            raise ProxyError(f"the fault proxy could not listen on {self.host}: {exc}") from None
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, name=f"netproxy-{self.port}", daemon=True)
        self._thread.start()
        return self

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- faults ----------------------------------------------------------------------
    def arm(self, fault: NetFault, client_port: int | None = None) -> NetOutcome:
        """Arm ``fault`` on the connection from ``client_port`` (``refuse``: on the next accept)."""
        outcome = NetOutcome(fault, armed_at=time.monotonic())
        if fault.kind == "refuse":
            with self._lock:
                self._refuse.append(outcome)
            return outcome
        conn = self._find(client_port)
        outcome.connection = conn.index
        conn.arm(outcome)
        return outcome

    def wait_applied(self, outcome: NetOutcome, timeout_s: float) -> dict[str, Any]:
        """Wait until the fault acted, or can no longer act (its connection ended first); its
        summary (``applied``: whether it acted).  Raises ProxyError naming what was awaited."""
        if not outcome.settled.wait(timeout_s):
            raise ProxyError(
                f"timed out after {timeout_s:.1f}s waiting for the {outcome.fault.kind} fault to act on "
                f"connection #{outcome.connection}; last seen: {self.describe()}")
        return outcome.summary()

    def connections(self) -> list[ConnStats]:
        with self._lock:
            conns = list(self._conns)
        return [c.stats() for c in conns]

    def describe(self) -> str:
        conns = self.connections()
        text = "; ".join(f"#{c.index} port={c.client_port} up={c.bytes_up} down={c.bytes_down} "
                         f"boundaries={c.boundaries_down} {'open' if c.open else 'closed'}" for c in conns)
        return f"{self._accepted} accepted, {self._refused} refused; {text or 'no connection'}"

    def _find(self, client_port: int | None) -> _Conn:
        def mine() -> list[_Conn]:
            return [c for c in self._conns if client_port is None or c.client_port == client_port]

        with self._registered:  # a client may be connected before its accept is through: wait (bounded)
            conns = self._registered.wait_for(mine, timeout=REGISTER_S)
        if not conns:
            raise ProxyError(f"no proxied connection from client port {client_port}; seen: {self.describe()}")
        return conns[-1]

    # -- accepting ---------------------------------------------------------------------
    def _accept_loop(self) -> None:
        assert self._listener is not None
        sel = selectors.DefaultSelector()
        sel.register(self._listener, selectors.EVENT_READ, "accept")
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        try:
            while not self._closed:
                for key, _ in sel.select():
                    if key.data == "wake":
                        return
                    try:
                        client, _ = self._listener.accept()
                    except OSError:
                        continue
                    self._serve(client)
        finally:
            sel.close()

    def _serve(self, client: socket.socket) -> None:
        with self._lock:
            refuse = self._refuse.pop(0) if self._refuse else None
            self._accepted += 1
        if refuse is not None:
            refuse.detail.update(refused_connections=1, accepted_before=self._accepted - 1)
            with self._lock:
                self._refused += 1
            _rst(client)
            refuse.acted = True
            refuse.settled.set()
            return
        upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if self.upstream_rcvbuf:
                upstream.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.upstream_rcvbuf)
            upstream.settimeout(self.connect_timeout_s)
            upstream.connect(self.upstream)
            upstream.settimeout(None)
            conn = _Conn(len(self._conns), client, upstream)
        except OSError:  # the target is down (between a kill and its restart): the client sees a reset
            upstream.close()
            _rst(client)
            return
        with self._lock:
            if self._closed:
                conn.stop()
            self._conns.append(conn)
            self._registered.notify_all()
        conn.thread.start()

    # -- teardown ----------------------------------------------------------------------
    def close(self) -> None:
        """Stop accepting, end every connection, join every thread, close every socket. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if self._thread is not None:
            self._thread.join(JOIN_S)  # no connection is added after the accept thread ended
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            conn.stop()
        for conn in conns:
            conn.thread.join(JOIN_S)
        for sock in (self._listener, self._wake_r, self._wake_w):
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass
        for outcome in self._refuse:
            outcome.detail.setdefault("refused_connections", 0)
            outcome.give_up("the proxy closed before another connection came")

    def threads_alive(self) -> list[str]:
        """Names of this proxy's threads still running (none after ``close()``)."""
        threads = ([self._thread] if self._thread else []) + [c.thread for c in self._conns]
        return [t.name for t in threads if t.is_alive()]


def _rst(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()
