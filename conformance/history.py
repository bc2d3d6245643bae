"""The recorded History of one cell: everything observed, in order, as typed records.

A History is written by the executor and read by the checkers.  It round-trips through
JSON (``History.to_json`` / ``History.from_json``) so that a failing cell's evidence can be
saved next to its incarnation logs and re-checked offline.

Times are seconds since the cell started (``time.monotonic`` based), so histories from
different cells compare without clock noise.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from harness.markers import Start, parse_markers
from harness.process import Incarnation

TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled", "incomplete"})
"""Statuses after which a response never changes again (responses profile)."""

TERMINAL_EVENTS = frozenset({"response.completed", "response.failed", "response.incomplete", "response.cancelled"})
"""Event types that end a responses-profile lifecycle (B26; ``response.cancelled`` as the
resilience helpers treat it)."""


@dataclass
class SSEFrame:
    """One Server-Sent-Events frame as received: raw text kept, JSON data parsed if possible."""

    event: str | None
    data: str
    id: str | None = None
    raw: str = ""
    t: float = 0.0
    incarnation: int = 0

    @property
    def json(self) -> Any:
        """The frame's data parsed as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.data)
        except (ValueError, TypeError):
            return None

    @property
    def type(self) -> str | None:
        """The event type: the JSON ``type`` field, else the ``event:`` line."""
        payload = self.json
        if isinstance(payload, dict) and isinstance(payload.get("type"), str):
            return payload["type"]
        return self.event

    @property
    def event_id(self) -> int | None:
        """The invocations-profile cursor: the ``id:`` line as an int (digits only), else None."""
        text = self.id
        if text is None or not text.isdigit():
            return None
        return int(text)

    @property
    def seq(self) -> int | None:
        """The responses-profile cursor (``sequence_number``), or None if absent/not an int."""
        payload = self.json
        if isinstance(payload, dict):
            value = payload.get("sequence_number")
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        return None


@dataclass
class HttpCall:
    """One HTTP exchange.  ``name`` is the executor's logical name for it (see CALL_NAMES)."""

    name: str
    method: str
    url: str
    request_body: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    status: int | None = None
    content_type: str | None = None
    body: Any = None
    body_text: str | None = None
    frames: list[SSEFrame] = field(default_factory=list)
    error: str | None = None
    ended: str = "complete"
    started_at: float = 0.0
    ended_at: float = 0.0
    incarnation: int = 0

    @property
    def is_sse(self) -> bool:
        """True when the answer was an event stream."""
        return bool(self.content_type and self.content_type.startswith("text/event-stream"))


CALL_NAMES = (
    "create",  # POST /responses (the row's request)
    "poll",  # GET /responses/{id} while waiting for a terminal status
    "get",  # the final JSON GET after the cell's last restart and terminal
    "replay",  # GET /responses/{id}?stream=true[&starting_after=N], one per cursor
    "cancel",  # POST /responses/{id}/cancel (the cancel fault)
    "cancel_again",  # a second cancel, to check idempotence
    "delete",  # DELETE /responses/{id}
    "after_delete_get",  # after a successful DELETE: GET, replay, cancel and a second DELETE (all 404)
    "after_delete_replay",
    "after_delete_cancel",
    "after_delete_delete",
    "bad_id_get",  # GET /responses/{id}%0A: the response's own id with a trailing newline (§2.3: 400)
    "replay_cursor_twice",  # GET /responses/{id}?stream=true&starting_after=1&starting_after=2 (§2.3: 400)
    # invocations profile only (see INVOCATION_CALL_NAMES)
    "live",
    "reader",
    "resume",
    "steer",
    "steer_live",
    "steer_get",
    "steer_replay",
)
"""Logical names the executor gives its calls; contracts refer to calls by these names."""

