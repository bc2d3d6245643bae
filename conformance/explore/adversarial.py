"""Adversarial input: hypothesis strategies for bad requests, a raw HTTP/1.1 sender (answers are
read with h11), and the pure expectation every answer must meet.

Each class (``CLASSES``) is its own test id in ``conformance/suites/test_adversarial_responses.py``.
A request is sent as raw bytes over a loopback socket (so that CR/LF in headers, NUL in paths,
wrong methods and truncated bodies reach the server exactly as written) with ``Connection:
close``; the answer is read to EOF under a deadline.

Expectations (``answer_problems``):

- ``error``: the input is invalid: a 4xx with a JSON body of the documented shape
  ``{"error": {"type", "code", "message", "param"}}``;
- ``error_or_ok``: the input may be valid (a huge but well-formed body, a unicode edge case, a
  cursor from another stream): a 2xx (JSON parses; an event stream ends cleanly) or an ``error``;
- ``protocol``: the request is broken below HTTP semantics (CR/LF in a header): the framework
  may answer before the app, so any 4xx (or a 2xx if it parsed) is accepted;
- ``ok``: the documentation says this input is served (a cursor past the last event id): a 2xx;

and always: an answer (never a hang), never a 5xx, never a partial event stream, and no request
text echoed into the answer's headers (``X-Injected``).  How a 2xx answer is judged is the wire's
business (``responses_ok_problems`` here; ``adversarial_invocations`` has the invocations one).

The generic pieces of the suites live here too, shared by every profile's suite:
``plant_secrets`` / ``outside_files`` (nothing is read or created outside the state dir),
``server_problems`` (the server is alive and ready), ``probe_problems`` (one request, judged)
and ``run_class`` (one class under the hypothesis budget, with the known-bug bookkeeping).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h11
from hypothesis import strategies as st

DEADLINE_S = 10.0
KNOWN_FIELDS = ("input", "model", "store", "background", "stream", "metadata", "previous_response_id")


@dataclass(frozen=True)
class BadRequest:
    """One request to send as raw bytes."""

    method: str
    path: str  # raw request target, sent as is (may hold %2e, NUL, ../)
    body: bytes | None = None
    headers: tuple[tuple[bytes, bytes], ...] = ((b"content-type", b"application/json"),)
    expect: str = "error"  # error | error_or_ok | protocol | ok
    note: str = ""
    after: int | None = None  # a cursor the server must serve: a 2xx stream holds exactly the events after it
    lenient: str = ""  # for expect=error: a SHOULD rule the documents leave open; a 2xx then is a SHOULD finding, still judged by the wire

    def to_bytes(self, host: str) -> bytes:
        lines = [f"{self.method} ".encode() + _b(self.path) + b" HTTP/1.1", b"host: " + host.encode(), b"connection: close"]
        lines += [k + b": " + v for k, v in self.headers]
        if self.body is not None:
            lines.append(f"content-length: {len(self.body)}".encode())
        return b"\r\n".join(lines) + b"\r\n\r\n" + (self.body or b"")

    def describe(self) -> str:
        body = "" if self.body is None else f" body[{len(self.body)}]={self.body[:120]!r}"
        hdrs = ", ".join(f"{k.decode(errors='replace')}: {v[:60]!r}" for k, v in self.headers)
        return f"{self.method} {_b(self.path)[:160]!r} [{hdrs}]{body}" + (f" ({self.note})" if self.note else "")


def _b(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode("utf-8", "surrogateescape")


@dataclass
class Answer:
    """What came back: status, headers, body (de-chunked), whether it ended cleanly, timing."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    complete: bool = False  # the server closed the connection after a whole answer
    error: str | None = None  # transport problem (timeout, reset)
    elapsed_s: float = 0.0

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def send_raw(host: str, port: int, request: BadRequest, deadline_s: float = DEADLINE_S) -> Answer:
    """Send one request, read until the server closes (bounded by ``deadline_s``)."""
    answer = Answer()
    start = time.monotonic()
    data = b""
    try:
        with socket.create_connection((host, port), timeout=deadline_s) as sock:
            try:
                sock.sendall(request.to_bytes(host))
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server may answer (e.g. 413) and close before reading everything
            while True:
                left = deadline_s - (time.monotonic() - start)
                if left <= 0:
                    answer.error = f"no end of answer within {deadline_s}s (hang)"
                    break
                sock.settimeout(left)
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    except socket.timeout:
        answer.error = f"no end of answer within {deadline_s}s (hang)"
    except OSError as exc:
        if not data:
            answer.error = f"{type(exc).__name__}: {exc}"
    answer.elapsed_s = time.monotonic() - start
    _parse(data, answer, request.method)
    return answer


