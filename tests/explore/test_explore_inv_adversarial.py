"""The invocations adversarial suite catches each deliberately broken tiny invocations target in
the class that is about its bug, and passes the correct one.  The suite runs as a real
``pytest conformance --conformance-target`` subprocess; the judge of a 2xx answer is checked in-process."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import conformance
from conformance.explore.adversarial import Answer, BadRequest, answer_problems
from conformance.explore.adversarial_invocations import CLASSES, ok_judge, pinned, read

PACKAGE = Path(conformance.__file__).parent
CONTRACTS = PACKAGE.parent / "contracts" / "invocations" / "*.yaml"
TINY_INV = Path(__file__).with_name("tiny_inv_target.py")
SUITE = "test_adversarial_invocations"

# bug -> (the class that must fail, words of the kit's own report of it)
CAUGHT = {
    "cursor-500": ("bad_cursors", "(a 5xx for bad input)"),
    "echo-cursor": ("bad_headers", "(header injection)"),
    "partial-stream": ("bad_cursors", "partial SSE stream"),
    "traversal": ("bad_ids", "the answer carries the content of a file outside the state dir"),
    "session-file": ("bad_session_ids", "files created outside the state dir"),
}


def start_inv_suite(tmp_path: Path, bug: str) -> subprocess.Popen:
    """Start the invocations adversarial module against the tiny target with ``--bug``: the
    whole module for the correct target, only the class about the bug otherwise."""
    config = tmp_path / f"tiny-inv-{bug}.yaml"
    config.write_text(
        f"name: tiny-inv-{bug}\n"
        f"command: \"{{python}} {TINY_INV} --port {{port}} --state-dir {{state_dir}} --bug {bug}\"\n"
        "readiness: {path: /readiness, timeout_s: 30}\nshutdown_grace_s: 5\nprofiles: [invocations]\nclaims: [cancel]\n"
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    select = SUITE if bug == "none" else f"{SUITE} and {CAUGHT[bug][0]}"
    cmd = [sys.executable, "-m", "pytest", str(PACKAGE), "-q", "-p", "no:benchmark", "--conformance-target", str(config),
           "--conformance-contracts", str(CONTRACTS), "--conformance-results", str(tmp_path / "results"), "-k", select]
    return subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="module")
def suite_runs(tmp_path_factory) -> dict[str, tuple[int, str, set[str]]]:
    """Every variant's run, started together (each is mostly start-up time): bug -> (exit code,
    output, the classes that failed)."""
    procs = {bug: start_inv_suite(tmp_path_factory.mktemp(f"inv-{bug}"), bug) for bug in ("none", *sorted(CAUGHT))}
    runs = {}
    for bug, proc in procs.items():
        try:
            out, _ = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            out += "\n(the suite run did not end within 300 s)"
        runs[bug] = (proc.returncode, out, set(re.findall(rf"FAILED \S*::{SUITE}\[(\w+)\]", out)))
    return runs


def test_the_correct_tiny_invocations_target_passes_every_class(suite_runs) -> None:
    code, out, failed = suite_runs["none"]
    assert code == 0 and not failed and f"{len(CLASSES)} passed" in out, out[-4000:]


@pytest.mark.parametrize("bug", sorted(CAUGHT))
def test_each_broken_tiny_invocations_target_fails_its_class(suite_runs, bug) -> None:
    klass, words = CAUGHT[bug]
    code, out, failed = suite_runs[bug]
    assert code == 1 and failed == {klass}, f"{bug}: expected {klass} to fail, failed: {sorted(failed)}\n{out[-4000:]}"
    report = out[out.index(f"_ {SUITE}[{klass}] _"):]
    assert words in report, f"{bug}: the report of {klass} does not say {words!r}:\n{report[:4000]}"


# -- the 2xx judge of the invocations wire, in-process ----------------------------------------------
def frame(i: int, type_: str) -> dict:
    return {"type": type_, "event_id": i, "invocation_id": "inv_x"}


TRANSCRIPT = [(1, frame(1, "invocation.started")), (2, frame(2, "invocation.delta")), (3, frame(3, "invocation.completed"))]
SSE = {"content-type": "text/event-stream; charset=utf-8"}


def sse(*events: dict, tail: bytes = b"") -> bytes:
    return b"".join(f"id: {e['event_id']}\nevent: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events) + tail


def judged(request: BadRequest, body: bytes, complete: bool = True, headers: dict | None = None) -> list[str]:
    return answer_problems(request, Answer(200, headers or SSE, body, complete), ok_judge(TRANSCRIPT))


def test_the_stream_judge_accepts_exactly_the_events_after_the_cursor() -> None:
    assert judged(read("inv_x", "1", None, "ok", 1, ""), sse(TRANSCRIPT[1][1], TRANSCRIPT[2][1])) == []
    assert judged(read("inv_x", "7", None, "ok", 7, ""), b"") == []
    assert judged(read("inv_x", None, None, "protocol", None, ""), sse(*[d for _, d in TRANSCRIPT])) == []


def test_the_stream_judge_names_each_defect() -> None:
    at_1 = read("inv_x", "1", None, "ok", 1, "")
    assert "expected exactly the later events" in judged(at_1, sse(*[d for _, d in TRANSCRIPT]))[0]
    assert "expected exactly the later events" in judged(read("inv_x", "9", None, "ok", 9, ""), sse(TRANSCRIPT[2][1]))[0]
    assert "partial SSE stream" in judged(at_1, sse(TRANSCRIPT[1][1]))[0]
    assert "partial SSE stream" in judged(at_1, sse(TRANSCRIPT[1][1], TRANSCRIPT[2][1]), complete=False)[0]
    assert "partial SSE stream" in judged(at_1, sse(TRANSCRIPT[1][1], tail=b"id: 3\nevent: x"))[0]
    assert "not strictly increasing" in judged(at_1, sse(TRANSCRIPT[2][1], TRANSCRIPT[1][1], TRANSCRIPT[2][1]))[0]
    assert "event_id is not its id" in judged(at_1, b"id: 2\ndata: " + json.dumps(frame(5, "x")).encode() + b"\n\n")[0]
    assert "positive integer id" in judged(at_1, b"data: " + json.dumps(frame(2, "x")).encode() + b"\n\n")[0]
    bad = read("inv_x", "abc", None, "error", None, "")
    assert [p for p in judged(bad, sse(TRANSCRIPT[0][1])) if "partial" in p], "a 200 to a bad cursor: partial stream named too"


def test_the_json_judge_wants_the_documented_keys_and_no_injected_header() -> None:
    snap = json.dumps({"invocation_id": "inv_x", "session_id": "s", "status": "completed", "output": "", "attempt": 1,
                       "entry_mode": "fresh", "error": None, "last_event_id": 3}).encode()
    as_json = read("inv_x", "abc", None, "ok", None, "", b"application/json")
    assert judged(as_json, snap, headers={"content-type": "application/json"}) == []
    assert "lacks" in judged(as_json, b'{"status": "completed"}', headers={"content-type": "application/json"})[0]
    create = BadRequest("POST", "/invocations", b"{}", expect="error_or_ok")
    assert "lacks ['invocation_id']" in judged(create, b'{"session_id": "s", "status": "queued"}', headers={"content-type": "application/json"})[0]
    error = json.dumps({"error": {"type": "t", "code": "c", "message": "m", "param": None}}).encode()
    echoed = Answer(400, {"content-type": "application/json", "x-injected": "1"}, error, True)
    assert "header injection" in answer_problems(read("inv_x", "1\r\nX-Injected: 1", None, "error", None, ""), echoed)[0]


def test_the_pinned_requests_hold_the_cursors_the_issue_names() -> None:
    cursors = pinned("bad_cursors", "inv_x", 4, [8, 2])
    afters = {r.after for r in cursors if r.expect == "ok"}
    assert {8, 2, 5, 10**30} <= afters, afters
    assert any("%0D%0A" in r.path for r in cursors), [r.path for r in cursors]
