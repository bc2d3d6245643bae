"""Stateful crash schedules against the target under test (responses profile).

Default budget (``pytest conformance``): 3 derandomized examples of up to 10 steps, the same
every run.  ``--conformance-explore N`` runs N examples of up to 25 steps from a random seed,
printed on failure with a one-line replay command (``CONFORMANCE_EXPLORE_SEED`` fixes it).
"""

from __future__ import annotations

import pytest

from conformance.explore.machine import explore_suite


def test_explore_responses(conformance_settings, spawn_target) -> None:
    if "responses" not in conformance_settings.target.profiles:
        pytest.skip("target does not claim the responses profile")
    explore_suite("test_explore_responses", conformance_settings, spawn_target)
