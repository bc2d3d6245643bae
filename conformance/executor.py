"""Run one Cell against a target and record its History (docs/architecture.md, "A cell's run").

The executor joins the parts: the harness (processes), the driver (wire) and the markers
(test-control evidence).  It never sleeps to synchronise: every step waits for an
observation (a marker line, a frame, a status) with a deadline, and a timeout names what was
awaited, what was last seen and the tail of the server log.

Problems the executor meets are written into ``History.notes`` as ``executor error: ...`` or
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
from typing import Any, Callable

from harness.errors import HarnessError, MarkerTimeout
from harness.markers import Held, Interrupted, Markers, MarkerWatch, Start, parse_marker, parse_markers
from harness.process import Target

from .drivers.base import Recorder, StreamControl
from .drivers.responses import (
    ResponsesDriver,
    is_terminal_frame,
    response_id_of,
    script_input,
    status_of,
    terminal_snapshot,
)
from .drivers.invocations import InvocationsDriver
from .drivers.invocations import invocation_id_of as inv_id_of
from .drivers.invocations import script_input as inv_script_input
from .history import (
    INVOCATION_TERMINAL_EVENTS,
    INVOCATION_TERMINAL_STATUSES,
    STUCK_PREFIX,
    TERMINAL_EVENTS,
    TERMINAL_STATUSES,
    FaultRecord,
    History,
    HttpCall,
    IncarnationRecord,
    SteeredInput,
)
from .checks.terminal import TERMINAL_LABEL
from .contract import AFTER_DELETE_CALLS
from .expectations import probes as expectation_probes
from .model import NET_FAULTS, PROCESS_FAULTS, QUEUE_FAULTS, Cell
from .netfaults import NetFaults
from .targets import TargetConfig

POLL_INTERVAL_S = 0.02
MAX_SCAN_BYTES = 8 * 1024 * 1024


def held_index(line: str) -> int:
    """The ``k`` of a ``held k`` line a wait for ``Held`` returned."""
    marker = parse_marker(line)
    assert isinstance(marker, Held), marker  # the wait only returns Held lines
    return marker.index


class CellTimeout(Exception):
    """A bounded wait of the executor ran out; the message says what, last seen, log tail."""


class StatusStuck(CellTimeout):
    """The target kept a response from a terminal status: still non-terminal (or still 404 while
    its foreground create call stays open) at the cell deadline, or a poll of it got an answer
    that is no status at all (a 5xx, an unexpected 404, a dropped connection).  A violation of
    the row's expected status, not a problem of the kit."""


class NotTestable(Exception):
    """The cell's precondition could not be produced against this target (e.g. no trigger)."""


