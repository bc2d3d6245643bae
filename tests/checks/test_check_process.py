"""exit, evidence (ALWAYS), notes (ALWAYS)."""

from __future__ import annotations

from conformance.checks.process import check_evidence, check_exit, check_notes
from conformance.history import FaultRecord, IncarnationRecord
from conformance.model import FaultSpec

from .builders import SIGKILL_HELD, SIGTERM_HELD, crash_run, make_cell, make_history, messages, normal_run

# ------------------------------------------------------------------ exit


def test_exit_passes():
    history = make_history(crash_run(), fault_kind="sigterm", exit_mode="graceful")
    assert check_exit(history, "graceful", make_cell(fault=SIGTERM_HELD)) == []


def test_exit_killed_where_graceful_expected():
    history = make_history(crash_run(), fault_kind="sigterm", exit_mode="killed_after_grace")
    [v] = check_exit(history, "graceful", make_cell(fault=SIGTERM_HELD))
    assert "expected exit mode 'graceful', observed 'killed_after_grace'" in v.message
    assert "sigterm@held" in v.evidence


def test_exit_cross_checked_with_incarnation():
    history = make_history(crash_run(), fault_kind="sigterm", exit_mode="graceful")
    history.incarnations[0].exit_mode = "killed"
    [v] = check_exit(history, "graceful", make_cell(fault=SIGTERM_HELD))
    assert "incarnation 0 recorded 'killed'" in v.message


def test_exit_incarnation_missing():
    history = make_history(crash_run(), fault_kind="sigterm", exit_mode="graceful")
    history.faults[0].incarnation = 7
    [v] = check_exit(history, "graceful", make_cell(fault=SIGTERM_HELD))
    assert "observed no such incarnation record" in v.message


def test_exit_without_process_fault():
    history = make_history(normal_run())
    history.faults.append(FaultRecord("disconnect", "after_events:3", "frame 3", 1.0, 0))
    [v] = check_exit(history, "graceful", make_cell())
    assert "observed no process fault" in v.message
    assert "disconnect" in v.evidence


def test_exit_uses_first_process_fault():
    history = make_history(crash_run(), fault_kind="sigkill", exit_mode="killed")
    history.faults.insert(0, FaultRecord("pause", "held", "held 3", 0.1, 0))
    assert check_exit(history, "killed", make_cell(fault=SIGKILL_HELD)) == []


# ------------------------------------------------------------------ evidence


def test_evidence_passes_for_real_crash():
    assert check_evidence(make_history(crash_run()), None, make_cell(fault=SIGKILL_HELD)) == []


def test_evidence_not_checked_without_fault():
    assert check_evidence(make_history(normal_run()), None, make_cell()) == []


def test_evidence_no_fault_recorded():
    history = make_history(normal_run())
    [v] = check_evidence(history, None, make_cell(fault=SIGKILL_HELD))
    assert v.message.startswith("fault did not happen:")
    assert "expected a sigkill@held fault record, observed none" in v.message


def test_evidence_fault_with_no_observation():
    history = make_history(crash_run())
    history.faults[0].observed = None
    [v] = check_evidence(history, None, make_cell(fault=SIGKILL_HELD))
    assert v.message.startswith("fault did not happen:")
    assert "expected an observation of its trigger, observed none" in v.message


def test_evidence_process_fault_without_restart():
    history = make_history(crash_run(), restart=False)
    [v] = check_evidence(history, None, make_cell(fault=SIGKILL_HELD))
    assert "expected a restart after the fault, observed none" in v.message
    # restart: false in the path: no restart is what the cell asked for
    spec = FaultSpec(kind="sigkill", at="held", restart=False)
    assert check_evidence(history, None, make_cell(fault=spec)) == []


def test_evidence_restart_never_ready_or_missing():
    history = make_history(crash_run())
    history.incarnations[1].ready_at = None
    [v] = check_evidence(history, None, make_cell(fault=SIGKILL_HELD))
    assert "to become ready, observed no ready_at" in v.message
    history.incarnations.pop()
    [v] = check_evidence(history, None, make_cell(fault=SIGKILL_HELD))
    assert "restarted incarnation 1 in the history, observed none" in v.message


def test_evidence_process_never_exited():
    history = make_history(crash_run())
    history.incarnations[0].exited_at = None
    history.faults[0].exit_mode = None
    text = messages(check_evidence(history, None, make_cell(fault=SIGKILL_HELD)))
    assert "expected a recorded exit mode, observed none" in text
    assert "still alive (no exited_at)" in text


def test_evidence_held_marker_missing():
    history = make_history(crash_run())
    history.markers = [m for m in history.markers if not m.startswith("held")]
    [v] = check_evidence(history, None, make_cell(fault=SIGKILL_HELD))
    assert "expected a `held` marker line" in v.message
    assert "start attempt=1" in v.evidence


def test_evidence_wrong_fault_kind():
    history = make_history(crash_run(), fault_kind="sigterm", exit_mode="graceful")
    [v] = check_evidence(history, None, make_cell(fault=SIGKILL_HELD))
    assert "expected a sigkill fault, observed only ['sigterm']" in v.message


def test_evidence_crash_twice_needs_two_process_faults():
    spec = FaultSpec(kind="crash_twice", at="held")
    history = make_history(crash_run(), fault_kind="crash_twice")
    [v] = check_evidence(history, None, make_cell(fault=spec))
    assert "expected two process faults for crash_twice, observed 1" in v.message
    history.incarnations[1].exited_at = 6.0
    history.incarnations[1].exit_mode = "killed"
    history.incarnations.append(IncarnationRecord(index=2, pid=1002, started_at=6.1, ready_at=6.5))
    history.faults.append(
        FaultRecord("sigkill", "held", "held 3", 6.0, 1, exit_mode="killed", restarted_as=2)
    )
    assert check_evidence(history, None, make_cell(fault=spec)) == []


def test_evidence_non_process_fault_needs_observation_only():
    spec = FaultSpec(kind="disconnect", at="after_events", after_events=3)
    history = make_history(normal_run())
    history.faults.append(FaultRecord("disconnect", "after_events:3", "3 frames", 1.0, 0))
    assert check_evidence(history, None, make_cell(fault=spec)) == []
    history.faults[0].observed = None
    [v] = check_evidence(history, None, make_cell(fault=spec))
    assert v.message.startswith("fault did not happen:")


# ------------------------------------------------------------------ notes


def test_notes():
    history = make_history(normal_run())
    history.notes = ["info: port 1234", "not testable: target lacks cancel", "Executor error: boom"]
    violations = check_notes(history, None, make_cell())
    assert [v.message.rpartition("observed note: ")[2] for v in violations] == ["not testable: target lacks cancel", "Executor error: boom"]
    assert all(v.evidence is None for v in violations)  # the note is quoted once, in the message
    history.notes = ["info: fine"]
    assert check_notes(history, None, make_cell()) == []
