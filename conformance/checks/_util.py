"""Small pure helpers shared by the checker modules: excerpts, call summaries, output text.
Frame labels, ``as_int`` and ``is_comment_frame`` live in ``conformance.streams`` (re-exported)."""

from __future__ import annotations

import json
from typing import Any

from conformance.history import TERMINAL_EVENTS, HttpCall
from conformance.model import Cell
from conformance.streams import as_int, frame_label, frames_excerpt, is_comment_frame

__all__ = [
    "EXCERPT_LEN",
    "TERMINAL_EVENTS",  # re-exported for the checkers and conformance.explore
    "allowed_non_200",
    "as_int",
    "call_body",
    "call_summary",
    "excerpt",
    "frame_label",
    "frames_excerpt",
    "is_comment_frame",
    "output_text",
    "quoted",
]

EXCERPT_LEN = 300


def excerpt(value: Any, limit: int = EXCERPT_LEN) -> str:
    """A short, single-line rendering of any value for messages and evidence."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, sort_keys=True, default=str)
        except (TypeError, ValueError):
            text = repr(value)
    text = text.replace("\n", "\\n")
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def quoted(text: str | None, limit: int = 160) -> str:
    """A string in repr quotes, shortened in the middle when long."""
    if text is None:
        return "None"
    if len(text) > limit:
        half = (limit - 5) // 2
        text = text[:half] + " ... " + text[-half:]
    return repr(text)


def allowed_non_200(cell: Cell, name: str) -> set[int]:
    """The non-200 statuses the cell's ``http`` expectation allows call ``name`` to answer
    (``http: {replay: 410}``), so its stream checker does not also call them wrong."""
    spec = cell.expect.get("http") if isinstance(cell.expect, dict) else None
    if not isinstance(spec, dict) or name not in spec:
        return set()
    codes = spec[name] if isinstance(spec[name], (list, tuple)) else [spec[name]]
    return {c for c in (as_int(x) for x in codes) if c is not None and c != 200}


def call_body(call: HttpCall) -> Any:
    """The call's JSON body: ``body`` if set, else ``body_text`` parsed, else None."""
    if call.body is not None:
        return call.body
    if call.body_text:
        try:
            return json.loads(call.body_text)
        except (TypeError, ValueError):
            return None
    return None


def call_summary(call: HttpCall) -> str:
    """A one-line description of a call: method, url, status (or transport error), body."""
    if call.status is None:
        return f"{call.name} {call.method} {call.url} -> transport error: {call.error or call.ended}"
    body = call.body if call.body is not None else call.body_text
    parts = [f"{call.name} {call.method} {call.url} -> {call.status}"]
    if call.content_type:
        parts.append(f"({call.content_type})")
    if call.frames:
        parts.append(f"{len(call.frames)} frames [{frames_excerpt(call.frames, 12)}]")
    elif body not in (None, ""):
        parts.append(f"body {excerpt(body, 200)}")
    return " ".join(parts)


def output_text(output: Any) -> str:
    """The text of a Response ``output`` array: every ``output_text`` part of every
    ``message`` item, concatenated in order.  Anything else contributes nothing."""
    if not isinstance(output, list):
        return ""
    pieces: list[str] = []
    for item in output:
        if not isinstance(item, dict) or item.get("type") != "message":
            continue
        content = item.get("content")
        if not isinstance(content, list):
            continue
        for part in content:
            if isinstance(part, dict) and part.get("type") == "output_text":
                text = part.get("text")
                if isinstance(text, str):
                    pieces.append(text)
    return "".join(pieces)
