"""Several workers on one store (responses profile): the owner of a resilient response dies, is
frozen, is stopped gracefully, or simply keeps running, and the other worker must do exactly the
right thing about it.

Schedule (every wait bounded, triggered by a frame, a marker or a status):

1. a ``background + stream + store`` create on the OWNER, script ``deltas: 6, hold_at: 3,
   checkpoint_every: 2``; its create stream stays attached as a live reader; once acknowledged,
   a second reader replays it from the start on the OTHER worker (a tail across workers);
2. once the handler wrote ``held 3``, the fault:

   ``sigkill``  SIGKILL the owner, release: the other worker claims the task once the owner's
                lease expired, re-runs it from its checkpoint and completes it;
   ``sigterm``  SIGTERM the owner (its grace runs out while the handler is held, a resilient
                response stays unfinished), release: as for ``sigkill``;
   ``pause``    SIGSTOP the owner, release: the other worker claims and completes it; then
                SIGCONT the owner, which must have been fenced: it writes nothing more;
   ``none``     keep the owner alive, held, for ``OBSERVE_TTLS`` lease periods: the other worker
                must NOT take the task from a live owner that renews its lease; then release;
   ``cancel``   cancel through the OTHER worker: the owner stops, the response ends cancelled;

3. poll the other worker to a terminal status, replay there from the start and from the cursor
   the owner's live stream had reached before the fault;
4. judge: the exploration invariants (no rewrite, no gap, one terminal and last, statuses
   final, output as the markers predict) plus the promised status, the handler attempts the
   markers record (two for a lost owner, the second from a checkpoint; one otherwise), proof of
   the fault (exit mode, paused owner alive again), and that the tail on the other worker
   reached the terminal event.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from conformance.drivers.base import Recorder, StreamControl
from conformance.drivers.responses import ResponsesDriver, is_terminal_frame, response_id_of, script_input
from conformance.history import TERMINAL_STATUSES, FaultRecord, History
from conformance.nemesis import Nemesis
from harness.markers import Held, Start, parse_markers
from harness.process import Target

from .invariants import Observations, Tracked, all_problems
from .record import suite_history

FAULTS = ("sigkill", "sigterm", "pause", "none", "cancel")
WAIT_S = 20.0
SETTLE_S = 10.0  # beyond the lease periods: how long a reclaimed response may take to end
POLL_S = 0.05
OBSERVE_TTLS = 3  # fault `none`: how many lease periods the other worker must leave a live owner alone
SCRIPT = {"deltas": 6, "hold_at": 3, "checkpoint_every": 2}


@dataclass
class WorkersResult:
    """What one schedule saw and what is wrong with it."""

    fault: str
    response_id: str | None = None
    status: str | None = None
    attempts: list[tuple[int, int]] = field(default_factory=list)  # (attempt, from delta) per start marker
    problems: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    history: History | None = None  # the schedule as one History (both workers' incarnations), for the HTML report


def promised_status(fault: str) -> str:
    return "cancelled" if fault == "cancel" else "completed"


def run_workers(owner: Target, other: Target, fault: str, *, lease_ttl_s: float, tag: str = "mw") -> WorkersResult:
    """Run the schedule above; ``owner`` and ``other`` are started workers of one shared store."""
    if fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r} (known: {', '.join(FAULTS)})")
    t0 = time.monotonic()
    recorder = Recorder(lambda: time.monotonic() - t0, lambda: owner.current.index if owner.current else 0)
    on_owner = ResponsesDriver(owner.base_url, recorder, timeout_s=WAIT_S)
    on_other = ResponsesDriver(other.base_url, recorder, timeout_s=WAIT_S + OBSERVE_TTLS * lease_ttl_s)
    obs = Observations(calls=recorder.calls)
    result = WorkersResult(fault)
    script = dict(SCRIPT, tag=tag)
    body = {"input": script_input(script), "background": True, "store": True, "stream": True}
    readers: list[tuple[StreamControl, threading.Thread]] = []
    faults: list[FaultRecord] = []

    def reader(fn: Any) -> None:
        control = StreamControl()
        thread = threading.Thread(target=lambda: fn(control), daemon=True)
        readers.append((control, thread))
        thread.start()

    try:
        reader(lambda control: on_owner.create(body, control=control))
        create = recorder.wait_until(lambda: next((c for c in list(recorder.calls) if c.name == "create"
                                                   and (c.frames or c.ended != "in_flight")), None), WAIT_S)
        rid = response_id_of(create) if create is not None else None
        if create is None or rid is None:
            result.problems.append(f"create on the owner not acknowledged within {WAIT_S}s: "
                                   f"{create.status if create else 'no answer'} {create.error if create else ''}")
            return result
        result.response_id = rid
        obs.responses[rid] = Tracked(rid, tag, script, create.frames[0].t, True)
        reader(lambda control: on_other.replay(rid, None, label="tail-on-other-worker", control=control))
        owner.markers.wait_for(tag, Held(3), timeout_s=WAIT_S, alive=owner.is_alive)
        mid = max((s for f in list(create.frames) if (s := obs.wire.cursor(f)) is not None), default=None)
        nemesis = Nemesis(owner, recorder.clock, faults)
        _fault(nemesis, nemesis.record(fault, "held", "held 3"), tag, lease_ttl_s, obs, on_other, recorder, result, rid)
        final = _poll_terminal(on_other, rid, SETTLE_S + 4 * lease_ttl_s)
        result.status = final
        if fault == "pause":
            nemesis.thaw()
            # The owner's event loop runs again once it answers: its overdue timers (the hold's
            # release poll, the lease renewal) ran by the second answer, fenced or not.
            for _ in range(2):
                on_owner.get(rid, name="poll")
        if final in TERMINAL_STATUSES:  # (else the replays would only tail an unfinished response)
            on_other.replay(rid, None, label="final-from-start")
            if mid is not None:
                on_other.replay(rid, mid, label=f"final-after-{mid}")
            # Every attached reader ends by itself once the terminal event reached it (the tail
            # on the other worker may poll its store): wait for that, bounded, before judging.
            streams = [c for c in list(recorder.calls) if c.name in ("create", "replay")]
            recorder.wait_until(lambda: all(c.ended != "in_flight" for c in streams), SETTLE_S)
    finally:
        for control, _ in readers:
            control.drop()
        for _, thread in readers:
            thread.join(WAIT_S)
        owner.markers.release(tag)
    obs.markers[tag] = owner.markers.lines(tag)
    result.attempts = [(m.attempt, m.from_) for m in parse_markers(obs.markers[tag])
                       if isinstance(m, Start) and m.attempt is not None and m.from_ is not None]
    result.problems.extend(_judge(owner, fault, obs, result))
    result.problems.extend(all_problems(obs))
    result.elapsed_s = time.monotonic() - t0
    result.history = suite_history(
        f"multi-worker {fault}", t0, list(recorder.calls), [owner, other], markers=obs.markers, faults=faults,
        notes=[f"incarnations 0..{len(owner.incarnations) - 1}: the owner (first worker); the next ones: the other worker"],
    )
    return result


def _fault(nemesis: Nemesis, record: FaultRecord, tag: str, ttl: float, obs: Observations,
           on_other: ResponsesDriver, recorder: Recorder, result: WorkersResult, rid: str) -> None:
    """Deliver the schedule's fault to the owner through the nemesis (``cancel`` and ``none``
    are the other worker's call and a timed observation), then release the owner's hold."""
    fault, owner = record.kind, nemesis.target
    if fault in ("sigkill", "sigterm", "pause"):
        obs.stops.append(recorder.clock())
        if fault == "pause":
            nemesis.freeze(record)
        else:
            nemesis.stop(record)  # no restart: the other worker takes the response over
        owner.markers.release(tag)
    elif fault == "none":
        # A timed observation, not a synchronisation: nothing may happen for OBSERVE_TTLS periods.
        until = time.monotonic() + OBSERVE_TTLS * ttl
        while time.monotonic() < until:
            starts = [str(m) for m in parse_markers(owner.markers.lines(tag)) if isinstance(m, Start)]
            if len(starts) > 1:
                result.problems.append(f"the other worker re-ran the response while its owner was alive and "
                                       f"renewing its lease: markers {starts}")
                break
            on_other.get(rid, name="poll")
            time.sleep(POLL_S)  # polling interval of a bounded observation window
        owner.markers.release(tag)
    else:  # cancel through the other worker
        call = on_other.cancel(rid)
        if call.status != 200 or not isinstance(call.body, dict) or call.body.get("status") != "cancelled":
            result.problems.append(f"cancel through the other worker: {call.status} {call.body or call.error}")
        owner.markers.release(tag)


def _poll_terminal(driver: ResponsesDriver, rid: str, wait_s: float) -> str | None:
    deadline = time.monotonic() + wait_s
    status = None
    while time.monotonic() < deadline:
        call = driver.get(rid, name="poll")
        status = call.body.get("status") if call.status == 200 and isinstance(call.body, dict) else f"HTTP {call.status}"
        if status in TERMINAL_STATUSES or call.status != 200:
            return status
        time.sleep(POLL_S)  # polling interval of a bounded status wait
    return f"{status} (still, after {wait_s:.3g}s)"


def _judge(owner: Target, fault: str, obs: Observations, result: WorkersResult) -> list[str]:
    problems: list[str] = []
    promised = promised_status(fault)
    if result.status != promised:
        problems.append(f"the other worker shows {result.status!r}; after fault {fault!r} the response must end {promised!r}")
    lost_owner = fault in ("sigkill", "sigterm", "pause")
    attempts = result.attempts
    if lost_owner:
        if [a for a, _ in attempts] != [1, 2]:
            problems.append(f"handler attempts {attempts}: a lost owner's response runs once more, on the other worker")
        elif attempts[1][1] == 0:
            problems.append("the second attempt started from delta 0: it did not resume from the owner's checkpoint")
    elif [a for a, _ in attempts] != [1]:
        problems.append(f"handler attempts {attempts}: with a live owner nobody else may run the response")
    inc = owner.incarnations[0] if owner.incarnations else None
    want_mode = {"sigkill": "killed", "sigterm": "graceful"}.get(fault)
    if want_mode and (inc is None or inc.exit_mode != want_mode):
        problems.append(f"crash not proven: owner exit mode {inc.exit_mode if inc else None!r}, expected {want_mode!r}")
    if fault == "pause" and not owner.is_alive():
        problems.append("the paused owner is not alive after SIGCONT (the fault was a pause, not a crash)")
    tails = [c for c in list(obs.calls) if c.params.get("cursor_label") == "tail-on-other-worker"]
    if not tails or not any(is_terminal_frame(f) for f in tails[0].frames):
        tail = tails[0] if tails else None
        got = [f"{f.type}@t={f.t:.3f}" for f in tail.frames][-3:] if tail else []
        problems.append(f"the replay attached on the other worker did not reach the terminal event (last: {got}; "
                        f"ended {tail.ended if tail else None} at t={tail.ended_at if tail else 0:.3f}, error {tail.error if tail else None})")
    return problems

