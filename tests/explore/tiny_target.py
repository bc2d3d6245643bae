"""A tiny responses-profile target (stdlib only) with switchable, deliberate bugs.

It implements just enough of docs/protocol.md for the exploration suites: create (background,
stream, store), GET, replay with ``starting_after``, cancel, readiness, the test-control script
(deltas, delay_ms, hold_at with the release file, tag, markers) and crash recovery (re-run from
delta 0 with ``--resilient-background``, else mark failed).  ``checkpoint_every`` is accepted and
has no effect (no ``checkpoint`` marker is written, so the markers predict a re-run from 0).

``--bug`` switches one defect on:

- ``reuse-seq``: a recovered attempt numbers its events from the last persisted seq again
  (the first recovered event reuses a sequence number);
- ``cursor-500``: a malformed ``starting_after`` raises, so the client gets a 500;
- ``echo-cursor``: a replay ignores ``starting_after`` and serves every event from 0;
- ``lose-last``: every event reaches clients before it is written; the newest event is only
  written when the next one comes, so a SIGKILL loses the last event clients saw.

A plain input (no script) runs ``--plain-script`` (default ``{"deltas": 3}``): the black-box
tests give it a longer run (``explore_helpers.tiny_config(plain_script=...)``, ``control: none``).

Run: ``python tiny_target.py --port P --state-dir D [--resilient-background] [--bug NAME] [--plain-script JSON]``.
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
from urllib.parse import parse_qs, urlsplit

ID_RE = re.compile(r"^resp_[A-Za-z0-9]{1,64}$")
TAG_RE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
FIELDS = {"input": (str, list), "model": (str,), "store": (bool,), "background": (bool,), "stream": (bool,), "metadata": (dict,)}
TERMINAL = {"completed", "failed", "cancelled"}


class Resp:
    """One response: its events (what clients see) and what is persisted."""

    def __init__(self, rid: str, request: dict, script: dict, attempt: int = 1) -> None:
        self.id = rid
        self.request = request
        self.script = script
        self.attempt = attempt
        self.events: list[dict] = []
        self.status = "in_progress"
        self.output_text = ""
        self.cond = threading.Condition()
        self.pending: dict | None = None  # lose-last: the event not written yet

    def snapshot(self) -> dict:
        output = [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": self.output_text}]}] \
            if self.status == "completed" else []
        return {"id": self.id, "object": "response", "status": self.status, "output": output, "error": None,
                "background": self.request.get("background", False), "store": self.request.get("store", True)}


class App:
    def __init__(self, state: Path, markers: Path | None, resilient: bool, bug: str) -> None:
        self.state = state
        self.markers = markers
        self.resilient = resilient
        self.bug = bug
        self.plain_script: dict = {"deltas": 3}  # what a plain (script-less) input runs (--plain-script)
        self.responses: dict[str, Resp] = {}
        state.mkdir(parents=True, exist_ok=True)

    # -- persistence -----------------------------------------------------------------
    def _append(self, resp: Resp, event: dict) -> None:
        if not resp.request.get("store", True):
            return
        with open(self.state / f"{resp.id}.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(event) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def _save_task(self, resp: Resp) -> None:
        if resp.request.get("store", True):
            tmp = self.state / f"{resp.id}.task.tmp"
            tmp.write_text(json.dumps({"request": resp.request, "script": resp.script, "attempt": resp.attempt}))
            os.replace(tmp, self.state / f"{resp.id}.task.json")

    def emit(self, resp: Resp, type_: str, **fields) -> bool:
        """Append one event (persist, then show) unless the response is already terminal."""
        with resp.cond:
            if resp.status in TERMINAL:
                return False
            seq = resp.events[-1]["sequence_number"] + 1 if resp.events else 0
            event = {"type": type_, "sequence_number": seq, **fields}
            if self.bug == "lose-last":
                if resp.pending is not None:
                    self._append(resp, resp.pending)
                resp.pending = event
            else:
                self._append(resp, event)
            resp.events.append(event)
            resp.cond.notify_all()
            return True

    def terminal(self, resp: Resp, status: str, error: dict | None = None) -> bool:
        with resp.cond:
            if resp.status in TERMINAL:
                return False
            resp.status = status
            snap = resp.snapshot()
            snap["error"] = error
            kind = "response.completed" if status == "completed" else "response.failed"
            resp.status = "in_progress"  # let emit() through, then settle
            self.emit(resp, kind, response=snap)
            resp.status = status
            resp.cond.notify_all()
            return True

    def marker(self, resp: Resp, line: str) -> None:
        tag = resp.script.get("tag")
        if self.markers is None or not isinstance(tag, str):
            return
        with open(self.markers / f"{tag}.log", "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())

    # -- the handler -----------------------------------------------------------------
    def run(self, resp: Resp, fresh: bool) -> None:
        s = resp.script
        self.marker(resp, f"start attempt={resp.attempt} id={resp.id} from=0")
        if fresh:
            self.emit(resp, "response.created", response=resp.snapshot())
        self.emit(resp, "response.in_progress", response=resp.snapshot())
        text = ""
        for i in range(int(s.get("deltas", 3))):
            if s.get("delay_ms"):
                time.sleep(float(s["delay_ms"]) / 1000)
            piece = f"a{resp.attempt}:d{i} "
            if not self.emit(resp, "response.output_text.delta", delta=piece):
                self.marker(resp, "interrupted")
                return
            text += piece
            self.marker(resp, f"delta {i}")
            if s.get("hold_at") == i:
                self.marker(resp, f"held {i}")
                release = self.markers / f"{s['tag']}.release" if self.markers else None
                while release is not None and not release.exists():
                    if resp.status in TERMINAL:
                        self.marker(resp, "interrupted")
                        return
                    time.sleep(0.005)
                self.marker(resp, "released")
        with resp.cond:
            resp.output_text = text
        if self.terminal(resp, "completed"):
            self.marker(resp, "done")

    def start(self, resp: Resp, fresh: bool) -> None:
        self.responses[resp.id] = resp
        threading.Thread(target=self.run, args=(resp, fresh), daemon=True).start()

    def recover(self) -> None:
        for task in sorted(self.state.glob("*.task.json")):
            data = json.loads(task.read_text())
            rid = task.name[: -len(".task.json")]
            resp = Resp(rid, data["request"], data["script"], data["attempt"])
            log = self.state / f"{rid}.jsonl"
            lines = log.read_text().splitlines() if log.exists() else []
            resp.events = [json.loads(line) for line in lines if line.strip()]
            if not resp.events:
                task.unlink()
                continue
            last = resp.events[-1]
            if last["type"] in ("response.completed", "response.failed"):
                resp.status = last["response"]["status"]
                resp.output_text = "".join(
                    p.get("text", "") for item in last["response"]["output"] for p in item.get("content", []))
                self.responses[rid] = resp
                continue
            if self.bug == "reuse-seq":
                resp.events = resp.events[:-1]  # numbering goes on from the last seq, not after it
            self.responses[rid] = resp
            if self.resilient and resp.request.get("background"):
                resp.attempt += 1
                self._save_task(resp)
                self.start(resp, fresh=False)
            else:
                self.terminal(resp, "failed", {"code": "server_error", "message": "crash recovery"})


def error(code: int, kind: str, message: str, param: str | None = None) -> tuple[int, dict]:
    return code, {"error": {"type": "invalid_request_error", "code": kind, "message": message, "param": param}}


class Handler(BaseHTTPRequestHandler):
    app: App
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def send_json(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def stream(self, resp: Resp, after: int) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        index = 0
        while True:
            with resp.cond:
                resp.cond.wait_for(lambda: len(resp.events) > index or resp.status in TERMINAL, timeout=30)
                batch = resp.events[index:]
                index = len(resp.events)
                done = resp.status in TERMINAL and not batch
            if done:
                return
            for event in batch:
                if event["sequence_number"] > after:
                    self.wfile.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
            self.wfile.flush()
            if any(e["type"] in ("response.completed", "response.failed") for e in batch):
                return

    def do_GET(self) -> None:
        self._guard(self._get)

    def do_POST(self) -> None:
        self._guard(self._post)

    def _guard(self, handler) -> None:
        """An exception in a handler answers 500 (what the ``cursor-500`` bug shows)."""
        try:
            handler()
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as exc:  # noqa: BLE001 - the point: an unhandled error becomes a 500
            self.send_json(500, {"error": {"type": "server_error", "code": "server_error", "message": repr(exc), "param": None}})

    def _get(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/readiness":
            return self.send_json(200, {"status": "ready"})
        m = re.fullmatch(r"/responses/([^/]*)", url.path)
        if not m:
            return self.send_json(*error(404, "not_found", "no route"))
        rid = m.group(1)
        if not ID_RE.match(rid):
            return self.send_json(*error(400, "invalid_value", "bad id", "response_id"))
        resp = self.app.responses.get(rid)
        if resp is None or not resp.request.get("store", True):
            return self.send_json(*error(404, "invalid_request_error", f"{rid} not found", "response_id"))
        q = parse_qs(url.query, keep_blank_values=True)
        if q.get("stream", ["false"])[0] != "true":
            return self.send_json(200, resp.snapshot())
        raw = q.get("starting_after", [None])[0]
        after = -1
        if raw is not None:
            if self.app.bug == "cursor-500":
                after = int(raw)  # the bug: a malformed cursor raises -> 500
                if after < 0:
                    return self.send_json(*error(400, "invalid_value", "bad cursor", "starting_after"))
            elif not (raw.isascii() and raw.isdigit()):
                return self.send_json(*error(400, "invalid_value", "bad cursor", "starting_after"))
            else:
                digits = raw.lstrip("0") or "0"  # any length is well formed: past every event
                after = int(digits) if len(digits) <= 30 else 10**30
            if self.app.bug == "echo-cursor":
                after = -1  # the bug: the cursor is checked, then ignored
        if not (resp.request.get("background") and resp.request.get("stream")):
            return self.send_json(*error(400, "invalid_value", "needs background=true and stream=true", "stream"))
        self.stream(resp, after)

    def _post(self) -> None:
        url = urlsplit(self.path)
        m = re.fullmatch(r"/responses/([^/]*)/cancel", url.path)
        if m:
            resp = self.app.responses.get(m.group(1))
            if resp is None:
                return self.send_json(*error(404, "invalid_request_error", "not found", "response_id"))
            if resp.status in ("completed", "failed"):
                return self.send_json(*error(400, "invalid_request_error", f"Cannot cancel a {resp.status} response."))
            self.app.terminal(resp, "cancelled")
            return self.send_json(200, resp.snapshot())
        if url.path != "/responses":
            return self.send_json(*error(404, "not_found", "no route"))
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if (self.headers.get("Content-Type") or "").split(";")[0].strip() != "application/json":
            return self.send_json(*error(400, "invalid_content_type", "need application/json"))
        try:
            body = json.loads(raw)
        except ValueError:
            return self.send_json(*error(400, "invalid_json", "not JSON"))
        if not isinstance(body, dict):
            return self.send_json(*error(400, "invalid_json", "not an object"))
        for key, value in body.items():
            if key not in FIELDS:
                return self.send_json(*error(400, "unknown_parameter", f"unknown {key}", key))
            if value is not None and not isinstance(value, FIELDS[key]):
                return self.send_json(*error(400, "invalid_value", f"bad {key}", key))
        if body.get("input") is None:
            return self.send_json(*error(400, "missing_required_parameter", "input", "input"))
        request = {"store": True, "background": False, "stream": False, **{k: v for k, v in body.items() if v is not None}}
        if request["background"] and not request["store"]:
            return self.send_json(*error(400, "unsupported_parameter", "background needs store", "background"))
        script = dict(self.app.plain_script)
        if isinstance(request["input"], str):
            try:
                parsed = json.loads(request["input"])
            except ValueError:
                parsed = None
            if isinstance(parsed, dict) and "conformance" in parsed:
                if not isinstance(parsed["conformance"], dict):
                    return self.send_json(*error(400, "invalid_value", "script", "input"))
                script = parsed["conformance"]
        if "tag" in script and not (isinstance(script["tag"], str) and TAG_RE.match(script["tag"])):
            return self.send_json(*error(400, "invalid_value", "tag", "input"))
        resp = Resp("resp_" + uuid.uuid4().hex, request, script)
        self.app._save_task(resp)
        self.app.start(resp, fresh=True)
        if request["stream"]:
            return self.stream(resp, -1)
        with resp.cond:
            resp.cond.wait_for(lambda: resp.events if request["background"] else resp.status in TERMINAL, timeout=30)
        self.send_json(200, resp.snapshot())


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--state-dir", required=True)
    p.add_argument("--resilient-background", action="store_true")
    p.add_argument("--bug", default="none", choices=["none", "reuse-seq", "cursor-500", "lose-last", "echo-cursor"])
    p.add_argument("--plain-script", default='{"deltas": 3}', help="what a plain input (no script) runs, as JSON")
    a = p.parse_args()
    marker_dir = os.environ.get("CONFORMANCE_MARKER_DIR")
    app = App(Path(a.state_dir), Path(marker_dir) if marker_dir else None, a.resilient_background, a.bug)
    app.plain_script = json.loads(a.plain_script)
    app.recover()
    Handler.app = app
    server = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    server.daemon_threads = True
    print(f"tiny target on {a.port} (bug={a.bug}, resilient={a.resilient_background})", file=sys.stderr)
    server.serve_forever()


if __name__ == "__main__":
    main()
