"""HTTP endpoints of the responses profile (see docs/protocol.md for the wire as implemented)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .cursors import cursor_value
from .errors import ApiError, not_found, parse_json_body
from .errors import bad_request as _bad
from .runtime import TERMINAL_STATUSES, Runtime
from .script import ScriptShapeError, extract_script
from .sse import SSEResponse, wait_or_disconnect

RESPONSE_ID_RE = re.compile(r"^resp_[A-Za-z0-9]{1,64}$")
CREATE_FIELDS = ("input", "model", "store", "background", "stream", "metadata", "previous_response_id")
CANCEL_WAIT_S = 10.0


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def _check_id(value: str, param: str = "response_id") -> str:
    if not RESPONSE_ID_RE.fullmatch(value):  # fullmatch: '$' would let a trailing newline in
        raise _bad(param, f"Invalid '{param}': '{value[:80]}'. Expected an id like 'resp_<letters and digits>'.")
    return value


async def _json_body(request: Request) -> dict[str, Any]:
    ctype = request.headers.get("content-type", "")
    if ctype.split(";")[0].strip().lower() != "application/json":
        raise _bad(None, "The request body must be JSON sent with 'Content-Type: application/json'.", "invalid_content_type")
    body = parse_json_body(await request.body())
    if not isinstance(body, dict):
        raise _bad(None, "The request body must be a JSON object.", "invalid_json")
    return body


def validate_create(body: dict[str, Any]) -> dict[str, Any]:
    """Normalise a create body or raise ApiError (400) naming the offending parameter."""
    for key in body:
        if key not in CREATE_FIELDS:
            raise _bad(key, f"Unknown parameter: '{key}'.", "unknown_parameter")
    if "input" not in body or body["input"] is None:
        raise _bad("input", "Missing required parameter: 'input'.", "missing_required_parameter")
    inp = body["input"]
    if isinstance(inp, list):
        if not all(isinstance(i, dict) for i in inp):
            raise _bad("input", "Invalid 'input': list items must be objects.")
    elif not isinstance(inp, str):
        raise _bad("input", "Invalid type for 'input': expected a string or a list of items.")

    def opt(name: str, kinds: type | tuple[type, ...], default: Any, what: str) -> Any:
        value = body.get(name)
        if value is None:
            return default
        if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
            raise _bad(name, f"Invalid type for '{name}': expected {what}.")
        if not isinstance(value, kinds):
            raise _bad(name, f"Invalid type for '{name}': expected {what}.")
        return value

    model = opt("model", str, "", "a string")
    store = opt("store", bool, True, "a boolean")
    background = opt("background", bool, False, "a boolean")
    stream = opt("stream", bool, False, "a boolean")
    metadata = opt("metadata", dict, {}, "an object of string values")
    for k, v in metadata.items():
        if not isinstance(v, str):
            raise _bad("metadata", f"Invalid 'metadata.{k[:64]}': values must be strings.")
    previous = opt("previous_response_id", str, None, "a string")
    if previous is not None:
        _check_id(previous, "previous_response_id")
    if background and not store:
        raise ApiError(
            400,
            "background=true requires store=true: a background response must be stored.",
            code="unsupported_parameter",
            param="background",
        )
    return {
        "input": inp,
        "model": model,
        "store": store,
        "background": background,
        "stream": stream,
        "metadata": metadata,
        "previous_response_id": previous,
    }


def _one_query(request: Request, param: str) -> str | None:
    """The query parameter ``param``; given twice it is ambiguous (which one wins?): a 400."""
    values = request.query_params.getlist(param)
    if len(values) > 1:
        raise _bad(param, f"Invalid '{param}': given more than once.")
    return values[0] if values else None


def _parse_bool_query(value: str | None, param: str) -> bool:
    if value is None:
        return False
    v = value.lower()
    if v == "true":
        return True
    if v == "false":
        return False
    raise _bad(param, f"Invalid '{param}': expected true or false.")


def _parse_cursor(value: str | None) -> int | None:
    if value is None:
        return None
    cursor = cursor_value(value)
    if cursor is None:
        raise _bad("starting_after", "Invalid 'starting_after': expected a non-negative integer sequence number.")
    return cursor


def _visible_or_404(rt: Runtime, rid: str) -> dict[str, Any]:
    env = rt.visible(rid)
    if env is None:
        raise not_found(rid)
    return env


async def create_response(request: Request) -> Response:
    rt = _runtime(request)
    body = await _json_body(request)
    req = validate_create(body)
    try:
        script = extract_script(req["input"])
    except ScriptShapeError as exc:
        raise _bad("input", f"Invalid conformance script: {exc}.") from None
    prev = req["previous_response_id"]
    if prev is not None and rt.visible(prev) is None:
        raise ApiError(
            404,
            f"Previous response with id '{prev}' not found.",
            code="previous_response_not_found",
            param="previous_response_id",
        )
    if rt.shutting_down:
        raise ApiError(503, "The server is shutting down.", code="server_shutting_down", type_="server_error")

    run = rt.create_run(req, script)
    if req["stream"]:
        on_disconnect = None if req["background"] else (lambda: run.stop("disconnect"))
        return SSEResponse(run.feed.subscribe(), on_disconnect=on_disconnect)
    if req["background"]:
        await run.created.wait()  # a background client that leaves changes nothing (B18)
        if run.created_response is None:
            raise _ended_before_created()
        return JSONResponse(run.created_response)
    if await wait_or_disconnect(request.receive, run.done):
        run.stop("disconnect")  # B17: a foreground client that leaves cancels its response
        return Response(status_code=499)  # never delivered: the client is gone
    if run.final_response is None:
        raise _ended_before_created()
    return JSONResponse(run.final_response)


def _ended_before_created() -> ApiError:
    return ApiError(
        503,
        "The server shut down before the response was created.",
        code="server_shutting_down",
        type_="server_error",
    )


async def get_response(request: Request) -> Response:
    rt = _runtime(request)
    rid = _check_id(request.path_params["response_id"])
    stream = _parse_bool_query(_one_query(request, "stream"), "stream")
    after = _parse_cursor(_one_query(request, "starting_after"))
    env = _visible_or_404(rt, rid)
    if not stream:
        return JSONResponse(env["response"])
    if not (env.get("background") and env.get("stream")):
        raise _bad(
            "stream",
            "This response cannot be streamed because it was not created with background=true and stream=true.",
        )
    return SSEResponse(rt.replay(rid, after))


async def cancel_response(request: Request) -> Response:
    rt = _runtime(request)
    rid = _check_id(request.path_params["response_id"])
    env = _visible_or_404(rt, rid)
    snap = env["response"]
    if not env.get("background"):
        raise _bad(None, "Cannot cancel a synchronous response.", "invalid_request_error")
    status = snap.get("status")
    if status == "cancelled":
        return JSONResponse(snap)  # B3: idempotent
    if status in TERMINAL_STATUSES:
        article = "an" if status == "incomplete" else "a"
        raise _bad(None, f"Cannot cancel {article} {status} response.", "invalid_request_error")
    run = rt.runs.get(rid)
    if run is None and rt.leases is None:
        return JSONResponse(rt.cancel_orphan(rid, env))
    try:
        if run is None:  # several workers: the owner (or nobody) runs it; see Runtime.request_cancel
            await rt.request_cancel(rid, timeout=CANCEL_WAIT_S + 2 * rt.leases.ttl)
        else:
            run.stop("cancel")
            await asyncio.wait_for(asyncio.shield(run.done.wait()), timeout=CANCEL_WAIT_S)
    except asyncio.TimeoutError:
        raise ApiError(500, "The response did not stop in time.", code="server_error", type_="server_error") from None
    env = rt.visible(rid)
    if env is None:
        raise not_found(rid)
    snap = env["response"]
    if snap.get("status") != "cancelled":
        raise _bad(None, f"Cannot cancel a {snap.get('status')} response.", "invalid_request_error")
    return JSONResponse(snap)


async def delete_response(request: Request) -> Response:
    rt = _runtime(request)
    rid = _check_id(request.path_params["response_id"])
    env = _visible_or_404(rt, rid)
    if env["response"].get("status") not in TERMINAL_STATUSES or rid in rt.runs:
        raise _bad(None, "Cannot delete a response that is still in progress; cancel it first.", "invalid_request_error")
    rt.delete(rid)
    return JSONResponse({"id": rid, "object": "response.deleted", "deleted": True})
