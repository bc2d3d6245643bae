"""Network-fault checks: ``reconnect``, ``unblocked`` and the network part of ``evidence``.

Each test starts from a history a correct server gives (the live stream broken after k events,
a resume by cursor with the rest, a replay from the start) and breaks one thing."""

from __future__ import annotations

import copy

import pytest

from conformance.checks import check_evidence, check_reconnect, check_unblocked, run_checks
from conformance.history import FaultRecord, History, SSEFrame
from conformance.model import FaultSpec

from .builders import make_cell, make_history, normal_run, sse_call, with_seq
from .invocation_builders import inv_cell, inv_history, normal, sse, with_id

RESET = FaultSpec(kind="reset", at="held")
CUT = FaultSpec(kind="cut_mid_frame", at="held")
SLOW = FaultSpec(kind="slow_reader", at="held", params=(("bytes_per_s", 2500),))
RESET_KILL = FaultSpec(kind="reset", at="held", then="sigkill")
WANT = {"terminal": "response.completed"}


def broken_at(k: int, resume: list[SSEFrame] | None = None, *, cursor: int | None = None) -> History:
    """A responses history: the live stream broke after k frames, the client resumed after the
    last one it had (``resume`` overrides what the resume delivered)."""
    scn = normal_run()
    history = make_history(scn, replays=("start",))
    live = history.calls[0]
    live.frames, live.ended = live.frames[:k], "broken"
    after = live.frames[-1].seq if cursor is None else cursor
    rest = [f for f in scn.all_frames if f.seq > after] if resume is None else resume
    history.calls.insert(1, sse_call("reconnect", rest, params={"starting_after": after, "attempt": 1}))
    history.faults = [FaultRecord(kind="reset", trigger="held", observed="held 3", t=1.0, incarnation=0,
                                  detail={"kind": "reset", "applied": True, "bytes_before": 900})]
    return history


def test_a_resume_with_exactly_the_rest_passes() -> None:
    assert check_reconnect(broken_at(8), WANT, make_cell(fault=RESET)) == []


def test_a_live_stream_that_ended_by_itself_needs_no_resume() -> None:
    history = make_history(normal_run(), replays=("start",))
    assert check_reconnect(history, WANT, make_cell(fault=RESET)) == []


def test_a_resume_that_resends_the_last_event_is_a_duplicate() -> None:
    scn = normal_run()
    history = broken_at(8, [f for f in scn.all_frames if f.seq >= 7])
    text = "\n".join(str(v) for v in check_reconnect(history, WANT, make_cell(fault=RESET)))
    assert "observed cursor 7 twice" in text and "step back" in text


def test_a_resume_that_restarts_numbering_is_caught() -> None:
    scn = normal_run()
    rest = [with_seq(f, n) for n, f in enumerate(f for f in scn.all_frames if f.seq > 7)]
    text = "\n".join(str(v) for v in check_reconnect(broken_at(8, rest), WANT, make_cell(fault=RESET)))
    assert "twice" in text and "step back" in text and "transcript's payload" in text


def test_a_resume_that_skips_an_event_is_a_gap() -> None:
    scn = normal_run()
    rest = [f for f in scn.all_frames if f.seq > 8]  # the event right after the cursor is lost
    text = "\n".join(str(v) for v in check_reconnect(broken_at(8, rest), WANT, make_cell(fault=RESET)))
    assert "cursors [8] missing (a gap)" in text


def test_a_partial_frame_counted_as_an_event_fails() -> None:
    history = broken_at(8)
    cut = SSEFrame(event="response.output_text.delta", data='{"type": "response.output_text.delta", "sequ',
                   raw='event: response.output_text.delta\ndata: {"type": "response.output_text.delta", "sequ')
    history.calls[0].frames.append(cut)
    text = "\n".join(str(v) for v in check_reconnect(history, WANT, make_cell(fault=CUT)))
    assert "a partial frame counted as an event?" in text


def test_no_resume_after_a_broken_stream_fails_and_a_refused_attempt_alone_is_not_one() -> None:
    history = broken_at(8)
    resume = history.calls_named("reconnect")[0]
    resume.status, resume.frames, resume.error = None, [], "ReadError: [Errno 104] Connection reset by peer"
    text = "\n".join(str(v) for v in check_reconnect(history, WANT, make_cell(fault=RESET)))
    assert "observed no served reconnect" in text and "Connection reset" in text


def test_a_resume_answered_with_an_error_fails() -> None:
    history = broken_at(8)
    history.calls_named("reconnect")[0].status = 410
    assert "expected the resume by cursor to answer 200, observed 410" in "\n".join(
        str(v) for v in check_reconnect(history, WANT, make_cell(fault=RESET)))


