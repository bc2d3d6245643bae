"""replay and stream: the event-stream checkers fed broken streams."""

from __future__ import annotations

import pytest

import json

from conformance.checks.replay import asserting_options, check_replay, check_stream, order_problems

from .builders import (
    SIGKILL_HELD,
    cancelled_run,
    crash_run,
    frame,
    json_call,
    make_cell,
    make_history,
    message_item,
    messages,
    normal_run,
    response_obj,
    retype,
    text_of,
    with_seq,
)

CELL = make_cell(fault=SIGKILL_HELD)
STRICT = {"after": ["start", "mid"], "gap_free": True, "single_created": True, "terminal": "response.completed"}
CRASH = dict(STRICT, reset_event=True, keeps_live=True)


def replay(history, label="start"):
    return next(c for c in history.calls_named("replay") if c.params.get("cursor_label") == label)


def crash_history(**kw):
    return make_history(crash_run(**kw), replays=("start", "mid"))


def normal_history():
    return make_history(normal_run(), replays=("start", "mid"))


# ------------------------------------------------------------------ good


def test_good_replays_pass():
    assert check_replay(normal_history(), STRICT, make_cell()) == []
    for every in (None, 1, 2, 4):
        assert check_replay(crash_history(checkpoint_every=every), CRASH, CELL) == []


def test_replay_after_int_cursor_and_past_end():
    scn = normal_run()
    last = scn.live[-1].seq
    history = make_history(scn, replays=("start", 2, last))
    expect = dict(STRICT, after=["start", 2, last])
    assert replay(history, last).frames == []
    assert check_replay(history, expect, make_cell()) == []


def test_replay_options_true_or_none_mean_base_checks_only():
    assert check_replay(normal_history(), None, make_cell()) == []
    assert check_replay(normal_history(), {}, make_cell()) == []


# ------------------------------------------------------------------ base shape


def test_duplicate_seq():
    history = normal_history()
    call = replay(history)
    call.frames.insert(3, call.frames[3])
    [v] = check_replay(history, {}, make_cell())
    assert "duplicate sequence_number: response.content_part.added#3 and response.content_part.added#3" in v.message
    assert "sequence_number decreases" not in v.message


def test_decreasing_seq():
    history = normal_history()
    call = replay(history)
    call.frames[4], call.frames[5] = call.frames[5], call.frames[4]
    [v] = check_replay(history, {}, make_cell())
    assert "replay #1 from start: sequence_number decreases: response.output_text.delta#5 then response.output_text.delta#4" in v.message


def test_gap_with_gap_free():
    """A seq the live stream saw and the replay skips is lost data: MUST, whatever the numbering."""
    history = normal_history()
    del replay(history).frames[5]
    [v] = check_replay(history, {"gap_free": True}, make_cell())
    assert v.level is None  # counts at the cell's level
    assert "replay #1 from start: expected every event another read saw up to seq 13, observed 1 missing: 5" in v.message
    assert "response.output_text.delta#5" in v.message
    assert check_replay(history, {"gap_free": False}, make_cell()) == []


def test_gap_no_read_ever_saw_is_only_a_should():
    """§2.2 clause 4 allows gaps: a number no read ever saw is a SHOULD finding, not a MUST."""
    history = normal_history()
    for call in history.calls:
        call.frames[:] = [f for f in call.frames if f.seq != 5]
    [v] = check_replay(history, {"after": ["start", "mid"], "gap_free": True}, make_cell())
    assert v.level == "SHOULD"
    assert "expected contiguous sequence numbers 0..13, observed gaps at 5" in v.message
    assert "§2.2 clause 4" in v.message


def test_gap_after_cursor():
    history = normal_history()
    call = replay(history, "mid")
    cursor = call.params["starting_after"]
    del call.frames[0]
    [v] = check_replay(history, {"gap_free": True}, make_cell())
    assert f"after mid ({cursor})" in v.message and v.level is None
    assert f"observed 1 missing: {cursor + 1} (" in v.message


def test_gap_between_two_replays_is_lost_even_without_a_live_stream():
    """A replay that skips what another replay holds loses data, with keeps_live judging the live
    stream apart (so the live stream is not what reveals it here)."""
    history = normal_history()
    history.calls[0].frames[:] = []  # no live frames to compare
    mid = replay(history, "mid")
    skipped = mid.frames[1].seq
    del mid.frames[1]
    text = messages(check_replay(history, {"after": ["start", "mid"], "gap_free": True, "keeps_live": True}, make_cell()))
    assert f"observed 1 missing: {skipped} (response.output_text" in text and "in replay #1 from start" in text


