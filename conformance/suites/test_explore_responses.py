"""Stateful crash schedules against the target under test (responses profile).

Default budget (``pytest conformance``): ``DEFAULT_BUDGET`` of conformance/explore/machine.py
(docs/exploration.md says how it was chosen); ``--conformance-explore N`` runs N examples of up
to 25 steps.  Every run draws from the run's seed, printed at the end of the run, in the JSON
report and, on failure, with a one-line replay command (``--conformance-seed N`` repeats it).
"""

from __future__ import annotations

import pytest

from conformance.explore.machine import explore_suite

BLACKBOX = ("needs control: the hold to place a crash at a chosen point of a run, and the markers that "
            "predict each attempt's output (a black-box target has neither)")
"""Against a ``control: none`` target this suite is not claimed, with this reason (docs/protocol.md §8)."""


def test_explore_responses(conformance_settings, spawn_target) -> None:
    if "responses" not in conformance_settings.target.profiles:
        pytest.skip("target does not claim the responses profile")
    explore_suite("test_explore_responses", conformance_settings, spawn_target)
