"""A tiny invocations-profile target (stdlib only) with switchable, deliberate input-handling bugs.

It implements just enough of docs/protocol.md §7 for the adversarial suite: ``POST /invocations``
(body checks, ``session_id``), ``GET /invocations/{id}`` (SSE with ``id:`` lines, resume by
``Last-Event-ID`` or ``?last_event_id=``, the header wins; ``Accept: application/json`` gives the
snapshot), ``POST /invocations/{id}/cancel``, readiness, JSON errors for unknown routes and
wrong methods, and the test-control script (deltas, hold_at with the release file, tag, markers;
a bad field fails the run with ``unsupported_script``).  No steering, no recovery: a session id
is only recorded (one file per session under ``state/sessions/``).

``--bug`` switches one defect on:

- ``cursor-500``: a malformed cursor (header or query) raises, so the client gets a 500;
- ``echo-cursor``: the raw cursor is echoed into an ``X-Last-Event-ID`` answer header, so a
  CR/LF in ``?last_event_id=`` injects a header;
- ``partial-stream``: a malformed cursor starts the stream from the beginning, then the server
  drops it after one frame (a 200 and a partial SSE stream);
- ``traversal``: ids are not checked; the snapshot is read from ``state/<id>.json``, so
  ``../secret`` reads a file outside the state dir;
- ``session-file``: a string ``session_id`` is not checked before it names its file, so
  ``../../x`` creates a file outside the state dir.

Run: ``python tiny_inv_target.py --port P --state-dir D [--bug NAME]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

BUGS = ("none", "cursor-500", "echo-cursor", "partial-stream", "traversal", "session-file")
ID_RE = re.compile(r"inv_[A-Za-z0-9]{1,64}")
SESSION_RE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
TAG_RE = re.compile(r"[A-Za-z0-9_.-]{1,128}")
CURSOR_RE = re.compile(r"[0-9]+")
TERMINAL = {"completed", "failed", "cancelled"}
MINIMUM = {"deltas": 0, "hold_at": -1, "checkpoint_every": 1, "fail_at": 0}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, param: str | None = None, type_: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.body = status, {"error": {"type": type_, "code": code, "message": message, "param": param}}


class Inv:
    def __init__(self, inv_id: str, session_id: str, script: dict) -> None:
        self.id, self.session_id, self.script = inv_id, session_id, script
        self.events: list[dict] = []
        self.status, self.output, self.error = "in_progress", "", None
        self.cond = threading.Condition()

    def snapshot(self) -> dict:
        return {"invocation_id": self.id, "session_id": self.session_id, "status": self.status, "output": self.output,
                "attempt": 1, "entry_mode": "fresh", "error": self.error, "last_event_id": len(self.events)}


def script_problem(script: dict) -> str | None:
    for key, value in script.items():
        if key in MINIMUM and not (type(value) is int and value >= MINIMUM[key]):
            return f"script field {key!r}: expected an integer >= {MINIMUM[key]}"
        if key == "delay_ms" and not (type(value) in (int, float) and value >= 0):
            return "script field 'delay_ms': expected a number >= 0"
        if key == "tag" and not (isinstance(value, str) and TAG_RE.fullmatch(value)):
            return "script field 'tag': malformed"
        if key not in MINIMUM and key not in ("delay_ms", "tag"):
            return f"script field {key[:40]!r}: unknown field"
    if "hold_at" in script and "tag" not in script:
        return "script field 'hold_at': needs a tag"
    return None


class App:
    def __init__(self, state: Path, markers: Path | None, bug: str) -> None:
        self.state, self.markers, self.bug = state, markers, bug
        self.invs: dict[str, Inv] = {}
        (state / "sessions").mkdir(parents=True, exist_ok=True)

    def save(self, inv: Inv) -> None:
        tmp = self.state / f"{inv.id}.json.tmp"
        tmp.write_text(json.dumps(inv.snapshot()))
        os.replace(tmp, self.state / f"{inv.id}.json")

    def emit(self, inv: Inv, type_: str, **fields) -> bool:
        """Persist then show one event, unless the invocation is already terminal."""
        with inv.cond:
            if inv.status in TERMINAL:
                return False
            event = {"type": type_, "event_id": len(inv.events) + 1, "invocation_id": inv.id, **fields}
            with open(self.state / f"{inv.id}.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(event) + "\n")
            inv.events.append(event)
            if type_.split(".")[1] in TERMINAL:
                inv.status = type_.split(".")[1]
                self.save(inv)
            inv.cond.notify_all()
            return True

    def marker(self, inv: Inv, line: str) -> None:
        tag = inv.script.get("tag")
        if self.markers is not None and isinstance(tag, str) and TAG_RE.fullmatch(tag):
            with open(self.markers / f"{tag}.log", "a", encoding="utf-8") as f:
                f.write(line + "\n")

    def run(self, inv: Inv) -> None:
        s = inv.script
        self.marker(inv, f"start attempt=1 id={inv.id} from=0")
        self.emit(inv, "invocation.started", attempt=1, entry_mode="fresh", **{"from": 0})
        problem = script_problem(s)
        if problem:
            inv.error = {"code": "unsupported_script", "message": problem}
            self.emit(inv, "invocation.failed", error=inv.error)
            return
        for i in range(s.get("deltas", 3)):
            if s.get("fail_at") == i:
                self.marker(inv, f"fail {i}")
                inv.error = {"code": "handler_error", "message": f"fail_at {i}"}
                self.emit(inv, "invocation.failed", error=inv.error)
                return
            time.sleep(s.get("delay_ms", 0) / 1000)
            text = f"a1:d{i} "
            if not self.emit(inv, "invocation.delta", index=i, text=text):
                return self.marker(inv, "interrupted")
            inv.output += text
            self.marker(inv, f"delta {i}")
            if s.get("hold_at") == i:
                self.marker(inv, f"held {i}")
                release = self.markers / f"{s['tag']}.release" if self.markers else None
                while release is not None and not release.exists():  # the handler polls its release file
                    if inv.status in TERMINAL:
                        return self.marker(inv, "interrupted")
                    time.sleep(0.005)
                self.marker(inv, "released")
        if self.emit(inv, "invocation.completed", output=inv.output):
            self.marker(inv, "done")

    def create(self, raw: bytes) -> Inv:
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            raise ApiError(400, "invalid_json", "The body is not JSON.") from None
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_json", "The body must be a JSON object.")
        for key in body:
            if key not in ("input", "session_id"):
                raise ApiError(400, "unknown_parameter", f"Unknown parameter {key[:40]!r}.", key[:128])
        if body.get("input") is None:
            raise ApiError(400, "missing_required_parameter", "Missing 'input'.", "input")
        given, script = body["input"], {"deltas": 3}
        if not isinstance(given, dict):
            raise ApiError(400, "invalid_value", "'input' must be an object.", "input")
        if "conformance" in given:
            if set(given) != {"conformance"} or not isinstance(given["conformance"], dict):
                raise ApiError(400, "invalid_value", "'conformance' must be an object, alone.", "input")
            script = given["conformance"]
        sid = body.get("session_id")
        checked = isinstance(sid, str) if self.bug == "session-file" else isinstance(sid, str) and SESSION_RE.fullmatch(sid)
        if sid is not None and not checked:
            raise ApiError(400, "invalid_value", "Bad 'session_id'.", "session_id")
        inv = Inv("inv_" + uuid.uuid4().hex, sid or "sess_" + uuid.uuid4().hex, script)
        (self.state / "sessions" / f"{inv.session_id}.json").write_text(json.dumps({"last": inv.id}))
        self.invs[inv.id] = inv
        self.save(inv)
        threading.Thread(target=self.run, args=(inv,), daemon=True).start()
        return inv


class Handler(BaseHTTPRequestHandler):
    app: App
    protocol_version = "HTTP/1.1"
    ROUTES = ((re.compile(r"/readiness"), "readiness", "GET"), (re.compile(r"/invocations"), "collection", "POST"),
              (re.compile(r"/invocations/([^/]+)"), "item", "GET"), (re.compile(r"/invocations/([^/]+)/cancel"), "cancel", "POST"))
    LOOSE = ((re.compile(r"/invocations/(.+)/cancel"), "cancel", "POST"), (re.compile(r"/invocations/(.+)"), "item", "GET"))

    def log_message(self, *args) -> None:  # quiet
        pass

    def __getattr__(self, name: str):
        if name.startswith("do_"):  # every method, known or not, is routed (a wrong one is a JSON 405)
            return lambda: self.handle_method(name[3:])
        raise AttributeError(name)

    def send_json(self, status: int, body: dict, extra: tuple = ()) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        for key, value in extra:
            self.send_header(key, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_method(self, method: str) -> None:
        self.echo: list[tuple[str, str]] = []
        try:
            self.dispatch(method)
        except ApiError as exc:
            self.send_json(exc.status, exc.body, tuple(self.echo))
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as exc:  # noqa: BLE001 - the point: an unhandled error becomes a 500
            self.send_json(500, {"error": {"type": "server_error", "code": "server_error", "message": repr(exc), "param": None}})

    def dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        routes = self.LOOSE + self.ROUTES if self.app.bug == "traversal" else self.ROUTES
        for pattern, kind, allowed in routes:
            m = pattern.fullmatch(url.path)
            if m:
                break
        else:
            raise ApiError(404, "not_found", "No route.")
        if method != allowed:
            raise ApiError(405, "method_not_allowed", f"Method {method[:20]} is not allowed here.")
        if kind == "readiness":
            return self.send_json(200, {"status": "ready"})
        if kind == "collection":
            length = int(self.headers.get("Content-Length") or 0)
            inv = self.app.create(self.rfile.read(length) if length else b"")
            return self.send_json(200, {"invocation_id": inv.id, "session_id": inv.session_id, "status": inv.status})
        inv_id = unquote(m.group(1), errors="surrogateescape")
        stored = self.app.state / f"{inv_id}.json"
        if self.app.bug == "traversal" and not ID_RE.fullmatch(inv_id) and stored.exists():
            return self.send_json(200, json.loads(stored.read_text()))  # the bug: the id names any file
        if not ID_RE.fullmatch(inv_id):
            raise ApiError(400, "invalid_value", "Bad invocation id.", "invocation_id")
        inv = self.app.invs.get(inv_id)
        if inv is None:
            raise ApiError(404, "invocation_not_found", f"Invocation {inv_id} not found.", "invocation_id")
        if kind == "cancel":
            return self.cancel(inv)
        accept = {p.split(";")[0].strip().lower() for p in self.headers.get("Accept", "").split(",")}
        if "application/json" in accept and "text/event-stream" not in accept:
            return self.send_json(200, inv.snapshot())
        try:
            after = self.cursor(url.query)
        except ApiError:
            if self.app.bug != "partial-stream":
                raise
            return self.stream(inv, 0, cut_after=1)  # the bug: a 200 stream, dropped after one frame
        self.stream(inv, after)

    def cursor(self, query: str) -> int:
        headers = self.headers.get_all("Last-Event-ID") or []
        queries = parse_qs(query, keep_blank_values=True).get("last_event_id", [])
        if len(headers) > 1 or len(queries) > 1:
            raise ApiError(400, "invalid_value", "The cursor is given twice.", "last_event_id")
        after = 0
        for value in queries + [h.strip(" \t") for h in headers]:  # the header comes last: it wins
            if self.app.bug == "echo-cursor":
                self.echo.append(("X-Last-Event-ID", value.encode("utf-8", "replace").decode("latin-1")))  # the bug
            if self.app.bug == "cursor-500":
                after = int(value)  # the bug: "abc" raises
            elif not CURSOR_RE.fullmatch(value):
                raise ApiError(400, "invalid_value", "Bad cursor.", "last_event_id")
            else:
                digits = value.lstrip("0") or "0"
                after = int(digits) if len(digits) <= 30 else 10**30
        return after

    def cancel(self, inv: Inv) -> None:
        if inv.status == "in_progress":
            self.app.emit(inv, "invocation.cancelled")
        if inv.status != "cancelled":
            raise ApiError(409, "invocation_finished", f"Already {inv.status}.", None, "conflict")
        self.send_json(200, inv.snapshot())

    def stream(self, inv: Inv, after: int, cut_after: int | None = None) -> None:
        self.send_response(200)
        for key, value in self.echo:
            self.send_header(key, value)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        index = sent = 0
        while True:
            with inv.cond:
                inv.cond.wait_for(lambda: len(inv.events) > index or inv.status in TERMINAL, timeout=30)
                batch, index = inv.events[index:], len(inv.events)
                if inv.status in TERMINAL and not batch:
                    return
            for event in batch:
                if event["event_id"] > after:
                    self.wfile.write(f"id: {event['event_id']}\nevent: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
                    sent += 1
                    if sent == cut_after:
                        return self.wfile.flush()
            self.wfile.flush()
            if any(e["type"].split(".")[1] in TERMINAL for e in batch):
                return


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--state-dir", required=True)
    p.add_argument("--bug", default="none", choices=BUGS)
    a = p.parse_args()
    marker_dir = os.environ.get("CONFORMANCE_MARKER_DIR")
    Handler.app = App(Path(a.state_dir), Path(marker_dir) if marker_dir else None, a.bug)
    server = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    server.daemon_threads = True
    print(f"tiny invocations target on {a.port} (bug={a.bug})", file=sys.stderr)
    server.serve_forever()


if __name__ == "__main__":
    main()
