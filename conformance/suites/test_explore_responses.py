"""Stateful crash schedules against the target under test (responses profile).

Default budget (``pytest conformance``): 3 derandomized examples of up to 10 steps, the same
every run.  ``--conformance-explore N`` runs N examples of up to 25 steps from a random seed,
printed on failure with a one-line replay command (``CONFORMANCE_EXPLORE_SEED`` fixes it).
"""

from __future__ import annotations

import pytest

from conformance.explore.machine import SEED_ENV, budget_for, explore


def test_explore_responses(conformance_settings, spawn_target) -> None:
    if "responses" not in conformance_settings.target.profiles:
        pytest.skip("target does not claim the responses profile")
    budget = budget_for(conformance_settings.explore)
    explore(
        lambda server: spawn_target(server=server),
        budget,
        replay_hint=f"{SEED_ENV}={{seed}} pytest conformance -k test_explore_responses "
        f"--conformance-explore {conformance_settings.explore}"
        + (f" --target {conformance_settings.target.source}" if conformance_settings.target.name != "reference" else ""),
    )
