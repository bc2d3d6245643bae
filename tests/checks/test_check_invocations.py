"""Invocations checkers (cursor, entry_modes, resume, readers, steering, output) fed broken histories."""

from __future__ import annotations

import copy

import pytest

from conformance.checks import run_checks
from conformance.checks.invocations import (
    check_cursor,
    check_entry_modes,
    check_readers,
    check_resume,
    check_steering,
)
from conformance.checks.output import check_output, check_output_text
from conformance.history import History
from conformance.model import FaultSpec

from .invocation_builders import (
    crash,
    first,
    inv_cell,
    inv_history,
    iframe,
    jcall,
    msgs,
    normal,
    retext,
    steer_history,
    with_id,
)

KILL = FaultSpec("sigkill", "held")
STEER = FaultSpec("steer", "held")
CURSOR = {"terminal": "invocation.completed"}
FULL = {"status": "completed", "output": "full", "cursor": CURSOR, "resume": {"from": "seen"}, "attempts": 1,
        "entry_modes": ["fresh"], "readers": 3, "http": {"create": 200, "live": 200, "get": 200}}
CRASH = {"status": "completed", "output": "full", "cursor": CURSOR, "resume": {"from": "seen"}, "attempts": 2,
         "entry_modes": ["fresh", "recovered"], "exit": "killed", "readers": 2}


# ------------------------------------------------------------------ good histories


def test_good_histories_pass_every_checker():
    assert run_checks(inv_history(normal(), readers=3), inv_cell(FULL)) == []
    for every in (None, 1, 2, 3):
        assert run_checks(inv_history(crash(checkpoint_every=every), readers=2), inv_cell(CRASH, fault=KILL)) == []
    three = dict(CRASH, attempts=3, entry_modes=["fresh", "recovered", "recovered"], readers=1)
    assert run_checks(inv_history(crash(attempts=3)), inv_cell(three, fault=KILL)) == []
    steer = {"status": "superseded", "steering": {"inputs": 2}, "cursor": {"terminal": "invocation.superseded"}}
    assert run_checks(steer_history(2), inv_cell(steer, fault=STEER)) == []
    assert run_checks(steer_history(1), inv_cell(dict(steer, steering=True), fault=STEER)) == []


def test_good_history_survives_json_round_trip():
    history = steer_history(2)
    again = History.from_json(history.to_json())
    assert again.steered[1].observations == history.steered[1].observations
    steer = {"status": "superseded", "steering": {"inputs": 2}, "cursor": {"terminal": "invocation.superseded"}}
    assert run_checks(again, inv_cell(steer, fault=STEER)) == []
    assert again.live_frames() and all(f.event_id for f in again.live_frames())


# ------------------------------------------------------------------ cursor


def transcript(history):
    return first(history, "replay")


def test_cursor_gap_in_transcript():
    h = inv_history(normal())
    del transcript(h).frames[3]
    assert "gap: invocation.delta#3 then invocation.delta#5" in msgs(check_cursor(h, CURSOR, inv_cell()))


def test_cursor_duplicate_and_decreasing_ids():
    h = inv_history(normal())
    frames = transcript(h).frames
    frames.insert(4, frames[3])
    assert "duplicate id: invocation.delta#4 then invocation.delta#4" in msgs(check_cursor(h, CURSOR, inv_cell()))
    h = inv_history(normal())
    frames = transcript(h).frames
    frames[3], frames[4] = frames[4], frames[3]
    assert "id decreases" in msgs(check_cursor(h, CURSOR, inv_cell()))


def test_cursor_id_must_be_positive_int_and_match_event_id():
    h = inv_history(normal())
    frames = transcript(h).frames
    frames[2] = retext(frames[2], event_id=99)
    frames[3].id = "x3"
    text = msgs(check_cursor(h, CURSOR, inv_cell()))
    assert "data.event_id differs from the id line: invocation.delta#3 event_id=99" in text
    assert "without a positive integer id" in text


def test_cursor_foreign_invocation_id():
    h = inv_history(normal())
    transcript(h).frames[1] = retext(transcript(h).frames[1], invocation_id="inv_other")
    assert "naming another invocation" in msgs(check_cursor(h, CURSOR, inv_cell()))


