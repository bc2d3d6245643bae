"""Wire helpers for the reference server's own tests (an SSE reader, a small client)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from harness.process import TargetSpec

COMMAND = "{python} -m reference_impl --port {port} --state-dir {state_dir}"
TIMEOUT = httpx.Timeout(10.0)
WAIT_S = 10.0
TERMINAL = ("completed", "failed", "cancelled", "incomplete")


def script_input(**script: Any) -> str:
    return json.dumps({"conformance": script})


def new_tag(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def expected_text(attempt: int, first: int, last_excl: int) -> str:
    return "".join(f"a{attempt}:d{i} " for i in range(first, last_excl))


def output_text(response: dict[str, Any]) -> str:
    return "".join(
        part.get("text", "")
        for item in response.get("output", [])
        for part in item.get("content", [])
        if part.get("type") == "output_text"
    )


@dataclass
class SSE:
    status: int
    headers: httpx.Headers
    events: list[dict[str, Any]] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # the ``event:`` line of each frame
    raw: bytes = b""

    @property
    def types(self) -> list[str]:
        return [e["type"] for e in self.events]

    @property
    def seqs(self) -> list[int]:
        return [e["sequence_number"] for e in self.events]


def parse_frames(buf: bytes) -> tuple[list[tuple[str | None, dict[str, Any]]], bytes]:
    """Complete ``event:/data:`` frames in ``buf`` and the unparsed rest."""
    frames = []
    while b"\n\n" in buf:
        block, buf = buf.split(b"\n\n", 1)
        name = None
        data = []
        for line in block.decode().split("\n"):
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data.append(line[len("data: ") :])
        if data:
            frames.append((name, json.loads("\n".join(data))))
    return frames, buf


class SSEReader:
    """Incremental reader of one SSE response: read some events, act, read on."""

    def __init__(self, response: httpx.Response) -> None:
        self.sse = SSE(status=response.status_code, headers=response.headers)
        self._chunks = response.iter_raw()
        self._buf = b""
        self._pending: list[tuple[str | None, dict[str, Any]]] = []
        self.ended = False

    def _next(self) -> dict[str, Any] | None:
        while not self._pending:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self.ended = True
                return None
            self.sse.raw += chunk
            self._buf += chunk
            frames, self._buf = parse_frames(self._buf)
            self._pending.extend(frames)
        name, event = self._pending.pop(0)
        self.sse.names.append(name or "")
        self.sse.events.append(event)
        return event

    def read(
        self,
        stop: Callable[[dict[str, Any]], bool] | None = None,
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Events up to and including the first one where ``stop`` is true (or to the end)."""
        got = []
        while (event := self._next()) is not None:
            got.append(event)
            if on_event is not None:
                on_event(event)
            if stop is not None and stop(event):
                break
        return got


def read_sse(
    response: httpx.Response,
    *,
    stop: Callable[[dict[str, Any]], bool] | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> SSE:
    """Read an SSE response to its end (or until ``stop(event)`` is true)."""
    reader = SSEReader(response)
    reader.read(stop, on_event)
    return reader.sse


class Api:
    """A thin synchronous client of the responses wire."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=TIMEOUT, trust_env=False)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def create(self, input: Any = "hello", **body: Any) -> httpx.Response:
        return self.http.post("/responses", json={"input": input, **body})

    def create_script(self, script: dict[str, Any], **body: Any) -> httpx.Response:
        return self.create(script_input(**script), **body)

    def stream_create(self, script: dict[str, Any] | None = None, *, input: Any = None, **body: Any) -> SSE:
        payload = {"input": script_input(**script) if script is not None else input, "stream": True, **body}
        with self.http.stream("POST", "/responses", json=payload) as r:
            return read_sse(r)

    def get(self, rid: str, **params: Any) -> httpx.Response:
        return self.http.get(f"/responses/{rid}", params=params)

    def replay(self, rid: str, starting_after: int | str | None = None) -> SSE:
        params: dict[str, Any] = {"stream": "true"}
        if starting_after is not None:
            params["starting_after"] = starting_after
        with self.http.stream("GET", f"/responses/{rid}", params=params) as r:
            if r.status_code != 200:
                r.read()
                return SSE(status=r.status_code, headers=r.headers, raw=r.content)
            return read_sse(r)

    def cancel(self, rid: str) -> httpx.Response:
        return self.http.post(f"/responses/{rid}/cancel")

    def delete(self, rid: str) -> httpx.Response:
        return self.http.delete(f"/responses/{rid}")

    def wait_status(self, rid: str, statuses: tuple[str, ...] = TERMINAL, timeout_s: float = WAIT_S) -> dict[str, Any]:
        """Poll GET until the status is in ``statuses``; any non-200 fails at once with the body."""
        deadline = time.monotonic() + timeout_s
        last: dict[str, Any] = {}
        while True:
            r = self.get(rid)
            assert r.status_code == 200, f"GET {rid} -> {r.status_code} {r.text}"
            last = r.json()
            if last["status"] in statuses:
                return last
            if time.monotonic() > deadline:
                raise AssertionError(f"{rid} not in {statuses} within {timeout_s}s; last: {last}")
            time.sleep(0.01)  # polling interval of a bounded wait, not synchronisation


def error_of(r: httpx.Response) -> dict[str, Any]:
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) >= {"type", "code", "message", "param"}, body
    return body["error"]


def spec(*extra: str, env: dict[str, str] | None = None) -> TargetSpec:
    return TargetSpec(command=COMMAND, extra_args=tuple(extra), env=env or {}, readiness_timeout_s=20.0)