def _parse(data: bytes, answer: Answer, method: str = "GET") -> None:
    """Read ``data`` (all the server sent) as the HTTP/1.1 answer to a ``method`` request, with h11.
    ``complete``: the answer ended where its framing says, with nothing after it.  An answer h11
    cannot read (a bad status line, cut in its headers, a bad chunk) is an ``error`` saying so,
    never an exception; a body cut short leaves the status and what came, ``complete`` False."""
    conn = h11.Connection(our_role=h11.CLIENT)
    # The request went out as raw bytes; h11 only needs to know it was sent (HEAD has no body).
    conn.send(h11.Request(method="HEAD" if method.upper() == "HEAD" else "GET", target="/",
                          headers=[("host", "adversarial"), ("connection", "close")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(data)
    if answer.error is None:
        conn.receive_data(b"")  # read to EOF: the server closed the connection
    body = bytearray()
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed):
                break
            if isinstance(event, h11.Response):
                answer.status = event.status_code
                answer.headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in event.headers}
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                answer.complete = answer.error is None and not conn.trailing_data[0]
                break
    except h11.RemoteProtocolError as exc:
        if answer.status is None and answer.error is None:
            answer.error = (f"malformed HTTP answer (h11: {exc}): {data[:200]!r}" if data
                            else "the server closed the connection without an answer")
    answer.body = bytes(body)


# -- expectations (pure) ---------------------------------------------------------------------
class Finding(str):
    """One problem with an answer, as text, with its ``level``: ``MUST`` (the protocol requires it,
    or anything else loses data or crashes: a 5xx, a hang, a partial stream, a wrong replay, a
    leak) or ``SHOULD`` (good practice the documents do not require: JSON error bodies, rejecting
    unknown fields, strict content type, rejecting a negative cursor).  A plain ``str`` problem is
    a MUST.  ``rule`` names the SHOULD rule (one line per rule in the report)."""

    level: str = "MUST"
    rule: str = ""


def should(rule: str, detail: str) -> Finding:
    """A SHOULD finding of ``rule`` with ``detail``."""
    finding = Finding(f"SHOULD {rule}: {detail}")
    finding.level, finding.rule = "SHOULD", rule
    return finding


def level_of(problem: str) -> str:
    return getattr(problem, "level", "MUST")


ERROR_SHAPE_RULE = "every error answer is JSON {error: {type, code, message, param}}"
UNKNOWN_FIELD_RULE = "an unknown body field is rejected with a 4xx"
WRONG_TYPE_RULE = "a body field of the wrong type is rejected with a 4xx (not coerced)"
CONTENT_TYPE_RULE = "a body not sent as Content-Type: application/json is rejected with a 4xx"
METHOD_RULE = "an undocumented method or path is answered with a 4xx"
CURSOR_RULE = "a cursor that is not a non-negative decimal integer of ASCII digits is rejected with a 4xx"
# (docs/protocol.md §0 lists every SHOULD rule of the adversarial suites with its source)


def error_shape_problems(answer: Answer) -> list[str]:
    """A JSON body ``{"error": {"type": str, "code": str|null, "message": str, "param": str|null}}``."""
    if not answer.content_type.startswith("application/json"):
        return [f"error answer is not JSON (content-type {answer.content_type!r}): {answer.body[:200]!r}"]
    body = answer.json()
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return [f"error body has no 'error' object: {answer.body[:200]!r}"]
    problems = [f"error.{k} missing" for k in ("type", "code", "message", "param") if k not in err]
    if "type" in err and not isinstance(err["type"], str):
        problems.append(f"error.type is not a string: {err['type']!r}")
    if "message" in err and not isinstance(err["message"], str):
        problems.append(f"error.message is not a string: {err['message']!r}")
    for key in ("code", "param"):
        if key in err and not (err[key] is None or isinstance(err[key], str)):
            problems.append(f"error.{key} is neither a string nor null: {err[key]!r}")
    return problems


def sse_payloads(answer: Answer) -> tuple[list[dict[str, Any]], list[str]]:
    """The frames' JSON payloads of a 2xx event stream, and what is wrong with it: it must end
    cleanly, each frame's data is JSON with an int sequence_number, strictly increasing."""
    if not answer.complete:
        return [], ["event stream did not end cleanly (partial SSE stream)"]
    payloads: list[dict[str, Any]] = []
    for block in answer.body.decode("utf-8", "replace").replace("\r\n", "\n").split("\n\n"):
        data = "\n".join(line[5:].lstrip() for line in block.split("\n") if line.startswith("data:"))
        if not data:
            continue
        try:
            payload = json.loads(data)
        except ValueError:
            return payloads, [f"frame data is not JSON: {data[:120]!r}"]
        seq = payload.get("sequence_number") if isinstance(payload, dict) else None
        if not isinstance(seq, int) or isinstance(seq, bool):
            return payloads, [f"frame without an integer sequence_number: {data[:120]!r}"]
        payloads.append(payload)
    seqs = [p["sequence_number"] for p in payloads]
    if any(b <= a for a, b in zip(seqs, seqs[1:])):
        return payloads, [f"sequence numbers not strictly increasing: {seqs[:20]}"]
    return payloads, []


def sse_problems(answer: Answer) -> list[str]:
    """What is wrong with a 2xx event stream as such (see ``sse_payloads``)."""
    return sse_payloads(answer)[1]


OkJudge = Callable[[BadRequest, Answer], list[str]]
"""How a wire judges a 2xx answer: (request, answer) -> problems."""

INJECTED_HEADER = "x-injected"
"""Strategies smuggle ``X-Injected: 1`` behind a CR/LF; an answer header of that name means the
server echoed request text into its headers (response header injection)."""


def is_event_stream(answer: Answer) -> bool:
    return answer.content_type.startswith("text/event-stream")


def json_ok_problems(answer: Answer) -> list[str]:
    """A 2xx JSON answer: complete, and it parses."""
    if not answer.complete or answer.json() is None:
        return [f"{answer.status} answer is not complete JSON: {answer.body[:200]!r}"]
    return []


def responses_ok_problems(request: BadRequest, answer: Answer) -> list[str]:
    """A 2xx answer on the responses wire: a clean event stream (``sse_problems``) or complete JSON."""
    return sse_problems(answer) if is_event_stream(answer) else json_ok_problems(answer)


def responses_ok_judge(transcript: Sequence[dict[str, Any]]) -> OkJudge:
    """``responses_ok_problems``, and a replay of the finished response whose event payloads are
    ``transcript`` (the only stream the cursor strategies read), asked with a known cursor
    (``request.after``), must hold exactly its events with a larger sequence_number."""

    def judge(request: BadRequest, answer: Answer) -> list[str]:
        if request.after is None or not is_event_stream(answer):
            return responses_ok_problems(request, answer)
        got, problems = sse_payloads(answer)
        if problems:
            return problems
        want = [e for e in transcript if e["sequence_number"] > request.after]
        if got != want:
            shown = request.after if request.after < 10**18 else "past every event"
            return [f"with starting_after={shown} the replay holds sequence numbers "
                    f"{[e['sequence_number'] for e in got][:20]}, expected exactly the later events "
                    f"{[e['sequence_number'] for e in want][:20]} with their recorded payloads"]
        return []

    return judge


def answer_problems(request: BadRequest, answer: Answer, ok: OkJudge = responses_ok_problems) -> list[str]:
    """What is wrong with ``answer`` as a reply to ``request`` (empty when it is acceptable).
    ``ok`` judges a 2xx answer (default: the responses wire)."""
    if answer.error is not None and answer.status is None:
        return [f"no answer: {answer.error}"]
    status = answer.status or 0
    injected = [f"request text echoed into a response header (header injection): "
                f"{INJECTED_HEADER}: {answer.headers[INJECTED_HEADER]!r}"] if INJECTED_HEADER in answer.headers else []
    if status >= 500:
        return [f"{status} (a 5xx for bad input): {answer.body[:300]!r}"] + injected
    if answer.error is not None:
        return [f"{status} then {answer.error}"] + injected
    return injected + _status_problems(request, answer, status, ok)


def _status_problems(request: BadRequest, answer: Answer, status: int, ok: OkJudge) -> list[str]:
    success = 200 <= status < 300
    if request.expect == "protocol":
        return ok(request, answer) if success else []
    if 400 <= status < 500:
        if request.expect == "ok":
            return [f"expected a 2xx (documented as served), got {status}: {answer.body[:200]!r}"]
        return [should(ERROR_SHAPE_RULE, f"{status} {p}") for p in error_shape_problems(answer)]
    if request.expect == "error":
        if success and request.lenient:  # a reading the documents allow: judged as served
            return [should(request.lenient, f"got {status}")] + ok(request, answer)
        return [f"expected a 4xx error, got {status}: {answer.body[:200]!r}"] + (ok(request, answer) if success else [])
    if success:
        return ok(request, answer)
    return [f"unexpected status {status}: {answer.body[:200]!r}"]


# -- building blocks, shared by every profile's strategies ---------------------------------------
def _json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
json_values = st.recursive(json_scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4), max_leaves=10)


