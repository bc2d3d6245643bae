"""The responses profile (docs/protocol.md §2): ``POST /responses`` with ``background`` /
``stream`` / ``store``, ``GET /responses/{id}`` and its ``?stream=true&starting_after=N`` replay."""

from __future__ import annotations

from ..history import CALL_NAMES, TERMINAL_EVENTS, TERMINAL_STATUSES
from ..model import PROFILE_FAULTS, PROFILE_STATUSES
from .base import Profile

RESPONSES = Profile(
    name="responses",
    statuses=PROFILE_STATUSES["responses"],
    terminal_statuses=TERMINAL_STATUSES,
    terminal_events=TERMINAL_EVENTS,
    delta_event="response.output_text.delta",
    completed_event="response.completed",
    cursor="starting_after=<sequence_number>",
    calls=CALL_NAMES,
    faults=PROFILE_FAULTS["responses"],
    always_background=False,
    always_live=False,
    cursor_field="seq",
    live_call="create",
    first_event="response.created",
    first_cursors=(0, 1),
    single_first_event=True,
    gapless=False,
    terminal_status_in="response",
    output_is_text=False,
    takes_request=True,
    transcript_after_end=False,
    runnable="conformance.contract:runnable_responses",
    driver="conformance.drivers.responses:ResponsesDriver",
    run="conformance.executor:CellRun",
)
