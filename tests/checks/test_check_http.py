"""status, http, content_type, error."""

from __future__ import annotations

from conformance.checks.http import check_content_type, check_error, check_http
from conformance.checks.status import check_status

from .builders import RID, json_call, make_cell, make_history, messages, normal_run

CELL = make_cell()


def history_with(*extra_calls):
    history = make_history(normal_run(), replays=())
    history.calls.extend(extra_calls)
    return history


BAD_REQUEST = {
    "error": {
        "type": "invalid_request_error",
        "code": None,
        "param": "stream",
        "message": "Streaming replay requires the response to be created with background=true.",
    }
}


# ------------------------------------------------------------------ status


def test_status_passes():
    assert check_status(make_history(normal_run()), "completed", CELL) == []


def test_status_mismatch_shows_error():
    history = make_history(normal_run())
    history.final["status"] = "failed"
    history.final["error"] = {"code": "server_error", "message": "boom"}
    [v] = check_status(history, "completed", CELL)
    assert "expected final status 'completed', observed 'failed'" in v.message
    assert "server_error" in v.evidence


def test_status_without_final_object():
    history = make_history(normal_run())
    history.final = None
    [v] = check_status(history, "completed", CELL)
    assert "observed no final response object" in v.message


# ------------------------------------------------------------------ http


def test_http_passes_single_and_list():
    history = history_with(json_call("cancel", 200, {}), json_call("cancel_again", 202, {}))
    assert check_http(history, {"create": 200, "get": [200], "cancel": 200, "cancel_again": [200, 202]}, CELL) == []


def test_http_code_mismatch_names_call_and_body():
    history = history_with(json_call("replay", 404, {"error": {"code": "not_found"}}))
    [v] = check_http(history, {"replay": 400}, CELL)
    assert "expected `replay` #1 to answer 400, observed 404" in v.message
    assert "not_found" in v.evidence


def test_http_any_call_of_the_name_counts():
    history = history_with(json_call("cancel", 200, {}), json_call("cancel", 409, {"error": {}}))
    [v] = check_http(history, {"cancel": 200}, CELL)
    assert "`cancel` #2" in v.message and "observed 409" in v.message


def test_http_list_mismatch():
    history = history_with(json_call("cancel", 500, {}))
    [v] = check_http(history, {"cancel": [200, 202]}, CELL)
    assert "one of [200, 202]" in v.message and "observed 500" in v.message


def test_http_missing_call():
    [v] = check_http(history_with(), {"replay": 200}, CELL)
    assert v.message == "expected a `replay` call; none was made"
    assert "create" in v.evidence


def test_http_transport_error():
    history = history_with(json_call("delete", None, None, error="ConnectError: refused"))
    [v] = check_http(history, {"delete": 200}, CELL)
    assert "transport error: ConnectError: refused" in v.message


def test_http_malformed_expectation():
    [v] = check_http(make_history(normal_run()), {"create": "ok"}, CELL)
    assert "must be ints" in v.message
    [v] = check_http(make_history(normal_run()), [200], CELL)
    assert "mapping" in v.message


# ------------------------------------------------------------------ content_type


def test_content_type_passes_case_insensitively():
    history = make_history(normal_run())
    history.calls[0].content_type = "Text/Event-Stream; charset=utf-8"
    assert check_content_type(history, {"create": "text/event-stream", "get": "application/json"}, CELL) == []


def test_content_type_mismatch():
    history = make_history(normal_run())
    history.calls[0].content_type = "application/json"
    [v] = check_content_type(history, {"create": "text/event-stream"}, CELL)
    assert "expected `create` #1 content type 'text/event-stream'..., observed 'application/json'" in v.message


def test_content_type_missing_call_and_missing_header():
    history = history_with(json_call("cancel", 200, {}, content_type=None))
    history.calls[-1].content_type = None
    violations = check_content_type(history, {"cancel": "application/json", "replay": "text/event-stream"}, CELL)
    text = messages(violations)
    assert "observed None" in text
    assert "expected a `replay` call; none was made" in text


