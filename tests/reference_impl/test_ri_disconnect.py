"""Client disconnect: cancels a foreground response (B17), leaves a background one alone (B18)."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlparse

import pytest
from ri_wire import Api, SSEReader, expected_text, new_tag, output_text, script_input


def stream_then_drop(api: Api, markers, tag: str, **body) -> str:
    """POST with stream=true, read up to the hold, then close the connection."""
    payload = {"input": script_input(deltas=4, hold_at=1, tag=tag), "stream": True, **body}
    with api.http.stream("POST", "/responses", json=payload) as r:
        reader = SSEReader(r)
        reader.read(stop=lambda e: e.get("delta") == "a1:d1 ")
        markers.wait_for(tag, r"^held 1$")
    return reader.sse.events[0]["response"]["id"]


def raw_post_then_drop(base_url: str, markers, tag: str, body: dict) -> str:
    """POST (non-stream) over a raw socket, wait for the hold, close the socket mid-request."""
    u = urlparse(base_url)
    data = json.dumps(body).encode()
    with socket.create_connection((u.hostname, u.port), timeout=10) as sock:
        sock.sendall(
            b"POST /responses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(data)}\r\n\r\n".encode()
            + data
        )
        line = markers.wait_for(tag, r"^start ")
        markers.wait_for(tag, r"^held 1$")
    return line.split("id=")[1].split()[0]


@pytest.mark.parametrize("store", [True, False], ids=["stored", "store=false"])
def test_b17_foreground_stream_disconnect_cancels(api: Api, markers, store: bool) -> None:
    tag = new_tag()
    rid = stream_then_drop(api, markers, tag, store=store)
    markers.wait_for(tag, r"^interrupted$")
    if store:
        final = api.wait_status(rid)
        assert final["status"] == "cancelled" and final["output"] == []
    else:
        assert api.get(rid).status_code == 404
    markers.release(tag)
    assert "done" not in markers.lines(tag)


@pytest.mark.parametrize("store", [True, False], ids=["stored", "store=false"])
def test_b17_foreground_json_disconnect_cancels(server, api: Api, markers, store: bool) -> None:
    tag = new_tag()
    body = {"input": script_input(deltas=4, hold_at=1, tag=tag), "store": store}
    rid = raw_post_then_drop(server.base_url, markers, tag, body)
    markers.wait_for(tag, r"^interrupted$")
    if store:
        final = api.wait_status(rid)
        assert final["status"] == "cancelled" and final["output"] == []
    else:
        assert api.get(rid).status_code == 404
    markers.release(tag)
    assert "done" not in markers.lines(tag)


def test_b18_background_stream_disconnect_changes_nothing(api: Api, markers) -> None:
    tag = new_tag()
    rid = stream_then_drop(api, markers, tag, background=True)
    assert api.get(rid).json()["status"] == "in_progress"
    markers.release(tag)
    final = api.wait_status(rid)
    assert final["status"] == "completed" and output_text(final) == expected_text(1, 0, 4)
    assert "interrupted" not in markers.lines(tag)
    assert markers.lines(tag)[-1] == "done"


def test_b18_background_json_disconnect_changes_nothing(server, api: Api, markers) -> None:
    tag = new_tag()
    body = {"input": script_input(deltas=4, hold_at=1, tag=tag), "background": True}
    rid = raw_post_then_drop(server.base_url, markers, tag, body)
    markers.release(tag)
    final = api.wait_status(rid)
    assert final["status"] == "completed" and output_text(final) == expected_text(1, 0, 4)
    assert "interrupted" not in markers.lines(tag)
