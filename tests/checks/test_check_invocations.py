"""Invocations checkers (cursor, entry_modes, resume, readers, steering, queue, output) fed broken histories."""

from __future__ import annotations

import copy

import pytest

from conformance.checks import run_checks
from conformance.checks.invocations import (
    check_cursor,
    check_entry_modes,
    check_queue,
    check_readers,
    check_resume,
    check_steering,
    steer_stop,
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
    queue_history,
    retext,
    snap_call,
    steer_history,
    with_id,
)

KILL = FaultSpec("sigkill", "held")
STEER = FaultSpec("steer", "held")
QUEUE = FaultSpec("queue", "held")
STEER_SCRIPT = {"deltas": 6, "checkpoint_every": 2, "hold_at": 2}
WOUND_DOWN = {"status": "superseded", "output_text": "a1:d0 a1:d1 a1:d2 a1:d3 ", "cursor": {"terminal": "invocation.superseded"}}
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
    steer = dict(WOUND_DOWN, steering={"inputs": 2})
    assert run_checks(steer_history(2), inv_cell(steer, fault=STEER, script=STEER_SCRIPT)) == []
    assert run_checks(steer_history(1), inv_cell(dict(steer, steering=True), fault=STEER, script=STEER_SCRIPT)) == []
    queue = dict(WOUND_DOWN, queue={"inputs": 2}, attempts=1, entry_modes=["fresh"])
    assert run_checks(queue_history(2), inv_cell(queue, fault=QUEUE, script=STEER_SCRIPT)) == []
    crashed = dict(queue, output_text="a1:d0 a1:d1 a1:d2 ", exit="killed")
    for n in (1, 2, 3):
        assert run_checks(queue_history(n, "sigkill"), inv_cell(dict(crashed, queue={"inputs": n}), fault=KILL, script=STEER_SCRIPT)) == []


def test_good_history_survives_json_round_trip():
    history = steer_history(2)
    again = History.from_json(history.to_json())
    assert again.steered[1].observations == history.steered[1].observations
    steer = dict(WOUND_DOWN, steering={"inputs": 2})
    assert run_checks(again, inv_cell(steer, fault=STEER, script=STEER_SCRIPT)) == []
    queued = History.from_json(queue_history(2, "sigkill").to_json())
    assert check_queue(queued, {"inputs": 2}, inv_cell(fault=KILL, script=STEER_SCRIPT)) == []
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


def steering(h, expected=True):
    return msgs(check_steering(h, expected, inv_cell(fault=STEER, script=STEER_SCRIPT)))


def test_steer_stop_is_the_first_non_final_boundary_after_the_hold():
    assert steer_stop({"deltas": 6, "checkpoint_every": 2, "hold_at": 2}) == 3
    assert steer_stop({"deltas": 6, "checkpoint_every": 2, "hold_at": 3}) is None  # only d5's, the last, is left
    assert steer_stop({"deltas": 6, "checkpoint_every": 2, "hold_at": 1}) == 3  # d1's boundary came before the hold
    assert steer_stop({"deltas": 6, "checkpoint_every": 2, "hold_at": -1}) == 1
    assert steer_stop({"deltas": 6, "hold_at": 2}) is None  # no checkpoints: it runs to its end
    assert steer_stop({"deltas": 6, "checkpoint_every": 3, "hold_at": 0}) == 2


def test_steering_first_stopped_at_once_while_held():
    """The old rule (a held turn is superseded at once): no 'released', stopped at d2, not at d3's boundary."""
    h = steer_history(1)
    h.markers = h.markers[: h.markers.index("released")] + ["interrupted"]
    h.final["output"] = "a1:d0 a1:d1 a1:d2 "
    replay = first(h, "replay")
    replay.frames = [f for f in replay.frames if f.type != "invocation.delta" or f.json["index"] < 3]
    replay.frames = [f for f in replay.frames if not (f.type == "invocation.checkpoint" and f.json["index"] == 3)]
    text = steering(h)
    assert "the first input: expected its held step to go on until released" in text
    assert "a steer must not stop a held turn" in text
    assert "expected its markers to end 'checkpoint 3', 'interrupted'" in text
    assert "expected output 'a1:d0 a1:d1 a1:d2 a1:d3 ' (up to its boundary)" in text
    assert "expected its transcript to end with delta 3, invocation.checkpoint {index: 3}" in text