def _not_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except (ValueError, RecursionError):
        return True
    return False


MALFORMED_BODIES = [b"{", b"}", b"{\"input\": }", b"{\"input\": \"x\",}", b"{'input': 'x'}", b"NaN", b"{\"input\": NaN}",
                    b"[1, 2", b"\"unterminated", b"{\"input\": \"x\"} trailing", b"\xff\xfe{}", b"", b"null", b"[]", b"42", b"\"s\""]
"""Bodies that are not a JSON object (not JSON, empty, or another JSON value)."""
malformed_bodies = st.one_of(st.sampled_from(MALFORMED_BODIES), st.binary(max_size=200).filter(_not_json))


def truncated_bodies(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """A valid JSON body cut short somewhere (never itself valid JSON)."""
    return st.tuples(valid, st.floats(0.0, 0.999)).map(
        lambda t: _json_bytes(t[0])[: int(len(_json_bytes(t[0])) * t[1])]).filter(_not_json)


DEPTHS = [100, 1000, 5000, 50_000]


def nested(depth: int, kind: str) -> bytes:
    """A JSON value nested ``depth`` levels deep: lists, or objects ``{"a": ...}``."""
    open_, close = ("[", "]") if kind == "list" else ('{"a":', "}")
    return (open_ * depth).encode() + b"1" + (close * depth).encode()


INVALID_UTF8 = [b"\xff\xfe", b"\xc0\xaf", b"\xed\xa0\x80"]
"""String contents that are not UTF-8 (a stray BOM, an overlong '/', an encoded surrogate)."""
BOM = b"\xef\xbb\xbf"
UNICODE = ["\ud800", "\udfff", "\u0000", "\u202e", "\ufeff", "\U0001f600" * 50, "a\u0301" * 20, "\uffff", "\x7f", "\u2028\u2029"]

_ID_TRAVERSALS = ["../secret", "../../secret", "..%2f..%2fsecret", "%2e%2e%2fsecret", "%2e%2e/%2e%2e/secret", "{p}..%2f..%2fsecret",
                  "{p}%00", "{p}a%00b", "%00", "{p}" + "a" * 5000, "{p}" + "a" * 65, "....//secret", "{p}\u00e9", "{p}%ff",
                  "%252e%252e%252fsecret", "{p}a/../../secret", ".", "..", "{p} a", "{P}abc"]


def id_traversals(prefix: str) -> list[str]:
    """Ids that are not ids of the wire whose ids start with ``prefix`` (``resp_``, ``inv_``):
    ``../``, ``%2e``, NUL, too long, wrong case..."""
    return [t.replace("{p}", prefix).replace("{P}", prefix.upper()) for t in _ID_TRAVERSALS]


CONTENT_TYPES = [None, b"text/plain", b"application/x-www-form-urlencoded", b"multipart/form-data; boundary=x", b"application/xml",
                 b"application/jsonx", b"json", b"", b"application/json-patch+json", b"text/json"]
"""Content-Type headers that are not ``application/json`` (None: no header at all)."""

BAD_CURSORS = ["-1", "-100", "abc", "1.5", "1e3", "0x10", "", " 1", "+1", "NaN", "Infinity", "1,2", "\u0661", "%00", "0%0a1", "--1"]
"""Cursor texts that are not a non-negative decimal integer (sent percent-encoded in a query)."""
bad_cursor_texts = st.one_of(
    st.sampled_from(BAD_CURSORS),
    st.integers(max_value=-1).map(str),
    st.text(max_size=12).map(lambda s: s.encode().hex() if not s.isprintable() else s).filter(
        lambda s: not (s.isascii() and s.isdigit())  # a plain non-negative integer is a valid cursor
    ),
)
LARGE_CURSORS = [10**30, 2**63, int("9" * 400)]
"""Well-formed cursors far past any id."""

HEADER_VALUES = [b"1\r\nX-Injected: 1", b"1\rX", b"1\nX", b"\x00", b"1\x00", b"-1", b"abc", b"9" * 10_000, b"\xff\xfe", b"1" * 70_000]
"""Header values broken below HTTP (CR, LF, NUL, 70 kB, not ASCII) or not a cursor."""


def with_content_type(ct: bytes | None) -> tuple[tuple[bytes, bytes], ...]:
    """The headers of a body sent with Content-Type ``ct`` (None: no such header)."""
    return () if ct is None else ((b"content-type", ct),)


def id_requests(collection: str, prefix: str, hows: list[tuple[str, str, tuple]]) -> st.SearchStrategy[BadRequest]:
    """Every ``id_traversals(prefix)`` id under ``collection`` (``/responses``), sent by each of
    ``hows``: (method, what follows the id, headers)."""
    return st.tuples(st.sampled_from(id_traversals(prefix)), st.sampled_from(hows)).map(lambda t: BadRequest(
        t[1][0], f"{collection}/" + _q(t[0], "/%.") + t[1][1], None, t[1][2], "error", f"id {t[0][:30]!r}"))


def method_requests(pairs: list[tuple[str, str]]) -> st.SearchStrategy[BadRequest]:
    """(method, path) pairs that are no endpoint: each answers a 4xx error (``{done}`` in a path
    is replaced by the suite)."""
    return st.sampled_from(pairs).map(lambda t: BadRequest(
        t[0], t[1], b"{}" if t[0] in ("POST", "PUT", "PATCH") else None, ((b"content-type", b"application/json"),), "error", f"{t[0]} {t[1]}",
        lenient="" if t[1].endswith("/cancel") and t[0] == "POST" else METHOD_RULE))  # a documented cancel answer stays a MUST


def _q(text: str, safe: str = "-+.%") -> str:
    """Percent-encode what a request line cannot carry raw; ``%``, ``.`` and ``/`` stay as
    written so that ``%2e``/``%00``/``../`` reach the server exactly."""
    from urllib.parse import quote

    return quote(text, safe=safe)


# -- strategies of the responses wire, one per class ---------------------------------------------
def _create(body: bytes, expect: str = "error", note: str = "", headers: Any = None, lenient: str = "") -> BadRequest:
    return BadRequest("POST", "/responses", body, headers if headers is not None else ((b"content-type", b"application/json"),), expect, note,
                      lenient=lenient)


VALID = {"input": "hello", "store": True}

malformed_json = malformed_bodies.map(lambda b: _create(b, note="malformed JSON"))

truncated_json = truncated_bodies(
    st.fixed_dictionaries({"input": st.text(min_size=1, max_size=40), "metadata": st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3)}),
).map(lambda b: _create(b, note="truncated JSON"))

