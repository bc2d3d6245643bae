"""target.yaml: how to start a target, which server modes and capabilities it claims.

A target file is data (DESIGN.md §7).  ``load_target`` validates it against a JSON schema and
turns it into a TargetConfig; every mistake is one ``TargetConfigError`` naming ``file:line``
and the key.  The bundled reference target is ``conformance/targets/reference.yaml``.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from harness.process import TargetSpec

from .errors import TargetConfigError

REFERENCE_TARGET = Path(__file__).parent / "targets" / "reference.yaml"

_STRINGS = {"type": "array", "items": {"type": "string"}}
TARGET_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["command", "profiles"],
    "properties": {
        "name": {"type": "string"},
        "command": {"type": "string", "minLength": 1},
        "env": {"type": "object", "additionalProperties": {"type": "string"}},
        "cwd": {"type": "string"},
        "readiness": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "path": {"type": "string", "pattern": "^/"},
                "timeout_s": {"type": "number", "exclusiveMinimum": 0},
            },
        },
        "shutdown_grace_s": {"type": "number", "exclusiveMinimum": 0},
        "profiles": {"type": "array", "items": {"enum": ["responses", "invocations"]}, "minItems": 1},
        "modes": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"args": _STRINGS, "env": {"type": "object", "additionalProperties": {"type": "string"}}},
            },
        },
        "claims": _STRINGS,
        "baseline": {"type": "string"},
        "strict": {"type": "boolean"},
        "cell_timeout_s": {"type": "number", "exclusiveMinimum": 0},
        "store": {
            "type": "object",
            "additionalProperties": False,
            "required": ["args"],
            "properties": {"args": _STRINGS, "default": {"type": "string"}, "describe": {"type": "string", "minLength": 1}},
        },
        # several workers on one shared store (claim `multi_worker`): args with a {worker} placeholder
        "workers": {
            "type": "object",
            "additionalProperties": False,
            "required": ["args", "lease_ttl_s"],
            "properties": {"args": _STRINGS, "lease_ttl_s": {"type": "number", "exclusiveMinimum": 0}},
        },
    },
}


@dataclass(frozen=True)
class Mode:
    """How to start the target in one server mode (extra arguments and environment)."""

    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TargetConfig:
    """A validated target file."""

    name: str
    source: str
    command: str
    env: dict[str, str]
    cwd: str | None
    readiness_path: str
    readiness_timeout_s: float
    shutdown_grace_s: float
    profiles: tuple[str, ...]
    modes: dict[str, Mode]
    claims: frozenset[str]
    baseline: Path | None
    cell_timeout_s: float
    store_args: tuple[str, ...] = ()  # how to select a store: args with a {store} placeholder
    store: str | None = None  # the store selected with --store, if any
    store_default: str | None = None  # the store the target uses without --store (`store.default`)
    store_describe: str | None = None  # command printing the selected store's capabilities as JSON
    store_info: dict[str, Any] = field(default_factory=dict)  # what store_describe printed
    withdrawn: frozenset[str] = frozenset()  # claims the selected store withdraws (e.g. durable_store)
    worker_args: tuple[str, ...] = ()  # how to start one of several workers: args with {worker}
    lease_ttl_s: float | None = None  # the workers' lease ttl: a dead worker's tasks move after it
    strict: bool = False  # SHOULD findings fail the run (target file `strict: true`, or --conformance-strict)

    def with_store(self, store: str) -> "TargetConfig":
        """This target running with store provider ``store`` (``NAME[:OPTIONS]``)."""
        if not self.store_args:
            raise TargetConfigError(
                f"--store: target {self.name} ({self.source}) does not declare how to select a store "
                "(add `store: {args: [--store, \"{store}\"]}` to its target file)"
            )
        if not store or store.startswith(":") or any(c.isspace() for c in store):
            raise TargetConfigError(f"--store: expected NAME[:OPTIONS], got {store!r}")
        if not self.store_describe:
            return dataclasses.replace(self, store=store)
        info = _describe_store(self, store)
        withdraws = info.get("withdraws", [])
        if not isinstance(withdraws, list) or not all(isinstance(w, str) for w in withdraws):
            raise TargetConfigError(f"--store {store}: store.describe printed a bad 'withdraws': {withdraws!r}")
        return dataclasses.replace(self, store=store, store_info=info, withdrawn=frozenset(withdraws))

    def spec_for(self, server: dict[str, Any], worker: str | None = None) -> TargetSpec:
        """The harness spec for a row's server modes (each true mode adds its args/env); with
        ``worker``, the spec of that named worker of several sharing one store."""
        args: list[str] = [a.replace("{store}", self.store) for a in self.store_args] if self.store else []
        if worker is not None:
            if not self.worker_args:
                raise TargetConfigError(f"target {self.name} ({self.source}) declares no `workers:` (several workers)")
            args.extend(a.replace("{worker}", worker) for a in self.worker_args)
        env = dict(self.env)
        for mode, wanted in sorted(server.items()):
            if wanted and mode in self.modes:
                args.extend(self.modes[mode].args)
                env.update(self.modes[mode].env)
        return TargetSpec(
            command=self.command,
            env=env,
            readiness_path=self.readiness_path,
            readiness_timeout_s=self.readiness_timeout_s,
            shutdown_grace_s=self.shutdown_grace_s,
            cwd=self.cwd,
            extra_args=tuple(args),
        )

    def missing_claims(self, requires: tuple[str, ...], profile: str) -> list[str]:
        """What a cell needs that this target does not claim (the profile included)."""
        missing = [] if profile in self.profiles else [f"profile:{profile}"]
        claims = (self.claims | IMPLICIT_CLAIMS) - self.withdrawn
        return missing + [
            f"{r} (withdrawn by store {self.store})" if r in self.withdrawn else r for r in requires if r not in claims
        ]


IMPLICIT_CLAIMS = frozenset({"durable_store"})
"""Claimed by every target unless its selected store withdraws it (``store.describe``).
``durable_store`` is what every cell that restarts the target needs (see ``cell_requires``)."""


def cell_requires(requires: tuple[str, ...], restarts: bool) -> tuple[str, ...]:
    """A cell's requirements plus the implicit ones: a restart needs state that survives it."""
    return requires + ("durable_store",) if restarts else requires


