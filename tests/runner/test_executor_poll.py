"""The executor's status poll (``CellRun._poll_status``), without a server: a fake GET feeds it
answers and the poll must classify each one (docs/architecture.md: an unexpected 404 or 500 fails at
once with the body, never by waiting out the cell timeout)."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from conformance.executor import CellRun, CellTimeout
from conformance.history import TERMINAL_STATUSES, HttpCall

TIMEOUT_S = 5.0  # far longer than a fail-fast poll takes; a poll that waits instead runs into it


def fake_run() -> SimpleNamespace:
    """What ``_poll_status`` uses of a CellRun: the timeout, the recorder's condition, the log."""
    return SimpleNamespace(
        timeout=TIMEOUT_S,
        recorder=SimpleNamespace(changed=threading.Condition()),
        target=SimpleNamespace(log_tail=lambda n: "(no server)"),
    )


def fake_get(*answers: tuple[int, object]):
    """A GET answering each (status, body) in turn, the last one for ever; counts its calls."""
    calls: list[HttpCall] = []

    def get() -> HttpCall:
        status, body = answers[min(len(calls), len(answers) - 1)]
        text = body if isinstance(body, str) else None
        call = HttpCall("poll", "GET", "http://t/responses/r1", status=status,
                        body=None if isinstance(body, str) else body, body_text=text or str(body))
        calls.append(call)
        return call

    get.calls = calls  # type: ignore[attr-defined]
    return get


def poll(get, on_404: str):
    return CellRun._poll_status(fake_run(), "r1", get, TERMINAL_STATUSES, on_404=lambda: on_404)


@pytest.mark.parametrize(
    "answers, on_404, code",
    [
        ([(200, {"status": "in_progress"}), (500, "Internal Server Error: store exploded")], "end", "500"),
        ([(200, {"status": "queued"}), (404, '{"error": "no such response"}')], "fail", "404"),
        ([(503, "busy")], "wait", "503"),
    ],
)
def test_unexpected_answer_fails_at_once_naming_the_code(answers, on_404, code):
    get = fake_get(*answers)
    with pytest.raises(CellTimeout) as e:
        poll(get, on_404)
    from conformance.executor import StatusStuck

    assert isinstance(e.value, StatusStuck)  # the target's violation (``status``), not the kit's
    message = str(e.value)
    assert message.startswith(f"poll of r1 got an unexpected answer: {code} "), message
    assert str(answers[-1][1])[:20] in message  # the body is shown
    assert len(get.calls) == len(answers)  # failed on the first bad answer: no retry, no waiting


def test_terminal_status_ends_the_poll_and_404_follows_on_404():
    assert poll(fake_get((200, {"status": "in_progress"}), (200, {"status": "completed"})), "fail") == "completed"
    assert poll(fake_get((404, "gone")), "end") is None
    waited = fake_get((404, "not yet"), (200, {"status": "cancelled"}))
    assert poll(waited, "wait") == "cancelled" and len(waited.calls) == 2


def test_a_status_that_never_turns_terminal_is_stuck_not_a_kit_timeout():
    """Issue: a response left in_progress for ever is the target's violation (StatusStuck, judged
    as ``status``), named with the status, how long and the last poll, with no log tail (the
    failure report shows the logs once)."""
    from conformance.executor import StatusStuck

    run = fake_run()
    run.timeout = 0.3
    with pytest.raises(StatusStuck) as e:
        CellRun._poll_status(run, "r1", fake_get((200, {"status": "in_progress", "id": "r1"})), TERMINAL_STATUSES,
                             on_404=lambda: "fail")
    message = str(e.value)
    assert message.startswith("r1 is still 'in_progress' 0s after the kit began polling"), message
    assert "last poll: 200 " in message and "in_progress" in message and "log tail" not in message



def test_a_response_never_visible_while_its_foreground_call_stays_open_is_stuck():
    """A foreground response is 404 until terminal; polls wait through that 404 only while the
    create call is open.  Still 404 at the deadline: the response never ended, the target's
    violation (StatusStuck), not an executor error."""
    from conformance.executor import StatusStuck

    run = fake_run()
    run.timeout = 0.3
    with pytest.raises(StatusStuck) as e:
        CellRun._poll_status(run, "r1", fake_get((404, "not visible")), TERMINAL_STATUSES, on_404=lambda: "wait")
    message = str(e.value)
    assert message.startswith("r1 still answers 404 0s after the kit began polling"), message
    assert "never became terminal" in message and "log tail" not in message


class _EndsWhileRead(HttpCall):
    """A foreground create that ends (body, status, then ``ended``) right after its body was
    first read empty: the moment a black-box cell, which has no start marker, can hit."""

    _reads = 0

    def __getattribute__(self, name):
        if name == "body":
            reads = object.__getattribute__(self, "_reads")
            object.__setattr__(self, "_reads", reads + 1)
            if reads == 0:  # the first read sees no body yet; the call completes right after it
                object.__setattr__(self, "status", 200)
                object.__setattr__(self, "ended", "complete")
                return None
            return {"id": "resp_1"}
        return object.__getattribute__(self, name)


def test_the_response_id_is_read_after_the_call_is_seen_ended_never_before():
    """``ended`` is written last by the transport, so it is read first: a call seen ended has its
    body.  Reading the body first took a create that completed in between for one that succeeded
    without an id ("not testable")."""
    call = _EndsWhileRead("create", "POST", "http://t/responses", ended="in_flight")

    def await_(predicate, what, last):
        for _ in range(3):
            value = predicate()
            if value:
                return value
        raise AssertionError(f"never {what}")

    run = SimpleNamespace(create_call=call, marker_id=lambda: None, _last_seen=lambda: "", await_=await_)
    assert CellRun._await_id(run) == "resp_1"
