"""The adversarial and load suites in black-box form (a target with ``control: none``, no adapter,
plain input; docs/protocol.md §8): they pass the correct tiny targets and catch the broken ones,
and the load run's placement proofs and output judgement hold without markers."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from explore_helpers import tiny_config

import conformance
from conformance.explore.load import run_load

PACKAGE = Path(conformance.__file__).parent
CONTRACTS = PACKAGE.parent / "contracts" / "**" / "*.yaml"
TINY_INV = Path(__file__).with_name("tiny_inv_target.py")
PLAIN = '{"deltas": 20, "delay_ms": 20}'  # a plain run of ~0.4 s: long enough for a kill after the first delta


def run_kit(tmp_path: Path, config: Path, select: str) -> tuple[int, str]:
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    cmd = [sys.executable, "-m", "pytest", str(PACKAGE), "-q", "-rs", "-p", "no:benchmark", "--conformance-target", str(config),
           "--conformance-contracts", str(CONTRACTS), "--conformance-results", str(tmp_path / "results"), "-k", select]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=400)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize("bug, expected", [("none", None), ("cursor-500", "(a 5xx for bad input)")])
def test_black_box_adversarial_responses_catches_a_500_on_a_malformed_cursor(tmp_path, bug, expected) -> None:
    config = tiny_config(tmp_path, bug, plain_script=PLAIN)
    code, out = run_kit(tmp_path, Path(config.source), "test_adversarial_responses and (bad_cursors or malformed_json)")
    if bug == "none":
        assert code == 0 and "2 passed" in out, out[-3000:]
    else:
        assert code == 1 and "test_adversarial_responses[bad_cursors]" in out and expected in out, out[-3000:]
        assert "test_adversarial_responses[malformed_json] PASSED" in out or "1 passed" in out, out[-3000:]


def _tiny_inv_blackbox(tmp_path: Path, bug: str) -> Path:
    config = tmp_path / f"tiny-inv-{bug}-blackbox.yaml"
    config.write_text(
        f"name: tiny-inv-{bug}\n"
        f"command: \"{{python}} {TINY_INV} --port {{port}} --state-dir {{state_dir}} --bug {bug}\"\n"
        "readiness: {path: /readiness, timeout_s: 30}\nshutdown_grace_s: 5\nprofiles: [invocations]\nclaims: [cancel]\n"
        "control: none\nblackbox: {input: \"Count from 1 to 3.\", invocations: {input: {prompt: \"Count from 1 to 3.\"}}}\n"
    )
    return config


@pytest.mark.parametrize("bug, expected", [("none", None), ("cursor-500", "(a 5xx for bad input)")])
def test_black_box_adversarial_invocations_catches_a_500_on_a_malformed_cursor(tmp_path, bug, expected) -> None:
    code, out = run_kit(tmp_path, _tiny_inv_blackbox(tmp_path, bug),
                        "test_adversarial_invocations and (bad_cursors or script_fields)")
    # the script's own rules need control: not claimed, with the reason, never silently dropped
    assert re.search(r"SKIPPED .*not claimed by black-box target tiny-inv-\S+: needs control: the test-control script", out), out[-3000:]
    if bug == "none":
        assert code == 0 and "1 passed, 1 skipped" in out, out[-3000:]
    else:
        assert code == 1 and "test_adversarial_invocations[bad_cursors]" in out and expected in out, out[-3000:]


@pytest.mark.parametrize("resilient", [True, False])
def test_black_box_load_passes_a_correct_target_with_the_kill_placed_mid_run(tmp_path, spawn_factory, resilient) -> None:
    config = tiny_config(tmp_path, "none", plain_script=PLAIN)
    target = spawn_factory(config)({"resilient_background": resilient})
    result = run_load(target, 6, resilient=resilient, plain=config.blackbox_request("responses"))
    assert result.acknowledged == 6 and result.problems == [], result.problems
    assert result.mid_run > 0 and result.not_testable is None, (result.mid_run, result.statuses)
    assert set(result.statuses.values()) <= {"completed" if resilient else "failed", "completed"}, result.statuses
    assert target.incarnations[-2].exit_mode == "killed" and len(target.incarnations) == 2


def test_black_box_load_catches_a_lost_last_event(tmp_path, spawn_factory) -> None:
    config = tiny_config(tmp_path, "lose-last", plain_script=PLAIN)
    target = spawn_factory(config)({"resilient_background": True})
    result = run_load(target, 6, resilient=True, plain=config.blackbox_request("responses"))
    assert result.acknowledged == 6 and result.mid_run > 0, (result.problems, result.mid_run)
    assert any("rewritten" in p or "missing seq" in p for p in result.problems), result.problems


def test_black_box_load_is_not_testable_when_every_run_ends_before_the_kill(tmp_path, spawn_factory) -> None:
    config = tiny_config(tmp_path, "none", plain_script='{"deltas": 1}')  # a run over before any kill lands
    target = spawn_factory(config)({"resilient_background": True})
    result = run_load(target, 3, resilient=True, plain=config.blackbox_request("responses"))
    assert result.mid_run == 0 and result.problems == [], result.problems
    assert result.not_testable and "longer-running `blackbox.input`" in result.not_testable


# -- the pure parts, fed broken input ---------------------------------------------------------
import json  # noqa: E402

from conformance.blackbox import GAP_RULE, whole_stream_problems  # noqa: E402
from conformance.explore.adversarial import level_of  # noqa: E402
from conformance.explore.invariants import Observations, Tracked, all_problems  # noqa: E402
from conformance.history import HttpCall, SSEFrame  # noqa: E402

RID = "resp_bb1"


def _snap(status: str, text: str = "") -> dict:
    output = [{"type": "message", "content": [{"type": "output_text", "text": text}]}] if text else []
    return {"id": RID, "object": "response", "status": status, "output": output}


def _events(deltas=("x ", "y "), final: str | None = None, status: str = "completed") -> list[dict]:
    out = [{"type": "response.created", "sequence_number": 0, "response": _snap("in_progress")},
           {"type": "response.in_progress", "sequence_number": 1, "response": _snap("in_progress")}]
    out += [{"type": "response.output_text.delta", "sequence_number": 2 + i, "delta": d} for i, d in enumerate(deltas)]
    out.append({"type": f"response.{status}", "sequence_number": 2 + len(deltas),
                "response": _snap(status, "".join(deltas) if final is None else final)})
    return out


def _frames(payloads: list[dict], t0: float = 0.0) -> list[SSEFrame]:
    return [SSEFrame(event=p.get("type"), data=json.dumps(p), t=t0 + 0.01 * i) for i, p in enumerate(payloads)]


def _inv_frames(types: list[str], ids: list[int] | None = None) -> list[SSEFrame]:
    ids = ids or list(range(1, len(types) + 1))
    return [SSEFrame(event=t, data=json.dumps({"index": 0, "text": "a"}), id=str(i)) for t, i in zip(types, ids)]


def test_a_whole_bystander_stream_passes() -> None:
    assert whole_stream_problems(_frames(_events()), "complete", "completed", "responses") == []
    inv = _inv_frames(["invocation.started", "invocation.delta", "invocation.completed"])
    assert whole_stream_problems(inv, "complete", "completed", "invocations") == []


@pytest.mark.parametrize("frames, ended, status, words", [
    (_events(), "disconnected", "completed", "did not end whole"),
    (_events()[1:], "complete", "completed", "first event is 'response.in_progress'"),
    (_events()[:2] + _events()[:1] + _events()[2:], "complete", "completed", "not strictly increasing"),
    (_events()[:-1], "complete", "in_progress", "exactly one terminal event"),
    (_events() + [_events()[2] | {"sequence_number": 9}], "complete", "completed", "exactly one terminal event"),
    (_events(), "complete", "failed", "terminal event says 'completed', its GET after the stream ended says 'failed'"),
    ([e | {"sequence_number": e["sequence_number"] + 5} for e in _events()], "complete", "completed", "starts at cursor 5"),
    ([], "complete", "completed", "carried no event"),
])
def test_each_broken_bystander_stream_is_a_must_problem(frames, ended, status, words) -> None:
    problems = whole_stream_problems(_frames(frames), ended, status, "responses")
    assert any(words in p and level_of(p) == "MUST" for p in problems), problems


def test_a_skipped_sequence_number_is_a_should_on_responses_and_a_must_on_invocations() -> None:
    gapped = _events()[:3] + [e | {"sequence_number": e["sequence_number"] + 1} for e in _events()[3:]]
    [finding] = whole_stream_problems(_frames(gapped), "complete", "completed", "responses")
    assert level_of(finding) == "SHOULD" and finding.rule == GAP_RULE and "skip numbers" in finding
    inv = _inv_frames(["invocation.started", "invocation.delta", "invocation.completed"], [1, 2, 4])
    [problem] = whole_stream_problems(inv, "complete", "completed", "invocations")
    assert level_of(problem) == "MUST" and "skip numbers" in problem
    late = _inv_frames(["invocation.delta", "invocation.started", "invocation.completed"])
    assert any("first event is 'invocation.delta'" in p for p in whole_stream_problems(late, "complete", "completed", "invocations"))
    mixed = _inv_frames(["invocation.started", "invocation.completed", "invocation.delta"])
    assert any("exactly one terminal" in p for p in whole_stream_problems(mixed, "complete", "completed", "invocations"))


def _sse(name: str, payloads: list[dict], t0: float, cursor: int | None = None, ended: str = "complete") -> HttpCall:
    url = "http://127.0.0.1:1/responses" if name == "create" else f"http://127.0.0.1:1/responses/{RID}"
    params = {"stream": "true", **({} if cursor is None else {"starting_after": cursor})}
    return HttpCall(name=name, method="GET", url=url, params=params, status=200, content_type="text/event-stream",
                    frames=_frames(payloads, t0), ended=ended, started_at=t0, ended_at=t0 + 0.1)


def _get(t: float, text: str) -> HttpCall:
    return HttpCall(name="get", method="GET", url=f"http://127.0.0.1:1/responses/{RID}", status=200,
                    content_type="application/json", body=_snap("completed", text), started_at=t, ended_at=t + 0.001)


def _markerless(*calls: HttpCall) -> Observations:
    return Observations(calls=list(calls), responses={RID: Tracked(RID, None, {}, acked_at=0.0)})


def test_a_markerless_completed_output_equal_to_the_streamed_deltas_passes() -> None:
    assert all_problems(_markerless(_sse("create", _events(), 0.0), _sse("replay", _events(), 1.0), _get(2.0, "x y "))) == []


@pytest.mark.parametrize("calls, words", [
    ([_sse("create", _events(final="x y z "), 0.0)], "completed output 'x y z ' (response.completed#4)"),  # the terminal snapshot
    ([_sse("create", _events(), 0.0), _get(2.0, "x ")], "completed output 'x ' (get body) but live create stream"),
    ([_sse("replay", _events(), 1.0), _get(2.0, "")], "announced 'x y '"),
])
def test_a_markerless_completed_output_other_than_the_streamed_deltas_is_caught(calls, words) -> None:
    problems = all_problems(_markerless(*calls))
    assert any(words in p for p in problems), problems
