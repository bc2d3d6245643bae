"""Contract tables: load YAML, validate, apply the gates, produce Cells (docs/contracts.md).

A contract file is data (``contracts/<profile>/<name>.yaml``, format in docs/contracts.md).
``load_contract`` reads one file with line numbers kept (``yamlfile``), validates it against
``conformance/schema/contract.schema.json`` (unknown keys are errors, not warnings), then runs
the semantic checks: known paths, fault kinds and triggers, unique row ids, ``vary`` over
request fields only, the **completeness gate** (every row x path x variant is a cell or an
explicit ``not_applicable: <reason>``), the **depth gate** (no cell asserts a bare status) and
runnability (a cell whose trigger could never fire, or whose expectation names a call the
executor never makes, is an error here rather than a hang or a vacuous pass later).

Every problem is a ``ContractError`` reading ``file:line: key: message``; all problems of a file
are collected and raised together, sorted by line.
"""

from __future__ import annotations

import copy
import glob as globlib
import itertools
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import jsonschema

from .checks.replay import asserting_options
from .errors import ContractError, ContractNotFoundError
from .history import CALL_NAMES, INVOCATION_CALL_NAMES
from .model import (
    calls_named,
    QUEUE_FAULTS,
    EXPECTATION_KEYS,
    FAULT_KINDS,
    NET_FAULT_PARAMS,
    NET_FAULTS,
    PROFILE_FAULTS,
    PROFILE_KEYS,
    PROFILE_STATUSES,
    LEVELS,
    PROCESS_FAULTS,
    TRIGGERS,
    Cell,
    ContractTable,
    FaultSpec,
    NotApplicable,
)
from .yamlfile import LineDict, YamlSyntaxError, key_text, line_of, parse, plain, schema_problems, show

SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "contract.schema.json"

REQUEST_FIELDS = ("store", "background", "stream", "model", "metadata", "previous_response_id")
"""Request fields a row, a cell or ``vary`` may set (the script goes into ``input``)."""

SCRIPT_FIELDS = ("deltas", "delay_ms", "hold_at", "checkpoint_every", "fail_at")
"""Test-control script fields (docs/protocol.md §3.2); the executor adds ``tag``."""

SERVER_MODES = (
    "resilient_background",
    "steerable_conversations",
    "resilient",
    "resilient_invocations",
    "event_retention",
)
"""Server modes a row may ask for; each mode set to true is also a required capability."""

CAPABILITIES = SERVER_MODES + ("checkpoints", "cancel", "disconnect", "delete", "steering")
"""Names a contract may list in ``requires`` and a target may list in ``claims``."""

CURSOR_TOKENS = ("start", "mid")
"""Symbolic ``replay.after`` cursors; ints >= 0 and ``{raw: <text>}`` are the other forms."""

CELL_SETTINGS = ("level", "script", "request", "when", "notes", "not_applicable")
"""Keys of a cell that are not expectations."""

STATUS_ONLY = frozenset({"status"})
OPTION_EXPECTATIONS = ("stream", "replay")
"""Expectations made of options; one whose options all are off (or only ``after``) asserts
nothing and does not count for the depth gate (``checks.replay.asserting_options``)."""
_CONTRACT_SUFFIXES = (".yaml", ".yml")
_GLOB_CHARS = set("*?[")


# -- problem collection ---------------------------------------------------------------------
class _Problems:
    """Collects the problems of one file."""

    def __init__(self, file: str, doc: Any) -> None:
        self.file, self.doc = file, doc
        self.items: list[ContractError] = []
        self._seen: set[tuple[int, str, str]] = set()

    def add(self, path: Iterable[Any], message: str, line: int | None = None) -> None:
        path = tuple(path)
        line = line_of(self.doc, path) if line is None else line
        key = key_text(path)
        marker = (line, key, message)
        if marker not in self._seen:
            self._seen.add(marker)
            self.items.append(ContractError(message, file=self.file, line=line, key=key or None))

    def raise_if_any(self) -> None:
        if self.items:
            errors = sorted(self.items, key=lambda e: (e.line or 0, e.key or ""))
            raise ContractError(
                f"{len(errors)} problem(s) in {self.file}",
                file=self.file,
                line=errors[0].line,
                key=errors[0].key,
                errors=errors,
            )


# -- schema ---------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def schema() -> dict[str, Any]:
    """The contract JSON schema (draft 2020-12)."""
    return _validator().schema


