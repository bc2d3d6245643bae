"""Adversarial input for the invocations wire (docs/protocol.md §7): strategies for bad requests,
one per class, and the judge of a 2xx answer on this wire.

The raw sender, the answer expectations (``error`` / ``error_or_ok`` / ``protocol`` / ``ok``),
the building blocks (malformed bodies, ids with ``../``, bad cursor texts, broken header values,
content types) and the suite helpers are those of ``adversarial.py``; this module only knows the
invocations wire: ``POST /invocations`` with ``{"input": {...}, "session_id"}``,
``GET /invocations/{id}`` (SSE with ``id:`` lines, ``Last-Event-ID`` header or
``?last_event_id=``, ``Accept: application/json`` for the snapshot) and
``POST /invocations/{id}/cancel``.

Documented answers the strategies rely on (§7.2, §7.3):

- a cursor is a non-negative decimal integer of ASCII digits, of any length; anything else, in
  the header or the query, or either of them given twice, is ``400 last_event_id``;
- a well-formed cursor is served: exactly the events with a larger id (none when it is at or
  past the last id, also a cursor taken from another invocation's stream); the header wins;
- with ``Accept: application/json`` the cursor is not looked at: the snapshot is served;
- the ``Content-Type`` of a create is not checked; a bad script field is a ``200`` create whose
  run ends ``failed`` (``unsupported_script``), not a 400;
- a ``session_id`` matching ``[A-Za-z0-9_.:-]{1,128}`` is served (``..`` included), any other is a 400.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

from conformance.drivers.sse import iter_frames, iter_lines
from conformance.history import INVOCATION_TERMINAL_EVENTS

from .adversarial import (
    BOM,
    UNKNOWN_FIELD_RULE,
    CONTENT_TYPES,
    DEPTHS,
    HEADER_VALUES,
    INVALID_UTF8,
    LARGE_CURSORS,
    UNICODE,
    Answer,
    BadRequest,
    OkJudge,
    _json_bytes,
    _q,
    bad_cursor_texts,
    id_requests,
    is_event_stream,
    json_ok_problems,
    json_scalars,
    json_values,
    lenient_cursor,
    malformed_bodies,
    method_requests,
    nested,
    truncated_bodies,
    with_content_type,
)

TERMINAL_EVENTS = INVOCATION_TERMINAL_EVENTS
CREATE_KEYS = ("invocation_id", "session_id", "status")
SNAPSHOT_KEYS = ("invocation_id", "session_id", "status", "output", "attempt", "entry_mode", "error", "last_event_id")
CREATE_FIELDS = ("input", "session_id")
JSON_CT = ((b"content-type", b"application/json"),)
Transcript = Sequence[tuple[int, dict[str, Any]]]
"""A finished invocation's events as (id, data), in order."""


# -- the judge of a 2xx answer ------------------------------------------------------------------
def stream_problems(answer: Answer, after: int | None, transcript: Transcript) -> list[str]:
    """A 2xx event stream of the finished invocation whose events are ``transcript``: it ends
    cleanly, each frame has an ``id:`` that its data's ``event_id`` repeats, ids strictly
    increase, a non-empty stream ends on a terminal event (else it is partial), and, when the
    request's cursor ``after`` is known, it holds exactly the events after it."""
    if not answer.complete:
        return ["event stream did not end cleanly (partial SSE stream)"]
    text = answer.body.decode("utf-8", "replace")
    if text.strip() and not re.search(r"(\r\n|\r|\n)(\r\n|\r|\n)$", text):
        return [f"event stream ends inside a frame (partial SSE stream): {text[-120:]!r}"]
    got: list[tuple[int, dict[str, Any]]] = []
    for frame in iter_frames(iter_lines([text])):
        if frame.event is None and not frame.data and frame.id is None:
            continue  # a comment-only block
        try:
            data = json.loads(frame.data)
        except ValueError:
            return [f"frame data is not JSON: {frame.raw[:160]!r}"]
        if frame.id is None or not (frame.id.isascii() and frame.id.isdigit()) or int(frame.id) < 1:
            return [f"frame without a positive integer id: line: {frame.raw[:160]!r}"]
        if not isinstance(data, dict) or data.get("event_id") != int(frame.id):
            return [f"frame data's event_id is not its id: line: {frame.raw[:160]!r}"]
        got.append((int(frame.id), data))
    ids = [i for i, _ in got]
    if any(b <= a for a, b in zip(ids, ids[1:])):
        return [f"event ids not strictly increasing: {ids[:20]}"]
    if got and got[-1][1].get("type") not in TERMINAL_EVENTS:
        return [f"the stream of a finished invocation ended without its terminal event (partial SSE stream): ids {ids[:20]}"]
    if after is not None:
        want = [(i, d) for i, d in transcript if i > after]
        if got != want:
            return [f"with cursor {after if after < 10**30 else 'past every id'} the stream holds ids {ids[:20]}, expected exactly the later events "
                    f"{[i for i, _ in want][:20]} with their recorded payloads"]
    return []


