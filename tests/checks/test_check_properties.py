"""Properties: any well-formed stream passes; any removal / duplication / swap breaks it."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.checks import run_checks
from conformance.checks.output import predict_output
from conformance.checks.replay import check_replay, order_problems

from .builders import SIGKILL_HELD, crash_run, make_cell, make_history, normal_run, replay_call, text_of

STRICT = {"gap_free": True, "single_created": True, "terminal": "response.completed"}
FAST = settings(max_examples=60, deadline=None)


def _history(frames):
    scn = normal_run(1)
    history = make_history(scn, replays=())
    history.calls.append(replay_call(frames, "start"))
    return history


@st.composite
def streams(draw):
    deltas = draw(st.integers(min_value=0, max_value=8))
    if draw(st.booleans()):
        hold = draw(st.integers(min_value=0, max_value=max(0, deltas - 1)))
        every = draw(st.one_of(st.none(), st.integers(min_value=1, max_value=4)))
        if deltas == 0:
            return normal_run(0).live
        return crash_run(deltas, hold, checkpoint_every=every).all_frames
    return normal_run(deltas).live


@FAST
@given(streams())
def test_well_formed_stream_passes(frames):
    assert check_replay(_history(frames), STRICT, make_cell()) == []
    assert order_problems(frames) == []


@FAST
@given(streams(), st.data())
def test_removing_any_frame_is_caught(frames, data):
    i = data.draw(st.integers(min_value=0, max_value=len(frames) - 1))
    broken = frames[:i] + frames[i + 1 :]
    assert check_replay(_history(broken), STRICT, make_cell())


@FAST
@given(streams(), st.data())
def test_duplicating_any_frame_is_caught(frames, data):
    i = data.draw(st.integers(min_value=0, max_value=len(frames) - 1))
    broken = frames[: i + 1] + frames[i:]
    violations = check_replay(_history(broken), STRICT, make_cell())
    assert any("duplicate sequence_number" in v.message for v in violations)


@FAST
@given(streams(), st.data())
def test_swapping_any_two_frames_is_caught(frames, data):
    i = data.draw(st.integers(min_value=0, max_value=len(frames) - 2))
    j = data.draw(st.integers(min_value=i + 1, max_value=len(frames) - 1))
    broken = list(frames)
    broken[i], broken[j] = broken[j], broken[i]
    violations = check_replay(_history(broken), STRICT, make_cell())
    assert any("sequence_number decreases" in v.message for v in violations)


@FAST
@given(
    deltas=st.integers(min_value=1, max_value=10),
    data=st.data(),
)
def test_crash_scenarios_pass_all_checks_and_stale_text_is_named(deltas, data):
    hold = data.draw(st.integers(min_value=0, max_value=deltas - 1))
    every = data.draw(st.one_of(st.none(), st.integers(min_value=1, max_value=deltas)))
    scn = crash_run(deltas, hold, checkpoint_every=every)
    expect = {
        "status": "completed",
        "output": "full",
        "attempts": 2,
        "exit": "killed",
        "replay": dict(STRICT, after=["start", "mid"], reset_event=True, keeps_live=True),
        "stream": {"terminal": None, "order": True, "single_created": True},
        "persisted": True,
    }
    cell = make_cell(expect, fault=SIGKILL_HELD, script={"deltas": deltas})
    history = make_history(scn, replays=("start", "mid"))
    assert run_checks(history, cell) == []
    # the same final output as if attempt 1 had never been replaced: stale text is named
    committed = predict_output(scn.markers, deltas).starts[1].start_from
    if committed < deltas:
        history.final["output"][-1]["content"][0]["text"] = text_of(1, range(committed, deltas))
        messages = [v.message for v in run_checks(history, cell)]
        assert any("stale text from attempt 1" in m for m in messages), messages
