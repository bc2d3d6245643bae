"""The conformance test-control adapter (docs/protocol.md §3) around ONE framework handler.

``conformance_handler(request_input)`` is what the server registers instead of its real model
call. It reads the script from the input, emits ``a{n}:d{i} `` deltas, writes the marker lines
to ``$CONFORMANCE_MARKER_DIR/<tag>.log``, holds at ``hold_at`` until ``<tag>.release`` exists,
closes one item per ``checkpoint_every`` group, and writes ``interrupted`` when cancel or
shutdown reaches it. Not resilient: no checkpoints are persisted, every run is attempt 1.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path
from typing import Any, AsyncIterator

from framework import ITEM_BREAK, HandlerError, response_id

FIELDS = {"deltas": 0, "delay_ms": 0, "hold_at": -1, "checkpoint_every": 1, "fail_at": 0, "tag": None}
TAG = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


class Markers:
    """Appends fsync'd lines to ``<marker_dir>/<tag>.log``; without a tag it writes nothing."""

    def __init__(self, tag: Any) -> None:
        root = os.environ.get("CONFORMANCE_MARKER_DIR")
        ok = root and isinstance(tag, str) and TAG.match(tag)
        self.log = Path(root) / f"{tag}.log" if ok else None
        self.release = Path(root) / f"{tag}.release" if ok else None

    def write(self, line: str) -> None:
        if self.log is not None:
            with open(self.log, "a", encoding="utf-8") as f:
                f.write(line + "\n")
                f.flush()
                os.fsync(f.fileno())

    async def hold(self, i: int) -> None:
        self.write(f"held {i}")
        while not self.release.exists():
            await asyncio.sleep(0.005)
        self.write("released")


def read_script(request_input: Any) -> dict[str, Any] | None:
    """The ``{"conformance": {...}}`` object of a string input, or None for a plain input."""
    try:
        data = json.loads(request_input) if isinstance(request_input, str) else None
    except ValueError:
        return None
    return data["conformance"] if isinstance(data, dict) and "conformance" in data else None


def check(script: dict[str, Any]) -> str | None:
    """The first problem with a script (an unknown field, a wrong type or value), or None."""
    for name, value in script.items():
        if name not in FIELDS:
            return f"script field '{name}': unknown field"
        if name == "tag":
            if not isinstance(value, str) or not TAG.match(value):
                return "script field 'tag': must match [A-Za-z0-9_.-]{1,128}"
        elif name == "delay_ms":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                return "script field 'delay_ms': must be a number >= 0"
        elif isinstance(value, bool) or not isinstance(value, int) or value < FIELDS[name]:
            return f"script field '{name}': must be an integer >= {FIELDS[name]}"
    if "hold_at" in script and "tag" not in script:
        return "script field 'hold_at': needs a tag"
    if script.get("hold_at") == -1:  # the framework persists response.created before the handler runs
        return "script field 'hold_at': -1 is not supported by this framework"
    return None


def check_input(request_input: Any) -> str | None:
    """The framework's create-time input check: a ``conformance`` that is not alone or not an object."""
    try:
        data = json.loads(request_input) if isinstance(request_input, str) else None
    except ValueError:
        return None
    if isinstance(data, dict) and "conformance" in data:
        if len(data) != 1 or not isinstance(data["conformance"], dict):
            return "'conformance' must be the input's only key and hold an object"
    return None


async def conformance_handler(request_input: Any) -> AsyncIterator[Any]:
    script = read_script(request_input) or {"deltas": 3}  # a plain input: 3 deltas, no markers
    m = Markers(script.get("tag"))
    m.write(f"start attempt=1 id={response_id.get()} from=0")
    problem = check(script)
    if problem:
        raise HandlerError(problem, "unsupported_script")
    deltas, every = script.get("deltas", 3), script.get("checkpoint_every")
    hold_at, fail_at = script.get("hold_at"), script.get("fail_at")
    try:
        for i in range(deltas):
            if fail_at == i:
                m.write(f"fail {i}")
                raise HandlerError(f"fail_at {i}")
            if i > 0 and script.get("delay_ms"):
                await asyncio.sleep(script["delay_ms"] / 1000)
            yield f"a1:d{i} "  # the framework emits and persists it before we go on
            m.write(f"delta {i}")
            if every and (i + 1) % every == 0 and i < deltas - 1:
                yield ITEM_BREAK
            if hold_at == i:
                await m.hold(i)
            await asyncio.sleep(0)  # cancel and shutdown reach us here
        m.write("done")  # written before the framework emits response.completed
    except (asyncio.CancelledError, GeneratorExit):
        m.write("interrupted")
        raise
