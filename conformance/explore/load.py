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
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from conformance.drivers.base import Recorder, StreamControl
from conformance.drivers.responses import ResponsesDriver, response_id_of, script_input
from conformance.history import TERMINAL_STATUSES, FaultRecord, History, HttpCall
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
    history: History | None = None  # the whole run as one History (hundreds of frames), for the HTML report


def run_load(target: Target, n: int, *, resilient: bool, prefix: str = "l") -> LoadResult:
    """Run the schedule above against a started ``target`` (its server mode given by ``resilient``)."""
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
            obs.responses[rid] = Tracked(rid, script["tag"], script, call.frames[0].t, True)
            spawn_reader(lambda control, rid=rid: driver.replay(rid, None, label=f"attached-{rid}", control=control))
        elif call.status != 503:
            result.problems.append(f"create refused: {call.status} {call.error or call.body_text}")
    result.acknowledged = len(obs.responses)
    for tracked in obs.responses.values():
        try:
            target.markers.wait_for(tracked.tag or "", Held(1), timeout_s=WAIT_S, alive=target.is_alive)
        except Exception as exc:  # noqa: BLE001 - a MarkerTimeout (or a dead target) is a finding, not a crash
            result.problems.append(f"{tracked.response_id}: {exc}")
            break
    obs.stops.append(recorder.clock())

    def release_all() -> None:
        for tracked in obs.responses.values():
            target.markers.release(tracked.tag or "")

    fault = Nemesis(target, recorder.clock).crash("sigkill", "held 1 on every acknowledged response", None,
                                                  release=release_all)

    promised = "completed" if resilient else "failed"
    for rid in list(obs.responses):
        deadline = time.monotonic() + WAIT_S
        while True:
            call = driver.get(rid, name="poll")
            status = call.body.get("status") if isinstance(call.body, dict) else None
            if status in TERMINAL_STATUSES or call.status != 200 or time.monotonic() > deadline:
                break
            time.sleep(POLL_S)  # polling interval of a bounded status wait
        result.statuses[rid] = str(status if call.status == 200 else f"HTTP {call.status}")
        if status != promised:
            result.problems.append(f"{rid}: acknowledged before the SIGKILL, ended {result.statuses[rid]!r}, "
                                   f"its row promises {promised!r}")
        driver.replay(rid, None, label=f"final-{rid}")
    for control in controls:
        control.drop()
    for thread in threads:
        thread.join(WAIT_S)
    for tracked in obs.responses.values():
        obs.markers[tracked.tag or ""] = target.markers.lines(tracked.tag or "")
    result.problems.extend(all_problems(obs))
    result.elapsed_s = time.monotonic() - t0
    result.history = _history(target, t0, recorder, obs, fault)
    return result


def _history(target: Target, t0: float, recorder: Recorder, obs: Observations, fault: FaultRecord) -> History:
    """The run as one History: every call and frame, the markers, both incarnations and the
    SIGKILL, times since the load run started."""
    return suite_history("load", t0, list(recorder.calls), [target], markers=obs.markers, faults=[fault])
