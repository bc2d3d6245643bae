"""Hand-made invocations-profile histories for checker tests.

``Run`` is what a server emitted for one invocation: its transcript (frames with durable ids),
its markers and final snapshot; ``inv_history`` turns it into the History an InvocationsRun
would record (create, live, readers, replay, resumes, get).  Tests break one thing and expect the
matching violation.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from conformance.history import FaultRecord, History, HttpCall, IncarnationRecord, SSEFrame, SteeredInput
from conformance.model import Cell, FaultSpec

IID = "inv_0123456789abcdef0123456789abcdef"
SID = "sess-1"


def text(attempt: int, indices) -> str:
    return "".join(f"a{attempt}:d{i} " for i in indices)


def iframe(n: int, kind: str, *, iid: str = IID, t: float = 0.0, incarnation: int = 0, **fields: Any) -> SSEFrame:
    data = json.dumps({"type": kind, "event_id": n, "invocation_id": iid, **fields})
    return SSEFrame(event=kind, data=data, id=str(n), raw=f"id: {n}\nevent: {kind}\ndata: {data}\n\n",
                    t=t, incarnation=incarnation)


@dataclass
class Run:
    frames: list[SSEFrame]
    markers: list[str]
    final: dict
    script: dict
    live_upto: int  # how many transcript frames the live reader saw
    crashed: bool = False
    iid: str = IID
    extra: dict = field(default_factory=dict)


class Emitter:
    def __init__(self, iid: str = IID) -> None:
        self.n = 0
        self.frames: list[SSEFrame] = []
        self.iid = iid
        self.t = 1.0
        self.incarnation = 0

    def emit(self, kind: str, **fields: Any) -> SSEFrame:
        self.n += 1
        f = iframe(self.n, kind, iid=self.iid, t=self.t, incarnation=self.incarnation, **fields)
        self.t += 0.01
        self.frames.append(f)
        return f


def normal(deltas: int = 6, *, iid: str = IID, entry_mode: str = "fresh", tag: str = "t1") -> Run:
    e = Emitter(iid)
    e.emit("invocation.started", attempt=1, entry_mode=entry_mode, **{"from": 0})
    for i in range(deltas):
        e.emit("invocation.delta", index=i, text=text(1, [i]))
    out = text(1, range(deltas))
    e.emit("invocation.completed", output=out)
    markers = [f"start attempt=1 id={iid} from=0"] + [f"delta {i}" for i in range(deltas)] + ["done"]
    final = {"invocation_id": iid, "session_id": SID, "status": "completed", "output": out, "attempt": 1,
             "entry_mode": entry_mode, "error": None, "last_event_id": e.n}
    return Run(e.frames, markers, final, {"deltas": deltas, "tag": tag}, live_upto=len(e.frames))


def crash(deltas: int = 6, hold_at: int = 3, checkpoint_every: int | None = None, attempts: int = 2) -> Run:
    """Attempt 1 emits deltas 0..hold_at, is crashed while held; each later attempt resumes after the
    last checkpoint (entry_mode recovered), the last one completes."""
    e = Emitter()
    markers: list[str] = []
    committed: dict[int, int] = {}
    start = 0
    live_upto = 0
    for attempt in range(1, attempts + 1):
        e.emit("invocation.started", attempt=attempt, entry_mode="fresh" if attempt == 1 else "recovered", **{"from": start})
        markers.append(f"start attempt={attempt} id={IID} from={start}")
        last = attempt == attempts
        for i in range(start, deltas if last else hold_at + 1):
            e.emit("invocation.delta", index=i, text=text(attempt, [i]))
            markers.append(f"delta {i}")
            if checkpoint_every and (i + 1) % checkpoint_every == 0:
                e.emit("invocation.checkpoint", index=i)
                markers.append(f"checkpoint {i}")
                for j in range(i + 1):
                    committed.setdefault(j, attempt)
        if not last:
            markers.append(f"held {hold_at}")
            if attempt == 1:
                live_upto = len(e.frames)
            e.incarnation += 1
            e.t += 2
            start = max(committed) + 1 if committed else 0
    out = "".join(f"a{committed.get(i, attempts)}:d{i} " for i in range(deltas))
    e.emit("invocation.completed", output=out)
    markers.append("done")
    final = {"invocation_id": IID, "session_id": SID, "status": "completed", "output": out, "attempt": attempts,
             "entry_mode": "recovered", "error": None, "last_event_id": e.n}
    script = {"deltas": deltas, "hold_at": hold_at, "tag": "t1"}
    if checkpoint_every:
        script["checkpoint_every"] = checkpoint_every
    return Run(e.frames, markers, final, script, live_upto=live_upto, crashed=True)


def sse(name: str, frames: list[SSEFrame], *, params: dict | None = None, ended: str = "complete",
        incarnation: int = 0, iid: str = IID) -> HttpCall:
    return HttpCall(name=name, method="GET", url=f"/invocations/{iid}", params=params or {}, status=200,
                    content_type="text/event-stream; charset=utf-8", frames=[copy.copy(f) for f in frames],
                    ended=ended, incarnation=incarnation)


def jcall(name: str, status: int, body: Any, *, method: str = "GET", params: dict | None = None) -> HttpCall:
    return HttpCall(name=name, method=method, url=f"/invocations/{IID}", status=status,
                    content_type="application/json", body=body, body_text=json.dumps(body), params=params or {})


def resume_call(run: Run, cursor: Any, via: str = "header") -> HttpCall:
    after = int(cursor)
    return sse("resume", [f for f in run.frames if int(f.id) > after],
               params={"last_event_id": str(cursor), "via": via, "cursor_label": str(cursor)}, incarnation=1 if run.crashed else 0)


def seen_ids(run: Run) -> list[int]:
    return [int(f.id) for f in run.frames[: run.live_upto]]


def inv_history(run: Run, *, readers: int = 1, resumes: Any = "seen", fault: str | None = None,
                exit_mode: str = "killed") -> History:
    """The History an InvocationsRun records for ``run``."""
    fault = fault or ("sigkill" if run.crashed else None)
    live_frames = run.frames[: run.live_upto]
    ended = "broken" if run.crashed else "complete"
    calls = [jcall("create", 200, {"invocation_id": run.iid, "session_id": SID, "status": "in_progress"}, method="POST")]
    calls.append(sse("live", live_frames, ended=ended, iid=run.iid))
    for n in range(2, readers + 1):
        calls.append(sse("reader", live_frames, params={"reader": n}, ended=ended, iid=run.iid))
    calls.append(jcall("get", 200, run.final))
    calls.append(sse("replay", run.frames, params={"cursor_label": "start"}, incarnation=1 if run.crashed else 0, iid=run.iid))
    cursors = [0] + seen_ids(run) if resumes == "seen" else list(resumes or [])
    for c in cursors:
        for via in ("header", "query"):
            calls.append(resume_call(run, c, via))
    incarnations = [IncarnationRecord(index=0, pid=100, started_at=0.0, ready_at=0.3)]
    faults: list[FaultRecord] = []
    if fault:
        incarnations[0].exited_at, incarnations[0].exit_mode = 2.0, exit_mode
        incarnations.append(IncarnationRecord(index=1, pid=101, started_at=2.1, ready_at=2.4))
        t = live_frames[-1].t + 0.001 if live_frames else 1.0
        faults.append(FaultRecord(kind=fault, trigger="held", observed="held 3", t=t, incarnation=0,
                                  exit_mode=exit_mode, restarted_as=1, last_seq_before=seen_ids(run)[-1] if live_frames else None))
    return History(cell_id="invocations/test::R1[A]", profile="invocations", script=dict(run.script),
                   run_id=run.iid, calls=calls, markers=list(run.markers), incarnations=incarnations,
                   faults=faults, final=copy.deepcopy(run.final), final_source="get", session_id=SID)


STEER_SCRIPT = {"deltas": 6, "checkpoint_every": 2, "hold_at": 2}


def wound_down(iid: str, entry_mode: str, tag: str) -> Run:
    """A turn of STEER_SCRIPT steered while held at 2: released, it winds down at the boundary
    of d3 (its next checkpoint) and ends superseded."""
    e = Emitter(iid)
    e.emit("invocation.started", attempt=1, entry_mode=entry_mode, **{"from": 0})
    markers = [f"start attempt=1 id={iid} from=0"]
    for i in range(4):
        e.emit("invocation.delta", index=i, text=text(1, [i]))
        markers.append(f"delta {i}")
        if i % 2 == 1:
            e.emit("invocation.checkpoint", index=i)
            markers.append(f"checkpoint {i}")
        if i == 2:
            markers += ["held 2", "released"]
    e.emit("invocation.superseded")
    markers.append("interrupted")
    final = {"invocation_id": iid, "session_id": SID, "status": "superseded", "output": text(1, range(4)),
             "attempt": 1, "entry_mode": entry_mode, "error": None, "last_event_id": e.n}
    return Run(e.frames, markers, final, {**STEER_SCRIPT, "tag": tag}, live_upto=len(e.frames), iid=iid)


def held_then_done(iid: str, entry_mode: str, tag: str, deltas: int = 6, hold_at: int = 2, every: int | None = 2) -> Run:
    """A turn that holds at ``hold_at``, is released and runs to its end (checkpoints every ``every``)."""
    e = Emitter(iid)
    e.emit("invocation.started", attempt=1, entry_mode=entry_mode, **{"from": 0})
    markers = [f"start attempt=1 id={iid} from=0"]
    for i in range(deltas):
        e.emit("invocation.delta", index=i, text=text(1, [i]))
        markers.append(f"delta {i}")
        if every and ((i + 1) % every == 0 or i == deltas - 1):
            e.emit("invocation.checkpoint", index=i)
            markers.append(f"checkpoint {i}")
        if i == hold_at:
            markers += [f"held {hold_at}", "released"]
    out = text(1, range(deltas))
    e.emit("invocation.completed", output=out)
    markers.append("done")
    final = {"invocation_id": iid, "session_id": SID, "status": "completed", "output": out, "attempt": 1,
             "entry_mode": entry_mode, "error": None, "last_event_id": e.n}
    script = {"deltas": deltas, "hold_at": hold_at, "tag": tag}
    if every:
        script["checkpoint_every"] = every
    return Run(e.frames, markers, final, script, live_upto=len(e.frames), iid=iid)


def steer_history(inputs: int = 1) -> History:
    """A chain of steers on STEER_SCRIPT: the first input, held at 2, is steered by input 1,
    released, and winds down at the boundary of d3 (superseded); each steered input k < inputs
    does the same when input k+1 is steered; the last completes."""
    run = wound_down(IID, "fresh", "t1")
    history = inv_history(run, resumes=[])
    history.faults.append(FaultRecord(kind="steer", trigger="held", observed="held 2", t=1.05, incarnation=0))
    for k in range(1, inputs + 1):
        sid = f"inv_{k:032d}"
        last = k == inputs
        srun = normal(iid=sid, entry_mode="resumed", tag=f"t1-s{k}") if last else wound_down(sid, "resumed", f"t1-s{k}")
        record = SteeredInput(index=k, tag=f"t1-s{k}", script={**STEER_SCRIPT, "tag": f"t1-s{k}"},
                              invocation_id=sid, post_status="queued", markers=srun.markers, final=srun.final)
        if last:
            record.script = {"deltas": 6, "tag": f"t1-s{k}"}
        if not last:
            record.observations.append(f"when input {k} was 'held 2': the first input had status 'superseded'")
        history.steered.append(record)
        history.calls.append(jcall("steer", 200, {"invocation_id": sid, "session_id": SID, "status": "queued"}, method="POST", params={"steer": k}))
        history.calls.append(sse("steer_live", srun.frames, params={"steer": k}, iid=sid))
        history.calls.append(sse("steer_replay", srun.frames, params={"steer": k, "cursor_label": "start"}, iid=sid))
    return history


def snap_call(iid: str, status: str, index: int, moment: str, starts: int, holding: int | None = None) -> HttpCall:
    params: dict[str, Any] = {"steer": index, "moment": moment, "starts": starts}
    if holding is not None:
        params["holding"] = holding
    call = jcall("steer_get", 200, {"invocation_id": iid, "session_id": SID, "status": status}, params=params)
    call.url = f"/invocations/{iid}"
    return call


def queue_history(inputs: int = 2, fault: str | None = None) -> History:
    """``inputs`` inputs queued together on STEER_SCRIPT's session while the first input is held
    at 2.  ``fault=None`` (path ``queue``): the first is released and winds down at the boundary
    of d3, superseded.  ``fault="sigkill"``: killed while held; the next lifetime ends it
    (superseded, resilient) without re-running it.  Then the queued inputs run one at a time,
    FIFO, each holding at 2 until released, each completing once (attempt 1, resumed)."""
    if fault is None:
        run = wound_down(IID, "fresh", "t1")
        history = inv_history(run, resumes=[])
        history.faults.append(FaultRecord(kind="queue", trigger="held", observed="held 2", t=1.05, incarnation=0))
    else:
        e = Emitter()
        e.emit("invocation.started", attempt=1, entry_mode="fresh", **{"from": 0})
        for i in range(3):
            e.emit("invocation.delta", index=i, text=text(1, [i]))
            if i == 1:
                e.emit("invocation.checkpoint", index=i)
        live_upto = len(e.frames)
        e.incarnation, e.t = 1, e.t + 2
        e.emit("invocation.superseded")
        markers = [f"start attempt=1 id={IID} from=0", "delta 0", "delta 1", "checkpoint 1", "delta 2", "held 2"]
        final = {"invocation_id": IID, "session_id": SID, "status": "superseded", "output": text(1, range(3)),
                 "attempt": 1, "entry_mode": "fresh", "error": None, "last_event_id": e.n}
        run = Run(e.frames, markers, final, {**STEER_SCRIPT, "tag": "t1"}, live_upto=live_upto, crashed=True)
        history = inv_history(run, resumes=[], fault=fault)
    ids = [f"inv_{k:032d}" for k in range(1, inputs + 1)]
    runs = [held_then_done(ids[k - 1], "resumed", f"t1-q{k}") for k in range(1, inputs + 1)]
    for k, srun in enumerate(runs, start=1):
        record = SteeredInput(index=k, tag=f"t1-q{k}", script={**STEER_SCRIPT, "tag": f"t1-q{k}"},
                              invocation_id=ids[k - 1], post_status="queued", markers=srun.markers, final=srun.final)
        history.steered.append(record)
        history.calls.append(jcall("steer", 200, {"invocation_id": ids[k - 1], "session_id": SID, "status": "queued"},
                                   method="POST", params={"steer": k}))
    for k, srun in enumerate(runs, start=1):
        history.calls.append(sse("steer_live", [] if fault else srun.frames, params={"steer": k},
                                 ended="broken" if fault else "complete", iid=ids[k - 1]))
    history.calls.append(snap_call(IID, "in_progress", 0, "queued", 1))
    for k in range(1, inputs + 1):
        history.calls.append(snap_call(ids[k - 1], "queued", k, "queued", 0))
    for holding in range(1, inputs + 1):
        moment = f"input {holding} held 2"
        history.calls.append(snap_call(IID, "superseded", 0, moment, 1, holding))
        for k in range(1, inputs + 1):
            status = "completed" if k < holding else "in_progress" if k == holding else "queued"
            history.calls.append(snap_call(ids[k - 1], status, k, moment, int(k <= holding), holding))
    for k, srun in enumerate(runs, start=1):
        history.calls.append(jcall("steer_get", 200, srun.final, params={"steer": k}))
        history.calls.append(sse("steer_replay", srun.frames, params={"steer": k, "cursor_label": "start"},
                                 incarnation=1 if fault else 0, iid=ids[k - 1]))
    return history


def inv_cell(expect: dict | None = None, *, fault: FaultSpec | None = None, script: dict | None = None) -> Cell:
    return Cell(contract="invocations/test", profile="invocations", row="R1", title="test row",
                path="A" if not fault or fault.kind == "none" else "C", variant=(), level="MUST",
                server={}, request={}, script=script or {"deltas": 6, "hold_at": 3},
                fault=fault or FaultSpec(), expect=expect or {})


def first(history: History, name: str, **params: Any) -> HttpCall:
    return next(c for c in history.calls_named(name) if all(c.params.get(k) == v for k, v in params.items()))


def retext(f: SSEFrame, **changes: Any) -> SSEFrame:
    """A copy of ``f`` with data fields changed (id line kept)."""
    payload = json.loads(f.data)
    payload.update(changes)
    return SSEFrame(event=f.event, data=json.dumps(payload), id=f.id, raw=f.raw, t=f.t, incarnation=f.incarnation)


def with_id(f: SSEFrame, n: int) -> SSEFrame:
    """The same event under another id (id line and event_id both)."""
    payload = json.loads(f.data)
    payload["event_id"] = n
    data = json.dumps(payload)
    return SSEFrame(event=f.event, data=data, id=str(n), raw=f"id: {n}\nevent: {f.event}\ndata: {data}\n\n",
                    t=f.t, incarnation=f.incarnation)


def msgs(violations: list) -> str:
    return "\n".join(str(v) for v in violations)
