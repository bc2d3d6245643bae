"""The bundled expectation keys (docs/contracts.md), one ``Expectation`` record each.

Each record is the key's one home: its profiles, its schema fragment (``conformance/schema/
contract.schema.json`` is checked against these by tests/contract/test_expectation_registry.py),
its depth rule, the probes it needs and its checker.
"""

from __future__ import annotations

from typing import Any

from conformance.checks.handler import check_stopped
from conformance.checks.http import check_content_type, check_error, check_http
from conformance.checks.invocations import (
    check_cancel_queued,
    check_cursor,
    check_entry_modes,
    check_queue,
    check_readers,
    check_resume,
    check_steering,
)
from conformance.checks.network import check_reconnect, check_unblocked
from conformance.checks.output import check_attempts, check_output, check_output_text
from conformance.checks.persisted import check_persisted
from conformance.checks.process import check_exit
from conformance.checks.replay import asserting_options, check_replay, check_stream
from conformance.checks.status import check_status
from conformance.checks.terminal import check_one_terminal
from conformance.history import CALL_NAMES
from conformance.model import PROCESS_FAULTS, QUEUE_FAULTS, Cell
from conformance.yamlfile import show

from . import Expectation, Plan, Probes, Problem

RESPONSES = frozenset({"responses"})
INVOCATIONS = frozenset({"invocations"})
BOTH = RESPONSES | INVOCATIONS

_TERMINAL_TYPE = "^(response\\.[a-z_]+(\\.[a-z_]+)*|error)$"
_TERMINAL = {
    "oneOf": [
        {"type": ["string", "null"], "pattern": _TERMINAL_TYPE},
        {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "items": {"type": "string", "pattern": _TERMINAL_TYPE},
            "description": "several terminal event types, when the documents allow each (docs/protocol.md §6)",
        },
    ]
}
_TERMINAL_STATUS = {"enum": ["completed", "failed", "cancelled", "incomplete"]}
_CODE = {"type": "integer", "minimum": 100, "maximum": 599}


