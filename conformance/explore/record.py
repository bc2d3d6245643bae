"""What a suite run leaves for the HTML report: its recording as one History (pure assembly of
what the run already holds: the recorded calls, the marker lines, the targets' incarnations)."""

from __future__ import annotations

import dataclasses
from typing import Any

from conformance.history import FaultRecord, History, HttpCall, IncarnationRecord
from harness.process import Target

__all__ = ["incarnations_of", "suite_history"]


def incarnations_of(target: Target, t0: float, first_index: int = 0) -> list[IncarnationRecord]:
    """The target's incarnations as History records, times moved to seconds since ``t0`` (a
    ``time.monotonic()``) and indices from ``first_index`` (several targets on one axis)."""
    shift = target.t0 - t0
    names = {f.name for f in dataclasses.fields(IncarnationRecord)}
    records = []
    for inc in target.incarnations:
        data = {k: v for k, v in dataclasses.asdict(inc).items() if k in names}
        for key in ("started_at", "ready_at", "exited_at"):
            if data.get(key) is not None:
                data[key] += shift
        data["log_path"] = str(data["log_path"]) if data.get("log_path") is not None else None
        data["index"] = first_index + inc.index
        records.append(IncarnationRecord(**data))
    return records


def suite_history(name: str, t0: float, calls: list[HttpCall], targets: list[Target], *, profile: str = "responses",
                  markers: dict[str, list[str]] | None = None, faults: list[FaultRecord] | None = None,
                  notes: list[str] | None = None) -> History:
    """One History for a suite run: every call, the markers of every tag (in tag order), the
    incarnations of every target (numbered one after the other) and the faults given."""
    incarnations: list[IncarnationRecord] = []
    for target in targets:
        incarnations += incarnations_of(target, t0, first_index=len(incarnations))
    lines: list[Any] = [line for tag in sorted(markers or {}) for line in (markers or {})[tag]]
    return History(cell_id=name, profile=profile, calls=list(calls), markers=lines, incarnations=incarnations,
                   faults=list(faults or []), notes=list(notes or []))
