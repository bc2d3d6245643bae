"""Adversarial input against the target under test (invocations profile), one test id per class.

One target per module (per xdist worker) serves every class; it runs only when the target claims
the ``invocations`` profile.  Before the classes run it holds two bystanders: a finished
invocation (its snapshot and its event stream, ids and payloads, must never change; every cursor
request reads it and must get exactly its events after the cursor) and a held one with its live
stream attached (it must stay ``in_progress`` with the same ``last_event_id``, its stream open
and silent, and at the end finish normally, readable again with the same event ids).  After each
class: the server still answers readiness, nothing appeared outside the state dir, and no answer
ever carried the content of the planted ``secret`` files.

Against a black-box target (``control: none``, docs/protocol.md §8) every class that is about the
wire runs the same rules; ``script_fields`` (the test-control script's own fields) is not claimed,
with the reason (``SCRIPT_CLASSES``).  The bystanders run the target's plain ``blackbox`` input
instead of a script, and the held one (which needs the adapter's hold) is replaced by what the
wire can earn: before each class a plain-input bystander is created and its live stream opened;
after the class that stream must have ended whole (``blackbox.whole_stream_problems``:
``invocation.started`` first, ids 1, 2, 3, ... without a gap, exactly one terminal event and it
last) with the snapshot's status equal to the terminal event's.

Budget: 15 examples per class by default (derandomized), ``--conformance-explore N`` for N.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest

from conformance.blackbox import bystander_verdict
from conformance.drivers.base import Recorder
from conformance.drivers.invocations import InvocationsDriver, invocation_id_of, script_input
from conformance.explore.adversarial import adversarial_target, level_of, outside_files, probe_problems, run_class, server_problems
from conformance.explore.adversarial_invocations import (
    CLASSES,
    SCRIPT_CLASSES,
    TERMINAL_EVENTS,
    Transcript,
    ok_judge,
    pinned,
    strategy_for,
)
from conformance.history import HttpCall
from harness.markers import Held
from harness.process import Target

BLACKBOX = True
"""Runs against a ``control: none`` target too, with plain-input bystanders (see above)."""
BLACKBOX_WAIT_S = 120.0  # a plain run (the target's own prompt) may take longer than a scripted one

DEFAULT_EXAMPLES = 15
WAIT_S = 10.0
HELD_READ_TIMEOUT_S = 900.0  # the module's classes run while the held bystander's stream is silent
HELD = {"deltas": 3, "hold_at": 1, "tag": "adv_inv_held"}

KNOWN_REFERENCE_BUGS: dict[str, str] = {}
"""Real bugs this suite found in the bundled reference server and not fixed yet ({class: what});
handled as in test_adversarial_responses.py.  Found and fixed with this suite: bad_cursors (a
well-formed cursor of more than 4300 digits answered 400 "the number is too long" instead of
the documented empty stream)."""


def transcript_of(call: HttpCall) -> list[tuple[int, Any]]:
    return [(f.event_id or 0, f.json) for f in call.frames]


@dataclass
class Arena:
    """The shared target and its bystanders."""

    target: Target
    driver: InvocationsDriver
    secret: str
    done_id: str
    done_snapshot: dict
    transcript: Transcript
    foreign: list[int]
    held_id: str | None  # None against a black-box target: no held bystander (see plain_bystander)
    held_snapshot: dict | None
    held_call: HttpCall | None
    held_thread: threading.Thread | None
    held_ids: list[int] = field(default_factory=list)
    outside_before: set[str] = field(default_factory=set)
    plain: dict | None = None  # a black-box target's create body for a plain run

    def bystander_problems(self) -> list[str]:
        problems = server_problems(self.target, self.outside_before)
        if not self.target.is_alive():
            return problems
        snap = self.driver.snapshot(self.done_id)
        if snap.status != 200 or snap.body != self.done_snapshot:
            problems.append(f"finished bystander {self.done_id} changed: {snap.status} {json.dumps(snap.body)[:300]}")
        replay = self.driver.stream(self.done_id)
        if replay.ended != "complete" or transcript_of(replay) != list(self.transcript):
            problems.append(f"finished bystander's events changed: {replay.ended} ids {[f.event_id for f in replay.frames]}")
        if self.held_id is None or self.held_call is None or self.held_thread is None:
            return problems
        held = self.driver.snapshot(self.held_id)
        if held.status != 200 or held.body != self.held_snapshot:
            problems.append(f"held bystander {self.held_id} changed: {held.status} {json.dumps(held.body)[:300]}")
        if not self.held_thread.is_alive() or self.held_call.ended != "in_flight":
            problems.append(f"the held bystander's live stream ended early: {self.held_call.ended} {self.held_call.error}")
        elif [f.event_id for f in self.held_call.frames] != self.held_ids:
            problems.append(f"the held bystander's live stream got events while held: {[f.event_id for f in self.held_call.frames]}")
        return problems


def _finished(driver: InvocationsDriver, script: dict[str, Any]) -> tuple[str, HttpCall]:
    """Create an invocation and read its stream to the terminal event (bounded by the driver's timeout)."""
    create = driver.create({"input": script_input(script)})
    inv_id = invocation_id_of(create)
    assert create.status == 200 and inv_id, f"cannot create bystander {script}: {create.status} {create.body_text}"
    read = driver.stream(inv_id)
    assert read.ended == "complete" and read.frames and read.frames[-1].type in TERMINAL_EVENTS, (
        f"bystander {inv_id} did not stream to a terminal event: {read.ended} {[f.type for f in read.frames]}")
    return inv_id, read


@pytest.fixture(scope="module")
def arena(conformance_settings):
    if "invocations" not in conformance_settings.target.profiles:
        pytest.skip("target does not claim the invocations profile")
    with adversarial_target(conformance_settings, {}, "adversarial-inv", "inv_secret") as (target, _work, secret):
        recorder = Recorder(lambda: 0.0, lambda: 0)
        if conformance_settings.target.blackbox:
            yield _blackbox_arena(conformance_settings.target, target, recorder, secret)
            return
        driver = InvocationsDriver(target.base_url, recorder, timeout_s=WAIT_S)
        done_id, done = _finished(driver, {"deltas": 2, "tag": "adv_inv_done"})
        _other_id, other = _finished(driver, {"deltas": 6, "tag": "adv_inv_other"})
        other_ids = [f.event_id or 0 for f in other.frames]
        transcript = transcript_of(done)
        # a cursor of another invocation past this one's last id, and one inside it
        foreign = sorted({other_ids[-1], other_ids[len(other_ids) // 2]})
        create = driver.create({"input": script_input(HELD)})
        held_id = invocation_id_of(create)
        assert create.status == 200 and held_id, f"cannot create the held bystander: {create.status} {create.body_text}"
        target.markers.wait_for(HELD["tag"], Held(1), timeout_s=WAIT_S, alive=target.is_alive)
        held_snapshot = driver.snapshot(held_id).body
        assert isinstance(held_snapshot, dict) and held_snapshot.get("status") == "in_progress", f"held bystander: {held_snapshot}"
        # the held stream sees no frame until teardown releases it: its read timeout must outlast the module
        quiet = InvocationsDriver(target.base_url, recorder, timeout_s=HELD_READ_TIMEOUT_S)
        thread = threading.Thread(target=lambda: quiet.stream(held_id, name="held-live"), daemon=True)
        thread.start()
        held_call = recorder.wait_until(lambda: next((c for c in recorder.calls if c.name == "held-live"), None), WAIT_S)
        assert held_call is not None, f"the held bystander's live stream was not opened within {WAIT_S}s"
        seen = held_snapshot.get("last_event_id") if isinstance(held_snapshot.get("last_event_id"), int) else 1
        got = recorder.wait_until(lambda: len(held_call.frames) >= seen or held_call.ended != "in_flight", WAIT_S)
        assert got and held_call.ended == "in_flight", (
            f"awaited the held bystander's {seen} events on its live stream within {WAIT_S}s: "
            f"{held_call.ended} {held_call.error} ids {[f.event_id for f in held_call.frames]}")
        arena = Arena(target, driver, secret, done_id, driver.snapshot(done_id).body, transcript, foreign, held_id,
                      held_snapshot, held_call, thread, [f.event_id for f in held_call.frames])
        arena.outside_before = outside_files(target)
        yield arena
        # the held bystander finishes normally once released, its live stream gap-free, and it
        # reads back with the same event ids and payloads (in full and from a cursor)
        target.markers.release(HELD["tag"])
        thread.join(WAIT_S)
        live = transcript_of(held_call)
        ids = [i for i, _ in live]
        assert held_call.ended == "complete" and ids == list(range(1, len(ids) + 1)), (
            f"held bystander's live stream after release (awaited its end for {WAIT_S}s): {held_call.ended} ids {ids}")
        assert held_call.frames[-1].type == "invocation.completed", [f.type for f in held_call.frames]
        final = driver.snapshot(held_id).body
        assert final.get("status") == "completed" and final.get("output") == "a1:d0 a1:d1 a1:d2 ", final
        assert transcript_of(driver.stream(held_id)) == live, "the held bystander reads back with other events than it streamed"
        assert transcript_of(driver.stream(held_id, last_event_id=2)) == live[2:], "a resume of the held bystander from id 2"


@pytest.mark.parametrize("klass", CLASSES)
def test_adversarial_invocations(klass: str, arena: Arena, conformance_settings, report_should) -> None:
    if arena.plain is not None and klass in SCRIPT_CLASSES:
        pytest.skip(f"not claimed by black-box target {conformance_settings.target.name}: {SCRIPT_CLASSES[klass]}")
    known = KNOWN_REFERENCE_BUGS.get(klass) if conformance_settings.target.name == "reference" else None
    judge = ok_judge(arena.transcript)
    where = (klass, arena.done_id, arena.transcript[-1][0], arena.foreign)
    findings: list[str] = []
    try:
        bystander = plain_bystander(arena) if arena.plain is not None else None
        sent = run_class(klass, strategy_for(*where),
                         lambda request: probe_problems(arena.target, request, arena.secret, judge, arena.outside_before),
                         explore=conformance_settings.explore, default_examples=DEFAULT_EXAMPLES, known_bug=known, pinned=pinned(*where),
                         findings=findings)
        problems = arena.bystander_problems()
        if bystander is not None and arena.target.is_alive():
            judged = bystander()
            problems += [p for p in judged if level_of(p) == "MUST"]
            findings += [f"{klass}: {p}" for p in judged if level_of(p) == "SHOULD"]
        assert not problems, f"after {sent} {klass} request(s):\n  - " + "\n  - ".join(problems)
    except BaseException:
        # what this class left outside the state dir is reported here: later classes judge only their own
        arena.outside_before = outside_files(arena.target)
        raise
    report_should(findings)


def _blackbox_arena(cfg, target: Target, recorder: Recorder, secret: str) -> Arena:
    """The arena of a black-box target: two finished plain-input bystanders, no held one."""
    plain, extra = cfg.blackbox_request("invocations")
    body = {**extra, "input": plain}
    driver = InvocationsDriver(target.base_url, recorder, timeout_s=BLACKBOX_WAIT_S)
    done_id, done = _finished_body(driver, body)
    _other_id, other = _finished_body(driver, body)
    other_ids = [f.event_id or 0 for f in other.frames]
    foreign = sorted({other_ids[-1], other_ids[len(other_ids) // 2]})
    arena = Arena(target, driver, secret, done_id, driver.snapshot(done_id).body, transcript_of(done), foreign,
                  None, None, None, None, plain=body)
    arena.outside_before = outside_files(target)
    return arena


def _finished_body(driver: InvocationsDriver, body: dict[str, Any]) -> tuple[str, HttpCall]:
    """Create an invocation with ``body`` (a plain input) and read its stream to the terminal event."""
    create = driver.create(dict(body))
    inv_id = invocation_id_of(create)
    assert create.status == 200 and inv_id, f"cannot create a plain-input bystander: {create.status} {create.body_text[:300]}"
    read = driver.stream(inv_id)
    assert read.ended == "complete" and read.frames and read.frames[-1].type in TERMINAL_EVENTS, (
        f"plain-input bystander {inv_id} did not stream to a terminal event within {BLACKBOX_WAIT_S}s: "
        f"{read.ended} {[f.type for f in read.frames][-5:]}")
    return inv_id, read


def plain_bystander(arena: Arena):
    """Create a plain-input bystander, open its live stream and wait (bounded) for its first
    event.  Returns the judge to call after the attack: it awaits the stream's end and returns
    ``whole_stream_problems`` of it."""
    create = arena.driver.create(dict(arena.plain or {}))
    inv_id = invocation_id_of(create)
    assert create.status == 200 and inv_id, f"cannot create the plain-input bystander: {create.status} {create.body_text[:300]}"
    recorder = arena.driver.transport.recorder
    label = f"bystander-{inv_id}"
    thread = threading.Thread(target=lambda: arena.driver.stream(inv_id, name=label), daemon=True)
    thread.start()
    call = recorder.wait_until(lambda: next((c for c in recorder.calls if c.name == label), None), WAIT_S)
    assert call is not None, f"the plain-input bystander's live stream was not opened within {WAIT_S}s"
    got = recorder.wait_until(lambda: call.frames or call.ended != "in_flight", BLACKBOX_WAIT_S)
    assert got and call.frames, (f"awaited the plain-input bystander's first event within {BLACKBOX_WAIT_S}s: "
                                 f"{call.status} {call.ended} {call.error}")

    def status_now() -> Any:
        snap = arena.driver.snapshot(inv_id)
        return snap.body.get("status") if isinstance(snap.body, dict) else f"HTTP {snap.status}"

    def judge() -> list[str]:
        return bystander_verdict(thread, call, inv_id, status_now, "invocations", BLACKBOX_WAIT_S)

    return judge
