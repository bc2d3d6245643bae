"""Leases on task records (reference_impl/leases.py): stamp, fence, claim, renew — pure, on the
memory store. The end-to-end behaviour with two real workers is tests/workers/."""

from __future__ import annotations

import pytest

from reference_impl.leases import FENCE_MARGIN_FRACTION, LeaseKeeper
from reference_impl.stores import KIND_TASK, open_store

TTL = 10.0


@pytest.fixture
def records(tmp_path):
    store = open_store("memory", tmp_path)
    yield store.records
    store.close()


def task(rid: str = "resp_1", **extra):
    return {"id": rid, "attempt": 1, **extra}


def test_stamp_and_holds_with_the_fence_margin() -> None:
    w1 = LeaseKeeper("w1", TTL)
    leased = w1.stamp(task(), now=100.0)
    assert leased["lease"] == {"owner": "w1", "until": 110.0}
    assert w1.holds(leased, now=100.0)
    assert not w1.holds(leased, now=110.0 - TTL * FENCE_MARGIN_FRACTION)  # fenced before expiry
    assert not LeaseKeeper("w2", TTL).holds(leased, now=100.0)
    assert not w1.holds(task(), now=100.0) and not w1.holds(None)


def test_claimable_only_when_nobody_alive_holds_it() -> None:
    w1, w2 = LeaseKeeper("w1", TTL), LeaseKeeper("w2", TTL)
    live = w1.stamp(task(), now=100.0)
    assert not w2.claimable(live, now=105.0)  # the owner is alive and renewing
    assert w2.claimable(live, now=110.0)  # expired
    assert w1.claimable(live, now=105.0)  # its own id: a previous incarnation of w1, now dead
    assert w2.claimable(task(), now=0.0)  # no lease at all
    assert LeaseKeeper("w2", TTL, fault="steal").claimable(live, now=105.0)
    assert not LeaseKeeper("w2", TTL, fault="no_reclaim").claimable(live, now=200.0)


def test_one_claimant_wins(records) -> None:
    records.put(KIND_TASK, "resp_1", task())
    read_by_both = records.get(KIND_TASK, "resp_1")
    won = LeaseKeeper("w1", TTL).claim(records, read_by_both)
    lost = LeaseKeeper("w2", TTL).claim(records, read_by_both)
    assert won is not None and won["lease"]["owner"] == "w1"
    assert lost is None
    assert records.get(KIND_TASK, "resp_1")["lease"]["owner"] == "w1"


def test_renew_extends_and_notices_a_lost_lease(records) -> None:
    w1, w2 = LeaseKeeper("w1", TTL), LeaseKeeper("w2", TTL)
    mine = w1.stamp(task(), now=0.0)
    records.put(KIND_TASK, "resp_1", mine)
    renewed = w1.renew(records, mine)
    assert renewed is not None and renewed["lease"]["until"] > mine["lease"]["until"]
    assert records.get(KIND_TASK, "resp_1") == renewed
    stolen = w2.claim(records, renewed)
    assert stolen is not None
    assert w1.renew(records, renewed) is None  # someone else holds it: stop writing
    records.delete(KIND_TASK, "resp_1")
    assert w2.renew(records, stolen) is None  # gone (finished elsewhere): stop as well


def test_renew_keeps_a_cancel_request_written_by_another_worker(records) -> None:
    w1 = LeaseKeeper("w1", TTL)
    mine = w1.stamp(task(), now=0.0)
    records.put(KIND_TASK, "resp_1", mine)
    assert records.compare_and_set(KIND_TASK, "resp_1", mine, dict(mine, cancel_requested=True))
    renewed = w1.renew(records, mine)
    assert renewed is not None and renewed["cancel_requested"] is True
    assert renewed["lease"]["owner"] == "w1"
