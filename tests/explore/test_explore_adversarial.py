"""The adversarial expectation is pure and fails on each bad answer; the strategies only label
as ``error`` what really is invalid."""

from __future__ import annotations

import json

from hypothesis import given, settings

from conformance.explore.adversarial import (
    CURSOR_RULE,
    ERROR_SHAPE_RULE,
    UNKNOWN_FIELD_RULE,
    Answer,
    BadRequest,
    answer_problems,
    cursor_requests,
    lenient_cursor,
    level_of,
    responses_ok_judge,
    send_raw,
)

GOOD_ERROR = json.dumps({"error": {"type": "invalid_request_error", "code": "invalid_json", "message": "m", "param": None}}).encode()
JSON = {"content-type": "application/json"}
SSE = {"content-type": "text/event-stream"}
REQ = BadRequest("POST", "/responses", b"{", expect="error")
MAYBE = BadRequest("POST", "/responses", b"{}", expect="error_or_ok")


def ans(status, body=b"", headers=None, complete=True, error=None) -> Answer:
    return Answer(status=status, headers=headers or JSON, body=body, complete=complete, error=error)


def test_documented_error_passes() -> None:
    assert answer_problems(REQ, ans(400, GOOD_ERROR)) == []


def test_each_bad_answer_is_a_problem() -> None:
    assert answer_problems(REQ, ans(500, GOOD_ERROR))[0].startswith("500 (a 5xx for bad input)")
    assert "not JSON" in answer_problems(REQ, ans(400, b"Bad Request", {"content-type": "text/plain"}))[0]
    assert "error.param missing" in answer_problems(REQ, ans(400, b'{"error": {"type": "t", "code": "c", "message": "m"}}'))[0]
    assert "no 'error' object" in answer_problems(REQ, ans(422, b'{"detail": []}'))[0]
    assert "expected a 4xx" in answer_problems(REQ, ans(200, b"{}"))[0]
    assert "hang" in answer_problems(REQ, Answer(error="no end of answer within 10s (hang)"))[0]
    assert "partial SSE" in answer_problems(MAYBE, ans(200, b"data: {}\n\n", SSE, complete=False))[0]
    bad_order = b'data: {"sequence_number": 2}\n\ndata: {"sequence_number": 1}\n\n'
    assert "strictly increasing" in answer_problems(MAYBE, ans(200, bad_order, SSE))[0]


def test_valid_or_protocol_answers_pass() -> None:
    stream = b'event: a\ndata: {"sequence_number": 3}\n\nevent: b\ndata: {"sequence_number": 4}\n\n'
    assert answer_problems(MAYBE, ans(200, stream, SSE)) == []
    assert answer_problems(MAYBE, ans(200, b'{"id": "x"}')) == []
    proto = BadRequest("GET", "/", None, (), "protocol")
    assert answer_problems(proto, ans(400, b"Invalid HTTP request received.", {"content-type": "text/plain"})) == []


def _sse(*events: dict) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


def test_a_served_cursor_must_yield_exactly_the_later_events() -> None:
    transcript = [{"type": "response.created", "sequence_number": 0}, {"type": "response.output_text.delta", "sequence_number": 1},
                  {"type": "response.completed", "sequence_number": 2}]
    judge = responses_ok_judge(transcript)
    at = lambda after: BadRequest("GET", f"/responses/r?stream=true&starting_after={after}", None, (), "ok", after=after)  # noqa: E731
    assert answer_problems(at(0), ans(200, _sse(*transcript[1:]), SSE), judge) == []
    assert answer_problems(at(10**30), ans(200, b"", SSE), judge) == []
    # the cursor ignored (every event from 0), one event dropped, a payload changed, a 400 for a served cursor
    assert "expected exactly the later events [1, 2]" in answer_problems(at(0), ans(200, _sse(*transcript), SSE), judge)[0]
    assert "expected exactly the later events [2]" in answer_problems(at(1), ans(200, b"", SSE), judge)[0]
    changed = {**transcript[2], "type": "response.failed"}
    assert "with their recorded payloads" in answer_problems(at(1), ans(200, _sse(changed), SSE), judge)[0]
    assert "past every event" in answer_problems(at(10**30), ans(200, _sse(*transcript), SSE), judge)[0]
    assert "expected a 2xx" in answer_problems(at(10**30), ans(400, GOOD_ERROR), judge)[0]


@settings(max_examples=300, deadline=None)
@given(cursor_requests("resp_x", 7))
def test_a_cursor_labelled_error_is_never_a_plain_non_negative_integer(request: BadRequest) -> None:
    raw = request.path.split("starting_after=", 1)[1]
    if request.expect == "error":
        assert not (raw.isascii() and raw.isdigit()), request


def test_send_raw_to_a_closed_port_is_an_answerless_problem() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    answer = send_raw("127.0.0.1", port, REQ, deadline_s=2)
    assert answer.status is None and answer.error and answer_problems(REQ, answer)[0].startswith("no answer")