class CellRun:
    """One execution of one cell.  Use ``execute()``; it always closes the target."""

    DELTA_EVENT = "response.output_text.delta"  # what a black-box `first_delta` trigger waits for
    TERMINAL_EVENT_TYPES: frozenset[str] = TERMINAL_EVENTS
    COMPLETED_EVENT = "response.completed"

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
        # a network-fault cell talks to the target through its fault proxy (conformance/netfaults.py)
        self.net = NetFaults.for_cell(cell, self.target.port, self.timeout)
        self.base_url = self.net.url if self.net is not None else self.target.base_url
        self.driver = ResponsesDriver(self.base_url, self.recorder, timeout_s=self.timeout)
        self.markers = Markers(self.target.marker_dir, log_tail=self.target.log_tail)
        self.history = History(
            cell_id=cell.id,
            profile=cell.profile,
            script=self.script,
            request={**cell.request},
        )
        self.control = StreamControl()
        self.create_thread: threading.Thread | None = None
        self.process_faulted = False

    # -- small utilities ---------------------------------------------------------------
    def now(self) -> float:
        return round(time.monotonic() - self.t0, 6)

    def _incarnation_index(self) -> int:
        return max(len(self.target.incarnations) - 1, 0)

    @property
    def create_call(self) -> HttpCall | None:
        calls = self.history_calls("create")
        return calls[0] if calls else None

    @property
    def live_stream(self) -> HttpCall | None:
        """The call whose frames are this cell's live stream (responses: the create call)."""
        return self.create_call

    def history_calls(self, name: str) -> list[HttpCall]:
        return [c for c in self.recorder.calls if c.name == name]

    def create_in_flight(self) -> bool:
        return self.create_thread is not None and self.create_thread.is_alive()

    def await_(self, predicate: Callable[[], Any], what: str, last_seen: Callable[[], str]) -> Any:
        """Wait until predicate() is truthy, bounded by the cell timeout."""
        deadline = time.monotonic() + self.timeout
        while True:
            value = predicate()
            if value:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CellTimeout(
                    f"timed out after {self.timeout:.0f}s waiting for {what}; last seen: {last_seen()}"
                    f" ({self._log_ref()})"
                )
            with self.recorder.changed:
                self.recorder.changed.wait(min(POLL_INTERVAL_S, remaining))

    def _log_ref(self) -> str:
        """Where the server's log is: a note names it, the plugin prints its tail under the failure."""
        paths = self.target.log_paths
        return f"log: {paths[-1]}" if paths else "no server log yet"

    def marker_lines(self) -> list[str]:
        return self.markers.lines(self.tag)

    def marker_id(self) -> str | None:
        return next((m.id for m in parse_markers(self.marker_lines()) if isinstance(m, Start) and m.id), None)

    def live_seq_max(self) -> int | None:
        call = self.create_call
        seqs = [f.seq for f in call.frames if f.seq is not None] if call else []
        return max(seqs) if seqs else None

    # -- the run -----------------------------------------------------------------------
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
                if self.net is not None:
                    self.net.close()
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

    def _run(self) -> None:
        cell, fault = self.cell, self.cell.fault
        self.target.start()
        if fault.kind == "none" or fault.at == "terminal":
            self.markers.release(self.tag)  # nothing to hold for: let the handler run through
        if cell.blackbox:
            plain, extra = self.config.blackbox_request(cell.profile)
            body = {**cell.request, **extra, "input": plain}
        else:
            body = {**cell.request, "input": script_input(self.script)}
        self.create_thread = threading.Thread(
            target=self.driver.create, args=(body,), kwargs={"control": self.control}, daemon=True
        )
        self.create_thread.start()
        self.await_(lambda: self.create_call is not None, "the create call to start", lambda: "nothing")
        rid = self._await_id()
        self.history.response_id = rid
        if rid is None:  # the create call was refused: nothing more to follow
            self._join_create()
            self._finish_refused()
            return
        if fault.kind != "none":
            self._deliver_fault(rid)
        self._follow(rid)
        self._probe(rid)

    def _await_id(self) -> str | None:
        """Wait until the response id is known (body, first frame or start marker) or refused."""

        def known() -> Any:
            call = self.create_call
            assert call is not None
            ended = call.ended  # read first: the transport writes it last, after the body
            rid = response_id_of(call) or self.marker_id()
            if rid:
                return rid
            if ended != "in_flight" and (call.status or 0) != 200:
                return "<refused>"
            if ended != "in_flight" and call.status == 200:
                return "<no-id>"
            return None

        rid = self.await_(known, "the response id (JSON id, response.created frame or start marker)", self._last_seen)
        if rid == "<refused>":
            return None
        if rid == "<no-id>":
            raise NotTestable("the create call succeeded but revealed no response id")
        return rid

    def _last_seen(self) -> str:
        call = self.create_call
        frames = call.frames if call else []
        last_frame = frames[-1].raw.strip()[:200] if frames else "no frame"
        status = call.status if call else None
        markers = self.marker_lines()[-3:]
        return f"create status={status}, frames={len(frames)} (last: {last_frame}), markers={markers}"

    # -- faults ------------------------------------------------------------------------
    def _trigger(self, rid: str) -> str:
        """Wait for the path's trigger; return the observation that fired it."""
        fault = self.cell.fault
        if fault.at == "held":
            line = self.markers.wait_for(self.tag, Held, timeout_s=self.timeout, alive=self.target.is_alive)
            self._catch_up_live(line)
            return line
        if fault.at == "created":
            return f"id {rid}"
        if fault.at == "first_delta":  # black-box stand-in for `held` on a live stream
            self.await_(
                lambda: any(f.type == self.DELTA_EVENT for f in (self.live_stream.frames if self.live_stream else []))
                or (self.live_stream is not None and self.live_stream.ended != "in_flight"),
                "the first delta on the live stream",
                self._last_seen,
            )
            return f"first delta ({len(self.live_stream.frames) if self.live_stream else 0} frames)"
        if fault.at == "in_progress":  # black-box stand-in for `held` without a stream
            got = self.driver.get(rid, name="poll")
            status = status_of(got)
            if got.status != 200 or status in TERMINAL_STATUSES:  # the run is not seen running: no fault to place
                raise NotTestable(
                    f"black-box: the run ended or could not be seen running (GET {got.status} status {status}) before "
                    "the fault could be placed; give the target a longer-running `blackbox.input` in its target file"
                )
            return f"GET 200 status {status}"
        if fault.at == "after_events":
            n = fault.after_events or 1
            self.await_(
                lambda: self.live_stream is not None and len(self.live_stream.frames) >= n,
                f"{n} frames on the live stream",
                self._last_seen,
            )
            return f"{n} frames"
        if fault.at == "terminal":
            return f"status {self._poll_terminal(rid)}"
        raise NotTestable(f"unknown trigger {fault.at!r}")

    def _catch_up_live(self, held_line: str) -> None:
        """A held handler emitted deltas 0..k before its marker: wait until the live stream shows them."""
        call = self.create_call
        if call is None or not call.is_sse or not self.create_in_flight():
            return
        k = held_index(held_line)
        if k < 0:
            return
        want = k + 1
        self.await_(
            lambda: sum(1 for f in call.frames if f.type == "response.output_text.delta") >= want
            or not self.create_in_flight(),
            f"the live stream to show the {want} deltas emitted before '{held_line}'",
            self._last_seen,
        )

    def _deliver_fault(self, rid: str) -> None:
        fault = self.cell.fault
        observed = self._trigger(rid)
        self._at_trigger(rid)
        record = FaultRecord(
            kind=fault.kind,
            trigger=fault.describe().split("@", 1)[-1].split("+", 1)[0],
            observed=observed,
            t=self.now(),
            incarnation=self._incarnation_index(),
            last_seq_before=self.live_cursor_max(),
        )
        self.history.faults.append(record)
        kind = fault.kind
        if self.cell.blackbox and fault.at != "terminal":  # a fault at the terminal status comes after the run
            self._placed_before_fault(record)
        if kind in PROCESS_FAULTS:
            self.process_faulted = True
            record.exit_mode = self._stop_process(kind)
            if self.cell.blackbox:
                self._after_fault_placed(record)
            if kind == "crash_twice":
                self._second_crash(record)
            else:
                self.markers.release(self.tag)
                if fault.restart:
                    record.restarted_as = self.target.restart().index
        elif kind in NET_FAULTS:
            assert self.net is not None
            self.net.deliver(self, record, rid)
        else:
            self._client_fault(kind, rid)

    def _placed_before_fault(self, record: FaultRecord) -> None:
        """Black-box: the fault must land while the run is still going.  A terminal event on the
        live stream before the fault means the run ended first: the cell is not testable (never
        a pass), and the message says what to change."""
        live = self.live_stream
        ended = [f for f in (live.frames if live else []) if f.type in self.TERMINAL_EVENT_TYPES]
        if ended:  # (the `in_progress` trigger refuses a terminal GET itself)
            what = f"{ended[0].type}#{ended[0].seq}"
            raise NotTestable(
                f"black-box: the run ended ({what}) before the {record.kind} fault "
                "could be placed; give the target a longer-running `blackbox.input` (more output, or a slower "
                "run) in its target file"
            )

    def _after_fault_placed(self, record: FaultRecord) -> None:
        """Black-box: a process fault was placed mid-run only if the faulted lifetime's live
        stream did not finish the run (a ``response.completed`` before the process died: the run
        beat the SIGKILL, or ended inside the SIGTERM grace)."""
        live = self.live_stream
        self.await_(lambda: live is None or live.ended != "in_flight", "the live stream to end with the stopped process",
                    self._last_seen)
        done = [f for f in (live.frames if live else []) if f.incarnation == record.incarnation and f.type == self.COMPLETED_EVENT]
        if done:
            raise NotTestable(
                f"black-box: the run completed ({done[0].type}#{done[0].seq}) before the {record.kind} stopped the "
                "server, so the fault did not land mid-run; give the target a longer-running `blackbox.input` "
                "(longer than its shutdown grace for SIGTERM paths)"
            )

    def _at_trigger(self, rid: str) -> None:
        """What a cell does at its trigger, before the fault itself (responses: nothing)."""

    def live_cursor_max(self) -> int | None:
        """The highest cursor seen on the live stream (responses: ``sequence_number``)."""
        return self.live_seq_max()

    def _client_fault(self, kind: str, rid: str) -> None:
        """Faults the client delivers (the process stays up): disconnect, cancel, pause."""
        if kind == "disconnect":
            self.control.drop()
            self._join_create()
            if not self.cell.request.get("background", False) and not self.cell.blackbox:
                self._await_handler_stop("the client disconnect")
            self.markers.release(self.tag)
        elif kind == "cancel":
            self.driver.cancel(rid)
            self.driver.cancel(rid, name="cancel_again")
            self.markers.release(self.tag)
        elif kind == "delete":
            self.driver.delete(rid)
            self.markers.release(self.tag)
        elif kind == "pause":
            self.target.pause()
            self.target.resume()
            self.markers.release(self.tag)
        else:
            raise NotTestable(f"fault {kind!r} is not supported by the responses executor")

    def _await_handler_stop(self, cause: str) -> None:
        """B17: a foreground disconnect cancels the run.  Releasing the hold before the server
        has reacted would let the handler run through, so wait (bounded) for its
        ``interrupted`` marker first.  A server that never reacts is recorded and released:
        the status checks then show what it did instead."""
        start = len(self.marker_lines())
        try:
            self.markers.wait_for(
                self.tag, Interrupted(), timeout_s=self.timeout, start=max(start - 1, 0), alive=self.target.is_alive
            )
        except MarkerTimeout:
            self.history.notes.append(f"observation: the handler was not stopped after {cause} within {self.timeout:.0f}s")

    def _stop_process(self, kind: str) -> str | None:
        if kind == "sigterm":
            inc = self.target.terminate()
        elif kind == "drain":
            # Release the hold right after the signal: a server that drains lets the handler
            # end within its grace; one that stops it at once shows it (status, markers).
            inc = self.target.terminate(after_signal=lambda: self.markers.release(self.tag))
        elif kind == "sigterm_then_sigkill":
            inc = self.target.terminate(grace_s=0.05)
        else:
            inc = self.target.kill()
        return inc.exit_mode

    def _second_crash(self, first: FaultRecord) -> None:
        """crash_twice: restart without releasing, kill the recovering attempt when it holds again."""
        held_before = sum(1 for m in parse_markers(self.marker_lines()) if isinstance(m, Held))
        first.restarted_as = self.target.restart().index
        lines = self.markers.wait_count(
            self.tag, Held, held_before + 1, timeout_s=self.timeout, alive=self.target.is_alive
        )
        second = FaultRecord(
            kind="sigkill",
            trigger="held",
            observed=f"{lines[-1]} (recovery attempt)",
            t=self.now(),
            incarnation=self._incarnation_index(),
        )
        self.history.faults.append(second)
        second.exit_mode = self.target.kill().exit_mode
        self.markers.release(self.tag)
        second.restarted_as = self.target.restart().index

    # -- following and probing -----------------------------------------------------------
    def _join_create(self) -> None:
        if self.create_thread is None:
            return
        self.await_(lambda: not self.create_in_flight(), "the create call to end", self._last_seen)

    def _poll_terminal(self, rid: str) -> str | None:
        """Poll GET until a terminal status; the terminal status, or None when the response is
        (finally) not found. A 404 is waited out while a foreground create is still in flight or
        after a foreground disconnect."""
        foreground = not self.cell.request.get("background", False)
        tolerate_404 = foreground and (self.cell.fault.kind == "disconnect" or self.cell.fault.is_net_fault)
        return self._poll_status(
            rid,
            lambda: self.driver.get(rid, name="poll"),
            TERMINAL_STATUSES,
            on_404=lambda: "wait" if tolerate_404 or (foreground and self.create_in_flight()) else "end",
        )

    def _poll_status(
        self, rid: str, get: Callable[[], HttpCall], terminal: frozenset[str], on_404: Callable[[], str]
    ) -> str | None:
        """Call ``get()`` until its status is in ``terminal`` (returned); classify every answer and
        fail fast on the unexpected. ``on_404()`` says what a 404 means now: ``end`` (return
        None), ``wait`` (poll on) or ``fail``. Bounded by the cell timeout."""
        started = time.monotonic()
        deadline = started + self.timeout
        last: HttpCall | None = None
        polls, since, seen = 0, started, None
        while time.monotonic() < deadline:
            last = get()
            polls += 1
            status = status_of(last)
            if last.status == 200 and status in terminal:
                return status
            if (last.status, status) != seen:
                seen, since = (last.status, status), time.monotonic()
            verdict = on_404() if last.status == 404 else ("wait" if last.status == 200 else "fail")
            if verdict == "end":
                return None
            if verdict == "fail":  # the target's answer about its own response: its violation
                raise StatusStuck(
                    f"poll of {rid} got an unexpected answer: {last.status} {(last.body_text or last.error or '')[:300]}"
                )
            with self.recorder.changed:
                self.recorder.changed.wait(POLL_INTERVAL_S)
        if last is not None and last.status == 200:
            now = time.monotonic()
            raise StatusStuck(
                f"{rid} is still {status_of(last)!r} {now - started:.0f}s after the kit began polling "
                f"(that status for the last {now - since:.0f}s, {polls} polls); last poll: 200 {(last.body_text or '')[:200]}"
            )
        if last is not None:  # only 404s the kit was told to wait through (a foreground call still open)
            now = time.monotonic()
            raise StatusStuck(
                f"{rid} still answers {last.status} {now - started:.0f}s after the kit began polling "
                f"({polls} polls; a 404 is awaited only while the create call is open, so the response "
                f"never became terminal); last poll: {last.status} {(last.body_text or '')[:200]}"
            )
        raise CellTimeout(
            f"timed out after {self.timeout:.0f}s waiting for a terminal status of {rid}: no poll was made"
            f" ({self._log_ref()})"
        )

    def _follow(self, rid: str) -> None:
        """Bring the response to its end and settle ``history.final``."""
        store = self.cell.request.get("store", True)
        if not self.process_faulted and self.create_in_flight():
            self._join_create()
        if store:
            if self.cell.fault.at != "terminal":
                self._poll_terminal(rid)
            final = self.driver.get(rid)
            if final.status == 200 and isinstance(final.body, dict):
                self.history.final, self.history.final_source = final.body, "get"
                return
        call = self.create_call
        snap = terminal_snapshot(call) if call else None
        if snap is not None:
            self.history.final = snap
            self.history.final_source = "stream" if call.is_sse else "create"
        if not store:
            self.driver.get(rid)

    def _probe(self, rid: str) -> None:
        """Calls the expectations ask for after the end: replays from cursors, delete."""
        probes = expectation_probes(self.cell)
        for cursor in probes.replays:
            self.driver.replay(rid, self._cursor(cursor), label=str(cursor))
        if probes.from_terminal:
            self._replay_from_terminal(rid)
        http = probes.calls
        if "bad_id_get" in http:  # before any delete: a server that strips the newline would find the response
            self.driver.get(rid + "%0A", name="bad_id_get")
        if "replay_cursor_twice" in http:  # two valid cursors: a server that picks one serves 200
            self.driver.replay(rid, [1, 2], label="twice", name="replay_cursor_twice")
        after_delete = sorted(set(http) & AFTER_DELETE_CALLS)
        if ("delete" in http or after_delete) and self.cell.fault.kind != "delete":
            deleted = self.driver.delete(rid)
            if after_delete and deleted.status != 200:
                self.history.notes.append(f"observation: DELETE answered {deleted.status}; the after_delete calls follow anyway")
            if after_delete:
                self.driver.get(rid, name="after_delete_get")
                self.driver.replay(rid, None, label="start", name="after_delete_replay")
                self.driver.cancel(rid, name="after_delete_cancel")
                self.driver.delete(rid, name="after_delete_delete")

    def _replay_from_terminal(self, rid: str) -> None:
        """one_terminal: replay from the first terminal event's sequence number (it must be empty);
        without a terminal seen yet, first replay from the start to find it."""
        def first_terminal() -> int | None:
            seqs = [f.seq for c in list(self.recorder.calls) if c.name in ("create", "replay") and c.status == 200
                    for f in c.frames if is_terminal_frame(f) and f.seq is not None]
            return min(seqs) if seqs else None

        seq = first_terminal()
        if seq is None:
            self.driver.replay(rid, None, label="start")
            seq = first_terminal()
        if seq is None:
            raise NotTestable("one_terminal: no stream of the response showed a terminal event to replay from")
        self.driver.replay(rid, seq, label=TERMINAL_LABEL)

    def _reconnect_call(self, rid: str, cursor: int | None, control: StreamControl, attempt: int) -> None:
        """Resume the live stream by cursor after a network fault (``starting_after``)."""
        call = self.driver.replay(rid, cursor, label=str(cursor), control=control, name="reconnect")
        call.params["attempt"] = attempt

    def _cursor(self, label: Any) -> Any:
        if label == "start":
            return None
        if label == "mid":
            if self.history.faults and self.history.faults[0].last_seq_before is not None:
                return self.history.faults[0].last_seq_before
            seqs = [f.seq for f in (self.create_call.frames if self.create_call else []) if f.seq is not None]
            return seqs[len(seqs) // 2] if seqs else 1
        return label

    def _finish_refused(self) -> None:
        call = self.create_call
        if call is not None and isinstance(call.body, dict) and call.status == 200:
            self.history.final, self.history.final_source = call.body, "create"

    # -- evidence ----------------------------------------------------------------------
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
        if self.history.response_id:
            needles.append(self.history.response_id.encode())
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


# ==========================================================================================
# invocations profile
# ==========================================================================================



class InvocationsRun(CellRun):
    """One execution of one invocations-profile cell.

    The profile's operations differ from the responses profile's: create is ``POST
    /invocations`` (answers at once with the id), the live stream is a ``GET
    /invocations/{id}`` SSE opened right after it (call ``live``; ``readers: N`` opens N-1
    more, ``reader``), polling asks for ``Accept: application/json``, the terminal statuses are
    the invocation ones, replay is the GET without a cursor and resume sends ``Last-Event-ID``
    or ``?last_event_id=``.  Faults: the process faults, ``disconnect`` (drop the live GET),
    ``cancel``, ``steer`` (POST another input on the same session at the trigger) and ``queue``
    (release the first turn once the ``queue`` expectation's inputs are POSTed).  A ``queue``
    expectation POSTs its inputs at the trigger, before the path's fault, and afterwards
    releases them one at a time (``_drive_queue``).
    """

    DELTA_EVENT = "invocation.delta"
    TERMINAL_EVENT_TYPES = INVOCATION_TERMINAL_EVENTS
    COMPLETED_EVENT = "invocation.completed"

    def __init__(self, cell: Cell, config: TargetConfig, work_dir: Path) -> None:
        super().__init__(cell, config, work_dir)
        self.driver.transport.close()  # the responses driver the base class built is not used
        self.idriver = InvocationsDriver(self.base_url, self.recorder, timeout_s=self.timeout)
        self.streams: list[tuple[threading.Thread, StreamControl]] = []

    # -- small utilities ---------------------------------------------------------------
    @property
    def live_call(self) -> HttpCall | None:
        calls = self.history_calls("live")
        return calls[0] if calls else None

    @property
    def live_stream(self) -> HttpCall | None:
        return self.live_call

    def live_in_flight(self) -> bool:
        return bool(self.streams) and self.streams[0][0].is_alive()

    def live_id_max(self) -> int | None:
        call = self.live_call
        ids = [f.event_id for f in call.frames if f.event_id is not None] if call else []
        return max(ids) if ids else None

    def _last_seen(self) -> str:
        call = self.live_call
        frames = call.frames if call else []
        last_frame = frames[-1].raw.strip()[:200] if frames else "no frame"
        status = call.status if call else None
        return (
            f"live status={status}, frames={len(frames)} (last: {last_frame}), "
            f"markers={self.marker_lines()[-3:]}"
        )

    def _open_stream(self, rid: str, name: str, labels: dict[str, Any] | None = None) -> StreamControl:
        control = self.control if name == "live" else StreamControl()
        kwargs: dict[str, Any] = {"name": name, "control": control}
        thread = threading.Thread(target=self._stream_body, args=(rid, kwargs, labels or {}), daemon=True)
        self.streams.append((thread, control))
        before = len(self.recorder.calls)
        thread.start()

        def answered() -> bool:
            # the stream's headers arrived (or it ended): a fault after this point cannot hit a
            # reader that is still connecting
            mine = [c for c in self.recorder.calls[before:] if c.name == name]
            return bool(mine) and (mine[0].status is not None or mine[0].ended != "in_flight")

        self.await_(answered, f"the {name} GET of {rid} to answer", self._last_seen)
        return control

    def _reconnect_call(self, rid: str, cursor: int | None, control: StreamControl, attempt: int) -> None:
        """Resume the live stream by ``Last-Event-ID`` after a network fault."""
        call = self.idriver.stream(rid, name="reconnect", last_event_id=cursor, control=control)
        call.params["attempt"] = attempt

    def _stream_body(self, rid: str, kwargs: dict[str, Any], labels: dict[str, Any]) -> None:
        call = self.idriver.stream(rid, **kwargs)
        call.params.update(labels)

    # -- the run -----------------------------------------------------------------------
    def _streams(self) -> list[tuple[threading.Thread, StreamControl]]:
        return list(self.streams)

    def _close_drivers(self) -> None:
        self.idriver.close()

    def _run(self) -> None:
        fault = self.cell.fault
        queued = self._queue_inputs()
        self.target.start()
        if fault.kind == "none" or fault.at == "terminal":
            self.markers.release(self.tag)
        if self.cell.blackbox:
            plain, extra = self.config.blackbox_request("invocations")
            body: dict[str, Any] = {**extra, "input": plain}
        else:
            body = {"input": inv_script_input(self.script)}
        create = self.idriver.create(body)
        rid = inv_id_of(create)
        self.history.response_id = rid
        if isinstance(create.body, dict) and isinstance(create.body.get("session_id"), str):
            self.history.session_id = create.body["session_id"]
        if rid is None:
            if create.status in (200, 202):  # both create answers the documents allow (protocol §6)
                raise NotTestable(f"POST /invocations answered {create.status} but revealed no invocation_id")
            return  # refused: the http / error expectations judge the answer
        self._open_stream(rid, "live")
        readers = self.cell.expect.get("readers")
        for n in range(2, (readers if isinstance(readers, int) else 1) + 1):
            self._open_stream(rid, "reader", {"reader": n})
        if fault.kind != "none":
            self._deliver_fault(rid)
        if queued:
            self._drive_queue()
        self._follow(rid)
        self._probe(rid)

    # -- faults ------------------------------------------------------------------------
    def _queue_inputs(self) -> int:
        """How many inputs the ``queue`` expectation POSTs (0 without one); a cell that cannot
        queue deterministically is not testable (the parser does not know this key's rules)."""
        fault, spec = self.cell.fault, self.cell.expect.get("queue")
        if spec is None:
            if fault.kind == "queue" and not self.cell.expect.get("cancel_queued"):
                raise NotTestable(f"path {self.cell.path} queues inputs: the cell must say how many with a "
                                  "queue expectation ({inputs: N})")
            return 0
        n = spec.get("inputs") if isinstance(spec, dict) else None
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise NotTestable(f"queue needs inputs: N >= 1, got {spec!r}")
        if fault.kind not in QUEUE_FAULTS or fault.at != "held":
            raise NotTestable(
                f"a queue is POSTed while the first turn is held: it needs a path '{'|'.join(sorted(QUEUE_FAULTS))}' "
                f"at held (path {self.cell.path} is {fault.describe()})"
            )
        if self.cell.script.get("hold_at") is None:
            raise NotTestable("a queue needs hold_at: the first turn and each queued input hold, so that "
                              "what is queued stays queued until it is observed and released")
        return n

    def _at_trigger(self, rid: str) -> None:
        if self.cell.expect.get("queue") is not None:
            self._post_queue()
        if self.cell.expect.get("cancel_queued"):
            self._cancel_queued()

    def _cancel_queued(self) -> None:
        """cancel_queued: the first turn is held; POST one input on its session (tag
        ``<tag>-c1``; it can only queue), cancel it (``queued_cancel``) and snapshot it
        (``queued_get``), all before the first turn is released.  Its transcript is read after
        the end (``queued_replay``) and its markers kept: a handler that ran would have written
        some."""
        session = self.history.session_id
        if session is None:
            raise NotTestable("the create answer named no session_id to queue an input on")
        tag = f"{self.tag}-c1"
        record = SteeredInput(index=1, tag=tag, script={**self.cell.script, "tag": tag})
        self.history.cancelled_queued = record
        call = self.idriver.create({"input": inv_script_input(record.script), "session_id": session}, name="queued_post")
        record.invocation_id = inv_id_of(call)
        record.post_status = status_of(call)
        if record.invocation_id is None:
            raise NotTestable(f"the input to queue was refused: {call.status} {(call.body_text or '')[:200]}")
        self.idriver.cancel(record.invocation_id, name="queued_cancel")
        self.idriver.snapshot(record.invocation_id, name="queued_get")

    def _post_queue(self) -> None:
        """The first turn is held: POST the queued inputs on its session, all of them before
        anything is released (tags ``<tag>-q1``, ``<tag>-q2``, ..., the row's script), open
        their live streams, and snapshot every input once all are acknowledged (``moment:
        queued``).  Each one answers at once; none can start while the first turn is held."""
        session = self.history.session_id
        if session is None:
            raise NotTestable("the create answer named no session_id to queue inputs on")
        for k in range(1, self._queue_inputs() + 1):
            tag = f"{self.tag}-q{k}"
            record = SteeredInput(index=k, tag=tag, script={**self.cell.script, "tag": tag})
            self.history.steered.append(record)
            call = self.idriver.create({"input": inv_script_input(record.script), "session_id": session}, name="steer")
            call.params["steer"] = k
            record.invocation_id = inv_id_of(call)
            record.post_status = status_of(call)
            if record.invocation_id is None:
                raise NotTestable(f"queued input {k} was refused: {call.status} {(call.body_text or '')[:200]}")
        for record in self.history.steered:
            assert record.invocation_id is not None
            self._open_stream(record.invocation_id, "steer_live", {"steer": record.index})
        self._observe_queue("queued")

    def _observe_queue(self, moment: str, holding: int | None = None) -> None:
        """Snapshot the first input (``steer`` 0) and every queued input, labelled with the
        moment (``holding`` = k while queued input k holds) and how many ``start`` markers that
        input had just before."""
        rid = self.history.response_id
        entries = [(0, rid, self.tag)] + [(r.index, r.invocation_id, r.tag) for r in self.history.steered]
        for index, inv_id, tag in entries:
            if inv_id is None:
                continue
            starts = sum(1 for m in parse_markers(self.markers.lines(tag)) if isinstance(m, Start))
            snap = self.idriver.snapshot(inv_id, name="steer_get")
            snap.params.update(steer=index, moment=moment, starts=starts)
            if holding is not None:
                snap.params["holding"] = holding
            if index > 0:
                self.history.steered[index - 1].observations.append(
                    f"{moment}: status {status_of(snap)!r}, {starts} start marker(s)"
                )

    def _drive_queue(self) -> None:
        """After the fault (and restart), the queued inputs run one at a time: wait until input k
        holds, snapshot every input (``moment: "input k held h"``), release input k, go on.  If
        an input behind k starts while k has not held, that is the moment to observe (FIFO is
        broken): snapshot it, release everything and let the checks say what happened."""
        records = self.history.steered
        for n, record in enumerate(records):
            behind = records[n + 1 :]

            def ready() -> tuple[str, Any] | None:
                held = next((line for line in self.markers.lines(record.tag) if isinstance(parse_marker(line), Held)), None)
                if held is not None:
                    return ("held", held)
                for other in behind:
                    if any(isinstance(m, Start) for m in parse_markers(self.markers.lines(other.tag))):
                        return ("jumped", other)
                if not self.target.is_alive():
                    return ("died", None)
                return None

            def last_seen() -> str:
                return "; ".join(f"input {r.index}: {self.markers.lines(r.tag)[-3:] or 'no marker'}" for r in records)

            kind, what = self.await_(
                ready, f"queued input {record.index} ({record.invocation_id}) to hold ('held N' in {record.tag}.log)", last_seen
            )
            if kind == "died":
                raise CellTimeout(f"the server exited while waiting for queued input {record.index} to hold; "
                                  f"last seen: {last_seen()} ({self._log_ref()})")
            if kind == "jumped":
                self._observe_queue(f"input {what.index} started before input {record.index} held", holding=record.index)
                for other in records[n:]:
                    self.markers.release(other.tag)
                return
            self._observe_queue(f"input {record.index} {what}", holding=record.index)
            self.markers.release(record.tag)

    def _catch_up_live(self, held_line: str) -> None:
        """Deltas 0..k were emitted before ``held k``: wait until the live stream shows delta k."""
        k = held_index(held_line)
        call = self.live_call
        if k < 0 or call is None:
            return

        def shown() -> bool:
            for f in call.frames:
                payload = f.json
                if f.type == "invocation.delta" and isinstance(payload, dict) and payload.get("index") == k:
                    return True
            return not self.live_in_flight()

        self.await_(shown, f"the live stream to show delta {k} (emitted before '{held_line}')", self._last_seen)

    def live_cursor_max(self) -> int | None:
        return self.live_id_max()

    def _client_fault(self, kind: str, rid: str) -> None:
        if kind == "disconnect":
            self.control.drop()
            self.await_(lambda: not self.live_in_flight(), "the live GET to end after the drop", self._last_seen)
            self.markers.release(self.tag)
        elif kind == "cancel":
            self.idriver.cancel(rid)
            self.idriver.cancel(rid, name="cancel_again")
            self.markers.release(self.tag)
        elif kind == "steer":
            self._steer(rid)
        elif kind == "queue":
            self.markers.release(self.tag)  # the inputs are queued: the first turn goes on to its next checkpoint
        else:
            raise NotTestable(f"fault {kind!r} is not supported by the invocations executor")

    def _steer(self, rid: str) -> None:
        """A chain of ``steering.inputs`` steered inputs on the first input's session: input k is
        POSTed while the turn before it (the first input, then input k-1) is held; once the POST
        is answered that turn is released, and it winds down at its next checkpoint boundary (or
        runs to its end); input k+1 is POSTed only once input k holds, and at that moment the
        turn before input k is probed (``steer_get``): one turn at a time means it is already
        terminal.  The last input is released up front and runs to completion."""
        session = self.history.session_id
        if session is None:
            raise NotTestable("the create answer named no session_id to steer")
        spec = self.cell.expect.get("steering")
        count = spec.get("inputs", 1) if isinstance(spec, dict) else 1
        previous_tag, previous_id, previous_name = self.tag, rid, "the first input"
        for k in range(1, count + 1):
            tag = f"{self.tag}-s{k}"
            script = {**self.cell.script, "tag": tag}
            record = SteeredInput(index=k, tag=tag, script=script)
            self.history.steered.append(record)
            if k == count:
                self.markers.release(tag)  # the last input runs through
            call = self.idriver.create({"input": inv_script_input(script), "session_id": session}, name="steer")
            call.params["steer"] = k
            record.invocation_id = inv_id_of(call)
            record.post_status = status_of(call)
            if record.invocation_id is None:
                raise NotTestable(f"steered input {k} was refused: {call.status} {(call.body_text or '')[:200]}")
            self._open_stream(record.invocation_id, "steer_live", {"steer": k})
            self.markers.release(previous_tag)  # the steer is acknowledged: let the held step finish
            if k < count:
                line = self.markers.wait_for(tag, Held, timeout_s=self.timeout, alive=self.target.is_alive)
                snap = self.idriver.snapshot(previous_id, name="steer_get")
                snap.params["steer"] = k - 1
                record.observations.append(
                    f"when input {k} was '{line}': {previous_name} had status {status_of(snap)!r}"
                )
            previous_tag, previous_id, previous_name = tag, record.invocation_id, f"steered input {k}"

    # -- following and probing -----------------------------------------------------------
    def _poll_terminal(self, rid: str, labels: dict[str, Any] | None = None) -> str | None:
        """Poll the JSON snapshot until a terminal status; anything but 200 fails at once."""

        def get() -> HttpCall:
            call = self.idriver.snapshot(rid, name="poll")
            call.params.update(labels or {})
            return call

        return self._poll_status(rid, get, INVOCATION_TERMINAL_STATUSES, on_404=lambda: "fail")

    def _follow(self, rid: str) -> None:
        if self.cell.fault.at != "terminal":
            self._poll_terminal(rid)
        final = self.idriver.snapshot(rid)
        if final.status == 200 and isinstance(final.body, dict):
            self.history.final, self.history.final_source = final.body, "get"
        for record in self.history.steered:
            if record.invocation_id is None:
                continue
            self._poll_terminal(record.invocation_id, {"steer": record.index})
            snap = self.idriver.snapshot(record.invocation_id, name="steer_get")
            snap.params["steer"] = record.index
            if snap.status == 200 and isinstance(snap.body, dict):
                record.final = snap.body
        # the live streams end right after the terminal event: wait for them (bounded)
        self.await_(
            lambda: not any(t.is_alive() for t, c in self.streams if not c.dropped.is_set())
            or self.process_faulted,
            "the live streams to end after the terminal event",
            self._last_seen,
        )

    def _probe(self, rid: str) -> None:
        probes = expectation_probes(self.cell)
        if probes.transcript:
            self.idriver.stream(rid, name="replay", label="start")
        for record in self.history.steered:
            if record.invocation_id is not None:
                call = self.idriver.stream(record.invocation_id, name="steer_replay", label="start")
                call.params["steer"] = record.index
        queued = self.history.cancelled_queued
        if queued is not None and queued.invocation_id is not None:
            self.idriver.snapshot(queued.invocation_id, name="queued_get")
            self.idriver.stream(queued.invocation_id, name="queued_replay", label="start")
        resume = probes.resume
        if resume is not None:
            vias = resume.get("via", "both")
            vias = ("header", "query") if vias == "both" else (vias,)
            for cursor in self._resume_cursors(resume.get("from", "seen")):
                for via in vias:
                    self.idriver.stream(rid, name="resume", last_event_id=cursor, via=via, label=str(cursor))

    def _resume_cursors(self, spec: Any) -> list[Any]:
        items = spec if isinstance(spec, list) else [spec]
        out: list[Any] = []
        for item in items:
            if item == "seen":
                for cursor in [0] + self._seen_ids():
                    if cursor not in out:
                        out.append(cursor)
            elif item not in out:
                out.append(item)
        return out

    def _seen_ids(self) -> list[int]:
        """Every id the client saw live before the first fault (all of them without a fault)."""
        call = self.live_call
        if call is None:
            return []
        faults = self.history.faults
        frames = call.frames
        if faults:
            frames = [f for f in frames if f.t <= faults[0].t]
        return sorted({f.event_id for f in frames if f.event_id is not None})

    def _finish_history(self) -> None:
        super()._finish_history()
        for record in self.history.steered:
            record.markers = self.markers.lines(record.tag)
        if self.history.cancelled_queued is not None:
            self.history.cancelled_queued.markers = self.markers.lines(self.history.cancelled_queued.tag)

    def _state_hits(self) -> list[str]:
        return []  # invocations are always persisted; no store=false row to prove empty



def run_cell(cell: Cell, config: TargetConfig, work_dir: Path) -> History:
    """Run one cell in ``work_dir`` (its own port, state, markers and logs) and return its History."""
    if cell.profile == "invocations":
        return InvocationsRun(cell, config, work_dir).execute()
    return CellRun(cell, config, work_dir).execute()
