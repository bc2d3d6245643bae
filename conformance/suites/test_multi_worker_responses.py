"""Several workers on one store (issue 7's multi-worker row; responses profile).

Two workers of the target run on one shared store (same state dir, same store options); the
owner of a resilient response is SIGKILLed, SIGTERMed, frozen (SIGSTOP), kept alive, or the
response is cancelled through the other worker. See ``conformance/explore/workers.py`` for the
schedule and what is judged.

Runs when the target claims ``multi_worker`` (its target file says how to start a worker:
``workers: {args: [...{worker}...], lease_ttl_s: N}``) and the selected store is shared (its
``store.describe`` says ``"shared": true``: ``--conformance-store sqlite`` or ``--conformance-store postgres`` for the
reference server). Otherwise each test is reported as not claimed, with the reason.
"""

from __future__ import annotations

import pytest

from conformance.explore.workers import FAULTS, promised_status, run_workers

BLACKBOX = ("needs control: the hold that keeps the owner's run going while it is faulted, and the markers "
            "that tell which attempt ran and from which checkpoint (a black-box target has neither)")
"""Against a ``control: none`` target this suite is not claimed, with this reason (docs/protocol.md §8)."""


def _not_claimed(cfg, fault: str) -> str | None:
    if "responses" not in cfg.profiles:
        return f"target {cfg.name} does not claim the responses profile"
    if "multi_worker" not in cfg.claims:
        return f"not claimed by target {cfg.name}: multi_worker"
    if "resilient_background" not in cfg.claims:
        return f"not claimed by target {cfg.name}: resilient_background"
    if cfg.store_describe and not cfg.store_info.get("shared"):
        store = cfg.store or "its default store"
        return (f"not claimed by target {cfg.name} with {store}: multi_worker needs a store that several processes "
                "share (store.describe says shared: true; e.g. --conformance-store sqlite or --conformance-store postgres)")
    return None


@pytest.mark.parametrize("fault", FAULTS)
def test_multi_worker(fault: str, conformance_settings, spawn_target) -> None:
    cfg = conformance_settings.target
    reason = _not_claimed(cfg, fault)
    if reason:
        pytest.skip(reason)
    server = {"resilient_background": True}  # a worker that steals would re-run, not just mark failed
    owner = spawn_target(server, worker="w1")
    other = spawn_target(server, worker="w2", share_state_with=owner)
    result = run_workers(owner, other, fault, lease_ttl_s=cfg.lease_ttl_s or 1.0, tag=f"mw-{fault}")
    if result.history is not None:  # the schedule, for the HTML report's timeline
        (spawn_target.work_dir / "history.json").write_text(result.history.to_json(), encoding="utf-8")
    assert not result.problems, (
        f"{len(result.problems)} problem(s) with two workers, fault {fault!r} on the owner "
        f"(promised: {promised_status(fault)}; attempts {result.attempts}; response {result.response_id}):\n  - "
        + "\n  - ".join(result.problems[:20])
    )
