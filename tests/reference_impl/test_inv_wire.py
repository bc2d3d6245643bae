"""Invocations wire against a real server process: create, stream, resume, snapshot, errors,
cancel, disconnect, several readers, retention and steering. Every wait is on a marker or a frame."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from inv_wire import GRACE, InvApi, check_frames, error_of, new_tag, starts, text
from ri_wire import spec

from harness.process import Target

INV_ID = re.compile(r"^inv_[0-9a-f]{32}$")


@pytest.fixture(scope="module")
def inv_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """One non-resilient server for this module (per xdist worker); tests use their own tags."""
    target = Target(spec(*GRACE), tmp_path_factory.mktemp("inv"))
    try:
        target.start()
        yield target
    finally:
        target.close()


@pytest.fixture
def api(inv_server: Target) -> Iterator[InvApi]:
    with InvApi(inv_server.base_url) as client:
        yield client


def test_create_stream_and_snapshot(api: InvApi) -> None:
    tag = new_tag("basic")
    created = api.create({"deltas": 3, "tag": tag})
    assert set(created) == {"invocation_id", "session_id", "status"}
    assert INV_ID.match(created["invocation_id"]) and created["status"] == "in_progress"
    assert re.match(r"^[A-Za-z0-9_.:-]{1,128}$", created["session_id"])
    inv = created["invocation_id"]
    frames = api.stream(inv)
    assert [f.type for f in frames] == ["invocation.started"] + ["invocation.delta"] * 3 + ["invocation.completed"]
    assert [f.id for f in frames] == [1, 2, 3, 4, 5]
    assert frames[0].data == {
        "type": "invocation.started", "event_id": 1, "invocation_id": inv, "attempt": 1, "entry_mode": "fresh", "from": 0
    }
    assert [(f.data["index"], f.data["text"]) for f in frames[1:4]] == [(i, f"a1:d{i} ") for i in range(3)]
    assert frames[-1].data["output"] == text(1, 0, 3)
    snap = api.snapshot(inv)
    assert snap == {
        "invocation_id": inv, "session_id": created["session_id"], "status": "completed", "output": text(1, 0, 3),
        "attempt": 1, "entry_mode": "fresh", "error": None, "last_event_id": 5,
    }
    r = api.http.get(f"/invocations/{inv}", headers={"accept": "text/event-stream"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert r.text.startswith("id: 1\nevent: invocation.started\ndata: {")


def test_checkpoints_and_failures(api: InvApi, inv_server: Target) -> None:
    tag = new_tag("cp")
    inv = api.create({"deltas": 5, "checkpoint_every": 2, "tag": tag})["invocation_id"]
    frames = api.stream(inv)
    assert [(f.type, f.data.get("index")) for f in frames if f.type != "invocation.delta"] == [
        ("invocation.started", None), ("invocation.checkpoint", 1), ("invocation.checkpoint", 3),
        ("invocation.checkpoint", 4), ("invocation.completed", None),  # the last, partial group is one too
    ]
    assert [line for line in inv_server.markers.lines(tag) if line.startswith("checkpoint")] == ["checkpoint 1", "checkpoint 3", "checkpoint 4"]
    failing = api.create({"deltas": 4, "fail_at": 2, "tag": new_tag("fail")})["invocation_id"]
    last = api.stream(failing)[-1]
    assert last.type == "invocation.failed" and last.data["error"]["code"] == "handler_error"
    snap = api.snapshot(failing)
    assert snap["status"] == "failed" and snap["error"]["code"] == "handler_error" and snap["output"] == text(1, 0, 2)
    bogus = api.create({"deltas": 1, "bogus": 1})["invocation_id"]
    assert [f.type for f in api.stream(bogus)] == ["invocation.started", "invocation.failed"]
    assert api.snapshot(bogus)["error"]["code"] == "unsupported_script"
    default = api.create(None)["invocation_id"]  # input without a script: the default {"deltas": 3}
    assert api.stream(default)[-1].data["output"] == text(1, 0, 3)


def test_resume_by_header_and_by_query_is_exclusive(api: InvApi) -> None:
    inv = api.create({"deltas": 4, "checkpoint_every": 2})["invocation_id"]
    full = api.stream(inv)
    last = full[-1].id
    assert [f.id for f in full] == list(range(1, last + 1))
    for cursor in range(0, last + 2):
        by_header = api.stream(inv, header=cursor)
        by_query = api.stream(inv, query=cursor)
        assert by_header == by_query == full[cursor:], cursor
    assert api.stream(inv, header=10**30) == []  # a cursor past the end: nothing, the stream ends at once
    assert [f.id for f in api.stream(inv, header=2, query=5)] == list(range(3, last + 1))  # the header wins


def test_live_tail_several_readers_and_disconnect(api: InvApi, inv_server: Target) -> None:
    tag = new_tag("live")
    markers = inv_server.markers
    inv = api.create({"deltas": 5, "hold_at": 2, "checkpoint_every": 2, "tag": tag})["invocation_id"]
    with api.open_stream(inv) as a, api.open_stream(inv, query=1) as b:
        early = a.read(stop=lambda f: f.data.get("index") == 2 and f.type == "invocation.delta")
        markers.wait_for(tag, r"^held 2$")
        with api.open_stream(inv, header=early[-1].id) as c:
            with api.open_stream(inv) as dropped:  # a reader that leaves mid-run changes nothing
                dropped.read(stop=lambda f: f.type == "invocation.delta")
            markers.release(tag)
            rest_a, all_b, rest_c = a.read(), b.read(), c.read()
    frames_a = early + rest_a
    check_frames(frames_a, inv)
    assert frames_a[-1].type == "invocation.completed" and frames_a[-1].data["output"] == text(1, 0, 5)
    assert all_b == frames_a[1:] and rest_c == rest_a  # same events, same ids, same order
    assert api.stream(inv) == frames_a  # and the durable replay agrees with the live readers
    lines = markers.lines(tag)
    assert lines[-1] == "done" and "interrupted" not in lines


def test_errors(api: InvApi) -> None:
    unknown = "inv_" + "0" * 32
    for r in (api.get(unknown), api.http.get(f"/invocations/{unknown}"), api.cancel(unknown)):
        assert r.status_code == 404 and error_of(r)["param"] == "invocation_id" and unknown in error_of(r)["message"]
    for bad_id in ("abc", "inv_", "inv_a-b", "inv_" + "a" * 65, "INV_abc", "inv_%20x", "inv_abc%0A", "inv_abc%0D%0A"):
        for r in (api.get(bad_id), api.http.get(f"/invocations/{bad_id}"), api.cancel(bad_id)):
            assert r.status_code == 400 and error_of(r)["param"] == "invocation_id", (bad_id, r.text)
    inv = api.create({"deltas": 1})["invocation_id"]
    for cursor in ("x", "-1", "1.5", "", " 1x", "+1", "1\r\n2", "1\n", "1\r\n", "0x10", "١"):
        r = api.http.get(f"/invocations/{inv}", params={"last_event_id": cursor})
        assert r.status_code == 400 and error_of(r)["param"] == "last_event_id", (cursor, r.text)
    for cursor in ("x", "-1", "1.5", "١".encode()):
        r = api.http.get(f"/invocations/{inv}", headers={"last-event-id": cursor})
        assert r.status_code == 400 and error_of(r)["param"] == "last_event_id", (cursor, r.text)
    r = api.http.get(f"/invocations/{inv}", params=[("last_event_id", "1"), ("last_event_id", "2")])
    assert r.status_code == 400 and error_of(r)["param"] == "last_event_id"
    good = {"input": {"conformance": {"deltas": 1}}}
    for body, code, param in [
        ({**good, "model": "x"}, "unknown_parameter", "model"),
        ({}, "missing_required_parameter", "input"),
        ({"input": "text"}, "invalid_value", "input"),
        ({"input": [1]}, "invalid_value", "input"),
        ({"input": {"conformance": 3}}, "invalid_value", "input"),
        ({"input": {"conformance": {}, "x": 1}}, "invalid_value", "input"),
        ({**good, "session_id": 3}, "invalid_value", "session_id"),
        ({**good, "session_id": ""}, "invalid_value", "session_id"),
        ({**good, "session_id": "a/b"}, "invalid_value", "session_id"),
        ({**good, "session_id": "ab\n"}, "invalid_value", "session_id"),
        ({**good, "session_id": "s" * 129}, "invalid_value", "session_id"),
    ]:
        r = api.http.post("/invocations", json=body)
        assert r.status_code == 400, (body, r.text)
        err = error_of(r)
        assert (err["type"], err["code"], err["param"]) == ("invalid_request_error", code, param), body
    deep = b'{"input": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    for raw in (b"{", b"[]", b"null", b'"s"', b"", b"\xff", b'{"input": NaN}', b'{"\\ud800": 1}', deep):
        r = api.http.post("/invocations", content=raw, headers={"content-type": "application/json"})
        assert r.status_code == 400 and error_of(r)["type"] == "invalid_request_error", (raw, r.text)


def test_cancel(api: InvApi, inv_server: Target) -> None:
    markers = inv_server.markers
    tag = new_tag("cancel")
    inv = api.create({"deltas": 4, "hold_at": 1, "tag": tag})["invocation_id"]
    with api.open_stream(inv) as reader:
        markers.wait_for(tag, r"^held 1$")
        r = api.cancel(inv)
        frames = reader.read()
    assert r.status_code == 200 and r.json()["status"] == "cancelled" and r.json()["output"] == text(1, 0, 2)
    assert frames[-1].type == "invocation.cancelled" and reader.ended
    assert markers.lines(tag)[-1] == "interrupted"
    again = api.cancel(inv)
    assert again.status_code == 200 and again.json() == r.json() == api.snapshot(inv)
    done = api.create({"deltas": 1})["invocation_id"]
    api.wait_status(done)
    r = api.cancel(done)
    assert r.status_code == 409
    assert (error_of(r)["type"], error_of(r)["code"]) == ("conflict", "invocation_finished")


def test_retention_410_never_silent(target_factory) -> None:
    target: Target = target_factory(spec(*GRACE, "--event-retention", "3"), start=True)
    with InvApi(target.base_url) as api:
        inv = api.create({"deltas": 6})["invocation_id"]
        api.wait_status(inv)  # 8 events: started, 6 deltas, completed; ids 6..8 stay replayable
        assert [f.id for f in api.stream(inv, query=5)] == [6, 7, 8]
        assert api.stream(inv, header=8) == []
        for cursor in ({"header": 4}, {"query": 0}, {}):
            params = {"last_event_id": cursor["query"]} if "query" in cursor else {}
            headers = {"last-event-id": str(cursor["header"])} if "header" in cursor else {}
            r = api.http.get(f"/invocations/{inv}", params=params, headers=headers)
            assert r.status_code == 410, (cursor, r.text)
            assert (error_of(r)["type"], error_of(r)["code"]) == ("invalid_request_error", "cursor_expired")
        assert api.snapshot(inv)["last_event_id"] == 8  # the snapshot still works


# ---------------------------------------------------------------- steering
# A steer never stops a turn in the middle of a step: a held turn stays held until released, then
# runs on to its next checkpoint boundary (a non-final one) and ends superseded there. Every test
# steers while the turn is held, so what is queued stays queued until the test releases it.
def test_steering_winds_a_held_turn_down_at_its_next_checkpoint(api: InvApi, inv_server: Target) -> None:
    markers = inv_server.markers
    t1, t2 = new_tag("steer1"), new_tag("steer2")
    first = api.create({"deltas": 6, "checkpoint_every": 2, "hold_at": 2, "tag": t1})  # held mid-group
    markers.wait_for(t1, r"^held 2$")
    second = api.create({"deltas": 2, "tag": t2}, session_id=first["session_id"])
    assert second["status"] == "queued" and second["session_id"] == first["session_id"]
    assert api.snapshot(second["invocation_id"])["status"] == "queued"
    markers.release(t1)
    f1 = api.stream(first["invocation_id"])
    assert [f.type for f in f1][-3:] == ["invocation.delta", "invocation.checkpoint", "invocation.superseded"]
    assert f1[-2].data["index"] == 3  # the boundary after the hold; no delta after it
    # held, then released, then on to the boundary: the steer did not stop the held step
    assert markers.lines(t1)[-5:] == ["held 2", "released", "delta 3", "checkpoint 3", "interrupted"]
    snap1 = api.snapshot(first["invocation_id"])
    assert snap1["status"] == "superseded" and snap1["output"] == text(1, 0, 4)
    f2 = api.stream(second["invocation_id"])
    assert f2[0].data == {
        "type": "invocation.started", "event_id": 1, "invocation_id": second["invocation_id"],
        "attempt": 1, "entry_mode": "resumed", "from": 0,
    }
    assert f2[-1].type == "invocation.completed" and f2[-1].data["output"] == text(1, 0, 2)
    snap2 = api.snapshot(second["invocation_id"])
    assert (snap2["status"], snap2["attempt"], snap2["entry_mode"]) == ("completed", 1, "resumed")
    assert starts(markers.lines(t2)) == [f"start attempt=1 id={second['invocation_id']} from=0"]


@pytest.mark.parametrize(
    "script", [{"deltas": 2, "hold_at": 0}, {"deltas": 4, "checkpoint_every": 2, "hold_at": 1}],
    ids=["no-checkpoints", "only-the-final-boundary-left"],
)
def test_a_turn_with_no_boundary_left_completes_before_the_queue(api: InvApi, inv_server: Target, script: dict) -> None:
    markers = inv_server.markers
    t1, t2 = new_tag("nob1"), new_tag("nob2")
    first = api.create({**script, "tag": t1})
    markers.wait_for(t1, rf"^held {script['hold_at']}$")
    second = api.create({"deltas": 1, "tag": t2}, session_id=first["session_id"])
    assert second["status"] == "queued"
    markers.release(t1)
    done = api.wait_status(first["invocation_id"])
    assert (done["status"], done["output"]) == ("completed", text(1, 0, script["deltas"]))
    assert markers.lines(t1)[-1] == "done" and "interrupted" not in markers.lines(t1)
    final = api.wait_status(second["invocation_id"])
    assert (final["status"], final["entry_mode"]) == ("completed", "resumed")


def test_queued_turns_run_fifo_one_at_a_time(api: InvApi, inv_server: Target) -> None:
    markers = inv_server.markers
    t1, t2, t3 = new_tag("fifo1"), new_tag("fifo2"), new_tag("fifo3")
    first = api.create({"deltas": 6, "checkpoint_every": 2, "hold_at": 2, "tag": t1})
    sid = first["session_id"]
    markers.wait_for(t1, r"^held 2$")
    second = api.create({"deltas": 1, "hold_at": 0, "tag": t2}, session_id=sid)
    third = api.create({"deltas": 1, "tag": t3}, session_id=sid)
    assert (second["status"], third["status"]) == ("queued", "queued")
    markers.release(t1)
    markers.wait_for(t2, r"^held 0$")
    assert api.snapshot(first["invocation_id"])["status"] == "superseded"  # ended before the next started
    assert not markers.lines(t3)  # one at a time: the third waits for the second ...
    assert api.snapshot(third["invocation_id"])["status"] == "queued"
    assert markers.lines(t1)[-2:] == ["checkpoint 3", "interrupted"]
    markers.release(t2)
    for inv in (second, third):
        final = api.wait_status(inv["invocation_id"])
        # ... and the second, queued before the third, is not superseded by it
        assert (final["status"], final["entry_mode"], final["attempt"]) == ("completed", "resumed", 1)
    assert len(starts(markers.lines(t2))) == len(starts(markers.lines(t3))) == 1


def test_cancel_a_queued_turn(api: InvApi, inv_server: Target) -> None:
    markers = inv_server.markers
    t1, t2 = new_tag("cq1"), new_tag("cq2")
    first = api.create({"deltas": 4, "checkpoint_every": 2, "hold_at": 0, "tag": t1})
    markers.wait_for(t1, r"^held 0$")
    queued = api.create({"deltas": 1, "tag": t2}, session_id=first["session_id"])
    r = api.cancel(queued["invocation_id"])
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert [f.type for f in api.stream(queued["invocation_id"])] == ["invocation.cancelled"]
    # The queue is empty again: nothing supersedes the running turn at its boundary any more.
    markers.release(t1)
    assert api.wait_status(first["invocation_id"])["status"] == "completed"
    assert "checkpoint 1" in markers.lines(t1) and "interrupted" not in markers.lines(t1)
    assert markers.lines(t2) == []  # never started