def test_recovery_seq_gap_is_legal_unless_gap_free():
    history = make_history(crash_run(seq_gap=1), replays=("start", "mid"))
    assert check_replay(history, dict(CRASH, gap_free=False), CELL) == []
    violations = check_replay(history, CRASH, CELL)
    assert "gaps at 8" in messages(violations)
    assert violations and all(v.level == "SHOULD" for v in violations)  # nobody saw 8: a SHOULD


def test_numbering_from_one_is_accepted():
    """B9 says response.created is seq 0, the spec's worked example 1 (§6): both readings pass."""
    scn = normal_run()
    scn.live[:] = [with_seq(f, f.seq + 1) for f in scn.live]
    history = make_history(scn, replays=("start", 0, "mid"))
    assert replay(history, 0).frames[0].type == "response.created"  # after 0 = from the start here
    expect = dict(STRICT, after=["start", 0, "mid"])
    assert check_replay(history, expect, make_cell()) == []
    assert check_stream(history, {"order": True, "single_created": True, "terminal": "response.completed"}, make_cell()) == []
    # ... but not from 2, and a second created after a cursor is still a duplicate
    for call in history.calls:
        call.frames[:] = [with_seq(f, f.seq + 1) for f in call.frames]
    text = messages(check_stream(history, {"order": True, "single_created": True}, make_cell()))
    assert "expected response.created (seq 0 or 1) first, observed response.created#2" in text
    assert "expected response.created at seq 0 or 1, observed response.created#2" in text
    mid = replay(history, "mid")
    mid.frames.insert(1, retype(mid.frames[0], type="response.created", sequence_number=mid.frames[0].seq))
    assert "expected no response.created after a cursor" in messages(check_replay(history, {"after": ["mid"], "single_created": True}, make_cell()))


def test_event_before_cursor():
    history = normal_history()
    call = replay(history, "mid")
    cursor = call.params["starting_after"]
    call.frames.insert(0, replay(history).frames[cursor])
    [v] = check_replay(history, {}, make_cell())
    assert f"event(s) at or before the cursor {cursor}: response.output_text.delta#{cursor}" in v.message
    assert "after mid" in v.message


def test_missing_sequence_number():
    history = normal_history()
    call = replay(history)
    call.frames[3] = with_seq(call.frames[3], "3")
    [v] = check_replay(history, {}, make_cell())
    assert "1 frame(s) without an integer sequence_number: response.content_part.added#None" in v.message


def test_missing_terminal():
    history = normal_history()
    replay(history).frames.pop()
    [v] = check_replay(history, {}, make_cell())
    assert "expected one terminal event, observed none (last: response.output_item.done#12)" in v.message


def test_duplicate_terminal():
    history = normal_history()
    call = replay(history)
    call.frames.append(with_seq(call.frames[-1], 14))
    [v] = check_replay(history, {}, make_cell())
    assert "expected exactly one terminal event, observed 2: response.completed#13, response.completed#14" in v.message


def test_terminal_not_last():
    history = normal_history()
    call = replay(history)
    call.frames.append(retype(call.frames[-2], sequence_number=14))
    [v] = check_replay(history, {}, make_cell())
    assert "terminal event response.completed#13 is not the last frame; after it: response.output_item.done#14" in v.message


def test_terminal_type_mismatch():
    history = normal_history()
    for call in history.calls_named("replay"):
        call.frames[-1] = retype(call.frames[-1], type="response.failed")
    text = messages(check_replay(history, {"terminal": "response.completed"}, make_cell()))
    assert "expected terminal response.completed, observed response.failed#13" in text


def test_empty_replay_before_terminal_is_a_violation():
    history = normal_history()
    replay(history, "mid").frames.clear()
    [v] = check_replay(history, {}, make_cell())
    assert "after mid" in v.message and "observed none (last: no frames)" in v.message


# ------------------------------------------------------------------ created


def test_two_created_from_start():
    history = crash_history()
    call = replay(history)
    dup = retype(call.frames[0], sequence_number=8)
    call.frames.insert(8, dup)  # recovery re-emitted response.created
    text = messages(check_replay(history, {"single_created": True}, CELL))
    assert "expected exactly one response.created, observed 2: response.created#0, response.created#8" in text