def _schema_problems(doc: Any, problems: _Problems) -> None:
    for problem in schema_problems(_validator(), doc):
        problems.add(problem.path, problem.message)


# -- semantic checks ------------------------------------------------------------------------
def _merge(*layers: Any) -> dict[str, Any]:
    """Merge mappings left to right (later wins); a null value removes the key."""
    out: dict[str, Any] = {}
    for layer in layers:
        if isinstance(layer, dict):
            for k, v in layer.items():
                if v is None:
                    out.pop(k, None)
                else:
                    out[k] = plain(v)
    return out


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _variant_text(variant: tuple[tuple[str, Any], ...]) -> str:
    return ",".join(f"{k}={_fmt(v)}" for k, v in variant) or "(no vary)"


@dataclass
class _Path:
    spec: FaultSpec
    requires: list[str]


def _check_paths(doc: dict[str, Any], problems: _Problems) -> dict[str, _Path]:
    out: dict[str, _Path] = {}
    paths = doc.get("paths")
    if not isinstance(paths, dict):
        return out
    for pid, raw in paths.items():
        if not isinstance(raw, dict):
            continue
        here = ("paths", pid)
        ok = True
        kind = raw.get("fault")
        params: tuple[tuple[str, Any], ...] = ()
        if isinstance(kind, dict) and len(kind) == 1:
            (kind, given), = kind.items()
            params, ok = _net_params(problems, here + ("fault",), str(kind), given)
        if not isinstance(kind, str):
            continue
        if kind in NET_FAULT_PARAMS and not params and ok:
            ok = _net_params(problems, here + ("fault",), kind, None)[1]
        if kind not in FAULT_KINDS:
            problems.add(here + ("fault",), f"unknown fault kind '{kind}' (known: {', '.join(FAULT_KINDS)})")
            ok = False
        at_raw = raw.get("at")
        at: str | None = None
        after: int | None = None
        if at_raw is None:
            if kind != "none" and kind in FAULT_KINDS:
                problems.add(
                    here,
                    f"fault '{kind}' needs a trigger: at: held | created | terminal | {{after_events: N}}",
                )
                ok = False
        elif kind == "none":
            problems.add(here + ("at",), "fault 'none' takes no trigger (remove 'at')")
            ok = False
        elif isinstance(at_raw, str):
            if at_raw == "after_events":
                problems.add(here + ("at",), "after_events needs a count: at: {after_events: N}")
                ok = False
            elif at_raw not in TRIGGERS:
                known = ", ".join(t for t in TRIGGERS if t != "after_events") + ", {after_events: N}"
                problems.add(here + ("at",), f"unknown trigger '{at_raw}' (known: {known})")
                ok = False
            else:
                at = at_raw
        elif isinstance(at_raw, dict) and isinstance(at_raw.get("after_events"), int):
            after = at_raw["after_events"]
            if isinstance(after, bool) or after < 1:
                problems.add(here + ("at", "after_events"), f"after_events needs N >= 1, got {show(after)}")
                ok = False
            at = "after_events"
        else:
            ok = False
        restart = raw.get("restart", True)
        if "restart" in raw and kind not in PROCESS_FAULTS:
            problems.add(here + ("restart",), f"restart applies to process faults only, not '{kind}'")
        then = raw.get("then")
        if then is not None and kind not in NET_FAULTS:
            problems.add(here + ("then",), f"then (a process fault while the client is away) follows a network "
                                          f"fault ({', '.join(sorted(NET_FAULTS))}), not '{kind}'")
            ok = False
        if ok:
            out[pid] = _Path(
                FaultSpec(kind=kind, at=at, after_events=after, restart=bool(restart), params=params,
                          then=then if isinstance(then, str) else None),
                _strings(raw.get("requires")),
            )
    return out


