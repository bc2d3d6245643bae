"""The client part of a cell's run: talking to the server through the profile's driver, every
call recorded as an ``HttpCall`` (docs/architecture.md "A cell's run").

``ResponsesClient`` holds the responses profile's operations: the create call (in its own
thread, its frames waking any waiter), the response id, the status poll that classifies every
answer, following to the end, and the probes the expectations ask for (replays from cursors,
delete and the calls after it).  Every wait is bounded by the cell timeout and names what was
awaited and the last thing seen.  It is one layer of the cell's run (``executor.CellRun``),
whose state it uses: ``cell``, ``timeout``, ``recorder``, ``driver``, ``history``, ``markers``,
``target`` (for the log path) and ``create_thread``.  It signals no process (the nemesis does)
and decides no order (the schedule does).
"""

from __future__ import annotations

import time
from typing import Any, Callable

from harness.markers import Start, parse_markers

from .checks.terminal import TERMINAL_LABEL
from .contract import AFTER_DELETE_CALLS
from .drivers.base import StreamControl
from .expectations import probes as expectation_probes
from .drivers.responses import is_terminal_frame, response_id_of, status_of, terminal_snapshot
from .history import TERMINAL_STATUSES, HttpCall

POLL_INTERVAL_S = 0.02


class CellTimeout(Exception):
    """A bounded wait of the executor ran out; the message says what, last seen, log tail."""


class StatusStuck(CellTimeout):
    """The target kept a response from a terminal status: still non-terminal (or still 404 while
    its foreground create call stays open) at the cell deadline, or a poll of it got an answer
    that is no status at all (a 5xx, an unexpected 404, a dropped connection).  A violation of
    the row's expected status, not a problem of the kit."""


class NotTestable(Exception):
    """The cell's precondition could not be produced against this target (e.g. no trigger)."""


class ResponsesClient:
    """The responses profile's wire operations of a cell's run (a layer of ``executor.CellRun``)."""

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

    def live_cursor_max(self) -> int | None:
        """The highest cursor seen on the live stream (responses: ``sequence_number``)."""
        return self.live_seq_max()

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