def test_created_not_at_seq_zero():
    history = normal_history()
    call = replay(history)
    call.frames[0] = with_seq(call.frames[0], 5)
    text = messages(check_replay(history, {"single_created": True}, make_cell()))
    assert "expected response.created at seq 0 or 1, observed response.created#5" in text


def test_created_after_cursor():
    history = crash_history()
    call = replay(history, "mid")
    call.frames.insert(3, retype(replay(history).frames[0], sequence_number=call.frames[2].seq + 0))
    text = messages(check_replay(history, {"single_created": True}, CELL))
    assert "expected no response.created after a cursor, observed response.created#" in text


# ------------------------------------------------------------------ after / status


def test_missing_cursor_replay():
    history = make_history(normal_run(), replays=("start",))
    [v] = check_replay(history, {"after": ["start", "mid", 4]}, make_cell()) [:1]
    text = messages(check_replay(history, {"after": ["start", "mid", 4]}, make_cell()))
    assert "expected a replay after cursor 'mid'; none was made" in text
    assert "expected a replay after cursor 4; none was made" in text
    assert "['start']" in v.evidence


def test_no_replay_at_all():
    history = make_history(normal_run(), replays=())
    [v] = check_replay(history, {}, make_cell())
    assert v.message == "expected a `replay` call; none was made"


def test_non_200_replay():
    history = make_history(normal_run(), replays=())
    call = json_call("replay", 404, {"error": {"code": "not_found"}})
    call.params = {"cursor_label": "start"}
    history.calls.append(call)
    [v] = check_replay(history, {"after": ["start"]}, make_cell())
    assert "expected replay #1 from start to answer 200 with events, observed 404" in v.message
    assert "not_found" in v.evidence
    # a 400 the cell declares under `http` is left to the http checker
    call.status = 400
    assert check_replay(history, {"after": ["start"]}, make_cell({"http": {"replay": 400}})) == []


def test_replay_transport_error():
    history = make_history(normal_run(), replays=())
    call = json_call("replay", None, None, error="RemoteProtocolError: peer closed")
    history.calls.append(call)
    [v] = check_replay(history, {}, make_cell())
    assert "transport error: RemoteProtocolError" in v.message


def test_unknown_replay_option():
    text = messages(check_replay(normal_history(), {"gap_free_after_cursor": True}, make_cell()))
    assert "unknown replay option(s) ['gap_free_after_cursor']" in text


# ------------------------------------------------------------------ reset event


def test_reset_event_missing():
    history = crash_history()
    call = replay(history)
    call.frames = [f for f in call.frames if not (f.type == "response.in_progress" and f.seq > 7)]
    text = messages(check_replay(history, {"reset_event": True}, CELL))
    assert "expected a reset response.in_progress with seq > 7, observed none" in text
    assert "response.in_progress only at/before the cursor: response.in_progress#1" in text


def test_reset_event_only_before_the_crash():
    """The fresh in_progress#1 must not count as the reset (p02 weakness)."""
    history = crash_history()
    call = replay(history)
    post = [f for f in call.frames if f.seq > 7 and f.type != "response.in_progress"]
    call.frames = [f for f in call.frames if f.seq <= 7] + post
    text = messages(check_replay(history, {"reset_event": True}, CELL))
    assert "expected a reset response.in_progress with seq > 7, observed none" in text


def test_reset_event_not_first_after_crash():
    history = crash_history()
    call = replay(history)
    i = next(i for i, f in enumerate(call.frames) if f.seq == 8)
    a, b = call.frames[i], call.frames[i + 1]
    call.frames[i], call.frames[i + 1] = with_seq(b, 8), with_seq(a, 9)
    text = messages(check_replay(history, {"reset_event": True}, CELL))
    assert "expected the reset response.in_progress to be the first event after seq 7 of the recovered attempt, observed response.output_item.added#8 before response.in_progress#9" in text


def test_reset_event_wrong_content():
    history = crash_history(checkpoint_every=2)
    call = replay(history)
    i = next(i for i, f in enumerate(call.frames) if f.seq == 8)
    call.frames[i] = retype(call.frames[i], response=response_obj("in_progress", []))
    text = messages(check_replay(history, {"reset_event": True}, CELL))
    assert "reset response.in_progress#8 for attempt 2 (from d4): expected response.output text 'a1:d0 a1:d1 a1:d2 a1:d3 ' (the checkpoints in the markers), observed ''" in text


