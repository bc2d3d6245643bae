"""The schedule part of a cell's run: what to do next, in order (docs/architecture.md "A cell's
run"): send the request, wait for the path's trigger (an observation, never a timer), have the
nemesis deliver the fault, restart, follow, probe.

``ResponsesSchedule`` is the responses profile's order.  It is one layer of the cell's run
(``executor.CellRun``): it asks the client layer for the wire (``self.driver``, the polls and
probes) and the nemesis (``self.nemesis``) for every fault; it speaks no wire and signals no
process itself.
"""

from __future__ import annotations

import threading

from harness.errors import MarkerTimeout
from harness.markers import Held, Interrupted, parse_marker, parse_markers

from .client import NotTestable
from .drivers.responses import script_input, status_of
from .history import TERMINAL_STATUSES, FaultRecord
from .model import NET_FAULTS, PROCESS_FAULTS


def held_index(line: str) -> int:
    """The ``k`` of a ``held k`` line a wait for ``Held`` returned."""
    marker = parse_marker(line)
    assert isinstance(marker, Held), marker  # the wait only returns Held lines
    return marker.index


class ResponsesSchedule:
    """The responses profile's order of a cell's run (a layer of ``executor.CellRun``)."""

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
        self.history.run_id = rid
        if rid is None:  # the create call was refused: nothing more to follow
            self._join_create()
            self._finish_refused()
            return
        if fault.kind != "none":
            self._deliver_fault(rid)
        self._follow(rid)
        self._probe(rid)

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
        """A held handler emitted deltas 0..k before its marker: wait until the live stream shows them.

        The marker can be on disk before the client has read the create call's response headers
        (a loaded machine), so a call that asked for a stream is waited for until its headers
        say whether it is one: deciding by the answer's content type alone skipped the wait, and
        the fault then fired with no live frame seen (X1[C] / X1[T] "no live frame precedes the
        fault")."""
        call = self.create_call
        if call is None or not self.cell.request.get("stream", False) or not self.create_in_flight():
            return
        k = held_index(held_line)
        if k < 0:
            return
        want = k + 1

        def shown() -> bool:
            if not self.create_in_flight():
                return True
            if call.content_type is None:  # no headers yet (the transport sets it after the status)
                return False
            if not call.is_sse:  # answered with no stream: there are no live deltas to wait for
                return True
            return sum(1 for f in call.frames if f.type == "response.output_text.delta") >= want

        self.await_(shown, f"the live stream to show the {want} deltas emitted before '{held_line}'", self._last_seen)

    def _deliver_fault(self, rid: str) -> None:
        fault = self.cell.fault
        observed = self._trigger(rid)
        self._at_trigger(rid)
        record = self.nemesis.record(
            fault.kind,
            fault.describe().split("@", 1)[-1].split("+", 1)[0],
            observed,
            last_seq_before=self.live_cursor_max(),
        )
        kind = fault.kind
        if self.cell.blackbox and fault.at != "terminal":  # a fault at the terminal status comes after the run
            self._placed_before_fault(record)
        if kind in PROCESS_FAULTS:
            self.process_faulted = True
            self.nemesis.stop(record, release=self._release)
            if self.cell.blackbox:
                self._after_fault_placed(record)
            if kind == "crash_twice":
                self._second_crash(record)
            else:
                self.markers.release(self.tag)
                if fault.restart:
                    self.nemesis.restart(record)
        elif kind in NET_FAULTS:
            self.nemesis.network(self, record, rid)
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

    def _client_fault(self, kind: str, rid: str) -> None:
        """Faults the client delivers (the process stays up): disconnect, cancel, pause."""
        if kind == "disconnect":
            self.nemesis.disconnect(self.control)
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
            self.nemesis.pause_resume()
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

    def _release(self) -> None:
        """Let the cell's held handler go on (the release file of its tag)."""
        self.markers.release(self.tag)

    def _second_crash(self, first: FaultRecord) -> None:
        """crash_twice: restart without releasing, kill the recovering attempt when it holds again."""
        held_before = sum(1 for m in parse_markers(self.marker_lines()) if isinstance(m, Held))
        self.nemesis.restart(first)
        lines = self.markers.wait_count(
            self.tag, Held, held_before + 1, timeout_s=self.timeout, alive=self.target.is_alive
        )
        self.nemesis.crash("sigkill", "held", f"{lines[-1]} (recovery attempt)", release=self._release)
