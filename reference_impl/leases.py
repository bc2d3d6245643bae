"""Leases on task records, so that several workers can share one store (``--lease-ttl``).

A task record of a worker running with leases carries ``lease: {"owner": <worker id>,
"until": <unix time>}``. The promises:

- the owner renews every lease it holds every ``ttl / 3`` with ``compare_and_set``; a failed
  renewal means the record changed under it: someone else claimed the task (the owner stops the
  run and writes nothing more) or a client asked for a cancel (``cancel_requested``);
- the owner writes nothing for a task once ``until - margin`` has passed on its clock without a
  renewal (a worker frozen by SIGSTOP or a long GC pause wakes up fenced);
- any worker may claim a task whose lease has expired (``until`` in the past), and a worker may at
  once claim a task whose owner is its own worker id (its previous incarnation, which is dead:
  one id, one live process). A claim is a ``compare_and_set`` from the record read to the record
  with the claimant's lease, so exactly one claimant wins.

Clocks: ``until`` is wall-clock time, so workers sharing a store must have clocks that agree to
well within ``margin`` (true for processes on one machine; document NTP for more).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any

from .stores import KIND_TASK, RecordStore

FENCE_MARGIN_FRACTION = 0.2  # the owner stops writing this fraction of the ttl before expiry


class LeaseLost(Exception):
    """This worker no longer holds the lease of the task it was about to write for."""


@dataclass(frozen=True)
class LeaseKeeper:
    """Stamps, renews, checks and claims leases for one worker."""

    worker_id: str
    ttl: float
    fault: str | None = None  # test-only: a broken promise (reference_impl/faults.py)

    @property
    def interval(self) -> float:
        """How often the worker renews its leases and scans for expired ones."""
        return self.ttl / 3

    def stamp(self, task: dict[str, Any], now: float | None = None) -> dict[str, Any]:
        """A copy of ``task`` leased to this worker for one ttl from now."""
        until = (time.time() if now is None else now) + self.ttl
        return dict(copy.deepcopy(task), lease={"owner": self.worker_id, "until": until})

    def holds(self, task: dict[str, Any] | None, now: float | None = None) -> bool:
        """This worker may still write for ``task`` (its lease, not within the fence margin)."""
        lease = (task or {}).get("lease")
        if not isinstance(lease, dict) or lease.get("owner") != self.worker_id:
            return False
        until = lease.get("until")
        now = time.time() if now is None else now
        return isinstance(until, (int, float)) and now < until - self.ttl * FENCE_MARGIN_FRACTION

    def claimable(self, task: dict[str, Any], now: float | None = None) -> bool:
        """Nobody alive holds ``task``: no lease, an expired one, or one of this worker's id."""
        lease = task.get("lease")
        if not isinstance(lease, dict) or self.fault == "steal":
            return True
        if lease.get("owner") == self.worker_id:
            return True
        if self.fault == "no_reclaim":
            return False
        until = lease.get("until")
        now = time.time() if now is None else now
        return not isinstance(until, (int, float)) or now >= until

    def claim(self, records: RecordStore, task: dict[str, Any]) -> dict[str, Any] | None:
        """Take ``task`` (as read) with one compare-and-set; the leased record, or None if lost."""
        new = self.stamp(task)
        return new if records.compare_and_set(KIND_TASK, task["id"], task, new) else None

    def renew(self, records: RecordStore, task: dict[str, Any]) -> dict[str, Any] | None:
        """Extend this worker's lease on ``task`` (the record as last written by this worker).

        Returns the renewed record; the record now stored if it changed under us and is still
        ours (e.g. a client set ``cancel_requested``) after renewing that one; None when the task
        is gone or someone else holds it."""
        new = self.stamp(task)
        if records.compare_and_set(KIND_TASK, task["id"], task, new):
            return new
        current = records.get(KIND_TASK, task["id"])
        lease = (current or {}).get("lease")
        if current is None or not isinstance(lease, dict) or lease.get("owner") != self.worker_id:
            return None
        new = self.stamp(current)
        return new if records.compare_and_set(KIND_TASK, task["id"], current, new) else None
