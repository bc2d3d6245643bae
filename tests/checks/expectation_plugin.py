"""A third-party expectation plugin, as a user would write one: the key ``delta_count: N`` (the
live stream of the create call carried exactly N text deltas), with its schema and checker."""

from __future__ import annotations

from typing import Any

from conformance.expectations import Expectation, Probes
from conformance.expectations.hooks import hookimpl
from conformance.history import History, Unknown, Violation
from conformance.model import Cell

KEY = "delta_count"


def check_delta_count(history: History, expected: Any, cell: Cell) -> list[Violation]:
    create = next((c for c in history.calls if c.name == "create" and c.frames), None)
    if create is None:
        return [Unknown(KEY, "no live stream of the create call was recorded: the deltas cannot be counted")]
    seen = sum(1 for f in create.frames if f.type == "response.output_text.delta")
    if seen != expected:
        return [Violation(KEY, f"expected {expected} text deltas on the live stream, observed {seen}")]
    return []


def _runnable(value: Any, plan: Any) -> list[tuple[tuple[Any, ...], str]]:
    if not plan.stream:
        return [((KEY,), f"{plan.where}delta_count counts the live stream's deltas: needs stream=true")]
    return []


@hookimpl
def conformance_expectations(registry: Any) -> None:
    registry.register(Expectation(
        KEY, frozenset({"responses"}), {"type": "integer", "minimum": 0}, check_delta_count,
        "N: the live stream of the create call carried exactly N text deltas",
        runnable=_runnable, probes=lambda value, cell: Probes(replays=("start",))))
