"""Real SIGKILL / SIGTERM against the server process, then restart on the same state dir.

Rows of the crash matrix (docs/contracts.md, Sources): 1 (resilient store+bg), 2 (stored bg, not
resilient), 3 (stored foreground), 4 (store=false), 11 (resilient with checkpoints). Every
fault is triggered on a marker (``held k``), and every test checks that the fault happened
(exit mode, marker lines, a new incarnation).
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from ri_wire import Api, SSEReader, error_of, expected_text, new_tag, output_text, parse_frames, script_input

from harness.process import Target

RESILIENT = ("--resilient-background", "--shutdown-grace", "0.5")
PLAIN = ("--shutdown-grace", "0.5")
TERM_WAIT_S = 0.5 + 2.0  # grace + 2 s: a graceful exit must come well within this


def wait_log(target: Target, text: str, timeout_s: float = 10.0) -> None:
    """Bounded wait for a line in the current incarnation's log."""
    deadline = time.monotonic() + timeout_s
    while text not in target.log_tail(200):
        if time.monotonic() > deadline:
            raise AssertionError(f"log never showed {text!r}; tail:\n{target.log_tail(40)}")
        time.sleep(0.005)  # polling interval of a bounded wait


def starts(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("start ")]


def check_single_lifetime_log(events: list[dict]) -> None:
    """One response.created at seq 0, sequence numbers 0..n without gap or reuse."""
    assert [e["type"] for e in events].count("response.created") == 1
    assert events[0]["type"] == "response.created"
    assert [e["sequence_number"] for e in events] == list(range(len(events)))


def open_bg_stream(api: Api, script: dict, stack, **body) -> SSEReader:
    payload = {"input": script_input(**script), "background": True, "stream": True, **body}
    cm = api.http.stream("POST", "/responses", json=payload)
    stack.append(cm)
    return SSEReader(cm.__enter__())


