"""run_checks: registry completeness, unknown keys, raising checkers, ALWAYS checks."""

from __future__ import annotations

import conformance.checks as checks
from dataclasses import replace

from conformance.checks import ALWAYS, run_checks
from conformance.expectations import registry
from conformance.expectations.builtin import EXPECTATIONS
from conformance.history import History, Violation

from .builders import SIGKILL_HELD, crash_run, make_cell, make_history, messages, normal_run

FULL_CRASH_EXPECT = {
    "status": "completed",
    "http": {"create": 200, "replay": 200, "get": 200},
    "content_type": {"create": "text/event-stream", "replay": "text/event-stream", "get": "application/json"},
    "output": "full",
    "attempts": 2,
    "exit": "killed",
    "replay": {
        "after": ["start", "mid"],
        "gap_free": True,
        "single_created": True,
        "reset_event": True,
        "keeps_live": True,
        "terminal": "response.completed",
    },
    "stream": {"terminal": None, "order": True, "single_created": True},
    "persisted": True,
}


def test_every_expectation_key_has_a_checker():
    assert set(registry().keys) == {e.name for e in EXPECTATIONS}
    assert all(callable(e.check) for e in registry().specs.values())
    assert checks.check_evidence in ALWAYS and checks.check_notes in ALWAYS


def test_good_crash_history_passes_every_checker():
    for every in (None, 2, 3):
        history = make_history(crash_run(checkpoint_every=every), replays=("start", "mid"))
        assert run_checks(history, make_cell(FULL_CRASH_EXPECT, fault=SIGKILL_HELD)) == []


def test_good_history_survives_json_round_trip():
    history = make_history(crash_run(checkpoint_every=2), replays=("start", "mid", 3))
    again = History.from_json(history.to_json())
    expect = dict(FULL_CRASH_EXPECT, replay=dict(FULL_CRASH_EXPECT["replay"], after=["start", "mid", 3]))
    assert run_checks(again, make_cell(expect, fault=SIGKILL_HELD)) == []


def test_unknown_expectation_key_is_a_violation():
    history = make_history(normal_run())
    violations = run_checks(history, make_cell({"status": "completed", "gap_free_after_cursor": True}))
    assert len(violations) == 1
    assert violations[0].check == "gap_free_after_cursor"
    assert "has no checker" in violations[0].message


def test_checker_that_raises_becomes_a_violation(monkeypatch):
    def boom(history, expected, cell):
        raise KeyError("sequence_number")

    monkeypatch.setitem(registry().specs, "status", replace(registry().specs["status"], check=boom))
    violations = run_checks(make_history(normal_run()), make_cell({"status": "completed"}))
    assert len(violations) == 1
    assert violations[0].check == "status"
    assert "checker raised KeyError" in violations[0].message
    assert "sequence_number" in violations[0].message


def test_checker_returning_garbage_becomes_a_violation(monkeypatch):
    monkeypatch.setitem(registry().specs, "status", replace(registry().specs["status"], check=lambda h, e, c: None))
    violations = run_checks(make_history(normal_run()), make_cell({"status": "completed"}))
    assert "not a list of Violations" in messages(violations)


def test_garbage_history_does_not_crash_the_run():
    """A history full of wrong types: every checker reports, none raises out of run_checks."""
    history = make_history(crash_run(), replays=("start",))
    history.final = {"status": 3, "output": "not a list", "error": "nope"}
    for call in history.calls:
        call.params = {"starting_after": "x", "cursor_label": None}
        call.body = ["not", "a", "dict"]
    history.markers = ["start attempt=x from=y", "checkpoint z", "held"]
    history.script = {"deltas": "many"}
    violations = run_checks(history, make_cell(FULL_CRASH_EXPECT, fault=SIGKILL_HELD))
    assert violations
    assert all(isinstance(v, Violation) for v in violations)


def test_always_checks_run_without_expectations():
    history = make_history(crash_run())
    history.faults[0].observed = None
    history.notes.append("not testable: target does not claim resilient_background")
    text = messages(run_checks(history, make_cell({}, fault=SIGKILL_HELD)))
    assert "evidence: fault did not happen" in text
    assert "notes: " in text and "not testable: target" in text


def test_violation_messages_state_expected_and_observed():
    history = make_history(crash_run(), replays=("start",))
    history.final["status"] = "failed"
    [v] = run_checks(history, make_cell({"status": "completed"}, fault=SIGKILL_HELD))
    assert "expected final status 'completed'" in v.message and "observed 'failed'" in v.message


def test_a_stuck_note_is_one_status_violation_naming_the_expected_status():
    from conformance.checks import run_checks
    from conformance.history import STUCK_PREFIX, History

    cell = make_cell(expect={"status": "failed", "output": "none"})
    history = History(cell_id=cell.id, notes=[f"{STUCK_PREFIX} resp_1 is still 'in_progress' 30s after the kit began polling"])
    violations = run_checks(history, cell)
    assert [v.check for v in violations if v.check != "evidence"] == ["status"], violations
    status = next(v for v in violations if v.check == "status")
    assert str(status).startswith("status: expected final status 'failed', observed resp_1 is still 'in_progress' 30s")
    from conformance.plugin import could_not_run
    assert not could_not_run([status])  # a violation of the target, never "not testable"


def test_a_violation_capped_at_should_counts_as_should_even_in_a_must_cell():
    from conformance.history import effective_level, strongest_level

    must, should = Violation("replay", "lost"), Violation("replay", "gap", level="SHOULD")
    assert effective_level(should, "MUST") == "SHOULD"
    assert effective_level(must, "MUST") == "MUST"
    assert effective_level(must, "SHOULD") == "SHOULD"  # never above its cell's level
    assert effective_level(should, "MAY") == "MAY"
    assert strongest_level([should], "MUST") == "SHOULD"
    assert strongest_level([should, must], "MUST") == "MUST"
    assert strongest_level([], "MUST") is None
    assert str(should) == "replay [SHOULD]: gap" and str(must) == "replay: lost"
def test_executor_error_before_any_request_is_the_whole_verdict():
    """The target never started (a readiness error before the first request): one `notes`
    violation, not a status/http/attempts/evidence knock-on for every expectation."""
    history = History(cell_id="c", notes=["executor error: harness: target exited with code 1 (log: x.log)"])
    violations = run_checks(history, make_cell(FULL_CRASH_EXPECT, fault=SIGKILL_HELD))
    assert [v.check for v in violations] == ["notes"], messages(violations)
    assert "target exited with code 1" in violations[0].message
    assert violations[0].evidence is None  # the note is quoted once, in the message


def test_executor_error_after_a_request_keeps_the_other_violations():
    history = make_history(normal_run())
    history.notes.append("executor error: cell timed out")
    checks_seen = {v.check for v in run_checks(history, make_cell({"status": "completed", "attempts": 2}))}
    assert checks_seen == {"notes", "attempts"}
