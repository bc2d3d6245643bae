"""Checker outcome "unknown": a history that cannot decide a check is not testable, a broken one
fails, a good one passes (history.Unknown, plugin.cell_verdict)."""

from __future__ import annotations

from conformance.checks import run_checks
from conformance.history import Unknown, Violation, outcome
from conformance.plugin import cell_verdict

from .builders import SIGKILL_HELD, crash_run, make_cell, make_history, normal_run

CRASH_EXPECT = {"status": "completed", "attempts": 2, "exit": "killed", "output": "full"}


def test_good_crash_history_passes():
    findings = run_checks(make_history(crash_run()), make_cell(CRASH_EXPECT, fault=SIGKILL_HELD))
    assert findings == [] and outcome(findings) == "valid"
    assert cell_verdict(findings, "MUST") == "pass"


def test_fault_never_placed_is_unknown_and_not_testable_at_every_level():
    """The run went to its end without the crash (a history of a normal run for a sigkill cell):
    the evidence and exit checks cannot decide, so the findings are Unknowns and the verdict is
    "not testable", never a pass nor a SHOULD warning."""
    history = make_history(normal_run())
    findings = run_checks(history, make_cell({"status": "completed", "exit": "killed"}, fault=SIGKILL_HELD))
    assert findings and all(isinstance(f, Unknown) for f in findings), findings
    assert {f.check for f in findings} == {"evidence", "exit"}
    assert outcome(findings) == "unknown"
    for level in ("MUST", "SHOULD", "MAY"):
        assert cell_verdict(findings, level) == "not_testable"
        assert cell_verdict(findings, level, in_baseline=True) == "not_testable"


def test_an_executor_note_is_unknown():
    history = make_history(normal_run())
    history.notes.append("not testable: trigger never observed: held")
    [finding] = run_checks(history, make_cell({"status": "completed", "output": "full"}))
    assert isinstance(finding, Unknown) and finding.check == "notes"
    assert cell_verdict([finding], "MAY") == "not_testable"


def test_broken_history_fails_and_is_no_unknown():
    history = make_history(crash_run())
    history.final["status"] = "failed"
    findings = run_checks(history, make_cell(CRASH_EXPECT, fault=SIGKILL_HELD))
    assert findings and not any(isinstance(f, Unknown) for f in findings), findings
    assert outcome(findings) == "invalid"
    assert cell_verdict(findings, "MUST") == "fail"
    assert cell_verdict(findings, "SHOULD") == "warn"
    assert cell_verdict(findings, "SHOULD", strict=True) == "fail"
    assert cell_verdict(findings, "MAY") == "info"
    assert cell_verdict(findings, "MUST", in_baseline=True) == "baseline"
    assert cell_verdict([], "MUST", in_baseline=True) == "stale_baseline"


def test_an_unknown_beside_a_violation_is_still_not_testable():
    """Jepsen's merge calls it invalid; the verdict stays "not testable" (the run was not the
    specified one, its violations may be knock-ons), and both texts stay listed."""
    findings = [Violation("status", "expected completed, observed failed"), Unknown("evidence", "fault did not happen")]
    assert outcome(findings) == "invalid"
    assert cell_verdict(findings, "SHOULD") == "not_testable"
