"""Store providers by name. ``open_store(name, state_dir)`` builds one."""

from __future__ import annotations

import os
from collections.abc import Callable

from .base import (
    KIND_RESPONSE,
    KIND_TASK,
    EventLog,
    RecordStore,
    StoreCorruptError,
    StoreError,
    StoreProvider,
    StoreTransientError,
)
from .file import FileStoreProvider

PROVIDERS: dict[str, Callable[[str], StoreProvider]] = {
    "file": FileStoreProvider,
}


def open_store(name: str, state_dir: str | os.PathLike[str]) -> StoreProvider:
    """Build the provider registered under ``name`` rooted at ``state_dir``."""
    try:
        factory = PROVIDERS[name]
    except KeyError:
        raise ValueError(f"unknown store provider {name!r} (known: {', '.join(sorted(PROVIDERS))})") from None
    return factory(state_dir)


__all__ = [
    "KIND_RESPONSE",
    "KIND_TASK",
    "PROVIDERS",
    "EventLog",
    "RecordStore",
    "StoreCorruptError",
    "StoreError",
    "StoreProvider",
    "StoreTransientError",
    "open_store",
]
