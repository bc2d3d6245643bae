"""Run one Cell against a target and record its History (docs/architecture.md, "A cell's run").

A cell's run joins three parts, Jepsen-style: the schedule (``schedule.py``: what to do next
and when), the client (``client.py``: talking to the server through the profile's driver,
recording every call) and the nemesis (``nemesis/``: delivering every fault through the harness
or the fault proxy).  This module wires them: it builds the target, the recorder, the driver,
the nemesis and the History, runs the schedule, and always closes the target and gathers the
evidence.  The cell's profile (``profiles/``) says which run class does it.

Problems a run meets are written into ``History.notes`` as ``executor error: ...`` or
``not testable: ...``; the checkers turn those into violations, so a cell that could not run
fails instead of passing silently.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
import uuid
from pathlib import Path

from harness.errors import HarnessError, MarkerTimeout
from harness.markers import Markers, MarkerWatch
from harness.process import Target

from .client import POLL_INTERVAL_S, CellTimeout, NotTestable, ResponsesClient, StatusStuck
from .drivers.base import Recorder, StreamControl
from .history import STUCK_PREFIX, History, IncarnationRecord
from .model import Cell
from .nemesis import Nemesis, NetFaults
from .profiles import RESPONSES, Profile, profile_of
from .schedule import ResponsesSchedule, held_index
from .targets import TargetConfig

MAX_SCAN_BYTES = 8 * 1024 * 1024

__all__ = ["POLL_INTERVAL_S", "CellRun", "CellTimeout", "NotTestable", "StatusStuck", "held_index", "run_cell"]


class CellRun(ResponsesSchedule, ResponsesClient):
    """One execution of one cell of the responses profile (the schedule and client layers above
    this class); ``profiles/invocations_run.py`` has the invocations one.  Use ``execute()``; it
    always closes the target."""

    PROFILE: Profile = RESPONSES
    DELTA_EVENT = RESPONSES.delta_event  # what a black-box `first_delta` trigger waits for
    TERMINAL_EVENT_TYPES: frozenset[str] = RESPONSES.terminal_events
    COMPLETED_EVENT = RESPONSES.completed_event

    def __init__(self, cell: Cell, config: TargetConfig, work_dir: Path) -> None:
        self.cell = cell
        self.config = config
        self.timeout = config.cell_timeout_s
        self.tag = f"{re.sub(r'[^A-Za-z0-9]', '', cell.row)[:16]}-{uuid.uuid4().hex[:12]}"
        # a black-box cell (conformance/blackbox.py) sends the target's plain input, no script
        self.script = {} if cell.blackbox else {**cell.script, "tag": self.tag}
        self.target = Target(config.spec_for(cell.server), work_dir)
        self.t0 = time.monotonic()
        self.recorder = Recorder(self.now, self._incarnation_index)
        self.history = History(
            cell_id=cell.id,
            profile=cell.profile,
            script=self.script,
            request={**cell.request},
        )
        # every fault goes through the nemesis; a network-fault cell talks to the target through
        # its fault proxy (conformance/nemesis/network.py)
        self.nemesis = Nemesis(self.target, self.now, self.history.faults,
                               net=NetFaults.for_cell(cell, self.target.port, self.timeout))
        self.net = self.nemesis.net
        self.base_url = self.net.url if self.net is not None else self.target.base_url
        self.driver = self.PROFILE.driver_class()(self.base_url, self.recorder, timeout_s=self.timeout)
        self.markers = Markers(self.target.marker_dir, log_tail=self.target.log_tail)
        self.control = StreamControl()
        self.create_thread: threading.Thread | None = None
        self.process_faulted = False

    def now(self) -> float:
        return round(time.monotonic() - self.t0, 6)

    def _incarnation_index(self) -> int:
        return max(len(self.target.incarnations) - 1, 0)

    def execute(self) -> History:
        self.marker_watch = MarkerWatch(self.markers, self.tag).start()
        try:
            self._run()
        except StatusStuck as exc:
            self.history.notes.append(f"{STUCK_PREFIX} {exc}")
        except CellTimeout as exc:
            self.history.notes.append(f"executor error: {exc}")
        except MarkerTimeout as exc:
            self.history.notes.append(f"not testable: trigger never observed: {_without_log(exc)}")
        except NotTestable as exc:
            self.history.notes.append(f"not testable: {exc}")
        except HarnessError as exc:
            self.history.notes.append(f"executor error: harness: {_without_log(exc)}")
        finally:
            streams = self._streams()
            for _, control in streams:
                control.drop()
            try:
                self.nemesis.close()
                self.target.close()
            finally:
                for thread, _ in streams:
                    thread.join(timeout=5)
                self._finish_history()
                self._close_drivers()
        return self.history

    def _streams(self) -> list[tuple[threading.Thread, StreamControl]]:
        """The reader threads this run started, each with the control that drops its connection."""
        return [(self.create_thread, self.control)] if self.create_thread is not None else []

    def _close_drivers(self) -> None:
        """Release what the drivers hold (called last, after the history is finished)."""

    def _finish_history(self) -> None:
        h = self.history
        h.calls = list(self.recorder.calls)
        h.markers = self.marker_lines()
        times = self.marker_watch.stop() if hasattr(self, "marker_watch") else []
        h.marker_times = [round(t - self.t0, 6) for t in times[: len(h.markers)]]
        h.marker_times += [self.now()] * (len(h.markers) - len(h.marker_times))
        h.incarnations = [_incarnation_record(i) for i in self.target.incarnations]
        h.state_dir_hits = self._state_hits()

    def _state_hits(self) -> list[str]:
        """State files that name this cell's tag or response id (a store=false row must leave none)."""
        needles = [self.tag.encode()]
        if self.history.run_id:
            needles.append(self.history.run_id.encode())
        hits = []
        root = Path(self.target.state_dir)
        if not root.exists():
            return hits
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.stat().st_size <= MAX_SCAN_BYTES:
                blob = path.read_bytes()
                if any(n in blob for n in needles) or any(n in path.name.encode() for n in needles):
                    hits.append(str(path.relative_to(root)))
        return hits


def _without_log(exc: HarnessError) -> str:
    """A harness error as a note, without the log tail it quotes: the plugin prints every
    incarnation log's tail under a failed cell, so the note names the log instead of quoting it
    a second time."""
    if not exc.log_tail:
        return str(exc)
    return f"{exc.message} (log: {exc.log_path})" if exc.log_path else f"{exc.message} (log tail: under the cell's failure)"


def _incarnation_record(inc: IncarnationRecord) -> IncarnationRecord:
    """A copy of the harness's live record, frozen into the History as it is now."""
    return dataclasses.replace(inc, log_path=str(inc.log_path), survivors=list(inc.survivors))


def run_cell(cell: Cell, config: TargetConfig, work_dir: Path) -> History:
    """Run one cell in ``work_dir`` (its own port, state, markers and logs) and return its History."""
    return profile_of(cell.profile).run_class()(cell, config, work_dir).execute()
