"""Load during faults: N concurrent streaming responses with readers attached while the target is
SIGKILLed and restarted; afterwards every acknowledged response is accounted for.

Schedule (every wait bounded, triggered by markers, frames or statuses):

1. N ``background + stream + store`` creates at once, each script ``deltas: 3, hold_at: 1``
   with its own tag; the create streams stay attached as live readers;
2. once a response is acknowledged (its ``response.created`` frame), a second reader replays it
   from the start; once every acknowledged handler wrote ``held 1``, SIGKILL;
3. release every hold, restart, then for each acknowledged response: poll to a terminal status,
   which must be the one its row promises (``completed`` when resilient, ``failed`` when not),
   and replay it from the start to the end;
4. the exploration invariants (``invariants.all_problems``) judge the whole recording: no
   rewrite, no gap against what the pre-crash readers saw, one terminal, statuses final,
   output as the markers predict.

Black-box form (``plain=``: a target with no test-control adapter, docs/protocol.md §8): every
create sends the target's plain input, no script and no tag; the SIGKILL comes once every
acknowledged response's live stream showed its first delta (instead of ``held 1``); nothing is
released.  A response whose live stream carried its terminal event before the kill finished
before the fault: it must keep that status; every other one must end with the status the row
promises, and if no response was still running at the kill the fault could not be placed: the run
is ``not_testable`` (never a pass).  The output is judged without markers: a ``completed``
snapshot's text equals what every complete read from the start announced (the deltas of the
attempt that finished).  In both forms the SIGKILL is proven: the killed incarnation's exit mode
is ``killed`` and a new incarnation serves the reads after it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from conformance.drivers.base import Recorder, StreamControl
from conformance.drivers.responses import ResponsesDriver, response_id_of, script_input
from conformance.history import TERMINAL_EVENTS, TERMINAL_STATUSES, FaultRecord, History, HttpCall
from conformance.nemesis import Nemesis
from harness.markers import Held
from harness.process import Target

from .invariants import Observations, Tracked, all_problems
from .record import suite_history

WAIT_S = 20.0
POLL_S = 0.01


@dataclass
class LoadResult:
    """What a load run saw and what is wrong with it."""

    requested: int
    acknowledged: int
    statuses: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    mid_run: int = 0  # responses still running at the SIGKILL (no terminal event on their live stream)
    not_testable: str | None = None  # the fault could not be placed mid-run (black-box form): why, and what to change
    history: History | None = None  # the whole run as one History (hundreds of frames), for the HTML report


def run_load(target: Target, n: int, *, resilient: bool, prefix: str = "l",
             plain: tuple[Any, dict[str, Any]] | None = None) -> LoadResult:
    """Run the schedule above against a started ``target`` (its server mode given by ``resilient``).
    ``plain``: the black-box form, with (input, other create fields) of a plain run."""
    t0 = time.monotonic()
    recorder = Recorder(lambda: time.monotonic() - t0, lambda: target.current.index if target.current else 0)
    driver = ResponsesDriver(target.base_url, recorder, timeout_s=WAIT_S)
    obs = Observations(calls=recorder.calls)
    result = LoadResult(requested=n, acknowledged=0)
    bodies: list[dict[str, Any]] = []
    controls: list[StreamControl] = []
    threads: list[threading.Thread] = []

    def spawn_reader(fn: Any) -> None:
        control = StreamControl()
        thread = threading.Thread(target=lambda: fn(control), daemon=True)
        controls.append(control)
        threads.append(thread)
        thread.start()

    for i in range(n):
        script = {"deltas": 3, "hold_at": 1, "tag": f"{prefix}{i}"}
        body = {"input": script_input(script), "background": True, "store": True, "stream": True}
        if plain is not None:
            body = {**plain[1], "input": plain[0], "background": True, "store": True, "stream": True}
        bodies.append(body)
        spawn_reader(lambda control, body=body: driver.create(body, control=control))

    def creates() -> list[HttpCall]:
        wanted = {id(b) for b in bodies}
        return [c for c in list(recorder.calls) if c.name == "create" and id(c.request_body) in wanted]

    settled = recorder.wait_until(
        lambda: len(creates()) == n and all(c.frames or c.ended != "in_flight" for c in creates()), WAIT_S
    )
    if not settled:
        result.problems.append(f"timed out after {WAIT_S}s waiting for {n} creates to be acknowledged or refused; "
                               f"{sum(1 for c in creates() if c.frames)} acknowledged")
    for call in creates():
        rid = response_id_of(call)
        if call.status == 200 and rid and call.frames:
            script = {"deltas": 3, "hold_at": 1, "tag": f"{prefix}{bodies.index(call.request_body)}"}
            if plain is not None:
                script = {}  # no script, no tag, no markers: judged from the wire alone
            obs.responses[rid] = Tracked(rid, script.get("tag"), script, call.frames[0].t, True)
            spawn_reader(lambda control, rid=rid: driver.replay(rid, None, label=f"attached-{rid}", control=control))
        elif call.status != 503:
            result.problems.append(f"create refused: {call.status} {call.error or call.body_text}")
    result.acknowledged = len(obs.responses)
    if plain is not None:
        result.problems.extend(_await_first_deltas(recorder, creates()))
    for tracked in obs.responses.values() if plain is None else ():
        try:
            target.markers.wait_for(tracked.tag or "", Held(1), timeout_s=WAIT_S, alive=target.is_alive)
        except Exception as exc:  # noqa: BLE001 - a MarkerTimeout (or a dead target) is a finding, not a crash
            result.problems.append(f"{tracked.response_id}: {exc}")
            break
    obs.stops.append(recorder.clock())

    def release_all() -> None:  # adapter-driven runs hold every response at its first marker
        for tracked in obs.responses.values():
            target.markers.release(tracked.tag or "")

    fault = Nemesis(target, recorder.clock).crash("sigkill", "held 1 on every acknowledged response"
                                                  if plain is None else "first delta on every live stream", None,
                                                  release=release_all if plain is None else None)

    promised = "completed" if resilient else "failed"
    before = _finished_before_the_kill(recorder, creates()) if plain is not None else {}
    result.mid_run = len(set(obs.responses) - set(before))
    if plain is not None and obs.responses and not result.mid_run:
        result.not_testable = (f"every one of the {len(obs.responses)} plain runs ended before the SIGKILL, so the fault "
                               "could not be placed mid-run; give the target a longer-running `blackbox.input` (more "
                               "output, or a slower server)")
    for rid in list(obs.responses):
        promised = before.get(rid) or ("completed" if resilient else "failed")
        deadline = time.monotonic() + WAIT_S
        while True:
            call = driver.get(rid, name="poll")
            status = call.body.get("status") if isinstance(call.body, dict) else None
            if status in TERMINAL_STATUSES or call.status != 200 or time.monotonic() > deadline:
                break
            time.sleep(POLL_S)  # polling interval of a bounded status wait
        result.statuses[rid] = str(status if call.status == 200 else f"HTTP {call.status}")
        if status != promised:
            why = f"its live stream ended {promised!r} before the SIGKILL" if rid in before else f"its row promises {promised!r}"
            result.problems.append(f"{rid}: acknowledged before the SIGKILL, ended {result.statuses[rid]!r}, {why}")
        driver.replay(rid, None, label=f"final-{rid}")
    for control in controls:
        control.drop()
    for thread in threads:
        thread.join(WAIT_S)
    for tracked in obs.responses.values() if plain is None else ():
        obs.markers[tracked.tag or ""] = target.markers.lines(tracked.tag or "")
    result.problems.extend(_kill_problems(target))
    result.problems.extend(all_problems(obs))
    result.elapsed_s = time.monotonic() - t0
    result.history = _history(target, t0, recorder, obs, fault)
    return result


def _history(target: Target, t0: float, recorder: Recorder, obs: Observations, fault: FaultRecord) -> History:
    """The run as one History: every call and frame, the markers, both incarnations and the
    SIGKILL, times since the load run started."""
    return suite_history("load", t0, list(recorder.calls), [target], markers=obs.markers, faults=[fault])


def _await_first_deltas(recorder: Recorder, calls: list[HttpCall]) -> list[str]:
    """Black-box placement: wait (bounded) until every acknowledged create's live stream showed
    its first delta or ended; what was awaited and the last thing seen, on a timeout."""
    acked = [c for c in calls if c.status == 200 and c.frames]

    def shown(call: HttpCall) -> bool:
        return call.ended != "in_flight" or any(f.type == "response.output_text.delta" for f in call.frames)

    if recorder.wait_until(lambda: all(shown(c) for c in acked), WAIT_S):
        return []
    late = [c for c in acked if not shown(c)]
    return [f"timed out after {WAIT_S}s waiting for the first delta on {len(late)} live stream(s); one of them "
            f"last showed {[f.type for f in late[0].frames][-3:]}"]


def _finished_before_the_kill(recorder: Recorder, calls: list[HttpCall]) -> dict[str, str]:
    """{response id: terminal status} of the creates whose live stream carried a terminal event
    from the killed incarnation (awaited, bounded, until every live stream has ended)."""
    recorder.wait_until(lambda: all(c.ended != "in_flight" for c in calls), WAIT_S)
    done: dict[str, str] = {}
    for call in calls:
        rid = response_id_of(call)
        for frame in call.frames:
            response = frame.json.get("response") if isinstance(frame.json, dict) else None
            if rid and frame.type in TERMINAL_EVENTS and isinstance(response, dict):
                done[rid] = str(response.get("status"))
    return done


def _kill_problems(target: Target) -> list[str]:
    """The SIGKILL is proven: the incarnation before the last ended ``killed`` and the last one was started after it."""
    incs = target.incarnations
    if len(incs) < 2:
        return [f"the SIGKILL is not proven: no new incarnation was started after it ({len(incs)} incarnation(s))"]
    if incs[-2].exit_mode != "killed":
        return [f"the SIGKILL is not proven: the killed incarnation's exit mode is {incs[-2].exit_mode!r}, not 'killed'"]
    return []