WRONG = {
    "input": st.one_of(st.integers(), st.booleans(), st.floats(allow_nan=False, allow_infinity=False), st.dictionaries(st.text(max_size=5), json_scalars, max_size=3)),
    "model": st.one_of(st.integers(), st.booleans(), st.lists(json_scalars, max_size=3), st.dictionaries(st.text(max_size=5), json_scalars, max_size=2)),
    "store": st.one_of(st.integers(), st.text(max_size=6), st.lists(json_scalars, max_size=2)),
    "background": st.one_of(st.integers(), st.text(max_size=6), st.floats(allow_nan=False, allow_infinity=False)),
    "stream": st.one_of(st.integers(), st.text(max_size=6), st.dictionaries(st.text(max_size=5), json_scalars, max_size=2)),
    "metadata": st.one_of(st.integers(), st.text(max_size=6), st.lists(json_scalars, max_size=2), st.dictionaries(st.text(min_size=1, max_size=5), st.one_of(st.integers(), st.booleans(), st.lists(st.integers(), max_size=2)), min_size=1, max_size=2)),
    "previous_response_id": st.one_of(st.integers(), st.booleans(), st.lists(json_scalars, max_size=2)),
}
wrong_types = st.sampled_from(sorted(WRONG)).flatmap(
    lambda key: WRONG[key].map(lambda v, key=key: _create(_json_bytes({**VALID, key: v}), note=f"{key} of a wrong type", lenient=WRONG_TYPE_RULE))
)

