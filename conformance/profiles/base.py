"""The ``Profile`` record: what the kit knows of one wire profile."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Profile:
    """One wire profile: its vocabulary, driver, runnable faults and keys, and its run class."""

    name: str
    statuses: frozenset[str]  # every status its answers may carry
    terminal_statuses: frozenset[str]
    terminal_events: frozenset[str]  # SSE event types that end a run
    delta_event: str  # the event a black-box ``first_delta`` trigger waits for
    completed_event: str  # the terminal event of a run that completed
    cursor: str  # how a read resumes: the request parameter or header and the frame field it names
    calls: tuple[str, ...]  # the call names its run records
    faults: frozenset[str]  # fault kinds its run delivers
    always_background: bool  # every run is a background run (no foreground create to disconnect)
    always_live: bool  # every run has a live stream to read, whatever the request says
    cursor_field: str  # the ``SSEFrame`` attribute a read resumes after: "seq" or "event_id"
    live_call: str  # the call whose frames are the run's live stream
    first_event: str  # the event a whole stream starts with
    first_cursors: tuple[int, ...]  # the cursors a whole stream may start at (docs/protocol.md §6)
    single_first_event: bool  # a whole stream carries its first event once
    gapless: bool  # cursors are promised without a gap (else a skipped number is a SHOULD finding)
    terminal_status_in: str  # where a terminal event names the final status: "response" (its JSON's
    #   ``response.status``) or "type" (the event type's suffix: ``invocation.completed``)
    output_is_text: bool  # a final snapshot's ``output`` is the text itself (else Response output items)
    takes_request: bool  # its cells carry request fields (else the input is the script)
    transcript_after_end: bool  # its run reads the whole stream after the end as its ``replay`` call
    runnable: str  # "module:function" adding a cell's parse-time runnability problems
    driver: str  # "module:Class" of its driver
    run: str  # "module:Class" of its cell run

    @property
    def keys(self) -> frozenset[str]:
        """The expectation keys that apply to it: the registry's (``conformance.expectations``), plugins' included."""
        from ..expectations import registry

        return frozenset(registry().for_profile(self.name))

    def cursor_of(self, frame: Any) -> int | None:
        """A recorded ``SSEFrame``'s cursor in this profile."""
        return getattr(frame, self.cursor_field)

    def terminal_status(self, frame: Any) -> str | None:
        """The final status a terminal event names, None when it names none."""
        if self.terminal_status_in == "type":
            kind = frame.type or ""
            return kind.split(".", 1)[1] if "." in kind else None
        response = frame.json.get("response") if isinstance(frame.json, dict) else None
        status = response.get("status") if isinstance(response, dict) else None
        return status if isinstance(status, str) else None

    def terminal_snapshot(self, frame: Any) -> Any:
        """The snapshot a terminal event carries: its ``response`` object, or the event itself."""
        payload = frame.json
        if self.terminal_status_in == "type":
            return payload if isinstance(payload, dict) else None
        return payload.get("response") if isinstance(payload, dict) else None

    def runnable_rules(self) -> Any:
        """Its parse-time runnability check (``conformance.contract``)."""
        return _load(self.runnable)

    def driver_class(self) -> Any:
        """Its driver class (imported on first use)."""
        return _load(self.driver)

    def run_class(self) -> Any:
        """The class that runs one of its cells: ``run_class()(cell, config, work_dir).execute()``."""
        return _load(self.run)


def _load(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)
