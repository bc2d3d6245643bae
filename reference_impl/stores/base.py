"""Storage provider interfaces of the reference server.

Two small interfaces, so that other back ends (SQLite, PostgreSQL, third-party ones) can be
plugged in by name without touching the runtime:

``RecordStore``
    Whole JSON records addressed by ``(kind, key)``. The runtime uses two kinds:

    * ``"task"``: the task record written at accept time for every ``store=true`` request
      (request, disposition, attempt, last checkpoint). It exists while the response is
      unfinished and is deleted once a terminal status has been persisted, so
      ``list_unfinished()`` is simply "every task record".
    * ``"response"``: the response envelope ``{"response": <snapshot>, "background": bool,
      "stream": bool}`` written when ``response.created`` is persisted and on every later
      state change.

    ``put`` must be atomic: after a crash at any moment, ``get`` returns either the previous
    record or the new one, never a torn one. ``put`` returns only once the record is durable.

``EventLog``
    An append-only, per-response log of the SSE events (JSON objects carrying an integer
    ``sequence_number``). ``append`` returns only once the event is durable: the runtime calls
    it BEFORE the event is sent to any client. Sequence numbers must be strictly increasing
    within one log; ``append`` rejects a number that is not greater than the last one.
    ``read(after=N)`` returns the events with ``sequence_number > N`` in order.

``compare_and_set`` on records is the one primitive that lets several workers share a store:
a lease on a task is a task record whose ``lease`` field is taken and renewed by compare-and-set.

Retention: an event log keeps every acknowledged event, in order, until ``delete`` removes the
whole log; nothing is trimmed silently, and a deleted log never comes back (a new append under the
same key starts an empty log).

Capabilities: a provider class declares :class:`StoreCapabilities`. ``durable=False`` (the
``memory`` provider) withdraws the ``durable_store`` claim, so every contract cell that restarts
the server is reported "not claimed" instead of being run.

Errors: every provider raises :class:`StoreError` or a subclass. A provider that cannot tell
whether a record exists (a timeout, a lost connection) raises :class:`StoreTransientError`;
the runtime never treats that as "not found" (a recovery scan must not drop a task on it).
"""

from __future__ import annotations

import abc
import json
from dataclasses import dataclass
from typing import Any

Record = dict[str, Any]
Event = dict[str, Any]

KIND_TASK = "task"
KIND_RESPONSE = "response"
KINDS = (KIND_TASK, KIND_RESPONSE)


class StoreError(Exception):
    """Base class of every storage failure raised by a provider."""


class StoreTransientError(StoreError):
    """The provider could not answer now (existence unknown); retrying may succeed."""


class StoreCorruptError(StoreError):
    """Persisted data is unreadable in a way that is not a torn tail (damaged mid-file)."""


class StoreConfigError(StoreError, ValueError):
    """The store spec names no known provider, the provider failed to import, or an option is wrong."""


DURABLE_STORE = "durable_store"
"""The claim a non-durable provider withdraws: state survives a crash and a restart."""


@dataclass(frozen=True)
class StoreCapabilities:
    """What a provider promises beyond the interfaces."""

    durable: bool = True  # acknowledged writes survive a SIGKILL of the process and a reopen
    shared: bool = False  # several processes may open the same store at once

    def withdrawn_claims(self) -> list[str]:
        """Target claims that do not hold with this provider."""
        return [] if self.durable else [DURABLE_STORE]


class RecordStore(abc.ABC):
    """Atomic whole-record store addressed by (kind, key)."""

    @abc.abstractmethod
    def get(self, kind: str, key: str) -> Record | None:
        """Return the record, or None when it definitely does not exist."""

    @abc.abstractmethod
    def put(self, kind: str, key: str, record: Record) -> None:
        """Atomically and durably replace (or create) the record."""

    @abc.abstractmethod
    def delete(self, kind: str, key: str) -> None:
        """Durably remove the record; removing a missing record is not an error."""

    @abc.abstractmethod
    def compare_and_set(self, kind: str, key: str, expected: Record | None, new: Record | None) -> bool:
        """Atomically: if the stored record equals ``expected`` (None: absent), durably replace it
        with ``new`` (None: delete) and return True; otherwise change nothing and return False.

        Equality is JSON value equality. Atomic against every other writer of the same store,
        including other processes when the provider declares ``shared``.
        """

    @abc.abstractmethod
    def list_unfinished(self) -> list[Record]:
        """Every task record (a task record exists only while its response is unfinished)."""


class EventLog(abc.ABC):
    """Durable, append-only per-response event log."""

    @abc.abstractmethod
    def append(self, key: str, event: Event) -> None:
        """Durably append one event; raise ValueError if its sequence_number does not increase."""

    @abc.abstractmethod
    def read(self, key: str, after: int | None = None) -> list[Event]:
        """Events with sequence_number > after (all if None), oldest first; [] if no log."""

    @abc.abstractmethod
    def last_seq(self, key: str) -> int | None:
        """The highest persisted sequence_number, or None for an empty or missing log."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove the whole log; removing a missing log is not an error."""


# -- helpers for providers that keep JSON text (sqlite, postgres, memory; use them in yours) -----
MAX_KEY_LEN = 256


def check_key(kind: str | None, key: str) -> None:
    """Refuse an unknown record kind (None: an event-log key) or an empty/oversized key."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"unknown record kind {kind!r}")
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LEN:
        raise ValueError(f"invalid store key {key!r}")


def dump_json(value: Record | Event, *, sort_keys: bool = True) -> str:
    """Compact JSON; sorted keys by default (equal records give equal text). Events keep their
    key order (``sort_keys=False``): a replay sends them as they were first sent."""
    return json.dumps(value, separators=(",", ":"), sort_keys=sort_keys)


def load_json_object(text: str | bytes, what: str) -> dict[str, Any]:
    """Parse stored JSON text that must be an object; StoreCorruptError naming ``what`` if not."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise StoreCorruptError(f"unreadable {what}") from exc
    if not isinstance(value, dict):
        raise StoreCorruptError(f"{what} is not an object")
    return value


class StoreProvider:
    """What the runtime receives: one record store and one event log.

    A provider class is built as ``cls(state_dir, **options)`` where options are the strings of
    ``--store NAME:key=value,...``; an unknown option raises :class:`StoreConfigError`.
    """

    name = "abstract"
    capabilities = StoreCapabilities()

    def __init__(self, records: RecordStore, events: EventLog) -> None:
        self.records = records
        self.events = events

    def close(self) -> None:
        """Release resources (files, connections). Default: nothing to do."""
