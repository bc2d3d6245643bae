"""Stateful crash schedules against the target under test (invocations profile): the same rules
and invariants as the responses machine, on the invocations wire (``Last-Event-ID`` cursors,
JSON snapshots, server mode ``resilient_invocations``).  Budget as in test_explore_responses."""

from __future__ import annotations

import pytest

from conformance.explore.machine import InvocationsMachine, explore_suite

BLACKBOX = ("needs control: the hold to place a crash at a chosen point of a run, and the markers that "
            "predict each attempt's output (a black-box target has neither)")
"""Against a ``control: none`` target this suite is not claimed, with this reason (docs/protocol.md §8)."""


def test_explore_invocations(conformance_settings, spawn_target) -> None:
    if "invocations" not in conformance_settings.target.profiles:
        pytest.skip("target does not claim the invocations profile")
    explore_suite("test_explore_invocations", conformance_settings, spawn_target, machine=InvocationsMachine)
