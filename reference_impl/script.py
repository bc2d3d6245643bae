"""The test-control handler: the only handler of the reference server (docs/protocol.md §3).

A request's ``input`` string may hold ``{"conformance": {...script...}}``. The script drives a
deterministic run: ``deltas`` text deltas ``"a{attempt}:d{i} "``, optional ``delay_ms`` between
them, a ``hold_at`` barrier released by ``<marker_dir>/<tag>.release``, ``checkpoint_every``
(one message item per group, checkpointed when the response is resilient), ``fail_at`` (a
handler error) and ``tag`` (names the marker file). See docs/protocol.md for the full contract.

This module knows nothing about HTTP or storage: it drives a *run* object through a handful
of calls (``begin``, ``open_item``, ``delta``, ``close_item``, ``checkpoint``, ``complete``),
which is the shape an adapter for another framework would have.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any, Protocol

from .markers import MarkerWriter

TAG_RE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
SCRIPT_FIELDS = ("deltas", "delay_ms", "hold_at", "checkpoint_every", "fail_at", "tag")
MAX_DELTAS = 100_000
MAX_DELAY_MS = 60_000
DEFAULT_SCRIPT: dict[str, Any] = {"deltas": 3}


class ScriptShapeError(ValueError):
    """The input names a script that is not an object (rejected with 400 at POST)."""


class HandlerFailure(Exception):
    """The handler ends the response ``failed`` with this error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Script:
    deltas: int = 3
    delay_ms: float = 0
    hold_at: int | None = None
    checkpoint_every: int | None = None
    fail_at: int | None = None
    tag: str | None = None


def extract_script(input_value: Any) -> dict[str, Any] | None:
    """Return the raw script object named by ``input``, or None for "run the default script".

    * a string holding JSON ``{"conformance": {...}}`` → that object (not validated here);
    * ``{"conformance": <not an object>}`` or extra top-level keys → ScriptShapeError;
    * any other string (plain text, other JSON) or a list input → None.
    """
    if not isinstance(input_value, str):
        return None
    try:
        doc = json.loads(input_value)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or "conformance" not in doc:
        return None
    extra = sorted(k for k in doc if k != "conformance")
    if extra:
        raise ScriptShapeError(f"unexpected key {extra[0]!r} next to 'conformance' in input")
    script = doc["conformance"]
    if not isinstance(script, dict):
        raise ScriptShapeError("'conformance' in input must be a JSON object")
    return script


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def valid_tag(raw: dict[str, Any] | None) -> str | None:
    """The script's tag when it is well-formed (markers can be written even if others are bad)."""
    if raw is None:
        return None
    tag = raw.get("tag")
    return tag if isinstance(tag, str) and TAG_RE.match(tag) else None


def parse_script(raw: dict[str, Any] | None) -> Script:
    """Validate a raw script; an unknown field or a bad value raises HandlerFailure."""
    if raw is None:
        raw = DEFAULT_SCRIPT

    def bad(field: str, why: str) -> HandlerFailure:
        return HandlerFailure("unsupported_script", f"script field '{field}': {why}")

    for field in raw:
        if field not in SCRIPT_FIELDS:
            raise bad(field, "unknown field (supported: " + ", ".join(SCRIPT_FIELDS) + ")")
    values: dict[str, Any] = {}
    if "deltas" in raw:
        v = raw["deltas"]
        if not _is_int(v) or not 0 <= v <= MAX_DELTAS:
            raise bad("deltas", f"must be an integer in 0..{MAX_DELTAS}")
        values["deltas"] = v
    if "delay_ms" in raw:
        v = raw["delay_ms"]
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= MAX_DELAY_MS:
            raise bad("delay_ms", f"must be a number in 0..{MAX_DELAY_MS}")
        values["delay_ms"] = v
    if "hold_at" in raw:
        v = raw["hold_at"]
        if not _is_int(v) or v < -1:
            raise bad("hold_at", "must be an integer >= -1")
        values["hold_at"] = v
    if "checkpoint_every" in raw:
        v = raw["checkpoint_every"]
        if not _is_int(v) or v < 1:
            raise bad("checkpoint_every", "must be an integer >= 1")
        values["checkpoint_every"] = v
    if "fail_at" in raw:
        v = raw["fail_at"]
        if not _is_int(v) or v < 0:
            raise bad("fail_at", "must be an integer >= 0")
        values["fail_at"] = v
    if "tag" in raw:
        v = raw["tag"]
        if not isinstance(v, str) or not TAG_RE.match(v):
            raise bad("tag", "must be a string matching [A-Za-z0-9_.-]{1,128}")
        values["tag"] = v
    if "hold_at" in values and "tag" not in values:
        raise bad("hold_at", "needs a 'tag' (the release file is <marker_dir>/<tag>.release)")
    return Script(**values)


class RunContext(Protocol):
    """What the handler needs from the framework (the runtime's Run implements it)."""

    id: str
    attempt: int
    start_delta: int
    checkpointing: bool

    def begin(self) -> None: ...
    def open_item(self) -> None: ...
    def delta(self, text: str) -> None: ...
    def close_item(self) -> None: ...
    def checkpoint(self, next_delta: int) -> None: ...
    def complete(self) -> None: ...


def delta_text(attempt: int, index: int) -> str:
    return f"a{attempt}:d{index} "


async def run_script(run: RunContext, raw: dict[str, Any] | None, marker_dir: str | None) -> None:
    """Run one attempt of the scripted handler against ``run``."""
    markers = MarkerWriter(marker_dir, valid_tag(raw))
    first = run.start_delta
    markers.write(f"start attempt={run.attempt} id={run.id} from={first}")
    try:
        try:
            script = parse_script(raw)
        except HandlerFailure:
            run.begin()
            raise

        async def hold(k: int) -> None:
            # Let the streams hand what was emitted so far to their sockets before the
            # marker tells the harness "held" (it faults on that marker).
            for _ in range(3):
                await asyncio.sleep(0)
            markers.write(f"held {k}")
            # A hold stands for a step the handler is in the middle of: only cancel and shutdown
            # end it early. A steer does not (it winds the turn down at its next checkpoint).
            await markers.wait_release()
            markers.write("released")

        if script.hold_at == -1:
            await hold(-1)
        run.begin()
        every = script.checkpoint_every
        last = script.deltas - 1
        item_open = False
        for i in range(first, script.deltas):
            if script.fail_at == i:
                markers.write(f"fail {i}")
                raise HandlerFailure("handler_error", f"script fail_at={i}: handler raised before delta {i}")
            if i > first and script.delay_ms:
                await asyncio.sleep(script.delay_ms / 1000)
            if not item_open:
                run.open_item()
                item_open = True
            run.delta(delta_text(run.attempt, i))
            markers.write(f"delta {i}")
            if i == last or (every is not None and (i + 1) % every == 0):
                run.close_item()
                item_open = False
                if every is not None and run.checkpointing:
                    run.checkpoint(i + 1)
                    markers.write(f"checkpoint {i}")
            if script.hold_at == i:
                await hold(i)
            # Let cancel, disconnect and shutdown reach the handler between deltas.
            await asyncio.sleep(0)
        run.complete()
        markers.write("done")
    except asyncio.CancelledError:
        markers.write("interrupted")
        raise
