"""target.yaml: how to start a target, which server modes and capabilities it claims.

A target file is data (docs/architecture.md).  ``load_target`` expands ``${VAR}`` in its text
values, validates it against ``schema/target.schema.json``, resolves its relative paths against
the file's own folder and turns it into a TargetConfig; every mistake is one
``TargetConfigError`` line naming ``file:line`` and the key.  ``probe_target`` starts it once.
The bundled reference target is ``conformance/targets/reference.yaml``.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import jsonschema
import yaml

from harness.errors import CommandTemplateError
from harness.process import PLACEHOLDERS, TargetSpec

from . import yamlfile
from .contract import CAPABILITIES
from .errors import TargetConfigError

REFERENCE_TARGET = Path(__file__).parent / "targets" / "reference.yaml"

SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "target.schema.json"

KNOWN_CLAIMS = CAPABILITIES + ("multi_worker", "durable_store")
"""What a target may claim: the contracts' server modes and capabilities (``contract.CAPABILITIES``),
``multi_worker`` (several workers on one store) and ``durable_store`` (implicit, see
``IMPLICIT_CLAIMS``).  The target schema's ``claims`` enum is this list (a test keeps them equal)."""


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def target_schema() -> dict[str, Any]:
    """The target-file JSON schema (draft 2020-12)."""
    return _validator().schema


_VAR_RE = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|(\{[^}]*\}?))")


def expand_vars(text: str, environ: Mapping[str, str]) -> str:
    """``${NAME}`` is the variable's value, ``${NAME:-default}`` the value or ``default`` when it is
    unset or empty, ``$$`` a literal ``$``; any other ``$`` stays as written.  Raises ValueError
    naming an unset variable or a malformed ``${...}``."""

    def sub(m: re.Match[str]) -> str:
        if m.group(1):
            return "$"
        if m.group(4) is not None:
            raise ValueError(f"bad variable reference '${m.group(4)}' (write ${{NAME}}, ${{NAME:-default}}, or $$ for a literal $)")
        name, default = m.group(2), m.group(3)
        value = environ.get(name)
        if default is not None and not value:
            return default
        if value is None:
            raise ValueError(f"environment variable {name} is not set (set it, write ${{{name}:-default}}, or $$ for a literal $)")
        return value

    return _VAR_RE.sub(sub, text)


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
    store: str | None = None  # the store selected with --conformance-store, if any
    store_default: str | None = None  # the store the target uses without --conformance-store (`store.default`)
    store_describe: str | None = None  # command printing the selected store's capabilities as JSON
    store_info: dict[str, Any] = field(default_factory=dict)  # what store_describe printed
    withdrawn: frozenset[str] = frozenset()  # claims the selected store withdraws (e.g. durable_store)
    worker_args: tuple[str, ...] = ()  # how to start one of several workers: args with {worker}
    lease_ttl_s: float | None = None  # the workers' lease ttl: a dead worker's tasks move after it
    strict: bool = False  # SHOULD findings fail the run (target file `strict: true`, or --conformance-strict)
    control: str = "full"  # "none": no test-control adapter; only black-box cells run (conformance/blackbox.py)
    blackbox_spec: dict[str, Any] = field(default_factory=dict)  # the target file's `blackbox:` mapping

    @property
    def blackbox(self) -> bool:
        """True when the target has no test-control adapter (``control: none``)."""
        return self.control == "none"

    def blackbox_request(self, profile: str) -> tuple[Any, dict[str, Any]]:
        """The ``input`` and the other create fields of every black-box run of ``profile``."""
        spec = self.blackbox_spec
        override = spec.get(profile) or {}
        return override.get("input", spec.get("input")), {**(spec.get("body") or {}), **(override.get("body") or {})}
    python: str | None = None  # what {python} stands for (target file `python:`; None: the kit's own)

    def with_store(self, store: str) -> "TargetConfig":
        """This target running with store provider ``store`` (``NAME[:OPTIONS]``)."""
        if not self.store_args:
            raise TargetConfigError(
                f"--conformance-store: target {self.name} ({self.source}) does not declare how to select a store "
                "(add `store: {args: [--store, \"{store}\"]}` to its target file)"
            )
        if not store or store.startswith(":") or any(c.isspace() for c in store):
            raise TargetConfigError(f"--conformance-store: expected NAME[:OPTIONS], got {store!r}")
        if not self.store_describe:
            return dataclasses.replace(self, store=store)
        info = _describe_store(self, store)
        withdraws = info.get("withdraws", [])
        if not isinstance(withdraws, list) or not all(isinstance(w, str) for w in withdraws):
            raise TargetConfigError(f"--conformance-store {store}: store.describe printed a bad 'withdraws': {withdraws!r}")
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
            python=self.python,
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
        python = target.python or sys.executable
        argv = [t.replace("{python}", python).replace("{store}", store) for t in shlex.split(target.store_describe)]
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
        raise TargetConfigError(f"--conformance-store {store}: store.describe of target {target.name} did not run: {exc}") from None
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        why = lines[-1] if lines else f"exit status {proc.returncode}"
        raise TargetConfigError(f"--conformance-store {store}: {why}")
    try:
        info = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        info = None
    if not isinstance(info, dict):
        raise TargetConfigError(f"--conformance-store {store}: store.describe did not print a JSON object: {proc.stdout[-200:]!r}")
    return info


