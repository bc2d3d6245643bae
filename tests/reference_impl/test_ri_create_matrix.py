"""Create matrix C1–C8 (docs/contracts.md, Sources) and the exact event sequence of a fresh attempt."""

from __future__ import annotations

import re

import pytest

from ri_wire import Api, error_of, expected_text, new_tag, output_text, script_input

ID_RE = re.compile(r"^resp_[0-9a-f]{32}$")
SNAPSHOT_KEYS = {"id", "object", "created_at", "status", "model", "output", "error", "metadata", "background", "store"}


def item_types(n_items: int, group_sizes: list[int]) -> list[str]:
    out = []
    for size in group_sizes:
        out += ["response.output_item.added", "response.content_part.added"]
        out += ["response.output_text.delta"] * size
        out += ["response.output_text.done", "response.content_part.done", "response.output_item.done"]
    return out


def fresh_types(group_sizes: list[int]) -> list[str]:
    return ["response.created", "response.in_progress", *item_types(len(group_sizes), group_sizes), "response.completed"]


def check_stream_shape(sse, attempt: int = 1) -> None:
    assert sse.seqs == list(range(len(sse.events))), "sequence numbers 0,1,2,... without gaps"
    assert sse.names == sse.types, "event: line names the JSON type"
    for e in sse.events:
        if e["type"].startswith("response.") and "response" in e:
            assert SNAPSHOT_KEYS <= set(e["response"]), e
            assert e["response"]["object"] == "response"
            assert "sequence_number" not in e["response"]


