"""Wire helpers for the invocations tests: a frame reader (``id:``/``event:``/``data:``) and a client."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

TIMEOUT = httpx.Timeout(10.0)
WAIT_S = 10.0
TERMINAL = ("completed", "failed", "cancelled", "interrupted", "superseded")
TERMINAL_EVENTS = tuple(f"invocation.{s}" for s in TERMINAL)
GRACE = ("--shutdown-grace", "0.5")
TERM_WAIT_S = 0.5 + 2.0  # grace + 2 s: a graceful exit comes well within this


def new_tag(prefix: str = "i") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def text(attempt: int, first: int, last_excl: int) -> str:
    return "".join(f"a{attempt}:d{i} " for i in range(first, last_excl))


@dataclass(frozen=True)
class Frame:
    """One SSE frame: the ``id:`` line, the ``event:`` line and the parsed ``data``."""

    id: int
    event: str
    data: dict[str, Any]

    @property
    def type(self) -> str:
        return self.data["type"]


def parse_frames(buf: bytes) -> tuple[list[Frame], bytes]:
    """Complete frames in ``buf`` and the unparsed rest; every frame must have id, event and data."""
    frames = []
    while b"\n\n" in buf:
        block, buf = buf.split(b"\n\n", 1)
        fields: dict[str, str] = {}
        for line in block.decode().split("\n"):
            name, _, value = line.partition(": ")
            assert name in ("id", "event", "data") and name not in fields, f"unexpected SSE line {line!r}"
            fields[name] = value
        assert set(fields) == {"id", "event", "data"}, f"incomplete frame {block!r}"
        frames.append(Frame(int(fields["id"]), fields["event"], json.loads(fields["data"])))
    return frames, buf


class FrameReader:
    """Incremental reader of one invocation stream: read some frames, act, read on."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.frames: list[Frame] = []
        self._chunks = response.iter_raw()
        self._buf = b""
        self._pending: list[Frame] = []
        self.ended = False

    def _next(self) -> Frame | None:
        while not self._pending:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self.ended = True
                assert not self._buf, f"stream ended inside a frame: {self._buf!r}"
                return None
            self._buf += chunk
            frames, self._buf = parse_frames(self._buf)
            self._pending.extend(frames)
        frame = self._pending.pop(0)
        self.frames.append(frame)
        return frame

    def read(self, stop: Callable[[Frame], bool] | None = None) -> list[Frame]:
        """Frames up to and including the first one where ``stop`` is true (or to the end)."""
        got = []
        while (frame := self._next()) is not None:
            got.append(frame)
            if stop is not None and stop(frame):
                break
        return got


def check_frames(frames: list[Frame], inv_id: str) -> None:
    """Every frame: id == data.event_id, event == data.type, the invocation's id; ids increase."""
    for f in frames:
        assert f.id == f.data["event_id"] and f.event == f.type and f.data["invocation_id"] == inv_id, f
    ids = [f.id for f in frames]
    assert ids == sorted(set(ids)), ids


class InvApi:
    """A thin synchronous client of the invocations wire."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=TIMEOUT, trust_env=False)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> InvApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def create(self, script: dict[str, Any] | None = None, *, session_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"input": {"conformance": script} if script is not None else {}}
        if session_id is not None:
            body["session_id"] = session_id
        r = self.http.post("/invocations", json=body)
        assert r.status_code == 200, r.text
        return r.json()

    def get(self, inv_id: str) -> httpx.Response:
        return self.http.get(f"/invocations/{inv_id}", headers={"accept": "application/json"})

    def snapshot(self, inv_id: str) -> dict[str, Any]:
        r = self.get(inv_id)
        assert r.status_code == 200, r.text
        return r.json()

    @contextmanager
    def open_stream(self, inv_id: str, *, header: int | None = None, query: int | None = None) -> Iterator[FrameReader]:
        headers = {} if header is None else {"last-event-id": str(header)}
        params = {} if query is None else {"last_event_id": str(query)}
        with self.http.stream("GET", f"/invocations/{inv_id}", headers=headers, params=params) as r:
            assert r.status_code == 200, (r.status_code, r.read())
            assert r.headers["content-type"].startswith("text/event-stream"), r.headers
            yield FrameReader(r)

    def stream(self, inv_id: str, **cursor: int | None) -> list[Frame]:
        with self.open_stream(inv_id, **cursor) as reader:
            frames = reader.read()
        check_frames(frames, inv_id)
        return frames

    def cancel(self, inv_id: str) -> httpx.Response:
        return self.http.post(f"/invocations/{inv_id}/cancel")

    def wait_status(self, inv_id: str, statuses: tuple[str, ...] = TERMINAL, timeout_s: float = WAIT_S) -> dict[str, Any]:
        """Poll the snapshot until its status is in ``statuses``; a non-200 fails at once with the body."""
        deadline = time.monotonic() + timeout_s
        while True:
            last = self.snapshot(inv_id)
            if last["status"] in statuses:
                return last
            if time.monotonic() > deadline:
                raise AssertionError(f"{inv_id} not in {statuses} within {timeout_s}s; last: {last}")
            time.sleep(0.01)  # polling interval of a bounded wait, not synchronisation


def error_of(r: httpx.Response) -> dict[str, Any]:
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"type", "code", "message", "param"}, body
    return body["error"]


def starts(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("start ")]
