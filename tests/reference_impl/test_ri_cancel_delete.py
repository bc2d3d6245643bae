"""Cancellation scenarios S1–S7 (docs/contracts.md, Sources; B1/B3/B11/B12) and DELETE."""

from __future__ import annotations

import threading

import pytest
from ri_wire import Api, SSEReader, error_of, new_tag, script_input


def held_background(api: Api, markers, **body) -> tuple[str, str]:
    tag = new_tag()
    r = api.create_script({"deltas": 4, "hold_at": 1, "tag": tag}, background=True, **body)
    assert r.status_code == 200
    markers.wait_for(tag, r"^held 1$")
    return r.json()["id"], tag


def test_s1_cancel_background_in_progress_and_recancel(api: Api, markers) -> None:
    rid, tag = held_background(api, markers)
    r = api.cancel(rid)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == rid and body["status"] == "cancelled" and body["output"] == []
    markers.wait_for(tag, r"^interrupted$")
    assert "done" not in markers.lines(tag)
    assert api.get(rid).json() == body
    again = api.cancel(rid)  # B3: idempotent
    assert again.status_code == 200 and again.json() == body
    markers.release(tag)  # nothing is left to release: the handler is gone
    assert markers.lines(tag).count("start attempt=1 id=" + rid + " from=0") == 1


def test_s2_cancel_completed_background(api: Api) -> None:
    rid = api.create("x", background=True).json()["id"]
    api.wait_status(rid)
    r = api.cancel(rid)
    assert r.status_code == 400
    err = error_of(r)
    assert err["type"] == "invalid_request_error" and err["message"] == "Cannot cancel a completed response."
    assert api.get(rid).json()["status"] == "completed"


def test_s3_cancel_failed_background(api: Api) -> None:
    rid = api.create_script({"deltas": 2, "fail_at": 0}, background=True).json()["id"]
    assert api.wait_status(rid)["status"] == "failed"
    r = api.cancel(rid)
    assert r.status_code == 400 and error_of(r)["message"] == "Cannot cancel a failed response."


def test_s4_s5_cancel_synchronous(api: Api) -> None:
    json_id = api.create("x").json()["id"]
    stream_id = api.stream_create({"deltas": 1}).events[0]["response"]["id"]
    for rid in (json_id, stream_id):
        r = api.cancel(rid)
        assert r.status_code == 400 and error_of(r)["message"] == "Cannot cancel a synchronous response."


def test_s6_cancel_ends_the_live_stream_with_failed_cancelled(api: Api, markers) -> None:
    tag = new_tag()
    body = {"input": script_input(deltas=4, hold_at=1, tag=tag), "background": True, "stream": True}
    with api.http.stream("POST", "/responses", json=body) as r:
        reader = SSEReader(r)
        reader.read(stop=lambda e: e.get("delta") == "a1:d1 ")
        markers.wait_for(tag, r"^held 1$")
        rid = reader.sse.events[0]["response"]["id"]
        with Api(api.base_url) as other:
            c = other.cancel(rid)
        assert c.status_code == 200 and c.json()["status"] == "cancelled"
        rest = reader.read()
        assert reader.ended
    assert [e["type"] for e in rest] == ["response.failed"]
    final = rest[0]["response"]
    assert final["status"] == "cancelled" and final["output"] == []
    seqs = reader.sse.seqs
    assert seqs == list(range(len(seqs)))
    markers.wait_for(tag, r"^interrupted$")
    # Replay after cancel: the log ends with the same terminal event.
    replay = api.replay(rid)
    assert replay.status == 200 and replay.events == reader.sse.events


def test_s7_cancel_foreground_in_flight_is_404(api: Api, markers) -> None:
    tag = new_tag()
    out: dict = {}
    t = threading.Thread(target=lambda: out.setdefault("r", api.create(script_input(deltas=2, hold_at=0, tag=tag))))
    t.start()
    try:
        rid = markers.wait_for(tag, r"^start ").split("id=")[1].split()[0]
        markers.wait_for(tag, r"^held 0$")
        r = api.cancel(rid)
        assert r.status_code == 404 and rid in error_of(r)["message"]
        assert api.get(rid).status_code == 404  # B16
        assert api.delete(rid).status_code == 404
    finally:
        markers.release(tag)
        t.join(10)
    assert out["r"].json()["status"] == "completed"
    assert api.cancel(rid).status_code == 400  # now terminal: a synchronous response


def test_cancel_unknown_and_unstored(api: Api) -> None:
    unknown = "resp_" + "f" * 32
    r = api.cancel(unknown)
    assert r.status_code == 404 and error_of(r)["param"] == "response_id"
    rid = api.create("x", store=False).json()["id"]
    assert api.cancel(rid).status_code == 404
    assert api.cancel("bad-id").status_code == 400


def test_delete_terminal_response(api: Api) -> None:
    sse = api.stream_create({"deltas": 1}, background=True)
    rid = sse.events[0]["response"]["id"]
    r = api.delete(rid)
    assert r.status_code == 200
    assert r.json() == {"id": rid, "object": "response.deleted", "deleted": True}
    assert api.get(rid).status_code == 404
    assert api.replay(rid).status == 404
    assert api.cancel(rid).status_code == 404
    assert api.delete(rid).status_code == 404


def test_delete_in_flight_background_is_400(api: Api, markers) -> None:
    rid, tag = held_background(api, markers)
    try:
        r = api.delete(rid)
        assert r.status_code == 400 and error_of(r)["type"] == "invalid_request_error"
        assert api.get(rid).json()["status"] == "in_progress"
    finally:
        markers.release(tag)
    api.wait_status(rid)
    assert api.delete(rid).status_code == 200


@pytest.mark.parametrize("rid", ["resp_" + "0" * 32, "resp_abc"])
def test_delete_unknown_is_404(api: Api, rid: str) -> None:
    r = api.delete(rid)
    assert r.status_code == 404 and rid in error_of(r)["message"]
