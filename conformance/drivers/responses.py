"""Driver for the responses profile wire (OpenAI Responses shape, docs/protocol.md §2).

Knows paths, bodies, event types and where the id and status live; knows nothing of
processes.  Every method returns the recorded HttpCall.
"""

from __future__ import annotations

import json
from typing import Any

from conformance.history import TERMINAL_EVENTS, TERMINAL_STATUSES, HttpCall, SSEFrame

from .base import Recorder, StreamControl, Transport, status_of  # noqa: F401 (status_of re-exported)


def script_input(script: dict[str, Any]) -> str:
    """The request ``input`` that carries a test-control script (docs/protocol.md §3.1)."""
    return json.dumps({"conformance": script}, sort_keys=True)


def response_id_of(call: HttpCall) -> str | None:
    """The response id a create call revealed: JSON body ``id`` or the first frame's response."""
    if isinstance(call.body, dict) and isinstance(call.body.get("id"), str):
        return call.body["id"]
    for frame in call.frames:
        payload = frame.json
        if isinstance(payload, dict):
            resp = payload.get("response")
            if isinstance(resp, dict) and isinstance(resp.get("id"), str):
                return resp["id"]
    return None


def is_terminal_frame(frame: SSEFrame) -> bool:
    return frame.type in TERMINAL_EVENTS


def terminal_snapshot(call: HttpCall) -> dict[str, Any] | None:
    """The final response object a create call delivered: JSON body, or the terminal frame's."""
    if not call.is_sse:
        if isinstance(call.body, dict) and call.body.get("status") in TERMINAL_STATUSES:
            return call.body
        return None
    for frame in reversed(call.frames):
        if is_terminal_frame(frame):
            payload = frame.json
            if isinstance(payload, dict) and isinstance(payload.get("response"), dict):
                return payload["response"]
    return None




class ResponsesDriver:
    """create / get / replay / cancel / delete over HTTP, recorded."""

    profile = "responses"

    def __init__(self, base_url: str, recorder: Recorder, timeout_s: float = 30.0) -> None:
        self.transport = Transport(base_url, recorder, timeout_s)

    def create(
        self, body: dict[str, Any], *, control: StreamControl | None = None
    ) -> HttpCall:
        headers = {"accept": "text/event-stream"} if body.get("stream") else None
        return self.transport.call(
            "create", "POST", "/responses", json_body=body, headers=headers, control=control
        )

    def get(self, response_id: str, *, name: str = "get") -> HttpCall:
        return self.transport.call(name, "GET", f"/responses/{response_id}")

    def replay(
        self,
        response_id: str,
        starting_after: Any = None,
        *,
        label: str = "start",
        control: StreamControl | None = None,
        name: str = "replay",
    ) -> HttpCall:
        params: dict[str, Any] = {"stream": "true"}
        if starting_after is not None:
            params["starting_after"] = starting_after
        return self.transport.call(
            name,
            "GET",
            f"/responses/{response_id}",
            params=params,
            labels={"cursor_label": label},
            control=control,
        )

    def cancel(self, response_id: str, *, name: str = "cancel") -> HttpCall:
        return self.transport.call(name, "POST", f"/responses/{response_id}/cancel")

    def delete(self, response_id: str, *, name: str = "delete") -> HttpCall:
        return self.transport.call(name, "DELETE", f"/responses/{response_id}")
