"""The ``sqlite`` provider: one SQLite database (stdlib ``sqlite3``) in WAL mode.

``--store sqlite`` keeps ``<state_dir>/store.sqlite3``; ``--store sqlite:path=P`` names the
database file: relative to the state directory, or absolute (then every process naming it shares
one database: never do that for a conformance run, whose cells each need a store of their own). Durability: ``journal_mode=WAL`` with ``synchronous=FULL``, so a
commit returns only after the WAL has been fsync'd; every write is one transaction
(``BEGIN IMMEDIATE``), so a crash leaves either the old or the new state. Several processes may
open the same database (SQLite's own locking; ``busy_timeout`` 30 s).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from .base import (
    KIND_TASK,
    Event,
    EventLog,
    Record,
    RecordStore,
    StoreCapabilities,
    StoreConfigError,
    StoreError,
    StoreProvider,
    StoreTransientError,
    check_key,
    dump_json,
    load_json_object,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (kind TEXT NOT NULL, key TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (kind, key));
CREATE TABLE IF NOT EXISTS events (key TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (key, seq));
"""


class _Db:
    """One connection, serialised by a lock; sqlite errors mapped onto StoreError."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        try:
            self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
            mode = self.conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreConfigError(f"sqlite: {path} cannot use WAL (journal_mode={mode})")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreConfigError(f"sqlite: cannot open {path}: {exc}") from exc

    @contextlib.contextmanager
    def tx(self, write: bool = True) -> Iterator[sqlite3.Connection]:
        with self.lock:
            try:
                self.conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield self.conn
                except BaseException:
                    self.conn.execute("ROLLBACK")
                    raise
                self.conn.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                if "locked" in str(exc) or "busy" in str(exc):
                    raise StoreTransientError(f"sqlite {self.path}: {exc}") from exc
                raise StoreError(f"sqlite {self.path}: {exc}") from exc
            except sqlite3.Error as exc:
                raise StoreError(f"sqlite {self.path}: {exc}") from exc


class SqliteRecordStore(RecordStore):
    def __init__(self, db: _Db) -> None:
        self._db = db

    def get(self, kind: str, key: str) -> Record | None:
        check_key(kind, key)
        with self._db.tx(write=False) as c:
            row = c.execute("SELECT body FROM records WHERE kind=? AND key=?", (kind, key)).fetchone()
        return load_json_object(row[0], f"record {kind}/{key}") if row else None

    def put(self, kind: str, key: str, record: Record) -> None:
        check_key(kind, key)
        body = dump_json(record)
        with self._db.tx() as c:
            c.execute("INSERT OR REPLACE INTO records (kind, key, body) VALUES (?, ?, ?)", (kind, key, body))

    def delete(self, kind: str, key: str) -> None:
        check_key(kind, key)
        with self._db.tx() as c:
            c.execute("DELETE FROM records WHERE kind=? AND key=?", (kind, key))

    def compare_and_set(self, kind: str, key: str, expected: Record | None, new: Record | None) -> bool:
        check_key(kind, key)
        body = dump_json(new) if new is not None else None
        with self._db.tx() as c:
            row = c.execute("SELECT body FROM records WHERE kind=? AND key=?", (kind, key)).fetchone()
            current = load_json_object(row[0], f"record {kind}/{key}") if row else None
            if current != expected:
                return False
            if body is None:
                c.execute("DELETE FROM records WHERE kind=? AND key=?", (kind, key))
            else:
                c.execute("INSERT OR REPLACE INTO records (kind, key, body) VALUES (?, ?, ?)", (kind, key, body))
            return True

    def list_unfinished(self) -> list[Record]:
        with self._db.tx(write=False) as c:
            rows = c.execute("SELECT key, body FROM records WHERE kind=? ORDER BY key", (KIND_TASK,)).fetchall()
        return [load_json_object(body, f"record task/{key}") for key, body in rows]


class SqliteEventLog(EventLog):
    def __init__(self, db: _Db) -> None:
        self._db = db

    def append(self, key: str, event: Event) -> None:
        check_key(None, key)
        seq = event.get("sequence_number")
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise ValueError("event has no integer sequence_number")
        body = dump_json(event, sort_keys=False)
        with self._db.tx() as c:
            last = c.execute("SELECT max(seq) FROM events WHERE key=?", (key,)).fetchone()[0]
            if last is not None and seq <= last:
                raise ValueError(f"sequence_number {seq} does not follow {last} in log {key}")
            c.execute("INSERT INTO events (key, seq, body) VALUES (?, ?, ?)", (key, seq, body))

    def read(self, key: str, after: int | None = None) -> list[Event]:
        check_key(None, key)
        with self._db.tx(write=False) as c:
            rows = c.execute(
                "SELECT seq, body FROM events WHERE key=? AND seq>? ORDER BY seq",
                (key, -(2**62) if after is None else after),
            ).fetchall()
        return [load_json_object(body, f"event {key}/{seq}") for seq, body in rows]

    def last_seq(self, key: str) -> int | None:
        check_key(None, key)
        with self._db.tx(write=False) as c:
            return c.execute("SELECT max(seq) FROM events WHERE key=?", (key,)).fetchone()[0]

    def delete(self, key: str) -> None:
        check_key(None, key)
        with self._db.tx() as c:
            c.execute("DELETE FROM events WHERE key=?", (key,))


class SqliteStoreProvider(StoreProvider):
    """Records and events in one WAL-mode SQLite database with synchronous=FULL."""

    name = "sqlite"
    capabilities = StoreCapabilities(durable=True, shared=True)
    options = ("path",)

    def __init__(self, state_dir: str | os.PathLike[str], path: str | None = None) -> None:
        root = Path(state_dir)
        root.mkdir(parents=True, exist_ok=True)
        db_path = root / (path or "store.sqlite3")  # an absolute path stays as is
        if path and not Path(path).is_absolute():
            db_path.parent.mkdir(parents=True, exist_ok=True)
        if not db_path.parent.is_dir():
            raise StoreConfigError(f"sqlite: path={path}: directory {db_path.parent} does not exist")
        self._db = _Db(db_path)
        super().__init__(SqliteRecordStore(self._db), SqliteEventLog(self._db))
        self.path = db_path

    def close(self) -> None:
        with self._db.lock:
            self._db.conn.close()