# ------------------------------------------------------------------ error


def test_error_passes_on_last_call():
    history = history_with(json_call("replay", 200, {}), json_call("replay", 400, BAD_REQUEST))
    spec = {"replay": {"type": "invalid_request_error", "code": None, "param": "stream", "message_contains": "BACKGROUND=TRUE"}}
    assert check_error(history, spec, CELL) == []


def test_error_field_mismatch():
    history = history_with(json_call("replay", 400, BAD_REQUEST))
    violations = check_error(history, {"replay": {"param": "starting_after", "type": "server_error"}}, CELL)
    text = messages(violations)
    assert "expected `replay` error.param 'starting_after', observed 'stream'" in text
    assert "expected `replay` error.type 'server_error', observed 'invalid_request_error'" in text
    assert "400" in violations[0].evidence


def test_error_null_means_null_or_absent():
    body = {"error": {"type": "invalid_request_error", "code": "bad", "message": "x"}}
    history = history_with(json_call("cancel", 400, body))
    [v] = check_error(history, {"cancel": {"code": None, "param": None}}, CELL)
    assert "expected `cancel` error.code null/absent, observed 'bad'" in v.message


def test_error_message_contains_mismatch():
    history = history_with(json_call("replay", 400, BAD_REQUEST))
    [v] = check_error(history, {"replay": {"message_contains": "not found"}}, CELL)
    assert "to contain 'not found'" in v.message and "background=true" in v.message


def test_error_body_without_error_object():
    history = history_with(json_call("cancel", 400, {"detail": "nope"}))
    [v] = check_error(history, {"cancel": {"type": "invalid_request_error"}}, CELL)
    assert '"detail": "nope"' in v.message


def test_error_body_from_text_only():
    call = json_call("replay", 400, None)
    call.body_text = '{"error": {"param": "stream"}}'
    assert check_error(history_with(call), {"replay": {"param": "stream"}}, CELL) == []


def test_error_missing_call_and_unknown_field():
    text = messages(check_error(history_with(), {"cancel": {"code": "x"}, "get": {"kode": 1}}, CELL))
    assert "expected a `cancel` call; none was made" in text
    assert "unknown error field(s) ['kode']" in text


def test_error_on_final_response():
    history = make_history(normal_run())
    history.final.update(status="failed", error={"code": "server_error", "message": "Crash recovery"})
    assert check_error(history, {"response": {"code": "server_error", "message_contains": "recovery"}}, CELL) == []
    [v] = check_error(history, {"response": {"code": "server_crashed"}}, CELL)
    assert "expected final response error.code 'server_crashed', observed 'server_error'" in v.message


def test_error_on_final_response_absent():
    history = make_history(normal_run())
    assert check_error(history, {"response": {"code": None}}, CELL) == []
    [v] = check_error(history, {"response": {"code": "server_error"}}, CELL)
    assert "observed no error object" in v.message
    history.final = None
    [v] = check_error(history, {"response": {"code": "server_error"}}, CELL)
    assert "no final response object" in v.message


def test_url_in_evidence():
    history = history_with(json_call("replay", 400, BAD_REQUEST))
    [v] = check_error(history, {"replay": {"param": "x"}}, CELL)
    assert RID in v.evidence


def test_error_field_given_as_a_list_accepts_any_of_its_values():
    """§6: a crash fails a response with code server_error, older builds server_crashed; a
    contract lists both, and either passes, but nothing else does."""
    for code in ("server_error", "server_crashed"):
        history = history_with(json_call("cancel", 400, {"error": {"type": "x", "code": code, "message": "m"}}))
        assert check_error(history, {"cancel": {"code": ["server_error", "server_crashed"]}}, CELL) == []
    history = history_with(json_call("cancel", 400, {"error": {"type": "x", "code": "boom", "message": "m"}}))
    [v] = check_error(history, {"cancel": {"code": ["server_error", "server_crashed"]}}, CELL)
    assert "expected `cancel` error.code 'server_error' or 'server_crashed', observed 'boom'" in v.message