def _net_params(problems: _Problems, here: tuple, kind: str, given: Any) -> tuple[tuple[tuple[str, Any], ...], bool]:
    """The parameters of ``fault: {kind: {...}}`` as sorted pairs, and whether they are valid."""
    known = NET_FAULT_PARAMS.get(kind)
    if known is None:
        if given not in (None, {}):
            problems.add(here + (kind,), f"fault '{kind}' takes no parameters (write fault: {kind})")
            return (), False
        return (), True
    if not isinstance(given, dict):
        wanted = ", ".join(f"{k}: {v}" for k, v in known.items())
        problems.add(here + ((kind,) if given is not None else ()), f"fault '{kind}' needs parameters: fault: {{{kind}: {{{wanted}}}}}")
        return (), False
    ok = True
    for key in given:
        if key not in known:
            problems.add(here + (kind, key), f"unknown {kind} parameter '{key}' (known: {', '.join(known)})")
            ok = False
    values = dict(given)
    if kind == "stall":
        seconds, then = values.get("seconds"), values.setdefault("then", "resume")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
            problems.add(here + (kind,), f"stall needs seconds: a number > 0, got {show(seconds)}")
            ok = False
        if then not in ("resume", "close"):
            problems.add(here + (kind, "then"), f"stall then must be resume or close, got {show(then)}")
            ok = False
    if kind == "slow_reader":
        rate = values.get("bytes_per_s")
        if isinstance(rate, bool) or not isinstance(rate, int) or rate < 1:
            problems.add(here + (kind,), f"slow_reader needs bytes_per_s: an integer >= 1, got {show(rate)}")
            ok = False
    return tuple(sorted(values.items())), ok


def _check_cursor(cursor: Any) -> str | None:
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


def _check_runnable(
    problems: _Problems,
    here: tuple,
    path_id: str,
    path: _Path,
    request: dict[str, Any],
    script: dict[str, Any],
    expect: dict[str, Any],
    requires: list[str],
    variant: str,
    profile: str = "responses",
) -> None:
    """Problems that would make the executor hang or make an expectation vacuous."""
    fault = path.spec
    where = f"[{variant}] " if variant != "(no vary)" else ""
    if profile == "invocations":
        _check_runnable_invocations(problems, here, path_id, path, script, expect, requires)
        return
    stream = request.get("stream") is True
    background = request.get("background") is True
    if fault.at == "held" and script.get("hold_at") is None:
        problems.add(here, f"{where}path {path_id} triggers at 'held' but the script has no hold_at: "
                           "the trigger would never fire")
    if fault.at == "after_events" and not stream:
        problems.add(here, f"{where}path {path_id} triggers after {fault.after_events} live frames, "
                           "which needs stream=true (restrict the cell with when: {stream: true})")
    if fault.is_net_fault and not stream:
        problems.add(here, f"{where}path {path_id} is a network fault ({fault.kind}) on the live stream's "
                           "connection, which needs stream=true (restrict the cell with when: {stream: true})")
    if fault.kind == "disconnect" and background and not stream:
        problems.add(here, f"{where}path {path_id} drops the create connection, but a background "
                           "non-stream create has already returned: nothing to disconnect")
    if "stream" in expect and not stream:
        problems.add(here + ("stream",), f"{where}'stream' expectations need stream=true (there is no live stream)")
    if "one_terminal" in expect and not (stream and background and request.get("store", True) is not False):
        problems.add(here + ("one_terminal",), f"{where}one_terminal replays from the terminal's sequence number: "
                                                "needs a replayable response (store, background=true, stream=true)")
    _check_fault_calls(problems, here, where, path_id, fault, expect)
    replay = expect.get("replay")
    if isinstance(replay, dict):
        if replay.get("keeps_live") and (not stream or fault.kind == "none"):
            problems.add(here + ("replay", "keeps_live"),
                         f"{where}keeps_live compares the replay with the live stream seen before a fault: "
                         "needs stream=true and a fault")
        after = replay.get("after")
        if isinstance(after, list) and "mid" in after and not stream:
            problems.add(here + ("replay", "after"),
                         f"{where}cursor 'mid' is taken from the live stream: needs stream=true")
    if script.get("checkpoint_every") is not None and "checkpoints" not in requires:
        problems.add(here, f"{where}the script uses checkpoint_every: add 'checkpoints' to the row's requires")


AFTER_DELETE_CALLS = frozenset({"after_delete_get", "after_delete_replay", "after_delete_cancel", "after_delete_delete"})
INVOCATION_CALLS = frozenset(INVOCATION_CALL_NAMES)
RESPONSES_CALLS = frozenset(CALL_NAMES) - (INVOCATION_CALLS - {"create", "poll", "get", "replay", "cancel", "cancel_again"})
PROFILE_CALLS = {"responses": RESPONSES_CALLS, "invocations": INVOCATION_CALLS}
"""Call names each profile's executor makes (``http``, ``content_type`` and ``error`` keys)."""

PROFILE_SERVER_MODES = {
    "responses": frozenset({"resilient_background", "steerable_conversations"}),
    "invocations": frozenset({"resilient", "resilient_invocations", "event_retention"}),
}
"""Server modes that mean something to each profile."""


