"""A tiny Responses-style "framework": it turns ONE handler into the /responses wire.

A framework user writes ``async def handler(request_input) -> AsyncIterator[str]``; every
string it yields is one text delta, ``ITEM_BREAK`` closes the current message item, and an
exception ends the response ``failed`` (``HandlerError.code`` names the error code). The
framework does the rest: create (store/background/stream), GET, SSE replay by
``starting_after``, cancel, delete, and a store of JSON files under ``--state-dir``. It knows nothing
about the conformance kit; ``adapter.py`` is the only kit-aware code.
"""
from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

ITEM_BREAK = object()  # yielded by a handler: close the current output item
response_id: contextvars.ContextVar[str] = contextvars.ContextVar("response_id")  # inside a handler
Handler = Callable[[Any], AsyncIterator[Any]]
_ID = re.compile(r"^resp_[A-Za-z0-9]{1,64}$")
_FIELDS = {"input", "model", "store", "background", "stream", "metadata", "previous_response_id"}
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class HandlerError(Exception):
    """Raised by a handler: the response ends ``failed`` with ``error.code = code``."""

    def __init__(self, message: str, code: str = "handler_error") -> None:
        super().__init__(message)
        self.code = code


def error(status: int, message: str, param: str | None = None, code: str = "invalid_value",
          type_: str = "invalid_request_error") -> JSONResponse:
    body = {"type": type_, "code": code, "message": message, "param": param}
    return JSONResponse({"error": body}, status_code=status)


@dataclass
class Run:
    """One response: its snapshot, its events (seq = index) and the task running its handler."""

    snap: dict[str, Any]
    stream: bool
    events: list[dict[str, Any]] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    task: asyncio.Task | None = None
    stop_status: str | None = None  # "cancelled" or "failed" once cancel/shutdown stopped it

    @property
    def terminal(self) -> bool:
        return self.snap["status"] in ("completed", "failed", "cancelled")


