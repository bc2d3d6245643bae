"""Process-level expectations: ``exit`` (exit mode of the first process fault) and the two
checks that run on every cell: ``evidence`` (the fault really happened) and ``notes``
(executor notes that fail a cell)."""

from __future__ import annotations

from typing import Any

from conformance.history import FaultRecord, History, IncarnationRecord, Unknown, Violation
from conformance.model import PROCESS_FAULTS, Cell
from harness.markers import Held, parse_markers

from .network import net_fault_evidence
from .output import markers_excerpt

FAILING_NOTE_PREFIXES = ("not testable:", "executor error:")


def _incarnation(history: History, index: int | None) -> IncarnationRecord | None:
    if index is None:
        return None
    for record in history.incarnations:
        if record.index == index:
            return record
    return None


def _fault_str(fault: FaultRecord) -> str:
    return (
        f"{fault.kind}@{fault.trigger} observed={fault.observed!r} incarnation={fault.incarnation} "
        f"exit_mode={fault.exit_mode!r} restarted_as={fault.restarted_as!r} "
        f"last_seq_before={fault.last_seq_before!r}" + (f" detail={fault.detail!r}" if fault.detail else "")
    )


def _incarnations_str(history: History) -> str:
    if not history.incarnations:
        return "no incarnations recorded"
    return "; ".join(
        f"#{i.index} pid={i.pid} ready_at={i.ready_at} exited_at={i.exited_at} "
        f"exit_code={i.exit_code} exit_mode={i.exit_mode!r}"
        for i in history.incarnations
    )


def process_faults(history: History) -> list[FaultRecord]:
    """The recorded faults that are process faults, in order."""
    return [f for f in history.faults if f.kind in PROCESS_FAULTS]


def check_exit(history: History, expected: Any, cell: Cell) -> list[Violation]:
    """The first process fault's recorded exit mode equals ``expected``, and the incarnation it
    hit recorded the same exit mode."""
    faults = process_faults(history)
    if not faults:  # no process fault was placed: the history cannot say how one would have ended
        return [
            Unknown(
                "exit",
                f"expected exit mode {expected!r}, observed no process fault",
                evidence="faults: " + ("; ".join(_fault_str(f) for f in history.faults) or "none"),
            )
        ]
    fault = faults[0]
    incarnation = _incarnation(history, fault.incarnation)
    evidence = f"fault {_fault_str(fault)}; incarnations: {_incarnations_str(history)}"
    violations: list[Violation] = []
    if fault.exit_mode != expected:
        violations.append(
            Violation(
                "exit",
                f"expected exit mode {expected!r}, observed {fault.exit_mode!r}",
                evidence=evidence,
            )
        )
    if incarnation is None:
        violations.append(
            Violation(
                "exit",
                f"expected exit mode {expected!r} on incarnation {fault.incarnation}, observed no "
                "such incarnation record",
                evidence=evidence,
            )
        )
    elif incarnation.exit_mode != fault.exit_mode:
        violations.append(
            Violation(
                "exit",
                f"fault record says exit mode {fault.exit_mode!r} but incarnation "
                f"{incarnation.index} recorded {incarnation.exit_mode!r} (expected {expected!r})",
                evidence=evidence,
            )
        )
    return violations


def check_evidence(history: History, expected: Any, cell: Cell) -> list[Violation]:
    """Runs on every cell whose fault kind is not ``none``: the fault was really delivered
    where the cell says (observation seen, process exited, restarted, ``held`` marker).  A fault
    that did not happen as specified is an ``Unknown``: the cell was not run, not failed."""
    spec = cell.fault
    if spec.kind == "none":
        return []
    violations: list[Violation] = []
    want = spec.describe()
    all_faults = "; ".join(_fault_str(f) for f in history.faults) or "none"

    def fail(message: str, evidence: str | None = None) -> None:
        violations.append(
            Unknown("evidence", f"fault did not happen: {message}", evidence=evidence or all_faults)
        )

    if not history.faults:
        fail(f"expected a {want} fault record, observed none")
        return violations
    kinds = {spec.kind} | ({"sigkill"} if spec.kind == "crash_twice" else set())
    if not any(f.kind in kinds for f in history.faults):
        fail(
            f"expected a {spec.kind} fault, observed only "
            f"{sorted({f.kind for f in history.faults})}"
        )
    if spec.then is not None and not any(f.kind == spec.then for f in process_faults(history)):
        fail(f"expected a {spec.then} while the client was away after the {spec.kind}, observed none")
    if spec.kind == "crash_twice" and len(process_faults(history)) < 2:
        fail(
            f"expected two process faults for crash_twice, observed {len(process_faults(history))}"
        )
    held_expected = spec.at == "held" or any(f.trigger.startswith("held") for f in history.faults)
    if held_expected and not any(isinstance(m, Held) for m in parse_markers(history.markers)):
        fail(
            "expected a `held` marker line (trigger held), observed none",
            f"markers: {markers_excerpt(history.markers)}",
        )
    for n, fault in enumerate(history.faults, start=1):
        label = f"fault #{n} ({fault.kind}@{fault.trigger})"
        if fault.observed is None:
            fail(f"{label}: expected an observation of its trigger, observed none", _fault_str(fault))
        missing = net_fault_evidence(fault, cell)
        if missing is not None:
            fail(f"{label}: {missing}", _fault_str(fault))
        if fault.kind not in PROCESS_FAULTS:
            continue
        evidence = f"{_fault_str(fault)}; incarnations: {_incarnations_str(history)}"
        if fault.exit_mode is None:
            fail(f"{label}: expected a recorded exit mode, observed none", evidence)
        incarnation = _incarnation(history, fault.incarnation)
        if incarnation is None:
            fail(f"{label}: expected incarnation {fault.incarnation} in the history, observed none", evidence)
        elif incarnation.exited_at is None:
            fail(
                f"{label}: expected incarnation {fault.incarnation} to have exited, observed it "
                "still alive (no exited_at)",
                evidence,
            )
        if spec.restart:
            if fault.restarted_as is None:
                fail(f"{label}: expected a restart after the fault, observed none", evidence)
            else:
                successor = _incarnation(history, fault.restarted_as)
                if successor is None:
                    fail(
                        f"{label}: expected restarted incarnation {fault.restarted_as} in the "
                        "history, observed none",
                        evidence,
                    )
                elif successor.ready_at is None:
                    fail(
                        f"{label}: expected restarted incarnation {fault.restarted_as} to become "
                        "ready, observed no ready_at",
                        evidence,
                    )
    return violations


def check_notes(history: History, expected: Any, cell: Cell) -> list[Violation]:
    """Runs on every cell: executor notes starting ``not testable:`` or ``executor error:`` are
    ``Unknown`` findings (the cell could not be run as specified)."""
    return [
        Unknown("notes", f"expected a cell the executor could run, observed note: {note}")  # the note is its own evidence
        for note in history.notes
        if note.strip().lower().startswith(FAILING_NOTE_PREFIXES)
    ]
