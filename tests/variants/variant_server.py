"""The reference server with one behaviour changed, for the kit's own tests of its verdicts.

``python variant_server.py --variant NAME <reference_impl options>`` patches ``reference_impl``
in this process, then runs its command line as usual.  Variants:

- ``lenient``: correct but lenient, every difference a reading the documents allow or a SHOULD:
  an unknown body field is ignored (200), a body without (or with another) ``Content-Type`` is
  read as JSON, the framework's own 404/405 answers are ``text/plain``, and a negative cursor
  (``starting_after=-1``, ``Last-Event-ID: -1``) means "from the start".  It must pass every
  MUST and show its SHOULD findings.
- ``deep-500``: a create body nested too deep for ``json.loads`` answers 500 (a MUST: 5xx for
  bad input).
- ``surrogate-500``: a lone surrogate in ``model`` answers 500 ``text/plain`` (a MUST).
- ``readings``: correct, but takes every reading of docs/protocol.md §6 the reference did not:
  a stream's numbering starts at 1 (``response.created`` at seq 1), a cancel ends the stream
  with ``response.cancelled``, a crashed or grace-exhausted response fails with code
  ``server_crashed``, and a recovered attempt skips one sequence number (a gap, §2.2 clause 4).
  It must pass every MUST; the gaps are SHOULD findings.
- broken for the black-box tier (``tests/variants/test_blackbox_verdicts.py``; plain prompts,
  no adapter): ``seq-restart`` (a recovered attempt numbers its events from 0 again),
  ``replay-drops-last`` (a replay leaves out the terminal event), ``terminal-not-last`` (a replay
  sends one more event after the terminal), ``cursor-500`` (a malformed ``starting_after``
  answers 500), ``cancel-keeps-streaming`` (a cancel answers 200 ``cancelled`` but the run goes
  on streaming deltas to its end).
- ``stuck``: the startup recovery scan leaves an interrupted non-resilient response
  ``in_progress`` for ever instead of marking it ``failed`` (a MUST: the row's status).
- ``replay-gap``: every replay drops the event at ``sequence_number`` 5 (a MUST: gap-free
  replay); the README's screenshot of the HTML report is a cell run against it.

Network-fault variants (issue 14), each a MUST of ``contracts/*/network.yaml``:

- ``renumber-on-resume``: a stream resumed from a cursor (``starting_after``, ``Last-Event-ID``)
  numbers its events from the start again (responses from 0, invocations from 1).
- ``resend-last``: a resume also sends the event at the cursor, which the client already has.
- ``blocking-handler``: the handler waits, between deltas, until every live stream has written
  the events so far to its socket, and the server buffers nothing (transport high-water 0, the
  smallest send buffer): a slow reader holds the run back.
- ``reset-cancels``: a background stream whose client goes away (a reset) is cancelled, as if
  the client had asked to cancel it (responses: the create stream; invocations: the live GET).
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

VARIANTS = ("lenient", "readings", "deep-500", "surrogate-500", "stuck", "replay-gap", "seq-restart",
            "replay-drops-last", "terminal-not-last", "cursor-500", "cancel-keeps-streaming",
            "renumber-on-resume", "resend-last", "blocking-handler", "reset-cancels")


def _lenient() -> None:
    from starlette.exceptions import HTTPException
    from starlette.responses import PlainTextResponse

    from reference_impl import app, cursors, invocations, responses
    from reference_impl.errors import parse_json_body

    async def any_content_type(request: Any) -> dict[str, Any]:
        body = parse_json_body(await request.body())
        if not isinstance(body, dict):
            raise responses._bad(None, "The request body must be a JSON object.", "invalid_json")
        return body

    original_validate = responses.validate_create

    def ignore_unknown(body: dict[str, Any]) -> dict[str, Any]:
        return original_validate({k: v for k, v in body.items() if k in responses.CREATE_FIELDS})

    async def plain_http_error(request: Any, exc: Exception) -> Any:
        assert isinstance(exc, HTTPException)
        return PlainTextResponse(str(exc.detail), status_code=exc.status_code)

    def negative_is_start(text: str) -> int | None:
        return -1 if re.fullmatch(r"-[0-9]{1,18}", text) else cursors.cursor_value(text)

    responses._json_body = any_content_type
    responses.validate_create = ignore_unknown
    app._http_error = plain_http_error
    responses.cursor_value = negative_is_start
    invocations.cursor_value = negative_is_start


def _readings() -> None:
    from reference_impl import runtime

    runtime.TERMINAL_EVENTS = runtime.TERMINAL_EVENTS | {"response.cancelled"}
    original_init = runtime.Run.__init__

    def numbered_from_one(self: Any, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("recovered"):
            kwargs["next_seq"] = kwargs.get("next_seq", 0) + 1  # a suppressed duplicate created took one
        elif kwargs.get("next_seq", 0) == 0:
            kwargs["next_seq"] = 1
        original_init(self, *args, **kwargs)

    original_terminal = runtime.Run._terminal

    def terminal(self: Any, snap: dict[str, Any], event_type: str) -> None:
        if snap.get("status") == "cancelled":
            event_type = "response.cancelled"
        error = snap.get("error")
        if isinstance(error, dict) and error.get("code") == "server_error":
            snap = dict(snap, error=dict(error, code="server_crashed"))
        original_terminal(self, snap, event_type)

    original_orphan = runtime.Runtime._end_orphan

    def end_orphan(self: Any, rid: str, env: dict[str, Any], snap: dict[str, Any]) -> None:
        error = snap.get("error")
        if isinstance(error, dict) and error.get("code") == "server_error":
            snap = dict(snap, error=dict(error, code="server_crashed"))
        if snap.get("status") == "cancelled":  # the orphan's terminal event, as a cancel reads it
            last = self.store.events.last_seq(rid)
            if last is None:
                self.store.events.append(rid, {"type": "response.created", "sequence_number": 1, "response": env["response"]})
                last = 1
            self.store.events.append(rid, {"type": "response.cancelled", "sequence_number": last + 1, "response": snap})
            self.store.records.put(runtime.KIND_RESPONSE, rid, dict(env, response=snap))
            self.store.records.delete(runtime.KIND_TASK, rid)
            return
        original_orphan(self, rid, env, snap)

    runtime.Run.__init__ = numbered_from_one
    runtime.Run._terminal = terminal
    runtime.Runtime._end_orphan = end_orphan


def _deep_500() -> None:
    from reference_impl import responses

    original = responses.parse_json_body

    def parse(raw: bytes) -> Any:
        try:
            json.loads(raw)
        except RecursionError:
            raise RuntimeError("nesting too deep") from None  # unhandled: the server answers 500
        except ValueError:
            pass
        return original(raw)

    responses.parse_json_body = parse


def _surrogate_500() -> None:
    from starlette.responses import PlainTextResponse

    from reference_impl import app, responses

    original = responses._json_body

    async def body(request: Any) -> dict[str, Any]:
        raw = await request.body()
        try:
            model = json.loads(raw).get("model")
        except (ValueError, AttributeError, RecursionError):
            model = None
        if isinstance(model, str) and re.search("[\ud800-\udfff]", model):
            raise UnicodeEncodeError("utf-8", model, 0, 1, "surrogates not allowed")
        return await original(request)

    async def plain_500(request: Any, exc: Exception) -> Any:
        return PlainTextResponse("Internal Server Error", status_code=500)

    responses._json_body = body
    app._server_error = plain_500


def _stuck() -> None:
    from reference_impl import runtime

    original = runtime.Runtime._recover_one

    async def recover_one(self: Any, rid: str, task: dict[str, Any]) -> None:
        if task.get("disposition") != runtime.DISPOSITION_REINVOKE and not task.get("cancel_requested"):
            return  # the bug: an interrupted response that should be marked failed stays in_progress
        await original(self, rid, task)

    runtime.Runtime._recover_one = recover_one


def _replay_gap() -> None:
    from reference_impl import runtime

    original = runtime.Runtime.replay

    async def replay(self: Any, rid: str, after: int | None) -> Any:
        async for event in original(self, rid, after):
            if event.get("sequence_number") != 5:  # the bug: a replay loses the event at seq 5
                yield event

    runtime.Runtime.replay = replay


def _seq_restart() -> None:
    from reference_impl import runtime

    original_init = runtime.Run.__init__

    def from_zero(self: Any, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("recovered"):
            kwargs["next_seq"] = 0  # the bug: the recovered attempt numbers from 0 again
        original_init(self, *args, **kwargs)

    runtime.Run.__init__ = from_zero


def _replay_drops_last() -> None:
    from reference_impl import runtime

    original = runtime.Runtime.replay

    async def replay(self: Any, rid: str, after: int | None) -> Any:
        async for event in original(self, rid, after):
            if event["type"] in runtime.TERMINAL_EVENTS:
                return  # the bug: the terminal event is never sent on a replay
            yield event

    runtime.Runtime.replay = replay


def _terminal_not_last() -> None:
    from reference_impl import runtime

    original = runtime.Runtime.replay

    async def replay(self: Any, rid: str, after: int | None) -> Any:
        last = None
        async for event in original(self, rid, after):
            last = event
            yield event
        if last is not None and last["type"] in runtime.TERMINAL_EVENTS:  # the bug: one more event after it
            yield {"type": "response.in_progress", "sequence_number": last["sequence_number"] + 1,
                   "response": dict(last.get("response") or {}, status="in_progress")}

    runtime.Runtime.replay = replay


def _cursor_500() -> None:
    from reference_impl import responses

    original = responses.cursor_value

    def cursor_value(text: str) -> int | None:
        if not text.isdigit():
            raise RuntimeError(f"bad cursor {text!r}")  # unhandled: the server answers 500
        return original(text)

    responses.cursor_value = cursor_value


def _cancel_keeps_streaming() -> None:
    from starlette.responses import JSONResponse

    from reference_impl import responses

    original = responses.cancel_response

    async def cancel(request: Any) -> Any:
        rt = responses._runtime(request)
        rid = request.path_params["response_id"]
        run = rt.runs.get(rid)
        env = rt.visible(rid)
        if run is not None and env is not None and env.get("background"):
            return JSONResponse(dict(env["response"], status="cancelled", output=[]))  # the bug: the run goes on
        return await original(request)

    responses.cancel_response = cancel  # app.py builds its routes after this patch


def _resume_from(shift: Any) -> None:
    """Both profiles' resume streams pass through ``shift(after, events)``."""
    from reference_impl import invocations, runtime

    original_replay = runtime.Runtime.replay

    async def replay(self: Any, rid: str, after: int | None) -> Any:
        async for event in shift(after, original_replay(self, rid, after), "sequence_number", 0):
            yield event

    original_stream = invocations._stream

    async def stream(stored: Any, live: Any, after: int) -> Any:
        async for event in shift(after or None, original_stream(stored, live, after), "event_id", 1):
            yield event

    runtime.Runtime.replay = replay
    invocations._stream = stream


