"""persisted: true (final GET 200 after restart) / false (GET 404, no state file names it)."""

from __future__ import annotations

from conformance.checks.persisted import check_persisted

from .builders import SIGKILL_HELD, crash_run, json_call, make_cell, make_history, messages

CELL = make_cell(fault=SIGKILL_HELD)


def gone_history():
    history = make_history(crash_run(), replays=(), with_get=False)
    history.calls.append(json_call("get", 404, {"error": {"code": "not_found", "message": "Response not found"}}))
    history.final = None
    history.final_source = None
    return history


def test_persisted_true_passes():
    assert check_persisted(make_history(crash_run()), True, CELL) == []


def test_persisted_true_but_get_404():
    history = make_history(crash_run())
    history.calls[-1] = json_call("get", 404, {"error": {"code": "not_found"}})
    history.final_source = "stream"
    text = messages(check_persisted(history, True, CELL))
    assert "`get` #1 should answer 200, observed 404" in text
    assert "final_source='stream'" in text


def test_persisted_true_without_get():
    history = make_history(crash_run(), with_get=False)
    [v] = check_persisted(history, True, CELL)
    assert "no `get` call was made" in v.message


def test_persisted_false_passes():
    assert check_persisted(gone_history(), False, CELL) == []


def test_persisted_false_with_state_hit():
    history = gone_history()
    history.state_dir_hits = ["state/responses/resp_0123456789abcdef.json", "state/tasks/t1.json"]
    [v] = check_persisted(history, False, CELL)
    assert "expected no state file naming the tag or response id, observed 2" in v.message
    assert "resp_0123456789abcdef.json" in v.evidence


def test_persisted_false_but_get_200():
    history = make_history(crash_run())
    [v] = check_persisted(history, False, CELL)
    assert "expected persisted=false: `get` #1 should answer 404, observed 200" in v.message


def test_persisted_false_transport_error_is_not_404():
    history = gone_history()
    history.calls[-1] = json_call("get", None, None, error="ConnectError")
    [v] = check_persisted(history, False, CELL)
    assert "observed transport error 'ConnectError'" in v.message


def test_persisted_false_without_get_is_vacuous_and_fails():
    history = gone_history()
    history.calls = [c for c in history.calls if c.name != "get"]
    [v] = check_persisted(history, False, CELL)
    assert "no `get` call was made" in v.message


def test_persisted_malformed():
    [v] = check_persisted(gone_history(), "yes", CELL)
    assert "true or false" in v.message
