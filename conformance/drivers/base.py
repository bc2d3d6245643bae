"""A recording HTTP transport: every exchange becomes an HttpCall in the cell's History.

Drivers know a wire protocol, not processes: they are given a base URL, a clock and a way
to ask which incarnation is current, and they record what they send and receive.  Streaming
calls append frames to their HttpCall as they arrive and notify waiters, so the executor can
trigger a fault on an observed frame instead of a sleep.
"""

from __future__ import annotations

import functools
import json
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any

import httpx

from conformance.history import HttpCall, SSEFrame

from .sse import FrameParser, iter_lines

MAX_BODY_TEXT = 64 * 1024


class Recorder:
    """Collects HttpCalls in order and wakes waiters whenever a call or frame changes."""

    def __init__(self, clock: Callable[[], float], incarnation: Callable[[], int]) -> None:
        self.calls: list[HttpCall] = []
        self.clock = clock
        self.incarnation = incarnation
        self.changed = threading.Condition()

    def add(self, call: HttpCall) -> None:
        with self.changed:
            self.calls.append(call)
            self.changed.notify_all()

    def touch(self) -> None:
        with self.changed:
            self.changed.notify_all()

    def wait_until(self, predicate: Callable[[], Any], timeout_s: float) -> Any:
        """Wait (bounded) until predicate() is truthy; return its value, or None on timeout."""
        with self.changed:
            return self.changed.wait_for(predicate, timeout=timeout_s)


class StreamControl:
    """Lets another thread drop a call's connection (a client disconnect), before or after headers.

    The socket is captured when the connection is made (httpcore's ``trace`` extension hands
    over the network stream) and shut down on ``drop()``: a reader blocked in recv() wakes at
    once, which ``Response.close()`` from another thread does not achieve.
    """

    def __init__(self) -> None:
        self.dropped = threading.Event()
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None

    def trace(self, event: str, info: dict[str, Any]) -> None:
        if event == "connection.connect_tcp.complete":
            stream = info.get("return_value")
            sock = stream.get_extra_info("socket") if stream is not None else None
            with self._lock:
                self._sock = sock
                if self.dropped.is_set():
                    self._shutdown()

    def local_port(self) -> int | None:
        """The client-side port of the captured connection (None before it is made or once gone)."""
        with self._lock:
            try:
                return self._sock.getsockname()[1] if self._sock is not None else None
            except OSError:
                return None

    def drop(self) -> None:
        with self._lock:
            self.dropped.set()
            self._shutdown()

    def _shutdown(self) -> None:
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@functools.lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    """One default SSL context per process (targets are plain HTTP on loopback, but httpx
    builds a context per client, and loading the CA bundle costs ~25 ms each time)."""
    return ssl.create_default_context()


def status_of(call: HttpCall) -> str | None:
    """The ``status`` of a JSON snapshot answer, or None."""
    if isinstance(call.body, dict):
        status = call.body.get("status")
        return status if isinstance(status, str) else None
    return None


class Transport:
    """httpx client + recorder; ``call`` performs one exchange and returns its HttpCall."""

    def __init__(self, base_url: str, recorder: Recorder, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.recorder = recorder
        self.timeout = httpx.Timeout(timeout_s, connect=5.0)
        # One client for all calls (building one loads a CA bundle: ~25 ms), but no pooled
        # connection: every call opens its own, so none outlives a killed server incarnation.
        self.client = httpx.Client(
            timeout=self.timeout,
            limits=httpx.Limits(max_keepalive_connections=0),
            trust_env=False,
            verify=_ssl_context(),
        )

    def close(self) -> None:
        self.client.close()

    def call(
        self,
        name: str,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        control: StreamControl | None = None,
        labels: dict[str, Any] | None = None,
    ) -> HttpCall:
        rec = self.recorder
        call = HttpCall(
            name=name,
            method=method,
            url=self.base_url + path,
            request_body=json_body,
            params={**(params or {}), **(labels or {})},
            started_at=rec.clock(),
            incarnation=rec.incarnation(),
            ended="in_flight",
        )
        rec.add(call)
        if content is None and json_body is not None:
            content = json.dumps(json_body).encode()
            headers = {"content-type": "application/json", **(headers or {})}
        ended = "broken"  # unless the exchange ends below
        try:
            extensions = {"trace": control.trace} if control is not None else None
            with self.client.stream(
                method, call.url, content=content, params=params or None, headers=headers,
                extensions=extensions,
            ) as response:
                call.status = response.status_code
                call.content_type = response.headers.get("content-type")
                rec.touch()
                if call.is_sse:
                    self._read_stream(call, response, control)
                else:
                    self._read_body(call, response)
            # a stream we dropped may still end cleanly (the server closes after our shutdown)
            ended = "disconnected" if control is not None and control.dropped.is_set() else "complete"
        except httpx.TimeoutException as exc:
            if control is not None and control.dropped.is_set():
                ended = "disconnected"
            else:
                call.error = self._timeout_text(call, exc)
        except (httpx.HTTPError, OSError, ValueError) as exc:
            if control is not None and control.dropped.is_set():
                ended = "disconnected"
            else:
                call.error = f"{type(exc).__name__}: {exc}"
        finally:
            # ``ended`` is written last: a reader on another thread that sees it set also sees
            # the final frames, body and end time (see ``settled``).
            call.ended_at = rec.clock()
            call.ended = ended
            rec.touch()
        return call

    def _timeout_text(self, call: HttpCall, exc: httpx.TimeoutException) -> str:
        """A timeout that names what was awaited and the last thing seen (a stalled stream)."""
        phase = {"ConnectTimeout": "a connection to", "WriteTimeout": "sending the request to",
                 "PoolTimeout": "a free connection for"}.get(type(exc).__name__)
        seconds = self.timeout.connect if phase == "a connection to" else self.timeout.read
        if phase is None and call.status is None:
            phase = "the answer of"
        elif phase is None:
            phase = "the next SSE frame of" if call.is_sse else "the rest of the body of"
        last = f"last frame: {call.frames[-1].raw.strip()[:160]!r}" if call.frames else "no frame"
        seen = f"status {call.status}, {len(call.frames)} frame(s), {last}" if call.status is not None else "no answer"
        return f"{type(exc).__name__}: timed out after {seconds:g}s waiting for {phase} {call.method} {call.url}; last seen: {seen}"

    def _read_body(self, call: HttpCall, response: httpx.Response) -> None:
        raw = response.read()
        text = raw.decode("utf-8", errors="replace")
        call.body_text = text[:MAX_BODY_TEXT]
        try:
            call.body = json.loads(text)
        except ValueError:
            call.body = None

    def _read_stream(
        self, call: HttpCall, response: httpx.Response, control: StreamControl | None
    ) -> None:
        parser = FrameParser()
        rec = self.recorder
        for line in iter_lines(response.iter_text()):
            frame = parser.feed(line)
            if frame is None or (frame.event is None and not frame.data and frame.id is None):
                continue
            call.frames.append(
                SSEFrame(
                    event=frame.event,
                    data=frame.data,
                    id=frame.id,
                    raw=frame.raw,
                    t=rec.clock(),
                    incarnation=rec.incarnation(),
                )
            )
            rec.touch()
            if control is not None and control.dropped.is_set():
                return