def test_reset_event_stale_content_without_checkpoint():
    """No checkpoint: the reset must clear the output; carrying attempt 1's text is stale."""
    history = crash_history()
    call = replay(history)
    i = next(i for i, f in enumerate(call.frames) if f.seq == 8)
    stale = [message_item("msg_a1", text_of(1, range(4)), "in_progress")]
    call.frames[i] = retype(call.frames[i], response=response_obj("in_progress", stale))
    text = messages(check_replay(history, {"reset_event": True}, CELL))
    assert "expected response.output text '' (the checkpoints in the markers), observed 'a1:d0 a1:d1 a1:d2 a1:d3 '" in text


def test_reset_event_without_output_array():
    history = crash_history()
    call = replay(history)
    i = next(i for i, f in enumerate(call.frames) if f.seq == 8)
    call.frames[i] = retype(call.frames[i], response={"id": "x"})
    assert "has no response.output array" in messages(check_replay(history, {"reset_event": True}, CELL))


def test_reset_event_cursor_from_live_frames_when_not_recorded():
    history = crash_history()
    history.faults[0].last_seq_before = None
    assert check_replay(history, {"reset_event": True}, CELL) == []


def test_reset_event_cannot_judge_without_cursor():
    history = crash_history()
    history.faults[0].last_seq_before = None
    history.calls[0].frames = []
    [v] = check_replay(history, {"reset_event": True}, CELL)
    assert "cannot judge reset without pre-fault cursor" in v.message


def test_reset_event_without_process_fault():
    history = normal_history()
    [v] = check_replay(history, {"reset_event": True}, make_cell())
    assert "cannot judge reset without pre-fault cursor (no process fault recorded)" in v.message


def test_reset_event_needs_a_replay_from_start():
    history = make_history(crash_run(), replays=("mid",))
    [v] = check_replay(history, {"reset_event": True}, CELL)
    assert "expected a 200 replay from the start to judge reset_event; none was made" in v.message


def test_reset_events_of_two_recoveries():
    """crash_twice: attempt 2 checkpoints, is killed; attempt 3 resets to attempt 2's checkpoint."""
    scn = crash_run(6, 1, checkpoint_every=2)  # attempt 1: d0 d1, checkpoint 1, held 1
    markers = scn.markers[: scn.markers.index("start attempt=2 id=resp_0123456789abcdef from=2") + 1]
    markers += ["delta 2", "delta 3", "checkpoint 3", "held 3", "start attempt=3 id=r from=4", "delta 4", "delta 5", "done"]
    rec = [f for f in scn.recovered]
    reset2 = rec[0]
    seq = rec[0].seq
    frames = [reset2]
    # attempt 2 emits d2, d3 then dies; attempt 3 resets with d0..d3 and finishes
    frames.append(retype(rec[1], sequence_number=seq + 1))  # item added (oi 1)
    frames.append(retype(rec[2], sequence_number=seq + 2))
    frames.append(retype(rec[3], sequence_number=seq + 3, delta="a2:d2 "))
    snap3 = [message_item("c", text_of(1, range(2)) + text_of(2, range(2, 4)))]
    frames.append(retype(rec[0], sequence_number=seq + 4, response=response_obj("in_progress", snap3)))
    frames.append(retype(rec[3], sequence_number=seq + 5, delta="a3:d4 "))
    final = response_obj("completed", snap3 + [message_item("m", text_of(3, range(4, 6)))])
    frames.append(retype(rec[-1], sequence_number=seq + 6, response=final))
    scn.recovered, scn.markers = frames, markers
    history = make_history(scn, replays=("start",))
    assert check_replay(history, {"reset_event": True}, CELL) == []
    # attempt 3's reset carrying only attempt 1's checkpoint: loses attempt 2's checkpoint
    call = replay(history)
    call.frames[-3] = retype(call.frames[-3], response=response_obj("in_progress", [message_item("c", "a1:d0 a1:d1 ")]))
    text = messages(check_replay(history, {"reset_event": True}, CELL))
    assert "for attempt 3 (from d4): expected response.output text 'a1:d0 a1:d1 a2:d2 a2:d3 ' (the checkpoints in the markers), observed 'a1:d0 a1:d1 '" in text


