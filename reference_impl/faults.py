"""Test-only fault injection, off unless an environment variable names an arm file.

``REFERENCE_IMPL_FAULT_TRANSIENT_GET=<path>``: while ``<path>`` exists, the next read of a
response record raises :class:`StoreTransientError` and deletes ``<path>`` (one shot; the
deletion is the evidence that the fault really fired). Used to prove that a transient store
error during the startup recovery check never drops a task.

``REFERENCE_IMPL_FAULT_APPEND=<path>``: while ``<path>`` exists and holds a number k, the append
of the event with ``sequence_number`` k raises ``OSError`` (as a full disk would) and deletes
``<path>`` (one shot). Used to prove that an event is persisted before any client sees it: the
event whose append failed never reaches a live stream.

``REFERENCE_IMPL_FAULT_LEASE=<name>``: break one promise of the leases (``--lease-ttl``), so the
kit's own tests can show that the multi-worker suite catches it: ``steal`` (claim tasks whose
lease is still live), ``no_reclaim`` (never claim another worker's expired task), ``no_tail`` (a
replay of a response running on another worker ends at the last persisted event).
"""

from __future__ import annotations

import logging
import os

from .stores import KIND_RESPONSE, EventLog, RecordStore, StoreProvider, StoreTransientError
from .stores.base import Event, Record

ENV_TRANSIENT_GET = "REFERENCE_IMPL_FAULT_TRANSIENT_GET"
ENV_APPEND = "REFERENCE_IMPL_FAULT_APPEND"
ENV_LEASE = "REFERENCE_IMPL_FAULT_LEASE"
LEASE_FAULTS = ("steal", "no_reclaim", "no_tail")
log = logging.getLogger("reference_impl.faults")


class _TransientGetOnce(RecordStore):
    def __init__(self, inner: RecordStore, arm_file: str) -> None:
        self._inner = inner
        self._arm = arm_file

    def get(self, kind: str, key: str) -> Record | None:
        if kind == KIND_RESPONSE:
            try:
                os.unlink(self._arm)
            except FileNotFoundError:
                pass
            else:
                log.warning("fault: transient error injected on get(%s, %s)", kind, key)
                raise StoreTransientError("injected transient store error")
        return self._inner.get(kind, key)

    def put(self, kind: str, key: str, record: Record) -> None:
        self._inner.put(kind, key, record)

    def delete(self, kind: str, key: str) -> None:
        self._inner.delete(kind, key)

    def compare_and_set(self, kind: str, key: str, expected: Record | None, new: Record | None) -> bool:
        return self._inner.compare_and_set(kind, key, expected, new)

    def list_unfinished(self) -> list[Record]:
        return self._inner.list_unfinished()


class _AppendFailsOnce(EventLog):
    def __init__(self, inner: EventLog, arm_file: str) -> None:
        self._inner = inner
        self._arm = arm_file

    def append(self, key: str, event: Event) -> None:
        try:
            with open(self._arm) as f:
                armed_seq = int(f.read().strip())
        except (FileNotFoundError, ValueError):
            armed_seq = None
        if armed_seq is not None and event.get("sequence_number") == armed_seq:
            os.unlink(self._arm)
            log.warning("fault: append of %s seq %d fails", key, armed_seq)
            raise OSError(28, "injected: no space left on device")
        self._inner.append(key, event)

    def read(self, key: str, after: int | None = None) -> list[Event]:
        return self._inner.read(key, after)

    def last_seq(self, key: str) -> int | None:
        return self._inner.last_seq(key)

    def delete(self, key: str) -> None:
        self._inner.delete(key)


def apply_faults(store: StoreProvider) -> StoreProvider:
    arm = os.environ.get(ENV_TRANSIENT_GET)
    if arm:
        store.records = _TransientGetOnce(store.records, arm)
    arm = os.environ.get(ENV_APPEND)
    if arm:
        store.events = _AppendFailsOnce(store.events, arm)
    return store


def lease_fault() -> str | None:
    """The lease fault named by ``$REFERENCE_IMPL_FAULT_LEASE`` (None: leases keep their promises)."""
    name = os.environ.get(ENV_LEASE) or None
    if name is not None and name not in LEASE_FAULTS:
        raise ValueError(f"${ENV_LEASE}={name!r}: unknown lease fault (known: {', '.join(LEASE_FAULTS)})")
    if name:
        log.warning("fault: leases break their promise %r", name)
    return name
