"""Runs, their durable state, shutdown wind-down and the startup recovery scan.

One :class:`Run` is one attempt of the handler for one response in this process. It owns the
response's sequence numbers and snapshot, persists every event (store=true) before any
subscriber can see it, and applies the row's disposition when it is stopped:

========================  =================================================================
stop reason               effect
========================  =================================================================
``cancel``/``disconnect``  ``cancelled``, ``output: []``, wire event ``response.failed``
``shutdown``, resilient    nothing persisted: the task stays unfinished for the next lifetime
``shutdown``, stored       ``failed`` / ``server_error`` (grace exhausted) + ``response.failed``
``shutdown``, store=false  ``response.failed`` on the open connection only
``lease_lost``             nothing: another worker owns the task now (see leases.py)
========================  =================================================================

With ``--lease-ttl`` several workers share one store: every write for a task first checks that
this worker still holds its lease, a lease loop renews the leases of the local runs and claims
tasks whose lease expired, and a replay of a response running on another worker tails the store.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from .attempt import HandlerAttempt
from .config import ServerConfig
from .faults import lease_fault
from .feed import LiveFeed
from .leases import LeaseKeeper, LeaseLost
from .retry import get_with_retry
from .stores import KIND_RESPONSE, KIND_TASK, StoreError, StoreProvider, StoreTransientError

log = logging.getLogger("reference_impl")

TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled", "incomplete"})
TERMINAL_EVENTS = frozenset({"response.completed", "response.failed", "response.incomplete"})
DISPOSITION_REINVOKE = "reinvoke"
DISPOSITION_MARK_FAILED = "mark_failed"
GRACE_EXHAUSTED_MESSAGE = "The server shut down before the response finished (shutdown grace exhausted)."
CRASH_MESSAGE = "The server stopped before the response finished (crash recovery)."
TAIL_POLL_S = 0.05  # how often a replay of a response running on another worker reads the store


def new_response_id() -> str:
    return "resp_" + uuid.uuid4().hex


def _now() -> int:
    return int(time.time())


class Run(HandlerAttempt):
    """One handler attempt for one response, in this process."""

    def __init__(
        self,
        rt: Runtime,
        rid: str,
        request: dict[str, Any],
        *,
        script: dict[str, Any] | None,
        attempt: int,
        resilient: bool,
        task_record: dict[str, Any] | None,
        recovered: bool = False,
        next_seq: int = 0,
        log_empty: bool = True,
        created_at: int | None = None,
    ) -> None:
        self.rt = rt
        self.id = rid
        self.request = request
        self.script = script
        self.store: bool = request["store"]
        self.background: bool = request["background"]
        self.stream: bool = request["stream"]
        self.resilient = resilient
        self.checkpointing = resilient  # checkpoints only for store ∧ background ∧ resilient
        self.attempt = attempt
        self.recovered = recovered
        self.task_record = task_record
        checkpoint = (task_record or {}).get("checkpoint") if recovered else None
        self.items: list[dict[str, Any]] = copy.deepcopy(checkpoint["output"]) if checkpoint else []
        self.start_delta: int = checkpoint["next_delta"] if checkpoint else 0
        self.next_seq = next_seq
        self._log_empty = log_empty
        self.created_at = created_at if created_at is not None else _now()
        self.snapshot = self._snapshot("in_progress", [])
        self.feed = LiveFeed("sequence_number", TERMINAL_EVENTS)  # emitted in this lifetime, for live readers
        self.created = asyncio.Event()  # response.created persisted (or the run ended)
        self.done = asyncio.Event()  # the run ended (terminal or left for the next lifetime)
        self.created_response: dict[str, Any] | None = None
        self.final_response: dict[str, Any] | None = None
        self.terminal_status: str | None = None
        self.stop_reason: str | None = None
        self._item: dict[str, Any] | None = None
        self._item_index = -1
        self._text = ""
        if recovered:
            self.created.set()

    # ------------------------------------------------------------------ snapshots, events
    def _snapshot(
        self,
        status: str,
        output: list[dict[str, Any]],
        *,
        error: dict[str, Any] | None = None,
        completed_at: int | None = None,
    ) -> dict[str, Any]:
        req = self.request
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "completed_at": completed_at,
            "status": status,
            "model": req["model"],
            "output": copy.deepcopy(output),
            "error": error,
            "metadata": dict(req["metadata"]),
            "background": self.background,
            "store": self.store,
            "previous_response_id": req["previous_response_id"],
        }

    def _fence(self) -> None:
        """With leases: refuse to write for a task this worker may no longer hold."""
        leases = self.rt.leases
        if leases is not None and self.store and not leases.holds(self.task_record):
            raise LeaseLost(f"{self.id}: lease not held by {leases.worker_id}")

    def _persist_snapshot(self) -> None:
        if self.store:
            self._fence()
            env = {"response": self.snapshot, "background": self.background, "stream": self.stream}
            self.rt.store.records.put(KIND_RESPONSE, self.id, env)

    def _append(self, type_: str, **fields: Any) -> dict[str, Any]:
        """Build the next event and make it durable (store=true); not yet visible."""
        event = {"type": type_, "sequence_number": self.next_seq, **fields}
        if self.store:
            self._fence()
            self.rt.store.events.append(self.id, event)
        self.next_seq += 1
        return event

    def _emit(self, type_: str, **fields: Any) -> dict[str, Any]:
        event = self._append(type_, **fields)
        self.feed.publish(event)
        return event

    # ------------------------------------------------------------------ the handler's API
    def begin(self) -> None:
        """Fresh: response.created (+ in_progress). Recovered: the reset response.in_progress."""
        if not self.recovered or self._log_empty:
            self.snapshot = self._snapshot("in_progress", [])
            self._persist_snapshot()  # the snapshot first: "created" = the snapshot exists
            created = self._emit("response.created", response=copy.deepcopy(self.snapshot))
            self.created_response = created["response"]
            self.created.set()
        self.snapshot = self._snapshot("in_progress", self.items)
        if self.recovered and self.store:
            self._persist_snapshot()
        self._emit("response.in_progress", response=copy.deepcopy(self.snapshot))

    def open_item(self) -> None:
        item = {
            "id": "msg_" + uuid.uuid4().hex,
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        self._item = item
        self._item_index = len(self.items)
        self._text = ""
        self.items.append(item)
        self._emit("response.output_item.added", output_index=self._item_index, item=copy.deepcopy(item))
        self._emit(
            "response.content_part.added",
            item_id=item["id"],
            output_index=self._item_index,
            content_index=0,
            part={"type": "output_text", "text": "", "annotations": []},
        )

    def delta(self, text: str) -> None:
        assert self._item is not None
        self._text += text
        self._emit(
            "response.output_text.delta",
            item_id=self._item["id"],
            output_index=self._item_index,
            content_index=0,
            delta=text,
        )

    def close_item(self) -> None:
        item = self._item
        assert item is not None
        idx = self._item_index
        part = {"type": "output_text", "text": self._text, "annotations": []}
        self._emit("response.output_text.done", item_id=item["id"], output_index=idx, content_index=0, text=self._text)
        self._emit("response.content_part.done", item_id=item["id"], output_index=idx, content_index=0, part=dict(part))
        item["status"] = "completed"
        item["content"] = [part]
        self._emit("response.output_item.done", output_index=idx, item=copy.deepcopy(item))
        self._item = None
        self.snapshot = self._snapshot("in_progress", self.items)
        if self.background:
            self._persist_snapshot()  # GET shows finished items while the run goes on

    def checkpoint(self, next_delta: int) -> None:
        if not (self.checkpointing and self.store and self.task_record is not None):
            return
        done_items = [i for i in self.items if i.get("status") == "completed"]
        self._fence()
        self.task_record["checkpoint"] = {"output": copy.deepcopy(done_items), "next_delta": next_delta}
        self.rt.store.records.put(KIND_TASK, self.id, self.task_record)

    def complete(self) -> None:
        snap = self._snapshot("completed", self.items, completed_at=_now())
        self._terminal(snap, "response.completed")

    # ------------------------------------------------------------------ terminals
    def _terminal(self, snap: dict[str, Any], event_type: str) -> None:
        """Persist a terminal: event first (the log is the authority), then snapshot, then task."""
        self.terminal_status = snap["status"]
        self.snapshot = snap
        self.final_response = copy.deepcopy(snap)
        event = self._append(event_type, response=copy.deepcopy(snap))
        if self.store:
            self._persist_snapshot()
            self.rt.store.records.delete(KIND_TASK, self.id)
        self.feed.publish(event)

    def fail(self, code: str, message: str) -> None:
        if self.terminal_status:
            return
        if not self.has_created:
            self._drop()
            return
        snap = self._snapshot("failed", [], error={"code": code, "message": message})
        self._terminal(snap, "response.failed")

    def _cancelled(self) -> None:
        if not self.has_created:
            self._drop()
            return
        snap = self._snapshot("cancelled", [])
        self._terminal(snap, "response.failed")

    @property
    def has_created(self) -> bool:
        """response.created exists (emitted in this attempt, or persisted by an earlier one)."""
        return self.created_response is not None or self.recovered

    def _drop(self) -> None:
        """Nothing was ever created: forget the task (there is nothing to show or recover)."""
        if self.store:
            self._fence()
            self.rt.store.records.delete(KIND_TASK, self.id)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.launch(f"run-{self.id}")

    def _script(self) -> tuple[dict[str, Any] | None, str | None]:
        return self.script, self.rt.config.marker_dir

    @property
    def ended(self) -> bool:
        return self.terminal_status is not None

    def stop(self, reason: str) -> bool:
        """Stop the handler (reason: cancel | disconnect | shutdown | lease_lost). False if already ended."""
        if self.closed or self.terminal_status:
            return False
        if self.stop_reason is None or reason != "shutdown":
            self.stop_reason = reason  # a client cancel wins over a concurrent shutdown
        if self.handle is not None and not self.handle.done():
            self.handle.cancel()
        return True

    def _stopped(self) -> None:
        if self.terminal_status:
            return
        reason = self.stop_reason or "shutdown"
        if reason == "lease_lost":
            log.warning("%s: another worker holds the task now; this attempt writes nothing more", self.id)
        elif reason in ("cancel", "disconnect"):
            self._guarded(self._cancelled)
        elif self.resilient:
            log.info("%s left in_progress for the next lifetime (attempt %d)", self.id, self.attempt)
        else:
            self._guarded(self.fail, "server_error", GRACE_EXHAUSTED_MESSAGE)

    def close(self) -> None:
        if self.closed:
            return
        self.feed.close()
        self.created.set()
        self.done.set()
        if self.rt.runs.get(self.id) is self:
            del self.rt.runs[self.id]


class Runtime:
    """All runs of this process, plus shutdown and recovery."""

    def __init__(self, config: ServerConfig, store: StoreProvider) -> None:
        self.config = config
        self.store = store
        self.runs: dict[str, Run] = {}
        self.ready = False
        self.shutting_down = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self._exit_requested = False
        self._wind_down_task: asyncio.Task[None] | None = None
        self.wound_down = asyncio.Event()
        self.participants: list[Any] = []  # other profiles' runtimes: wind_down(grace) on shutdown
        self.leases = LeaseKeeper(config.worker_id, config.lease_ttl, lease_fault()) if config.lease_ttl else None
        self._lease_task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ creation
    def disposition(self, request: dict[str, Any]) -> str:
        resilient = request["store"] and request["background"] and self.config.resilient_background
        return DISPOSITION_REINVOKE if resilient else DISPOSITION_MARK_FAILED

    def create_run(self, request: dict[str, Any], script: dict[str, Any] | None) -> Run:
        rid = new_response_id()
        disposition = self.disposition(request)
        task_record = None
        if request["store"]:
            task_record = {
                "id": rid,
                "request": request,
                "script": script,
                "disposition": disposition,
                "attempt": 1,
                "checkpoint": None,
                "accepted_at": _now(),
            }
            if self.leases is not None:
                task_record = self.leases.stamp(task_record)
            self.store.records.put(KIND_TASK, rid, task_record)  # before the handler starts
        run = Run(
            self,
            rid,
            request,
            script=script,
            attempt=1,
            resilient=disposition == DISPOSITION_REINVOKE,
            task_record=task_record,
        )
        self.runs[rid] = run
        run.start()
        return run

    # ------------------------------------------------------------------ lookups
    def visible(self, rid: str) -> dict[str, Any] | None:
        """The stored envelope of a response a client may see (B14, B16), else None."""
        env = self.store.records.get(KIND_RESPONSE, rid)
        if env is None:
            return None
        if not env.get("background") and env["response"].get("status") not in TERMINAL_STATUSES:
            return None  # foreground, still running: not retrievable yet (B16)
        return env

    async def replay(self, rid: str, after: int | None) -> AsyncIterator[dict[str, Any]]:
        """Persisted events with sequence_number > after, then the live tail to the terminal.

        The live tail is this process's run; with leases, a response that runs on another worker
        (or is claimed back and forth) is tailed from the store until its terminal event."""
        cursor = after
        while True:
            persisted = self.store.events.read(rid, cursor)
            run = self.runs.get(rid)  # same tick as the read: nothing can slip in between
            for event in persisted:
                yield event
                cursor = event["sequence_number"]
                if event["type"] in TERMINAL_EVENTS:
                    return
            if run is not None:
                async for event in run.feed.subscribe(after=-1 if cursor is None else cursor):
                    yield event
                    cursor = event["sequence_number"]
                    if event["type"] in TERMINAL_EVENTS:
                        return
            if self.leases is None or self.shutting_down or self.leases.fault == "no_tail":
                return
            if not persisted and run is None and self.store.records.get(KIND_TASK, rid) is None:
                # Nobody will write more (finished or dropped): one last read closes the race.
                for event in self.store.events.read(rid, cursor):
                    yield event
                return
            await asyncio.sleep(TAIL_POLL_S)  # polling interval of the store tail, not synchronisation

    def cancel_orphan(self, rid: str, env: dict[str, Any]) -> dict[str, Any]:
        """Cancel a stored in-flight background response that has no live run here."""
        snap = dict(env["response"], status="cancelled", output=[], completed_at=None)
        self._end_orphan(rid, env, snap)
        return snap

    def _end_orphan(self, rid: str, env: dict[str, Any], snap: dict[str, Any]) -> None:
        """Log ``snap`` as the terminal ``response.failed`` of a response no run owns, then make it
        the snapshot and forget the task.  A log a crash left empty (the snapshot was saved, its
        ``response.created`` not yet) first gets that ``response.created`` from the saved
        snapshot, so that every replay still opens with exactly one (B8, B9)."""
        last = self.store.events.last_seq(rid)
        if last is None:
            self.store.events.append(rid, {"type": "response.created", "sequence_number": 0, "response": env["response"]})
            last = 0
        self.store.events.append(rid, {"type": "response.failed", "sequence_number": last + 1, "response": snap})
        self.store.records.put(KIND_RESPONSE, rid, dict(env, response=snap))
        self.store.records.delete(KIND_TASK, rid)

    def delete(self, rid: str) -> None:
        """Forget a terminal stored response: snapshot first (GET 404 at once), then the rest."""
        self.store.records.delete(KIND_RESPONSE, rid)
        self.store.records.delete(KIND_TASK, rid)
        self.store.events.delete(rid)

    # ------------------------------------------------------------------ shutdown
    def signal_shutdown(self) -> None:
        """Called from the signal handler (main thread): hand over to the loop at once."""
        self._exit_requested = True
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.request_shutdown)

    def request_shutdown(self) -> None:
        if self.shutting_down:
            return
        self.shutting_down = True
        log.info("shutdown: %d run(s) active, grace %.3gs", len(self.runs), self.config.shutdown_grace)
        self._wind_down_task = asyncio.create_task(self._wind_down())

    async def _wind_down(self) -> None:
        others = [asyncio.ensure_future(p.wind_down(self.config.shutdown_grace)) for p in self.participants]
        try:
            pending = [r.done.wait() for r in list(self.runs.values())]
            if pending:
                waiters = [asyncio.ensure_future(p) for p in pending]
                _, still = await asyncio.wait(waiters, timeout=self.config.shutdown_grace)
                for w in still:
                    w.cancel()
            remaining = list(self.runs.values())
            if remaining:
                log.info("shutdown: grace exhausted, stopping %d run(s)", len(remaining))
            for run in remaining:
                run.stop("shutdown")
            ends = [asyncio.ensure_future(r.done.wait()) for r in remaining]
            if ends:
                _, still = await asyncio.wait(ends, timeout=1.0)
                for w in still:
                    w.cancel()
            if others:
                await asyncio.gather(*others, return_exceptions=True)
        finally:
            self.wound_down.set()

    async def finish(self) -> None:
        """Lifespan shutdown: make sure the wind-down ran, then close the store."""
        if not self.shutting_down:
            self.request_shutdown()
        await asyncio.wait_for(self.wound_down.wait(), timeout=self.config.shutdown_grace + 2)
        if self._lease_task is not None:
            self._lease_task.cancel()
            await asyncio.gather(self._lease_task, return_exceptions=True)
        self.store.close()

    # ------------------------------------------------------------------ leases (several workers)
    async def _lease_loop(self) -> None:
        """Every ttl/3: renew the leases of local runs, then claim tasks whose lease expired."""
        assert self.leases is not None
        while True:
            await asyncio.sleep(self.leases.interval)  # the lease period, not synchronisation
            try:
                self._renew_leases()
                if not self.shutting_down:
                    await self._scan()
            except StoreError as exc:
                log.warning("leases: store unavailable (%s); retrying next period", exc)
            except Exception:
                log.exception("leases: renewal/scan failed; retrying next period")

    def _renew_leases(self) -> None:
        assert self.leases is not None
        for run in list(self.runs.values()):
            if run.task_record is None or run.closed or run.terminal_status:
                continue
            renewed = self.leases.renew(self.store.records, run.task_record)
            if renewed is None:
                log.warning("leases: %s is no longer ours; stopping the local attempt", run.id)
                run.stop("lease_lost")
                continue
            run.task_record = renewed
            if renewed.get("cancel_requested"):
                run.stop("cancel")

    async def request_cancel(self, rid: str, timeout: float) -> dict[str, Any] | None:
        """Cancel a response that has no run here, with leases: the owner stops it at its next
        renewal (or, if nobody holds it, this worker cancels it at once). Returns the stored
        envelope once the response is terminal (None if it is gone); asyncio.TimeoutError if the
        owner did not stop it within ``timeout``."""
        assert self.leases is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            env = self.visible(rid)
            if env is None or env["response"].get("status") in TERMINAL_STATUSES:
                return env
            task = self.store.records.get(KIND_TASK, rid)
            if task is not None and rid not in self.runs:
                if self.leases.claimable(task):
                    if self.leases.claim(self.store.records, task) is not None:
                        self.cancel_orphan(rid, env)
                        return self.visible(rid)
                elif not task.get("cancel_requested"):
                    self.store.records.compare_and_set(KIND_TASK, rid, task, dict(task, cancel_requested=True))
            run = self.runs.get(rid)  # claimed by this worker in the meantime
            if run is not None:
                run.stop("cancel")
                await asyncio.wait_for(asyncio.shield(run.done.wait()), timeout=max(0.0, deadline - time.monotonic()))
                continue
            await asyncio.sleep(TAIL_POLL_S)  # polling interval of the store, not synchronisation
        raise asyncio.TimeoutError(f"{rid}: not terminal {timeout:.3g}s after the cancel request")

    # ------------------------------------------------------------------ recovery
    async def recover(self) -> None:
        """The startup recovery scan (runs before readiness turns 200); with leases, it also
        starts the lease loop that keeps scanning while the server runs."""
        await self._scan()
        if self.leases is not None and self._lease_task is None:
            self._lease_task = asyncio.create_task(self._lease_loop(), name="leases")

    async def _scan(self) -> None:
        """Recover every unfinished task nobody alive holds (without leases: every one)."""
        try:
            tasks = self.store.records.list_unfinished()
        except StoreError as exc:
            log.error("recovery: cannot list task records (%s); nothing recovered", exc)
            return
        for task in tasks:
            rid = task.get("id")
            if not isinstance(rid, str) or task.get("profile", "responses") != "responses":
                continue  # another profile's task (invocations recover their own)
            if rid in self.runs:
                continue
            if self.leases is not None:
                if not self.leases.claimable(task):
                    continue  # another worker is alive and renewing it
                claimed = self.leases.claim(self.store.records, task)
                if claimed is None:
                    continue  # another worker claimed it first
                task = claimed
                log.info("leases: %s claimed by %s", rid, self.leases.worker_id)
            try:
                await self._recover_one(rid, task)
            except StoreTransientError as exc:
                log.warning("recovery: %s left for later, store unavailable: %s", rid, exc)
            except Exception:
                log.exception("recovery: %s failed; left for the next lifetime", rid)

    async def _get_response_with_retry(self, rid: str) -> dict[str, Any] | None:
        return await get_with_retry(self.store.records, KIND_RESPONSE, rid)

    async def _recover_one(self, rid: str, task: dict[str, Any]) -> None:
        env = await self._get_response_with_retry(rid)
        if env is None:
            # response.created was never persisted: nobody can know this id. Drop, do not re-run.
            self.store.records.delete(KIND_TASK, rid)
            self.store.events.delete(rid)
            log.info("recovery: %s dropped (never created)", rid)
            return
        if env["response"].get("status") in TERMINAL_STATUSES:
            self.store.records.delete(KIND_TASK, rid)
            return
        events = self.store.events.read(rid)
        if events and events[-1]["type"] in TERMINAL_EVENTS:
            # Crashed between the terminal event and its snapshot: the log is the authority.
            self.store.records.put(KIND_RESPONSE, rid, dict(env, response=events[-1]["response"]))
            self.store.records.delete(KIND_TASK, rid)
            return
        last_seq = events[-1]["sequence_number"] if events else None
        next_seq = 0 if last_seq is None else last_seq + 1
        if task.get("cancel_requested"):
            # A client asked for the cancel while the owner was dying: honour it, do not re-run.
            self.cancel_orphan(rid, env)
            log.info("recovery: %s cancelled (cancel requested before the owner stopped)", rid)
            return
        if task.get("disposition") == DISPOSITION_REINVOKE:
            task["attempt"] = int(task.get("attempt", 1)) + 1
            self.store.records.put(KIND_TASK, rid, task)  # the attempt is durable before the handler runs
            run = Run(
                self,
                rid,
                task["request"],
                script=task.get("script"),
                attempt=task["attempt"],
                resilient=True,
                task_record=task,
                recovered=True,
                next_seq=next_seq,
                log_empty=not events,
                created_at=env["response"].get("created_at"),
            )
            self.runs[rid] = run
            run.start()
            log.info("recovery: %s re-invoked (attempt %d)", rid, task["attempt"])
            return
        snap = dict(
            env["response"],
            status="failed",
            output=[],
            completed_at=None,
            error={"code": "server_error", "message": CRASH_MESSAGE},
        )
        self._end_orphan(rid, env, snap)
        log.info("recovery: %s marked failed", rid)