def test_cursor_terminal_rules():
    h = inv_history(normal())
    frames = transcript(h).frames
    frames.append(iframe(9, "invocation.failed", error={"code": "x"}))
    assert "exactly one terminal event, observed 2" in msgs(check_cursor(h, CURSOR, inv_cell()))
    h = inv_history(normal())
    frames = transcript(h).frames
    frames[-1], frames[-2] = with_id(frames[-2], 8), with_id(frames[-1], 7)
    assert "is not the last frame" in msgs(check_cursor(h, CURSOR, inv_cell()))
    h = inv_history(normal())
    transcript(h).frames.pop()
    assert "expected one terminal event (invocation.completed), observed none" in msgs(check_cursor(h, CURSOR, inv_cell()))
    assert "expected terminal invocation.failed" in msgs(check_cursor(inv_history(normal()), {"terminal": "invocation.failed"}, inv_cell()))


def test_cursor_live_stream_that_ended_without_terminal():
    h = inv_history(normal())
    first(h, "live").frames.pop()
    assert "live: expected one terminal event" in msgs(check_cursor(h, CURSOR, inv_cell()))


def test_cursor_id_reused_for_another_event_across_restart():
    h = inv_history(crash())
    replay = transcript(h)
    # the recovered attempt re-used id 3 for its own event: the live frame #3 was rewritten
    replay.frames[2] = retext(replay.frames[2], text="a2:d1 ")
    text = msgs(check_cursor(h, CURSOR, inv_cell(fault=KILL)))
    assert "live: invocation.delta#3 was rewritten: text" in text


def test_cursor_event_seen_live_then_lost():
    h = inv_history(crash())
    replay = transcript(h)
    replay.frames = [f for f in replay.frames if f.id != "5"]
    replay.frames = [replay.frames[i] if i < 4 else with_id(replay.frames[i], i + 1) for i in range(len(replay.frames))]
    text = msgs(check_cursor(h, CURSOR, inv_cell(fault=KILL)))
    assert "was rewritten" in text or "missing from the transcript" in text


def test_cursor_without_transcript():
    h = inv_history(normal())
    h.calls = [c for c in h.calls if c.name != "replay"]
    assert "expected a 200 event stream of the whole transcript" in msgs(check_cursor(h, CURSOR, inv_cell()))


def test_cursor_resume_holds_an_event_at_or_before_its_cursor():
    h = inv_history(normal())
    call = first(h, "resume", last_event_id="3", via="header")
    call.frames.insert(0, copy.copy(transcript(h).frames[2]))
    assert "resume after 3 (header): event(s) at or before the cursor 3" in msgs(check_cursor(h, CURSOR, inv_cell()))


# ------------------------------------------------------------------ entry modes


def test_entry_modes_wrong_sequence():
    h = inv_history(crash())
    assert "expected entry modes ['fresh'], observed ['fresh', 'recovered']" in msgs(check_entry_modes(h, ["fresh"], inv_cell()))
    replay = transcript(h)
    i = next(i for i, f in enumerate(replay.frames) if f.type == "invocation.started" and '"attempt": 2' in f.data)
    replay.frames[i] = retext(replay.frames[i], entry_mode="fresh", attempt=3)
    text = msgs(check_entry_modes(h, ["fresh", "recovered"], inv_cell()))
    assert "observed ['fresh', 'fresh']" in text and "attempts 1..2 in order, observed [1, 3]" in text


def test_entry_modes_from_disagrees_with_markers():
    h = inv_history(crash(checkpoint_every=2))
    replay = transcript(h)
    i = next(i for i, f in enumerate(replay.frames) if f.type == "invocation.started" and '"attempt": 2' in f.data)
    replay.frames[i] = retext(replay.frames[i], **{"from": 0})
    assert "says from=0, the start marker of attempt 2 says from=4" in msgs(check_entry_modes(h, ["fresh", "recovered"], inv_cell()))


def test_entry_modes_bad_expectation_is_a_violation():
    assert "expected a list" in msgs(check_entry_modes(inv_history(normal()), ["sideways"], inv_cell()))


# ------------------------------------------------------------------ resume