def _check_profile(problems: _Problems, here: tuple, profile: str, spec: dict[str, Any]) -> None:
    """Keys, calls and statuses a cell names must apply to the contract's profile."""
    if profile not in PROFILE_KEYS:
        return
    for key in spec:
        if key in EXPECTATION_KEYS and key not in PROFILE_KEYS[profile]:
            problems.add(here + (key,), f"expectation '{key}' does not apply to profile {profile} "
                                        f"(known here: {', '.join(k for k in EXPECTATION_KEYS if k in PROFILE_KEYS[profile])})")
    for key in ("http", "content_type", "error"):
        value = spec.get(key)
        if isinstance(value, dict):
            for name in value:
                if name in CALL_NAMES and name not in PROFILE_CALLS[profile]:
                    problems.add(here + (key, name), f"call '{name}' is not made by the {profile} executor "
                                                     f"(calls: {', '.join(sorted(PROFILE_CALLS[profile]))})")
    status = spec.get("status")
    known = set().union(*PROFILE_STATUSES.values())
    if isinstance(status, str) and status in known and status not in PROFILE_STATUSES[profile]:
        problems.add(here + ("status",), f"status '{status}' is not a {profile} status "
                                         f"(known: {', '.join(sorted(PROFILE_STATUSES[profile]))})")
    resume = spec.get("resume")
    if profile == "invocations" and isinstance(resume, dict) and isinstance(resume.get("from"), list):
        for i, cursor in enumerate(resume["from"]):
            complaint = _check_resume_cursor(cursor)
            if complaint:
                problems.add(here + ("resume", "from", i), complaint)
    if profile == "invocations" and "request" in spec:
        problems.add(here + ("request",), "invocations cells take no request fields (the input is the script)")


def _check_resume_cursor(cursor: Any) -> str | None:
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


def _check_fault_calls(
    problems: _Problems, here: tuple, where: str, path_id: str, fault: FaultSpec, expect: dict[str, Any]
) -> set[str]:
    """Both profiles: 'exit' needs a process fault, the cancel calls a cancel path. Returns the
    call names the expectations name."""
    if "exit" in expect and fault.kind not in PROCESS_FAULTS and fault.then is None:
        problems.add(here + ("exit",), f"{where}'exit' needs a process fault, path {path_id} is '{fault.kind}'")
    if "reconnect" in expect and not fault.is_net_fault:
        problems.add(here + ("reconnect",), f"{where}'reconnect' resumes after a network fault, path {path_id} "
                                            f"is '{fault.kind}'")
    if "unblocked" in expect and fault.kind != "slow_reader":
        problems.add(here + ("unblocked",), f"{where}'unblocked' needs a slow_reader path (path {path_id} is "
                                            f"'{fault.kind}')")
    called = calls_named(expect)
    for name in sorted(called & {"cancel", "cancel_again"}):
        if fault.kind != "cancel":
            problems.add(here, f"{where}expectations name the '{name}' call, which only a cancel path makes "
                               f"(path {path_id} is '{fault.kind}')")
    if fault.kind == "drain" and fault.at != "held":
        problems.add(here, f"{where}path {path_id} drains: it releases the hold right after the SIGTERM, "
                           "so it needs at: held (and a hold_at in the script)")
    if fault.kind == "delete" and called & AFTER_DELETE_CALLS:
        problems.add(here, f"{where}path {path_id} sends DELETE while the response runs; the after_delete_* calls "
                           "follow the DELETE the executor sends after the end (a path without a delete fault)")
    return called


