"""HTTP endpoints of the invocations profile (docs/protocol.md, "Invocations profile").

``POST /invocations``, ``GET /invocations/{id}`` (SSE with durable ``id:`` lines, resumable with
``Last-Event-ID`` or ``?last_event_id=``; ``Accept: application/json`` gives the snapshot) and
``POST /invocations/{id}/cancel``. Bad input is always a 4xx JSON error, never a 5xx.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .cursors import cursor_value
from .errors import ApiError, parse_json_body
from .errors import bad_request as _bad
from .sessions import TERMINAL_EVENTS, TERMINAL_STATUSES, Invocation, InvocationRuntime, wire
from .sse import SSEResponse

INVOCATION_ID_RE = re.compile(r"inv_[A-Za-z0-9]{1,64}")  # fullmatch: "$" would let a trailing "\n" in
SESSION_ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
CREATE_FIELDS = ("input", "session_id")
CANCEL_WAIT_S = 10.0


def encode_frame(event: dict[str, Any]) -> bytes:
    """``id: <n>\\nevent: <type>\\ndata: <json>\\n\\n``; n is the durable event id."""
    data = json.dumps(event, separators=(",", ":"))
    return f"id: {event['event_id']}\nevent: {event['type']}\ndata: {data}\n\n".encode()


def _irt(request: Request) -> InvocationRuntime:
    return request.app.state.invocations


def _check_id(value: str) -> str:
    if not INVOCATION_ID_RE.fullmatch(value):
        raise _bad("invocation_id", f"Invalid 'invocation_id': '{value[:80]}'. Expected 'inv_<letters and digits>'.")
    return value


def _not_found(inv_id: str) -> ApiError:
    return ApiError(404, f"Invocation with id '{inv_id}' not found.", code="invocation_not_found", param="invocation_id")


def extract_script(input_value: dict[str, Any]) -> dict[str, Any] | None:
    """The script in an ``input`` object ``{"conformance": {...}}``; None (default script) without one."""
    if "conformance" not in input_value:
        return None
    extra = sorted(k for k in input_value if k != "conformance")
    if extra:
        raise _bad("input", f"Invalid 'input': unexpected key {extra[0][:64]!r} next to 'conformance'.")
    script = input_value["conformance"]
    if not isinstance(script, dict):
        raise _bad("input", "Invalid 'input': 'conformance' must be a JSON object.")
    return script


def validate_create(body: Any) -> tuple[dict[str, Any] | None, str | None]:
    """(raw script or None, session id or None) from a create body, or ApiError (400)."""
    if not isinstance(body, dict):
        raise _bad(None, "The request body must be a JSON object.", "invalid_json")
    for key in body:
        if key not in CREATE_FIELDS:
            raise _bad(str(key)[:128], f"Unknown parameter: '{str(key)[:64]}'.", "unknown_parameter")
    if body.get("input") is None:
        raise _bad("input", "Missing required parameter: 'input'.", "missing_required_parameter")
    if not isinstance(body["input"], dict):
        raise _bad("input", "Invalid type for 'input': expected an object.")
    script = extract_script(body["input"])
    session_id = body.get("session_id")
    if session_id is not None and not (isinstance(session_id, str) and SESSION_ID_RE.fullmatch(session_id)):
        raise _bad("session_id", "Invalid 'session_id': expected a string matching [A-Za-z0-9_.:-]{1,128}.")
    return script, session_id


async def create_invocation(request: Request) -> Response:
    irt = _irt(request)
    body = parse_json_body(await request.body())
    script, session_id = validate_create(body)
    if irt.rt.shutting_down:
        raise ApiError(503, "The server is shutting down.", code="server_shutting_down", type_="server_error")
    inv = irt.create(script, session_id)
    return JSONResponse({"invocation_id": inv.id, "session_id": inv.session_id, "status": inv.status})


def _one(values: list[str], what: str) -> str | None:
    if not values:
        return None
    if len(values) > 1:
        raise _bad("last_event_id", f"Invalid 'last_event_id': {what} given more than once.")
    return values[0]


def parse_cursor(request: Request) -> int | None:
    """The resume cursor: the ``Last-Event-ID`` header wins over ``?last_event_id=``; both are checked."""
    header = _one(request.headers.getlist("last-event-id"), "the Last-Event-ID header")
    query = _one(request.query_params.getlist("last_event_id"), "the last_event_id query parameter")
    cursor = None
    for value in (query, header):
        if value is None:
            continue
        cursor = cursor_value(value)
        if cursor is None:
            raise _bad("last_event_id", "Invalid 'last_event_id': expected a non-negative integer event id.")
    return cursor


def wants_json(request: Request) -> bool:
    types = {part.split(";")[0].strip().lower() for part in request.headers.get("accept", "").split(",")}
    return "application/json" in types and "text/event-stream" not in types


async def get_invocation(request: Request) -> Response:
    irt = _irt(request)
    inv_id = _check_id(request.path_params["invocation_id"])
    as_json = wants_json(request)
    cursor = None if as_json else parse_cursor(request)
    if as_json:
        snap = irt.snapshot(inv_id)
        if snap is None:
            raise _not_found(inv_id)
        return JSONResponse(snap)
    live = irt.live.get(inv_id)
    if live is None and irt.snapshot(inv_id) is None:
        raise _not_found(inv_id)
    stored = irt.store.events.read(inv_id)
    live = irt.live.get(inv_id)  # same tick as the read: nothing can slip in between
    after = 0 if cursor is None else cursor
    retention = irt.retention
    if retention > 0 and stored:
        last = stored[-1]["sequence_number"]
        oldest_kept = max(1, last - retention + 1)
        if after < oldest_kept - 1:
            raise ApiError(
                410,
                f"Events after {after} are no longer kept (only the newest {retention} are replayable; "
                f"the oldest is {oldest_kept}). Resume from last_event_id >= {oldest_kept - 1}.",
                code="cursor_expired",
                param="last_event_id",
            )
    return SSEResponse(_stream(stored, live, after), encode=encode_frame)


async def _stream(stored: list[dict[str, Any]], live: Invocation | None, after: int) -> AsyncIterator[dict[str, Any]]:
    """Persisted events with id > after, then the live tail; ends right after the terminal event."""
    cursor = after
    for event in stored:
        if event["sequence_number"] <= after:
            continue
        yield wire(event)
        cursor = event["sequence_number"]
        if event.get("type") in TERMINAL_EVENTS:
            return
    if live is None:
        return
    async for event in live.feed.subscribe(cursor):
        yield event


async def cancel_invocation(request: Request) -> Response:
    irt = _irt(request)
    inv_id = _check_id(request.path_params["invocation_id"])
    inv = irt.live.get(inv_id)
    if inv is None:
        snap = irt.snapshot(inv_id)
        if snap is None:
            raise _not_found(inv_id)
        if snap["status"] not in TERMINAL_STATUSES:
            return JSONResponse(irt.cancel_orphan(inv_id, snap))
        return _cancel_answer(snap)
    if inv.status == "queued":
        inv.cancel_queued()
    elif inv.stop("cancel"):
        try:
            await asyncio.wait_for(asyncio.shield(inv.done.wait()), timeout=CANCEL_WAIT_S)
        except asyncio.TimeoutError:
            raise ApiError(500, "The invocation did not stop in time.", code="server_error", type_="server_error") from None
    snap = irt.snapshot(inv_id)
    if snap is None:
        raise _not_found(inv_id)
    return _cancel_answer(snap)


def _cancel_answer(snap: dict[str, Any]) -> Response:
    if snap["status"] == "cancelled":
        return JSONResponse(snap)  # idempotent
    if snap["status"] in TERMINAL_STATUSES:
        raise ApiError(
            409,
            f"Cannot cancel invocation '{snap['invocation_id']}': it is already {snap['status']}.",
            code="invocation_finished",
            param=None,
            type_="conflict",
        )
    raise ApiError(409, "The invocation could not be cancelled now; retry.", code="invocation_busy", type_="conflict")
