"""The invocations runtime: invocations, sessions (steering queues), drain and recovery.

An :class:`Invocation` is one accepted turn. It owns its event ids: every event is appended to
the invocation's durable event log (``store.events``, ``sequence_number`` == event id, ids from
1, no gap, no reuse, across lifetimes) *before* any reader can see it, so an id means the same
event forever. A :class:`Session` runs its turns one at a time: a turn posted while another runs
is ``queued``; the running turn winds down at its next checkpoint boundary and ends
``superseded`` (a turn with no boundary left before its end completes); queued turns then run
FIFO with ``entry_mode: resumed``. A steer never stops a turn in the middle of a step: a held
handler stays held until it is released, then runs on to that boundary.

Storage reuses the responses profile's record kinds, told apart by ``"profile": "invocations"``:

* ``task/<inv id>``: the unfinished invocation (script, session, status ``queued`` or
  ``in_progress``, queue order, attempt, entry mode, last checkpoint, resilient flag fixed at
  accept time, ``supersede_requested`` once a turn is queued behind it). Written before the POST
  is answered; deleted once a terminal is persisted.
* ``response/<inv id>``: ``{"profile": "invocations", "snapshot": {...}}``, the JSON snapshot,
  rewritten when an attempt starts and when a terminal is persisted.

Terminal order: terminal event appended (the log is the authority), snapshot, task deleted.

=================================  ==========================================================
stop reason                        effect
=================================  ==========================================================
``cancel``                         ``cancelled`` + ``invocation.cancelled``
``supersede`` (steering, at the    ``superseded`` + ``invocation.superseded``
next checkpoint boundary)
``shutdown``, all deltas emitted   ``completed`` (its final output was already produced)
``shutdown``, resilient            nothing persisted: the next lifetime recovers the run
``shutdown``, not resilient        ``interrupted`` + ``invocation.interrupted``
=================================  ==========================================================
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import script as script_mod
from .attempt import HandlerAttempt
from .feed import LiveFeed
from .markers import MarkerWriter
from .retry import get_with_retry
from .stores import KIND_RESPONSE, KIND_TASK, StoreError, StoreTransientError

if TYPE_CHECKING:
    from .runtime import Runtime

log = logging.getLogger("reference_impl.invocations")

PROFILE = "invocations"
STATUSES = ("queued", "in_progress", "completed", "failed", "cancelled", "interrupted", "superseded")
TERMINAL_EVENTS = {
    "invocation.completed": "completed",
    "invocation.failed": "failed",
    "invocation.cancelled": "cancelled",
    "invocation.interrupted": "interrupted",
    "invocation.superseded": "superseded",
}
TERMINAL_STATUSES = frozenset(TERMINAL_EVENTS.values())
ENTRY_FRESH, ENTRY_RECOVERED, ENTRY_RESUMED = "fresh", "recovered", "resumed"
STOP_PRIORITY = {"shutdown": 0, "supersede": 1, "cancel": 2}


def new_invocation_id() -> str:
    return "inv_" + uuid.uuid4().hex


def new_session_id() -> str:
    return "sess_" + uuid.uuid4().hex


def wire(stored: dict[str, Any]) -> dict[str, Any]:
    """The wire ``data`` of a stored event (the log's ``sequence_number`` is the frame id)."""
    return {k: v for k, v in stored.items() if k != "sequence_number"}


def output_from_log(events: list[dict[str, Any]]) -> str:
    """The text an invocation had produced: for each delta index, the latest attempt's text.

    Attempts start at their checkpoint (``from`` never decreases), so this is the checkpointed
    carry-over followed by the last attempt's deltas.
    """
    texts: dict[int, str] = {}
    last_from = 0
    for e in events:
        if e.get("type") == "invocation.started":
            last_from = int(e.get("from", 0))
            for k in [k for k in texts if k >= last_from]:
                del texts[k]
        elif e.get("type") == "invocation.delta" and isinstance(e.get("index"), int):
            texts[e["index"]] = str(e.get("text", ""))
    return "".join(texts[k] for k in sorted(texts))


class Invocation(HandlerAttempt):
    """One accepted invocation in this process; also the handler's run context (script.RunContext)."""

    checkpointing = True  # invocations persist checkpoints in both modes

    def __init__(self, irt: InvocationRuntime, task: dict[str, Any], *, status: str, next_id: int, output: str = "") -> None:
        self.irt = irt
        self.task = task
        self.id: str = task["id"]
        self.session_id: str = task["session_id"]
        self.raw_script: dict[str, Any] | None = task.get("script")
        self.status = status
        self.attempt: int = int(task.get("attempt", 0))
        self.entry_mode: str = task.get("entry_mode", ENTRY_FRESH)
        self.error: dict[str, Any] | None = None
        self.output = output
        self.next_id = next_id
        self.start_delta = 0
        self._next_delta = 0
        self._began = False
        self.feed = LiveFeed("event_id", frozenset(TERMINAL_EVENTS))  # wire events of this lifetime
        self.done = asyncio.Event()
        self.stop_reason: str | None = None
        self.supersede_requested = bool(task.get("supersede_requested", False))

    # ------------------------------------------------------------------ views
    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def last_event_id(self) -> int:
        return self.next_id - 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "invocation_id": self.id,
            "session_id": self.session_id,
            "status": self.status,
            "output": self.output,
            "attempt": self.attempt,
            "entry_mode": self.entry_mode,
            "error": self.error,
            "last_event_id": self.last_event_id,
        }

    # ------------------------------------------------------------------ persistence, events
    def persist_snapshot(self) -> None:
        self.irt.store.records.put(KIND_RESPONSE, self.id, {"profile": PROFILE, "snapshot": self.snapshot()})

    def _append(self, type_: str, **fields: Any) -> dict[str, Any]:
        """Make the next event durable (not yet visible to readers)."""
        eid = self.next_id
        data = {"type": type_, "event_id": eid, "invocation_id": self.id, **fields}
        self.irt.store.events.append(self.id, {**data, "sequence_number": eid})
        self.next_id = eid + 1
        return data

    def _emit(self, type_: str, **fields: Any) -> dict[str, Any]:
        data = self._append(type_, **fields)
        self.feed.publish(data)
        return data

    # ------------------------------------------------------------------ the handler's API (script.RunContext)
    def begin(self) -> None:
        self._began = True
        self._emit("invocation.started", attempt=self.attempt, entry_mode=self.entry_mode, **{"from": self.start_delta})

    def open_item(self) -> None:
        """No items on this wire: deltas carry their index."""

    def close_item(self) -> None:
        """No items on this wire."""

    def delta(self, text: str) -> None:
        index = self._next_delta
        self._emit("invocation.delta", index=index, text=text)
        self.output += text
        self._next_delta = index + 1

    def checkpoint(self, next_delta: int) -> None:
        """Persist the checkpoint, then emit ``invocation.checkpoint``; a pending supersede stops here,
        unless this checkpoint covers the last delta (the final output exists: the turn completes)."""
        self.task["checkpoint"] = {"next_delta": next_delta, "output": self.output}
        self.irt.store.records.put(KIND_TASK, self.id, self.task)
        self._emit("invocation.checkpoint", index=next_delta - 1)
        if self.supersede_requested and not self._final_output_produced():
            self.stop("supersede")  # delivered at the handler's next await: no delta after this point

    def complete(self) -> None:
        self._terminal("completed", "invocation.completed", output=self.output)

    def fail(self, code: str, message: str) -> None:
        if self.terminal:
            return
        self.error = {"code": code, "message": message}
        self._terminal("failed", "invocation.failed", error=dict(self.error))

    def _terminal(self, status: str, event_type: str, **fields: Any) -> None:
        """Event first (the log is the authority), then the snapshot, then the task record goes."""
        self.status = status
        data = self._append(event_type, **fields)
        self.persist_snapshot()
        self.irt.store.records.delete(KIND_TASK, self.id)
        self.feed.publish(data)

    def _final_output_produced(self) -> bool:
        if not self._began:
            return False
        try:
            parsed = script_mod.parse_script(self.raw_script)
        except script_mod.HandlerFailure:
            return False
        return self._next_delta >= parsed.deltas

    # ------------------------------------------------------------------ lifecycle
    def start_attempt(self, attempt: int, entry_mode: str, *, start_delta: int = 0, carry: str = "", persist: bool = True) -> None:
        """Make the attempt durable (task record, then snapshot), then run the handler."""
        self.task.update(status="in_progress", attempt=attempt, entry_mode=entry_mode)
        self.status = "in_progress"
        self.attempt = attempt
        self.entry_mode = entry_mode
        self.start_delta = self._next_delta = start_delta
        self.output = carry
        if persist:
            self.irt.store.records.put(KIND_TASK, self.id, self.task)
        self.persist_snapshot()
        self.launch(f"invocation-{self.id}")

    def stop(self, reason: str) -> bool:
        """Stop the handler (cancel | supersede | shutdown); False if it is not running."""
        if self.closed or self.terminal or self.handle is None or self.handle.done():
            return False
        if self.stop_reason is None or STOP_PRIORITY[reason] > STOP_PRIORITY[self.stop_reason]:
            self.stop_reason = reason
        self.handle.cancel()
        return True

    def set_supersede(self, requested: bool) -> None:
        """A newer turn is queued behind this one (or no longer is): wind down at the next checkpoint
        boundary. Never stops the handler here, held or not. The flag is persisted in the task
        record before the POST that queued the newer turn is answered, so that recovery knows this
        turn had been asked to stop (a turn queued *before* it started never asks it to stop)."""
        changed = self.supersede_requested != requested
        self.supersede_requested = requested
        if changed and not (self.terminal or self.closed):
            self.task["supersede_requested"] = requested
            self.irt.store.records.put(KIND_TASK, self.id, self.task)

    def _script(self) -> tuple[dict[str, Any] | None, str | None]:
        return self.raw_script, self.irt.marker_dir

    @property
    def ended(self) -> bool:
        return self.terminal

    def _stopped(self) -> None:
        if self.terminal:
            return
        reason = self.stop_reason or "shutdown"
        if reason == "cancel":
            self._guarded(self._terminal, "cancelled", "invocation.cancelled")
        elif reason == "supersede":
            self._guarded(self._terminal, "superseded", "invocation.superseded")
        elif self._final_output_produced():
            self._guarded(self.complete)
            MarkerWriter(self.irt.marker_dir, script_mod.valid_tag(self.raw_script)).write("done")
            log.info("%s completed during shutdown (its final output was already produced)", self.id)
        elif self.task.get("resilient"):
            log.info("%s left in_progress for the next lifetime (attempt %d)", self.id, self.attempt)
        else:
            self._guarded(self._terminal, "interrupted", "invocation.interrupted")

    def cancel_queued(self) -> None:
        """Cancel a turn that never started (no handler, no markers)."""
        self._terminal("cancelled", "invocation.cancelled")
        self.close()

    def close(self) -> None:
        """No more events in this lifetime: readers end, the session moves on."""
        if self.closed:
            return
        self.feed.close()
        self.done.set()
        self.irt.ended(self)