def _check_runnable_invocations(
    problems: _Problems,
    here: tuple,
    path_id: str,
    path: _Path,
    script: dict[str, Any],
    expect: dict[str, Any],
    requires: list[str],
) -> None:
    fault = path.spec
    if fault.at == "held" and script.get("hold_at") is None:
        problems.add(here, f"path {path_id} triggers at 'held' but the script has no hold_at: "
                           "the trigger would never fire")
    called = _check_fault_calls(problems, here, "", path_id, fault, expect)
    steer_calls = sorted(called & {"steer", "steer_live", "steer_get", "steer_replay"})
    if (steer_calls or "steering" in expect) and fault.kind != "steer":
        problems.add(here, f"steering expectations need a steer path (path {path_id} is '{fault.kind}')")
    if fault.kind == "steer" and "steering" not in expect:
        problems.add(here, f"path {path_id} steers: the cell must judge it with a 'steering' expectation")
    if fault.kind == "steer" and fault.at != "held":
        problems.add(here, f"path {path_id}: a steer is only deterministic at 'held' (the first turn must still run)")
    if fault.kind == "queue" and "queue" not in expect and "cancel_queued" not in expect:
        problems.add(here, f"path {path_id} queues inputs: the cell must say how many with a queue expectation ({{inputs: N}}), "
                           "or cancel one with cancel_queued: true")
    if "cancel_queued" in expect and (fault.kind != "queue" or fault.at != "held" or "queue" in expect):
        problems.add(here + ("cancel_queued",), f"cancel_queued queues one input behind the held first turn and cancels it: "
                                                f"it needs a 'queue' path at held and no queue expectation (path {path_id} is "
                                                f"'{fault.kind}' at '{fault.at}')")
    if "queue" in expect and (fault.kind not in QUEUE_FAULTS or fault.at != "held"):
        problems.add(here + ("queue",), f"a queue is POSTed while the first turn is held: it needs a path "
                                        f"'{'|'.join(sorted(QUEUE_FAULTS))}' at held (path {path_id} is '{fault.kind}' "
                                        f"at '{fault.at}')")
    if "resume" in called and "resume" not in expect:
        problems.add(here, "expectations name the 'resume' call: add a resume expectation saying from which cursors")
    if script.get("checkpoint_every") is not None and "checkpoints" not in requires:
        problems.add(here, "the script uses checkpoint_every: add 'checkpoints' to the row's requires")


def _check_cell_shape(problems: _Problems, here: tuple, spec: dict[str, Any]) -> bool:
    """Shape rules of one cell entry; returns True for a not-applicable entry."""
    expectations = [k for k in spec if k in EXPECTATION_KEYS]
    if "not_applicable" in spec:
        reason = spec.get("not_applicable")
        if not isinstance(reason, str) or not reason.strip():
            problems.add(here + ("not_applicable",), "not_applicable needs a reason (non-empty text)")
        if expectations:
            problems.add(here, f"a not_applicable cell must have no expectations, found: {', '.join(expectations)}")
        for setting in ("level", "script", "request"):
            if setting in spec:
                problems.add(here + (setting,), f"'{setting}' has no meaning on a not_applicable cell")
        return True
    unknown = [k for k in spec if k not in EXPECTATION_KEYS and k not in CELL_SETTINGS]
    if unknown:
        pass  # the schema reports the unknown names; a depth verdict on a typo would only add noise
    elif not expectations:
        problems.add(here, "cell asserts nothing: add expectations, or not_applicable: <reason>")
    else:
        counted = [k for k in expectations if k != "status"]
        hollow = [k for k in counted if k in OPTION_EXPECTATIONS and not asserting_options(spec[k])]
        counted = [k for k in counted if k not in hollow]
        if not counted:
            why = "; ".join(f"{k} {_hollow_reason(spec[k])}" for k in hollow)
            what = "only a status" if "status" in spec else "nothing"
            problems.add(
                here,
                f"depth gate: this cell asserts {what}"
                + (f" ({why})" if why else "")
                + (", and a bare status proves nothing" if "status" in spec else "")
                + "; add output/output_text, attempts, http, error, replay, stream, exit or persisted"
                + (" (or turn a stream/replay option on)" if hollow else ""),
            )
    replay = spec.get("replay")
    if isinstance(replay, dict) and isinstance(replay.get("after"), list):
        for i, cursor in enumerate(replay["after"]):
            complaint = _check_cursor(cursor)
            if complaint:
                problems.add(here + ("replay", "after", i), complaint)
    for key in OPTION_EXPECTATIONS:
        options = spec.get(key)
        if isinstance(options, dict) and "terminal_status" in options and "terminal" in options:
            terminal = options["terminal"]
            if terminal is None or terminal == "error":
                problems.add(
                    here + (key, "terminal_status"),
                    f"terminal_status {show(options['terminal_status'])} is read from the terminal "
                    f"event's response object, but terminal: {show(terminal)} "
                    + ("expects no terminal event" if terminal is None else "is an error event, which carries none")
                    + ": drop one of them",
                )
    return False


def _hollow_reason(expected: Any) -> str:
    """Why a ``stream``/``replay`` expectation asserts nothing (for the depth gate message)."""
    off = [k for k in expected if k != "after"] if isinstance(expected, dict) else []
    if not off:
        return "only lists cursors"
    return "turns every option off: " + ", ".join(f"{k}: {show(expected[k])}" for k in off)