def test_the_wrong_terminal_or_two_terminals_fail() -> None:
    assert "expected the terminal event 'response.failed'" in "\n".join(
        str(v) for v in check_reconnect(broken_at(8), {"terminal": "response.failed"}, make_cell(fault=RESET)))
    scn = normal_run()
    twice = [f for f in scn.all_frames if f.seq > 7]
    twice.append(with_seq(copy.copy(twice[-1]), twice[-1].seq + 1))
    history = broken_at(8, twice)
    history.calls_named("replay")[0].frames.append(twice[-1])
    assert "exactly one terminal event, last" in "\n".join(
        str(v) for v in check_reconnect(history, WANT, make_cell(fault=RESET)))


def test_without_a_transcript_the_union_cannot_be_judged() -> None:
    history = broken_at(8)
    history.calls = [c for c in history.calls if c.name != "replay"]
    assert "expected a replay from the start" in str(check_reconnect(history, WANT, make_cell(fault=RESET))[0])


def test_invocations_resume_by_last_event_id() -> None:
    run = normal()
    history = inv_history(run, resumes=[])
    live = history.calls_named("live")[0]
    live.frames, live.ended = live.frames[:3], "broken"
    history.calls.append(sse("reconnect", run.frames[3:], params={"last_event_id": "3", "attempt": 1}))
    want = {"terminal": "invocation.completed"}
    assert check_reconnect(history, want, inv_cell(fault=RESET)) == []
    renumbered = [with_id(f, n) for n, f in enumerate(run.frames[3:], start=1)]  # restarts numbering
    history.calls[-1].frames = renumbered
    text = "\n".join(str(v) for v in check_reconnect(history, want, inv_cell(fault=RESET)))
    assert "twice" in text and "step back" in text


def slow_history(at_terminal: int, total: int = 24000) -> History:
    history = make_history(normal_run(), replays=())
    history.faults = [FaultRecord(kind="slow_reader", trigger="held", observed="held 0", t=1.0, incarnation=0,
                                  detail={"kind": "slow_reader", "applied": True, "bytes_per_s": 2500,
                                          "throttled_bytes": total, "bytes_at_terminal": at_terminal,
                                          "stream_bytes": total})]
    return history


def test_unblocked_passes_when_the_run_ended_long_before_its_reader() -> None:
    assert check_unblocked(slow_history(3000), True, make_cell(fault=SLOW)) == []


def test_a_handler_that_waited_for_its_slow_reader_fails_unblocked() -> None:
    [v] = check_unblocked(slow_history(20000), True, make_cell(fault=SLOW))
    assert "terminal only after 20000 of 24000 bytes: the handler waited for its reader" in v.message


def test_unblocked_without_the_proxy_record_fails() -> None:
    history = slow_history(3000)
    history.faults[0].detail = None
    assert "observed none" in check_unblocked(history, True, make_cell(fault=SLOW))[0].message


@pytest.mark.parametrize("kind, detail, complaint", [
    ("reset", None, "acted"),
    ("reset", {"applied": False}, "acted"),
    ("reset", {"applied": True}, "bytes forwarded before the reset"),
    ("cut_mid_frame", {"applied": True, "partial_bytes": 0, "frame_bytes": 200}, "part of a frame"),
    ("cut_mid_frame", {"applied": True, "partial_bytes": 200, "frame_bytes": 200}, "part of a frame"),
    ("stall", {"applied": True, "stalled_s": 0.2}, "a stall of 1s"),
    ("slow_reader", {"applied": True, "throttled_bytes": 0}, "forwarded at the slow rate"),
    ("refuse", {"applied": True, "refused_connections": 0}, "exactly one refused connection"),
])
def test_evidence_needs_the_proxy_record_of_what_the_fault_did(kind: str, detail: dict | None, complaint: str) -> None:
    params = (("seconds", 1), ("then", "resume")) if kind == "stall" else ()
    cell = make_cell({}, fault=FaultSpec(kind=kind, at="held", params=params))
    history = make_history(normal_run(), replays=())
    history.markers.append("held 3")
    history.faults = [FaultRecord(kind=kind, trigger="held", observed="held 3", t=1.0, incarnation=0, detail=detail)]
    violations = check_evidence(history, None, cell)
    assert violations and complaint in violations[0].message, violations


def test_evidence_of_a_reset_then_sigkill_needs_the_crash_too() -> None:
    history = broken_at(8)
    history.markers.append("held 3")
    cell = make_cell({}, fault=RESET_KILL)
    assert "expected a sigkill while the client was away after the reset" in str(check_evidence(history, None, cell))
    history.incarnations[0].exited_at, history.incarnations[0].exit_mode = 2.0, "killed"
    history.incarnations.append(copy.copy(history.incarnations[0]))
    history.incarnations[1].index, history.incarnations[1].exited_at = 1, None
    history.faults.append(FaultRecord(kind="sigkill", trigger="after reset", observed="the client was away",
                                      t=1.5, incarnation=0, exit_mode="killed", restarted_as=1))
    assert check_evidence(history, None, cell) == []


def test_run_checks_knows_the_new_keys() -> None:
    history = broken_at(8)
    history.markers.append("held 3")
    cell = make_cell({"reconnect": WANT}, fault=RESET)
    assert run_checks(history, cell) == []