def ok_judge(transcript: Transcript) -> OkJudge:
    """The 2xx judge of this wire: event streams by ``stream_problems`` (the transcript is the
    finished bystander's, the only invocation the strategies read); JSON answers must be
    complete and carry the documented keys of a create answer or of a snapshot."""

    def judge(request: BadRequest, answer: Answer) -> list[str]:
        if is_event_stream(answer):
            return stream_problems(answer, request.after, transcript)
        problems = json_ok_problems(answer)
        if problems:
            return problems
        body = answer.json()
        creating = request.method == "POST" and request.path.split("?")[0] == "/invocations"
        keys = CREATE_KEYS if creating else SNAPSHOT_KEYS
        missing = [k for k in keys if not (isinstance(body, dict) and k in body)]
        if missing:
            return [f"{answer.status} JSON answer lacks {missing} of a {'create answer' if creating else 'snapshot'}: {answer.body[:200]!r}"]
        return []

    return judge


# -- strategies, one per class ------------------------------------------------------------------
def _create(body: bytes, expect: str = "error", note: str = "", headers: Any = JSON_CT, lenient: str = "") -> BadRequest:
    return BadRequest("POST", "/invocations", body, headers, expect, note, lenient=lenient)


def _body(value: Any, expect: str, note: str, lenient: str = "") -> BadRequest:
    return _create(_json_bytes(value), expect, note, lenient=lenient)


VALID: dict[str, Any] = {"input": {}}
"""A valid create: the default script (3 deltas, no markers)."""
script_values = st.fixed_dictionaries({"deltas": st.integers(0, 3)})

malformed_json = malformed_bodies.map(lambda b: _create(b, note="malformed JSON"))
truncated_json = truncated_bodies(
    st.fixed_dictionaries({"input": st.fixed_dictionaries({"conformance": script_values}),
                           "session_id": st.text(st.sampled_from("abc_.:-"), min_size=1, max_size=12)}),
).map(lambda b: _create(b, note="truncated JSON"))

_not_object = st.one_of(st.integers(), st.booleans(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8),
                        st.lists(json_scalars, max_size=3))
WRONG_SCRIPT = {  # documented: the create is accepted and its run ends failed (unsupported_script)
    "deltas": st.one_of(st.text(max_size=4), st.integers(max_value=-1), st.floats(0.1, 2.9).filter(lambda f: f != int(f)),
                        st.lists(st.integers(0, 3), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)),
    "hold_at": st.one_of(st.text(max_size=4), st.integers(max_value=-2), st.lists(st.integers(), max_size=2)),
    "checkpoint_every": st.one_of(st.text(max_size=4), st.integers(max_value=0), st.lists(st.integers(), max_size=2)),
    "fail_at": st.one_of(st.text(max_size=4), st.integers(max_value=-1), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)),
    "delay_ms": st.one_of(st.text(max_size=4), st.integers(max_value=-1), st.lists(st.integers(), max_size=2)),
    "tag": st.one_of(st.integers(), st.lists(st.text(max_size=3), max_size=2), st.sampled_from(["", "a/b", "../x", "a b", "t" * 129])),
}
wrong_types = st.one_of(
    _not_object.map(lambda v: _body({"input": v}, "error", "input not an object")),
    st.one_of(st.integers(), st.booleans(), st.floats(allow_nan=False, allow_infinity=False), st.lists(json_scalars, max_size=2),
              st.dictionaries(st.text(max_size=4), json_scalars, max_size=2)).map(
        lambda v: _body({**VALID, "session_id": v}, "error", "session_id not a string")),
)

