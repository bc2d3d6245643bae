"""The executor's catch-up at a ``held k`` trigger (``CellRun._catch_up_live``), without a server.

A handler emits deltas 0..k, then writes ``held k``.  Under load the marker can be on disk before
the client has even read the streamed create call's response headers; the fault must still
wait until the live stream shows the k+1 deltas, or the fault record has no live cursor
(``last_seq_before``) and the replay check finds "no live frame precedes the fault" (the
crosscutting X1[C] / X1[T] flake).
"""

from __future__ import annotations

import json
from types import SimpleNamespace

from conformance.executor import CellRun
from conformance.history import HttpCall, SSEFrame


def frame(kind: str, seq: int) -> SSEFrame:
    data = json.dumps({"type": kind, "sequence_number": seq})
    return SSEFrame(event=kind, data=data, raw=f"event: {kind}\ndata: {data}\n\n")


def fake_run(call: HttpCall, arrive: list, request: dict) -> SimpleNamespace:
    """What ``_catch_up_live`` uses of a CellRun.  Its ``await_`` evaluates the predicate; each
    time it is false, the next thing in ``arrive`` happens on the wire (a stand-in for time
    passing), and the predicate is asked again.  ``asked`` counts the evaluations."""
    run = SimpleNamespace(create_call=call, cell=SimpleNamespace(request=request), asked=0,
                          create_in_flight=lambda: call.ended == "in_flight", _last_seen=lambda: "")

    def await_(predicate, what, last_seen):
        while True:
            run.asked += 1
            if predicate():
                return True
            assert arrive, f"waited for {what} after everything arrived"
            arrive.pop(0)()

    run.await_ = await_
    return run


def test_a_held_marker_before_the_stream_headers_waits_for_the_deltas():
    kinds = ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"]
    deltas_upto_2 = [frame(k, i) for i, k in enumerate(kinds + ["response.output_text.delta"] * 3)]
    call = HttpCall("create", "POST", "http://t/responses", ended="in_flight")  # nothing received yet: no status, no type

    def headers():
        call.status, call.content_type = 200, "text/event-stream"

    def more_frames():
        call.frames.extend(deltas_upto_2[len(call.frames): len(call.frames) + 3])

    arrive = [headers] + [more_frames] * 5
    run = fake_run(call, arrive, {"stream": True, "background": True, "store": True})
    CellRun._catch_up_live(run, "held 2")
    shown = [f for f in call.frames if f.type == "response.output_text.delta"]
    assert len(shown) == 3, f"the fault would fire with {len(shown)} of the 3 deltas emitted before 'held 2' shown"
    assert run.asked > 1


def test_a_call_that_is_no_stream_does_not_wait():
    call = HttpCall("create", "POST", "http://t/responses", ended="in_flight")
    run = fake_run(call, [], {"stream": False, "background": True})
    CellRun._catch_up_live(run, "held 2")  # a JSON answer shows no deltas: nothing to wait for
    assert run.asked == 0
    call.status, call.content_type = 200, "application/json"
    run = fake_run(call, [], {"stream": True, "background": True})
    CellRun._catch_up_live(run, "held 2")  # a stream request answered with JSON: no wait either
    assert run.asked == 1