def fg_in_thread(api: Api, body: dict) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def run() -> None:
        try:
            out["r"] = api.http.post("/responses", json=body)
        except Exception as exc:  # the connection dies with the server
            out["exc"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def id_from_start(markers, tag: str) -> str:
    return markers.wait_for(tag, r"^start attempt=1 ").split("id=")[1].split()[0]


# ---------------------------------------------------------------- Row 1 C (SIGKILL, resilient)
def test_row1_sigkill_json_reinvokes_from_scratch(make_server) -> None:
    target: Target = make_server(*RESILIENT)
    tag = new_tag("r1c")
    with Api(target.base_url) as api:
        rid = api.create_script({"deltas": 6, "hold_at": 3, "tag": tag}, background=True).json()["id"]
        target.markers.wait_for(tag, r"^held 3$")
        assert target.kill().exit_mode == "killed"
        target.markers.release(tag)
        target.restart()
        final = api.wait_status(rid)
    assert final["status"] == "completed"
    assert output_text(final) == expected_text(2, 0, 6)  # no stale a1 text without a checkpoint
    lines = target.markers.lines(tag)
    assert starts(lines) == [f"start attempt=1 id={rid} from=0", f"start attempt=2 id={rid} from=0"]
    assert lines[-1] == "done" and "interrupted" not in lines  # SIGKILL: the handler never heard of it
    assert len(target.incarnations) == 2


def test_row1_sigkill_stream_continues_sequence_with_reset_event(make_server) -> None:
    target: Target = make_server(*RESILIENT)
    tag = new_tag("r1cs")
    stack: list = []
    with Api(target.base_url) as api:
        reader = open_bg_stream(api, {"deltas": 5, "hold_at": 2, "tag": tag}, stack)
        before = reader.read(stop=lambda e: e.get("delta") == "a1:d2 ")
        target.markers.wait_for(tag, r"^held 2$")
        rid = before[0]["response"]["id"]
        assert target.kill().exit_mode == "killed"
        for cm in stack:
            cm.__exit__(None, None, None)
        # A torn half-line at the end of the event log, as a crash mid-append would leave it.
        log_path = target.state_dir / "streams" / f"{rid}.jsonl"
        with open(log_path, "ab") as f:
            f.write(b'{"type":"response.output_text.delta","sequence_')
        target.markers.release(tag)
        target.restart()
        last_seen = before[-1]["sequence_number"]
        after = api.replay(rid, starting_after=last_seen)
        full = api.replay(rid)
    assert after.status == 200
    reset = after.events[0]
    assert reset["type"] == "response.in_progress" and reset["sequence_number"] == last_seen + 1
    assert reset["response"]["output"] == [] and reset["response"]["status"] == "in_progress"
    assert "response.created" not in after.types
    added = [e for e in after.events if e["type"] == "response.output_item.added"]
    assert [e["output_index"] for e in added] == [0]  # the slot is replaced, not appended
    assert after.events[-1]["type"] == "response.completed"
    assert output_text(after.events[-1]["response"]) == expected_text(2, 0, 5)
    check_single_lifetime_log(full.events)
    assert full.events[: len(before)] == before  # pre-crash events are kept as they were sent
    assert starts(target.markers.lines(tag))[-1] == f"start attempt=2 id={rid} from=0"


# ---------------------------------------------------------------- Row 11 C (checkpoints)
@pytest.mark.parametrize(
    ("hold_at", "resume_from"), [(3, 4), (2, 2)], ids=["after-checkpoint(C1)", "mid-group(C3)"]
)
def test_row11_sigkill_resumes_after_last_checkpoint(make_server, hold_at: int, resume_from: int) -> None:
    target: Target = make_server(*RESILIENT)
    tag = new_tag("r11")
    stack: list = []
    with Api(target.base_url) as api:
        reader = open_bg_stream(api, {"deltas": 6, "checkpoint_every": 2, "hold_at": hold_at, "tag": tag}, stack)
        before = reader.read(stop=lambda e: e.get("delta") == f"a1:d{hold_at} ")
        target.markers.wait_for(tag, rf"^held {hold_at}$")
        rid = before[0]["response"]["id"]
        target.kill()
        for cm in stack:
            cm.__exit__(None, None, None)
        target.markers.release(tag)
        target.restart()
        final = api.wait_status(rid)
        full = api.replay(rid)
    assert final["status"] == "completed"
    assert output_text(final) == expected_text(1, 0, resume_from) + expected_text(2, resume_from, 6)
    assert [len(i["content"][0]["text"].split()) for i in final["output"]] == [2, 2, 2]
    check_single_lifetime_log(full.events)
    resets = [e for e in full.events if e["type"] == "response.in_progress"]
    assert len(resets) == 2
    checkpointed = resets[1]["response"]["output"]
    assert output_text({"output": checkpointed}) == expected_text(1, 0, resume_from)
    idx = full.events.index(resets[1])
    new_items = [e["output_index"] for e in full.events[idx:] if e["type"] == "response.output_item.added"]
    assert new_items == list(range(resume_from // 2, 3))
    lines = target.markers.lines(tag)
    assert f"start attempt=2 id={rid} from={resume_from}" in lines
    cps = [line for line in lines if line.startswith("checkpoint ")]
    assert cps == ["checkpoint 1", "checkpoint 3", "checkpoint 5"][: (hold_at + 1) // 2] + [
        f"checkpoint {i}" for i in (1, 3, 5) if i >= resume_from
    ]
    if hold_at == resume_from:  # the recovered attempt reaches the hold again and runs through
        i2 = lines.index(f"start attempt=2 id={rid} from={resume_from}")
        assert lines[i2:].count(f"held {hold_at}") == 1 and "released" in lines[i2:]


# ---------------------------------------------------------------- Row 2 C, Row 3 C, Row 4 C
def test_row2_sigkill_marks_failed_without_rerun(make_server) -> None:
    target: Target = make_server(*PLAIN)
    tag = new_tag("r2c")
    stack: list = []
    with Api(target.base_url) as api:
        reader = open_bg_stream(api, {"deltas": 4, "hold_at": 1, "tag": tag}, stack)
        before = reader.read(stop=lambda e: e.get("delta") == "a1:d1 ")
        target.markers.wait_for(tag, r"^held 1$")
        rid = before[0]["response"]["id"]
        assert target.kill().exit_mode == "killed"
        for cm in stack:
            cm.__exit__(None, None, None)
        target.markers.release(tag)
        target.restart()
        final = api.get(rid).json()  # the scan ran before readiness: already terminal
        full = api.replay(rid)
    assert final["status"] == "failed" and final["output"] == []
    assert final["error"]["code"] == "server_error" and "crash" in final["error"]["message"]
    assert starts(target.markers.lines(tag)) == [f"start attempt=1 id={rid} from=0"]
    check_single_lifetime_log(full.events)
    assert full.events[: len(before)] == before
    assert full.events[-1]["type"] == "response.failed"
    assert full.events[-1]["sequence_number"] == before[-1]["sequence_number"] + 1


def _killed_row2_stream(make_server, tag: str) -> tuple[Target, str, list[dict]]:
    """A stored background+stream response (row 2, not resilient) held at delta 1, SIGKILLed."""
    target: Target = make_server(*PLAIN)
    stack: list = []
    with Api(target.base_url) as api:
        reader = open_bg_stream(api, {"deltas": 4, "hold_at": 1, "tag": tag}, stack)
        before = reader.read(stop=lambda e: e.get("delta") == "a1:d1 ")
        target.markers.wait_for(tag, r"^held 1$")
        assert target.kill().exit_mode == "killed"
        for cm in stack:
            cm.__exit__(None, None, None)
    target.markers.release(tag)
    return target, before[0]["response"]["id"], before


def test_terminal_event_logged_before_its_snapshot_is_the_authority(make_server) -> None:
    """Killed between the terminal event and its snapshot: the next lifetime takes the status from
    the log (never re-runs or marks failed what had ended), and forgets the task."""
    tag = new_tag("repair")
    target, rid, before = _killed_row2_stream(make_server, tag)
    log_file = target.state_dir / "streams" / f"{rid}.jsonl"
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    done = dict(lines[0]["response"], status="completed", output=[], completed_at=1)
    with log_file.open("a") as f:  # what the dead lifetime logged, and did not live to save
        f.write(json.dumps({"type": "response.completed", "sequence_number": lines[-1]["sequence_number"] + 1, "response": done}) + "\n")
    target.restart()
    with Api(target.base_url) as api:
        final = api.get(rid).json()
        full = api.replay(rid)
    assert final["status"] == "completed", final
    assert full.events[-1]["type"] == "response.completed" and full.events[: len(before)] == before
    check_single_lifetime_log(full.events)
    assert starts(target.markers.lines(tag)) == [f"start attempt=1 id={rid} from=0"]
    assert not (target.state_dir / "tasks" / f"{rid}.json").exists()


def test_mark_failed_over_an_empty_log_still_opens_with_response_created(make_server) -> None:
    """Killed after the snapshot was saved and before response.created was logged (here: the log
    emptied by hand): the failed response's replay is response.created at 0, then response.failed."""
    tag = new_tag("emptylog")
    target, rid, _ = _killed_row2_stream(make_server, tag)
    (target.state_dir / "streams" / f"{rid}.jsonl").write_bytes(b"")
    target.restart()
    with Api(target.base_url) as api:
        final = api.get(rid).json()
        full = api.replay(rid)
    assert final["status"] == "failed" and final["error"]["code"] == "server_error"
    assert [(e["type"], e["sequence_number"]) for e in full.events] == [("response.created", 0), ("response.failed", 1)]
    assert full.events[0]["response"]["id"] == rid and full.events[0]["response"]["status"] == "in_progress"
    assert starts(target.markers.lines(tag)) == [f"start attempt=1 id={rid} from=0"]


@pytest.mark.parametrize("stream", [False, True])
def test_row3_sigkill_foreground_marked_failed(make_server, stream: bool) -> None:
    target: Target = make_server(*RESILIENT)  # resilient is immaterial for foreground
    tag = new_tag("r3c")
    with Api(target.base_url) as api:
        t, out = fg_in_thread(api, {"input": script_input(deltas=4, hold_at=1, tag=tag), "stream": stream})
        rid = id_from_start(target.markers, tag)
        target.markers.wait_for(tag, r"^held 1$")
        assert api.get(rid).status_code == 404  # B16 while in flight
        target.kill()
        t.join(10)
        target.markers.release(tag)
        target.restart()
        final = api.get(rid).json()
    assert final["status"] == "failed" and final["error"]["code"] == "server_error" and final["output"] == []
    assert starts(target.markers.lines(tag)) == [f"start attempt=1 id={rid} from=0"]


def test_row4_sigkill_leaves_nothing(make_server) -> None:
    target: Target = make_server(*RESILIENT)
    tag = new_tag("r4c")
    with Api(target.base_url) as api:
        t, out = fg_in_thread(api, {"input": script_input(deltas=4, hold_at=1, tag=tag), "store": False, "stream": True})
        rid = id_from_start(target.markers, tag)
        target.markers.wait_for(tag, r"^held 1$")
        target.kill()
        t.join(10)
        target.markers.release(tag)
        target.restart()
        r = api.get(rid)
    assert r.status_code == 404 and error_of(r)["param"] == "response_id"
    for path in target.state_dir.rglob("*"):
        assert rid not in path.name and tag not in path.name
        if path.is_file():
            assert rid.encode() not in path.read_bytes()
    assert not list((target.state_dir / "tasks").iterdir())
    assert starts(target.markers.lines(tag)) == [f"start attempt=1 id={rid} from=0"]


# ---------------------------------------------------------------- recovery gate
def test_never_created_task_is_dropped(make_server) -> None:
    target: Target = make_server(*RESILIENT)
    tag = new_tag("drop")
    with Api(target.base_url) as api:
        t, out = fg_in_thread(api, {"input": script_input(deltas=2, hold_at=-1, tag=tag), "background": True})
        rid = id_from_start(target.markers, tag)
        target.markers.wait_for(tag, r"^held -1$")
        assert (target.state_dir / "tasks" / f"{rid}.json").exists()  # accepted, never created
        target.kill()
        t.join(10)
        target.markers.release(tag)
        target.restart()
        assert api.get(rid).status_code == 404
        assert api.create("still serving").status_code == 200
    assert not (target.state_dir / "tasks" / f"{rid}.json").exists()
    assert starts(target.markers.lines(tag)) == [f"start attempt=1 id={rid} from=0"]


def test_transient_store_error_during_recovery_does_not_drop(make_server, tmp_path) -> None:
    arm = tmp_path / "transient.arm"
    target: Target = make_server(*RESILIENT, env={"REFERENCE_IMPL_FAULT_TRANSIENT_GET": str(arm)})
    tag = new_tag("transient")
    with Api(target.base_url) as api:
        rid = api.create_script({"deltas": 3, "hold_at": 1, "tag": tag}, background=True).json()["id"]
        target.markers.wait_for(tag, r"^held 1$")
        target.kill()
        arm.write_text("armed")
        target.markers.release(tag)
        target.restart()
        assert not arm.exists()  # the fault really fired during the recovery check
        final = api.wait_status(rid)
    assert final["status"] == "completed" and output_text(final) == expected_text(2, 0, 3)
    assert len(starts(target.markers.lines(tag))) == 2
    assert "transient" in target.log_tail(200)


# ---------------------------------------------------------------- SIGKILL at arbitrary points
def test_sigkill_mid_flight_always_leaves_a_loadable_state(make_server) -> None:
    """Kill while the handler writes events and checkpoints, at several points; restart each time."""
    target: Target = make_server(*RESILIENT)
    n = 300
    with Api(target.base_url) as api:
        for kill_after in (5, 60, 250):
            tag = new_tag("anykill")
            stack: list = []
            reader = open_bg_stream(api, {"deltas": n, "checkpoint_every": 7, "delay_ms": 1, "tag": tag}, stack)
            before = reader.read(stop=lambda e, k=kill_after: e["sequence_number"] + 1 >= k)
            rid = before[0]["response"]["id"]
            target.kill()
            for cm in stack:
                cm.__exit__(None, None, None)
            target.restart()
            final = api.wait_status(rid)
            full = api.replay(rid)
            assert final["status"] == "completed", final
            tokens = output_text(final).split()
            assert [int(t.split(":d")[1]) for t in tokens] == list(range(n))
            attempts = [t.split(":")[0] for t in tokens]
            assert attempts == sorted(attempts) and attempts[-1] == "a2"  # a1 (checkpointed) prefix, then a2
            check_single_lifetime_log(full.events)
            assert full.events[: len(before)] == before
            assert any(line.startswith("start attempt=2 ") for line in target.markers.lines(tag))
    assert len(target.incarnations) == 4


# ---------------------------------------------------------------- Path B (SIGTERM)
@pytest.mark.parametrize(
    ("extra", "resume_from"), [({}, 0), ({"checkpoint_every": 2}, 2)], ids=["row1", "row11-checkpoint"]
)
def test_row1_sigterm_leaves_in_progress_for_next_lifetime(make_server, extra: dict, resume_from: int) -> None:
    target: Target = make_server(*RESILIENT)
    tag = new_tag("r1b")
    stack: list = []
    with Api(target.base_url) as api:
        reader = open_bg_stream(api, {"deltas": 4, "hold_at": 1, "tag": tag, **extra}, stack)
        before = reader.read(stop=lambda e: e.get("delta") == "a1:d1 ")
        target.markers.wait_for(tag, r"^held 1$")
        rid = before[0]["response"]["id"]
        inc = target.terminate(grace_s=TERM_WAIT_S)
        assert (inc.exit_mode, inc.exit_code) == ("graceful", 0)
        before += reader.read()
        assert reader.ended  # the live stream ended cleanly ...
        assert not any(e["type"] in ("response.completed", "response.failed") for e in before)  # ... without a terminal
        for cm in stack:
            cm.__exit__(None, None, None)
        assert target.markers.lines(tag)[-1] == "interrupted"
        env = json.loads((target.state_dir / "responses" / f"{rid}.json").read_text())
        assert env["response"]["status"] == "in_progress"  # left for the next lifetime
        target.markers.release(tag)
        target.restart()
        final = api.wait_status(rid)
        full = api.replay(rid)
    assert final["status"] == "completed"
    assert output_text(final) == expected_text(1, 0, resume_from) + expected_text(2, resume_from, 4)
    check_single_lifetime_log(full.events)
    assert full.events[: len(before)] == before
    assert starts(target.markers.lines(tag))[-1] == f"start attempt=2 id={rid} from={resume_from}"


def test_row2_sigterm_marks_failed_in_process(make_server) -> None:
    target: Target = make_server(*PLAIN)
    tag = new_tag("r2b")
    stack: list = []
    with Api(target.base_url) as api:
        reader = open_bg_stream(api, {"deltas": 4, "hold_at": 1, "tag": tag}, stack)
        before = reader.read(stop=lambda e: e.get("delta") == "a1:d1 ")
        target.markers.wait_for(tag, r"^held 1$")
        rid = before[0]["response"]["id"]
        inc = target.terminate(grace_s=TERM_WAIT_S)
        assert (inc.exit_mode, inc.exit_code) == ("graceful", 0)
        rest = reader.read()  # the waiting client was answered before exit
        for cm in stack:
            cm.__exit__(None, None, None)
        assert [e["type"] for e in rest] == ["response.failed"]
        failed = rest[0]["response"]
        assert failed["status"] == "failed" and failed["error"]["code"] == "server_error"
        assert "grace" in failed["error"]["message"]
        env = json.loads((target.state_dir / "responses" / f"{rid}.json").read_text())
        assert env["response"] == failed  # persisted in-process, before the next lifetime
        assert not (target.state_dir / "tasks" / f"{rid}.json").exists()
        target.markers.release(tag)
        target.restart()
        assert api.get(rid).json() == failed
        full = api.replay(rid)
    check_single_lifetime_log(full.events)
    assert full.events == before + rest
    assert target.markers.lines(tag)[-1] == "interrupted"
    assert len(starts(target.markers.lines(tag))) == 1


@pytest.mark.parametrize("stream", [False, True])
def test_rows3_4_sigterm_answer_waiting_foreground_clients(make_server, stream: bool) -> None:
    """Path B, foreground: the grace runs out, the waiting client still gets its answer, ``failed``
    (server_error): a JSON body, or an SSE stream whose last frame is ``response.failed``."""
    target: Target = make_server(*PLAIN)
    t3, t4 = new_tag("r3b"), new_tag("r4b")
    with Api(target.base_url) as api, Api(target.base_url) as api2:
        th3, out3 = fg_in_thread(api, {"input": script_input(deltas=3, hold_at=0, tag=t3), "stream": stream})
        th4, out4 = fg_in_thread(api2, {"input": script_input(deltas=3, hold_at=0, tag=t4), "store": False, "stream": stream})
        rid3 = id_from_start(target.markers, t3)
        id_from_start(target.markers, t4)
        target.markers.wait_for(t3, r"^held 0$")
        target.markers.wait_for(t4, r"^held 0$")
        inc = target.terminate(grace_s=TERM_WAIT_S)
        assert inc.exit_mode == "graceful"
        th3.join(10)
        th4.join(10)
    for out in (out3, out4):
        assert "r" in out, out
        assert out["r"].status_code == 200, out["r"].text
        if stream:
            frames, rest = parse_frames(out["r"].content)
            assert rest == b"" and frames[0][0] == "response.created", (frames, rest)
            assert [t for t, _ in frames].count("response.failed") == 1 and frames[-1][0] == "response.failed", frames
            body = frames[-1][1]["response"]
        else:
            body = out["r"].json()
        assert body["status"] == "failed" and body["error"]["code"] == "server_error"
    for tag in (t3, t4):
        assert target.markers.lines(tag)[-1] == "interrupted"
    env = json.loads((target.state_dir / "responses" / f"{rid3}.json").read_text())
    assert env["response"]["status"] == "failed"


def test_sigterm_lets_running_handlers_finish_within_grace(make_server) -> None:
    """Path A under SIGTERM: a handler that finishes inside the grace completes normally."""
    target: Target = make_server("--shutdown-grace", "5")
    tag = new_tag("grace")
    with Api(target.base_url) as api:
        rid = api.create_script({"deltas": 2, "hold_at": 0, "tag": tag}, background=True).json()["id"]
        target.markers.wait_for(tag, r"^held 0$")
        result: dict = {}
        stopper = threading.Thread(target=lambda: result.setdefault("inc", target.terminate(grace_s=7.0)))
        stopper.start()
        wait_log(target, "shutdown: 1 run(s) active")  # SIGTERM reached the server, handler still held
        refused = _wait_refused(target)  # it stops accepting while the held handler still runs
        target.markers.release(tag)  # ... and is released inside the grace
        stopper.join(10)
    assert result["inc"].exit_mode == "graceful"
    assert "Connection refused" in refused or "ConnectError" in refused, refused
    assert target.markers.lines(tag)[-1] == "done"
    env = json.loads((target.state_dir / "responses" / f"{rid}.json").read_text())
    assert env["response"]["status"] == "completed"


def _wait_refused(target: Target, timeout_s: float = 5.0) -> str:
    """Bounded wait until a new connection to the (still running) server is refused."""
    import httpx

    deadline = time.monotonic() + timeout_s
    last = "nothing yet"
    while time.monotonic() < deadline:
        assert target.is_alive(), f"the server exited before it stopped accepting; tail:\n{target.log_tail(20)}"
        try:
            last = f"{httpx.get(target.base_url + '/readiness', timeout=1.0).status_code}"
        except httpx.ConnectError as exc:
            return f"ConnectError: {exc}"
        time.sleep(0.005)  # polling interval of a bounded wait
    raise AssertionError(f"new connections still accepted {timeout_s}s after SIGTERM; last readiness answer {last}")


# ---------------------------------------------------------------- persist before send
def test_an_event_whose_append_failed_never_reaches_a_client(make_server, tmp_path) -> None:
    """The append of seq 5 (the second delta) fails once: no client ever sees that delta; what
    the live stream showed is exactly the persisted log, and the response still ends."""
    arm = tmp_path / "append.arm"
    arm.write_text("5")
    target: Target = make_server(*PLAIN, env={"REFERENCE_IMPL_FAULT_APPEND": str(arm)})
    tag = new_tag("append")
    with Api(target.base_url) as api:
        live = api.stream_create({"deltas": 4, "tag": tag}, background=True)
        rid = live.events[0]["response"]["id"]
        final = api.wait_status(rid)
        full = api.replay(rid)
    assert not arm.exists(), "the append fault never fired"
    assert "a1:d1 " not in [e.get("delta") for e in live.events], live.types
    assert live.events == full.events, (live.types, full.types)
    check_single_lifetime_log(full.events)
    assert full.events[5]["type"] == "response.failed" and final["status"] == "failed", full.types
    assert final["error"]["code"] == "server_error"