huge_body = st.sampled_from([1, 4]).map(
    lambda mb: _create(_json_bytes({"input": "x" * (mb << 20)}), "error_or_ok", f"{mb} MiB input")
)
huge_strings = st.one_of(
    st.integers(100_000, 400_000).map(lambda n: _create(_json_bytes({**VALID, "model": "m" * n}), "error_or_ok", f"model of {n} chars")),
    st.integers(100_000, 400_000).map(lambda n: _create(_json_bytes({**VALID, "metadata": {"k": "v" * n}}), "error_or_ok", f"metadata value of {n} chars")),
    st.integers(10_000, 100_000).map(lambda n: _create(_json_bytes({**VALID, "f" * n: 1}), "error", f"unknown field name of {n} chars", lenient=UNKNOWN_FIELD_RULE)),
    st.integers(10_000, 100_000).map(lambda n: _create(_json_bytes({**VALID, "previous_response_id": "resp_" + "a" * n}), "error", f"previous_response_id of {n} chars")),
)

deep_nesting = st.tuples(st.sampled_from(DEPTHS), st.sampled_from(["list", "dict"])).map(
    lambda t: _create(b'{"input": ' + nested(*t) + b"}", "error_or_ok", f"input nested {t[0]} deep ({t[1]})")
)
unknown_fields = st.dictionaries(
    st.text(min_size=1, max_size=30).filter(lambda k: k not in KNOWN_FIELDS), json_values, min_size=1, max_size=3
).map(lambda extra: _create(_json_bytes({**VALID, **extra}), note="unknown field(s)", lenient=UNKNOWN_FIELD_RULE))