def _expectations(spec: dict[str, Any]) -> dict[str, Any]:
    """A cell's expectations as plain data; a ``{raw: X}`` cursor becomes the string X (what the
    executor sends verbatim: any string but the tokens is a raw cursor in a Cell)."""
    expect = {k: plain(spec[k]) for k in EXPECTATION_KEYS if k in spec}
    replay = expect.get("replay")
    if isinstance(replay, dict) and isinstance(replay.get("after"), list):
        replay["after"] = [c["raw"] if isinstance(c, dict) and "raw" in c else c for c in replay["after"]]
    resume = expect.get("resume")
    if isinstance(resume, dict) and isinstance(resume.get("from"), list):
        resume["from"] = [c["raw"] if isinstance(c, dict) and "raw" in c else c for c in resume["from"]]
    return expect


def _build(doc: dict[str, Any], file: str, problems: _Problems) -> ContractTable | None:
    name = doc.get("contract")
    profile = doc.get("profile")
    if isinstance(name, str) and isinstance(profile, str):
        wanted = f"{profile}/{Path(file).stem}"
        if name != wanted:
            problems.add(("contract",), f"contract '{name}' must be '{wanted}' (<profile>/<file stem>)")
    file_level = doc.get("level", "MUST")
    paths = _check_paths(doc, problems)
    if profile in PROFILE_FAULTS:
        for pid, p in paths.items():
            if p.spec.kind not in PROFILE_FAULTS[profile]:
                problems.add(("paths", pid, "fault"), f"fault '{p.spec.kind}' does not apply to profile {profile} "
                                                      f"(known here: {', '.join(k for k in FAULT_KINDS if k in PROFILE_FAULTS[profile])})")
    if profile == "invocations" and "request" in _mapping(doc.get("defaults")):
        problems.add(("defaults", "request"), "invocations contracts take no request fields (the input is the script)")
    declared = list(doc.get("paths", {})) if isinstance(doc.get("paths"), dict) else []
    defaults = _mapping(doc.get("defaults"))

    cells: list[Cell] = []
    not_applicable: list[NotApplicable] = []
    row_ids: list[str] = []
    seen_rows: dict[str, int] = {}
    rows = doc.get("rows") if isinstance(doc.get("rows"), list) else []
    for r, row in enumerate(rows):
        if not isinstance(row, dict):
            continue
        rhere: tuple = ("rows", r)
        row_id = row.get("id")
        if isinstance(row_id, str):
            if row_id in seen_rows:
                problems.add(rhere + ("id",), f"duplicate row id '{row_id}' (first at line {seen_rows[row_id]})")
            else:
                seen_rows[row_id] = line_of(problems.doc, rhere + ("id",))
                row_ids.append(row_id)
        else:
            row_id = f"#{r}"
        vary = _mapping(row.get("vary"))
        vary_items = [(k, list(v)) for k, v in vary.items() if isinstance(v, list) and v and k in REQUEST_FIELDS]
        variants = [tuple(zip([k for k, _ in vary_items], combo))
                    for combo in itertools.product(*[vals for _, vals in vary_items])]
        if profile in PROFILE_SERVER_MODES:
            for layer, lhere in ((_mapping(defaults.get("server")), ("defaults", "server")),
                                 (_mapping(row.get("server")), rhere + ("server",))):
                for mode in layer:
                    if mode in SERVER_MODES and mode not in PROFILE_SERVER_MODES[profile]:
                        problems.add(lhere + (mode,), f"server mode '{mode}' does not apply to profile {profile} "
                                                      f"(known here: {', '.join(sorted(PROFILE_SERVER_MODES[profile]))})")
            if profile == "invocations":
                for key in ("request", "vary"):
                    if key in row:
                        problems.add(rhere + (key,), f"invocations rows take no '{key}' (the input is the script)")
        server = _merge(defaults.get("server"), row.get("server"))
        row_requires = _strings(defaults.get("requires")) + _strings(row.get("requires"))
        row_request = _merge(defaults.get("request"), row.get("request"))
        clash = [k for k, _ in vary_items if k in _mapping(row.get("request"))]
        for k in clash:
            problems.add(rhere + ("request", k), f"'{k}' is set here and varied in vary: set it in one place")
        row_script = _merge(defaults.get("script"), row.get("script"))
        row_level = row.get("level", file_level)
        title = row.get("title", "") if isinstance(row.get("title"), str) else ""
        row_notes = row.get("notes", "") if isinstance(row.get("notes"), str) else ""
        row_cells = row.get("cells")
        if not isinstance(row_cells, dict):
            continue
        for pid in declared:
            if pid not in row_cells:
                problems.add(
                    rhere + ("cells",),
                    f"completeness gate: row '{row_id}' has no cell for path {pid}: "
                    f"add one, or {pid}: {{not_applicable: <reason>}}",
                )
        for pid, entry in row_cells.items():
            chere = rhere + ("cells", pid)
            if pid not in declared:
                problems.add(chere, f"unknown path '{pid}' (declared paths: {', '.join(declared) or 'none'})")
                continue
            entries = list(enumerate(entry)) if isinstance(entry, list) else [(None, entry)]
            covered: dict[tuple, int] = {}
            for idx, spec in entries:
                if not isinstance(spec, dict):
                    continue
                here = chere + ((idx,) if idx is not None else ())
                is_na = _check_cell_shape(problems, here, spec)
                when = _mapping(spec.get("when"))
                bad_when = False
                for k, v in when.items():
                    values = dict(vary_items).get(k)
                    if values is None:
                        problems.add(here + ("when", k),
                                     f"when names '{k}', which this row does not vary "
                                     f"(vary: {', '.join(dict(vary_items)) or 'nothing'})")
                        bad_when = True
                    elif v not in values:
                        problems.add(here + ("when", k),
                                     f"when {k}={_fmt(v)} is not a value of vary {k}: {', '.join(map(_fmt, values))}")
                        bad_when = True
                if bad_when:
                    continue
                matched = [v for v in variants if all(dict(v).get(k) == val for k, val in when.items())]
                for k in _mapping(spec.get("request")):
                    if k in dict(vary_items):
                        problems.add(here + ("request", k),
                                     f"'{k}' is varied by the row: restrict the cell with when: {{{k}: ...}} instead")
                line = spec.line if isinstance(spec, LineDict) else line_of(problems.doc, here)
                for variant in matched:
                    if variant in covered:
                        problems.add(here, f"variant {_variant_text(variant)} of path {pid} is already "
                                           f"covered by the entry at line {covered[variant]}")
                        continue
                    covered[variant] = line
                if is_na:
                    reason = spec.get("not_applicable")
                    reason = reason.strip() if isinstance(reason, str) else ""
                    source = f"{file}:{line}"
                    if len(matched) == len(variants):
                        not_applicable.append(NotApplicable(name or "", row_id, pid, reason, source))
                    else:
                        for variant in matched:
                            not_applicable.append(NotApplicable(
                                name or "", row_id, pid, f"{_variant_text(variant)}: {reason}", source))
                    continue
                path = paths.get(pid)
                if isinstance(profile, str):
                    _check_profile(problems, here, profile, spec)
                if path is None:
                    continue  # the path itself is broken and already reported
                expect = _expectations(spec)
                script = _merge(row_script, spec.get("script"))
                requires = sorted(set(row_requires + path.requires + [m for m, on in server.items() if on is True]))
                level = spec.get("level", row_level)
                for variant in matched:
                    request = _merge(row_request, spec.get("request"))
                    request.update(dict(variant))
                    _check_runnable(problems, here, pid, path, request, script, expect, requires,
                                    _variant_text(variant), profile or "responses")
                    cells.append(Cell(
                        contract=name or "",
                        profile=profile or "",
                        row=row_id,
                        title=title,
                        path=pid,
                        variant=tuple(variant),
                        level=level if level in LEVELS else "MUST",
                        server=dict(server),
                        request=request,
                        script=copy.deepcopy(script),
                        fault=path.spec,
                        expect=copy.deepcopy(expect),
                        requires=tuple(requires),
                        source=f"{file}:{line}",
                        notes=spec.get("notes") if isinstance(spec.get("notes"), str) else row_notes,
                    ))
            for variant in variants:
                if variant not in covered and entries and all(isinstance(s, dict) for _, s in entries):
                    problems.add(
                        chere,
                        f"completeness gate: variant {_variant_text(variant)} of path {pid} has no cell: "
                        "add one (when: ...), or an entry with not_applicable: <reason>",
                    )
    if problems.items:
        return None
    return ContractTable(
        name=name,
        profile=profile,
        level=file_level,
        source=file,
        paths={pid: p.spec for pid, p in paths.items()},
        cells=cells,
        not_applicable=not_applicable,
        row_ids=row_ids,
    )


