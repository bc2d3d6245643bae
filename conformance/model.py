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

EXPECTATION_KEYS = (
    "status",  # final status of the response: completed | failed | cancelled | incomplete | in_progress | queued
    "http",  # {call_name: code or [codes]}: every call of that name answered with it
    "content_type",  # {call_name: prefix}: e.g. {create: text/event-stream}
    "error",  # {call_name | "response": {type?, code?, param?, message_contains?}}
    "output",  # full | empty: final output text vs the script (see checks.output)
    "output_text",  # exact final output text
    "attempts",  # handler starts counted from markers
    "exit",  # graceful | killed_after_grace | killed: exit mode of the first process fault
    "replay",  # {after: [start | mid | int ...], gap_free, single_created, reset_event, keeps_live, terminal}
    "stream",  # live stream of the create call: {terminal: type | null, order: bool, single_created: bool}
    "persisted",  # true: final GET is 200 after restart; false: GET 404 and no state file names the tag
    # invocations profile (docs/contracts.md "The invocations vocabulary")
    "cursor",  # {terminal: type}: frame ids int, increasing, gap-free, durable; one terminal, last
    "entry_modes",  # [fresh, recovered, ...]: invocation.started entry modes of the transcript, attempts 1..n
    "resume",  # {from: seen | [cursor ...], via: header | query | both}: resumes return exactly the rest
    "readers",  # N >= 2: N live readers opened at once agree on ids, payloads and order
    "steering",  # true | {inputs: N}: a chain of steers; each turn winds down at its next checkpoint
    "queue",  # {inputs: N}: N inputs queued together while the first turn is held: FIFO, each run exactly once
    "cancel_queued",  # true: an input queued behind the held first turn is cancelled: only event cancelled, never run
    # network faults (both profiles)
    "reconnect",  # {terminal: type}: what the client saw, resuming by cursor after the fault, is the transcript
    "unblocked",  # true: the run was terminal before a slow reader had half of its stream
    # both profiles
    "stopped",  # true: the handler was stopped (marker ``interrupted``); false: it never was
    # responses profile
    "one_terminal",  # true: every stream of the response agrees on one terminal event, with nothing after it
)
"""The expectation vocabulary.  Every key but ``status`` counts toward the depth gate."""

PROFILE_KEYS: dict[str, frozenset[str]] = {
    "responses": frozenset(EXPECTATION_KEYS) - {"cursor", "entry_modes", "resume", "readers", "steering", "queue", "cancel_queued"},
    "invocations": frozenset(EXPECTATION_KEYS) - {"replay", "stream", "persisted", "one_terminal"},
}
"""Expectation keys that apply to each profile; the parser rejects the others."""

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