# ------------------------------------------------------------------ keeps_live


def test_rewritten_pre_crash_payload():
    history = crash_history()
    call = replay(history)
    call.frames[5] = retype(call.frames[5], delta="a2:d2 ")
    [v] = check_replay(history, {"keeps_live": True}, CELL)
    assert "expected response.output_text.delta#5 replayed unchanged, observed a rewritten payload" in v.message
    assert "delta: 'a1:d1 ' -> 'a2:d2 '" in v.evidence


def test_key_order_is_not_a_rewrite():
    history = crash_history()
    call = replay(history)
    payload = json.loads(call.frames[5].data)
    call.frames[5].data = json.dumps(dict(reversed(list(payload.items()))), indent=1)
    assert check_replay(history, {"keeps_live": True}, CELL) == []


def test_lost_pre_crash_event():
    history = crash_history()
    call = replay(history)
    del call.frames[4]
    text = messages(check_replay(history, {"keeps_live": True}, CELL))
    assert "expected every live event up to seq" in text and "1 lost: response.output_text.delta#4" in text


def test_keeps_live_checks_mid_replays_too():
    history = crash_history()
    call = replay(history, "mid")
    call.frames[2] = retype(call.frames[2], delta="XX")
    text = messages(check_replay(history, {"keeps_live": True}, CELL))
    assert "replay #2 after mid" in text and "rewritten payload" in text


def test_keeps_live_without_live_frames():
    history = crash_history()
    history.calls[0].frames = []
    [v] = check_replay(history, {"keeps_live": True}, CELL)
    assert "live stream has no frames with sequence numbers" in v.message


# ------------------------------------------------------------------ stream (live)


def test_stream_passes():
    history = normal_history()
    assert check_stream(history, {"terminal": "response.completed", "order": True, "single_created": True}, make_cell()) == []
    history = crash_history(checkpoint_every=2)
    assert check_stream(history, {"terminal": None, "order": True, "single_created": True}, CELL) == []


def test_stream_terminal_null_but_terminal_seen():
    [v] = check_stream(normal_history(), {"terminal": None}, make_cell())
    assert "live stream: expected no terminal event, observed response.completed#13" in v.message


def test_stream_terminal_expected_but_cut():
    [v] = check_stream(crash_history(), {"terminal": "response.completed"}, CELL)
    assert "expected one terminal event (response.completed), observed none" in v.message


def test_stream_not_sse():
    history = normal_history()
    history.calls[0] = json_call("create", 200, response_obj("in_progress"), method="POST")
    [v] = check_stream(history, {"terminal": None}, make_cell())
    assert "expected the `create` call to answer an event stream" in v.message


def test_stream_no_create():
    history = normal_history()
    del history.calls[0]
    [v] = check_stream(history, {"order": True}, make_cell())
    assert "none was made" in v.message


def test_stream_two_created():
    history = normal_history()
    f = history.calls[0].frames
    f.insert(2, retype(f[0], sequence_number=2))
    text = messages(check_stream(history, {"single_created": True}, make_cell()))
    assert "observed 2: response.created#0, response.created#2" in text


def _order(frames):
    return "\n".join(order_problems(frames))


def test_order_good_streams():
    assert order_problems(normal_run().live) == []
    assert order_problems(crash_run(checkpoint_every=2).all_frames) == []


def test_order_created_not_first():
    f = normal_run().live
    f[0], f[1] = with_seq(f[1], 0), with_seq(f[0], 1)
    text = _order(f)
    assert "expected response.created (seq 0 or 1) first, observed response.in_progress#0" in text


def test_order_output_before_in_progress():
    f = normal_run().live
    del f[1]
    assert "response.output_item.added#2 before response.in_progress" in _order(f)


def test_order_delta_before_part_added():
    f = normal_run().live
    f[3], f[4] = with_seq(f[4], 3), with_seq(f[3], 4)
    assert "response.output_text.delta#3 before content_part.added for 0/0" in _order(f)


def test_order_content_before_item_added():
    f = normal_run().live
    f[2], f[3] = with_seq(f[3], 2), with_seq(f[2], 3)
    text = _order(f)
    assert "response.content_part.added#2 before response.output_item.added for output_index 0" in text
    assert "output_index 0 added twice" in text


