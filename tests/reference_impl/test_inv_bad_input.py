"""Fuzzed invocations input (bodies, ids, cursors, headers) never gets a 5xx; the server keeps serving."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from inv_wire import GRACE, InvApi, error_of, parse_frames
from ri_wire import spec

from harness.process import Target

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    target = Target(spec("--resilient-invocations", "--event-retention", "50", *GRACE), tmp_path_factory.mktemp("invfuzz"))
    try:
        target.start()
        yield target
    finally:
        target.close()


@pytest.fixture(scope="module")
def api(fuzz_server: Target) -> Iterator[InvApi]:
    with InvApi(fuzz_server.base_url) as client:
        yield client


@pytest.fixture(scope="module")
def finished(api: InvApi) -> str:
    inv = api.create({"deltas": 3})["invocation_id"]
    api.wait_status(inv)
    return inv


def check_answer(r: httpx.Response, allowed: tuple[int, ...]) -> None:
    """An allowed status, a well-formed body (error envelope, complete SSE frames or a JSON object)."""
    assert r.status_code in allowed, (r.status_code, r.text)
    if r.status_code >= 400:
        error_of(r)
    elif r.headers["content-type"].startswith("text/event-stream"):
        frames, rest = parse_frames(r.content)
        assert rest == b"", rest
    else:
        assert isinstance(r.json(), dict)


def still_serving(api: InvApi) -> None:
    assert api.http.get("/readiness").json() == {"status": "ready"}
    inv = api.create({"deltas": 1})["invocation_id"]
    assert api.wait_status(inv)["status"] == "completed"


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
_script = st.dictionaries(
    st.sampled_from(["deltas", "delay_ms", "checkpoint_every", "fail_at", "tag", "bogus"]), _json, max_size=4
)
_input = _json | st.fixed_dictionaries({"conformance": _script | _json})
_body = st.dictionaries(st.sampled_from(["input", "session_id", "x"]), _input | _json, max_size=3) | _json


@FUZZ
@given(body=_body)
def test_fuzzed_create_bodies(api: InvApi, body) -> None:
    r = api.http.post("/invocations", json=body)
    check_answer(r, (200, 400))
    if r.status_code == 200:
        assert set(r.json()) == {"invocation_id", "session_id", "status"}


@FUZZ
@given(raw=st.binary(max_size=64), ctype=st.sampled_from(["application/json", "text/plain", None]))
def test_fuzzed_raw_bodies(api: InvApi, raw: bytes, ctype: str | None) -> None:
    headers = {"content-type": ctype} if ctype else {}
    check_answer(api.http.post("/invocations", content=raw, headers=headers), (200, 400))


@FUZZ
@given(inv_id=st.text(min_size=1, max_size=80))
def test_fuzzed_ids(api: InvApi, inv_id: str) -> None:
    path = quote(inv_id, safe="")
    # An id with "/" ends up as another path (no slash redirect: a JSON 404/405 there too); so
    # does a dot segment ("." or ".."), which the client removes from the path (RFC 3986 §5.2.4):
    # GET /invocations/. is GET /invocations/, a POST-only route.
    other_path = "/" in inv_id or inv_id in (".", "..")
    allowed = (400, 404, 405) if other_path else (400, 404)
    for r in (
        api.http.get(f"/invocations/{path}"),
        api.http.get(f"/invocations/{path}", headers={"accept": "application/json"}),
        api.http.post(f"/invocations/{path}/cancel"),
    ):
        check_answer(r, allowed)


@FUZZ
@given(cursor=st.text(max_size=24) | st.integers(-(10**20), 10**20).map(str), where=st.sampled_from(["query", "header"]))
def test_fuzzed_cursors(api: InvApi, finished: str, cursor: str, where: str) -> None:
    if where == "query":
        r = api.http.get(f"/invocations/{finished}", params={"last_event_id": cursor})
    else:
        try:
            r = api.http.get(f"/invocations/{finished}", headers={"last-event-id": cursor.encode("utf-8")})
        except httpx.LocalProtocolError:
            assume(False)  # the client itself refuses to send this header value
            return
    check_answer(r, (200, 400))
    if r.status_code == 200:
        frames, _ = parse_frames(r.content)
        assert all(f.id > int(cursor.strip(" \t")) for f in frames)


@FUZZ
@given(
    headers=st.dictionaries(
        st.sampled_from(["accept", "last-event-id", "content-type", "x-other"]),
        st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30).map(str.strip),
        max_size=3,
    )
)
def test_fuzzed_headers(api: InvApi, finished: str, headers: dict[str, str]) -> None:
    check_answer(api.http.get(f"/invocations/{finished}", headers=headers), (200, 400))
    check_answer(api.http.post(f"/invocations/{finished}/cancel", headers=headers), (409,))
    check_answer(api.http.post("/invocations", json={"input": {}}, headers=headers), (200, 400))


def test_server_keeps_serving_after_the_fuzzing(api: InvApi) -> None:
    for raw in (b"{", b"null", b"\x00" * 100, b'{"input": {"conformance": {"deltas": 1e999}}}'):
        check_answer(api.http.post("/invocations", content=raw), (200, 400))
    still_serving(api)


@pytest.mark.parametrize("digits", [31, 400, 5000])
@pytest.mark.parametrize("where", ["query", "header"])
def test_a_cursor_of_any_length_past_the_last_id_is_served_empty(api: InvApi, finished: str, digits: int, where: str) -> None:
    """Regression (found by conformance/suites/test_adversarial_invocations.py, bad_cursors): a
    well-formed cursor longer than int() converts (4300 digits) answered 400 "the number is too
    long"; documented (§7.2): a cursor past the last id is served with no events."""
    cursor = "9" * digits
    if where == "query":
        r = api.http.get(f"/invocations/{finished}", params={"last_event_id": cursor})
    else:
        r = api.http.get(f"/invocations/{finished}", headers={"last-event-id": cursor})
    check_answer(r, (200,))
    assert r.headers["content-type"].startswith("text/event-stream") and r.content == b"", r.content[:200]
    # leading zeros do not make a short cursor long
    every = [f.id for f in parse_frames(api.http.get(f"/invocations/{finished}").content)[0]]
    padded = parse_frames(api.http.get(f"/invocations/{finished}", params={"last_event_id": "0" * 40 + "3"}).content)[0]
    assert [f.id for f in padded] == [i for i in every if i > 3] != []
