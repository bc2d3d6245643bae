"""Bad input is always a 4xx JSON error envelope, and the server keeps serving."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ri_wire import Api, error_of

GOOD = {"input": "hi"}


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({**GOOD, "temperature": 1}, "unknown_parameter", "temperature"),
        ({**GOOD, "conversation_id": "c"}, "unknown_parameter", "conversation_id"),
        ({}, "missing_required_parameter", "input"),
        ({"input": None}, "missing_required_parameter", "input"),
        ({"input": 3}, "invalid_value", "input"),
        ({"input": [1, 2]}, "invalid_value", "input"),
        ({**GOOD, "store": "yes"}, "invalid_value", "store"),
        ({**GOOD, "background": 1}, "invalid_value", "background"),
        ({**GOOD, "stream": "true"}, "invalid_value", "stream"),
        ({**GOOD, "model": 4}, "invalid_value", "model"),
        ({**GOOD, "metadata": []}, "invalid_value", "metadata"),
        ({**GOOD, "metadata": {"k": 1}}, "invalid_value", "metadata"),
        ({**GOOD, "previous_response_id": 7}, "invalid_value", "previous_response_id"),
        ({**GOOD, "store": False, "background": True}, "unsupported_parameter", "background"),
    ],
)
def test_invalid_create_bodies(api: Api, body: dict, code: str, param: str) -> None:
    r = api.http.post("/responses", json=body)
    assert r.status_code == 400, r.text
    err = error_of(r)
    assert (err["type"], err["code"], err["param"]) == ("invalid_request_error", code, param)
    assert err["message"]


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (b"{not json", {"content-type": "application/json"}),
        (b"[1, 2]", {"content-type": "application/json"}),
        (b'"a string"', {"content-type": "application/json"}),
        (b"", {"content-type": "application/json"}),
        (b"\xff\xfe", {"content-type": "application/json"}),
        (b'{"input": NaN}', {"content-type": "application/json"}),
        (b'{"input": "{\\"conformance\\": {\\"delay_ms\\": Infinity}}", "stream": Infinity}', {"content-type": "application/json"}),
        (b'{"input": ' + b"[" * 1000 + b"]" * 1000 + b"}", {"content-type": "application/json"}),  # RecursionError
        (b'{"input": "x", "model": "\\ud800"}', {"content-type": "application/json"}),  # lone surrogate
        (b'{"input": "hi"}', {"content-type": "text/plain"}),
        (b'{"input": "hi"}', {}),
    ],
)
def test_malformed_bodies(api: Api, content: bytes, headers: dict) -> None:
    r = api.http.post("/responses", content=content, headers=headers)
    assert r.status_code == 400, r.text
    assert error_of(r)["type"] == "invalid_request_error"


@pytest.mark.parametrize("rid", ["abc", "resp_", "resp_a-b", "resp_" + "a" * 65, "RESP_abc", "resp_%20x", "resp_abc%0A"])
def test_malformed_ids_are_400(api: Api, rid: str) -> None:
    for method, path in (("GET", f"/responses/{rid}"), ("POST", f"/responses/{rid}/cancel"), ("DELETE", f"/responses/{rid}")):
        r = api.http.request(method, path)
        assert r.status_code == 400, (method, path, r.text)
        err = error_of(r)
        assert err["type"] == "invalid_request_error" and err["param"] == "response_id"


def test_well_formed_unknown_id_is_404(api: Api) -> None:
    rid = "resp_" + "a" * 64
    r = api.get(rid)
    assert r.status_code == 404
    err = error_of(r)
    assert (err["type"], err["param"]) == ("invalid_request_error", "response_id") and rid in err["message"]


def test_unknown_route_and_method_are_json(api: Api) -> None:
    r = api.http.get("/nope")
    assert r.status_code == 404 and error_of(r)["code"] == "not_found"
    r = api.http.put("/responses")
    assert r.status_code == 405 and error_of(r)["code"] == "method_not_allowed"


@pytest.mark.parametrize("path", ["/responses/", "/responses/..%2F..", "/responses/resp_x%2F..", "/responses/%2e%2e%2fetc%2fpasswd",
                                  "/responses/resp_x/", "/responses/resp_x/cancel/", "/responses/resp_%00x"])
def test_ids_with_path_characters_or_a_trailing_slash_get_a_json_error(api: Api, path: str) -> None:
    """Never a bare 307 redirect, never a 5xx: a JSON 4xx for each method on such a path."""
    for method in ("GET", "POST", "DELETE"):
        r = api.http.request(method, path)
        assert 400 <= r.status_code < 500, (method, path, r.status_code, r.text)
        assert error_of(r)["type"] == "invalid_request_error", (method, path, r.text)
    assert api.http.get("/readiness").status_code == 200


def test_server_keeps_serving_after_bad_input(api: Api) -> None:
    for content in (b"{", b"null", b"[]", b'{"input": {}}', b"\x00" * 100):
        assert api.http.post("/responses", content=content, headers={"content-type": "application/json"}).status_code == 400
    r = api.create("after all that")
    assert r.status_code == 200 and r.json()["status"] == "completed"
    assert api.http.get("/readiness").json() == {"status": "ready"}


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
_field = st.sampled_from(["input", "model", "store", "background", "stream", "metadata", "previous_response_id", "x"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(_field, _json, max_size=4) | _json)
def test_fuzzed_create_bodies_never_get_a_5xx(api: Api, body) -> None:
    r = api.http.post("/responses", json=body)
    assert r.status_code in (200, 400, 404), (body, r.status_code, r.text)
    if r.status_code != 200:
        error_of(r)
    elif r.headers["content-type"].startswith("text/event-stream"):
        assert r.text.rstrip().split("\n")[-1].startswith("data: ")
    else:
        assert r.json()["status"] in ("completed", "failed", "in_progress")