def test_order_part_done_before_text_done_and_item_done_early():
    f = normal_run(2).live  # created, in_progress, item.added, part.added, d0, d1, text.done, part.done, item.done, completed
    f[6], f[7] = with_seq(f[7], 6), with_seq(f[6], 7)
    text = _order(f)
    assert "response.content_part.done#6 before output_text.done for 0/0" in text
    g = normal_run(2).live
    g[7], g[8] = with_seq(g[8], 7), with_seq(g[7], 8)
    text = _order(g)
    assert "response.output_item.done#7 before content_part.done (content_index 0 at output_text.done)" in text
    assert "after response.output_item.done" in text


def test_order_delta_after_text_done():
    f = normal_run(2).live
    f[5], f[6] = with_seq(f[6], 5), with_seq(f[5], 6)
    assert "response.output_text.delta#6 after output_text.done for 0/0" in _order(f)


def test_order_terminal_not_last_and_seq_decrease():
    f = normal_run(2).live
    f[-1], f[-2] = f[-2], f[-1]
    text = _order(f)
    assert "terminal response.completed#9 is not last" in text
    assert "sequence_number decreases" in text


def test_stream_order_violation_is_reported_with_evidence():
    history = normal_history()
    f = history.calls[0].frames
    del f[1]
    [v] = check_stream(history, {"order": True}, make_cell())
    assert v.message.startswith("live stream: B8 order: response.output_item.added#2 before response.in_progress")
    assert "response.created#0" in v.evidence


def test_unknown_stream_option():
    assert "unknown stream option(s) ['ordered']" in messages(check_stream(normal_history(), {"ordered": True}, make_cell()))


def test_reset_event_pinned_by_the_contract():
    """reset_event: "<text>" pins the last reset's content (contracts X2/X3)."""
    history = crash_history(checkpoint_every=2)
    pinned = "a1:d0 a1:d1 a1:d2 a1:d3 "
    assert check_replay(history, {"reset_event": pinned}, CELL) == []
    text = messages(check_replay(history, {"reset_event": "a1:d0 a1:d1 "}, CELL))
    assert "expected response.output text 'a1:d0 a1:d1 ' (pinned by the contract), observed 'a1:d0 a1:d1 a1:d2 a1:d3 '" in text
    assert "the markers' checkpoints predict reset text 'a1:d0 a1:d1 a1:d2 a1:d3 ' for attempt 2, the contract pins 'a1:d0 a1:d1 '" in text


def test_reset_event_pinned_catches_a_server_that_restored_an_old_checkpoint():
    """The server restored the d1 checkpoint although d3 was checkpointed: the handler resumed
    from d2, and the markers alone would agree with the reset; the pinned text does not."""
    scn = crash_run(6, 3, checkpoint_every=2)
    history = make_history(scn, replays=("start",))
    call = replay(history)
    i = next(i for i, f in enumerate(call.frames) if f.seq == 8)
    old = [message_item("c", text_of(1, range(2)))]
    call.frames[i] = retype(call.frames[i], response=response_obj("in_progress", old))
    text = messages(check_replay(history, {"reset_event": "a1:d0 a1:d1 a1:d2 a1:d3 "}, CELL))
    assert "(pinned by the contract), observed 'a1:d0 a1:d1 '" in text


def _after_events_history():
    """Crash after N frames while the handler ran on: the server persisted d2, d3 of attempt 1
    that the client never saw live (last_seq_before = 5)."""
    history = crash_history()
    history.faults[0].trigger = "after_events:5"
    history.faults[0].last_seq_before = 5
    history.calls[0].frames = history.calls[0].frames[:6]
    return history


def test_reset_after_unseen_pre_crash_tail_is_accepted_for_after_events():
    history = _after_events_history()
    assert check_replay(history, {"reset_event": True, "keeps_live": True}, CELL) == []


def test_reset_after_unseen_tail_is_accepted_for_held_too():
    """At ``held`` the client may still miss frames the handler emitted before blocking (e.g.
    item-done events after the held delta): the crashed attempt's own tail is not a violation."""
    history = _after_events_history()
    history.faults[0].trigger = "held"
    assert check_replay(history, {"reset_event": True}, CELL) == []


