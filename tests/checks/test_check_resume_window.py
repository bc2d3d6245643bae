"""Resumes under a retention window (docs/protocol.md §7.3): when the cell allows the whole
transcript to be refused (``http.replay: 410``), the resumes are judged against the lowest 200
stream that is whole from its cursor; never silently without a reference."""

from __future__ import annotations

from conformance.checks.invocations import check_resume

from .invocation_builders import first, inv_cell, inv_history, msgs, normal, resume_call, with_id

WINDOW = {"resume": {"from": [5, 7, 8]}, "http": {"resume": 200, "replay": 410}}


def _window_history(run):
    """Retention 3 over 8 events: the full replay and the live GET answered 410 (no frames)."""
    history = inv_history(run, resumes=[5, 7, 8])
    for call in history.calls:
        if call.name in ("replay", "live"):
            call.status, call.frames = 410, []
    return history


def test_resumes_inside_the_window_pass_against_the_lowest_whole_resume() -> None:
    history = _window_history(normal())
    assert check_resume(history, WINDOW["resume"], inv_cell(WINDOW)) == []


def test_a_resume_that_disagrees_with_the_window_reference_fails() -> None:
    run = normal()
    history = _window_history(run)
    late = first(history, "resume", last_event_id="7", via="query")
    late.frames = [with_id(f, int(f.id)) for f in run.frames if int(f.id) >= 7]  # includes its own cursor
    assert "resume" in msgs(check_resume(history, WINDOW["resume"], inv_cell(WINDOW)))


def test_without_http_replay_allowing_the_refusal_there_is_no_reference() -> None:
    history = _window_history(normal())
    cell = inv_cell({"resume": {"from": [5, 7, 8]}, "http": {"resume": 200}})
    assert "whole transcript" in msgs(check_resume(history, cell.expect["resume"], cell))


def test_a_gapped_lowest_resume_is_no_reference_and_fails_against_the_next_whole_one() -> None:
    run = normal()
    history = _window_history(run)
    for via in ("header", "query"):
        low = first(history, "resume", last_event_id="5", via=via)
        low.frames = [f for f in low.frames if f.id != "7"]
    text = msgs(check_resume(history, WINDOW["resume"], inv_cell(WINDOW)))
    assert "resume after 5 (header): expected ids [8], observed [6, 8]" in text
    assert resume_call(run, 5).frames
