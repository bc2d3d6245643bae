"""Adversarial input against the target under test (responses profile), one test id per class.

One target per module (per xdist worker) serves every class.  Before the classes run it holds
two bystanders: a finished stream response (its snapshot and replay must never change) and a
held one with its live stream attached (it must stay in progress, its stream open, and finish
normally at the end).  After each class: the server still answers readiness, nothing appeared
outside the state dir, and no answer ever carried the content of the planted ``secret`` files.

Against a black-box target (``control: none``, docs/protocol.md §8) every class runs the same
rules; the bystanders run the target's plain ``blackbox.input`` instead of a script, and the held
one (which needs the adapter's hold) is replaced by what the wire can earn: before each class a
plain-input bystander is created (acknowledged by its ``response.created``) and, after the class,
its live stream must have ended whole (``blackbox.whole_stream_problems``: created first,
increasing sequence numbers, exactly one terminal event and it last) with its GET status equal to
the terminal event's.

Budget: 15 examples per class by default (derandomized), ``--conformance-explore N`` for N.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest

from conformance.blackbox import bystander_verdict
from conformance.drivers.base import Recorder, StreamControl
from conformance.drivers.responses import ResponsesDriver, response_id_of, script_input
from conformance.explore.adversarial import (
    CLASSES,
    adversarial_target,
    level_of,
    outside_files,
    probe_problems,
    responses_ok_judge,
    run_class,
    server_problems,
    strategy_for,
)
from conformance.history import TERMINAL_EVENTS, HttpCall
from harness.markers import Held
from harness.process import Target

BLACKBOX = True
"""Runs against a ``control: none`` target too, with plain-input bystanders (see above)."""
BLACKBOX_WAIT_S = 120.0  # a plain run (the target's own prompt) may take longer than a scripted one

DEFAULT_EXAMPLES = 15
WAIT_S = 10.0
HELD_READ_TIMEOUT_S = 900.0  # the module's classes run while the held bystander's stream is silent

KNOWN_REFERENCE_BUGS: dict[str, str] = {}
"""Real bugs this suite found in the bundled reference server and not fixed yet ({class: what}).
Against the reference target such a class xfails while the bug reproduces and fails once it no
longer does (like a stale baseline entry), so the entry is removed with the fix.  Found and since
fixed (94967b2): deep_nesting (a ~1000-deep create body answered 500, RecursionError from
json.loads) and unicode_edge (a lone surrogate in model/metadata answered 500, UnicodeEncodeError
while encoding the snapshot)."""


@dataclass
class Arena:
    """The shared target and its bystanders."""

    target: Target
    driver: ResponsesDriver
    recorder: Recorder
    secret: str
    done_id: str
    done_snapshot: dict
    done_frames: list[str]
    other_cursor: int
    held_tag: str | None  # None against a black-box target: no held bystander (see plain_bystander)
    held_id: str | None
    held_call: HttpCall | None
    held_thread: threading.Thread | None
    outside_before: set[str] = field(default_factory=set)
    plain: dict | None = None  # a black-box target's create body for a plain run

    def bystander_problems(self) -> list[str]:
        problems = server_problems(self.target, self.outside_before)
        if not self.target.is_alive():
            return problems
        get = self.driver.get(self.done_id)
        if get.status != 200 or get.body != self.done_snapshot:
            problems.append(f"finished bystander {self.done_id} changed: {get.status} {json.dumps(get.body)[:300]}")
        replay = self.driver.replay(self.done_id)
        if [f.data for f in replay.frames] != self.done_frames:
            problems.append(f"finished bystander's replay changed: {[f.type for f in replay.frames]}")
        if self.held_id is None or self.held_call is None or self.held_thread is None:
            return problems
        held = self.driver.get(self.held_id)
        if held.status != 200 or not isinstance(held.body, dict) or held.body.get("status") != "in_progress":
            problems.append(f"held bystander {self.held_id} is no longer in progress: {held.status} {held.body}")
        if not self.held_thread.is_alive() or self.held_call.ended != "in_flight":
            problems.append(f"the held bystander's live stream ended early: {self.held_call.ended} {self.held_call.error}")
        return problems


@pytest.fixture(scope="module")
def arena(conformance_settings):
    if "responses" not in conformance_settings.target.profiles:
        pytest.skip("target does not claim the responses profile")
    with adversarial_target(conformance_settings, {"resilient_background": True}, "adversarial", "resp_secret") as (target, _work, secret):
        recorder = Recorder(lambda: 0.0, lambda: 0)
        if conformance_settings.target.blackbox:
            yield _blackbox_arena(conformance_settings.target, target, recorder, secret)
            return
        driver = ResponsesDriver(target.base_url, recorder, timeout_s=WAIT_S)
        done = driver.create({"input": script_input({"deltas": 2, "tag": "adv_done"}), "background": True, "store": True, "stream": True})
        done_id = response_id_of(done)
        other = driver.create({"input": script_input({"deltas": 4, "tag": "adv_other"}), "background": True, "store": True, "stream": True})
        assert done_id and done.status == 200 and other.status == 200, f"cannot create bystanders: {done.status} {other.status}"
        other_cursor = max(f.seq or 0 for f in other.frames)
        control = StreamControl()
        body = {"input": script_input({"deltas": 3, "hold_at": 1, "tag": "adv_held"}), "background": True, "store": True, "stream": True}
        # the held stream sees no frame until teardown releases it: its read timeout must outlast the module
        quiet = ResponsesDriver(target.base_url, recorder, timeout_s=HELD_READ_TIMEOUT_S)
        thread = threading.Thread(target=lambda: quiet.create(body, control=control), daemon=True)
        thread.start()
        target.markers.wait_for("adv_held", Held(1), timeout_s=WAIT_S, alive=target.is_alive)
        held_call = next(c for c in recorder.calls if c.request_body is body)
        # the marker can come before the frames reach us: wait (bounded) for the created frame
        held_id = recorder.wait_until(lambda: response_id_of(held_call), WAIT_S)
        assert held_id, f"held bystander has no id: {held_call.status} {held_call.frames}"
        get = driver.get(done_id)
        arena = Arena(target, driver, recorder, secret, done_id, get.body, [f.data for f in done.frames], other_cursor,
                      "adv_held", held_id, held_call, thread)
        arena.outside_before = outside_files(target)
        yield arena
        # the held bystander finishes normally once released, its live stream numbered from 0 or 1
        # and strictly increasing (gaps are allowed, docs/protocol.md §6)
        target.markers.release("adv_held")
        thread.join(WAIT_S)
        seqs = [f.seq for f in held_call.frames]
        increasing = all(isinstance(s, int) for s in seqs) and seqs == sorted(set(seqs))
        assert held_call.ended == "complete" and increasing and seqs[:1] in ([0], [1]), (
            f"held bystander's live stream after release: {held_call.ended} seqs {seqs}")
        assert held_call.frames[-1].type == "response.completed", [f.type for f in held_call.frames]
        final = driver.get(held_id).body
        text = "".join(p.get("text", "") for item in final.get("output", []) for p in item.get("content", []))
        assert final.get("status") == "completed" and text == "a1:d0 a1:d1 a1:d2 ", final


@pytest.mark.parametrize("klass", CLASSES)
def test_adversarial_responses(klass: str, arena: Arena, conformance_settings, report_should) -> None:
    known = KNOWN_REFERENCE_BUGS.get(klass) if conformance_settings.target.name == "reference" else None
    judge = responses_ok_judge([json.loads(data) for data in arena.done_frames])
    findings: list[str] = []
    bystander = plain_bystander(arena) if arena.plain is not None else None
    sent = run_class(klass, strategy_for(klass, arena.done_id, arena.other_cursor),
                     lambda request: probe_problems(arena.target, request, arena.secret, judge),
                     explore=conformance_settings.explore, default_examples=DEFAULT_EXAMPLES, known_bug=known, findings=findings)
    problems = arena.bystander_problems()
    if bystander is not None and arena.target.is_alive():
        judged = bystander()
        problems += [p for p in judged if level_of(p) == "MUST"]
        findings += [f"{klass}: {p}" for p in judged if level_of(p) == "SHOULD"]
    assert not problems, f"after {sent} {klass} request(s):\n  - " + "\n  - ".join(problems)
    report_should(findings)


def _plain_finished(driver: ResponsesDriver, body: dict) -> HttpCall:
    """Create a plain-input response with stream=true and read it to its terminal event."""
    call = driver.create(dict(body))
    assert call.status == 200 and response_id_of(call) and call.frames and call.frames[-1].type in TERMINAL_EVENTS, (
        f"a plain-input bystander (the target's blackbox.input) did not stream to a terminal event within "
        f"{BLACKBOX_WAIT_S}s: {call.status} {call.ended} {call.error} {[f.type for f in call.frames][-5:]} {call.body_text[:200]}")
    return call


def _blackbox_arena(cfg, target: Target, recorder: Recorder, secret: str) -> Arena:
    """The arena of a black-box target: two finished plain-input bystanders, no held one."""
    plain, extra = cfg.blackbox_request("responses")
    body = {**extra, "input": plain, "background": True, "store": True, "stream": True}
    driver = ResponsesDriver(target.base_url, recorder, timeout_s=BLACKBOX_WAIT_S)
    done, other = _plain_finished(driver, body), _plain_finished(driver, body)
    done_id = response_id_of(done)
    arena = Arena(target, driver, recorder, secret, done_id, driver.get(done_id).body, [f.data for f in done.frames],
                  max(f.seq or 0 for f in other.frames), None, None, None, None, plain=body)
    arena.outside_before = outside_files(target)
    return arena


def plain_bystander(arena: Arena):
    """Create a plain-input bystander with its live stream attached, and wait (bounded) until it
    is acknowledged (its ``response.created`` frame).  Returns the judge to call after the
    attack: it awaits the stream's end and returns ``whole_stream_problems`` of it."""
    body = dict(arena.plain or {})
    thread = threading.Thread(target=lambda: arena.driver.create(body), daemon=True)
    thread.start()
    call = arena.recorder.wait_until(lambda: next((c for c in arena.recorder.calls if c.request_body is body), None), WAIT_S)
    assert call is not None, f"the plain-input bystander's create was not sent within {WAIT_S}s"
    rid = arena.recorder.wait_until(lambda: response_id_of(call) or (call.ended != "in_flight" and "none"), BLACKBOX_WAIT_S)
    assert rid and rid != "none", (f"the plain-input bystander was not acknowledged (no response.created) within "
                                   f"{BLACKBOX_WAIT_S}s: {call.status} {call.ended} {call.error} {call.body_text[:200]}")

    def status_now() -> Any:
        get = arena.driver.get(rid)
        return get.body.get("status") if isinstance(get.body, dict) else f"HTTP {get.status}"

    def judge() -> list[str]:
        return bystander_verdict(thread, call, rid, status_now, "responses", BLACKBOX_WAIT_S)

    return judge
