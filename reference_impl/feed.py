"""The live tail of one handler attempt: the events it published in this process, for readers.

Both profiles use it (a response's Run, an Invocation). Events are published only after they
are durable, so a reader that first reads the store and then subscribes after the last cursor
it got sees every event once, in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any


class LiveFeed:
    """Published events, in order; a subscriber ends after a terminal event or at ``close()``."""

    def __init__(self, cursor_key: str, terminal_types: frozenset[str]) -> None:
        self.cursor_key = cursor_key  # the event field readers resume by (sequence_number, event_id)
        self.terminal_types = terminal_types
        self.events: list[dict[str, Any]] = []
        self.closed = False
        self._changed = asyncio.Event()

    def publish(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self._notify()

    def close(self) -> None:
        """No more events in this lifetime: every subscriber ends once it has the published ones."""
        self.closed = True
        self._notify()

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def subscribe(self, after: int = -1) -> AsyncIterator[dict[str, Any]]:
        """Events with cursor > ``after``, then live ones, until a terminal event or the close."""
        idx = 0
        while True:
            while idx < len(self.events):
                event = self.events[idx]
                idx += 1
                if event[self.cursor_key] > after:
                    yield event
                    if event["type"] in self.terminal_types:
                        return
            if self.closed:
                return
            await self._changed.wait()
