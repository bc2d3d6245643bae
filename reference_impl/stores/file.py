"""The embedded default provider: plain files under the state directory.

Layout::

    <state_dir>/tasks/<id>.json        task records        (atomic replace)
    <state_dir>/responses/<id>.json    response envelopes  (atomic replace)
    <state_dir>/streams/<id>.jsonl     event logs          (append-only, one JSON object per line)

Durability rules:

* a record is written to a temporary file in the same directory, the file is fsync'd, renamed
  over the target with ``os.replace`` and then the directory is fsync'd: after a crash the
  record is either the old one or the new one;
* an event is appended as one ``write`` of ``<json>\\n`` followed by ``os.fsync``; a new log
  file also gets its directory fsync'd;
* ``compare_and_set`` (and every ``put``/``delete``) holds an exclusive ``flock`` on
  ``<state_dir>/.records.lock``, so a compare-and-set is atomic against other processes that
  share the directory on a local file system;
* on load, a torn tail (a last line without its newline, or unparsable lines at the very end)
  is ignored; before the first append of a lifetime the torn tail is cut off so the next
  line starts cleanly. Damage in the middle of a log raises :class:`StoreCorruptError`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

from .base import (
    KIND_RESPONSE,
    KIND_TASK,
    Event,
    EventLog,
    Record,
    RecordStore,
    StoreCorruptError,
    StoreError,
    StoreCapabilities,
    StoreProvider,
    dump_json,
    load_json_object,
)

log = logging.getLogger("reference_impl.store")

_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_DIRS = {KIND_TASK: "tasks", KIND_RESPONSE: "responses"}
_TMP_SUFFIX = ".tmp"


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not _KEY.match(key) or key.startswith("."):
        raise ValueError(f"invalid store key {key!r}")


def fsync_dir(path: Path) -> None:
    """fsync a directory so that a create, rename or unlink inside it is durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def unlink_durably(path: Path) -> None:
    """Remove ``path`` (missing is fine) and make the removal durable."""
    try:
        path.unlink()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreError(f"cannot delete {path}: {exc}") from exc
    fsync_dir(path.parent)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically and durably (tmp, fsync, replace, fsync dir)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}{_TMP_SUFFIX}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


class FileRecordStore(RecordStore):
    def __init__(self, root: Path) -> None:
        self._lock_path = root / ".records.lock"
        self._dirs = {kind: root / sub for kind, sub in _DIRS.items()}
        for d in self._dirs.values():
            d.mkdir(parents=True, exist_ok=True)
            for stale in d.glob(f".*{_TMP_SUFFIX}"):
                # A temporary file left by a crash mid-write: the target is still intact.
                try:
                    stale.unlink()
                except OSError:
                    pass

    def _path(self, kind: str, key: str) -> Path:
        if kind not in self._dirs:
            raise ValueError(f"unknown record kind {kind!r}")
        _check_key(key)
        return self._dirs[kind] / f"{key}.json"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot open {self._lock_path}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the only descriptor releases the lock

    def get(self, kind: str, key: str) -> Record | None:
        path = self._path(kind, key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc}") from exc
        return load_json_object(data, f"record {path}")

    def put(self, kind: str, key: str, record: Record) -> None:
        with self._locked():
            self._put(kind, key, record)

    def _put(self, kind: str, key: str, record: Record) -> None:
        path = self._path(kind, key)
        data = dump_json(record).encode()
        try:
            atomic_write(path, data)
        except OSError as exc:
            raise StoreError(f"cannot write {path}: {exc}") from exc

    def compare_and_set(self, kind: str, key: str, expected: Record | None, new: Record | None) -> bool:
        self._path(kind, key)  # validate before taking the lock
        with self._locked():
            if self.get(kind, key) != expected:
                return False
            if new is None:
                self._delete(kind, key)
            else:
                self._put(kind, key, new)
            return True

    def delete(self, kind: str, key: str) -> None:
        with self._locked():
            self._delete(kind, key)

    def _delete(self, kind: str, key: str) -> None:
        unlink_durably(self._path(kind, key))

    def list_unfinished(self) -> list[Record]:
        out: list[Record] = []
        for path in sorted(self._dirs[KIND_TASK].glob("*.json")):
            if path.name.startswith("."):
                continue
            try:
                record = json.loads(path.read_bytes())
            except (OSError, ValueError) as exc:
                log.warning("skipping unreadable task record %s: %s", path.name, exc)
                continue
            if isinstance(record, dict):
                out.append(record)
        return out


