"""``cancel_queued`` (docs/protocol.md §7.5, §7.4): a queued input that is cancelled ends
``cancelled`` with ``invocation.cancelled`` as its only event, attempt 0, and its handler never
runs.  A good history passes; each broken one fails with the matching message."""

from __future__ import annotations

import copy

import pytest

from conformance.checks import run_checks
from conformance.checks.invocations import check_cancel_queued
from conformance.history import History, HttpCall, SteeredInput
from conformance.model import FaultSpec

from .invocation_builders import inv_cell, iframe

QID = "inv_fedcba9876543210fedcba9876543210"
SNAP = {"invocation_id": QID, "session_id": "sess-1", "status": "cancelled", "output": "", "attempt": 0,
        "entry_mode": "resumed", "error": None, "last_event_id": 1}
CELL = inv_cell({"cancel_queued": True}, fault=FaultSpec(kind="queue", at="held"))


def good() -> History:
    url = f"http://127.0.0.1:1/invocations/{QID}"
    return History(
        cell_id="invocations/test::R1[Q]", profile="invocations",
        cancelled_queued=SteeredInput(index=1, tag="t-c1", invocation_id=QID, post_status="queued", markers=[]),
        calls=[
            HttpCall("queued_post", "POST", "http://127.0.0.1:1/invocations", status=200, content_type="application/json",
                     body={**SNAP, "status": "queued", "last_event_id": 0}),
            HttpCall("queued_cancel", "POST", url + "/cancel", status=200, content_type="application/json", body=SNAP),
            HttpCall("queued_get", "GET", url, status=200, content_type="application/json", body=SNAP),
            HttpCall("queued_replay", "GET", url, status=200, content_type="text/event-stream",
                     frames=[iframe(1, "invocation.cancelled", iid=QID)]),
        ],
    )


def test_good_history_passes_and_round_trips():
    assert check_cancel_queued(good(), True, CELL) == []
    assert check_cancel_queued(History.from_json(good().to_json()), True, CELL) == []
    assert [v for v in run_checks(good(), CELL) if v.check == "cancel_queued"] == []


def _break(what: str) -> History:
    h = copy.deepcopy(good())
    calls = {c.name: c for c in h.calls}
    if what == "handler ran":
        h.cancelled_queued.markers = ["start attempt=1 id=x from=0", "interrupted"]
    elif what == "started event":
        calls["queued_replay"].frames = [iframe(1, "invocation.started", iid=QID, attempt=1, entry_mode="resumed"),
                                         iframe(2, "invocation.cancelled", iid=QID)]
    elif what == "attempt 1":
        calls["queued_get"].body = {**SNAP, "attempt": 1}
    elif what == "cancel refused":
        calls["queued_cancel"].status, calls["queued_cancel"].body = 409, {"error": {"code": "invocation_busy"}}
    elif what == "not queued":
        h.cancelled_queued.post_status = "in_progress"
    elif what == "no transcript":
        calls["queued_replay"].status = 404
    elif what == "never cancelled":
        h.calls = [c for c in h.calls if c.name != "queued_cancel"]
    return h


@pytest.mark.parametrize("what, message", [
    ("handler ran", "its handler ran"),
    ("started event", "exactly one invocation.cancelled"),
    ("attempt 1", "expected (200, 'cancelled', 0, 'resumed')"),
    ("cancel refused", "answered 409"),
    ("not queued", "expected 'queued'"),
    ("no transcript", "no transcript"),
    ("never cancelled", "no cancel of the queued input"),
])
def test_broken_histories_fail(what, message):
    found = check_cancel_queued(_break(what), True, CELL)
    assert any(message in v.message for v in found), (what, [v.message for v in found])


def test_nothing_cancelled_and_bad_expectation_fail():
    assert check_cancel_queued(History(cell_id="x", profile="invocations"), True, CELL)[0].message.startswith("no input")
    assert "must be true" in check_cancel_queued(good(), False, CELL)[0].message
