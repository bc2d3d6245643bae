"""Profiles as objects (conformance/profiles): each cell's run class, vocabulary and driver come
from its profile, and an unknown profile is refused by name."""

from __future__ import annotations

import pytest

from conformance.drivers.invocations import InvocationsDriver
from conformance.drivers.responses import ResponsesDriver
from conformance.executor import CellRun
from conformance.history import INVOCATION_TERMINAL_EVENTS, TERMINAL_EVENTS
from conformance.expectations import registry
from conformance.model import PROFILE_FAULTS
from conformance.profiles import INVOCATIONS, PROFILES, RESPONSES, profile_of


def test_each_profile_names_its_run_driver_and_vocabulary():
    from conformance.profiles.invocations_run import InvocationsRun

    assert profile_of("responses").run_class() is CellRun and RESPONSES.driver_class() is ResponsesDriver
    assert profile_of("invocations").run_class() is InvocationsRun and INVOCATIONS.driver_class() is InvocationsDriver
    assert issubclass(InvocationsRun, CellRun)
    assert (RESPONSES.terminal_events, INVOCATIONS.terminal_events) == (TERMINAL_EVENTS, INVOCATION_TERMINAL_EVENTS)
    # a run's class vocabulary is its profile's (the black-box trigger and placement proofs read it)
    for run in (CellRun, InvocationsRun):
        p = run.PROFILE
        assert (run.DELTA_EVENT, run.TERMINAL_EVENT_TYPES, run.COMPLETED_EVENT) == (
            p.delta_event, p.terminal_events, p.completed_event)
        assert p.completed_event in p.terminal_events
    for name, p in PROFILES.items():
        assert p.name == name and p.faults == PROFILE_FAULTS[name] and p.keys == frozenset(registry().for_profile(name))
    assert INVOCATIONS.always_background and not RESPONSES.always_background


def test_an_unknown_profile_is_refused_naming_the_known_ones():
    with pytest.raises(KeyError, match="unknown profile 'chat' .known: invocations, responses"):
        profile_of("chat")
