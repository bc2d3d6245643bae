"""What a finished test hands to the session: typed records that travel from a pytest-xdist
worker to the controller (as JSON text in ``report.user_properties``, the one channel xdist
carries) and become the ``cells`` and ``suites`` entries of the JSON report
(``conformance/schema/report.schema.json``).

A record is built once, where the verdict is decided (``plugin.py``), sent with ``to_json`` and
rebuilt with ``from_json``; nothing downstream re-parses a cell id: the contract, row, path and
variant travel as fields.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any

def _compact(record: Any) -> dict[str, Any]:
    """The record as a dict, without the optional fields left unset (``None``)."""
    return {k: v for k, v in asdict(record).items() if v is not None}


def _from_dict(cls: Any, data: dict[str, Any]) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown field(s) {', '.join(sorted(unknown))}")
    return cls(**data)


@dataclass(frozen=True)
class CellResult:
    """One contract cell's outcome: who it is (id and its parts, level, fault, contract source
    line), its verdict, and (when it ran) the evidence: violation texts, duration, the history
    file, incarnation count and readiness times, the cell's script.  ``missing``: the claims
    the target lacks (verdict ``not_claimed``); ``strict``: a SHOULD failed under strict."""

    id: str
    contract: str
    row: str
    path: str
    variant: str
    level: str
    fault: str
    source: str
    verdict: str
    missing: list[str] | None = None
    strict: bool | None = None
    violations: list[str] | None = None
    duration_s: float | None = None
    history: str | None = None
    incarnations: int | None = None
    ready_s: list[float] | None = None
    script: dict[str, Any] | None = None
    control: str | None = None  # "blackbox": ran as its black-box variant; "needs": needs control (not claimed)
    black_box_fault: str | None = None  # the black-box variant's fault schedule (e.g. sigkill@first_delta)

    def to_dict(self) -> dict[str, Any]:
        """The JSON report's entry for this cell (unset optional fields are left out)."""
        return _compact(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CellResult:
        """Rebuild from ``to_dict``'s output; an unknown or missing field raises ValueError/TypeError."""
        return _from_dict(cls, data)

    @classmethod
    def from_json(cls, text: str) -> CellResult:
        return cls.from_dict(json.loads(text))


@dataclass(frozen=True)
class SuiteResult:
    """One suite test's outcome (a test of ``conformance/suites/``): its id
    (``conformance/suites/<module>::<test>``), verdict, the skip/xfail ``reason`` and the SHOULD
    findings it reported (``should``; with them a passing test's verdict is ``warn``)."""

    id: str
    verdict: str
    reason: str | None = None
    should: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return _compact(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SuiteResult:
        return _from_dict(cls, data)

    @classmethod
    def from_json(cls, text: str) -> SuiteResult:
        return cls.from_dict(json.loads(text))
