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


def _frame(type: str, json: dict | None = None, seq: int | None = None, event_id: int | None = None):
    import json as _json

    from conformance.history import SSEFrame

    data = dict(json or {}, type=type)
    if seq is not None:
        data["sequence_number"] = seq
    return SSEFrame(event=type, data=_json.dumps(data), id=None if event_id is None else str(event_id))


def test_a_profile_reads_cursor_and_final_status_from_its_own_frames():
    done = _frame("response.completed", {"response": {"status": "completed"}}, seq=7)
    assert (RESPONSES.cursor_of(done), RESPONSES.terminal_status(done)) == (7, "completed")
    ended = _frame("invocation.cancelled", event_id=9)
    assert (INVOCATIONS.cursor_of(ended), INVOCATIONS.terminal_status(ended)) == (9, "cancelled")
    assert RESPONSES.terminal_status(_frame("response.failed", {"response": "x"})) is None
    assert RESPONSES.runnable_rules().__name__ == "runnable_responses"
    assert INVOCATIONS.runnable_rules().__name__ == "runnable_invocations"


def test_a_third_profile_is_data_the_stream_rules_read():
    """The wire-only bystander rules ask the profile, not its name: a made-up profile whose
    cursor is the event id, gap-free, starting at 5, is judged by its own numbers."""
    import dataclasses

    from conformance import blackbox

    third = dataclasses.replace(INVOCATIONS, name="third", first_event="job.begun", first_cursors=(5,),
                                terminal_events=frozenset({"job.completed"}))
    frames = [_frame("job.begun", event_id=5), _frame("job.delta", event_id=6),
              _frame("job.completed", event_id=7)]
    PROFILES["third"] = third
    try:
        assert blackbox.whole_stream_problems(frames, "complete", "completed", "third") == []
        gap = frames[:1] + frames[2:]
        gap[1] = _frame("job.completed", event_id=8)
        assert any("skip numbers" in p for p in blackbox.whole_stream_problems(gap, "complete", "completed", "third"))
        late = [_frame("job.begun", event_id=1)] + frames[1:]
        assert any("starts at cursor 1, not at 5" in p
                   for p in blackbox.whole_stream_problems(late, "complete", "completed", "third"))
    finally:
        del PROFILES["third"]


def test_no_module_outside_the_profiles_tests_a_profile_by_name():
    """One home per profile: code asks the profile object (issue 12), it never compares names."""
    import pathlib
    import re

    import conformance

    root = pathlib.Path(conformance.__file__).parent
    ladder = re.compile(r"""[!=]=\s*["'](responses|invocations)["']""")
    found = [f"{path.relative_to(root)}:{n}: {line.strip()}"
             for path in root.rglob("*.py") if "profiles" not in path.parts
             for n, line in enumerate(path.read_text().splitlines(), start=1) if ladder.search(line)]
    assert found == []