huge_body = st.sampled_from([1, 4]).map(lambda mb: _body({"input": {"pad": "x" * (mb << 20)}}, "error_or_ok", f"{mb} MiB input"))
huge_strings = st.one_of(
    st.integers(100_000, 400_000).map(lambda n: _body({"input": {"k" * n: "v"}}, "error_or_ok", f"input key of {n} chars")),
    st.integers(100_000, 400_000).map(lambda n: _body({"input": {"conformance": {"deltas": 1, "tag": "t" * n}}}, "error_or_ok",
                                                      f"script tag of {n} chars")),
    st.integers(10_000, 100_000).map(lambda n: _body({**VALID, "session_id": "s" * n}, "error", f"session_id of {n} chars")),
    st.integers(10_000, 100_000).map(lambda n: _body({**VALID, "f" * n: 1}, "error", f"unknown field name of {n} chars", UNKNOWN_FIELD_RULE)),
)
deep_nesting = st.one_of(
    st.sampled_from(DEPTHS).map(lambda d: _create(b'{"input": {"a": ' + nested(d, "dict") + b"}}", "error_or_ok", f"input nested {d} deep")),
    st.sampled_from(DEPTHS).map(lambda d: _create(b'{"input": ' + nested(d, "list") + b"}", "error", f"input a list nested {d} deep")),
    st.sampled_from(DEPTHS).map(lambda d: _create(b'{"input": {}, "session_id": ' + nested(d, "dict") + b"}", "error",
                                                  f"session_id nested {d} deep")),
)
unknown_fields = st.dictionaries(st.text(min_size=1, max_size=30).filter(lambda k: k not in CREATE_FIELDS), json_values,
                                 min_size=1, max_size=3).map(
    lambda extra: _body({**VALID, **extra}, "error", "unknown field(s)", UNKNOWN_FIELD_RULE))
script_fields = st.one_of(  # the test-control script (§7): a black-box target has none (SCRIPT_CLASSES)
    st.one_of(st.none(), _not_object).map(lambda v: _body({"input": {"conformance": v}}, "error", "conformance not an object")),
    st.sampled_from(sorted(WRONG_SCRIPT)).flatmap(lambda key: WRONG_SCRIPT[key].map(
        lambda v, key=key: _body({"input": {"conformance": {"deltas": 1, key: v}}}, "ok", f"script {key} of a wrong type"))),
    st.dictionaries(st.text(min_size=1, max_size=12).filter(lambda k: k != "conformance"), json_values, min_size=1, max_size=2).map(
        lambda extra: _body({"input": {"conformance": {"deltas": 1}, **extra}}, "error", "keys next to 'conformance'", UNKNOWN_FIELD_RULE)),
)
unicode_edge = st.one_of(
    st.tuples(st.sampled_from(UNICODE), st.sampled_from(["value", "key", "tag"])).map(lambda t: _create(
        json.dumps({"input": {"k": t[0]}} if t[1] == "value" else {"input": {t[0]: "v"}} if t[1] == "key"
                   else {"input": {"conformance": {"deltas": 1, "tag": t[0]}}}).encode(), "error_or_ok", f"{t[0][:4]!r} in input {t[1]}")),
    st.sampled_from(UNICODE).map(lambda u: _create(json.dumps({**VALID, "session_id": "s" + u}).encode(), "error",
                                                   f"{u[:4]!r} in session_id")),
    st.sampled_from([b'{"input": {"k": "' + bad + b'"}}' for bad in INVALID_UTF8] + [BOM + b'{"input": {}}']).map(
        lambda b: _create(b, "error_or_ok", "invalid UTF-8 / BOM")),
    st.text(min_size=1, max_size=30).map(lambda s: _create(json.dumps({"input": {s: s}}).encode(), "error_or_ok", "random unicode")),
)