# -- public API -----------------------------------------------------------------------------
def parse_contract(text: str, file: str) -> ContractTable:
    """Parse contract text (``file`` names it in errors and cell sources)."""
    try:
        doc, yaml_problems = parse(text)
    except YamlSyntaxError as exc:
        raise ContractError(exc.message, file=file, line=exc.line) from None
    problems = _Problems(file, doc)
    for line, message in yaml_problems:
        problems.add((), message, line=line)
    if doc is None:
        problems.add((), "empty contract file", line=1)
        problems.raise_if_any()
    if not isinstance(doc, dict):
        problems.add((), "a contract is a mapping with contract, profile, paths and rows", line=1)
        problems.raise_if_any()
    _schema_problems(doc, problems)
    table = _build(doc, file, problems)
    problems.raise_if_any()
    assert table is not None
    return table


def load_contract(path: str | Path) -> ContractTable:
    """Load, validate and expand one contract file; raises one ContractError listing every problem."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ContractNotFoundError("no such file", file=file) from None
    except IsADirectoryError:
        raise ContractError("is a directory, not a contract file", file=file) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ContractError(f"cannot read: {exc}", file=file) from None
    return parse_contract(text, file)


def expand_paths(paths_or_globs: str | Path | Iterable[str | Path]) -> list[str]:
    """Files named by files, directories (all *.yaml / *.yml below) and globs, sorted, unique.

    Raises ContractNotFoundError (listing each) when an argument names no contract file.
    """
    if isinstance(paths_or_globs, (str, Path)):
        paths_or_globs = [paths_or_globs]
    found: set[str] = set()
    missing: list[ContractError] = []
    for item in paths_or_globs:
        text = str(item)
        if _GLOB_CHARS & set(text):
            hits = [h for h in globlib.glob(text, recursive=True) if Path(h).is_file()]
            if not hits:
                missing.append(ContractNotFoundError("no contract file matches this glob", file=text))
            found.update(hits)
        elif Path(text).is_dir():
            hits = [str(p) for p in Path(text).rglob("*") if p.suffix in _CONTRACT_SUFFIXES and p.is_file()]
            if not hits:
                missing.append(ContractNotFoundError("directory holds no contract file (*.yaml)", file=text))
            found.update(hits)
        elif Path(text).is_file():
            found.add(text)
        else:
            missing.append(ContractNotFoundError("no such file or directory", file=text))
    if missing:
        if len(missing) == 1:
            raise missing[0]
        raise ContractNotFoundError(f"{len(missing)} paths name no contract file", errors=missing)
    return sorted(found)


def load_contracts(paths_or_globs: str | Path | Iterable[str | Path]) -> list[ContractTable]:
    """Load every contract named by files, directories or globs, in sorted path order.

    Problems of all files are collected into one ContractError; two files declaring the same
    contract name are a problem too.
    """
    tables: list[ContractTable] = []
    errors: list[ContractError] = []
    for file in expand_paths(paths_or_globs):
        try:
            tables.append(load_contract(file))
        except ContractError as exc:
            errors.extend(exc.errors)
    first: dict[str, str] = {}
    for table in tables:
        if table.name in first:
            errors.append(ContractError(
                f"contract '{table.name}' is also defined in {first[table.name]}",
                file=table.source, line=1, key="contract"))
        else:
            first[table.name] = table.source
    if errors:
        raise ContractError(f"{len(errors)} contract problem(s)", file=errors[0].file, line=errors[0].line,
                            key=errors[0].key, errors=errors)
    return tables


def collect_cells(tables: Iterable[ContractTable]) -> list[Cell]:
    """All cells of the tables, in table order; cell ids must be unique across tables."""
    cells: list[Cell] = []
    seen: dict[str, str] = {}
    errors: list[ContractError] = []
    for table in tables:
        for cell in table.cells:
            if cell.id in seen:
                file, _, line = cell.source.rpartition(":")
                errors.append(ContractError(
                    f"duplicate cell id '{cell.id}' (first at {seen[cell.id]})",
                    file=file or cell.source, line=int(line) if line.isdigit() else None))
            else:
                seen[cell.id] = cell.source
                cells.append(cell)
    if errors:
        raise ContractError(f"{len(errors)} duplicate cell id(s)", file=errors[0].file, line=errors[0].line,
                            errors=errors)
    return cells
