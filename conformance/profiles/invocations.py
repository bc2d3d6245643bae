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
    always_live=True,  # the create answers at once; the live stream is a GET
    cursor_field="event_id",
    live_call="live",
    first_event="invocation.started",
    first_cursors=(1,),
    single_first_event=False,
    gapless=True,  # ids 1, 2, 3, … without a gap (docs/protocol.md §0, §8)
    terminal_status_in="type",
    output_is_text=True,
    takes_request=False,  # the input is the script
    transcript_after_end=True,
    runnable="conformance.contract:runnable_invocations",
    driver="conformance.drivers.invocations:InvocationsDriver",
    run="conformance.profiles.invocations_run:InvocationsRun",
)