@pytest.mark.parametrize("trigger", ["after_events:5", "held"])
def test_recovered_event_before_reset_is_caught(trigger):
    history = _after_events_history()
    history.faults[0].trigger = trigger
    call = replay(history)
    call.frames[6] = retype(call.frames[6], delta="a2:d0 ")
    [v] = check_replay(history, {"reset_event": True}, CELL)
    assert "first event after seq 5 of the recovered attempt, observed response.output_text.delta#6 before response.in_progress#8" in v.message


def test_replay_terminal_null_and_error_terminal():
    history = crash_history()
    for call in history.calls_named("replay"):
        call.frames = [f for f in call.frames if f.type != "response.completed"]
    assert check_replay(history, {"terminal": None}, CELL) == []
    history = normal_history()
    text = messages(check_replay(history, {"terminal": None}, make_cell()))
    assert "expected no terminal event, observed response.completed#13" in text
    for call in history.calls_named("replay"):
        call.frames[-1] = retype(call.frames[-1], type="error")
    assert check_replay(history, {"terminal": "error"}, make_cell()) == []


def test_malformed_cursor():
    history = make_history(normal_run(), replays=())
    call = json_call("replay", 400, {"error": {"param": "starting_after"}})
    call.params = {"stream": "true", "starting_after": "abc", "cursor_label": str({"raw": "abc"})}
    history.calls.append(call)
    expect = {"after": [{"raw": "abc"}]}
    assert check_replay(history, expect, make_cell({"http": {"replay": 400}})) == []
    call.status, call.frames = 200, list(normal_run().live)
    [v] = check_replay(history, expect, make_cell({"http": {"replay": 400}}))
    assert "expected a malformed cursor 'abc' to be refused, observed 200" in v.message


def test_empty_replay_past_end_needs_a_known_terminal():
    history = make_history(normal_run(), replays=(1000000,))
    assert check_replay(history, {"after": [1000000]}, make_cell()) == []
    history.calls[0].frames = history.calls[0].frames[:3]  # live stream cut: terminal seq unknown
    [v] = check_replay(history, {"after": [1000000]}, make_cell())
    assert "cursor 1000000 is past the end, observed an empty replay" in v.message


# ------------------------------------------------------------------ terminal_status (B11, B37)

CANCELLED = {"terminal": "response.failed", "terminal_status": "cancelled"}


def cancelled_history():
    return make_history(cancelled_run(), replays=("start", 2))


def _set_terminal(frames, **response_changes):
    """Replace the last frame's embedded response with a copy changed by ``response_changes``
    (a value of ``...`` removes the key)."""
    last = frames[-1]
    payload = json.loads(last.data)
    response = dict(payload.get("response") or {})
    for key, value in response_changes.items():
        if value is ...:
            response.pop(key, None)
        else:
            response[key] = value
    frames[-1] = retype(last, response=response)


def test_a_cancel_may_end_with_either_terminal_the_documents_allow():
    """§6: B11 says response.failed (status cancelled), the resilience helpers response.cancelled;
    a contract lists both and either passes, but no other type does."""
    either = {"terminal": ["response.failed", "response.cancelled"], "terminal_status": "cancelled"}
    history = cancelled_history()
    assert check_stream(history, either, make_cell()) == []
    for call in history.calls:
        if call.frames:
            call.frames[-1] = retype(call.frames[-1], type="response.cancelled")
    assert check_stream(history, either, make_cell()) == []
    assert check_replay(history, dict(either, after=["start", 2]), make_cell()) == []
    assert "expected terminal response.failed, observed response.cancelled#8" in messages(check_stream(history, CANCELLED, make_cell()))
    for call in history.calls:
        if call.frames:
            call.frames[-1] = retype(call.frames[-1], type="response.completed")
    text = messages(check_stream(history, either, make_cell()))
    assert "expected terminal response.failed or response.cancelled, observed response.completed#8" in text


def test_terminal_status_passes_on_a_cancelled_stream_and_replays():
    history = cancelled_history()
    assert check_stream(history, CANCELLED, make_cell()) == []
    assert check_replay(history, dict(CANCELLED, after=["start", 2]), make_cell()) == []
    assert check_stream(normal_history(), {"terminal_status": "completed"}, make_cell()) == []
    assert check_replay(normal_history(), {"after": ["start", "mid"], "terminal_status": "completed"}, make_cell()) == []