# ---------------------------------------------------------------- C1, C5: JSON terminal bodies
@pytest.mark.parametrize("store", [True, False], ids=["C1-store", "C5-no-store"])
def test_foreground_json_returns_terminal_body(api: Api, markers, server, store: bool) -> None:
    tag = new_tag()
    r = api.create_script({"deltas": 4, "tag": tag}, store=store, model="m-1", metadata={"k": "v"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert ID_RE.match(body["id"])
    assert SNAPSHOT_KEYS <= set(body)
    assert body["status"] == "completed" and body["error"] is None
    assert body["completed_at"] is not None
    assert (body["model"], body["metadata"], body["store"], body["background"]) == ("m-1", {"k": "v"}, store, False)
    assert output_text(body) == expected_text(1, 0, 4)
    assert markers.lines(tag) == [f"start attempt=1 id={body['id']} from=0", "delta 0", "delta 1", "delta 2", "delta 3", "done"]
    g = api.get(body["id"])
    if store:
        assert g.status_code == 200 and g.json() == body
    else:
        assert g.status_code == 404
        err = error_of(g)
        assert err["param"] == "response_id" and body["id"] in err["message"]
        # store=false persists nothing: no file in the state dir names the id or the tag.
        for path in server.state_dir.rglob("*"):
            assert body["id"] not in path.name and tag not in path.name
            try:
                data = path.read_bytes() if path.is_file() else b""
            except FileNotFoundError:  # replaced or deleted by another run meanwhile
                continue
            assert body["id"].encode() not in data and tag.encode() not in data


# ---------------------------------------------------------------- C2, C4, C6: streams
@pytest.mark.parametrize(
    ("store", "background"), [(True, False), (True, True), (False, False)], ids=["C2-fg", "C4-bg", "C6-no-store"]
)
def test_stream_create_sends_every_event_in_order(api: Api, store: bool, background: bool) -> None:
    sse = api.stream_create({"deltas": 3}, store=store, background=background)
    assert sse.status == 200
    assert sse.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert sse.headers["cache-control"] == "no-cache"
    assert sse.headers["x-accel-buffering"] == "no"
    assert b"\nid:" not in sse.raw and not sse.raw.startswith(b"id:")
    assert sse.types == fresh_types([3])
    check_stream_shape(sse)
    created, final = sse.events[0]["response"], sse.events[-1]["response"]
    assert created["status"] == "in_progress" and created["output"] == []
    assert (created["store"], created["background"]) == (store, background)
    assert final["status"] == "completed" and output_text(final) == expected_text(1, 0, 3)
    deltas = [e["delta"] for e in sse.events if e["type"] == "response.output_text.delta"]
    assert deltas == ["a1:d0 ", "a1:d1 ", "a1:d2 "]
    rid = created["id"]
    g = api.get(rid)
    if not store:
        assert g.status_code == 404
        assert api.replay(rid).status == 404
        return
    assert g.status_code == 200 and g.json() == final
    replay = api.replay(rid)
    if background:  # C4: full replay of the same events
        assert replay.status == 200 and replay.events == sse.events
    else:  # C2: B2
        assert replay.status == 400


# ---------------------------------------------------------------- C3: background returns at once
def test_background_json_returns_in_progress_before_the_handler_finishes(api: Api, markers) -> None:
    tag = new_tag()
    r = api.create_script({"deltas": 3, "hold_at": 1, "tag": tag}, background=True)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["status"] == "in_progress" and body["output"] == [] and body["background"] is True
    assert "done" not in markers.lines(tag)  # it answered before the handler finished
    markers.wait_for(tag, r"^held 1$")
    g = api.get(body["id"])
    assert g.status_code == 200 and g.json()["status"] == "in_progress"
    markers.release(tag)
    final = api.wait_status(body["id"])
    assert final["status"] == "completed" and output_text(final) == expected_text(1, 0, 3)
    assert markers.lines(tag)[-3:] == ["released", "delta 2", "done"]


# ---------------------------------------------------------------- C7, C8: store=false ∧ background
@pytest.mark.parametrize("stream", [False, True], ids=["C7", "C8"])
def test_background_without_store_is_rejected(api: Api, markers, stream: bool) -> None:
    tag = new_tag()
    r = api.create_script({"deltas": 1, "tag": tag}, store=False, background=True, stream=stream)
    assert r.status_code == 400
    err = error_of(r)
    assert err == {**err, "type": "invalid_request_error", "code": "unsupported_parameter", "param": "background"}
    assert markers.lines(tag) == []  # the handler never ran


# ---------------------------------------------------------------- the script's shapes
def test_checkpoint_every_emits_one_item_per_group(api: Api) -> None:
    sse = api.stream_create({"deltas": 5, "checkpoint_every": 2})
    assert sse.types == fresh_types([2, 2, 1])
    added = [e["output_index"] for e in sse.events if e["type"] == "response.output_item.added"]
    assert added == [0, 1, 2]
    final = sse.events[-1]["response"]
    texts = [item["content"][0]["text"] for item in final["output"]]
    assert texts == ["a1:d0 a1:d1 ", "a1:d2 a1:d3 ", "a1:d4 "]
    assert all(item["status"] == "completed" and item["type"] == "message" for item in final["output"])


def test_zero_deltas_completes_without_items(api: Api) -> None:
    sse = api.stream_create({"deltas": 0})
    assert sse.types == ["response.created", "response.in_progress", "response.completed"]
    assert sse.events[-1]["response"]["output"] == []


def test_plain_text_and_list_inputs_run_the_default_script(api: Api) -> None:
    for inp in ("just words, not JSON", [{"role": "user", "content": "hi"}], '{"other": 1}'):
        r = api.create(inp)
        assert r.status_code == 200, r.text
        assert output_text(r.json()) == expected_text(1, 0, 3)


def test_fail_at_fails_with_handler_error(api: Api, markers) -> None:
    tag = new_tag()
    sse = api.stream_create({"deltas": 4, "fail_at": 2, "tag": tag})
    assert sse.types[-1] == "response.failed"
    assert sse.types.count("response.output_text.delta") == 2
    final = sse.events[-1]["response"]
    assert final["status"] == "failed" and final["error"]["code"] == "handler_error"
    assert final["output"] == []
    rid = final["id"]
    assert markers.lines(tag) == [f"start attempt=1 id={rid} from=0", "delta 0", "delta 1", "fail 2"]
    assert api.get(rid).json() == final


@pytest.mark.parametrize(
    ("script", "field"),
    [
        ({"deltas": 1, "bogus": 1}, "bogus"),
        ({"deltas": "3"}, "deltas"),
        ({"deltas": True}, "deltas"),
        ({"deltas": -1}, "deltas"),
        ({"hold_at": -2, "tag": "x"}, "hold_at"),
        ({"hold_at": 1}, "hold_at"),
        ({"checkpoint_every": 0}, "checkpoint_every"),
        ({"fail_at": 1.5}, "fail_at"),
        ({"delay_ms": "slow"}, "delay_ms"),
        ({"tag": "no spaces allowed"}, "tag"),
        ({"tag": ""}, "tag"),
    ],
)
def test_unsupported_script_fails_naming_the_field(api: Api, script: dict, field: str) -> None:
    r = api.create_script(script)
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "failed"
    assert body["error"]["code"] == "unsupported_script"
    assert f"'{field}'" in body["error"]["message"]


@pytest.mark.parametrize("script", ['{"conformance": 3}', '{"conformance": [1]}', '{"conformance": {}, "x": 1}'])
def test_script_that_is_not_an_object_is_rejected_at_post(api: Api, script: str) -> None:
    r = api.create(script)
    assert r.status_code == 400
    assert error_of(r)["param"] == "input"


def test_hold_and_release_markers(api: Api, markers) -> None:
    tag = new_tag()
    r = api.create_script({"deltas": 3, "hold_at": 0, "tag": tag, "delay_ms": 1}, background=True)
    rid = r.json()["id"]
    markers.wait_for(tag, r"^held 0$")
    markers.release(tag)
    api.wait_status(rid)
    assert markers.lines(tag) == [
        f"start attempt=1 id={rid} from=0",
        "delta 0",
        "held 0",
        "released",
        "delta 1",
        "delta 2",
        "done",
    ]


def test_hold_before_created_blocks_the_background_post(api: Api, markers) -> None:
    """hold_at -1 holds before response.created is persisted, so the POST cannot answer yet."""
    import threading

    tag = new_tag()
    result: dict = {}
    t = threading.Thread(
        target=lambda: result.setdefault("r", api.create(script_input(deltas=1, hold_at=-1, tag=tag), background=True))
    )
    t.start()
    try:
        line = markers.wait_for(tag, r"^start ")
        rid = line.split("id=")[1].split()[0]
        markers.wait_for(tag, r"^held -1$")
        assert api.get(rid).status_code == 404  # not created yet
        assert "r" not in result
    finally:
        markers.release(tag)
        t.join(10)
    assert result["r"].status_code == 200 and result["r"].json()["id"] == rid
    api.wait_status(rid)


def test_previous_response_id(api: Api) -> None:
    first = api.create("one").json()
    r = api.create("two", previous_response_id=first["id"])
    assert r.status_code == 200 and r.json()["previous_response_id"] == first["id"]
    missing = "resp_" + "0" * 32
    r = api.create("three", previous_response_id=missing)
    assert r.status_code == 404
    err = error_of(r)
    assert err["param"] == "previous_response_id" and missing in err["message"]
    r = api.create("four", previous_response_id="not-an-id")
    assert r.status_code == 400 and error_of(r)["param"] == "previous_response_id"
