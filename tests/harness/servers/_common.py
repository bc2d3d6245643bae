"""Shared bits of the tiny test servers: a stdlib HTTP server with a few control endpoints.

GET /readiness  200 "ok" (or the status given to make_server(); the path is make_server()'s too)
GET /pid        the server's pid
GET /mark?tag=T append "pid <pid>" to $CONFORMANCE_MARKER_DIR/T.log, answer 200
GET /state      the contents of <state_dir>/boots.txt
GET /hold?tag=T append "held 1" to $CONFORMANCE_MARKER_DIR/T.log, wait (bounded) for T.release,
                append "released", answer 200
GET /exit?code=N answer, then exit at once with code N
"""

import http.server
import os
import sys
import threading
import urllib.parse

_tick = threading.Event()


def marker(tag, line):
    """Append one fsync'd line to the tag's marker file, as docs/protocol.md §3.4 says a handler does."""
    path = os.path.join(os.environ["CONFORMANCE_MARKER_DIR"], tag + ".log")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def record_boot(state_dir):
    """Append this pid to <state_dir>/boots.txt (evidence that state survives restarts)."""
    if state_dir:
        with open(os.path.join(state_dir, "boots.txt"), "a") as fh:
            fh.write(f"{os.getpid()}\n")


def make_server(port, readiness_status=200, state_dir=None, readiness_path="/readiness"):
    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self, status, text):
            body = b"" if status == 204 else text.encode()  # a 204 has no body
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            if url.path == readiness_path:
                self._answer(readiness_status, "ok" if readiness_status == 200 else "warming up")
            elif url.path == "/pid":
                self._answer(200, str(os.getpid()))
            elif url.path == "/mark":
                marker(query["tag"], f"pid {os.getpid()}")
                self._answer(200, "marked")
            elif url.path == "/state":
                try:
                    with open(os.path.join(state_dir, "boots.txt")) as fh:
                        self._answer(200, fh.read())
                except OSError as exc:
                    self._answer(404, str(exc))
            elif url.path == "/hold":
                tag = query["tag"]
                marker(tag, "held 1")
                release = os.path.join(os.environ["CONFORMANCE_MARKER_DIR"], tag + ".release")
                for _ in range(2000):  # bounded: 10 s
                    if os.path.exists(release):
                        break
                    _tick.wait(0.005)
                else:
                    self._answer(504, "never released")
                    return
                marker(tag, "released")
                self._answer(200, "released")
            elif url.path == "/exit":
                self._answer(200, "bye")
                os._exit(int(query.get("code", "0")))
            else:
                self._answer(404, "no such path")

        def log_message(self, fmt, *args):
            sys.stdout.write("request: " + (fmt % args) + "\n")

    return http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