INVOCATION_CALL_NAMES = (
    "create",  # POST /invocations (the row's input)
    "live",  # GET /invocations/{id} (SSE) opened right after the create: the live stream
    "reader",  # further live readers of the same invocation (expectation ``readers``)
    "poll",  # GET /invocations/{id} with Accept: application/json while waiting for a terminal status
    "get",  # the final JSON snapshot after the cell's last restart and terminal
    "replay",  # the full transcript: GET /invocations/{id} (SSE) without a cursor, after the end
    "resume",  # GET /invocations/{id} (SSE) from a cursor (Last-Event-ID header or ?last_event_id=)
    "cancel",  # POST /invocations/{id}/cancel (the cancel fault)
    "cancel_again",  # a second cancel, to check idempotence
    "steer",  # POST /invocations with the same session_id while the first turn runs (steer fault)
    "steer_live",  # live stream of a steered invocation
    "steer_get",  # final JSON snapshot of a steered invocation
    "steer_replay",  # full transcript of a steered invocation
)
"""Call names of the invocations profile (``params.steer`` = k on the calls of steered input k)."""

INVOCATION_TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled", "interrupted", "superseded"})
"""Statuses after which an invocation never changes again (invocations profile)."""

INVOCATION_TERMINAL_EVENTS = frozenset(f"invocation.{status}" for status in INVOCATION_TERMINAL_STATUSES)
"""Event types that end an invocation's transcript (exactly one, last)."""


IncarnationRecord = Incarnation
"""One lifetime of the target process, as the harness saw it: the harness's own record
(``harness.process.Incarnation``: index, pid, start/ready/exit times, exit code and mode, log
path, stragglers killed, survivors), copied into the History when the cell ends."""


@dataclass
class FaultRecord:
    """A fault the executor delivered, with the observation that triggered it."""

    kind: str  # sigterm | sigkill | sigterm_then_sigkill | disconnect | cancel | pause | ...
    trigger: str  # the path's ``at`` as text, e.g. "held", "after_events:3", "created"
    observed: str | None  # what was seen that fired it, e.g. the marker line "held 3"
    t: float
    incarnation: int  # the incarnation the fault hit
    exit_mode: str | None = None  # for process faults: the exit mode the harness recorded
    restarted_as: int | None = None  # the incarnation index started after the fault, if any
    last_seq_before: int | None = None  # highest sequence_number seen live before the fault
    detail: dict[str, Any] | None = None  # network faults: what the proxy did (bytes forwarded, partial frame ...)


@dataclass
class SteeredInput:
    """A second input POSTed on the same session (steer fault): its own tag, id and evidence."""

    index: int  # 1 for the first steered input, 2 for the next ...
    tag: str
    script: dict[str, Any] = field(default_factory=dict)
    invocation_id: str | None = None
    post_status: str | None = None  # the ``status`` in the POST answer (queued expected)
    markers: list[str] = field(default_factory=list)
    final: dict[str, Any] | None = None
    observations: list[str] = field(default_factory=list)  # e.g. "while input 1 held: input 2 status queued, 0 start markers"


STUCK_PREFIX = "stuck:"
"""History note prefix: the target kept a response in a non-terminal status past the cell
deadline. The checks judge it as a ``status`` violation (the target's failure), never as "not
testable"."""


