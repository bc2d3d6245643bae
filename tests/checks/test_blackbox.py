"""The black-box tier's pure parts: ``blackbox.derive`` over the shipped tables, the
``output: streamed`` checker fed broken histories, and the executor's placement proofs (a fault
that did not land mid-run makes the cell not testable, never a pass)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from conformance.blackbox import derive
from conformance.checks.output import check_output, streamed_text
from conformance.contract import collect_cells, load_contracts
from conformance.executor import CellRun, NotTestable
from conformance.history import FaultRecord, HttpCall, SSEFrame
from conformance.model import FaultSpec

from .builders import SIGKILL_HELD, crash_run, make_cell, make_history, normal_run, retype, text_of

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cells():
    return {c.id: c for c in collect_cells(load_contracts(REPO / "contracts" / "**" / "*.yaml"))}


def test_derive_keeps_what_any_server_must_do_and_drops_what_needs_the_script(cells):
    cell = cells["responses/resilience::R1[C,stream=true]"]
    bb = derive(cell)
    assert not isinstance(bb, str) and bb.blackbox and bb.script == {}
    assert bb.fault == FaultSpec(kind="sigkill", at="first_delta")  # held -> placed by the wire
    assert "attempts" not in bb.expect and "output_text" not in bb.expect
    assert bb.expect["output"] == "streamed"  # a replay from the start exists to compare with
    assert "reset_event" not in bb.expect["replay"] and bb.expect["replay"]["gap_free"] is True
    for key in ("status", "exit", "persisted"):
        assert bb.expect[key] == cell.expect[key]
    no_stream = derive(cells["responses/resilience::R1[C,stream=false]"])
    assert no_stream.fault.at == "in_progress" and "output" not in no_stream.expect  # nothing to compare with


@pytest.mark.parametrize("cell_id, reason", [
    ("responses/crosscutting::X1[T]", "crash_twice"),
    ("responses/crosscutting::X4[C,stream=true]", "hold_at: -1"),
    ("responses/resilience::R1[B,stream=false]", "visible only on a live stream"),
    ("responses/cancel::FG[held,stream=false]", "foreground non-stream"),
    ("invocations/lifecycle::R1[S]", "steering"),
    ("invocations/lifecycle::F1[A]", "fail_at"),
    ("invocations/stops::NL[B]", "after the run's last delta"),
    ("invocations/retention::W1[A]", "retention window"),
    ("responses/stops::S1[G,stream=true]", "drain"),
    ("responses/network::BG[RS]", "network-fault"),
])
def test_derive_names_why_a_cell_needs_control(cells, cell_id, reason):
    result = derive(cells[cell_id])
    assert isinstance(result, str) and reason in result, result


def test_at_least_100_cells_of_both_profiles_can_be_judged_black_box(cells):
    derived = [derive(c) for c in cells.values()]
    ran = [d for d in derived if not isinstance(d, str)]
    assert len(ran) >= 100
    assert {c.profile for c in ran} == {"responses", "invocations"}
    assert all(c.fault.at != "held" for c in ran)  # no marker trigger survives


# -- output: streamed --------------------------------------------------------------------
def test_streamed_output_passes_when_the_final_text_is_what_the_stream_announced():
    history = make_history(normal_run(), replays=("start",))
    assert check_output(history, "streamed", make_cell()) == []
    crashed = make_history(crash_run(checkpoint_every=2), replays=("start",))  # reset carries a1:d0 a1:d1
    assert check_output(crashed, "streamed", make_cell(fault=SIGKILL_HELD)) == []


def test_streamed_output_fails_when_the_final_text_differs():
    history = make_history(normal_run(), replays=("start",))
    history.final["output"][0]["content"][0]["text"] = text_of(1, range(5))  # one delta short
    [v] = check_output(history, "streamed", make_cell())
    assert "expected the final output text to be what the replay start announced" in v.message


def test_streamed_output_after_a_recovery_counts_the_reset_not_the_crashed_attempt():
    """The recovered attempt's reset carries its checkpoint; stale text of attempt 1 past the
    checkpoint is not output: a server that keeps it is caught."""
    scn = crash_run(checkpoint_every=3)  # checkpoint after d2, held after d3: attempt 2 resumes at d3
    history = make_history(scn, replays=("start",))
    assert check_output(history, "streamed", make_cell(fault=SIGKILL_HELD)) == []
    stale = text_of(1, range(4)) + text_of(2, range(3, 6))  # kept a1:d3, past the checkpoint
    history.final["output"] = [{"type": "message", "content": [{"type": "output_text", "text": stale}]}]
    [v] = check_output(history, "streamed", make_cell(fault=SIGKILL_HELD))
    assert repr(text_of(1, range(3)) + text_of(2, range(3, 6))) in v.message


def test_streamed_output_without_a_complete_stream_is_a_violation_not_a_pass():
    history = make_history(normal_run(), replays=())
    history.calls[0].frames[:] = history.calls[0].frames[:-1]  # the live stream never ended
    [v] = check_output(history, "streamed", make_cell())
    assert "no stream from the start ended on a terminal event" in v.message


def _inv(kind: str, eid: int, **fields) -> SSEFrame:
    data = json.dumps({"type": kind, "event_id": eid, **fields})
    return SSEFrame(event=kind, data=data, id=str(eid), raw=f"id: {eid}\nevent: {kind}\ndata: {data}\n\n")


def test_invocations_streamed_text_takes_the_latest_delta_of_each_index():
    frames = [_inv("invocation.started", 1, attempt=1), _inv("invocation.delta", 2, index=0, text="a1:d0 "),
              _inv("invocation.delta", 3, index=1, text="a1:d1 "), _inv("invocation.checkpoint", 4, index=0),
              _inv("invocation.started", 5, attempt=2), _inv("invocation.delta", 6, index=1, text="a2:d1 "),
              _inv("invocation.completed", 7, output="a1:d0 a2:d1 ")]
    assert streamed_text(frames) == "a1:d0 a2:d1 "


# -- placement proofs -------------------------------------------------------------------
def _run_with(frames: list[SSEFrame]) -> SimpleNamespace:
    live = HttpCall("create", "POST", "http://t/responses", status=200, frames=frames, ended="disconnected")
    run = SimpleNamespace(live_stream=live, TERMINAL_EVENT_TYPES=CellRun.TERMINAL_EVENT_TYPES,
                          COMPLETED_EVENT=CellRun.COMPLETED_EVENT, _last_seen=lambda: "",
                          await_=lambda predicate, what, last: predicate())
    return run


def _record(trigger: str = "first_delta", observed: str = "first delta (5 frames)") -> FaultRecord:
    return FaultRecord(kind="sigkill", trigger=trigger, observed=observed, t=1.0, incarnation=0)


def test_a_fault_after_the_run_ended_is_not_testable_and_says_what_to_change():
    finished = normal_run().live  # ends with response.completed
    with pytest.raises(NotTestable, match="longer-running `blackbox.input`"):
        CellRun._placed_before_fault(_run_with(finished), _record())
    with pytest.raises(NotTestable, match="completed .* before the sigkill"):
        CellRun._after_fault_placed(_run_with(finished), _record())



@pytest.mark.parametrize("status, body", [(200, {"status": "completed"}), (404, {"error": {}}), (200, {"status": "in_progress"})])
def test_the_in_progress_trigger_fires_only_on_a_run_seen_running(status, body):
    """Without a stream the fault is placed while GET says the run is not terminal; a terminal
    status or no status at all is not testable, never a fault placed after the end."""
    got = HttpCall("poll", "GET", "http://t/responses/resp_1", status=status, body=body)
    run = SimpleNamespace(cell=SimpleNamespace(fault=FaultSpec(kind="sigkill", at="in_progress")),
                          driver=SimpleNamespace(get=lambda rid, name: got))
    if body.get("status") == "in_progress":
        assert CellRun._trigger(run, "resp_1") == "GET 200 status in_progress"
    else:
        with pytest.raises(NotTestable, match="longer-running `blackbox.input`"):
            CellRun._trigger(run, "resp_1")


def test_a_fault_that_landed_mid_run_passes_the_placement_proofs():
    cut = crash_run().live  # attempt 1's frames up to the hold: no terminal
    CellRun._placed_before_fault(_run_with(cut), _record())
    CellRun._after_fault_placed(_run_with(cut), _record())
    # a SIGTERM's own response.failed is the fault's effect, not the run ending first
    failed = cut + [retype(cut[-1], type="response.failed", sequence_number=99)]
    CellRun._after_fault_placed(_run_with(failed), _record())


# -- the suites of conformance/suites/ against a black-box target ------------------------------
SUITE_MODULES = ("test_adversarial_responses", "test_adversarial_invocations", "test_load_responses",
                 "test_explore_responses", "test_explore_invocations", "test_multi_worker_responses", "test_store_contract")


def test_a_suite_that_does_not_say_it_runs_black_box_is_not_claimed_with_a_reason() -> None:
    from conformance.plugin import BLACKBOX_UNDECLARED, blackbox_suite_reason

    assert blackbox_suite_reason(SimpleNamespace()) == BLACKBOX_UNDECLARED  # says nothing: needs control
    assert blackbox_suite_reason(SimpleNamespace(BLACKBOX="")) == BLACKBOX_UNDECLARED
    assert blackbox_suite_reason(SimpleNamespace(BLACKBOX=False)) == BLACKBOX_UNDECLARED
    assert blackbox_suite_reason(SimpleNamespace(BLACKBOX=True)) is None
    assert blackbox_suite_reason(SimpleNamespace(BLACKBOX="needs control: x")) == "needs control: x"
    assert BLACKBOX_UNDECLARED.startswith("needs control: ")


@pytest.mark.parametrize("name, needs", [
    ("test_explore_responses", "needs control: the hold to place a crash"),
    ("test_explore_invocations", "needs control: the hold to place a crash"),
    ("test_multi_worker_responses", "needs control: the hold that keeps the owner's run going"),
    ("test_store_contract", None),
])
def test_each_suite_says_whether_it_runs_black_box_and_what_it_needs(name: str, needs: str | None) -> None:
    import importlib

    from conformance.plugin import blackbox_suite_reason

    reason = blackbox_suite_reason(importlib.import_module(f"conformance.suites.{name}"))
    assert reason == needs if needs is None else reason.startswith(needs), reason
    assert set(SUITE_MODULES) == {p.stem for p in (REPO / "conformance" / "suites").glob("test_*.py")}