class Store:
    """``<id>.json`` (snapshot + stream flag) and ``<id>.events`` (one JSON event a line)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _write(self, path: Path, text: str, mode: str) -> None:
        with open(path, mode, encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    def save(self, run: Run) -> None:
        tmp = self.root / f"{run.snap['id']}.json.tmp"
        self._write(tmp, json.dumps({"snap": run.snap, "stream": run.stream}), "w")
        os.replace(tmp, self.root / f"{run.snap['id']}.json")

    def append(self, rid: str, event: dict[str, Any]) -> None:
        self._write(self.root / f"{rid}.events", json.dumps(event) + "\n", "a")

    def remove(self, rid: str) -> None:
        for suffix in (".json", ".events"):
            (self.root / f"{rid}{suffix}").unlink(missing_ok=True)

    def load(self, rid: str) -> Run | None:
        path = self.root / f"{rid}.json"
        if not path.exists():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        run = Run(data["snap"], data["stream"])
        events = self.root / f"{rid}.events"
        if events.exists():
            run.events = [json.loads(ln) for ln in events.read_text(encoding="utf-8").splitlines() if ln]
        return run


class App:
    """The framework: ``App(handler, state_dir).starlette`` is the ASGI app."""

    def __init__(self, handler: Handler, state_dir: Path,
                 check_input: Callable[[Any], str | None] = lambda _: None) -> None:
        self.handler, self.check_input = handler, check_input
        self.store = Store(state_dir)
        self.live: dict[str, Run] = {}  # running responses (stored ones are also on disk)
        self.visible: set[str] = set()  # stored ids a GET may see (foreground: once terminal)
        self.closing = False
        self.starlette = Starlette(routes=[
            Route("/readiness", self.readiness),
            Route("/responses", self.create, methods=["POST"]),
            Route("/responses/{rid}", self.get, methods=["GET"]),
            Route("/responses/{rid}", self.delete, methods=["DELETE"]),
            Route("/responses/{rid}/cancel", self.cancel, methods=["POST"]),
        ], lifespan=self.lifespan, exception_handlers={HTTPException: self.http_error})

    async def http_error(self, request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        return error(status, str(getattr(exc, "detail", exc)), code={404: "not_found", 405: "method_not_allowed"}
                     .get(status, "invalid_request_error"), type_="invalid_request_error")

    async def readiness(self, request: Request) -> Response:
        if self.closing:
            return JSONResponse({"status": "shutting_down"}, status_code=503)
        return JSONResponse({"status": "ready"})

    # -- create -------------------------------------------------------------------------
    async def create(self, request: Request) -> Response:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return error(400, "Content-Type must be application/json", code="invalid_content_type")
        try:
            body = json.loads(await request.body())
        except (ValueError, RecursionError):
            body = None
        if not isinstance(body, dict) or not body:
            return error(400, "body must be a JSON object", code="invalid_json")
        try:  # a lone surrogate cannot be stored as UTF-8
            json.dumps(body, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            return error(400, "body holds a string that is not valid Unicode")
        for name in body:
            if name not in _FIELDS:
                return error(400, f"Unknown parameter: '{name}'", name, "unknown_parameter")
        if body.get("input") is None:
            return error(400, "Missing required parameter: 'input'", "input", "missing_required_parameter")
        flags = {}
        for name, default in (("store", True), ("background", False), ("stream", False)):
            value = default if body.get(name) is None else body[name]
            if not isinstance(value, bool):
                return error(400, f"'{name}' must be a boolean", name)
            flags[name] = value
        text = lambda v: v is None or isinstance(v, str)  # noqa: E731
        checks = {"input": isinstance(body["input"], str) or (isinstance(body["input"], list)
                                                             and all(isinstance(x, dict) for x in body["input"])),
                  "model": text(body.get("model")), "previous_response_id": text(body.get("previous_response_id")),
                  "metadata": body.get("metadata") is None or (isinstance(body["metadata"], dict) and all(
                      isinstance(v, str) for v in body["metadata"].values()))}
        for name, ok in checks.items():
            if not ok:
                return error(400, f"'{name}' has a wrong type or value", name)
        prev = body.get("previous_response_id")
        if prev is not None and not isinstance(self._find(prev), Run):
            return error(404, f"Previous response '{prev[:80]}' not found", "previous_response_id",
                         "previous_response_not_found")
        problem = self.check_input(body["input"])  # the user's own input validation: 400
        if problem:
            return error(400, problem, "input")
        if flags["background"] and not flags["store"]:
            return error(400, "background=true requires store=true", "background", "unsupported_parameter")
        if self.closing:
            return error(503, "server is shutting down", None, "server_shutting_down", "server_error")
        snap = {"id": f"resp_{uuid.uuid4().hex}", "object": "response", "created_at": int(time.time()),
                "completed_at": None, "status": "in_progress", "model": body.get("model") or "",
                "output": [], "error": None, "metadata": body.get("metadata") or {},
                "background": flags["background"], "store": flags["store"],
                "previous_response_id": body.get("previous_response_id")}
        run = Run(snap, flags["stream"])
        self.live[snap["id"]] = run
        if flags["background"]:
            self.visible.add(snap["id"])
        run.task = asyncio.create_task(self._drive(run, body["input"]))
        if flags["stream"]:
            return self._sse(run, -1)
        if flags["background"]:
            async with run.changed:  # answer once response.created is persisted
                await run.changed.wait_for(lambda: run.events or run.terminal)
            return JSONResponse({**run.snap, "output": []})
        await asyncio.shield(run.task)
        return JSONResponse(run.snap)

    # -- the runtime: drive the handler, emit and persist events ---------------------------
    async def _emit(self, run: Run, type_: str, **fields: Any) -> None:
        event = {"type": type_, "sequence_number": len(run.events), **fields}
        if run.snap["store"]:
            self.store.append(run.snap["id"], event)  # persisted before any client sees it
        async with run.changed:
            run.events.append(event)
            run.changed.notify_all()

    async def _drive(self, run: Run, request_input: Any) -> None:
        rid, out = run.snap["id"], run.snap["output"]
        response_id.set(rid)
        if run.snap["store"]:
            self.store.save(run)
        await self._emit(run, "response.created", response=json.loads(json.dumps(run.snap)))
        await self._emit(run, "response.in_progress", response=json.loads(json.dumps(run.snap)))
        gen = self.handler(request_input)
        item: dict[str, Any] | None = None
        try:
            async for piece in gen:
                if piece is ITEM_BREAK:
                    if item is not None:
                        await self._close_item(run, item)
                    item = None
                    continue
                if item is None:
                    item = await self._open_item(run)
                item["content"][0]["text"] += piece
                await self._emit(run, "response.output_text.delta", item_id=item["id"],
                                 output_index=len(out), content_index=0, delta=piece)
            if item is not None:
                await self._close_item(run, item)
            run.snap.update(status="completed", completed_at=int(time.time()))
            terminal = "response.completed"
        except asyncio.CancelledError:
            await gen.aclose()
            run.snap.update(status=run.stop_status or "failed", output=[])
            if run.snap["status"] == "failed":
                run.snap["error"] = {"code": "server_error", "message": "server shutdown grace exhausted"}
            terminal = "response.failed"
        except Exception as exc:  # the handler failed: the response fails, the server goes on
            code = exc.code if isinstance(exc, HandlerError) else "handler_error"
            run.snap.update(status="failed", output=[], error={"code": code, "message": str(exc)})
            terminal = "response.failed"
        await self._emit(run, terminal, response=json.loads(json.dumps(run.snap)))
        if run.snap["store"]:
            self.store.save(run)
            self.visible.add(rid)
        self.live.pop(rid, None)

    async def _open_item(self, run: Run) -> dict[str, Any]:
        item = {"id": f"msg_{uuid.uuid4().hex}", "type": "message", "role": "assistant",
                "status": "in_progress", "content": []}
        await self._emit(run, "response.output_item.added", output_index=len(run.snap["output"]),
                         item=json.loads(json.dumps(item)))
        item["content"].append({"type": "output_text", "text": ""})
        await self._emit(run, "response.content_part.added", item_id=item["id"],
                         output_index=len(run.snap["output"]), content_index=0,
                         part={"type": "output_text", "text": ""})
        return item

    async def _close_item(self, run: Run, item: dict[str, Any]) -> None:
        k, part = len(run.snap["output"]), dict(item["content"][0])
        common = {"item_id": item["id"], "output_index": k, "content_index": 0}
        await self._emit(run, "response.output_text.done", **common, text=part["text"])
        await self._emit(run, "response.content_part.done", **common, part=part)
        item["status"] = "completed"
        run.snap["output"].append(item)
        await self._emit(run, "response.output_item.done", output_index=k, item=json.loads(json.dumps(item)))

    def _sse(self, run: Run, after: int) -> StreamingResponse:
        async def frames() -> AsyncIterator[str]:
            i = after + 1
            while True:
                async with run.changed:
                    await run.changed.wait_for(lambda: len(run.events) > i or run.terminal)
                    batch = run.events[i:]
                for event in batch:
                    yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"
                i += len(batch)
                if run.terminal and i >= len(run.events):
                    return
        return StreamingResponse(frames(), media_type="text/event-stream; charset=utf-8", headers=SSE_HEADERS)

    # -- GET, replay, cancel ----------------------------------------------------------------
    def _find(self, rid: str) -> Run | JSONResponse:
        if not _ID.match(rid):
            return error(400, f"Invalid response id '{rid}'", "response_id")
        run = self.live.get(rid) if rid in self.visible else None
        run = run or self.store.load(rid)
        if run is None or (run.snap["id"] not in self.visible and not run.terminal):
            return error(404, f"No response found with id '{rid}'", "response_id", "invalid_request_error")
        return run

    async def get(self, request: Request) -> Response:
        run = self._find(request.path_params["rid"])
        if isinstance(run, Response):
            return run
        q = request.query_params
        for name in ("stream", "starting_after"):
            if len(q.getlist(name)) > 1:
                return error(400, f"'{name}' given more than once", name)
        stream = q.get("stream", "false")
        if stream not in ("true", "false"):
            return error(400, "stream must be true or false", "stream")
        after = q.get("starting_after")
        if after is not None and not (after.isascii() and after.isdigit()):
            return error(400, "starting_after must be a non-negative integer", "starting_after")
        if stream == "false":
            return JSONResponse(run.snap)
        if not (run.snap["background"] and run.stream):
            return error(400, "replay needs background=true and stream=true at creation", "stream")
        return self._sse(run, -1 if after is None else int(after) if len(after) < 19 else 10**18)

    async def cancel(self, request: Request) -> Response:
        run = self._find(request.path_params["rid"])
        if isinstance(run, Response):
            return run
        if not run.snap["background"]:
            return error(400, "Cannot cancel a synchronous response.", code="invalid_request_error")
        if run.snap["status"] in ("completed", "failed"):
            return error(400, f"Cannot cancel a {run.snap['status']} response.", code="invalid_request_error")
        if run.task is not None and not run.terminal:
            run.stop_status = "cancelled"
            run.task.cancel()
            await asyncio.wait([run.task])
        return JSONResponse(run.snap)

    async def delete(self, request: Request) -> Response:
        run = self._find(request.path_params["rid"])
        if isinstance(run, Response):
            return run
        if not run.terminal:
            return error(400, "Cannot delete a response that is still running.", code="invalid_request_error")
        self.store.remove(run.snap["id"])
        self.visible.discard(run.snap["id"])
        return JSONResponse({"id": run.snap["id"], "object": "response.deleted", "deleted": True})

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        """Startup: a stored response a crash left running ends ``failed`` (it is never re-run)."""
        for path in self.store.root.glob("*.json"):
            run = self.store.load(path.stem)
            if run is not None and not run.terminal:
                run.snap.update(status="failed", output=[], error={
                    "code": "server_error", "message": "crash recovery: the server stopped while it ran"})
                if run.events and run.events[-1]["type"] not in ("response.completed", "response.failed"):
                    self.store.append(run.snap["id"], {"type": "response.failed", "response": run.snap,
                                                       "sequence_number": len(run.events)})
                self.store.save(run)
        yield
        self.stop_all()

    def begin_shutdown(self, grace_s: float) -> None:
        """SIGTERM: refuse new creates at once; what still runs after ``grace_s`` ends ``failed``."""
        self.closing = True
        asyncio.get_running_loop().call_later(grace_s, self.stop_all)

    def stop_all(self) -> None:
        for run in self.live.values():
            if run.task is not None and not run.task.done():
                run.task.cancel()  # _drive persists and sends response.failed (server_error)
