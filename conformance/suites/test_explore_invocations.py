"""Stateful crash schedules against the target under test (invocations profile): the same rules
and invariants as the responses machine, on the invocations wire (``Last-Event-ID`` cursors,
JSON snapshots, server mode ``resilient_invocations``).  Budget as in test_explore_responses."""

from __future__ import annotations

import pytest

from conformance.explore.machine import SEED_ENV, InvocationsMachine, budget_for, explore


def test_explore_invocations(conformance_settings, spawn_target) -> None:
    if "invocations" not in conformance_settings.target.profiles:
        pytest.skip("target does not claim the invocations profile")
    budget = budget_for(conformance_settings.explore)
    explore(
        lambda server: spawn_target(server=server),
        budget,
        machine=InvocationsMachine,
        replay_hint=f"{SEED_ENV}={{seed}} pytest conformance -k test_explore_invocations "
        f"--conformance-explore {conformance_settings.explore}"
        + (f" --target {conformance_settings.target.source}" if conformance_settings.target.name != "reference" else ""),
    )
