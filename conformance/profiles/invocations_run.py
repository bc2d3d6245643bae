"""The invocations profile's cell run: its client layer (``POST /invocations``, the live ``GET``
stream and readers, the JSON snapshot poll, replay and resume by ``Last-Event-ID``), its
schedule layer (steer, queue, cancel_queued) and the run that joins them with
``executor.CellRun`` (the profile object in ``profiles/invocations.py`` names this class).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from harness.markers import Held, Start, parse_marker, parse_markers

from ..client import CellTimeout, NotTestable, ResponsesClient
from ..drivers.base import StreamControl
from ..drivers.invocations import InvocationsDriver
from ..drivers.invocations import invocation_id_of as inv_id_of
from ..drivers.invocations import script_input as inv_script_input
from ..drivers.responses import status_of
from ..executor import CellRun
from ..history import INVOCATION_TERMINAL_STATUSES, HttpCall, SteeredInput
from ..expectations import probes as expectation_probes
from ..model import QUEUE_FAULTS, Cell
from ..schedule import ResponsesSchedule, held_index
from ..targets import TargetConfig
from .base import Profile
from .invocations import INVOCATIONS

class InvocationsClient(ResponsesClient):
    """The invocations profile's wire operations (the live stream is a GET opened after the create)."""

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

    def live_cursor_max(self) -> int | None:
        return self.live_id_max()

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

    def _stream_body(self, rid: str, kwargs: dict[str, Any], labels: dict[str, Any]) -> None:
        call = self.idriver.stream(rid, **kwargs)
        call.params.update(labels)

    def _reconnect_call(self, rid: str, cursor: int | None, control: StreamControl, attempt: int) -> None:
        """Resume the live stream by ``Last-Event-ID`` after a network fault."""
        call = self.idriver.stream(rid, name="reconnect", last_event_id=cursor, control=control)
        call.params["attempt"] = attempt

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


class InvocationsSchedule(ResponsesSchedule):
    """The invocations profile's order: the live stream and readers, then steer / queue /
    cancel_queued around the path's fault."""

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
        self.history.run_id = rid
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
        rid = self.history.run_id
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

    def _client_fault(self, kind: str, rid: str) -> None:
        if kind == "disconnect":
            self.nemesis.disconnect(self.control)
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


class InvocationsRun(InvocationsSchedule, InvocationsClient, CellRun):
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

    PROFILE: Profile = INVOCATIONS
    DELTA_EVENT = INVOCATIONS.delta_event
    TERMINAL_EVENT_TYPES = INVOCATIONS.terminal_events
    COMPLETED_EVENT = INVOCATIONS.completed_event

    def __init__(self, cell: Cell, config: TargetConfig, work_dir: Path) -> None:
        super().__init__(cell, config, work_dir)
        self.idriver: InvocationsDriver = self.driver  # the profile's driver (profiles/invocations.py)
        self.streams: list[tuple[threading.Thread, StreamControl]] = []

    def _streams(self) -> list[tuple[threading.Thread, StreamControl]]:
        return list(self.streams)

    def _close_drivers(self) -> None:
        self.idriver.close()

    def _finish_history(self) -> None:
        super()._finish_history()
        for record in self.history.steered:
            record.markers = self.markers.lines(record.tag)
        if self.history.cancelled_queued is not None:
            self.history.cancelled_queued.markers = self.markers.lines(self.history.cancelled_queued.tag)

    def _state_hits(self) -> list[str]:
        return []  # invocations are always persisted; no store=false row to prove empty
