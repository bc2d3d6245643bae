"""Replay preconditions (B2), cursor semantics (B4) and the live tail."""

from __future__ import annotations

import pytest
from ri_wire import Api, error_of, expected_text, new_tag, output_text, SSEReader, read_sse, script_input


def test_replay_preconditions_b2(api: Api) -> None:
    bg_json = api.create("x", background=True).json()["id"]
    fg_stream = api.stream_create({"deltas": 1}).events[0]["response"]["id"]
    fg_json = api.create("x").json()["id"]
    no_store = api.stream_create({"deltas": 1}, store=False).events[0]["response"]["id"]
    api.wait_status(bg_json)
    for rid in (bg_json, fg_stream, fg_json):
        r = api.get(rid, stream="true")
        assert r.status_code == 400, (rid, r.text)
        err = error_of(r)
        assert err["param"] == "stream" and "background=true" in err["message"]
        assert api.get(rid, stream="false").status_code == 200  # JSON is always there (B5)
    r = api.get(no_store, stream="true")
    assert r.status_code == 404 and error_of(r)["param"] == "response_id"


@pytest.fixture
def finished_stream(api: Api) -> tuple[str, list[dict]]:
    sse = api.stream_create({"deltas": 3}, background=True)
    return sse.events[0]["response"]["id"], sse.events


def test_replay_without_cursor_is_the_whole_log(api: Api, finished_stream) -> None:
    rid, events = finished_stream
    replay = api.replay(rid)
    assert replay.status == 200 and replay.events == events


@pytest.mark.parametrize("cursor", [0, 1, 5])
def test_replay_after_cursor_b4(api: Api, finished_stream, cursor: int) -> None:
    rid, events = finished_stream
    replay = api.replay(rid, starting_after=cursor)
    assert replay.status == 200
    assert replay.events == [e for e in events if e["sequence_number"] > cursor]


def test_cursor_at_or_past_the_end_is_an_empty_stream(api: Api, finished_stream) -> None:
    rid, events = finished_stream
    last = events[-1]["sequence_number"]
    # Any number of digits is well formed; past every event (also past a 64-bit store column, or
    # past what int() converts) it is served with no events, never a 400 or a 5xx.
    for cursor in (last, last + 1, 10**9, 10**19, 10**30, "9" * 5000):
        replay = api.replay(rid, starting_after=cursor)
        assert replay.status == 200 and replay.events == []
        assert replay.headers["content-type"] == "text/event-stream; charset=utf-8"


@pytest.mark.parametrize("cursor", ["abc", "-1", "1.5", "", "1e3", " 3", "3\n", "3 ", "+3", "0x3"])
def test_malformed_cursor_is_rejected(api: Api, finished_stream, cursor: str) -> None:
    rid, _ = finished_stream
    r = api.get(rid, stream="true", starting_after=cursor)
    assert r.status_code == 400
    assert error_of(r)["param"] == "starting_after"


def test_bad_stream_flag_is_rejected(api: Api, finished_stream) -> None:
    rid, _ = finished_stream
    r = api.get(rid, stream="yes")
    assert r.status_code == 400 and error_of(r)["param"] == "stream"


@pytest.mark.parametrize("query, param", [("stream=false&stream=true", "stream"),
                                          ("stream=true&starting_after=1&starting_after=2", "starting_after")])
def test_a_query_parameter_given_twice_is_rejected(api: Api, finished_stream, query: str, param: str) -> None:
    rid, _ = finished_stream
    r = api.http.get(f"/responses/{rid}?{query}")
    assert r.status_code == 400 and error_of(r)["param"] == param, r.text


def start_bg_stream(api: Api, script: dict) -> str:
    """POST background+stream, read only response.created, drop the connection (B18: no effect)."""
    with api.http.stream("POST", "/responses", json={"input": script_input(**script), "background": True, "stream": True}) as r:
        first = read_sse(r, stop=lambda e: True)
    return first.events[0]["response"]["id"]


def test_live_tail_from_a_cursor_mid_run(api: Api, markers) -> None:
    """A replay attached while the handler is held gets persisted events > N, then the live tail."""
    tag = new_tag()
    rid = start_bg_stream(api, {"deltas": 4, "hold_at": 1, "tag": tag})
    markers.wait_for(tag, r"^held 1$")
    got: list[dict] = []
    try:
        with api.http.stream("GET", f"/responses/{rid}", params={"stream": "true", "starting_after": 3}) as r:
            assert r.status_code == 200
            reader = SSEReader(r)
            # Everything persisted up to the hold: seq 4 (delta 0) and seq 5 (delta 1).
            got += reader.read(stop=lambda e: e.get("delta") == "a1:d1 ")
            assert [e["sequence_number"] for e in got] == [4, 5]
            markers.release(tag)  # now the rest arrives live on the same connection
            got += reader.read()
            assert reader.ended
    finally:
        markers.release(tag)
    assert [e["sequence_number"] for e in got] == list(range(4, 4 + len(got)))
    assert got[-1]["type"] == "response.completed"
    assert output_text(got[-1]["response"]) == expected_text(1, 0, 4)
    full = api.replay(rid)
    assert full.events[4:] == got


def test_live_tail_attached_while_held(api: Api, markers) -> None:
    tag = new_tag()
    rid = api.create_script({"deltas": 3, "hold_at": 0, "tag": tag}, background=True, stream=False).json()["id"]
    markers.wait_for(tag, r"^held 0$")
    # Created without stream=true: no replay (B2) even while running.
    assert api.get(rid, stream="true").status_code == 400
    markers.release(tag)
    api.wait_status(rid)