def _describe_store(target: TargetConfig, store: str) -> dict[str, Any]:
    """Run the target's ``store.describe`` command: one clear line if the store is unusable."""
    assert target.store_describe is not None
    try:
        argv = [t.replace("{python}", sys.executable).replace("{store}", store) for t in shlex.split(target.store_describe)]
    except ValueError as exc:
        raise TargetConfigError(f"{target.source}: store.describe: cannot be parsed: {exc}") from None
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=target.cwd or None,
            env={**os.environ, **target.env},
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TargetConfigError(f"--store {store}: store.describe of target {target.name} did not run: {exc}") from None
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        why = lines[-1] if lines else f"exit status {proc.returncode}"
        raise TargetConfigError(f"--store {store}: {why}")
    try:
        info = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        info = None
    if not isinstance(info, dict):
        raise TargetConfigError(f"--store {store}: store.describe did not print a JSON object: {proc.stdout[-200:]!r}")
    return info


def load_target(path: str | Path | None = None) -> TargetConfig:
    """Load and validate a target file (the bundled reference target when path is None)."""
    file = Path(path) if path is not None else REFERENCE_TARGET
    if not file.is_file():
        raise TargetConfigError(f"{file}: target file not found")
    text = file.read_text(encoding="utf-8")
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise TargetConfigError(f"{file}:{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise TargetConfigError(f"{file}:1: a target file is a mapping (command, profiles, ...)")
    errors = sorted(jsonschema.Draft202012Validator(TARGET_SCHEMA).iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for err in errors:
            where = list(err.absolute_path)
            if err.validator == "additionalProperties" and isinstance(err.instance, dict):
                known = list(err.schema.get("properties", {}))
                for extra in (k for k in err.instance if k not in known):
                    hint = difflib.get_close_matches(str(extra), known, n=1)
                    maybe = f"did you mean {hint[0]}? " if hint else ""
                    lines.append(
                        f"{file}:{_key_line(root, where, extra)}: {'.'.join(str(p) for p in where + [extra])}: "
                        f"unknown key ({maybe}known: {', '.join(known)})"
                    )
                continue
            key = ".".join(str(p) for p in where) or "(top)"
            lines.append(f"{file}:{_line_of(root, where)}: {key}: {err.message}")
        raise TargetConfigError("\n".join(lines))

    _check_command(file, root, data["command"], data.get("cwd"))
    unknown_modes = [m for m in data.get("modes", {}) if m not in set(data.get("claims", []))]
    if unknown_modes:
        raise TargetConfigError(
            f"{file}:{_line_of(root, ['modes'])}: modes: {', '.join(unknown_modes)} "
            "defined but not listed in claims (a mode the target can start in is a claim)"
        )
    if ("multi_worker" in data.get("claims", [])) != ("workers" in data):
        raise TargetConfigError(
            f"{file}:{_line_of(root, ['workers' if 'workers' in data else 'claims'])}: the claim multi_worker and "
            "`workers: {args, lease_ttl_s}` go together (how to start a worker is part of claiming it)"
        )
    baseline = data.get("baseline")
    baseline_path = (file.parent / baseline).resolve() if baseline else None
    if baseline_path is not None and not baseline_path.is_file():
        raise TargetConfigError(f"{file}:{_line_of(root, ['baseline'])}: baseline: file {baseline_path} not found")
    readiness = data.get("readiness", {})
    return TargetConfig(
        name=data.get("name", file.stem),
        source=str(file),
        command=data["command"],
        env=dict(data.get("env", {})),
        cwd=data.get("cwd"),
        readiness_path=readiness.get("path", "/readiness"),
        readiness_timeout_s=float(readiness.get("timeout_s", 20.0)),
        shutdown_grace_s=float(data.get("shutdown_grace_s", 10.0)),
        profiles=tuple(data["profiles"]),
        modes={k: Mode(tuple(v.get("args", [])), dict(v.get("env", {}))) for k, v in data.get("modes", {}).items()},
        claims=frozenset(data.get("claims", [])),
        baseline=baseline_path,
        cell_timeout_s=float(data.get("cell_timeout_s", 30.0)),
        store_args=tuple(data.get("store", {}).get("args", ())),
        store_describe=data.get("store", {}).get("describe"),
        store_default=data.get("store", {}).get("default"),
        worker_args=tuple(data.get("workers", {}).get("args", ())),
        lease_ttl_s=float(data["workers"]["lease_ttl_s"]) if "workers" in data else None,
        strict=bool(data.get("strict", False)),
    )


def _check_command(file: Path, root: yaml.Node, command: str, cwd: str | None) -> None:
    """The command's program must exist, so a typo is one clear line and not a readiness timeout."""
    line = _line_of(root, ["command"])
    try:
        tokens = shlex.split(command)
    except ValueError as exc:
        raise TargetConfigError(f"{file}:{line}: command: cannot be parsed: {exc}") from None
    if not tokens:
        raise TargetConfigError(f"{file}:{line}: command: empty")
    program = tokens[0].replace("{python}", sys.executable)
    if "/" in program:
        candidate = Path(cwd or file.parent) / program if not Path(program).is_absolute() else Path(program)
        if not candidate.exists():
            raise TargetConfigError(f"{file}:{line}: command: program {program!r} does not exist")
    elif shutil.which(program) is None:
        raise TargetConfigError(f"{file}:{line}: command: program {program!r} not found on PATH")


def _key_line(root: yaml.Node | None, path: list[Any], key: Any) -> int:
    """1-based line of ``key`` itself in the mapping at ``path`` (where an unknown key is written)."""
    node = root
    for step in path:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(step)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
            node = node.value[step]
        else:
            node = None
    if isinstance(node, yaml.MappingNode):
        for k, _ in node.value:
            if k.value == str(key):
                return k.start_mark.line + 1
    return _line_of(root, path)


def _line_of(node: yaml.Node | None, path: list[Any]) -> int:
    """1-based line of the node at ``path`` (the deepest existing ancestor when absent)."""
    line = node.start_mark.line + 1 if node is not None else 1
    for key in path:
        if isinstance(node, yaml.MappingNode):
            match = [v for k, v in node.value if k.value == str(key)]
            if not match:
                break
            node = match[0]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            break
        line = node.start_mark.line + 1
    return line


def load_baseline(path: Path | None) -> dict[str, str]:
    """Expected failures of a target: ``{cell or suite test id: reason}``.  Empty when there is no baseline."""
    if path is None:
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise TargetConfigError(f"{path}: not valid YAML: {exc}") from None
    entries = data.get("expected_failures", {}) if isinstance(data, dict) else None
    if not isinstance(entries, dict) or not all(isinstance(k, str) for k in entries):
        raise TargetConfigError(f"{path}:1: expected_failures: a mapping of cell id to reason")
    return {k: str(v) for k, v in entries.items()}


def check_baseline_ids(path: Path, entries: dict[str, str], known_ids: set[str]) -> None:
    """Every baseline entry must name a cell of some contract or a suite test (``known_ids``):
    an entry naming none (a typo, a renamed row) would otherwise be ignored for ever.  One
    ``file:line`` per unknown id, with the closest known id when there is one."""
    unknown = [e for e in entries if e not in known_ids]
    if not unknown:
        return
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        root = None
    lines = []
    for entry in unknown:
        # a suite test id without its module path ("test_x[p]") ends the full id; else the nearest
        close = sorted(k for k in known_ids if k.endswith(("::" + entry, "/" + entry))) \
            or difflib.get_close_matches(entry, sorted(known_ids), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        line = _key_line(root, ["expected_failures"], entry)
        lines.append(f"{path}:{line}: expected_failures: {entry!r} is not the id of any contract cell or suite test{hint}")
    raise TargetConfigError("\n".join(lines))