unicode_edge = st.one_of(
    st.tuples(st.sampled_from(UNICODE), st.sampled_from(["model", "metadata", "input", "key"])).map(
        lambda t: _create(
            json.dumps({"input": "x", "model": t[0]} if t[1] == "model" else {"input": "x", "metadata": {"k": t[0]}} if t[1] == "metadata"
                       else {"input": t[0]} if t[1] == "input" else {"input": "x", "metadata": {t[0]: "v"}}).encode(),
            "error_or_ok", f"{t[0][:4]!r} in {t[1]}")
    ),
    st.sampled_from([b'{"input": "' + bad + b'"}' for bad in INVALID_UTF8] + [BOM + b"{\"input\": \"x\"}"]).map(
        lambda b: _create(b, "error_or_ok", "invalid UTF-8 / BOM")
    ),
    st.text(min_size=1, max_size=30).map(lambda s: _create(json.dumps({"input": s, "metadata": {s: s}}).encode(), "error_or_ok", "random unicode")),
)

bad_ids = id_requests("/responses", "resp_", [("GET", "", ()), ("GET", "?stream=true", ()), ("GET", "?stream=true&starting_after=0", ()),
                                                ("POST", "/cancel", ()), ("DELETE", "", ())])

wrong_methods = method_requests([
    ("PUT", "/responses"), ("PATCH", "/responses"), ("DELETE", "/responses"), ("GET", "/responses"), ("PUT", "/responses/{done}"),
    ("PATCH", "/responses/{done}"), ("POST", "/responses/{done}"), ("GET", "/responses/{done}/cancel"), ("PUT", "/responses/{done}/cancel"),
    ("DELETE", "/responses/{done}/cancel"), ("POST", "/readiness"), ("OPTIONS", "/responses"), ("TRACE", "/responses"), ("POST", "/nope"),
    ("GET", "/responses/{done}/x/y"),
])

wrong_content_types = st.sampled_from(CONTENT_TYPES).map(
    lambda ct: _create(_json_bytes(VALID), "error", f"content-type {ct!r}", headers=with_content_type(ct),
                       lenient=CONTENT_TYPE_RULE))


def lenient_cursor(text: str) -> dict[str, Any]:
    """How a server may read a malformed cursor without breaking a documented promise: a text
    that an everyday integer parser reads as ``n`` (``-1``, ``+1``, `` 1``) may be served as "the
    events after ``n``" (``-1``: from the start), a SHOULD finding; any other text must be a 4xx
    (serving it from anywhere would hand a resuming client duplicates or a gap).  Returns the
    BadRequest fields for that reading (``after``, ``lenient``), or none."""
    try:
        value = int(text)
    except ValueError:
        return {}
    return {"after": max(value, -1), "lenient": CURSOR_RULE}