SESSION_BAD = ["../outside", "../../outside", "a/b", "/abs", "", " a", "a ", "a\nb", "a\x00b", "%2e%2e%2foutside", "..\\outside",
               "s" * 129, "sess_\u00e9", "a;b", "a*b", "a?b"]
SESSION_OK = [".", "..", "...", "a:b", "-", "_", "s" * 128, "A.b-c_d:e"]
bad_session_ids = st.one_of(
    st.sampled_from(SESSION_BAD).map(lambda s: _body({**VALID, "session_id": s}, "error", f"session_id {s[:20]!r}")),
    st.text(max_size=20).filter(lambda s: not re.fullmatch(r"[A-Za-z0-9_.:-]{1,128}", s)).map(
        lambda s: _body({**VALID, "session_id": s}, "error", f"session_id {s[:20]!r}")),
    st.sampled_from(SESSION_OK).map(lambda s: _body({**VALID, "session_id": s}, "ok", f"session_id {s[:20]!r} (valid)")),
)


# ids with ../, %2e, NUL, 5000 chars... on every endpoint that takes an id
bad_ids = id_requests("/invocations", "inv_", [("GET", "", ()), ("GET", "", ((b"accept", b"application/json"),)), ("GET", "?last_event_id=0", ()),
                                               ("GET", "", ((b"last-event-id", b"0"),)), ("POST", "/cancel", ())])

wrong_methods = method_requests([
    ("PUT", "/invocations"), ("PATCH", "/invocations"), ("DELETE", "/invocations"), ("GET", "/invocations"),
    ("OPTIONS", "/invocations"), ("TRACE", "/invocations"), ("PUT", "/invocations/{done}"), ("PATCH", "/invocations/{done}"),
    ("POST", "/invocations/{done}"), ("DELETE", "/invocations/{done}"), ("GET", "/invocations/{done}/cancel"),
    ("PUT", "/invocations/{done}/cancel"), ("DELETE", "/invocations/{done}/cancel"), ("GET", "/invocations/{done}/x/y"),
    ("POST", "/invocations/{done}/cancel"),  # documented: 409 invocation_finished
    ("POST", "/readiness"), ("POST", "/nope"),
])

wrong_content_types = st.tuples(st.sampled_from(CONTENT_TYPES), st.booleans()).map(lambda t: _create(
    _json_bytes(VALID) if t[1] else b"input=x", "error_or_ok" if t[1] else "error",
    f"content-type {t[0]!r} ({'a valid' if t[1] else 'a form'} body)", with_content_type(t[0])))


HUGE_DIGITS = "9" * 5000
"""A well-formed cursor longer than int() converts by default: past every id like any other."""


def read(inv_id: str, query: str | None, header: str | None, expect: str, after: int | None, note: str,
         accept: bytes | None = None) -> BadRequest:
    """``GET /invocations/{inv_id}`` with a cursor in the query and/or the ``Last-Event-ID`` header."""
    headers = (() if header is None else ((b"last-event-id", header.encode("latin-1")),)) + (() if accept is None else ((b"accept", accept),))
    path = f"/invocations/{inv_id}" + ("" if query is None else f"?last_event_id={_q(query)}")
    lenient = ""
    if expect == "error" and after is None and (query is None) != (header is None) and accept is None:
        reading = lenient_cursor(query if header is None else header)  # e.g. -1 read as "from the start": a SHOULD finding
        after, lenient = reading.get("after"), reading.get("lenient", "")
    return BadRequest("GET", path, None, headers, expect, note, after, lenient=lenient)