@dataclass
class History:
    """Everything observed in one cell."""

    cell_id: str
    profile: str = "responses"
    script: dict[str, Any] = field(default_factory=dict)
    request: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None  # the id the target gave the run: a response id or an invocation id
    calls: list[HttpCall] = field(default_factory=list)
    markers: list[str] = field(default_factory=list)
    incarnations: list[IncarnationRecord] = field(default_factory=list)
    faults: list[FaultRecord] = field(default_factory=list)
    final: dict[str, Any] | None = None
    marker_times: list[float] = field(default_factory=list)  # when the kit first saw each marker line (±10 ms)
    final_source: str | None = None  # get | create | stream
    state_dir_hits: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    session_id: str | None = None  # invocations: the session of the first input
    steered: list[SteeredInput] = field(default_factory=list)  # invocations: steer fault inputs
    cancelled_queued: SteeredInput | None = None  # invocations, cancel_queued: the queued input that was cancelled

    # -- queries used by checkers -------------------------------------------------------
    def calls_named(self, name: str) -> list[HttpCall]:
        """All calls with this logical name, in order."""
        return [c for c in self.calls if c.name == name]

    def live_frames(self) -> list[SSEFrame]:
        """Frames of the live stream, in order: the ``create`` call's own stream (responses) and
        the ``live`` GET opened right after the create (invocations)."""
        return [f for c in self.calls if c.name in ("create", "live") for f in c.frames]

    def attempts(self) -> int:
        """How many times the handler really started, from ``start attempt=`` markers."""
        return sum(1 for m in parse_markers(self.markers) if isinstance(m, Start))

    # -- JSON round trip ----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "History":
        data = dict(data)
        if "response_id" in data:  # histories written before the field was named for both profiles
            data.setdefault("run_id", data.pop("response_id"))
        data["calls"] = [
            HttpCall(**{**c, "frames": [SSEFrame(**f) for f in c.get("frames", [])]})
            for c in data.get("calls", [])
        ]
        data["incarnations"] = [IncarnationRecord(**i) for i in data.get("incarnations", [])]
        data["faults"] = [FaultRecord(**f) for f in data.get("faults", [])]
        data["steered"] = [SteeredInput(**s) for s in data.get("steered", [])]
        if isinstance(data.get("cancelled_queued"), dict):
            data["cancelled_queued"] = SteeredInput(**data["cancelled_queued"])
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_json(cls, text: str) -> "History":
        return cls.from_dict(json.loads(text))


LEVELS = ("MUST", "SHOULD", "MAY")
"""Levels from strongest to weakest (docs/protocol.md §0)."""


@dataclass(frozen=True)
class Violation:
    """One broken expectation: which checker, what was wrong, and the evidence.

    ``level`` caps the violation's weight below its cell's level: ``None`` counts at the cell's
    level; ``"SHOULD"`` counts as a SHOULD finding even in a MUST cell (a rule the documents leave
    open, e.g. contiguous sequence numbers, docs/protocol.md §6).  A violation never counts above
    its cell's level (see ``effective_level``)."""

    check: str
    message: str
    evidence: str | None = None
    level: str | None = None

    def __str__(self) -> str:
        tail = f" [evidence: {self.evidence}]" if self.evidence else ""
        tag = f" [{self.level}]" if self.level else ""
        return f"{self.check}{tag}: {self.message}{tail}"


@dataclass(frozen=True)
class Unknown(Violation):
    """A finding that the history cannot decide the check (Jepsen's ``valid? :unknown``): the
    fault could not be placed, a probe could not be made, the executor failed.  It reads like a
    Violation (check, message, evidence) so reports list it, but it is no judgement of the
    target: a cell with an Unknown is "not testable" (``conformance.plugin.cell_verdict``)."""


def outcome(findings: list[Violation]) -> str:
    """Jepsen's merge of a cell's findings: ``invalid`` when any is a Violation proper,
    ``unknown`` when all are Unknowns, ``valid`` when there are none."""
    if any(not isinstance(f, Unknown) for f in findings):
        return "invalid"
    return "unknown" if findings else "valid"


def effective_level(violation: Violation, cell_level: str) -> str:
    """The weaker of the cell's level and the violation's own cap (MUST > SHOULD > MAY)."""
    if violation.level not in LEVELS or cell_level not in LEVELS:
        return cell_level
    return max(violation.level, cell_level, key=LEVELS.index)


def strongest_level(violations: list[Violation], cell_level: str) -> str | None:
    """The strongest effective level among a cell's violations (None when there are none)."""
    levels = [effective_level(v, cell_level) for v in violations]
    return min(levels, key=lambda lv: LEVELS.index(lv) if lv in LEVELS else 0) if levels else None