def _renumber_on_resume() -> None:
    async def renumber(after: int | None, events: Any, key: str, first: int) -> Any:
        n = first
        async for event in events:
            if after is not None:
                event = dict(event, **{key: n})
                n += 1
            yield event

    _resume_from(renumber)


def _resend_last() -> None:
    from reference_impl import invocations, runtime

    original_replay = runtime.Runtime.replay
    original_stream = invocations._stream

    async def replay(self: Any, rid: str, after: int | None) -> Any:
        async for event in original_replay(self, rid, after - 1 if after else after):
            yield event

    async def stream(stored: Any, live: Any, after: int) -> Any:
        async for event in original_stream(stored, live, after - 1 if after else after):
            yield event

    runtime.Runtime.replay = replay
    invocations._stream = stream


def _blocking_handler() -> None:
    import asyncio
    import socket
    import types

    from uvicorn.protocols.http import h11_impl

    from reference_impl import script, sse

    unsent = [0]  # events the SSE pumps hold but have not written yet
    changed = asyncio.Event()

    class Pumped(sse.SSEResponse):
        def __init__(self, events: Any, *args: Any, **kwargs: Any) -> None:
            async def counted() -> Any:
                async for event in events:
                    unsent[0] += 1
                    yield event  # the pump asks for the next event once its send of this one returned
                    unsent[0] -= 1
                    changed.set()
            super().__init__(counted(), *args, **kwargs)

    async def wait_written(seconds: float) -> None:
        await asyncio.sleep(seconds)
        while seconds == 0 and unsent[0] > 0:  # between deltas: the handler waits for its readers
            changed.clear()
            await changed.wait()

    shim = types.ModuleType("asyncio_shim")
    shim.__dict__.update({k: getattr(asyncio, k) for k in dir(asyncio) if not k.startswith("__")})
    shim.sleep = wait_written
    script.asyncio = shim
    from reference_impl import invocations, responses
    responses.SSEResponse = Pumped
    invocations.SSEResponse = Pumped

    original_made = h11_impl.H11Protocol.connection_made

    def unbuffered(self: Any, transport: Any) -> None:
        original_made(self, transport)
        transport.set_write_buffer_limits(high=0)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1)

    h11_impl.H11Protocol.connection_made = unbuffered