def _answer_from(reply: bytes, request: BadRequest = REQ) -> Answer:
    """``send_raw`` against a one-shot loopback server that reads the request and sends ``reply``
    (raw bytes), then closes."""
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        return send_raw("127.0.0.1", port, request, deadline_s=5)
    finally:
        thread.join(5)
        server.close()


def test_a_malformed_answer_is_a_clear_finding_not_a_crash() -> None:
    """h11 refuses the answer: the Answer says why, and the judge makes it one "no answer" problem."""
    for reply, why in [(b"garbage\r\n\r\n", "illegal status line"), (b"HTTP/1.1 abc OK\r\n\r\n", "illegal status line"),
                       (b"HTTP/1.1 400 Bad\r\ncontent-ty", "malformed HTTP answer"),
                       (b"", "closed the connection without an answer")]:
        answer = _answer_from(reply)
        assert answer.status is None and why in (answer.error or ""), (reply, answer)
        problems = answer_problems(REQ, answer)
        assert len(problems) == 1 and problems[0].startswith("no answer: ") and why in problems[0], problems


def test_answers_are_framed_by_h11() -> None:
    chunked = _answer_from(b"HTTP/1.1 400 Bad\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
                           + f"{len(GOOD_ERROR):x}\r\n".encode() + GOOD_ERROR + b"\r\n0\r\n\r\n")
    assert (chunked.status, chunked.body, chunked.complete, chunked.error) == (400, GOOD_ERROR, True, None)
    assert answer_problems(REQ, chunked) == []
    cut = _answer_from(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 50\r\n\r\n{}")
    assert (cut.status, cut.body, cut.complete) == (200, b"{}", False)
    assert "not complete JSON" in answer_problems(MAYBE, cut)[0]
    extra = _answer_from(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}SMUGGLED")
    assert extra.status == 200 and extra.complete is False  # bytes after the answer's end
    bad_chunk = _answer_from(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n")
    assert bad_chunk.status == 200 and bad_chunk.complete is False
    assert "partial SSE" in answer_problems(MAYBE, bad_chunk)[0]
    head = _answer_from(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n", BadRequest("HEAD", "/responses", None, ()))
    assert head.status == 200 and head.complete and head.body == b""  # HEAD: no body, whatever the length says


def levels(problems: list[str]) -> list[str]:
    return [level_of(p) for p in problems]


def test_must_and_should_are_told_apart() -> None:
    """A 5xx, a hang, a partial stream or a 2xx for malformed JSON is a MUST; an error body that is
    not the documented JSON shape (a framework's text/plain 404) is a SHOULD of its own rule."""
    assert levels(answer_problems(REQ, ans(500, GOOD_ERROR))) == ["MUST"]
    assert levels(answer_problems(REQ, ans(200, b"{}"))) == ["MUST"]  # malformed JSON served: no reading allows it
    assert levels(answer_problems(REQ, Answer(error="no end of answer within 10s (hang)"))) == ["MUST"]
    assert levels(answer_problems(MAYBE, ans(200, b"data: {}\n\n", SSE, complete=False))) == ["MUST"]
    plain = answer_problems(REQ, ans(404, b"Not Found", {"content-type": "text/plain"}))
    assert levels(plain) == ["SHOULD"] and plain[0].rule == ERROR_SHAPE_RULE


def test_a_lenient_reading_is_a_should_and_still_judged_as_served() -> None:
    unknown = BadRequest("POST", "/responses", b'{"input": "x", "zz": 1}', expect="error", lenient=UNKNOWN_FIELD_RULE)
    accepted = answer_problems(unknown, ans(200, b'{"id": "resp_1", "status": "completed"}'))
    assert levels(accepted) == ["SHOULD"] and accepted[0].rule == UNKNOWN_FIELD_RULE
    # accepted, but the 2xx itself is broken: that part is a MUST
    assert levels(answer_problems(unknown, ans(200, b'{"id": '))) == ["SHOULD", "MUST"]


def test_a_negative_cursor_may_mean_from_the_start_but_nothing_else() -> None:
    transcript = [{"type": "response.created", "sequence_number": 0}, {"type": "response.completed", "sequence_number": 1}]
    judge = responses_ok_judge(transcript)
    assert lenient_cursor("-1") == {"after": -1, "lenient": CURSOR_RULE} and lenient_cursor("abc") == {}
    minus = BadRequest("GET", "/responses/r?stream=true&starting_after=-1", None, (), "error", **lenient_cursor("-1"))
    assert levels(answer_problems(minus, ans(400, GOOD_ERROR), judge)) == []  # rejected: the SHOULD reading
    from_start = answer_problems(minus, ans(200, _sse(*transcript), SSE), judge)
    assert levels(from_start) == ["SHOULD"] and from_start[0].rule == CURSOR_RULE  # served from the start: allowed
    assert "MUST" in levels(answer_problems(minus, ans(200, _sse(transcript[1]), SSE), judge))  # from anywhere else: not
    abc = BadRequest("GET", "/responses/r?stream=true&starting_after=abc", None, (), "error", **lenient_cursor("abc"))
    assert levels(answer_problems(abc, ans(200, _sse(*transcript), SSE), judge)) == ["MUST"]