def test_steering_first_ran_past_its_boundary_or_completed():
    h = steer_history(1)
    h.final["status"] = "completed"
    h.markers[-1:] = ["delta 4", "delta 5", "checkpoint 5", "done"]
    text = steering(h)
    assert "expected it to wind down at its next checkpoint boundary after the steer (checkpoint 3) and end superseded, observed status 'completed'" in text
    assert "expected its markers to end 'checkpoint 3', 'interrupted'" in text
    assert "first input transcript: expected terminal invocation.superseded" not in text  # the transcript is still right


def test_steering_without_a_boundary_left_the_first_must_complete():
    script = {"deltas": 6, "hold_at": 3}
    h = steer_history(1)
    h.script = {**script, "tag": "t1"}
    text = msgs(check_steering(h, True, inv_cell(fault=STEER, script=script)))
    assert "run to its end (no checkpoint boundary left before its last delta) and end completed, observed status 'superseded'" in text
    assert "expected it to run to its end (marker 'done' last, never 'interrupted')" in text
    assert "first input transcript: expected terminal invocation.completed, observed invocation.superseded" in text


def test_steering_steered_input_not_queued_or_not_resumed():
    h = steer_history(1)
    h.steered[0].post_status = "in_progress"
    replay = first(h, "steer_replay", steer=1)
    replay.frames[0] = retext(replay.frames[0], entry_mode="fresh")
    text = steering(h)
    assert "steered input 1: expected the POST to answer status queued, observed 'in_progress'" in text
    assert "expected one invocation.started with entry_mode resumed, attempt 1" in text


def test_steering_steered_input_ran_twice_or_lost():
    h = steer_history(1)
    h.steered[0].markers.insert(3, h.steered[0].markers[0])
    assert "expected exactly one handler start, observed 2" in steering(h)
    h = steer_history(1)
    h.steered[0].final["status"] = "failed"
    assert "steered input 1: expected final status completed, observed 'failed'" in steering(h)
    h = steer_history(2)
    h.steered.pop()
    assert "expected 2 steered input(s), observed 1" in steering(h, STEERING)


def test_steering_one_turn_at_a_time_and_chain():
    h = steer_history(2)
    h.steered[0].observations = ["when input 1 was 'held 2': the first input had status 'in_progress'"]
    assert "one turn at a time: expected the turn before steered input 1 terminal" in steering(h, STEERING)
    h = steer_history(2)
    h.steered[0].final["status"] = "completed"
    h.steered[0].markers[-1:] = ["delta 4", "delta 5", "checkpoint 5", "done"]
    text = steering(h, STEERING)
    assert "steered input 1: expected final status superseded, observed 'completed'" in text
    assert "steered input 1: expected its markers to end 'checkpoint 3', 'interrupted'" in text


def test_steering_steered_live_stream_disagrees_with_its_transcript():
    h = steer_history(1)
    live = first(h, "steer_live", steer=1)
    live.frames[1] = retext(live.frames[1], text="a1:d9 ")
    assert "steered input 1: its live stream" in steering(h)


def test_steering_other_session():
    h = steer_history(1)
    h.steered[0].final["session_id"] = "sess-2"
    assert "expected session_id 'sess-1', observed 'sess-2'" in steering(h)


# ------------------------------------------------------------------ queue


def queue(h, n=2, fault=QUEUE):
    return msgs(check_queue(h, {"inputs": n}, inv_cell(fault=fault, script=STEER_SCRIPT)))