def cursor_requests(done_id: str, other_cursor: int) -> st.SearchStrategy[BadRequest]:
    """Bad (and borderline) cursors on a finished replayable response ``done_id``."""
    bad = bad_cursor_texts.map(lambda c: BadRequest(
        "GET", f"/responses/{done_id}?stream=true&starting_after={_q(c)}", None, (), "error", f"cursor {c[:20]!r}",
        **lenient_cursor(c)))
    # B4: any well-formed cursor is served (past the last event: an empty stream), also one taken
    # from another response's stream, one with leading zeros, one longer than int() converts
    ok = st.sampled_from([str(c) for c in LARGE_CURSORS] + [str(other_cursor), "0", "000001", "9" * 5000]).map(
        lambda c: BadRequest("GET", f"/responses/{done_id}?stream=true&starting_after={c}", None, (), "ok",
                             f"cursor {c[:20]!r}", after=min(int(c[:30]), 10**30))
    )
    return st.one_of(bad, ok)


def header_requests(done_id: str) -> st.SearchStrategy[BadRequest]:
    """Bad headers on a replay of ``done_id`` (Last-Event-ID with CR/LF/NUL, huge, non-ASCII)."""
    names = st.sampled_from([b"last-event-id", b"Last-Event-ID", b"accept"])
    return st.tuples(names, st.sampled_from(HEADER_VALUES)).map(
        lambda t: BadRequest("GET", f"/responses/{done_id}?stream=true", None, ((t[0], t[1]),), "protocol", f"{t[0]!r}: {t[1][:20]!r}")
    )


CLASSES = (
    "malformed_json", "truncated_json", "wrong_types", "huge_body", "huge_strings", "deep_nesting", "unknown_fields",
    "unicode_edge", "bad_ids", "bad_cursors", "bad_headers", "wrong_methods", "wrong_content_types",
)
"""Every adversarial class, one test id each."""


def strategy_for(name: str, done_id: str, other_cursor: int) -> st.SearchStrategy[BadRequest]:
    """The strategy of class ``name``; ``{done}`` in a path becomes ``done_id``."""
    fixed = {
        "malformed_json": malformed_json, "truncated_json": truncated_json, "wrong_types": wrong_types, "huge_body": huge_body,
        "huge_strings": huge_strings, "deep_nesting": deep_nesting, "unknown_fields": unknown_fields, "unicode_edge": unicode_edge,
        "bad_ids": bad_ids, "wrong_methods": wrong_methods, "wrong_content_types": wrong_content_types,
    }
    if name == "bad_cursors":
        return cursor_requests(done_id, other_cursor)
    if name == "bad_headers":
        return header_requests(done_id)
    return fixed[name].map(lambda r: dataclasses.replace(r, path=r.path.replace("{done}", done_id)))


# -- the shared pieces of every profile's suite ------------------------------------------------
@contextlib.contextmanager
def adversarial_target(settings: Any, server: dict[str, Any], name: str, record_id: str) -> Iterator[tuple[Any, Path, str]]:
    """Start the target under test (``settings``: the run's conformance settings) in a work dir
    of its own with planted secrets (shaped like record ``record_id``); yield (target, work dir,
    secret); close it at the end."""
    from harness.process import Target

    work = settings.run_dir / f"{name}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    target = Target(settings.target.spec_for(server), work / "target")
    target.start()
    try:
        yield target, work, plant_secrets(work, target, record_id)
    finally:
        target.close()


def plant_secrets(work: Path, target: Any, record_id: str) -> str:
    """Plant ``secret`` files beside the state dir and one and two levels above it (and a decoy
    inside it); return the secret text that no answer may ever carry."""
    secret = "SECRET-" + uuid.uuid4().hex
    for path in (work / "secret", work / "secret.json", target.work_dir / "secret", target.work_dir / "secret.json",
                 target.state_dir / "secret.json"):
        path.write_text(json.dumps({"id": record_id, "secret": secret}))
    return secret


