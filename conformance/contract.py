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

from .errors import ContractError, ContractNotFoundError
from .history import CALL_NAMES, INVOCATION_CALL_NAMES
from .expectations import Plan, registry
from .profiles import PROFILES
from .model import (
    calls_named,
    FAULT_KINDS,
    NET_FAULT_PARAMS,
    NET_FAULTS,
    PROFILE_FAULTS,
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

CELL_SETTINGS = ("level", "script", "request", "when", "notes", "not_applicable")
"""Keys of a cell that are not expectations."""

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
def _file_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@lru_cache(maxsize=4)
def _validator_for(generation: int) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema_with_keys(_file_schema(), registry().schema_properties()))


def _validator() -> jsonschema.Draft202012Validator:
    return _validator_for(registry().generation)


def schema_with_keys(base: dict[str, Any], fragments: dict[str, Any]) -> dict[str, Any]:
    """``base`` (the contract schema) with its cell's expectation properties replaced by
    ``fragments`` (the registry's, in its order), the cell settings kept after them."""
    out = copy.deepcopy(base)
    cell = out["$defs"]["cell"]
    settings = {k: v for k, v in cell["properties"].items() if k in CELL_SETTINGS}
    cell["properties"] = {**copy.deepcopy(fragments), **settings}
    cell["x-known"] = list(fragments)
    return out


def schema() -> dict[str, Any]:
    """The contract JSON schema (draft 2020-12) with every registered expectation key."""
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
    """Problems that would make the executor hang or make an expectation vacuous: the profile's
    own rules (``Profile.runnable``), then every expectation key's."""
    where = f"[{variant}] " if variant != "(no vary)" else ""
    if path.spec.is_net_fault and path.spec.at == "terminal":
        problems.add(here, f"{where}path {path_id} is a network fault ({path.spec.kind}) at 'terminal': the live "
                           "stream is over by then, so there is nothing to fault (use held or after_events)")
    known = PROFILES.get(profile)
    if known is not None:  # an unknown profile is the schema's error
        known.runnable_rules()(problems, here, path_id, path, request, script, expect, requires, where)
    _check_keys_runnable(problems, here, Plan(profile, path_id, path.spec, request, script, expect, tuple(requires), where))


def runnable_responses(
    problems: _Problems,
    here: tuple,
    path_id: str,
    path: _Path,
    request: dict[str, Any],
    script: dict[str, Any],
    expect: dict[str, Any],
    requires: list[str],
    where: str,
) -> None:
    """The responses profile's runnability rules (a trigger that can fire, a stream to fault)."""
    fault = path.spec
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
    _check_fault_calls(problems, here, where, path_id, fault, expect)
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


def _takes_request(profile: str | None) -> bool:
    """Cells of ``profile`` carry request fields (an unknown profile is the schema's error)."""
    known = PROFILES.get(profile or "responses")
    return known is None or known.takes_request


def _check_keys_runnable(problems: _Problems, here: tuple, plan: Plan) -> None:
    """Each expectation's own runnability rules (the registry's ``runnable``), for the keys that
    apply to the profile (the others are already an error)."""
    reg = registry()
    for key, value in plan.expect.items():
        spec = reg.get(key)
        if spec is not None and plan.profile in spec.profiles:
            for path, message in spec.runnable(value, plan):
                problems.add(here + tuple(path), message)


def _check_profile(problems: _Problems, here: tuple, profile: str, spec: dict[str, Any]) -> None:
    """Keys, calls and statuses a cell names must apply to the contract's profile."""
    if profile not in PROFILE_STATUSES:
        return
    reg = registry()
    for key in spec:
        expectation = reg.get(key)
        if expectation is not None and profile not in expectation.profiles:
            problems.add(here + (key,), f"expectation '{key}' does not apply to profile {profile} "
                                        f"(known here: {', '.join(reg.for_profile(profile))})")
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
    if not _takes_request(profile) and "request" in spec:
        problems.add(here + ("request",), f"{profile} cells take no request fields (the input is the script)")


def _check_fault_calls(
    problems: _Problems, here: tuple, where: str, path_id: str, fault: FaultSpec, expect: dict[str, Any]
) -> set[str]:
    """Both profiles: the cancel calls need a cancel path, a drain a hold, the after_delete calls
    no delete fault. Returns the call names the expectations name."""
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


def runnable_invocations(
    problems: _Problems,
    here: tuple,
    path_id: str,
    path: _Path,
    request: dict[str, Any],
    script: dict[str, Any],
    expect: dict[str, Any],
    requires: list[str],
    where: str,
) -> None:
    """The invocations profile's runnability rules (steer and queue paths, resume cursors)."""
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
    if "resume" in called and "resume" not in expect:
        problems.add(here, "expectations name the 'resume' call: add a resume expectation saying from which cursors")
    if script.get("checkpoint_every") is not None and "checkpoints" not in requires:
        problems.add(here, "the script uses checkpoint_every: add 'checkpoints' to the row's requires")


def _check_cell_shape(problems: _Problems, here: tuple, spec: dict[str, Any]) -> bool:
    """Shape rules of one cell entry; returns True for a not-applicable entry."""
    reg = registry()
    expectations = [k for k in spec if k in reg]
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
    unknown = [k for k in spec if k not in reg and k not in CELL_SETTINGS]
    if unknown:
        pass  # the schema reports the unknown names; a depth verdict on a typo would only add noise
    elif not expectations:
        problems.add(here, "cell asserts nothing: add expectations, or not_applicable: <reason>")
    else:
        # the depth gate: each key's own rule says whether its value asserts anything (status never)
        counted = [k for k in expectations if reg.counts(k, spec[k])]
        hollow = [k for k in expectations if k not in counted and reg.specs[k].hollow(spec[k])]
        if not counted:
            why = "; ".join(f"{k} {reg.specs[k].hollow(spec[k])}" for k in hollow)
            what = "only a status" if "status" in spec else "nothing"
            problems.add(
                here,
                f"depth gate: this cell asserts {what}"
                + (f" ({why})" if why else "")
                + (", and a bare status proves nothing" if "status" in spec else "")
                + "; add output/output_text, attempts, http, error, replay, stream, exit or persisted"
                + (" (or turn a stream/replay option on)" if hollow else ""),
            )
    for key in expectations:
        for path, message in reg.specs[key].validate(spec[key]):
            problems.add(here + tuple(path), message)
    return False


def _expectations(spec: dict[str, Any]) -> dict[str, Any]:
    """A cell's expectations as plain data; a ``{raw: X}`` cursor becomes the string X (what the
    executor sends verbatim: any string but the tokens is a raw cursor in a Cell)."""
    reg = registry()
    return {k: reg.specs[k].normalize(plain(spec[k])) for k in reg.keys if k in spec}


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
    if not _takes_request(profile) and "request" in _mapping(doc.get("defaults")):
        problems.add(("defaults", "request"), f"{profile} contracts take no request fields (the input is the script)")
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
            if not _takes_request(profile):
                for key in ("request", "vary"):
                    if key in row:
                        problems.add(rhere + (key,), f"{profile} rows take no '{key}' (the input is the script)")
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
