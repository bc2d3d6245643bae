"""The ``postgres`` provider: records and event logs in PostgreSQL (psycopg 3).

``--store postgres:dsn=postgresql://user@127.0.0.1:5432/db[,namespace=N]``; without ``dsn`` the
environment variable ``REFERENCE_IMPL_PG_DSN`` is used. Every row carries a *namespace*; by
default it is derived from the state directory, so each conformance cell (own state dir) gets a
store of its own inside one shared database, and a restarted server (same state dir) finds its
state again. Servers that should share one store (several workers) name the same ``namespace``.

Durability: every write is one transaction committed with ``synchronous_commit=on``; opening the
store refuses a server that runs with ``fsync=off``. Compare-and-set locks the row
(``SELECT ... FOR UPDATE``; create-if-absent is ``INSERT ... ON CONFLICT DO NOTHING``); appends
to one log are serialised by a transaction-scoped advisory lock on (namespace, key).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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

try:
    import psycopg
except ImportError as exc:  # reported as one line by the registry
    raise ImportError(f"the postgres store needs psycopg 3 (pip install 'psycopg[binary]'): {exc}") from None

ENV_DSN = "REFERENCE_IMPL_PG_DSN"
_SCHEMA_LOCK = 0x5354_4F52  # advisory lock id held while creating the tables
_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS conformance_records (ns text NOT NULL, kind text NOT NULL, key text NOT NULL,"
    " body text NOT NULL, PRIMARY KEY (ns, kind, key))",
    "CREATE TABLE IF NOT EXISTS conformance_events (ns text NOT NULL, key text NOT NULL, seq bigint NOT NULL,"
    " body text NOT NULL, PRIMARY KEY (ns, key, seq))",
]


class _Db:
    """One connection, serialised by a lock, reconnected after a lost connection."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.lock = threading.RLock()
        self.conn: Any = None
        try:
            conn = self._connect()
        except psycopg.Error as exc:
            raise StoreConfigError(f"postgres: cannot connect: {str(exc).strip().splitlines()[0]}") from None
        fsync = conn.execute("SHOW fsync").fetchone()[0]
        if fsync != "on":
            raise StoreConfigError("postgres: the server runs with fsync=off: acknowledged writes would not be durable")
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            for stmt in _SCHEMA:
                conn.execute(stmt)

    def _connect(self) -> Any:
        self.conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=10)
        self.conn.execute("SET synchronous_commit = on")
        return self.conn

    @contextlib.contextmanager
    def tx(self) -> Iterator[Any]:
        with self.lock:
            try:
                conn = self.conn if self.conn is not None and not self.conn.closed else self._connect()
                with conn.transaction():
                    yield conn
            except psycopg.OperationalError as exc:
                if self.conn is not None and self.conn.closed:
                    self.conn = None
                raise StoreTransientError(f"postgres: {str(exc).strip().splitlines()[0]}") from exc
            except psycopg.Error as exc:
                raise StoreError(f"postgres: {str(exc).strip().splitlines()[0]}") from exc

    def close(self) -> None:
        with self.lock:
            if self.conn is not None:
                self.conn.close()