def test_resume_missing_a_seen_cursor():
    h = inv_history(normal())
    h.calls = [c for c in h.calls if not (c.name == "resume" and c.params.get("last_event_id") == "4" and c.params["via"] == "query")]
    assert "expected a resume after 4 by query; none was made" in msgs(check_resume(h, {"from": "seen"}, inv_cell()))


def test_resume_gap_duplicate_and_rewrite():
    h = inv_history(normal())
    call = first(h, "resume", last_event_id="2", via="query")
    del call.frames[1]
    assert "missing [4]" in msgs(check_resume(h, {"from": "seen"}, inv_cell()))
    h = inv_history(normal())
    call = first(h, "resume", last_event_id="2", via="header")
    call.frames.insert(1, call.frames[0])
    assert "duplicated [3]" in msgs(check_resume(h, {"from": "seen"}, inv_cell()))
    h = inv_history(normal())
    call = first(h, "resume", last_event_id="0", via="header")
    call.frames[2] = retext(call.frames[2], text="a9:d1 ")
    text = msgs(check_resume(h, {"from": "seen"}, inv_cell()))
    assert "resume after 0 (header): invocation.delta#3 differs from the transcript: text" in text


def test_resume_returns_events_at_or_before_cursor():
    h = inv_history(normal())
    call = first(h, "resume", last_event_id="5", via="header")
    call.frames.insert(0, copy.copy(transcript(h).frames[4]))
    assert "not after the cursor or not in the transcript [5]" in msgs(check_resume(h, {"from": "seen"}, inv_cell()))


def test_resume_non_200_only_when_allowed():
    h = inv_history(normal(), resumes=[1])
    for c in h.calls_named("resume"):
        c.status, c.frames, c.content_type = 410, [], "application/json"
    assert "expected 200 with the rest of the transcript, observed 410" in msgs(check_resume(h, {"from": [1]}, inv_cell()))
    allowed = inv_cell({"http": {"resume": 410}})
    assert check_resume(h, {"from": [1]}, allowed) == []


def test_resume_malformed_cursor_answered_200():
    h = inv_history(normal(), resumes=[])
    call = jcall("resume", 200, None)
    call.content_type = "text/event-stream"
    call.params = {"last_event_id": "abc", "via": "query"}
    h.calls.append(call)
    assert "expected a malformed cursor to be refused (400), observed 200" in msgs(
        check_resume(h, {"from": ["abc"], "via": "query"}, inv_cell({"http": {"resume": 400}})))


def test_resume_after_crash_only_from_ids_seen_before_the_fault():
    h = inv_history(crash())
    assert check_resume(h, {"from": "seen"}, inv_cell(fault=KILL)) == []
    h.calls = [c for c in h.calls if not (c.name == "resume" and c.params.get("last_event_id") == "5")]
    assert "expected a resume after 5 by header" in msgs(check_resume(h, {"from": "seen"}, inv_cell(fault=KILL)))


# ------------------------------------------------------------------ readers


def test_readers_count_and_divergence():
    h = inv_history(normal(), readers=3)
    assert check_readers(h, 3, inv_cell()) == []
    assert "expected 4 live readers, observed 3" in msgs(check_readers(h, 4, inv_cell()))
    reader = first(h, "reader", reader=2)
    reader.frames[2], reader.frames[3] = reader.frames[3], reader.frames[2]
    assert "reader 2: expected the transcript's events in order, diverges at position 2" in msgs(check_readers(h, 3, inv_cell()))


def test_reader_with_other_payload_or_short_stream():
    h = inv_history(normal(), readers=2)
    reader = first(h, "reader", reader=2)
    reader.frames[1] = retext(reader.frames[1], text="zz ")
    assert "diverges at position 1" in msgs(check_readers(h, 2, inv_cell()))
    h = inv_history(normal(), readers=2)
    first(h, "reader", reader=2).frames.pop()
    assert "reader 2: ended after 7 of the transcript's 8 events" in msgs(check_readers(h, 2, inv_cell()))


# ------------------------------------------------------------------ steering


STEERING = {"inputs": 2}


def test_steering_first_not_superseded():
    h = steer_history(1)
    h.final["status"] = "completed"
    h.markers.append("done")
    text = msgs(check_steering(h, True, inv_cell(fault=STEER)))
    assert "expected the first input superseded, observed completed" in text
    assert "interrupted and never done" in text


