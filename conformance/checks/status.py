"""``status``: the final status of the response."""

from __future__ import annotations

from typing import Any

from conformance.history import History, Violation
from conformance.model import Cell

from ._util import excerpt


def check_status(history: History, expected: Any, cell: Cell) -> list[Violation]:
    """``history.final["status"]`` equals ``expected``; no final object is a violation."""
    if history.final is None:
        return [
            Violation(
                "status",
                f"expected final status {expected!r}, observed no final response object",
                evidence=f"final_source={history.final_source!r}",
            )
        ]
    observed = history.final.get("status") if isinstance(history.final, dict) else None
    if observed != expected:
        error = history.final.get("error") if isinstance(history.final, dict) else None
        evidence = f"final ({history.final_source}): status={observed!r}"
        if error:
            evidence += f" error={excerpt(error, 200)}"
        return [
            Violation(
                "status",
                f"expected final status {expected!r}, observed {observed!r}",
                evidence=evidence,
            )
        ]
    return []