def _parse_log(data: bytes, path: Path) -> tuple[list[Event], int]:
    """Parse a JSONL log; return (events, byte length of the valid prefix).

    A torn tail (last line without newline, or unparsable lines that are only followed by
    other unparsable lines) is ignored. An unparsable line followed by a valid one is damage.
    """
    events: list[Event] = []
    valid_end = 0
    pos = 0
    bad_at: int | None = None
    while pos < len(data):
        nl = data.find(b"\n", pos)
        if nl < 0:
            break  # torn last line: no newline
        line = data[pos:nl]
        pos = nl + 1
        if not line.strip():
            if bad_at is None:
                valid_end = pos
            continue
        try:
            event = json.loads(line)
            if not isinstance(event, dict) or not isinstance(event.get("sequence_number"), int):
                raise ValueError("not an event")
        except ValueError:
            if bad_at is None:
                bad_at = len(events)
            continue
        if bad_at is not None:
            raise StoreCorruptError(f"damaged line in the middle of {path}")
        events.append(event)
        valid_end = pos
    return events, valid_end


class FileEventLog(EventLog):
    def __init__(self, root: Path) -> None:
        self._dir = root
        self._dir.mkdir(parents=True, exist_ok=True)
        # key -> last persisted sequence number, for logs already checked in this lifetime.
        self._last: dict[str, int | None] = {}

    def _path(self, key: str) -> Path:
        _check_key(key)
        return self._dir / f"{key}.jsonl"

    def _load(self, key: str) -> tuple[list[Event], int, int]:
        path = self._path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return [], 0, 0
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc}") from exc
        events, valid_end = _parse_log(data, path)
        return events, valid_end, len(data)

    def _prepare_append(self, key: str) -> int | None:
        """First append of a lifetime: cut a torn tail off, learn the last sequence number."""
        if key in self._last:
            return self._last[key]
        events, valid_end, size = self._load(key)
        if valid_end < size:
            path = self._path(key)
            log.warning("cutting a torn tail of %d bytes off %s", size - valid_end, path.name)
            fd = os.open(path, os.O_WRONLY)
            try:
                os.ftruncate(fd, valid_end)
                os.fsync(fd)
            finally:
                os.close(fd)
        last = events[-1]["sequence_number"] if events else None
        self._last[key] = last
        return last

    def append(self, key: str, event: Event) -> None:
        seq = event.get("sequence_number")
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise ValueError("event has no integer sequence_number")
        last = self._prepare_append(key)
        if last is not None and seq <= last:
            raise ValueError(f"sequence_number {seq} does not follow {last} in log {key}")
        path = self._path(key)
        line = dump_json(event, sort_keys=False).encode() + b"\n"
        existed = path.exists()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                _write_all(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
            if not existed:
                fsync_dir(self._dir)
        except OSError as exc:
            # The tail may now be torn; re-check it before the next append.
            self._last.pop(key, None)
            raise StoreError(f"cannot append to {path}: {exc}") from exc
        self._last[key] = seq

    def read(self, key: str, after: int | None = None) -> list[Event]:
        events, _, _ = self._load(key)
        if after is None:
            return events
        return [e for e in events if e["sequence_number"] > after]

    def last_seq(self, key: str) -> int | None:
        if key in self._last:
            return self._last[key]
        events, _, _ = self._load(key)
        return events[-1]["sequence_number"] if events else None

    def delete(self, key: str) -> None:
        path = self._path(key)
        self._last.pop(key, None)
        unlink_durably(path)


class FileStoreProvider(StoreProvider):
    """Records as atomically replaced JSON files, events as fsync'd JSONL logs."""

    name = "file"
    capabilities = StoreCapabilities(durable=True, shared=False)

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        root = Path(state_dir)
        root.mkdir(parents=True, exist_ok=True)
        super().__init__(FileRecordStore(root), FileEventLog(root / "streams"))
        self.root = root