def test_steering_steered_input_not_queued_or_not_resumed():
    h = steer_history(1)
    h.steered[0].post_status = "in_progress"
    replay = first(h, "steer_replay", steer=1)
    replay.frames[0] = retext(replay.frames[0], entry_mode="fresh")
    text = msgs(check_steering(h, True, inv_cell(fault=STEER)))
    assert "steered input 1: expected the POST to answer status queued, observed 'in_progress'" in text
    assert "expected one invocation.started with entry_mode resumed, attempt 1" in text


def test_steering_steered_input_ran_twice_or_lost():
    h = steer_history(1)
    h.steered[0].markers.insert(3, h.steered[0].markers[0])
    assert "expected exactly one handler start, observed 2" in msgs(check_steering(h, True, inv_cell(fault=STEER)))
    h = steer_history(1)
    h.steered[0].final["status"] = "failed"
    assert "steered input 1: expected final status completed, observed 'failed'" in msgs(check_steering(h, True, inv_cell(fault=STEER)))
    h = steer_history(2)
    h.steered.pop()
    assert "expected 2 steered input(s), observed 1" in msgs(check_steering(h, STEERING, inv_cell(fault=STEER)))


def test_steering_one_turn_at_a_time_and_chain():
    h = steer_history(2)
    h.steered[0].observations = ["when input 1 was 'held 3': the first input had status 'in_progress'"]
    assert "one turn at a time: expected the turn before steered input 1 terminal" in msgs(check_steering(h, STEERING, inv_cell(fault=STEER)))
    h = steer_history(2)
    h.steered[0].final["status"] = "completed"
    h.steered[0].markers.append("done")
    text = msgs(check_steering(h, STEERING, inv_cell(fault=STEER)))
    assert "steered input 1: expected final status superseded, observed 'completed'" in text
    assert "steered input 1: expected its handler interrupted by the next steer and never done" in text


def test_steering_steered_live_stream_disagrees_with_its_transcript():
    h = steer_history(1)
    live = first(h, "steer_live", steer=1)
    live.frames[1] = retext(live.frames[1], text="a1:d9 ")
    assert "steered input 1: its live stream" in msgs(check_steering(h, True, inv_cell(fault=STEER)))


def test_steering_other_session():
    h = steer_history(1)
    h.steered[0].final["session_id"] = "sess-2"
    assert "expected session_id 'sess-1', observed 'sess-2'" in msgs(check_steering(h, True, inv_cell(fault=STEER)))


# ------------------------------------------------------------------ output (profile-aware)


def test_output_of_an_invocation_is_its_output_string():
    h = inv_history(crash(checkpoint_every=2))
    assert check_output(h, "full", inv_cell(fault=KILL)) == []
    assert check_output_text(h, "a1:d0 a1:d1 a1:d2 a1:d3 a2:d4 a2:d5 ", inv_cell(fault=KILL)) == []
    h.final["output"] = "a2:d0 a2:d1 a2:d2 a2:d3 a2:d4 a2:d5 "
    text = msgs(check_output(h, "full", inv_cell(fault=KILL)))
    assert "text from attempt 2 for d0 d1 d2 d3 where attempt 1 checkpointed them" in text
    h.final["output"] = ["not", "a string"]
    assert "observed ''" in msgs(check_output_text(h, "x", inv_cell()))


@pytest.mark.parametrize("key", ["cursor", "entry_modes", "resume", "readers", "steering"])
def test_garbage_history_never_raises(key):
    h = inv_history(normal())
    for c in h.calls:
        c.params = {"last_event_id": object(), "via": 3, "steer": "x"}
        for f in c.frames:
            f.data, f.id = "{not json", "NaN"
    h.final = {"status": 3, "output": 4}
    h.steered = []
    expect = {"cursor": {"terminal": 5}, "entry_modes": ["fresh"], "resume": {"from": "seen"}, "readers": 2,
              "steering": {"inputs": 1}}[key]
    out = run_checks(h, inv_cell({key: expect}))
    assert out and not any("checker raised" in v.message for v in out)
