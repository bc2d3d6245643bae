"""Checkers: pure functions ``History x expected x Cell -> list[Violation]``, one per expectation
key, no I/O.  A checker may also return an ``Unknown`` (history.py): the history cannot decide.

Each key's checker is registered with the key (``conformance.expectations``); ``ALWAYS`` lists
the checks that run on every cell (fault evidence, executor notes); ``run_checks`` runs both for
a cell and never raises: an expectation key without a checker and a checker that raises both
become Violations.
"""

from __future__ import annotations

from typing import Any, Callable

from conformance.expectations import registry
from conformance.history import STUCK_PREFIX, History, Violation
from conformance.model import Cell

from .handler import check_stopped
from .invocations import (
    check_cancel_queued,
    check_cursor,
    check_entry_modes,
    check_queue,
    check_readers,
    check_resume,
    check_steering,
)
from .http import check_content_type, check_error, check_http
from .network import check_reconnect, check_unblocked
from .output import check_attempts, check_output, check_output_text, predict_output
from .persisted import check_persisted
from .process import check_evidence, check_exit, check_notes
from .replay import check_replay, check_stream
from .status import check_status
from .terminal import check_one_terminal

Checker = Callable[[History, Any, Cell], list[Violation]]

ALWAYS: list[Checker] = [check_evidence, check_notes]
"""Checks run on every cell, whatever it expects (called with ``expected=None``)."""

_ALWAYS_NAMES = {check_evidence: "evidence", check_notes: "notes"}


def _run_one(name: str, checker: Checker, history: History, expected: Any, cell: Cell) -> list[Violation]:
    try:
        result = checker(history, expected, cell)
    except Exception as exc:  # a bad history must never crash the run
        return [
            Violation(
                name,
                f"checker raised {type(exc).__name__}: {exc} (expected {expected!r}); the history "
                "could not be judged",
                evidence=f"{type(exc).__name__}: {exc}",
            )
        ]
    if not isinstance(result, list) or not all(isinstance(v, Violation) for v in result):
        return [Violation(name, f"checker returned {type(result).__name__}, not a list of Violations")]
    return result


def stuck_violation(history: History, cell: Cell) -> Violation | None:
    """A response the target kept non-terminal past the deadline (a ``stuck:`` note) is one
    ``status`` violation naming the expected status, the status seen, since when and the last
    poll; None when there is no such note."""
    for note in history.notes:
        if note.startswith(STUCK_PREFIX):
            expected = cell.expect.get("status")
            want = f"final status {expected!r}" if expected is not None else "a terminal status"
            return Violation("status", f"expected {want}, observed {note[len(STUCK_PREFIX):].strip()}")
    return None


def run_checks(history: History, cell: Cell) -> list[Violation]:
    """All violations of one cell: the ``ALWAYS`` checks, then one checker per expectation key
    in ``cell.expect`` order.  Unknown keys are violations, never ignored.  A cell whose executor
    failed before its first request is judged by its notes alone (no knock-on violations)."""
    violations: list[Violation] = []
    for checker in ALWAYS:
        name = _ALWAYS_NAMES.get(checker, getattr(checker, "__name__", "always"))
        violations += _run_one(name, checker, history, None, cell)
    if not history.calls and any(v.check == "notes" for v in violations):
        # the executor failed before its first request (e.g. the target never started): every
        # other violation would only restate that, so the note is the whole verdict
        return [v for v in violations if v.check == "notes"]
    stuck = stuck_violation(history, cell)
    if stuck is not None:  # the run never got past the poll: what follows would only be knock-ons
        return violations + [stuck]
    reg = registry()
    for key, expected in cell.expect.items():
        spec = reg.get(key)
        if spec is None:
            violations.append(
                Violation(
                    key,
                    f"expectation {key!r} has no checker (known: {', '.join(reg.keys)}); it cannot be "
                    "judged, so the cell fails",
                )
            )
            continue
        violations += _run_one(key, spec.check, history, expected, cell)
    return violations


__all__ = [
    "ALWAYS",
    "Checker",
    "predict_output",
    "run_checks",
    "check_attempts",
    "check_content_type",
    "check_cursor",
    "check_entry_modes",
    "check_readers",
    "check_resume",
    "check_steering",
    "check_queue",
    "check_reconnect",
    "check_unblocked",
    "check_error",
    "check_evidence",
    "check_exit",
    "check_http",
    "check_notes",
    "check_output",
    "check_output_text",
    "check_persisted",
    "check_replay",
    "check_status",
    "check_stream",
]
