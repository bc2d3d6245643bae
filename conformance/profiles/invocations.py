"""The invocations profile (docs/protocol.md §7): ``POST /invocations`` answers at once with the
id, the live stream is ``GET /invocations/{id}`` (SSE), a resume sends ``Last-Event-ID`` or
``?last_event_id=``; inputs on one session queue behind each other."""

from __future__ import annotations

from ..history import INVOCATION_CALL_NAMES, INVOCATION_TERMINAL_EVENTS, INVOCATION_TERMINAL_STATUSES
from ..model import PROFILE_FAULTS, PROFILE_STATUSES
from .base import Profile

INVOCATIONS = Profile(
    name="invocations",
    statuses=PROFILE_STATUSES["invocations"],
    terminal_statuses=INVOCATION_TERMINAL_STATUSES,
    terminal_events=INVOCATION_TERMINAL_EVENTS,
    delta_event="invocation.delta",
    completed_event="invocation.completed",
    cursor="Last-Event-ID: <id> (or ?last_event_id=)",
    calls=INVOCATION_CALL_NAMES,
    faults=PROFILE_FAULTS["invocations"],
    always_background=True,
    driver="conformance.drivers.invocations:InvocationsDriver",
    run="conformance.profiles.invocations_run:InvocationsRun",
)
