"""Server-sent events and client-disconnect detection (ASGI ``http.disconnect``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def encode_event(event: dict[str, Any]) -> bytes:
    """``event: <type>\\ndata: <json>\\n\\n`` (no ``id:`` line; the cursor is sequence_number)."""
    data = json.dumps(event, separators=(",", ":"))
    return f"event: {event['type']}\ndata: {data}\n\n".encode()


async def wait_disconnect(receive: Receive) -> None:
    """Return when the client has gone (the request body must already be consumed)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def wait_or_disconnect(receive: Receive, event: asyncio.Event) -> bool:
    """Wait for ``event``; return True if the client disconnected first."""
    if event.is_set():
        return False
    watcher = asyncio.ensure_future(wait_disconnect(receive))
    waiter = asyncio.ensure_future(event.wait())
    try:
        done, _ = await asyncio.wait({watcher, waiter}, return_when=asyncio.FIRST_COMPLETED)
        return waiter not in done
    finally:
        for t in (watcher, waiter):
            t.cancel()
        await asyncio.gather(watcher, waiter, return_exceptions=True)


class SSEResponse(Response):
    """Streams events from an async iterator; calls ``on_disconnect`` if the client leaves early."""

    def __init__(
        self,
        events: AsyncIterator[dict[str, Any]],
        on_disconnect: Callable[[], None] | None = None,
        encode: Callable[[dict[str, Any]], bytes] = encode_event,
    ) -> None:
        self.events = events
        self.on_disconnect = on_disconnect
        self.encode = encode
        self.status_code = 200
        self.background = None
        self.raw_headers = list(SSE_HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def pump() -> None:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            async for event in self.events:
                await send({"type": "http.response.body", "body": self.encode(event), "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        pumper = asyncio.ensure_future(pump())
        watcher = asyncio.ensure_future(wait_disconnect(receive))
        try:
            done, _ = await asyncio.wait({pumper, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if pumper not in done and self.on_disconnect is not None:
                self.on_disconnect()
        finally:
            for t in (pumper, watcher):
                t.cancel()
            results = await asyncio.gather(pumper, watcher, return_exceptions=True)
            with contextlib.suppress(Exception):
                aclose = getattr(self.events, "aclose", None)
                if aclose is not None:
                    await aclose()
        exc = results[0]
        if isinstance(exc, Exception) and not isinstance(exc, OSError):
            raise exc
