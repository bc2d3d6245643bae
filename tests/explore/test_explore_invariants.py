"""The exploration invariants are pure: a clean recording passes, and each broken recording (one
defect at a time) is reported with the matching problem.  Garbage never crashes them."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.explore.invariants import Observations, Tracked, all_problems, status_observations
from conformance.history import HttpCall, SSEFrame

RID = "resp_abc123"
BASE = "http://127.0.0.1:1"
TEXT = "a1:d0 a1:d1 "


def snap(status: str, text: str = "") -> dict:
    output = [{"type": "message", "content": [{"type": "output_text", "text": text}]}] if text else []
    return {"id": RID, "object": "response", "status": status, "output": output}


def events(text: str = TEXT) -> list[dict]:
    return [
        {"type": "response.created", "sequence_number": 0, "response": snap("in_progress")},
        {"type": "response.in_progress", "sequence_number": 1, "response": snap("in_progress")},
        {"type": "response.output_text.delta", "sequence_number": 2, "delta": "a1:d0 "},
        {"type": "response.output_text.delta", "sequence_number": 3, "delta": "a1:d1 "},
        {"type": "response.completed", "sequence_number": 4, "response": snap("completed", text)},
    ]


def sse(name: str, payloads: list[dict], t0: float, *, cursor: int | None = None, ended: str = "complete") -> HttpCall:
    frames = [SSEFrame(event=p.get("type"), data=json.dumps(p), t=t0 + 0.01 * i) for i, p in enumerate(payloads)]
    params = {} if cursor is None else {"starting_after": cursor}
    url = f"{BASE}/responses" if name == "create" else f"{BASE}/responses/{RID}"
    return HttpCall(name=name, method="POST" if name == "create" else "GET", url=url, params={"stream": "true", **params},
                    status=200, content_type="text/event-stream", frames=frames, ended=ended, started_at=t0,
                    ended_at=t0 + 0.01 * len(frames))


def get(t: float, status: str, text: str = "", code: int = 200, name: str = "get") -> HttpCall:
    body = snap(status, text) if code == 200 else {"error": {"type": "x", "code": "y", "message": "m", "param": None}}
    return HttpCall(name=name, method="GET", url=f"{BASE}/responses/{RID}", status=code, content_type="application/json",
                    body=body, started_at=t, ended_at=t + 0.001)


def observations(*calls: HttpCall, markers: list[str] | None = None, stops: list[float] | None = None) -> Observations:
    return Observations(
        calls=list(calls),
        responses={RID: Tracked(RID, "tag1", {"deltas": 2, "tag": "tag1"}, acked_at=0.0)},
        markers={"tag1": markers if markers is not None else [f"start attempt=1 id={RID} from=0", "delta 0", "delta 1", "done"]},
        stops=stops or [],
    )


def clean() -> list[HttpCall]:
    return [sse("create", events(), 0.0), sse("replay", events()[2:], 1.0, cursor=1), get(2.0, "completed", TEXT)]


def test_clean_recording_has_no_problem() -> None:
    assert all_problems(observations(*clean())) == []


def test_partial_read_that_was_dropped_is_a_valid_prefix() -> None:
    dropped = sse("replay", events()[:2], 1.5, ended="disconnected")
    assert all_problems(observations(*clean(), dropped)) == []


def test_read_from_the_terminal_cursor_may_be_empty() -> None:
    assert all_problems(observations(*clean(), sse("replay", [], 3.0, cursor=4))) == []


def expect(obs: Observations, words: str) -> list[str]:
    problems = all_problems(obs)
    assert any(words in p for p in problems), problems
    return problems


def test_rewritten_payload_is_caught() -> None:
    replay = events()[2:]
    replay[1] = {**replay[1], "delta": "a2:d1 "}
    expect(observations(sse("create", events(), 0.0), sse("replay", replay, 1.0, cursor=1)), "seq 3 rewritten")


def test_gap_against_an_earlier_read_is_caught() -> None:
    replay = [events()[2], events()[4]]
    expect(observations(sse("create", events(), 0.0), sse("replay", replay, 1.0, cursor=1)), "missing seq(s) [3]")


def test_gap_in_a_dropped_read_only_counts_up_to_where_it_got() -> None:
    dropped = sse("replay", [events()[2]], 1.0, cursor=1, ended="disconnected")
    assert all_problems(observations(sse("create", events(), 0.0), dropped)) == []
    cut = sse("replay", [events()[2], events()[4]], 1.0, cursor=1, ended="disconnected")
    expect(observations(sse("create", events(), 0.0), cut), "missing seq(s) [3]")


def test_lost_event_after_restart_is_caught() -> None:
    # the live stream saw seq 0..3 before a crash; the replay after restart lacks seq 3
    live = sse("create", events()[:4], 0.0, ended="broken")
    after = [events()[0], events()[1], events()[2], {**events()[4], "sequence_number": 4}]
    expect(observations(live, sse("replay", after, 2.0), stops=[0.5]), "missing seq(s) [3]")


@pytest.mark.parametrize(
    ("frames", "words"),
    [
        ([0, 1, 1, 2], "duplicate sequence_number"),
        ([0, 2, 1], "cursor decreases"),
    ],
)
def test_bad_cursor_order_in_one_read(frames: list[int], words: str) -> None:
    payloads = [{"type": "response.output_text.delta", "sequence_number": s, "delta": "x"} for s in frames]
    expect(observations(sse("replay", payloads, 0.0, ended="disconnected")), words)


def test_event_at_or_before_the_cursor_is_caught() -> None:
    expect(observations(sse("replay", events()[1:], 0.0, cursor=1)), "at or before the cursor 1")


def test_two_terminals_and_terminal_not_last() -> None:
    extra = {**events()[4], "sequence_number": 5}
    expect(observations(sse("replay", [*events(), extra], 0.0)), "2 terminal events")
    after = {"type": "response.output_text.delta", "sequence_number": 5, "delta": "late"}
    expect(observations(sse("replay", [*events(), after], 0.0)), "is not last")


def test_terminal_at_different_seqs_across_reads() -> None:
    other = [*events()[:4], {**events()[4], "sequence_number": 7}]
    expect(observations(sse("create", events(), 0.0), sse("replay", other, 1.0)), "terminal events at different seqs")


def test_a_close_delimited_read_cut_by_a_kill_only_counts_up_to_where_it_got() -> None:
    """A server killed mid-stream closes a ``Connection: close`` stream cleanly: the transport says
    "complete", but with no terminal event the read reached only its last frame (CI flake of the
    load suite against the tiny target). With a terminal event, the same gap is a gap."""
    cut = sse("replay", events()[:2], 1.0)  # ended "complete", no terminal
    assert all_problems(observations(sse("create", events(), 0.0), cut, stops=[1.01])) == []
    holed = sse("replay", [*events()[:2], events()[4]], 1.0)
    expect(observations(sse("create", events(), 0.0), holed, stops=[1.01]), "missing seq(s) [2, 3]")


def test_partial_stream_without_terminal_is_caught_unless_the_server_stopped() -> None:
    cut = sse("replay", events()[:3], 1.0)
    expect(observations(cut), "partial SSE stream")
    assert all_problems(observations(cut, stops=[1.01])) == []


def test_terminal_status_that_changes_or_goes_back_is_caught() -> None:
    expect(observations(*clean(), get(3.0, "in_progress")), "'completed' observed")
    expect(observations(*clean(), get(3.0, "failed")), "then 'failed'")


def test_overlapping_observations_are_not_ordered() -> None:
    # an in_progress GET that started before the terminal frame was seen is no regression
    assert all_problems(observations(*clean(), get(0.01, "in_progress"))) == []


def test_acknowledged_response_answering_404_is_lost() -> None:
    expect(observations(*clean(), get(3.0, "", code=404)), "an acknowledged response was lost")


def test_5xx_is_caught() -> None:
    expect(observations(*clean(), get(3.0, "", code=500)), "-> 500")


def test_503_while_the_server_is_being_stopped_is_no_loss_but_any_other_5xx_is() -> None:
    """A draining server may refuse a read with 503 (docs/protocol.md §6): only while a stop falls
    inside the call; the same 503 with no stop, or a 500 during the stop, is still caught."""
    during = get(3.0, "", code=503)
    assert all_problems(observations(*clean(), during, stops=[during.started_at])) == []
    expect(observations(*clean(), get(3.0, "", code=503)), "-> 503")
    expect(observations(*clean(), get(3.0, "", code=500), stops=[3.0]), "-> 500")


def test_output_that_does_not_match_the_markers_is_caught() -> None:
    expect(observations(sse("create", events("a1:d0 "), 0.0)), "completed output 'a1:d0 '")
    # after a crash the markers record a second attempt: its text is what must be final
    markers = [f"start attempt=1 id={RID} from=0", "delta 0", f"start attempt=2 id={RID} from=0", "delta 0", "delta 1", "done"]
    expect(observations(*clean(), markers=markers), "predict 'a2:d0 a2:d1 '")


def test_status_observations_come_from_gets_cancels_and_terminal_frames() -> None:
    seen = status_observations(observations(*clean()))[RID]
    assert [s.status for s in seen] == ["completed", "completed", "completed"]


frames_st = st.lists(
    st.builds(SSEFrame, event=st.one_of(st.none(), st.text(max_size=10)), data=st.one_of(st.text(max_size=40), st.just('{"sequence_number": 1}'),
              st.just('{"type": "response.completed", "sequence_number": "x", "response": 3}')), t=st.floats(0, 5)),
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["create", "replay", "get", "poll", "cancel"]), frames_st, st.one_of(st.none(), st.integers(-2, 600)),
                          st.one_of(st.none(), st.integers(), st.text(max_size=5), st.dictionaries(st.text(max_size=5), st.text(max_size=5)))), max_size=5))
def test_garbage_never_crashes_the_invariants(calls) -> None:
    recorded = []
    for name, frames, status, body in calls:
        recorded.append(HttpCall(name=name, method="GET", url=f"{BASE}/responses/{RID}", status=status, content_type="text/event-stream" if frames else None,
                                 frames=frames, body=body, params={"starting_after": "abc"}))
    assert isinstance(all_problems(observations(*recorded)), list)


# -- the invocations wire: cursors are ``id:`` lines, resume with last_event_id ---------------
IID = "inv_abc123"


def inv_frames(kinds: list[tuple[int, str, dict]], t0: float) -> list[SSEFrame]:
    return [SSEFrame(event=k, data=json.dumps({"type": k, "event_id": n, "invocation_id": IID, **extra}), id=str(n), t=t0 + 0.01 * i)
            for i, (n, k, extra) in enumerate(kinds)]


def inv_read(kinds, t0: float, cursor: int | None = None, ended: str = "complete") -> HttpCall:
    params = {"last_event_id": str(cursor)} if cursor is not None else {}
    return HttpCall(name="replay", method="GET", url=f"{BASE}/invocations/{IID}", params=params, status=200,
                    content_type="text/event-stream", frames=inv_frames(kinds, t0), ended=ended, started_at=t0, ended_at=t0 + 0.1)


def inv_obs(*calls: HttpCall) -> Observations:
    from conformance.explore.invariants import INVOCATIONS

    markers = [f"start attempt=1 id={IID} from=0", "delta 0", "done"]
    return Observations(calls=list(calls), responses={IID: Tracked(IID, "t", {"deltas": 1, "tag": "t"}, 0.0)},
                        markers={"t": markers}, wire=INVOCATIONS)


INV = [(1, "invocation.started", {"attempt": 1}), (2, "invocation.delta", {"index": 0, "text": "a1:d0 "}),
       (3, "invocation.completed", {"output": "a1:d0 "})]


def test_invocations_wire_clean_and_broken() -> None:
    assert all_problems(inv_obs(inv_read(INV, 0.0), inv_read(INV[1:], 1.0, cursor=1))) == []
    rewritten = [INV[0], (2, "invocation.delta", {"index": 0, "text": "a2:d0 "}), INV[2]]
    assert any("seq 2 rewritten" in p for p in all_problems(inv_obs(inv_read(INV, 0.0), inv_read(rewritten, 1.0))))
    gap = [INV[0], INV[2]]
    assert any("missing seq(s) [2]" in p for p in all_problems(inv_obs(inv_read(INV, 0.0), inv_read(gap, 1.0))))
    wrong_output = [INV[0], INV[1], (3, "invocation.completed", {"output": "a1:d0 a1:d0 "})]
    assert any("markers predict" in p for p in all_problems(inv_obs(inv_read(wrong_output, 0.0))))
    interrupted_then_completed = [inv_read([INV[0], (3, "invocation.interrupted", {})], 0.0), inv_read(INV, 1.0)]
    problems = all_problems(inv_obs(*interrupted_then_completed))
    assert any("then 'completed'" in p for p in problems), problems


# -- judging while reader threads still write --------------------------------------------------
class _FinishingFrames(list):
    """The frames of a live stream whose reader thread delivers the terminal event and ends the
    call right after the ``copies``-th copy of the frames: somewhere in that range lies the
    interleaving (frames copied, then ``ended`` read) that made a judge of the live objects
    report a stream cut short that was not."""

    def __init__(self, call: HttpCall, last: SSEFrame, copies: int) -> None:
        super().__init__(call.frames)
        self.call, self.last, self.left = call, last, copies

    def __iter__(self):
        items = list(super().__iter__())
        self.left -= 1
        if self.left == 0:
            self.append(self.last)
            self.call.ended_at = self.last.t
            self.call.ended = "complete"
        return iter(items)


@pytest.mark.parametrize("copies", range(1, 13))
def test_a_stream_that_ends_while_being_judged_is_not_called_cut(copies: int) -> None:
    live = sse("create", events(), 0.0, ended="in_flight")
    terminal = live.frames.pop()
    live.frames = _FinishingFrames(live, terminal, copies)
    for _ in range(copies):  # one check after another while the stream ends
        assert all_problems(observations(live)) == []
    assert live.ended == "complete"  # the interleaving did happen
    assert all_problems(observations(live)) == []  # and the whole stream passes


def test_a_json_call_still_in_flight_is_not_judged() -> None:
    pending = get(3.0, "in_progress")
    pending.ended, pending.ended_at = "in_flight", 0.0  # body parsed, end time not yet written
    assert all_problems(observations(*clean(), pending)) == []
    pending.ended, pending.ended_at = "complete", 3.001
    expect(observations(*clean(), pending), "then 'in_progress'")


def refused_replay(t: float, code: int = 400) -> HttpCall:
    body = {"error": {"type": "invalid_request_error", "code": "not_streamed", "message": "cannot replay", "param": None}}
    return HttpCall(name="replay", method="GET", url=f"{BASE}/responses/{RID}", params={"stream": "true", "starting_after": 1},
                    status=code, content_type="application/json", body=body, ended="complete", started_at=t, ended_at=t + 0.001)


def test_a_replay_refused_with_400_is_reported_with_its_status_and_body() -> None:
    """A replay of an acknowledged stream response answered 400 (e.g. after a restart): the
    problem shows the status and the body the server gave, not "0 frames"."""
    problems = expect(observations(*clean(), refused_replay(3.0)), "was refused at t=3.000")
    [refused] = [p for p in problems if "refused" in p]
    assert "HTTP 400" in refused and '"code": "not_streamed"' in refused and "cannot replay" in refused, refused


def test_a_replay_of_a_response_created_without_stream_may_be_refused() -> None:
    obs = observations(*clean(), refused_replay(3.0))
    obs.responses[RID] = Tracked(RID, "tag1", {"deltas": 2, "tag": "tag1"}, acked_at=0.0, stream=False)
    assert not [p for p in all_problems(obs) if "refused" in p]


def test_a_replay_refused_after_a_cancel_is_a_reading_the_documents_allow() -> None:
    """docs/protocol.md §6: published packages answer a replay after cancel with 400 ("stream
    gone"); only before any cancel is a refused replay a problem."""
    cancel = HttpCall(name="cancel", method="POST", url=f"{BASE}/responses/{RID}/cancel", status=200,
                      content_type="application/json", body={"id": RID, "status": "cancelled"}, started_at=2.0, ended_at=2.01)
    assert not [p for p in all_problems(observations(*clean(), cancel, refused_replay(3.0))) if "refused" in p]
    expect(observations(*clean(), refused_replay(1.5), cancel), "was refused at t=1.500")  # before the cancel


def test_answer_of_names_status_and_body_or_frames() -> None:
    from conformance.explore.invariants import answer_of

    assert answer_of(refused_replay(1.0)).startswith("HTTP 400, 0 frames, complete, body: {\"error\": ")
    assert answer_of(sse("replay", events(), 1.0)) == "HTTP 200, 5 frame(s), complete"
    no_answer = HttpCall(name="replay", method="GET", url=BASE, ended="error", error="connection refused")
    assert answer_of(no_answer) == "no answer (error: connection refused)"
