"""``persisted``: whether the response survived (true) or left no trace (false)."""

from __future__ import annotations

from typing import Any

from conformance.history import History, Violation
from conformance.model import Cell

from ._util import call_summary


def check_persisted(history: History, expected: Any, cell: Cell) -> list[Violation]:
    """true: at least one ``get`` call, every one answered 200, and the final object came from
    it (``final_source == "get"``).  false: at least one ``get`` call, every one answered 404,
    and no state file names the cell's tag or response id."""
    if not isinstance(expected, bool):
        return [Violation("persisted", f"expected persisted must be true or false, got {expected!r}")]
    gets = history.calls_named("get")
    want = 200 if expected else 404
    if not gets:
        return [
            Violation(
                "persisted",
                f"expected persisted={str(expected).lower()} shown by a `get` answering {want}; "
                "no `get` call was made",
                evidence=f"calls made: {', '.join(sorted({c.name for c in history.calls})) or 'none'}",
            )
        ]
    violations: list[Violation] = []
    for n, call in enumerate(gets, start=1):
        if call.status != want:
            observed = call.status if call.status is not None else f"transport error {call.error!r}"
            violations.append(
                Violation(
                    "persisted",
                    f"expected persisted={str(expected).lower()}: `get` #{n} should answer {want}, "
                    f"observed {observed}",
                    evidence=call_summary(call),
                )
            )
    if expected:
        if history.final_source != "get":
            violations.append(
                Violation(
                    "persisted",
                    f"expected the final response to come from the `get` call, observed "
                    f"final_source={history.final_source!r}",
                )
            )
    elif history.state_dir_hits:
        hits = history.state_dir_hits
        violations.append(
            Violation(
                "persisted",
                f"expected no state file naming the tag or response id, observed {len(hits)}",
                evidence=", ".join(hits[:10]) + (f" ... {len(hits) - 10} more" if len(hits) > 10 else ""),
            )
        )
    return violations