@pytest.mark.parametrize("fault", [None, "sigkill"])
def test_queue_duplicate_delivery(fault):
    """Queued input 1 re-delivered after the crash: a second start, a second started event and terminal."""
    h = queue_history(2, fault)
    r = h.steered[0]
    r.markers = r.markers + list(r.markers)
    replay = first(h, "steer_replay", steer=1)
    again = [with_id(f, int(f.id) + len(replay.frames)) for f in replay.frames]
    replay.frames = replay.frames + again
    text = queue(h, fault=KILL if fault else QUEUE)
    assert "queued input 1: expected its handler to run exactly once" in text and "(delivered more than once)" in text
    assert "queued input 1: expected exactly one invocation.started {attempt: 1, entry_mode: resumed, from: 0}" in text
    assert "queued input 1: expected exactly one terminal event, observed 2" in text
    assert "queued input 1: expected one 'done' and no 'interrupted' marker" in text


def test_queue_lost_input():
    """Queued input 2 never ran after the crash: no markers, still queued, no events."""
    h = queue_history(2, "sigkill")
    r = h.steered[1]
    r.markers = []
    r.final = dict(r.final, status="queued", attempt=0, output="")
    first(h, "steer_replay", steer=2).frames = []
    h.calls = [c for c in h.calls if c.params.get("holding") != 2]
    text = queue(h, fault=KILL)
    assert "queued input 2: expected its handler to run exactly once" in text and "(lost: never delivered)" in text
    assert "queued input 2: expected its final snapshot completed, attempt 1, entry_mode resumed; observed {'status': 'queued'" in text
    assert "queued input 2: expected one terminal event (invocation.completed), observed none" in text
    assert "FIFO: no snapshot while queued input 2 held (it never held)" in text
    h = queue_history(2, "sigkill")
    h.steered.pop()
    assert "expected 2 queued input(s) POSTed on the first input's session, observed 1" in queue(h, fault=KILL)


def test_queue_fifo_violated():
    """Input 2 ran before input 1: while input 1 held, input 2 had already run."""
    h = queue_history(2, "sigkill")
    held1 = [c for c in h.calls if c.params.get("holding") == 1]
    for c in held1:
        if c.params["steer"] == 2:
            c.body["status"], c.params["starts"] = "completed", 1
    text = queue(h, fault=KILL)
    assert "FIFO: at 'input 1 held 2', queued input 2 (behind input 1) had status 'completed' and 1 start marker(s)" in text
    h = queue_history(2, "sigkill")
    for c in h.calls:
        if c.params.get("holding") == 2 and c.params["steer"] == 1:
            c.body["status"] = "in_progress"  # both at once
    assert "one at a time: at 'input 2 held 2', queued input 1 (ahead of input 2) had status 'in_progress'" in queue(h, fault=KILL)
    h = queue_history(2, "sigkill")
    for c in h.calls:
        if c.params.get("holding") == 1 and c.params["steer"] == 0:
            c.body["status"] = "in_progress"  # the first turn had not ended
    assert "one at a time: at 'input 1 held 2', the first input (ahead of input 1) had status 'in_progress'" in queue(h, fault=KILL)


def test_queue_fifo_reversed_after_a_crash():
    """The next lifetime ran input 2 first: the executor saw it start before input 1 held."""
    h = queue_history(2, "sigkill")
    h.calls = [c for c in h.calls if "holding" not in c.params]
    moment = "input 2 started before input 1 held"
    h.calls += [snap_call("inv_x", "superseded", 0, moment, 1, holding=1),
                snap_call("inv_1", "queued", 1, moment, 0, holding=1),
                snap_call("inv_2", "in_progress", 2, moment, 1, holding=1)]
    text = queue(h, fault=KILL)
    assert ("FIFO: at 'input 2 started before input 1 held', queued input 2 (behind input 1) had status 'in_progress' "
            "and 1 start marker(s); expected it still queued, never started") in text
    assert "FIFO: no snapshot while queued input 2 held (it never held)" in text


