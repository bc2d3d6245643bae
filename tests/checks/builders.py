"""Hand-made, realistic histories for checker tests.

A ``Scenario`` is what a responses-profile server emitted for one script run: the live stream,
the recovered part (after a crash), the final response and the marker lines.  ``make_history``
turns it into the History an executor would record (create / replay / get calls, incarnations,
fault records).  Tests then break one thing and expect the matching violation.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any, Iterable

from conformance.history import FaultRecord, History, HttpCall, IncarnationRecord, SSEFrame
from conformance.model import Cell, FaultSpec

RID = "resp_0123456789abcdef"
TAG = "cell-tag-1"


# ---------------------------------------------------------------------------- events


def text_of(attempt: int, indices: Iterable[int]) -> str:
    return "".join(f"a{attempt}:d{i} " for i in indices)


def response_obj(status: str, output: list[dict] | None = None, error: dict | None = None) -> dict:
    return {
        "id": RID,
        "object": "response",
        "created_at": 1700000000,
        "status": status,
        "output": output or [],
        "model": "",
        "error": error,
    }


def message_item(item_id: str, text: str, status: str = "completed") -> dict:
    return {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def frame(payload: dict, *, t: float = 0.0, incarnation: int = 0) -> SSEFrame:
    data = json.dumps(payload)
    kind = payload.get("type")
    return SSEFrame(
        event=kind, data=data, raw=f"event: {kind}\ndata: {data}\n\n", t=t, incarnation=incarnation
    )


class Writer:
    """Emits frames with consecutive sequence numbers."""

    def __init__(self, start_seq: int = 0, incarnation: int = 0, t0: float = 1.0):
        self.seq = start_seq
        self.frames: list[SSEFrame] = []
        self.incarnation = incarnation
        self.t = t0

    def emit(self, kind: str, **fields: Any) -> SSEFrame:
        payload = {"type": kind, "sequence_number": self.seq, **fields}
        f = frame(payload, t=self.t, incarnation=self.incarnation)
        self.frames.append(f)
        self.seq += 1
        self.t += 0.01
        return f

    def open_message(self, oi: int, item_id: str) -> None:
        self.emit("response.output_item.added", output_index=oi, item=message_item(item_id, "", "in_progress") | {"content": []})
        self.emit(
            "response.content_part.added",
            output_index=oi,
            content_index=0,
            item_id=item_id,
            part={"type": "output_text", "text": "", "annotations": []},
        )

    def delta(self, oi: int, item_id: str, text: str) -> None:
        self.emit("response.output_text.delta", output_index=oi, content_index=0, item_id=item_id, delta=text)

    def close_message(self, oi: int, item_id: str, text: str) -> dict:
        self.emit("response.output_text.done", output_index=oi, content_index=0, item_id=item_id, text=text)
        self.emit(
            "response.content_part.done",
            output_index=oi,
            content_index=0,
            item_id=item_id,
            part={"type": "output_text", "text": text, "annotations": []},
        )
        item = message_item(item_id, text)
        self.emit("response.output_item.done", output_index=oi, item=item)
        return item

    def message(self, oi: int, item_id: str, attempt: int, indices: Iterable[int]) -> dict:
        indices = list(indices)
        self.open_message(oi, item_id)
        for i in indices:
            self.delta(oi, item_id, text_of(attempt, [i]))
        return self.close_message(oi, item_id, text_of(attempt, indices))


# ---------------------------------------------------------------------------- scenarios


@dataclass
class Scenario:
    live: list[SSEFrame]  # the create call's frames
    recovered: list[SSEFrame]  # frames emitted after the crash (empty without one)
    final: dict
    markers: list[str]
    script: dict
    last_seq_before: int | None = None
    crashed: bool = False

    @property
    def all_frames(self) -> list[SSEFrame]:
        return self.live + self.recovered


def normal_run(deltas: int = 6) -> Scenario:
    """One attempt, no fault: created, in_progress, one message, completed."""
    w = Writer()
    w.emit("response.created", response=response_obj("queued"))
    w.emit("response.in_progress", response=response_obj("in_progress"))
    item = w.message(0, "msg_1", 1, range(deltas))
    final = response_obj("completed", [item])
    w.emit("response.completed", response=final)
    markers = [f"start attempt=1 id={RID} from=0"] + [f"delta {i}" for i in range(deltas)] + ["done"]
    return Scenario(w.frames, [], final, markers, {"deltas": deltas, "tag": TAG})


def cancelled_run(deltas: int = 6, hold_at: int = 3) -> Scenario:
    """One attempt cancelled while held after ``hold_at`` (B11): the live stream ends with
    ``response.failed`` whose response is ``cancelled`` with no output."""
    w = Writer()
    w.emit("response.created", response=response_obj("queued"))
    w.emit("response.in_progress", response=response_obj("in_progress"))
    w.open_message(0, "msg_1")
    markers = [f"start attempt=1 id={RID} from=0"]
    for i in range(hold_at + 1):
        w.delta(0, "msg_1", text_of(1, [i]))
        markers.append(f"delta {i}")
    markers += [f"held {hold_at}", "interrupted"]
    final = response_obj("cancelled")
    w.emit("response.failed", response=final)
    return Scenario(w.frames, [], final, markers, {"deltas": deltas, "hold_at": hold_at, "tag": TAG})


def crash_run(
    deltas: int = 6,
    hold_at: int = 3,
    checkpoint_every: int | None = None,
    seq_gap: int = 0,
) -> Scenario:
    """Attempt 1 emits deltas 0..hold_at (checkpointing every ``checkpoint_every``), is held and
    crashed; attempt 2 resumes after the last checkpoint with a reset ``response.in_progress``
    carrying the checkpointed items, and completes.  ``seq_gap`` skips that many seqs at the
    recovery (a suppressed duplicate ``response.created``)."""
    w = Writer(incarnation=0)
    w.emit("response.created", response=response_obj("queued"))
    w.emit("response.in_progress", response=response_obj("in_progress"))
    markers = [f"start attempt=1 id={RID} from=0"]
    committed = -1
    w.open_message(0, "msg_a1")
    for i in range(hold_at + 1):
        w.delta(0, "msg_a1", text_of(1, [i]))
        markers.append(f"delta {i}")
        if checkpoint_every and (i + 1) % checkpoint_every == 0:
            markers.append(f"checkpoint {i}")
            committed = i
    markers.append(f"held {hold_at}")
    live = w.frames
    last = w.seq - 1

    start_from = committed + 1
    r = Writer(start_seq=last + 1 + seq_gap, incarnation=1, t0=5.0)
    snapshot = [message_item("msg_ckpt", text_of(1, range(start_from)))] if start_from else []
    r.emit("response.in_progress", response=response_obj("in_progress", copy.deepcopy(snapshot)))
    markers.append(f"start attempt=2 id={RID} from={start_from}")
    oi = len(snapshot)
    r.open_message(oi, "msg_a2")
    for i in range(start_from, deltas):
        r.delta(oi, "msg_a2", text_of(2, [i]))
        markers.append(f"delta {i}")
        if checkpoint_every and (i + 1) % checkpoint_every == 0:
            markers.append(f"checkpoint {i}")
    item = r.close_message(oi, "msg_a2", text_of(2, range(start_from, deltas)))
    final = response_obj("completed", snapshot + [item])
    r.emit("response.completed", response=final)
    markers.append("done")
    script = {"deltas": deltas, "hold_at": hold_at, "tag": TAG}
    if checkpoint_every:
        script["checkpoint_every"] = checkpoint_every
    return Scenario(live, r.frames, final, markers, script, last_seq_before=last, crashed=True)


# ---------------------------------------------------------------------------- histories


def sse_call(name: str, frames: list[SSEFrame], *, params: dict | None = None, ended: str = "complete",
             status: int | None = 200, incarnation: int = 0) -> HttpCall:
    return HttpCall(
        name=name,
        method="GET" if name == "replay" else "POST",
        url=f"/responses/{RID}" if name == "replay" else "/responses",
        params=params or {},
        status=status,
        content_type="text/event-stream; charset=utf-8",
        frames=[copy.copy(f) for f in frames],
        ended=ended,
        incarnation=incarnation,
    )


def json_call(name: str, status: int | None, body: Any, *, method: str = "GET", url: str | None = None,
              content_type: str = "application/json", error: str | None = None) -> HttpCall:
    return HttpCall(
        name=name,
        method=method,
        url=url or f"/responses/{RID}",
        status=status,
        content_type=content_type if status is not None else None,
        body=body,
        body_text=json.dumps(body) if body is not None else None,
        error=error,
    )


def replay_call(frames: list[SSEFrame], label: Any = "start", after: int | None = None,
                incarnation: int = 1) -> HttpCall:
    params: dict[str, Any] = {"cursor_label": label}
    if after is not None:
        params["starting_after"] = after
    chosen = [f for f in frames if after is None or (f.seq is not None and f.seq > after)]
    return sse_call("replay", chosen, params=params, incarnation=incarnation)


def mid_cursor(scn: Scenario) -> int:
    return max(1, (scn.last_seq_before or len(scn.live)) // 2)


def make_history(
    scn: Scenario,
    *,
    fault_kind: str | None = None,
    exit_mode: str = "killed",
    replays: Iterable[Any] = ("start",),
    restart: bool = True,
    with_get: bool = True,
) -> History:
    """The History an executor would record for ``scn``: a create call carrying the live
    stream, one replay per cursor label (``start``, ``mid`` or an int), a final ``get``, the
    incarnations and (for a crash scenario) the fault record."""
    fault_kind = fault_kind or ("sigkill" if scn.crashed else None)
    calls = [sse_call("create", scn.live, ended="disconnected" if scn.crashed else "complete")]
    calls[0].request_body = {"background": True, "stream": True, "store": True}
    for label in replays:
        if label == "start":
            calls.append(replay_call(scn.all_frames, "start"))
        elif label == "mid":
            calls.append(replay_call(scn.all_frames, "mid", mid_cursor(scn)))
        else:
            calls.append(replay_call(scn.all_frames, label, int(label)))
    if with_get:
        calls.append(json_call("get", 200, scn.final))
    incarnations = [IncarnationRecord(index=0, pid=1000, started_at=0.0, ready_at=0.5)]
    faults: list[FaultRecord] = []
    if fault_kind:
        incarnations[0].exited_at = 4.0
        incarnations[0].exit_code = -9 if exit_mode != "graceful" else 0
        incarnations[0].exit_mode = exit_mode
        if restart:
            incarnations.append(IncarnationRecord(index=1, pid=1001, started_at=4.1, ready_at=4.6))
        hold = scn.script.get("hold_at")
        faults.append(
            FaultRecord(
                kind=fault_kind,
                trigger="held",
                observed=f"held {hold}",
                t=3.9,
                incarnation=0,
                exit_mode=exit_mode,
                restarted_as=1 if restart else None,
                last_seq_before=scn.last_seq_before,
            )
        )
    return History(
        cell_id="responses/test::R1[C]",
        script=dict(scn.script),
        request={"background": True, "stream": True, "store": True},
        run_id=RID,
        calls=calls,
        markers=list(scn.markers),
        incarnations=incarnations,
        faults=faults,
        final=copy.deepcopy(scn.final),
        final_source="get" if with_get else "stream",
    )


def make_cell(expect: dict[str, Any] | None = None, *, fault: FaultSpec | None = None,
              script: dict | None = None) -> Cell:
    return Cell(
        contract="responses/test",
        profile="responses",
        row="R1",
        title="test row",
        path="C" if fault and fault.kind != "none" else "A",
        variant=(("stream", True),),
        level="MUST",
        server={"resilient_background": True},
        request={"background": True, "stream": True, "store": True},
        script=script or {"deltas": 6, "hold_at": 3},
        fault=fault or FaultSpec(),
        expect=expect or {},
    )


SIGKILL_HELD = FaultSpec(kind="sigkill", at="held")
SIGTERM_HELD = FaultSpec(kind="sigterm", at="held")


# ---------------------------------------------------------------------------- mutations


def retype(f: SSEFrame, **changes: Any) -> SSEFrame:
    """A copy of frame ``f`` with JSON payload fields changed (``type`` updates the event too)."""
    payload = json.loads(f.data)
    payload.update(changes)
    return frame(payload, t=f.t, incarnation=f.incarnation)


def with_seq(f: SSEFrame, seq: Any) -> SSEFrame:
    return retype(f, sequence_number=seq)


def calls(history: History, name: str) -> list[HttpCall]:
    return history.calls_named(name)


def messages(violations: list) -> str:
    """All violation texts joined, for substring assertions."""
    return "\n".join(str(v) for v in violations)