def outside_files(target: Any) -> set[str]:
    """Files under the target's work dir (and beside it) outside state, markers and logs."""
    inside = {target.state_dir.resolve(), target.marker_dir.resolve(), target.log_dir.resolve()}
    found: set[str] = set()
    for root in (target.work_dir, target.work_dir.parent):
        for dirpath, dirnames, filenames in os.walk(root):
            here = Path(dirpath).resolve()
            if here in inside or any(p in inside for p in here.parents):
                dirnames[:] = []
                continue
            if root == target.work_dir.parent and here == root.resolve():
                dirnames[:] = [d for d in dirnames if (root / d).resolve() == target.work_dir.resolve()]
            found.update(str(Path(dirpath) / f) for f in filenames)
    return found


def server_problems(target: Any, outside_before: set[str]) -> list[str]:
    """The server is alive and ready, and no file appeared outside the state dir."""
    if not target.is_alive():
        return [f"the server died; log tail:\n{target.log_tail(20)}"]
    problems: list[str] = []
    ready = send_raw("127.0.0.1", target.port, BadRequest("GET", "/readiness", None, ()))
    if ready.status != 200:
        problems.append(f"readiness -> {ready.status} {ready.error or ready.body[:100]!r}")
    new = outside_files(target) - outside_before
    if new:
        problems.append(f"files created outside the state dir: {sorted(new)[:10]}")
    return problems


def probe_problems(target: Any, request: BadRequest, secret: str, ok: OkJudge = responses_ok_problems,
                   outside_before: set[str] | None = None) -> tuple[Answer, list[str]]:
    """Send one request and judge it (``ok``: the wire's 2xx judge): the answer, never the
    secret, the server still alive, and (given ``outside_before``) no new file outside the
    state dir, so that the request that made one is the one reported."""
    answer = send_raw("127.0.0.1", target.port, request)
    problems = answer_problems(request, answer, ok)
    if secret.encode() in answer.body or any(secret in v for v in answer.headers.values()):
        problems.append("the answer carries the content of a file outside the state dir")
    if not target.is_alive():
        problems.append(f"the server died; log tail:\n{target.log_tail(20)}")
    new = outside_files(target) - outside_before if outside_before is not None else set()
    if new:
        problems.append(f"files created outside the state dir: {sorted(new)[:10]}")
    return answer, problems


def run_class(klass: str, strategy: Any, check: Callable[[BadRequest], tuple[Answer, list[str]]], *, explore: int,
              default_examples: int, known_bug: str | None = None, pinned: Sequence[BadRequest] = (),
              findings: list[str] | None = None) -> int:
    """Run one class: the ``pinned`` requests, then ``default_examples`` derandomized examples
    (``explore`` > 0: that many, random); each request is judged by ``check``.  A MUST problem
    fails the class (hypothesis shrinks it); SHOULD problems (``Finding.level``) never do: the
    first example of each SHOULD rule is appended to ``findings`` (``"rule: example"``) for the
    suite to report.  ``known_bug`` (a reported reference bug not fixed yet) turns a 5xx failure
    into an xfail, and a pass into a "stale known bug" failure.  Returns how many requests were
    sent."""
    import pytest
    from hypothesis import HealthCheck, example, given, settings

    seen: list[str] = []
    by_rule: dict[str, str] = {}

    def probe(request: BadRequest) -> None:
        seen.append(request.note)
        answer, problems = check(request)
        must = [p for p in problems if level_of(p) == "MUST"]
        for p in problems:
            if level_of(p) == "SHOULD":
                by_rule.setdefault(p.rule, f"{klass}: {request.describe()[:200]} -> {answer.status}: {p}")
        assert not must, f"{klass}: {request.describe()} -> {answer.status} ({answer.elapsed_s:.2f}s):\n  - " + "\n  - ".join(must)

    for request in reversed(pinned):
        probe = example(request)(probe)
    probe = settings(max_examples=explore or default_examples, deadline=None, derandomize=not explore, database=None,
                     suppress_health_check=list(HealthCheck), print_blob=True)(given(strategy)(probe))
    try:
        probe()
    except AssertionError as exc:
        if known_bug and "(a 5xx for bad input)" in str(exc):
            pytest.xfail(f"known reference_impl bug: {known_bug}: {str(exc).splitlines()[0]}")
        raise
    finally:
        if findings is not None:
            findings.extend(by_rule.values())
    if known_bug:
        pytest.fail(f"stale known bug: {klass} no longer fails against the reference ({known_bug}); "
                    "remove it from KNOWN_REFERENCE_BUGS")
    return len(seen)
