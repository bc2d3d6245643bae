"""The invocations driver: paths, cursor by header and by query, frames with their id and raw text."""

from __future__ import annotations

import json

import httpx

from conformance.drivers.base import Recorder
from conformance.drivers.invocations import (
    InvocationsDriver,
    frame_cursor,
    invocation_id_of,
    script_input,
    status_of,
)

IID = "inv_" + "a" * 32
BODY = (
    f'id: 1\nevent: invocation.started\ndata: {{"type": "invocation.started", "event_id": 1, "invocation_id": "{IID}", "attempt": 1}}\n\n'
    f': keep-alive\n\n'
    f'id: 2\r\nevent: invocation.completed\r\ndata: {{"type": "invocation.completed", "event_id": 2, "invocation_id": "{IID}", "output": ""}}\r\n\r\n'
)


def driver(seen: list[httpx.Request]) -> InvocationsDriver:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "POST" and request.url.path == "/invocations":
            return httpx.Response(200, json={"invocation_id": IID, "session_id": "s1", "status": "in_progress"})
        if request.url.path.endswith("/cancel"):
            return httpx.Response(409, json={"error": {"type": "conflict", "code": "invocation_finished"}})
        if request.headers.get("accept") == "application/json":
            return httpx.Response(200, json={"invocation_id": IID, "status": "completed", "output": ""})
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=BODY.encode())

    d = InvocationsDriver("http://target", Recorder(lambda: 0.0, lambda: 0))
    d.transport.client = httpx.Client(transport=httpx.MockTransport(handler))
    return d


def test_create_sends_the_script_as_an_input_object():
    seen: list[httpx.Request] = []
    call = driver(seen).create({"input": script_input({"deltas": 2, "tag": "t"})})
    assert json.loads(seen[0].content) == {"input": {"conformance": {"deltas": 2, "tag": "t"}}}
    assert invocation_id_of(call) == IID and status_of(call) == "in_progress" and call.name == "create"


def test_stream_keeps_ids_and_raw_text_and_resumes_by_header_or_query():
    seen: list[httpx.Request] = []
    d = driver(seen)
    live = d.stream(IID)
    assert [f.id for f in live.frames] == ["1", "2"]
    assert [f.event_id for f in live.frames] == [1, 2]
    assert live.frames[0].raw.startswith("id: 1\nevent: invocation.started\ndata: ")
    assert [frame_cursor(f) for f in live.frames] == [1, 2]
    assert seen[0].headers["accept"] == "text/event-stream" and "last-event-id" not in seen[0].headers
    header = d.stream(IID, name="resume", last_event_id=1, via="header", label="1")
    assert seen[1].headers["last-event-id"] == "1" and "last_event_id" not in seen[1].url.params
    assert header.params == {"last_event_id": "1", "via": "header", "cursor_label": "1"}
    query = d.stream(IID, name="resume", last_event_id="1\r\n", via="query")
    assert seen[2].url.params["last_event_id"] == "1\r\n" and "last-event-id" not in seen[2].headers
    assert query.params["via"] == "query"
    reconnect = d.stream(IID, name="resume", last_event_id=2, via="reconnect", label="2")
    assert seen[3].headers["last-event-id"] == "2" and seen[3].url.params["last_event_id"] == "0"
    assert reconnect.params["last_event_id"] == "2" and reconnect.params["via"] == "reconnect"


def test_snapshot_asks_for_json_and_cancel_records_the_error():
    seen: list[httpx.Request] = []
    d = driver(seen)
    snap = d.snapshot(IID, name="poll")
    assert seen[0].headers["accept"] == "application/json" and snap.body["status"] == "completed"
    cancel = d.cancel(IID, name="cancel_again")
    assert seen[1].method == "POST" and seen[1].url.path == f"/invocations/{IID}/cancel"
    assert cancel.status == 409 and cancel.body["error"]["code"] == "invocation_finished"


def test_frame_cursor_refuses_non_digits():
    seen: list[httpx.Request] = []
    live = driver(seen).stream(IID)
    live.frames[0].id = "-1"
    live.frames[1].id = None
    assert [frame_cursor(f) for f in live.frames] == [None, None]
    assert [f.event_id for f in live.frames] == [None, None]