def load_target(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> TargetConfig:
    """Load and validate a target file (the bundled reference target when path is None);
    ``${VAR}`` is expanded from ``environ`` (default: this process's environment)."""
    file = Path(path) if path is not None else REFERENCE_TARGET
    if not file.is_file():
        raise TargetConfigError(f"{file}: target file not found")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TargetConfigError(f"{file}: cannot read: {exc}") from None
    try:
        doc, yaml_problems = yamlfile.parse(text)
    except yamlfile.YamlSyntaxError as exc:
        raise TargetConfigError(f"{file}:{exc.line or 1}: {exc.message}") from None
    if not isinstance(doc, dict):
        raise TargetConfigError(f"{file}:1: a target file is a mapping (command, profiles, ...)")
    problems: list[tuple[int, str]] = [(line, f"{file}:{line}: {message}") for line, message in yaml_problems]

    def problem(where: tuple[Any, ...] | list[Any], message: str) -> tuple[int, str]:
        line = yamlfile.line_of(doc, where)
        return line, f"{file}:{line}: {yamlfile.key_text(where) or '(top)'}: {message}"

    env = os.environ if environ is None else environ
    for where, value in list(yamlfile.strings(doc)):
        try:
            yamlfile.replace(doc, where, expand_vars(value, env))
        except ValueError as exc:
            problems.append(problem(where, str(exc)))
    problems += [problem(p.path, p.message) for p in yamlfile.schema_problems(_validator(), doc)]
    if problems:
        raise TargetConfigError("\n".join(text for _, text in sorted(problems, key=lambda p: p[0])))

    def fail(where: list[Any], message: str) -> TargetConfigError:
        return TargetConfigError(problem(where, message)[1])

    folder = Path(os.path.abspath(file)).parent
    cwd = folder / doc["cwd"] if "cwd" in doc else folder  # an absolute cwd stays itself
    if not cwd.is_dir():
        raise fail(["cwd"], f"directory {cwd} not found (a relative cwd is relative to the target file's folder)")
    python = _resolve_python(doc, folder, fail)
    _check_command(doc["command"], cwd, python, doc.get("env", {}).get("PATH"), fail)
    unknown_modes = [m for m in doc.get("modes", {}) if m not in set(doc.get("claims", []))]
    if unknown_modes:
        raise fail(["modes"], f"{', '.join(unknown_modes)} defined but not listed in claims (a mode the target can start in is a claim)")
    if ("multi_worker" in doc.get("claims", [])) != ("workers" in doc):
        raise fail(
            ["workers" if "workers" in doc else "claims"],
            "the claim multi_worker and `workers: {args, lease_ttl_s}` go together (how to start a worker is part of claiming it)",
        )
    if (doc.get("control") == "none") != ("blackbox" in doc):
        raise fail(
            ["blackbox" if "blackbox" in doc else "control"],
            "`control: none` and `blackbox: {input: <a plain prompt>}` go together (a target without the "
            "test-control adapter tells the kit what to send instead of a script; docs/protocol.md §8)",
        )
    baseline = doc.get("baseline")
    baseline_path = (folder / baseline).resolve() if baseline else None
    if baseline_path is not None and not baseline_path.is_file():
        raise fail(["baseline"], f"file {baseline_path} not found")
    data = yamlfile.plain(doc)
    readiness = data.get("readiness", {})
    return TargetConfig(
        name=data.get("name", file.stem),
        source=str(file),
        command=data["command"],
        env=dict(data.get("env", {})),
        cwd=str(cwd),
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
        control=data.get("control", "full"),
        blackbox_spec=dict(data.get("blackbox") or {}),
        python=python,
    )


def _resolve_python(doc: dict[str, Any], folder: Path, fail: Any) -> str | None:
    """``python:`` as an absolute path: a path is relative to the target file's folder, a bare
    name is looked up on PATH; it must be an executable file."""
    if "python" not in doc:
        return None
    given = doc["python"]
    if "/" in given:
        path = folder / given
        if not path.is_file():
            raise fail(["python"], f"interpreter {path} not found (a relative path is relative to the target file's folder)")
    else:
        found = shutil.which(given)
        if found is None:
            raise fail(["python"], f"interpreter {given!r} not found on PATH")
        path = Path(found)
    if not os.access(path, os.X_OK):
        raise fail(["python"], f"interpreter {path} is not executable")
    return os.path.abspath(path)


def _check_command(command: str, cwd: Path, python: str | None, path_var: str | None, fail: Any) -> None:
    """The command must parse, use known placeholders only, and name a program that exists, so
    that a typo is one clear line and not a readiness timeout.  A relative program path is
    relative to ``cwd`` (the target file's folder unless ``cwd:`` says otherwise), which is where
    the server is started too."""
    try:
        argv = TargetSpec(command=command).render({name: name for name in PLACEHOLDERS} | {"python": python or sys.executable})
    except CommandTemplateError as exc:
        raise fail(["command"], str(exc)) from None
    program = argv[0]
    if "/" in program:
        candidate = cwd / program  # an absolute program stays itself
        if not candidate.is_file():
            raise fail(["command"], f"program {program!r} does not exist (looked for {candidate})")
        if not os.access(candidate, os.X_OK):
            raise fail(["command"], f"program {candidate} is not executable")
    elif shutil.which(program, path=path_var) is None:  # the server's PATH: the target's env, else ours
        raise fail(["command"], f"program {program!r} not found on PATH")


def probe_target(target: TargetConfig, work_dir: Path) -> None:
    """Start the target once in its default mode (no server mode, the selected store), wait for
    its readiness within its own ``readiness.timeout_s``, and kill it.  A command that cannot
    start (a missing module, a crash at import, a wrong port flag) is then one
    ``TargetConfigError`` naming the command and quoting the log tail once, before any test
    runs, instead of one "not testable" cell after another."""
    from harness.errors import HarnessError
    from harness.process import Target

    try:
        with Target(target.spec_for({}), work_dir) as server:
            server.start()
    except HarnessError as exc:
        raise TargetConfigError(f"{target.source}: command: target {target.name} did not start: {exc}") from None


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
        doc, _ = yamlfile.parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yamlfile.YamlSyntaxError):
        doc = None
    lines = []
    for entry in unknown:
        # a suite test id without its module path ("test_x[p]") ends the full id; else the nearest
        close = sorted(k for k in known_ids if k.endswith(("::" + entry, "/" + entry))) \
            or difflib.get_close_matches(entry, sorted(known_ids), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        line = yamlfile.line_of(doc, ["expected_failures", entry])
        lines.append(f"{path}:{line}: expected_failures: {entry!r} is not the id of any contract cell or suite test{hint}")
    raise TargetConfigError("\n".join(lines))
