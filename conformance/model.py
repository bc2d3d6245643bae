"""Cells: what the contract parser produces and the executor and checkers consume.

A Cell is one row x one path x one variant of a contract table, with its expectations.
Cells are plain frozen data; nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LEVELS = ("MUST", "SHOULD", "MAY")

FAULT_KINDS = (
    "none",  # no fault: the request runs to its natural end
    "sigterm",  # SIGTERM, wait for the process to exit by itself within the harness grace
    "sigkill",  # SIGKILL
    "sigterm_then_sigkill",  # SIGTERM, then SIGKILL at once after a short grace
    "disconnect",  # the client drops the create connection
    "cancel",  # the client calls POST /responses/{id}/cancel
    "crash_twice",  # SIGKILL, restart, SIGKILL again during recovery, restart
    "pause",  # SIGSTOP then SIGCONT
    "steer",  # invocations: POST another input on the same session while the first turn runs
    "queue",  # invocations: POST the ``queue`` expectation's inputs on the session, then release
    # network faults, delivered by the fault proxy on the live stream's connection (conformance/netfaults.py)
    "reset",  # RST the live stream's connection
    "cut_mid_frame",  # forward half of the next SSE frame, then close
    "stall",  # forward nothing for ``seconds``, then resume or close (``then``)
    "slow_reader",  # forward at ``bytes_per_s``, reading from the server only as fast
    "refuse",  # drop the live stream; the client's next connection is refused, the one after served
    "drain",  # SIGTERM at the trigger, then the hold is released at once: the handler can end within the server's grace
    "delete",  # responses: the client sends DELETE /responses/{id} (e.g. while the response runs)
)
PROCESS_FAULTS = frozenset({"sigterm", "sigkill", "sigterm_then_sigkill", "crash_twice", "drain"})
"""Faults after which the executor restarts the target (unless the path says restart: false)."""

NET_FAULTS = frozenset({"reset", "cut_mid_frame", "stall", "slow_reader", "refuse"})
"""Faults of the network between the client and the target (a proxy in front of the target)."""

NET_FAULT_PARAMS: dict[str, dict[str, str]] = {
    "stall": {"seconds": "a number > 0", "then": "resume | close (default resume)"},
    "slow_reader": {"bytes_per_s": "an integer >= 1"},
}
"""Parameters of the network faults that take some (``fault: {stall: {seconds: 2, then: close}}``)."""

THEN_FAULTS = ("sigterm", "sigkill", "sigterm_then_sigkill")
"""Process faults a network-fault path may deliver next, while the client is away (``then:``)."""

TRIGGERS = ("held", "created", "terminal", "after_events")

# The expectation keys (their profiles, schema, depth rule, probes and checkers) live in the
# registry: conformance/expectations/.

PROFILE_FAULTS: dict[str, frozenset[str]] = {
    "responses": frozenset(FAULT_KINDS) - {"steer", "queue"},
    "invocations": frozenset(FAULT_KINDS) - {"pause", "delete"},
}
"""Fault kinds each profile's executor delivers."""

PROFILE_STATUSES: dict[str, frozenset[str]] = {
    "responses": frozenset({"queued", "in_progress", "completed", "failed", "cancelled", "incomplete"}),
    "invocations": frozenset(
        {"queued", "in_progress", "completed", "failed", "cancelled", "interrupted", "superseded"}
    ),
}
"""Statuses of each profile (``status`` expectations must name one of their profile's)."""


@dataclass(frozen=True)
class FaultSpec:
    """A path's fault schedule."""

    kind: str = "none"
    at: str | None = None  # one of TRIGGERS, or None for kind == none
    after_events: int | None = None  # N, when at == "after_events"
    restart: bool = True  # process faults: start the next incarnation afterwards
    params: tuple[tuple[str, Any], ...] = ()  # network fault parameters, e.g. (("seconds", 2), ("then", "close"))
    then: str | None = None  # network faults: a process fault delivered next, while the client is away

    @property
    def is_process_fault(self) -> bool:
        return self.kind in PROCESS_FAULTS

    @property
    def is_net_fault(self) -> bool:
        return self.kind in NET_FAULTS

    @property
    def restarts_target(self) -> bool:
        """The schedule starts a second incarnation: a restarting process fault, or a network fault
        followed (``then``) by one, which always restarts (the client resumes against it)."""
        return (self.is_process_fault and self.restart) or self.then is not None

    def param(self, name: str, default: Any = None) -> Any:
        return dict(self.params).get(name, default)

    def describe(self) -> str:
        if self.kind == "none":
            return "none"
        at = f"after_events:{self.after_events}" if self.at == "after_events" else self.at
        params = "(" + ",".join(f"{k}={v}" for k, v in self.params) + ")" if self.params else ""
        then = f"+{self.then}" if self.then else ""
        return f"{self.kind}{params}@{at}{then}"


@dataclass(frozen=True)
class Cell:
    """One generated test: row x path x variant, with declared expectations."""

    contract: str  # e.g. "responses/resilience"
    profile: str  # "responses"
    row: str  # e.g. "R1"
    title: str  # the row's title
    path: str  # e.g. "C"
    variant: tuple[tuple[str, Any], ...]  # e.g. (("stream", True),)
    level: str  # MUST | SHOULD | MAY
    server: dict[str, Any]  # server modes the target must run in, e.g. {"resilient_background": True}
    request: dict[str, Any]  # request fields (variant applied), without the script input
    script: dict[str, Any]  # test-control script; the executor adds a unique tag
    fault: FaultSpec
    expect: dict[str, Any]
    requires: tuple[str, ...] = ()  # capabilities the target must claim (server modes included)
    source: str = ""  # "contracts/responses/resilience.yaml:42"
    notes: str = ""
    blackbox: bool = False  # the black-box variant of a cell (conformance/blackbox.py): no script, no markers

    @property
    def variant_id(self) -> str:
        parts = [self.path] + [f"{k}={_fmt(v)}" for k, v in self.variant]
        return ",".join(parts)

    @property
    def name(self) -> str:
        """The test name within its contract: ``R1[C,stream=true]``."""
        return f"{self.row}[{self.variant_id}]"

    @property
    def id(self) -> str:
        """The full cell id: ``responses/resilience::R1[C,stream=true]``."""
        return f"{self.contract}::{self.name}"


@dataclass(frozen=True)
class NotApplicable:
    """A row x path pair the contract explicitly declares not applicable, with the reason."""

    contract: str
    row: str
    path: str
    reason: str
    source: str = ""


@dataclass
class ContractTable:
    """One parsed contract file."""

    name: str  # "responses/resilience"
    profile: str
    level: str
    source: str  # file path
    paths: dict[str, FaultSpec]
    cells: list[Cell] = field(default_factory=list)
    not_applicable: list[NotApplicable] = field(default_factory=list)
    row_ids: list[str] = field(default_factory=list)


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


QUEUE_FAULTS = frozenset({"queue", "sigterm", "sigkill", "sigterm_then_sigkill"})
"""Paths a ``queue`` expectation runs on: no fault after the queue, or one process fault."""


def calls_named(expect: dict[str, Any]) -> set[str]:
    """The call names a cell's per-call expectations (``http``, ``content_type``, ``error``) name."""
    names: set[str] = set()
    for key in ("http", "content_type", "error"):
        value = expect.get(key)
        if isinstance(value, dict):
            names.update(value)
    return names