class PostgresRecordStore(RecordStore):
    def __init__(self, db: _Db, ns: str) -> None:
        self._db = db
        self._ns = ns

    def get(self, kind: str, key: str) -> Record | None:
        check_key(kind, key)
        with self._db.tx() as c:
            row = c.execute(
                "SELECT body FROM conformance_records WHERE ns=%s AND kind=%s AND key=%s", (self._ns, kind, key)
            ).fetchone()
        return load_json_object(row[0], f"record {kind}/{key}") if row else None

    def put(self, kind: str, key: str, record: Record) -> None:
        check_key(kind, key)
        body = dump_json(record)
        with self._db.tx() as c:
            c.execute(
                "INSERT INTO conformance_records (ns, kind, key, body) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (ns, kind, key) DO UPDATE SET body = EXCLUDED.body",
                (self._ns, kind, key, body),
            )

    def delete(self, kind: str, key: str) -> None:
        check_key(kind, key)
        with self._db.tx() as c:
            c.execute("DELETE FROM conformance_records WHERE ns=%s AND kind=%s AND key=%s", (self._ns, kind, key))

    def compare_and_set(self, kind: str, key: str, expected: Record | None, new: Record | None) -> bool:
        check_key(kind, key)
        body = dump_json(new) if new is not None else None
        args = (self._ns, kind, key)
        with self._db.tx() as c:
            if expected is None:
                if body is None:
                    row = c.execute("SELECT 1 FROM conformance_records WHERE ns=%s AND kind=%s AND key=%s", args).fetchone()
                    return row is None
                cur = c.execute(
                    "INSERT INTO conformance_records (ns, kind, key, body) VALUES (%s, %s, %s, %s)"
                    " ON CONFLICT (ns, kind, key) DO NOTHING",
                    (*args, body),
                )
                return cur.rowcount == 1
            row = c.execute(
                "SELECT body FROM conformance_records WHERE ns=%s AND kind=%s AND key=%s FOR UPDATE", args
            ).fetchone()
            if row is None or load_json_object(row[0], f"record {kind}/{key}") != expected:
                return False
            if body is None:
                c.execute("DELETE FROM conformance_records WHERE ns=%s AND kind=%s AND key=%s", args)
            else:
                c.execute("UPDATE conformance_records SET body=%s WHERE ns=%s AND kind=%s AND key=%s", (body, *args))
            return True

    def list_unfinished(self) -> list[Record]:
        with self._db.tx() as c:
            rows = c.execute(
                "SELECT key, body FROM conformance_records WHERE ns=%s AND kind=%s ORDER BY key", (self._ns, KIND_TASK)
            ).fetchall()
        return [load_json_object(body, f"record task/{key}") for key, body in rows]


class PostgresEventLog(EventLog):
    def __init__(self, db: _Db, ns: str) -> None:
        self._db = db
        self._ns = ns

    def append(self, key: str, event: Event) -> None:
        check_key(None, key)
        seq = event.get("sequence_number")
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise ValueError("event has no integer sequence_number")
        body = dump_json(event, sort_keys=False)
        with self._db.tx() as c:
            c.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"{self._ns}/{key}",))
            last = c.execute("SELECT max(seq) FROM conformance_events WHERE ns=%s AND key=%s", (self._ns, key)).fetchone()[0]
            if last is not None and seq <= last:
                raise ValueError(f"sequence_number {seq} does not follow {last} in log {key}")
            c.execute("INSERT INTO conformance_events (ns, key, seq, body) VALUES (%s, %s, %s, %s)", (self._ns, key, seq, body))

    def read(self, key: str, after: int | None = None) -> list[Event]:
        check_key(None, key)
        with self._db.tx() as c:
            rows = c.execute(
                "SELECT seq, body FROM conformance_events WHERE ns=%s AND key=%s AND seq>%s ORDER BY seq",
                (self._ns, key, -(2**62) if after is None else after),
            ).fetchall()
        return [load_json_object(body, f"event {key}/{seq}") for seq, body in rows]

    def last_seq(self, key: str) -> int | None:
        check_key(None, key)
        with self._db.tx() as c:
            return c.execute("SELECT max(seq) FROM conformance_events WHERE ns=%s AND key=%s", (self._ns, key)).fetchone()[0]

    def delete(self, key: str) -> None:
        check_key(None, key)
        with self._db.tx() as c:
            c.execute("DELETE FROM conformance_events WHERE ns=%s AND key=%s", (self._ns, key))


def default_namespace(state_dir: str | os.PathLike[str]) -> str:
    """A namespace of the state directory: one store per state dir within one database."""
    return "sd-" + hashlib.sha256(str(Path(state_dir).resolve()).encode()).hexdigest()[:24]


class PostgresStoreProvider(StoreProvider):
    """Rows in two tables, partitioned by namespace; shared by every process naming the namespace."""

    name = "postgres"
    capabilities = StoreCapabilities(durable=True, shared=True)
    options = ("dsn", "namespace")

    def __init__(self, state_dir: str | os.PathLike[str], dsn: str | None = None, namespace: str | None = None) -> None:
        dsn = dsn or os.environ.get(ENV_DSN)
        if not dsn:
            raise StoreConfigError(f"postgres: no dsn (use --store postgres:dsn=postgresql://... or set {ENV_DSN})")
        Path(state_dir).mkdir(parents=True, exist_ok=True)
        self.namespace = namespace or default_namespace(state_dir)
        self._db = _Db(dsn)
        super().__init__(PostgresRecordStore(self._db, self.namespace), PostgresEventLog(self._db, self.namespace))

    def close(self) -> None:
        self._db.close()
