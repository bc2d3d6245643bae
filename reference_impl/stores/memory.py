"""The ``memory`` provider: dictionaries in the server process. Nothing survives a restart.

It declares ``durable=False``: the ``durable_store`` claim is withdrawn, so every contract cell
that restarts the server is reported "not claimed" for it (never as a pass), and the crash-safety
part of the provider contract is skipped the same way. Useful for fast local runs of the cells
that do not restart, and as the smallest example of a provider.
"""

from __future__ import annotations

import copy
import json
import os
import threading

from .base import (
    KIND_TASK,
    Event,
    EventLog,
    Record,
    RecordStore,
    StoreCapabilities,
    StoreProvider,
    check_key,
)


def _clone(value: dict) -> dict:
    # A JSON round trip: what a real store would hand back (and rejects what it could not store).
    return json.loads(json.dumps(value))


class MemoryRecordStore(RecordStore):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: dict[tuple[str, str], Record] = {}

    def get(self, kind: str, key: str) -> Record | None:
        check_key(kind, key)
        with self._lock:
            rec = self._data.get((kind, key))
            return copy.deepcopy(rec) if rec is not None else None

    def put(self, kind: str, key: str, record: Record) -> None:
        check_key(kind, key)
        with self._lock:
            self._data[(kind, key)] = _clone(record)

    def delete(self, kind: str, key: str) -> None:
        check_key(kind, key)
        with self._lock:
            self._data.pop((kind, key), None)

    def compare_and_set(self, kind: str, key: str, expected: Record | None, new: Record | None) -> bool:
        check_key(kind, key)
        with self._lock:
            if self._data.get((kind, key)) != expected:
                return False
            if new is None:
                self._data.pop((kind, key), None)
            else:
                self._data[(kind, key)] = _clone(new)
            return True

    def list_unfinished(self) -> list[Record]:
        with self._lock:
            return [copy.deepcopy(v) for (kind, _), v in sorted(self._data.items()) if kind == KIND_TASK]


class MemoryEventLog(EventLog):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logs: dict[str, list[Event]] = {}

    def append(self, key: str, event: Event) -> None:
        check_key(None, key)
        seq = event.get("sequence_number")
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise ValueError("event has no integer sequence_number")
        with self._lock:
            log = self._logs.setdefault(key, [])
            if log and seq <= log[-1]["sequence_number"]:
                raise ValueError(f"sequence_number {seq} does not follow {log[-1]['sequence_number']} in log {key}")
            log.append(_clone(event))

    def read(self, key: str, after: int | None = None) -> list[Event]:
        check_key(None, key)
        with self._lock:
            log = self._logs.get(key, [])
            return [copy.deepcopy(e) for e in log if after is None or e["sequence_number"] > after]

    def last_seq(self, key: str) -> int | None:
        check_key(None, key)
        with self._lock:
            log = self._logs.get(key)
            return log[-1]["sequence_number"] if log else None

    def delete(self, key: str) -> None:
        check_key(None, key)
        with self._lock:
            self._logs.pop(key, None)


class MemoryStoreProvider(StoreProvider):
    """Dictionaries behind a lock; declares that it does not survive a restart."""

    name = "memory"
    capabilities = StoreCapabilities(durable=False, shared=False)

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        super().__init__(MemoryRecordStore(), MemoryEventLog())