@dataclass
class Session:
    """One session: at most one running turn, then the queued ones, FIFO."""

    id: str
    active: Invocation | None = None
    queue: deque[Invocation] = field(default_factory=deque)

    @property
    def busy(self) -> bool:
        return self.active is not None or bool(self.queue)


@dataclass
class _Unfinished:
    task: dict[str, Any]
    snapshot: dict[str, Any]
    events: list[dict[str, Any]]


class InvocationRuntime:
    """All invocations and sessions of this process; drain on shutdown; the recovery scan."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.live: dict[str, Invocation] = {}
        self.sessions: dict[str, Session] = {}
        self._last_seq = 0

    @property
    def store(self) -> Any:
        return self.rt.store

    @property
    def marker_dir(self) -> str | None:
        return self.rt.config.marker_dir

    @property
    def resilient(self) -> bool:
        return bool(getattr(self.rt.config, "resilient_invocations", False))

    @property
    def retention(self) -> int:
        return int(getattr(self.rt.config, "event_retention", 0))

    def _queue_seq(self) -> int:
        self._last_seq = max(time.time_ns(), self._last_seq + 1)
        return self._last_seq

    # ------------------------------------------------------------------ create, cancel, lookups
    def create(self, raw_script: dict[str, Any] | None, session_id: str | None) -> Invocation:
        """Accept a turn: durable before the caller answers; runs now, or queues behind a busy session."""
        sid = session_id or new_session_id()
        session = self.sessions.get(sid)
        if session is None:
            session = self.sessions[sid] = Session(sid)
        queued = session.busy
        task = {
            "profile": PROFILE,
            "id": new_invocation_id(),
            "session_id": sid,
            "script": raw_script,
            "status": "queued" if queued else "in_progress",
            "queue_seq": self._queue_seq(),
            "attempt": 0 if queued else 1,
            "entry_mode": ENTRY_RESUMED if queued else ENTRY_FRESH,
            "checkpoint": None,
            "resilient": self.resilient,
            "accepted_at": int(time.time()),
        }
        self.store.records.put(KIND_TASK, task["id"], task)
        inv = Invocation(self, task, status="queued", next_id=1)
        self.live[inv.id] = inv
        if queued:
            inv.persist_snapshot()
            session.queue.append(inv)
            if session.active is not None:
                session.active.set_supersede(True)
        else:
            session.active = inv
            inv.start_attempt(1, ENTRY_FRESH, persist=False)
        return inv

    def snapshot(self, inv_id: str) -> dict[str, Any] | None:
        inv = self.live.get(inv_id)
        if inv is not None:
            return inv.snapshot()
        env = self.store.records.get(KIND_RESPONSE, inv_id)
        if env is None or env.get("profile") != PROFILE:
            return None
        return env["snapshot"]

    def cancel_orphan(self, inv_id: str, snap: dict[str, Any]) -> dict[str, Any]:
        """Cancel a persisted unfinished invocation with no live object here (e.g. during a drain)."""
        last = self.store.events.last_seq(inv_id) or 0
        self.store.events.append(
            inv_id, {"type": "invocation.cancelled", "event_id": last + 1, "invocation_id": inv_id, "sequence_number": last + 1}
        )
        snap = dict(snap, status="cancelled", last_event_id=last + 1)
        self.store.records.put(KIND_RESPONSE, inv_id, {"profile": PROFILE, "snapshot": snap})
        self.store.records.delete(KIND_TASK, inv_id)
        return snap

    def ended(self, inv: Invocation) -> None:
        """An invocation closed: forget it, and let its session run the next queued turn."""
        if self.live.get(inv.id) is inv:
            del self.live[inv.id]
        session = self.sessions.get(inv.session_id)
        if session is None:
            return
        if session.active is inv:
            session.active = None
        elif inv in session.queue:
            session.queue.remove(inv)  # a queued turn was cancelled (or closed by a drain)
            if not session.queue and session.active is not None and not self.rt.shutting_down:
                try:
                    session.active.set_supersede(False)  # nothing is waiting to replace it any more
                except StoreError:
                    log.exception("could not clear the supersede request of %s", session.active.id)
        self._pump(session)

    def _pump(self, session: Session) -> None:
        if session.active is not None or self.rt.shutting_down:
            return
        if not session.queue:
            self.sessions.pop(session.id, None)
            return
        nxt = session.queue.popleft()
        session.active = nxt
        try:
            nxt.start_attempt(1, ENTRY_RESUMED)
        except StoreError:
            log.exception("could not start queued %s; left for the next lifetime", nxt.id)
            session.active = None

    # ------------------------------------------------------------------ shutdown
    async def wind_down(self, grace: float) -> None:
        """Running turns go on for ``grace`` seconds, then are stopped (disposition per stop table)."""
        running = [inv for inv in self.live.values() if inv.handle is not None and not inv.closed]
        if running:
            log.info("shutdown: %d invocation(s) running, grace %.3gs", len(running), grace)
            waiters = [asyncio.ensure_future(inv.done.wait()) for inv in running]
            _, still = await asyncio.wait(waiters, timeout=grace)
            for w in still:
                w.cancel()
        remaining = [inv for inv in self.live.values() if inv.handle is not None and not inv.closed]
        if remaining:
            log.info("shutdown: grace exhausted, stopping %d invocation(s)", len(remaining))
        for inv in remaining:
            inv.stop("shutdown")
        if remaining:
            ends = [asyncio.ensure_future(inv.done.wait()) for inv in remaining]
            _, still = await asyncio.wait(ends, timeout=1.0)
            for w in still:
                w.cancel()
        for inv in list(self.live.values()):
            inv.close()  # queued turns stay queued on disk; their readers end now

    # ------------------------------------------------------------------ recovery
    async def recover(self) -> None:
        """The startup scan (before readiness): settle, interrupt, supersede, re-run or re-queue."""
        try:
            tasks = [t for t in self.store.records.list_unfinished() if t.get("profile") == PROFILE]
        except StoreError as exc:
            log.error("invocations recovery: cannot list task records (%s); nothing recovered", exc)
            return
        by_session: dict[str, list[_Unfinished]] = {}
        for task in sorted(tasks, key=lambda t: int(t.get("queue_seq", 0))):
            inv_id = task.get("id")
            if not isinstance(inv_id, str) or not isinstance(task.get("session_id"), str):
                continue
            self._last_seq = max(self._last_seq, int(task.get("queue_seq", 0)))
            try:
                found = await self._examine(inv_id, task)
            except StoreTransientError as exc:
                log.warning("recovery: %s left for later, store unavailable: %s", inv_id, exc)
                continue
            except Exception:
                log.exception("recovery: %s could not be examined; left for the next lifetime", inv_id)
                continue
            if found is not None:
                by_session.setdefault(task["session_id"], []).append(found)
        for sid, items in by_session.items():
            try:
                self._recover_session(sid, items)
            except Exception:
                log.exception("recovery: session %s could not be recovered", sid)

    async def _get_with_retry(self, inv_id: str) -> dict[str, Any] | None:
        return await get_with_retry(self.store.records, KIND_RESPONSE, inv_id)

    async def _examine(self, inv_id: str, task: dict[str, Any]) -> _Unfinished | None:
        env = await self._get_with_retry(inv_id)
        if env is None or env.get("profile") != PROFILE:
            # The POST was never answered (crash between the task and the snapshot): drop it.
            self.store.records.delete(KIND_TASK, inv_id)
            self.store.events.delete(inv_id)
            log.info("recovery: %s dropped (never acknowledged)", inv_id)
            return None
        events = self.store.events.read(inv_id)
        snap = env["snapshot"]
        if events and events[-1].get("type") in TERMINAL_EVENTS:
            last = events[-1]
            fixed = dict(snap, status=TERMINAL_EVENTS[last["type"]], last_event_id=last["sequence_number"])
            if last["type"] == "invocation.completed":
                fixed["output"] = last.get("output", fixed.get("output", ""))
            if last["type"] == "invocation.failed":
                fixed["error"] = last.get("error")
            self.store.records.put(KIND_RESPONSE, inv_id, {"profile": PROFILE, "snapshot": fixed})
            self.store.records.delete(KIND_TASK, inv_id)
            return None
        if snap.get("status") in TERMINAL_STATUSES:
            self.store.records.delete(KIND_TASK, inv_id)
            return None
        return _Unfinished(task, snap, events)

    def _settle(self, item: _Unfinished, event_type: str) -> None:
        """Append a terminal for a turn that will not run again (no handler), then persist it."""
        inv_id = item.task["id"]
        last = item.events[-1]["sequence_number"] if item.events else 0
        eid = last + 1
        self.store.events.append(inv_id, {"type": event_type, "event_id": eid, "invocation_id": inv_id, "sequence_number": eid})
        snap = dict(item.snapshot, status=TERMINAL_EVENTS[event_type], output=output_from_log(item.events), last_event_id=eid)
        self.store.records.put(KIND_RESPONSE, inv_id, {"profile": PROFILE, "snapshot": snap})
        self.store.records.delete(KIND_TASK, inv_id)
        log.info("recovery: %s marked %s", inv_id, snap["status"])

    def _recover_session(self, sid: str, items: list[_Unfinished]) -> None:
        session = Session(sid)
        running = [i for i in items if i.task.get("status") == "in_progress"]
        queued = [i for i in items if i.task.get("status") != "in_progress"]
        rerun: _Unfinished | None = None
        for item in running:
            if not item.task.get("resilient"):
                self._settle(item, "invocation.interrupted")  # orphan of a non-resilient lifetime
            elif (item.task.get("supersede_requested") and queued) or rerun is not None:
                self._settle(item, "invocation.superseded")  # it had been asked to stop for a queued turn
            else:
                # Not asked to stop (the queued turns, if any, were queued before it started), or
                # the turn that asked was cancelled before the crash could clear the flag: re-run.
                rerun = item
        for item in queued:
            last_id = item.events[-1]["sequence_number"] if item.events else 0
            inv = Invocation(self, item.task, status="queued", next_id=last_id + 1)
            self.live[inv.id] = inv
            session.queue.append(inv)
        self.sessions[sid] = session
        if rerun is not None:
            task = rerun.task
            cp = task.get("checkpoint") or {}
            last = rerun.events[-1]["sequence_number"] if rerun.events else 0
            inv = Invocation(self, task, status="in_progress", next_id=last + 1)
            self.live[inv.id] = inv
            session.active = inv
            attempt = int(task.get("attempt", 1)) + 1
            inv.start_attempt(
                attempt, ENTRY_RECOVERED, start_delta=int(cp.get("next_delta", 0)), carry=str(cp.get("output", ""))
            )
            log.info("recovery: %s re-run (attempt %d, from %d)", inv.id, attempt, inv.start_delta)
        else:
            if session.queue:
                log.info("recovery: session %s re-delivers %d queued turn(s)", sid, len(session.queue))
            self._pump(session)
