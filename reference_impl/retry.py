"""Store reads during recovery: a transient store error is retried, never taken for "not found"."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .stores import StoreTransientError

log = logging.getLogger("reference_impl")

RECOVERY_RETRIES = 5


async def get_with_retry(records: Any, kind: str, key: str, *, first_delay_s: float = 0.02) -> dict[str, Any] | None:
    """``records.get(kind, key)``, retried with backoff on StoreTransientError; the last one propagates."""
    delay = first_delay_s
    for attempt in range(RECOVERY_RETRIES):
        try:
            return records.get(kind, key)
        except StoreTransientError as exc:
            if attempt == RECOVERY_RETRIES - 1:
                raise
            log.warning("recovery: transient store error for %s (%s), retrying", key, exc)
            await asyncio.sleep(delay)  # backoff between retries, not synchronisation
            delay *= 2
    return None  # unreachable: the loop returns or raises