def _reset_cancels() -> None:
    import contextvars

    from reference_impl import invocations, responses, runtime
    from reference_impl.sse import SSEResponse

    made: contextvars.ContextVar[list[Any]] = contextvars.ContextVar("made")
    original_create_run = runtime.Runtime.create_run

    def create_run(self: Any, *args: Any, **kwargs: Any) -> Any:
        run = original_create_run(self, *args, **kwargs)
        made.get([]).append(run)
        return run

    original_create = responses.create_response

    async def create_response(request: Any) -> Any:
        runs: list[Any] = []
        made.set(runs)
        answer = await original_create(request)
        if isinstance(answer, SSEResponse) and answer.on_disconnect is None and runs:
            answer.on_disconnect = lambda: runs[0].stop("cancel")  # a background stream's reset cancels it
        return answer

    original_get = invocations.get_invocation

    async def get_invocation(request: Any) -> Any:
        answer = await original_get(request)
        inv = invocations._irt(request).live.get(request.path_params["invocation_id"])
        if isinstance(answer, SSEResponse) and inv is not None:
            answer.on_disconnect = lambda: inv.stop("cancel")
        return answer

    runtime.Runtime.create_run = create_run
    responses.create_response = create_response
    invocations.get_invocation = get_invocation


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "--variant" or argv[1] not in VARIANTS:
        print(f"usage: variant_server.py --variant {{{'|'.join(VARIANTS)}}} <reference_impl options>", file=sys.stderr)
        return 2
    {"lenient": _lenient, "readings": _readings, "deep-500": _deep_500, "surrogate-500": _surrogate_500, "stuck": _stuck,
     "replay-gap": _replay_gap, "seq-restart": _seq_restart, "replay-drops-last": _replay_drops_last, "terminal-not-last": _terminal_not_last,
     "cursor-500": _cursor_500, "cancel-keeps-streaming": _cancel_keeps_streaming,
     "renumber-on-resume": _renumber_on_resume, "resend-last": _resend_last,
     "blocking-handler": _blocking_handler, "reset-cancels": _reset_cancels}[argv[1]]()
    from reference_impl.cli import main as reference_main

    return reference_main(argv[2:])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
