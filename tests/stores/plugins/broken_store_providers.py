"""Deliberately broken store providers, installed only for tests (a dist-info on PYTHONPATH).

- ``ackbeforefsync``: the file provider, except that ``append`` acknowledges an event while it
  still sits in a userspace buffer; the buffer is flushed and fsync'd every 1000 events. A crash
  loses acknowledged events.
- ``lastwritewins``: the file provider, except that ``compare_and_set`` ignores the expectation
  and always writes (last write wins).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO

from reference_impl.stores import StoreProvider
from reference_impl.stores.base import Event, EventLog, Record
from reference_impl.stores.file import FileRecordStore, FileStoreProvider

FLUSH_EVERY = 1000


class BufferedEventLog(EventLog):
    """Acknowledges before flush and fsync (the bug under test)."""

    def __init__(self, root: Path) -> None:
        self._dir = root
        root.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, IO[bytes]] = {}
        self._last: dict[str, int | None] = {}
        self._pending = 0

    def _path(self, key: str) -> Path:
        return self._dir / f"{key}.jsonl"

    def _load(self, key: str) -> list[Event]:
        if key in self._files:
            self._files[key].flush()  # a process reads its own writes
        try:
            lines = self._path(key).read_bytes().split(b"\n")
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def append(self, key: str, event: Event) -> None:
        seq = event.get("sequence_number")
        if not isinstance(seq, int):
            raise ValueError("event has no integer sequence_number")
        if key not in self._last:
            events = self._load(key)
            self._last[key] = events[-1]["sequence_number"] if events else None
        last = self._last[key]
        if last is not None and seq <= last:
            raise ValueError(f"sequence_number {seq} does not follow {last}")
        f = self._files.get(key)
        if f is None:
            f = self._files[key] = open(self._path(key), "ab", buffering=1 << 24)
        f.write(json.dumps(event).encode() + b"\n")  # acknowledged here: still in our buffer
        self._last[key] = seq
        self._pending += 1
        if self._pending >= FLUSH_EVERY:
            for g in self._files.values():
                g.flush()
                os.fsync(g.fileno())
            self._pending = 0

    def read(self, key: str, after: int | None = None) -> list[Event]:
        return [e for e in self._load(key) if after is None or e["sequence_number"] > after]

    def last_seq(self, key: str) -> int | None:
        events = self._load(key)
        return events[-1]["sequence_number"] if events else None

    def delete(self, key: str) -> None:
        f = self._files.pop(key, None)
        if f is not None:
            f.close()
        self._last.pop(key, None)
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            pass


class AckBeforeFsyncProvider(FileStoreProvider):
    name = "ackbeforefsync"

    def __init__(self, state_dir: str) -> None:
        super().__init__(state_dir)
        self.events = BufferedEventLog(Path(state_dir) / "streams")

    def close(self) -> None:
        for f in self.events._files.values():
            f.close()


class LastWriteWinsRecords(FileRecordStore):
    """compare_and_set that never compares (the bug under test)."""

    def compare_and_set(self, kind: str, key: str, expected: Record | None, new: Record | None) -> bool:
        if new is None:
            self.delete(kind, key)
        else:
            self.put(kind, key, new)
        return True


class LastWriteWinsProvider(FileStoreProvider):
    name = "lastwritewins"

    def __init__(self, state_dir: str) -> None:
        super().__init__(state_dir)
        self.records = LastWriteWinsRecords(Path(state_dir))


class NotAProvider:
    """Registered under the right group, but not a StoreProvider subclass."""


assert issubclass(AckBeforeFsyncProvider, StoreProvider)
