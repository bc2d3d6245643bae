"""``stopped``: was the handler stopped, judged from its markers (docs/protocol.md §3.4).

The test-control handler writes ``interrupted`` when a cancel, a client disconnect or a shutdown
reaches it while it runs or is held. A status alone cannot tell "stopped" from "ran to its end"
when nothing of the run is visible afterwards (a ``store=false`` create whose client left), and a
drained shutdown ends ``completed`` either way; the marker can.
"""

from __future__ import annotations

from typing import Any

from conformance.history import History, Violation
from conformance.model import Cell

from .output import markers_excerpt


def check_stopped(history: History, expected: Any, cell: Cell) -> list[Violation]:
    """true: some marker line is ``interrupted``; false: none is (the handler was never stopped)."""
    if not isinstance(expected, bool):
        return [Violation("stopped", f"expected stopped must be true or false, got {expected!r}")]
    if not any(line.startswith("start ") for line in history.markers):
        return [Violation("stopped", "the handler never started (no start marker): there is nothing to judge",
                          evidence=markers_excerpt(history.markers))]
    stops = [n for n, line in enumerate(history.markers) if line == "interrupted"]
    if expected and not stops:
        done = "done" in history.markers
        return [Violation(
            "stopped",
            "expected the handler to be stopped (marker 'interrupted'), observed "
            + ("that it ran to its end ('done')" if done else "no 'interrupted' marker"),
            evidence=markers_excerpt(history.markers),
        )]
    if not expected and stops:
        return [Violation(
            "stopped",
            f"expected the handler never to be stopped, observed 'interrupted' (marker line {stops[0] + 1})",
            evidence=markers_excerpt(history.markers),
        )]
    return []