def _header_safe(text: str) -> bool:
    """Sent raw as a header value it reaches the app as is (printable ASCII, no outer blanks)."""
    return text == text.strip() and all(0x21 <= ord(c) < 0x7F or c == " " for c in text)


def cursor_requests(done_id: str, last: int, foreign: Sequence[int]) -> st.SearchStrategy[BadRequest]:
    """Cursors on the finished invocation ``done_id`` (its last id is ``last``): malformed ones
    (a 400), and well-formed ones (served: exactly the later events) at the start, the end, past
    the end, huge, from another invocation's stream (``foreign``), in the header, the query or
    both (the header wins; both are checked)."""
    valid = [(str(c), c) for c in sorted({0, 1, max(0, last - 1), last, last + 1, *foreign, *LARGE_CURSORS})]
    valid += [("000001", 1), (HUGE_DIGITS, LARGE_CURSORS[0])]
    good = st.sampled_from(valid)
    get = functools.partial(read, done_id)

    return st.one_of(
        bad_cursor_texts.map(lambda c: get(c, None, "error", None, f"query cursor {c[:20]!r}")),
        bad_cursor_texts.filter(_header_safe).map(lambda c: get(None, c, "error", None, f"header cursor {c[:20]!r}")),
        good.map(lambda c: get(c[0], None, "ok", c[1], f"query cursor {c[0][:24]} (served)")),
        good.map(lambda c: get(None, c[0], "ok", c[1], f"header cursor {c[0][:24]} (served)")),
        st.tuples(good, good).map(lambda t: get(t[1][0], t[0][0], "ok", t[0][1], f"header {t[0][0][:24]} wins over query {t[1][0][:24]}")),
        st.tuples(good, bad_cursor_texts).map(lambda t: get(t[1], t[0][0], "error", None, f"good header, bad query {t[1][:20]!r}")),
        st.tuples(good, bad_cursor_texts.filter(_header_safe)).map(
            lambda t: get(t[0][0], t[1], "error", None, f"good query, bad header {t[1][:20]!r}")),
        bad_cursor_texts.map(lambda c: get(c, None, "ok", None, f"snapshot ignores cursor {c[:20]!r}", b"application/json")),
    )


def header_requests(done_id: str) -> st.SearchStrategy[BadRequest]:
    """Broken headers on a read of ``done_id``: ``Last-Event-ID`` with CR, LF, NUL, 70 kB or not
    ASCII (below HTTP: any answer under 500, and a 2xx must be a clean stream), the cursor given
    twice (a 400), and ``Accept`` values that all get the stream or the snapshot (no 406)."""
    path = f"/invocations/{done_id}"
    return st.one_of(
        st.tuples(st.sampled_from([b"last-event-id", b"Last-Event-ID"]), st.sampled_from(HEADER_VALUES)).map(
            lambda t: BadRequest("GET", path, None, ((t[0], t[1]),), "protocol", f"{t[0]!r}: {t[1][:20]!r}")),
        st.sampled_from([v for v in HEADER_VALUES if not v.isdigit()]).map(
            lambda v: BadRequest("GET", f"{path}?last_event_id={_q(v.decode('latin-1'))}", None, (), "error", f"query cursor {v[:20]!r}")),
        st.tuples(st.integers(0, 9), st.integers(0, 9)).map(lambda t: BadRequest(
            "GET", path, None, ((b"last-event-id", str(t[0]).encode()), (b"last-event-id", str(t[1]).encode())), "error",
            f"Last-Event-ID given twice ({t[0]}, {t[1]})")),
        st.tuples(st.integers(0, 9), st.integers(0, 9)).map(lambda t: BadRequest(
            "GET", f"{path}?last_event_id={t[0]}&last_event_id={t[1]}", None, (), "error", f"last_event_id given twice ({t[0]}, {t[1]})")),
        st.sampled_from([b"text/event-stream", b"*/*", b"application/json, text/event-stream", b"text/html", b"application/json;q=0",
                         b"application/xml", b"", b"garbage", b"APPLICATION/JSON", b"text/*"]).map(
            lambda a: BadRequest("GET", path, None, ((b"accept", a),), "ok", f"accept {a!r}", 0)),
    )


