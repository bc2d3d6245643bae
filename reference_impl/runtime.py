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
========================  =================================================================
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from . import script as script_mod
from .config import ServerConfig
from .retry import get_with_retry
from .stores import KIND_RESPONSE, KIND_TASK, StoreError, StoreProvider, StoreTransientError

log = logging.getLogger("reference_impl")

TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled", "incomplete"})
TERMINAL_EVENTS = frozenset({"response.completed", "response.failed", "response.incomplete"})
DISPOSITION_REINVOKE = "reinvoke"
DISPOSITION_MARK_FAILED = "mark_failed"
GRACE_EXHAUSTED_MESSAGE = "The server shut down before the response finished (shutdown grace exhausted)."
CRASH_MESSAGE = "The server stopped before the response finished (crash recovery)."


def new_response_id() -> str:
    return "resp_" + uuid.uuid4().hex


def _now() -> int:
    return int(time.time())


class Run:
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
        self.events: list[dict[str, Any]] = []  # emitted in this lifetime, in order
        self.created = asyncio.Event()  # response.created persisted (or the run ended)
        self.done = asyncio.Event()  # the run ended (terminal or left for the next lifetime)
        self.created_response: dict[str, Any] | None = None
        self.final_response: dict[str, Any] | None = None
        self.terminal_status: str | None = None
        self.closed = False
        self.stop_reason: str | None = None
        self.task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
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

    def _persist_snapshot(self) -> None:
        if self.store:
            env = {"response": self.snapshot, "background": self.background, "stream": self.stream}
            self.rt.store.records.put(KIND_RESPONSE, self.id, env)

    def _append(self, type_: str, **fields: Any) -> dict[str, Any]:
        """Build the next event and make it durable (store=true); not yet visible."""
        event = {"type": type_, "sequence_number": self.next_seq, **fields}
        if self.store:
            self.rt.store.events.append(self.id, event)
        self.next_seq += 1
        return event

    def _publish(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self._notify()

    def _emit(self, type_: str, **fields: Any) -> dict[str, Any]:
        event = self._append(type_, **fields)
        self._publish(event)
        return event

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def subscribe(self, after: int | None = None) -> AsyncIterator[dict[str, Any]]:
        """This lifetime's events with sequence_number > after, then live ones, until the run ends."""
        cursor = -1 if after is None else after
        idx = 0
        while True:
            while idx < len(self.events):
                event = self.events[idx]
                idx += 1
                if event["sequence_number"] > cursor:
                    yield event
            if self.closed:
                return
            await self._changed.wait()

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
        self._publish(event)

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
            self.rt.store.records.delete(KIND_TASK, self.id)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.task = asyncio.create_task(self._drive(), name=f"run-{self.id}")
        self.task.add_done_callback(self._task_done)

    def stop(self, reason: str) -> bool:
        """Stop the handler (reason: cancel | disconnect | shutdown). False if already ended."""
        if self.closed or self.terminal_status:
            return False
        if self.stop_reason is None or reason != "shutdown":
            self.stop_reason = reason  # a client cancel wins over a concurrent shutdown
        if self.task is not None and not self.task.done():
            self.task.cancel()
        return True

    async def _drive(self) -> None:
        try:
            await script_mod.run_script(self, self.script, self.rt.config.marker_dir)
            if not self.terminal_status:
                self.fail("server_error", "The handler ended without a terminal event.")
        except asyncio.CancelledError:
            self._stopped()
        except script_mod.HandlerFailure as exc:
            self._guarded(self.fail, exc.code, exc.message)
        except Exception:
            log.exception("handler of %s crashed", self.id)
            self._guarded(self.fail, "server_error", "The handler raised an unexpected error.")
        finally:
            self._close()

    def _guarded(self, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("could not record the end of %s", self.id)

    def _stopped(self) -> None:
        if self.terminal_status:
            return
        reason = self.stop_reason or "shutdown"
        if reason in ("cancel", "disconnect"):
            self._guarded(self._cancelled)
        elif self.resilient:
            log.info("%s left in_progress for the next lifetime (attempt %d)", self.id, self.attempt)
        else:
            self._guarded(self.fail, "server_error", GRACE_EXHAUSTED_MESSAGE)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        # A task cancelled before its first step never entered _drive's try block.
        if not self.closed:
            self._stopped()
            self._close()

    def _close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._notify()
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
        """Persisted events with sequence_number > after, then the live tail to the terminal."""
        persisted = self.store.events.read(rid, after)
        run = self.runs.get(rid)  # same tick as the read: nothing can slip in between
        cursor = -1 if after is None else after
        for event in persisted:
            yield event
            cursor = event["sequence_number"]
            if event["type"] in TERMINAL_EVENTS:
                return
        if run is None:
            return
        async for event in run.subscribe(after=cursor):
            yield event

    def cancel_orphan(self, rid: str, env: dict[str, Any]) -> dict[str, Any]:
        """Cancel a stored in-flight background response that has no live run here."""
        snap = dict(env["response"], status="cancelled", output=[], completed_at=None)
        last = self.store.events.last_seq(rid)
        event = {"type": "response.failed", "sequence_number": 0 if last is None else last + 1, "response": snap}
        self.store.events.append(rid, event)
        self.store.records.put(KIND_RESPONSE, rid, dict(env, response=snap))
        self.store.records.delete(KIND_TASK, rid)
        return snap

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
        self.store.close()

    # ------------------------------------------------------------------ recovery
    async def recover(self) -> None:
        """The startup recovery scan (runs before readiness turns 200)."""
        try:
            tasks = self.store.records.list_unfinished()
        except StoreError as exc:
            log.error("recovery: cannot list task records (%s); nothing recovered", exc)
            return
        for task in tasks:
            rid = task.get("id")
            if not isinstance(rid, str) or task.get("profile", "responses") != "responses":
                continue  # another profile's task (invocations recover their own)
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
        self.store.events.append(rid, {"type": "response.failed", "sequence_number": next_seq, "response": snap})
        self.store.records.put(KIND_RESPONSE, rid, dict(env, response=snap))
        self.store.records.delete(KIND_TASK, rid)
        log.info("recovery: %s marked failed", rid)
