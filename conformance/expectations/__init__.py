"""The expectation registry: one home per expectation key (docs/contracts.md "Adding a key").

An ``Expectation`` record says everything the kit knows about one key of a contract cell: the
profiles it applies to, its JSON-schema fragment (the contract schema's cell properties are
these fragments), whether it counts for the depth gate, the probes it asks the executor for
(replays after the end, a transcript, DELETE and the calls after it) and its checker.  The
parser (``conformance.contract``), the executor's probe decisions and ``checks.run_checks`` ask
the registry; nothing else lists the keys.

The bundled keys live in ``conformance.expectations.builtin``.  A third party adds a key with a
pluggy hook implementation of ``conformance_expectations`` (``conformance.expectations.hooks``),
registered on ``plugin_manager()`` or published under the ``stream_task_conformance`` entry point
group.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from conformance.history import History, Violation
from conformance.model import Cell, FaultSpec

Checker = Callable[[History, Any, Cell], list[Violation]]
"""A pure checker: ``History x expected value x Cell -> findings`` (Violations and Unknowns)."""


@dataclass(frozen=True)
class Probes:
    """What the executor does after the end of a run so that the cell's checkers can judge it.

    ``replays``: cursors (``start``, ``mid``, an int or a raw string) to replay the response from
    (responses profile); ``from_terminal``: one more replay from the first terminal event's
    sequence number; ``transcript``: one full replay of the invocation (invocations profile);
    ``calls``: the call names the ``http`` expectation names (``bad_id_get``, ``delete``,
    ``after_delete_*``, ... make the executor send them); ``resume``: the ``resume`` expectation,
    whose cursors and transports the executor resumes with; ``needs_start``: one replay from the
    start when no key names replay cursors (responses profile)."""

    replays: tuple[Any, ...] = ()
    from_terminal: bool = False
    transcript: bool = False
    calls: frozenset[str] = frozenset()
    resume: dict[str, Any] | None = None
    needs_start: bool = False


NO_PROBES = Probes()


Problem = tuple[tuple[Any, ...], str]
"""A contract problem: the key path below the cell (starting with the key) and the message; the
parser turns it into a ``file:line: key: message`` error."""


@dataclass(frozen=True)
class Plan:
    """What the parser knows of one cell variant before it becomes a Cell: enough to say whether
    an expectation can be run on it.  ``where`` prefixes messages about one variant."""

    profile: str
    path_id: str
    fault: FaultSpec
    request: dict[str, Any]
    script: dict[str, Any]
    expect: dict[str, Any]
    requires: tuple[str, ...] = ()
    where: str = ""

    @property
    def stream(self) -> bool:
        return self.request.get("stream") is True

    @property
    def background(self) -> bool:
        return self.request.get("background") is True


def _none(*args: Any) -> Iterable[Problem]:
    return ()


@dataclass(frozen=True)
class Expectation:
    """Everything about one expectation key.

    ``counts(value)`` is the depth-gate rule: True when the value asserts something a
    conforming target could fail (``status`` never counts: a bare status proves nothing);
    ``hollow(value)`` says why a value that does not count asserts nothing (for the gate's
    message).  ``probes(value, cell)`` is what the executor must do for the checker to judge.
    ``validate(value)``: problems of the value the schema cannot say (e.g. a cursor's form);
    ``runnable(value, plan)``: problems that would make the executor hang or the check vacuous
    on this cell (e.g. a ``stream`` expectation without a live stream); ``normalize(value)``:
    the value as the Cell carries it (e.g. ``{raw: X}`` cursors become X)."""

    name: str
    profiles: frozenset[str]
    schema: dict[str, Any]
    check: Checker
    doc: str = ""
    counts: Callable[[Any], bool] = lambda value: True
    hollow: Callable[[Any], str] = lambda value: ""
    probes: Callable[[Any, Cell], Probes] = lambda value, cell: NO_PROBES
    validate: Callable[[Any], Iterable[Problem]] = _none
    runnable: Callable[[Any, Plan], Iterable[Problem]] = _none
    normalize: Callable[[Any], Any] = lambda value: value


def _merge(probes: Iterable[Probes]) -> Probes:
    replays: list[Any] = []
    from_terminal = transcript = False
    calls: set[str] = set()
    resume: dict[str, Any] | None = None
    needs_start = False
    for p in probes:
        replays += [c for c in p.replays if c not in replays]
        from_terminal |= p.from_terminal
        transcript |= p.transcript
        calls |= p.calls
        resume = resume if p.resume is None else p.resume
        needs_start |= p.needs_start
    if not replays and needs_start:
        replays = ["start"]
    return Probes(tuple(replays), from_terminal, transcript, frozenset(calls), resume, needs_start)


@dataclass
class Registry:
    """The expectation keys, in registration order (the order ``run_checks`` judges them in is
    the cell's own key order)."""

    specs: dict[str, Expectation] = field(default_factory=dict)
    generation: int = 0  # bumped on every change: caches (the contract validator) key on it

    def register(self, spec: Expectation) -> None:
        """Add a key; a name already registered is a ValueError (one home per key)."""
        if not isinstance(spec, Expectation):
            raise TypeError(f"register() takes an Expectation, got {type(spec).__name__}")
        if spec.name in self.specs:
            raise ValueError(f"expectation key {spec.name!r} is already registered")
        self.specs[spec.name] = spec
        self.generation += 1

    def unregister(self, name: str) -> None:
        if self.specs.pop(name, None) is not None:
            self.generation += 1

    def __contains__(self, name: object) -> bool:
        return name in self.specs

    def get(self, name: str) -> Expectation | None:
        return self.specs.get(name)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self.specs)

    def for_profile(self, profile: str) -> tuple[str, ...]:
        """The keys a cell of ``profile`` may use, in registration order."""
        return tuple(k for k, s in self.specs.items() if profile in s.profiles)

    def schema_properties(self) -> dict[str, Any]:
        """The contract schema's expectation properties of a cell: each key's fragment."""
        return {k: copy.deepcopy(s.schema) for k, s in self.specs.items()}

    def counts(self, name: str, value: Any) -> bool:
        spec = self.specs.get(name)
        return spec is not None and bool(spec.counts(value))

    def probes(self, cell: Cell) -> Probes:
        """Everything the executor must do after the end of ``cell``'s run, merged over its keys."""
        return _merge(self.specs[k].probes(v, cell) for k, v in cell.expect.items() if k in self.specs)


_REGISTRY: Registry | None = None


def registry() -> Registry:
    """The process-wide registry: the bundled keys, then every plugin's (``hooks``)."""
    global _REGISTRY
    if _REGISTRY is None:
        from . import builtin, hooks

        reg = Registry()
        for spec in builtin.EXPECTATIONS:
            reg.register(spec)
        hooks.load_plugins(reg)  # a broken plugin raises PluginError and leaves no half-built registry
        _REGISTRY = reg
    return _REGISTRY


def probes(cell: Cell) -> Probes:
    """What the executor must do after the end of ``cell``'s run (``Registry.probes``)."""
    return registry().probes(cell)


__all__ = ["Checker", "Expectation", "NO_PROBES", "Plan", "Probes", "Problem", "Registry", "probes", "registry"]