CLASSES = (
    "malformed_json", "truncated_json", "wrong_types", "huge_body", "huge_strings", "deep_nesting", "unknown_fields",
    "unicode_edge", "bad_session_ids", "bad_ids", "bad_cursors", "bad_headers", "wrong_methods", "wrong_content_types",
    "script_fields",
)
"""Every adversarial class of the invocations wire, one test id each."""

SCRIPT_CLASSES = {
    "script_fields": "needs control: the test-control script (input.conformance, docs/protocol.md §7) whose malformed "
                     "fields it sends; a black-box target has no script",
}
"""Classes whose rules are about the test-control script: not claimed by a black-box target, with the reason."""


def pinned(name: str, done_id: str, last: int, foreign: Sequence[int]) -> list[BadRequest]:
    """The requests class ``name`` always sends, whatever hypothesis draws: the cursors the issue
    names (from another invocation's stream, past the last id, huge), CR/LF in the cursor, the
    traversal ids and session ids."""
    injected = "1\r\nX-Injected: 1"
    if name == "bad_cursors":
        return ([read(done_id, str(c), None, "ok", c, f"query cursor {c} from another invocation") for c in foreign]
                + [read(done_id, None, str(c), "ok", c, f"header cursor {c} from another invocation") for c in foreign]
                + [read(done_id, str(last + 1), None, "ok", last + 1, "query cursor past the last id"),
                   read(done_id, None, str(10**30), "ok", 10**30, "header cursor 10**30"),
                   read(done_id, HUGE_DIGITS, None, "ok", LARGE_CURSORS[0], "query cursor of 5000 digits"),
                   read(done_id, str(last - 1), str(last - 2), "ok", last - 2, "header wins over query"),
                   read(done_id, "abc", None, "error", None, "query cursor 'abc'"),
                   read(done_id, None, "-1", "error", None, "header cursor '-1'"),
                   read(done_id, injected, None, "error", None, "query cursor with CR/LF")])
    if name == "bad_headers":
        return [BadRequest("GET", f"/invocations/{done_id}", None, ((b"last-event-id", injected.encode()),), "protocol", "CR/LF header"),
                read(done_id, injected, None, "error", None, "query cursor with CR/LF"),
                read(done_id, None, "abc", "error", None, "header cursor 'abc'")]
    if name == "bad_ids":
        return [BadRequest("GET", "/invocations/../secret", None, (), "error", "id '../secret'"),
                BadRequest("GET", "/invocations/%2e%2e%2fsecret", None, ((b"accept", b"application/json"),), "error", "id '%2e%2e%2fsecret'"),
                BadRequest("POST", "/invocations/../../secret/cancel", None, (), "error", "id '../../secret'")]
    if name == "bad_session_ids":
        return [_body({**VALID, "session_id": s}, "error", f"session_id {s!r}") for s in ("../../outside", "../outside")]
    return []


def strategy_for(name: str, done_id: str, last: int, foreign: Sequence[int]) -> st.SearchStrategy[BadRequest]:
    """The strategy of class ``name``; ``{done}`` in a path becomes ``done_id`` (a finished
    invocation whose last event id is ``last``); ``foreign`` are ids of another invocation."""
    if name == "bad_cursors":
        return cursor_requests(done_id, last, foreign)
    if name == "bad_headers":
        return header_requests(done_id)
    fixed = {
        "malformed_json": malformed_json, "truncated_json": truncated_json, "wrong_types": wrong_types, "huge_body": huge_body,
        "huge_strings": huge_strings, "deep_nesting": deep_nesting, "unknown_fields": unknown_fields, "unicode_edge": unicode_edge,
        "bad_session_ids": bad_session_ids, "bad_ids": bad_ids, "wrong_methods": wrong_methods, "wrong_content_types": wrong_content_types,
        "script_fields": script_fields,
    }
    return fixed[name].map(lambda r: dataclasses.replace(r, path=r.path.replace("{done}", done_id)))