@pytest.mark.parametrize("observed", ["in_progress", "completed", "failed"])
def test_stream_terminal_status_wrong(observed):
    history = cancelled_history()
    _set_terminal(history.calls[0].frames, status=observed)
    [v] = check_stream(history, CANCELLED, make_cell())
    assert v.check == "stream"
    assert (
        f"live stream: expected terminal response.failed#8 to carry response.status 'cancelled', "
        f"observed '{observed}'" in v.message
    ), v.message


def test_stream_terminal_status_response_object_missing_or_not_a_mapping():
    history = cancelled_history()
    live = history.calls[0].frames
    live[-1] = retype(live[-1], response=None)
    [v] = check_stream(history, CANCELLED, make_cell())
    assert "expected terminal response.failed#8 to carry a response object with status 'cancelled', observed none" in v.message
    live[-1] = frame({"type": "response.failed", "sequence_number": 8})  # no response key at all
    [v] = check_stream(history, CANCELLED, make_cell())
    assert "expected terminal response.failed#8 to carry a response object with status 'cancelled', observed none" in v.message
    live[-1] = retype(live[-1], response="cancelled")
    [v] = check_stream(history, CANCELLED, make_cell())
    assert "to carry a response object" in v.message and "observed str 'cancelled'" in v.message


def test_stream_terminal_status_without_a_status_key():
    history = cancelled_history()
    _set_terminal(history.calls[0].frames, status=...)
    [v] = check_stream(history, {"terminal_status": "cancelled"}, make_cell())
    assert "to carry response.status 'cancelled', observed no status key" in v.message


def test_stream_terminal_status_when_the_stream_was_cut_or_empty():
    history = cancelled_history()
    del history.calls[0].frames[-1]
    [v] = check_stream(history, {"terminal_status": "cancelled"}, make_cell())
    assert "expected a terminal event last, carrying response.status 'cancelled'; the last event is response.output_text.delta#7" in v.message
    history.calls[0].frames = []
    [v] = check_stream(history, {"terminal_status": "cancelled"}, make_cell())
    assert "observed no events" in v.message


def test_stream_terminal_status_catches_a_completed_stream_where_cancelled_is_expected():
    """The type check alone passes a server that ends a cancelled stream with response.failed
    but embeds the wrong status; and a plain response.completed fails both checks."""
    history = normal_history()
    text = messages(check_stream(history, CANCELLED, make_cell()))
    assert "expected terminal response.failed, observed response.completed#13" in text
    assert "to carry response.status 'cancelled', observed 'completed'" in text


def test_replay_terminal_status_wrong_in_each_replay():
    history = cancelled_history()
    for call in history.calls_named("replay"):
        _set_terminal(call.frames, status="in_progress")
    violations = check_replay(history, dict(CANCELLED, after=["start", 2]), make_cell())
    assert len(violations) == 2, messages(violations)
    assert "replay #1 from start: expected terminal response.failed#8 to carry response.status 'cancelled', observed 'in_progress'" in violations[0].message
    assert "replay #2 after 2: expected terminal response.failed#8" in violations[1].message


def test_replay_terminal_status_missing_response_object():
    history = cancelled_history()
    replay_frames = replay(history).frames
    replay_frames[-1] = retype(replay_frames[-1], response=None)
    [v] = check_replay(history, {"after": ["start"], "terminal_status": "cancelled"}, make_cell())
    assert "replay #1 from start: expected terminal response.failed#8 to carry a response object" in v.message


def test_replay_terminal_status_not_judged_on_an_empty_replay_past_the_end():
    history = make_history(cancelled_run(), replays=(1000000,))
    assert check_replay(history, {"after": [1000000], "terminal_status": "cancelled"}, make_cell()) == []


def test_asserting_options_ignore_cursors_and_options_turned_off():
    assert asserting_options({"after": ["start"], "single_created": False}) == []
    assert asserting_options({"order": False, "single_created": False}) == []
    assert asserting_options({"after": ["start"], "gap_free": False, "reset_event": False, "keeps_live": False}) == []
    assert asserting_options({"terminal": None}) == ["terminal"]
    assert asserting_options({"order": False, "terminal_status": "cancelled"}) == ["terminal_status"]
    assert asserting_options({"after": ["start"], "reset_event": "a1:d0 "}) == ["reset_event"]
    assert asserting_options(None) == [] and asserting_options(True) == []
