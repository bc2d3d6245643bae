"""``stopped`` (markers) and ``one_terminal`` (every stream, past the terminal): each fed a
broken history must fail, and the realistic good one must pass."""

from __future__ import annotations

import copy

from conformance.checks.handler import check_stopped
from conformance.checks.terminal import TERMINAL_LABEL, check_one_terminal
from conformance.history import History

from .builders import (
    RID,
    cancelled_run,
    frame,
    make_cell,
    make_history,
    messages,
    normal_run,
    replay_call,
    response_obj,
    with_seq,
)


# ------------------------------------------------------------------------------------------ stopped
def test_stopped_true_passes_on_an_interrupted_handler_and_fails_on_one_that_ran_through() -> None:
    cell = make_cell({"stopped": True})
    assert check_stopped(make_history(cancelled_run()), True, cell) == []
    ran_through = make_history(normal_run())
    violations = check_stopped(ran_through, True, cell)
    assert violations and "ran to its end ('done')" in messages(violations)


def test_stopped_false_fails_when_the_handler_was_interrupted() -> None:
    cell = make_cell({"stopped": False})
    assert check_stopped(make_history(normal_run()), False, cell) == []
    violations = check_stopped(make_history(cancelled_run()), False, cell)
    assert violations and "observed 'interrupted'" in messages(violations)


def test_stopped_interrupted_then_done_counts_as_stopped() -> None:
    """Invocations §7.7: a turn held after its last delta is stopped, then completes (done)."""
    history = make_history(normal_run())
    history.markers = history.markers[:-1] + ["held 5", "interrupted", "done"]
    assert check_stopped(history, True, make_cell({"stopped": True})) == []
    assert check_stopped(history, False, make_cell({"stopped": False}))


def test_stopped_without_any_start_marker_is_not_judged_as_a_pass() -> None:
    history = make_history(normal_run())
    history.markers = []
    assert "never started" in messages(check_stopped(history, False, make_cell({"stopped": False})))
    assert check_stopped(make_history(normal_run()), "yes", make_cell())


# ------------------------------------------------------------------------------------------ one_terminal
def _terminal_history(scn) -> History:
    """Live stream + replay from start + the executor's replay from the terminal's seq."""
    history = make_history(scn)
    terminal_seq = max(f.seq for f in scn.all_frames)
    history.calls.insert(2, replay_call(scn.all_frames, TERMINAL_LABEL, terminal_seq))
    return history


def test_one_terminal_passes_on_a_normal_and_a_cancelled_response() -> None:
    for scn in (normal_run(), cancelled_run()):
        history = _terminal_history(scn)
        assert [c.params.get("cursor_label") for c in history.calls if c.name == "replay"] == ["start", TERMINAL_LABEL]
        assert check_one_terminal(history, True, make_cell({"one_terminal": True})) == []


def test_a_second_terminal_after_a_repeated_cancel_fails() -> None:
    """The bug of issue 17: the second cancel appends response.failed at the next seq; only the
    replay from the first terminal's seq can show it."""
    scn = cancelled_run()
    history = _terminal_history(scn)
    first = max(f.seq for f in scn.all_frames)
    second = frame({"type": "response.failed", "sequence_number": first + 1, "response": response_obj("cancelled")})
    past = next(c for c in history.calls if c.params.get("cursor_label") == TERMINAL_LABEL)
    past.frames = [second]
    text = messages(check_one_terminal(history, True, make_cell({"one_terminal": True})))
    assert f"a second terminal event after the first (#{first})" in text and f"response.failed#{first + 1}" in text


def test_an_event_after_the_terminal_fails() -> None:
    scn = normal_run()
    history = _terminal_history(scn)
    last = max(f.seq for f in scn.all_frames)
    extra = frame({"type": "response.output_text.done", "sequence_number": last + 1, "text": "x"})
    next(c for c in history.calls if c.params.get("cursor_label") == TERMINAL_LABEL).frames = [extra]
    assert f"event(s) after the terminal #{last}" in messages(check_one_terminal(history, True, make_cell()))


def test_one_terminal_is_not_vacuous() -> None:
    scn = normal_run()
    no_past = make_history(scn)
    assert "nothing past the terminal was read" in messages(check_one_terminal(no_past, True, make_cell()))
    refused = _terminal_history(scn)
    past = next(c for c in refused.calls if c.params.get("cursor_label") == TERMINAL_LABEL)
    past.status, past.frames = 400, []
    assert "answered 400, not 200" in messages(check_one_terminal(refused, True, make_cell()))
    no_terminal = make_history(scn, replays=())
    no_terminal.calls[0].frames = [f for f in no_terminal.calls[0].frames if f.type != "response.completed"]
    assert "no stream of the response showed a terminal event" in messages(check_one_terminal(no_terminal, True, make_cell()))


def test_terminals_at_two_numbers_in_two_streams_fail() -> None:
    """A replay from the start that ends at another terminal number than the live stream."""
    scn = normal_run()
    history = _terminal_history(scn)
    start = next(c for c in history.calls if c.name == "replay" and c.params.get("cursor_label") == "start")
    start.frames = [copy.copy(f) for f in start.frames]
    start.frames[-1] = with_seq(start.frames[-1], start.frames[-1].seq + 1)
    assert "a second terminal event" in messages(check_one_terminal(history, True, make_cell()))
    assert RID