def _per_call(value: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """A mapping from call names to ``value`` (the ``http`` / ``content_type`` / ``error`` shape)."""
    return {
        "type": "object",
        "properties": {name: dict(value) for name in names},
        "additionalProperties": False,
        "x-unknown": "unknown call '{key}' (known: {known})",
        "minProperties": 1,
    }


def _options(key: str, properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An object of named options; an unknown option is a ``file:line`` error naming the key."""
    return {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
        "x-unknown": f"unknown {key} expectation '{{key}}' (known: {{known}})",
        **extra,
    }


def _hollow(expected: Any) -> str:
    """Why a ``stream``/``replay`` expectation asserts nothing (for the depth gate message)."""
    off = [k for k in expected if k != "after"] if isinstance(expected, dict) else []
    if not off:
        return "only lists cursors"
    return "turns every option off: " + ", ".join(f"{k}: {show(expected[k])}" for k in off)


def _asserts(value: Any) -> bool:
    return bool(asserting_options(value))


CURSOR_TOKENS = ("start", "mid")
"""Symbolic ``replay.after`` cursors; ints >= 0 and ``{raw: <text>}`` are the other forms."""


def _cursor_problem(cursor: Any) -> str | None:
    """None when ``cursor`` is a valid replay.after entry, else the complaint."""
    if isinstance(cursor, bool):
        pass
    elif isinstance(cursor, int):
        if cursor >= 0:
            return None
    elif isinstance(cursor, str):
        if cursor in CURSOR_TOKENS:
            return None
    elif isinstance(cursor, dict):
        raw = cursor.get("raw")
        if set(cursor) == {"raw"} and isinstance(raw, str) and raw != "":
            if raw in CURSOR_TOKENS:
                return f"raw cursor {raw!r} would read as the token {raw!r}: write {raw} instead"
            return None
    return (
        f"invalid cursor {show(cursor)} (expected start, mid, an integer >= 0, "
        "or {raw: <text>} for a cursor sent verbatim)"
    )


def _resume_cursor_problem(cursor: Any) -> str | None:
    """None when ``cursor`` is a valid resume.from entry, else the complaint."""
    if isinstance(cursor, int) and not isinstance(cursor, bool) and cursor >= 0:
        return None
    if cursor == "seen":
        return None
    if isinstance(cursor, dict) and set(cursor) == {"raw"} and isinstance(cursor["raw"], str) and cursor["raw"]:
        if cursor["raw"] == "seen":
            return "raw cursor 'seen' would read as the token seen: write seen instead"
        return None
    return (
        f"invalid cursor {show(cursor)} (expected seen, an integer >= 0, "
        "or {raw: <text>} for a cursor sent verbatim)"
    )


def _raw_cursors(field: str) -> Any:
    """``normalize``: a ``{raw: X}`` cursor of ``value[field]`` becomes the string X (what the
    executor sends verbatim: any string but the tokens is a raw cursor in a Cell)."""
    def normalize(value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get(field), list):
            value = dict(value, **{field: [c["raw"] if isinstance(c, dict) and "raw" in c else c for c in value[field]]})
        return value
    return normalize


def _terminal_status_problems(key: str) -> Any:
    def validate(options: Any) -> list[Problem]:
        if isinstance(options, dict) and "terminal_status" in options and "terminal" in options:
            terminal = options["terminal"]
            if terminal is None or terminal == "error":
                return [((key, "terminal_status"),
                         f"terminal_status {show(options['terminal_status'])} is read from the terminal "
                         f"event's response object, but terminal: {show(terminal)} "
                         + ("expects no terminal event" if terminal is None else "is an error event, which carries none")
                         + ": drop one of them")]
        return []
    return validate


def _validate_replay(value: Any) -> list[Problem]:
    problems: list[Problem] = []
    if isinstance(value, dict) and isinstance(value.get("after"), list):
        for i, cursor in enumerate(value["after"]):
            complaint = _cursor_problem(cursor)
            if complaint:
                problems.append((("replay", "after", i), complaint))
    return problems + _terminal_status_problems("replay")(value)


def _validate_resume(value: Any) -> list[Problem]:
    problems: list[Problem] = []
    if isinstance(value, dict) and isinstance(value.get("from"), list):
        for i, cursor in enumerate(value["from"]):
            complaint = _resume_cursor_problem(cursor)
            if complaint:
                problems.append((("resume", "from", i), complaint))
    return problems


def _runnable_replay(value: Any, plan: Plan) -> list[Problem]:
    problems: list[Problem] = []
    if isinstance(value, dict):
        if value.get("keeps_live") and (not plan.stream or plan.fault.kind == "none"):
            problems.append((("replay", "keeps_live"),
                             f"{plan.where}keeps_live compares the replay with the live stream seen before a fault: "
                             "needs stream=true and a fault"))
        after = value.get("after")
        if isinstance(after, list) and "mid" in after and not plan.stream:
            problems.append((("replay", "after"), f"{plan.where}cursor 'mid' is taken from the live stream: needs stream=true"))
    return problems


def _runnable_stream(value: Any, plan: Plan) -> list[Problem]:
    if not plan.stream:
        return [(("stream",), f"{plan.where}'stream' expectations need stream=true (there is no live stream)")]
    return []


def _runnable_one_terminal(value: Any, plan: Plan) -> list[Problem]:
    if not (plan.stream and plan.background and plan.request.get("store", True) is not False):
        return [(("one_terminal",), f"{plan.where}one_terminal replays from the terminal's sequence number: "
                                    "needs a replayable response (store, background=true, stream=true)")]
    return []


def _runnable_exit(value: Any, plan: Plan) -> list[Problem]:
    fault = plan.fault
    if fault.kind not in PROCESS_FAULTS and fault.then is None:
        return [(("exit",), f"{plan.where}'exit' needs a process fault, path {plan.path_id} is '{fault.kind}'")]
    return []


def _runnable_reconnect(value: Any, plan: Plan) -> list[Problem]:
    if not plan.fault.is_net_fault:
        return [(("reconnect",), f"{plan.where}'reconnect' resumes after a network fault, path {plan.path_id} "
                                 f"is '{plan.fault.kind}'")]
    return []


def _runnable_unblocked(value: Any, plan: Plan) -> list[Problem]:
    if plan.fault.kind != "slow_reader":
        return [(("unblocked",), f"{plan.where}'unblocked' needs a slow_reader path (path {plan.path_id} is "
                                 f"'{plan.fault.kind}')")]
    return []


def _runnable_queue(value: Any, plan: Plan) -> list[Problem]:
    fault = plan.fault
    if fault.kind not in QUEUE_FAULTS or fault.at != "held":
        return [(("queue",), f"a queue is POSTed while the first turn is held: it needs a path "
                             f"'{'|'.join(sorted(QUEUE_FAULTS))}' at held (path {plan.path_id} is '{fault.kind}' "
                             f"at '{fault.at}')")]
    return []


def _runnable_cancel_queued(value: Any, plan: Plan) -> list[Problem]:
    fault = plan.fault
    if fault.kind != "queue" or fault.at != "held" or "queue" in plan.expect:
        return [(("cancel_queued",), f"cancel_queued queues one input behind the held first turn and cancels it: "
                                     f"it needs a 'queue' path at held and no queue expectation (path {plan.path_id} is "
                                     f"'{fault.kind}' at '{fault.at}')")]
    return []


TRANSCRIPT = Probes(transcript=True)
"""Invocations keys judged against the full transcript (one replay after the end)."""


def _calls_probe(value: Any, cell: Cell) -> Probes:
    """``content_type`` / ``error``: a ``replay`` call named is a transcript to fetch (invocations)."""
    return Probes(transcript=isinstance(value, dict) and "replay" in value)


def _http_probe(value: Any, cell: Cell) -> Probes:
    names = frozenset(value) if isinstance(value, dict) else frozenset()
    return Probes(calls=names, transcript="replay" in names, needs_start="replay" in names)


def _replay_probe(value: Any, cell: Cell) -> Probes:
    return Probes(replays=tuple(value.get("after", ["start"]))) if isinstance(value, dict) else Probes()


def _resume_probe(value: Any, cell: Cell) -> Probes:
    return Probes(transcript=True, resume=value if isinstance(value, dict) else None)


EXPECTATIONS: tuple[Expectation, ...] = (
    Expectation(
        "status", BOTH,
        {"enum": ["queued", "in_progress", "completed", "failed", "cancelled", "incomplete", "interrupted", "superseded"]},
        check_status, "final status of the response (or invocation)", counts=lambda value: False),
    Expectation(
        "http", BOTH, _per_call({"if": {"type": "array"}, "then": {"type": "array", "items": _CODE, "minItems": 1},
                                 "else": _CODE}, CALL_NAMES),
        check_http, "{call_name: code or [codes]}: every call of that name answered with it", probes=_http_probe),
    Expectation(
        "content_type", BOTH, _per_call({"type": "string", "minLength": 1}, CALL_NAMES),
        check_content_type, "{call_name: prefix}: e.g. {create: text/event-stream}", probes=_calls_probe),
    Expectation(
        "error", BOTH, _per_call({"$ref": "#/$defs/error_fields"}, CALL_NAMES + ("response",)),
        check_error, "{call_name | response: {type?, code?, param?, message_contains?}}", probes=_calls_probe),
    Expectation(
        "output", BOTH, {"enum": ["full", "empty", "streamed"]},
        check_output, "full | empty | streamed: final output text vs the script", probes=lambda v, c: TRANSCRIPT),
    Expectation(
        "output_text", BOTH, {"type": "string"},
        check_output_text, "exact final output text", probes=lambda v, c: TRANSCRIPT),
    Expectation(
        "attempts", BOTH, {"type": "integer", "minimum": 0},
        check_attempts, "handler starts counted from markers"),
    Expectation(
        "exit", BOTH, {"enum": ["graceful", "killed_after_grace", "killed"]},
        check_exit, "graceful | killed_after_grace | killed: exit mode of the first process fault",
        runnable=_runnable_exit),
    Expectation(
        "replay", RESPONSES,
        _options("replay", {
            "after": {"type": "array", "minItems": 1, "items": {"type": ["string", "integer", "object"]}},
            "gap_free": {"type": "boolean"},
            "single_created": {"type": "boolean"},
            "reset_event": {"type": ["boolean", "string"], "minLength": 1},
            "keeps_live": {"type": "boolean"},
            "terminal": _TERMINAL,
            "terminal_status": _TERMINAL_STATUS,
        }, required=["after"]),
        check_replay, "{after: [start | mid | int ...], gap_free, single_created, reset_event, keeps_live, terminal}",
        counts=_asserts, hollow=_hollow, probes=_replay_probe, validate=_validate_replay,
        runnable=_runnable_replay, normalize=_raw_cursors("after")),
    Expectation(
        "stream", RESPONSES,
        _options("stream", {
            "terminal": _TERMINAL,
            "terminal_status": _TERMINAL_STATUS,
            "order": {"type": "boolean"},
            "single_created": {"type": "boolean"},
        }, minProperties=1),
        check_stream, "live stream of the create call: {terminal: type | null, order: bool, single_created: bool}",
        counts=_asserts, hollow=_hollow, validate=_terminal_status_problems("stream"), runnable=_runnable_stream),
    Expectation(
        "persisted", RESPONSES, {"type": "boolean"},
        check_persisted, "true: final GET is 200 after restart; false: GET 404 and no state file names the tag"),
    Expectation(
        "cursor", INVOCATIONS,
        _options("cursor", {"terminal": {"type": "string", "pattern": "^invocation\\.[a-z_]+$"}}, minProperties=1),
        check_cursor, "{terminal: type}: frame ids int, increasing, gap-free, durable; one terminal, last",
        probes=lambda v, c: TRANSCRIPT),
    Expectation(
        "entry_modes", INVOCATIONS, {"type": "array", "minItems": 1, "items": {"enum": ["fresh", "recovered", "resumed"]}},
        check_entry_modes, "[fresh, recovered, ...]: invocation.started entry modes of the transcript",
        probes=lambda v, c: TRANSCRIPT),
    Expectation(
        "resume", INVOCATIONS,
        _options("resume", {
            "from": {"if": {"type": "array"},
                     "then": {"type": "array", "minItems": 1, "items": {"type": ["string", "integer", "object"]}},
                     "else": {"const": "seen"}},
            "via": {"enum": ["header", "query", "both", "reconnect"]},
        }, required=["from"]),
        check_resume, "{from: seen | [cursor ...], via: header | query | both}: resumes return exactly the rest",
        probes=_resume_probe, validate=_validate_resume, normalize=_raw_cursors("from")),
    Expectation(
        "readers", INVOCATIONS, {"type": "integer", "minimum": 2},
        check_readers, "N >= 2: N live readers opened at once agree on ids, payloads and order",
        probes=lambda v, c: TRANSCRIPT),
    Expectation(
        "steering", INVOCATIONS,
        {"if": {"type": "object"},
         "then": _options("steering", {"inputs": {"type": "integer", "minimum": 1}}),
         "else": {"const": True}},
        check_steering, "true | {inputs: N}: a chain of steers; each turn winds down at its next checkpoint"),
    Expectation(
        "queue", INVOCATIONS,
        _options("queue", {"inputs": {"type": "integer", "minimum": 1}}, required=["inputs"]),
        check_queue, "{inputs: N}: N inputs queued together while the first turn is held: FIFO, each run once",
        runnable=_runnable_queue),
    Expectation(
        "cancel_queued", INVOCATIONS, {"const": True},
        check_cancel_queued, "true: an input queued behind the held first turn is cancelled, never run",
        runnable=_runnable_cancel_queued),
    Expectation(
        "reconnect", BOTH,
        _options("reconnect", {"terminal": {"type": "string", "minLength": 1}}, required=["terminal"]),
        check_reconnect, "{terminal: type}: what the client saw, resuming by cursor after a network fault",
        probes=lambda v, c: Probes(transcript=True, needs_start=True), runnable=_runnable_reconnect),
    Expectation(
        "unblocked", BOTH, {"const": True},
        check_unblocked, "true: the run was terminal before a slow reader had half of its stream",
        runnable=_runnable_unblocked),
    Expectation(
        "stopped", BOTH, {"type": "boolean"},
        check_stopped, "true: the handler was stopped (marker interrupted); false: it never was"),
    Expectation(
        "one_terminal", RESPONSES, {"const": True},
        check_one_terminal, "true: every stream of the response agrees on one terminal event, nothing after it",
        probes=lambda v, c: Probes(from_terminal=bool(v)), runnable=_runnable_one_terminal),
)
"""The bundled keys, in the order docs/contracts.md lists them."""