def test_queue_wrong_entry_mode():
    h = queue_history(2)
    replay = first(h, "steer_replay", steer=2)
    replay.frames[0] = retext(replay.frames[0], entry_mode="fresh")
    h.steered[1].final["entry_mode"] = "fresh"
    text = queue(h)
    assert 'queued input 2: expected exactly one invocation.started {attempt: 1, entry_mode: resumed, from: 0}, observed invocation.started#1 {"attempt": 1, "entry_mode": "fresh", "from": 0}' in text
    assert "queued input 2: expected its final snapshot completed, attempt 1, entry_mode resumed; observed {'status': 'completed', 'attempt': 1, 'entry_mode': 'fresh'}" in text


def test_queue_not_queued_together_or_not_acknowledged():
    h = queue_history(2)
    h.steered[1].post_status = "in_progress"
    for c in h.calls:
        if c.params.get("moment") == "queued" and c.params["steer"] == 1:
            c.body["status"], c.params["starts"] = "in_progress", 1  # started while the first turn still held
        if c.params.get("moment") == "queued" and c.params["steer"] == 0:
            c.body["status"] = "superseded"
    text = queue(h)
    assert "queued input 2: expected its POST to answer status queued (the session was busy), observed 'in_progress'" in text
    assert "queued input 1: expected it waiting (status queued, no handler start) once all 2 inputs were POSTed, observed status 'in_progress' and 1 start marker(s)" in text
    assert "expected the first input still in_progress (held) while the inputs were queued, observed 'superseded'" in text
    h = queue_history(2)
    h.steered[0].invocation_id = None
    assert "queued input 1: the POST was refused (no invocation id)" in queue(h)


def test_queue_output_gap_and_live_stream():
    h = queue_history(2, "sigkill")
    h.steered[0].final["output"] = "a1:d0 "
    replay = first(h, "steer_replay", steer=2)
    del replay.frames[3]
    # the live stream of input 1 disagrees with its transcript
    first(h, "steer_live", steer=1).frames = [retext(first(h, "steer_replay", steer=1).frames[0], attempt=7)]
    text = queue(h, fault=KILL)
    assert "queued input 1: expected output 'a1:d0 a1:d1 a1:d2 a1:d3 a1:d4 a1:d5 ', observed 'a1:d0 '" in text
    assert "queued input 2: gap:" in text
    assert "queued input 1: its live stream" in text


def test_queue_first_input_wind_down_and_no_rerun_after_a_crash():
    h = queue_history(2)
    h.markers = h.markers[: h.markers.index("released")] + ["interrupted"]
    assert "the first input: expected its held step to go on until released" in queue(h)
    h = queue_history(2, "sigkill")
    h.markers += [f"start attempt=2 id={h.run_id} from=2", "delta 2", "held 2", "released", "delta 3"]
    assert "the first input: expected it never to run again or past its hold after the fault" in queue(h, fault=KILL)


def test_queue_bad_expectation_is_a_violation():
    assert "expected queue.inputs to be an integer >= 1" in msgs(check_queue(queue_history(1), {"inputs": 0}, inv_cell()))
    assert "expected queue.inputs to be an integer >= 1" in msgs(check_queue(queue_history(1), True, inv_cell()))


def test_queue_observation_labels():
    call = snap_call("inv_x", "queued", 2, "input 1 held 2", 0, holding=1)
    assert call.params == {"steer": 2, "moment": "input 1 held 2", "starts": 0, "holding": 1}


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


@pytest.mark.parametrize("key", ["cursor", "entry_modes", "resume", "readers", "steering", "queue"])
def test_garbage_history_never_raises(key):
    h = inv_history(normal())
    for c in h.calls:
        c.params = {"last_event_id": object(), "via": 3, "steer": "x"}
        for f in c.frames:
            f.data, f.id = "{not json", "NaN"
    h.final = {"status": 3, "output": 4}
    h.steered = []
    expect = {"cursor": {"terminal": 5}, "entry_modes": ["fresh"], "resume": {"from": "seen"}, "readers": 2,
              "steering": {"inputs": 1}, "queue": {"inputs": 2}}[key]
    out = run_checks(h, inv_cell({key: expect}))
    assert out and not any("checker raised" in v.message for v in out)
