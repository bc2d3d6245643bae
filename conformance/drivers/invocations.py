"""Driver for the invocations profile wire (docs/protocol.md §7).

``POST /invocations`` creates a run, ``GET /invocations/{id}`` streams its events (SSE, one
``id: <n>`` per frame, resumable with the ``Last-Event-ID`` header or ``?last_event_id=N``) or,
with ``Accept: application/json``, answers the status snapshot; ``POST /invocations/{id}/cancel``
cancels.  Every method returns the recorded HttpCall; frames keep their raw text and ``id:``.
Knows nothing of processes.
"""

from __future__ import annotations

from typing import Any

from conformance.history import INVOCATION_TERMINAL_EVENTS as TERMINAL_EVENTS
from conformance.history import INVOCATION_TERMINAL_STATUSES as TERMINAL_STATUSES
from conformance.history import HttpCall, SSEFrame

from .base import Recorder, StreamControl, Transport, status_of  # noqa: F401 (status_of re-exported)

STATUSES = ("queued", "in_progress") + tuple(sorted(TERMINAL_STATUSES))


def script_input(script: dict[str, Any]) -> dict[str, Any]:
    """The request ``input`` that carries a test-control script (an object, docs/protocol.md §7.9)."""
    return {"conformance": dict(script)}


def invocation_id_of(call: HttpCall) -> str | None:
    """The invocation id a create answer revealed (JSON body ``invocation_id``)."""
    body = call.body
    if isinstance(body, dict) and isinstance(body.get("invocation_id"), str):
        return body["invocation_id"]
    return None



def is_terminal_frame(frame: SSEFrame) -> bool:
    return frame.type in TERMINAL_EVENTS


def frame_cursor(frame: SSEFrame) -> int | None:
    """The frame's ``id:`` line as a positive int (the invocations cursor), else None."""
    text = frame.id
    if text is None or not text.isdigit():
        return None
    return int(text)


class InvocationsDriver:
    """create / stream / snapshot / cancel over HTTP, recorded."""

    profile = "invocations"

    def __init__(self, base_url: str, recorder: Recorder, timeout_s: float = 30.0) -> None:
        self.transport = Transport(base_url, recorder, timeout_s)

    def create(self, body: dict[str, Any], *, name: str = "create") -> HttpCall:
        return self.transport.call(name, "POST", "/invocations", json_body=body)

    def stream(
        self,
        invocation_id: str,
        *,
        name: str = "live",
        last_event_id: Any = None,
        via: str = "header",
        label: str | None = None,
        control: StreamControl | None = None,
    ) -> HttpCall:
        """GET the event stream; ``last_event_id`` is sent verbatim by ``via`` = header | query, or
        ``reconnect``: in the header, with a stale ``?last_event_id=0`` left in the URL (an
        EventSource reconnect keeps its original query; docs/protocol.md §7.2: the header wins)."""
        headers = {"accept": "text/event-stream"}
        params: dict[str, Any] | None = None
        labels: dict[str, Any] = {}
        if last_event_id is not None:
            if via == "query":
                params = {"last_event_id": last_event_id}
            else:
                if via == "reconnect":
                    params = {"last_event_id": "0"}
                headers["last-event-id"] = str(last_event_id)
                labels["last_event_id"] = str(last_event_id)
            labels["via"] = via
        if label is not None:
            labels["cursor_label"] = label
        return self.transport.call(
            name,
            "GET",
            f"/invocations/{invocation_id}",
            params=params,
            headers=headers,
            labels=labels or None,
            control=control,
        )

    def snapshot(self, invocation_id: str, *, name: str = "get") -> HttpCall:
        return self.transport.call(
            name, "GET", f"/invocations/{invocation_id}", headers={"accept": "application/json"}
        )

    def cancel(self, invocation_id: str, *, name: str = "cancel") -> HttpCall:
        return self.transport.call(name, "POST", f"/invocations/{invocation_id}/cancel")

    def close(self) -> None:
        self.transport.close()
