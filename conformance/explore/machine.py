"""Stateful crash schedules for the responses profile: a hypothesis ``RuleBasedStateMachine``
whose rules are operations on a live target, with every invariant checked after every step.

Rules: create (random script within the test-control contract: deltas, hold, checkpoints,
delay; live stream or not), read k events from any cursor seen so far then disconnect, attach
a reader that stays open, disconnect a reader, cancel, release a hold, SIGKILL + restart,
SIGTERM + restart, pause + resume (SIGSTOP/SIGCONT), wait for a terminal status.  Every wait
is bounded and triggered by a frame, a status or a call ending.  Teardown releases every hold,
waits for every acknowledged response to end, replays each from the start and checks again.

``explore(spawn, examples=..., steps=..., seed=...)`` runs the machine; a failure raises
``ExplorationFailed`` whose text holds the steps, the problems, the seed and a replay command.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule, run_state_machine_as_test

from conformance.drivers.base import Recorder, StreamControl
from conformance.drivers import invocations as inv
from conformance.drivers.responses import ResponsesDriver, response_id_of, script_input
from conformance.history import FaultRecord, HttpCall
from conformance.nemesis import Nemesis
from harness.errors import MarkerTimeout
from harness.markers import Held
from harness.process import Target

from .invariants import INVOCATIONS, TERMINAL_ANY, Observations, Tracked, all_problems, answer_of, call_response_id, read_cursor, settled
from .record import suite_history

MAX_RESPONSES = 4
MAX_READERS = 6
WAIT_S = 10.0  # bound on any single wait for a frame, a status or a call to end
POLL_S = 0.01

Spawn = Callable[[dict[str, Any]], Target]


class ExplorationFailed(AssertionError):
    """An invariant broke: the text holds the problems, the steps that led there and how to replay."""


@dataclass
class Reader:
    """A stream read running in its own thread (a live create stream or a replay)."""

    label: str
    response_id: str | None
    control: StreamControl
    thread: threading.Thread
    holder: dict[str, HttpCall] = field(default_factory=dict)
    attached: bool = False  # left open by a rule, until ``disconnect``

    @property
    def call(self) -> HttpCall | None:
        return self.holder.get("call")


def traced(rule_fn: Callable[..., None]) -> Callable[..., None]:
    """Record a rule call with the arguments hypothesis drew, ``create(deltas=2, ...)``, in the
    example's ``trace``: what a seed decides (the answers and the times are the target's)."""

    @functools.wraps(rule_fn)
    def run(self: ResponsesMachine, **drawn: Any) -> None:
        self.trace.append(f"{rule_fn.__name__}({', '.join(f'{k}={v!r}' for k, v in sorted(drawn.items()))})")
        rule_fn(self, **drawn)

    return run


class ResponsesMachine(RuleBasedStateMachine):
    """Operations on one live responses-profile target per example."""

    spawn: Spawn | None = None  # set by explore()
    failures: list[str] = []  # every failure text of this exploration (explore() gives a fresh list)
    records: list[dict[str, Any]] = []  # per failure: its steps, problems and History (as dicts), same order
    profile = "responses"
    traces: list[list[str]] = []  # every example's rule calls, in order (explore() gives a fresh list)

    def __init__(self) -> None:
        super().__init__()
        self.t0 = time.monotonic()
        self.target: Target | None = None
        self.recorder = Recorder(self.now, self._incarnation)
        self.obs = Observations(calls=self.recorder.calls)
        self.driver: ResponsesDriver | None = None
        self.readers: list[Reader] = []
        self.order: list[str] = []  # acknowledged response ids, in creation order
        self.released: set[str] = set()
        self.steps: list[str] = []
        self.trace: list[str] = []
        type(self).traces.append(self.trace)
        self.created = 0
        self.faults: list[FaultRecord] = []  # every fault a rule delivered, through the nemesis

    @property
    def nemesis(self) -> Nemesis:
        """The nemesis of the current target (every SIGKILL, SIGTERM, SIGSTOP goes through it)."""
        assert self.target is not None
        return Nemesis(self.target, self.now, self.faults)

    # -- plumbing -----------------------------------------------------------------------
    def now(self) -> float:
        return time.monotonic() - self.t0

    def _incarnation(self) -> int:
        inc = self.target.current if self.target is not None else None
        return inc.index if inc is not None else 0

    def _step(self, text: str) -> None:
        self.steps.append(f"{self.now():7.3f}  {text}")

    def _pick(self, items: list[Any], pick: int) -> Any:
        return items[pick % len(items)]

    def _seen_cursors(self, rid: str) -> list[int]:
        wire = self.obs.wire
        seqs: set[int] = set()
        for call in list(self.obs.calls):
            if call.is_sse and call_response_id(call, wire) == rid:
                seqs.update(c for c in (wire.cursor(f) for f in list(call.frames)) if c is not None)
        return sorted(seqs)

    def _cursors(self, call: HttpCall) -> list[int | None]:
        return [self.obs.wire.cursor(f) for f in list(call.frames)]

    # -- profile hooks (the responses wire here; InvocationsMachine overrides them) --------
    mode = "resilient_background"

    def _connect(self) -> None:
        assert self.target is not None
        self.driver = ResponsesDriver(self.target.base_url, self.recorder, timeout_s=WAIT_S)

    def _open_read(self, rid: str, cursor: int | None, label: str, control: StreamControl) -> HttpCall:
        return self.driver.replay(rid, cursor, label=label, control=control)

    def _snapshot(self, rid: str) -> HttpCall:
        return self.driver.get(rid, name="poll")

    def _cancel(self, rid: str) -> HttpCall:
        return self.driver.cancel(rid)

    def _start_reader(self, label: str, rid: str | None, fn: Callable[[StreamControl], HttpCall]) -> Reader:
        control = StreamControl()
        holder: dict[str, HttpCall] = {}

        def run() -> None:
            fn(control)

        thread = threading.Thread(target=run, name=f"explore-{label}", daemon=True)
        reader = Reader(label, rid, control, thread, holder)
        thread.start()
        return reader

    def _find_call(self, predicate: Callable[[HttpCall], bool], what: str) -> HttpCall:
        found = self.recorder.wait_until(lambda: next((c for c in list(self.obs.calls) if predicate(c)), None), WAIT_S)
        if found is None:
            self._fail([f"timed out after {WAIT_S}s waiting for {what} to be sent"])
        return found

    def _wait(self, predicate: Callable[[], Any], timeout_s: float, what: str, last: Callable[[], str]) -> Any:
        value = self.recorder.wait_until(predicate, timeout_s)
        if not value:
            tail = self.target.log_tail(10) if self.target is not None else ""
            self._fail([f"timed out after {timeout_s}s waiting for {what}; last seen: {last()}\nlog tail:\n{tail}"])
        return value

    def _refresh_markers(self) -> None:
        if self.target is None:
            return
        for tracked in self.obs.responses.values():
            if tracked.tag:
                self.obs.markers[tracked.tag] = self.target.markers.lines(tracked.tag)

    def _fail(self, problems: list[str]) -> None:
        text = "\n".join(f"  - {p}" for p in problems[:20])
        steps = "\n".join(f"  {s}" for s in self.steps[-40:])
        message = f"invariant broken:\n{text}\nsteps (t since example start):\n{steps}"
        type(self).failures.append(message)
        type(self).records.append({"steps": list(self.steps), "problems": list(problems), "history": self._history(problems)})
        raise ExplorationFailed(message)

    def _history(self, problems: list[str]) -> dict[str, Any]:
        """This example as a History (calls, frames, markers, incarnations; times since the
        example started), so the HTML report can draw its timeline."""
        history = suite_history(f"explore {type(self).__name__}", self.t0, list(self.recorder.calls),
                                [self.target] if self.target is not None else [], profile=self.profile,
                                markers=dict(self.obs.markers), faults=self.faults, notes=[f"invariant broken: {p}" for p in problems])
        return history.to_dict()

    def _drop(self, reader: Reader) -> None:
        """Disconnect a reader and wait (bounded) for its thread.  The transport records a stream
        that the server closes after our shutdown as ``complete``; it is ours, mark it dropped
        (only a call still open when we dropped it: one that had ended keeps its record)."""
        call = reader.call
        open_before = call is not None and call.ended == "in_flight"
        reader.control.drop()
        reader.thread.join(WAIT_S)
        if call is not None and open_before and call.ended == "complete" and not any(
            f.type in self.obs.wire.terminal_types for f in list(call.frames)
        ):
            call.ended = "disconnected"

    def _active(self) -> list[Reader]:
        """Readers left attached (live create streams and ``attach``), whether or not their
        stream has ended: rule choice must not depend on timing, or hypothesis cannot replay."""
        return [r for r in self.readers if r.attached]

    # -- rules --------------------------------------------------------------------------
    @initialize(resilient=st.booleans())
    @traced
    def start(self, resilient: bool) -> None:
        assert self.spawn is not None, "explore() sets ResponsesMachine.spawn"
        self.target = type(self).spawn({self.mode: resilient})  # type: ignore[misc]
        self._connect()
        self._step(f"start target ({self.mode}={resilient}) on port {self.target.port}")

    @precondition(lambda self: len(self.order) < MAX_RESPONSES)
    @rule(
        deltas=st.integers(0, 5),
        hold=st.one_of(st.none(), st.integers(0, 4)),
        checkpoint=st.sampled_from([None, 1, 2]),
        delay=st.sampled_from([0, 2]),
        stream=st.booleans(),
    )
    @traced
    def create(self, deltas: int, hold: int | None, checkpoint: int | None, delay: int, stream: bool) -> None:
        self.created += 1
        tag = f"x{self.created}"
        script: dict[str, Any] = {"deltas": deltas, "tag": tag}
        if delay:
            script["delay_ms"] = delay
        if hold is not None and hold < deltas:
            script["hold_at"] = hold
        if checkpoint is not None:
            script["checkpoint_every"] = checkpoint
        self._step(f"create {script} stream={stream}")
        self._create(script, tag, stream)

    def _create(self, script: dict[str, Any], tag: str, stream: bool) -> None:
        body = {"input": script_input(script), "background": True, "store": True, "stream": stream}
        assert self.driver is not None
        if not stream:
            call = self.driver.create(body)
            rid = response_id_of(call) if call.status == 200 else None
            if rid:
                self._track(rid, tag, script, call.ended_at, False)
            self._step(f"  -> {call.status} {rid or call.body_text}")
            return
        driver = self.driver
        reader = self._start_reader(tag, None, lambda control: driver.create(body, control=control))
        reader.attached = True
        self.readers.append(reader)
        call = self._find_call(lambda c: c.name == "create" and c.request_body is body, f"create {tag}")
        reader.holder["call"] = call
        self._wait(
            lambda: call.frames or call.ended != "in_flight", WAIT_S, f"the first frame of create {tag}",
            lambda: f"{call.status} {call.ended}",
        )
        rid = response_id_of(call)
        reader.response_id = rid
        if rid and call.status == 200:
            self._track(rid, tag, script, call.frames[0].t if call.frames else call.ended_at, True)
            if "hold_at" in script:
                self._await_held_on_stream(tag, script["hold_at"], call)
        self._step(f"  -> {call.status} {rid} (live stream stays attached)")

    def _await_held_on_stream(self, tag: str, hold: int, call: HttpCall) -> None:
        """A held create is at a deterministic point only once the handler wrote ``held k`` and
        the live stream shows the k+1 deltas emitted before it (a later fault then always has
        the same pre-crash events to compare; under load the stream can lag the marker)."""
        assert self.target is not None
        try:
            self.target.markers.wait_for(tag, Held(hold), timeout_s=WAIT_S, alive=self.target.is_alive)
        except MarkerTimeout as exc:
            self._fail([f"the handler never held: {exc}"])
        self._wait(
            lambda: sum(1 for f in call.frames if f.type == "response.output_text.delta") >= hold + 1
            or call.ended != "in_flight",
            WAIT_S,
            f"the live stream of {tag} to show the {hold + 1} deltas emitted before 'held {hold}'",
            lambda: answer_of(call),
        )

    def _track(self, rid: str, tag: str, script: dict[str, Any], acked_at: float, stream: bool) -> None:
        self.obs.responses[rid] = Tracked(rid, tag, script, acked_at, stream)
        self.order.append(rid)

    @precondition(lambda self: self._streamable())
    @rule(pick=st.integers(0, 1 << 16), cursor_pick=st.integers(0, 1 << 16), k=st.integers(1, 4))
    @traced
    def read_k(self, pick: int, cursor_pick: int, k: int) -> None:
        """Replay from a cursor seen so far (or the start), read k events, disconnect."""
        rid = self._pick(self._streamable(), pick)
        cursors = [None, *self._seen_cursors(rid)]
        cursor = self._pick(cursors, cursor_pick)
        tracked = self.obs.responses[rid]
        if self._held(tracked):
            # a held response only has the events already seen: never wait for more
            k = min(k, len([s for s in cursors[1:] if cursor is None or s > cursor]))
            if k == 0:
                self._step(f"read_k {rid} after {cursor}: nothing known to read while held, skipped")
                return
        self._step(f"read {k} event(s) of {rid} after {cursor}")
        call = self._replay_until(rid, cursor, lambda c: len(c.frames) >= k, f"{k} event(s)")
        self._step(f"  -> {answer_of(call)}, cursors {self._cursors(call)}")

    def _streamable(self) -> list[str]:
        """Responses created with ``stream=true``: the only ones a replay may be asked of (B2)."""
        return [rid for rid in self.order if self.obs.responses[rid].stream]

    def _held(self, tracked: Tracked) -> bool:
        return "hold_at" in tracked.script and tracked.tag not in self.released

    def _replay_until(self, rid: str, cursor: int | None, enough: Callable[[HttpCall], bool], what: str) -> HttpCall:
        assert self.driver is not None
        label = f"r{len(self.readers)}"
        reader = self._start_reader(label, rid, lambda control: self._open_read(rid, cursor, label, control))
        self.readers.append(reader)
        call = self._find_call(lambda c: c.params.get("cursor_label") == label, f"replay {label}")
        reader.holder["call"] = call
        self._wait(
            lambda: call.ended != "in_flight" or enough(call), WAIT_S, f"{what} of {rid} after {cursor}",
            lambda: f"{answer_of(call)}, cursors {self._cursors(call)}",
        )
        self._drop(reader)
        return call

    @precondition(lambda self: self._streamable() and len(self._active()) < MAX_READERS)
    @rule(pick=st.integers(0, 1 << 16), cursor_pick=st.integers(0, 1 << 16))
    @traced
    def attach(self, pick: int, cursor_pick: int) -> None:
        """Open a replay from a seen cursor and leave it reading in the background."""
        assert self.driver is not None
        rid = self._pick(self._streamable(), pick)
        cursor = self._pick([None, *self._seen_cursors(rid)], cursor_pick)
        label = f"r{len(self.readers)}"
        reader = self._start_reader(label, rid, lambda control: self._open_read(rid, cursor, label, control))
        reader.attached = True
        self.readers.append(reader)
        reader.holder["call"] = self._find_call(lambda c: c.params.get("cursor_label") == label, f"replay {label}")
        self._step(f"attach reader {label} to {rid} after {cursor}")

    @precondition(lambda self: self._active())
    @rule(pick=st.integers(0, 1 << 16))
    @traced
    def disconnect(self, pick: int) -> None:
        reader = self._pick(self._active(), pick)
        reader.attached = False
        self._drop(reader)
        self._step(f"disconnect reader {reader.label} ({reader.response_id})")

    @precondition(lambda self: self.order)
    @rule(pick=st.integers(0, 1 << 16))
    @traced
    def cancel(self, pick: int) -> None:
        assert self.driver is not None
        rid = self._pick(self.order, pick)
        call = self._cancel(rid)
        self._step(f"cancel {rid} -> {call.status} {call.body.get('status') if isinstance(call.body, dict) else ''}")

    @precondition(lambda self: any(self._held(t) for t in self.obs.responses.values()))
    @rule(pick=st.integers(0, 1 << 16))
    @traced
    def release(self, pick: int) -> None:
        held = [t for t in self.obs.responses.values() if self._held(t)]
        tracked = self._pick(held, pick)
        assert self.target is not None and tracked.tag is not None
        self.target.markers.release(tracked.tag)
        self.released.add(tracked.tag)
        self._step(f"release {tracked.tag} ({tracked.response_id})")

    @rule()
    @traced
    def sigkill_restart(self) -> None:
        assert self.target is not None
        self.obs.stops.append(self.now())
        self.nemesis.crash("sigkill", "rule", None)
        self._step(f"SIGKILL + restart (incarnation {self._incarnation()})")

    @rule()
    @traced
    def sigterm_restart(self) -> None:
        assert self.target is not None
        self.obs.stops.append(self.now())
        fault = self.nemesis.crash("sigterm", "rule", None)
        self._step(f"SIGTERM ({fault.exit_mode}) + restart (incarnation {self._incarnation()})")

    @rule()
    @traced
    def pause_resume(self) -> None:
        assert self.target is not None
        nemesis = self.nemesis
        nemesis.pause_resume(nemesis.record("pause", "rule", None))
        self._step("SIGSTOP + SIGCONT")

    @precondition(lambda self: self.order)
    @rule(pick=st.integers(0, 1 << 16))
    @traced
    def wait_terminal(self, pick: int) -> None:
        rid = self._pick(self.order, pick)
        self._settle(rid)

    def _settle(self, rid: str) -> None:
        """Release the hold, poll until a terminal status, then replay from the start to the end."""
        assert self.target is not None and self.driver is not None
        tracked = self.obs.responses[rid]
        if tracked.tag and tracked.tag not in self.released and "hold_at" in tracked.script:
            self.target.markers.release(tracked.tag)
            self.released.add(tracked.tag)
        deadline = time.monotonic() + WAIT_S
        call = self._snapshot(rid)
        while not (isinstance(call.body, dict) and call.body.get("status") in TERMINAL_ANY):
            if call.status != 200 or time.monotonic() > deadline:
                self._check()  # a 404 or 5xx is reported by the invariants with context
                self._fail([
                    f"{rid}: no terminal status within {WAIT_S}s of its release; last GET -> {call.status} "
                    f"{(call.body or {}).get('status') if isinstance(call.body, dict) else call.body_text}\n"
                    f"log tail:\n{self.target.log_tail(10)}"
                ])
            time.sleep(POLL_S)  # polling interval of a bounded status wait
            call = self._snapshot(rid)
        status = call.body["status"]
        if not tracked.stream:
            self._step(f"wait_terminal {rid}: {status}")
            return
        replay = self._replay_until(rid, None, lambda c: False, "the end of a full replay")
        self._step(f"wait_terminal {rid}: {status}; full replay {answer_of(replay)}, cursors {self._cursors(replay)}")
        if replay.ended != "complete" or not replay.frames or self.obs.wire.cursor(replay.frames[-1]) is None:
            self._check()
            self._fail([f"{rid}: full replay after {status!r} did not end cleanly on a terminal event "
                        f"({answer_of(replay)})"])

    # -- invariants ---------------------------------------------------------------------
    @invariant()
    def invariants_hold(self) -> None:
        self._check()

    def _check(self) -> None:
        view = settled(self.obs)  # the calls first: marker lines read after them are at least as new
        self._refresh_markers()
        view.markers = dict(self.obs.markers)
        problems = all_problems(view)
        if problems:
            self._fail(problems)

    def teardown(self) -> None:
        try:
            if self.target is not None and self.target.is_alive():
                for rid in list(self.order):
                    self._settle(rid)
                for reader in self.readers:
                    self._drop(reader)
                self._check()
        finally:
            for reader in self.readers:
                reader.control.drop()
            if self.target is not None:
                self.target.close()


class InvocationsMachine(ResponsesMachine):
    """The same rules on the invocations wire: create is a JSON ``POST /invocations`` (a
    ``stream`` create attaches a live reader from the start), reads resume with ``Last-Event-ID``
    (header or ``?last_event_id=``, drawn by the label's parity), statuses come from the JSON
    snapshot; the server mode drawn is ``resilient_invocations``."""

    mode = "resilient_invocations"
    profile = "invocations"

    def __init__(self) -> None:
        super().__init__()
        self.obs.wire = INVOCATIONS

    def _connect(self) -> None:
        assert self.target is not None
        self.driver = inv.InvocationsDriver(self.target.base_url, self.recorder, timeout_s=WAIT_S)  # type: ignore[assignment]

    def _create(self, script: dict[str, Any], tag: str, stream: bool) -> None:
        call = self.driver.create({"input": inv.script_input(script)})  # type: ignore[attr-defined]
        rid = inv.invocation_id_of(call) if call.status == 200 else None
        if rid:
            self.obs.responses[rid] = Tracked(rid, tag, script, call.ended_at, True)
            self.order.append(rid)
            if stream:
                label = f"live-{tag}"
                reader = self._start_reader(label, rid, lambda control: self._open_read(rid, None, label, control))
                reader.attached = True
                self.readers.append(reader)
                reader.holder["call"] = self._find_call(lambda c: c.params.get("cursor_label") == label, f"stream {label}")
        self._step(f"  -> {call.status} {rid or call.body_text}" + (" (live reader attached)" if rid and stream else ""))

    def _open_read(self, rid: str, cursor: int | None, label: str, control: StreamControl) -> HttpCall:
        via = "query" if len(label) % 2 else "header"
        return self.driver.stream(rid, name="replay", last_event_id=cursor, via=via, label=label, control=control)  # type: ignore[attr-defined]

    def _snapshot(self, rid: str) -> HttpCall:
        return self.driver.snapshot(rid, name="poll")  # type: ignore[attr-defined]

    def _cancel(self, rid: str) -> HttpCall:
        return self.driver.cancel(rid)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Budget:
    """How much to explore: hypothesis examples and steps per example."""

    examples: int
    steps: int
    seed: int | None = None  # None: derandomized (the same examples every run)
    shrink: bool = True


DEFAULT_BUDGET = Budget(examples=6, steps=10, shrink=False)  # chosen by bench/explore_budget.py: docs/exploration.md


def budget_for(explore: int, seed: int | None) -> Budget:
    """The run's budget: ``--conformance-explore`` 0 keeps the small default budget (no
    shrinking: a failing example is at most 10 steps anyway), N > 0 runs N examples of up to 25
    steps and shrinks a failure (each shrink attempt re-runs live steps: it can take minutes,
    bounded by hypothesis's own shrink limit).  ``seed`` is the run's seed (printed in the
    terminal summary and the JSON report; ``--conformance-seed`` repeats it); None derandomizes."""
    if explore <= 0:
        return Budget(DEFAULT_BUDGET.examples, DEFAULT_BUDGET.steps, seed, shrink=False)
    return Budget(explore, 25, seed, shrink=True)


def record_failure(record_dir: Path | None, record: dict[str, Any], how: str) -> None:
    """Write a failing example next to the test's results: ``steps.json`` (the steps, shrunk when
    the budget shrinks, the problems, how to replay) and ``history.json`` (its calls, frames and
    incarnations), which the HTML report shows.  Never raises: the failure itself matters more."""
    if record_dir is None:
        return
    try:
        record_dir.mkdir(parents=True, exist_ok=True)
        steps = {"steps": [s.strip() for s in record["steps"]], "failure": "; ".join(record["problems"]), "exploration": how}
        (record_dir / "steps.json").write_text(json.dumps(steps, indent=2), encoding="utf-8")
        (record_dir / "history.json").write_text(json.dumps(record["history"], indent=2, default=str), encoding="utf-8")
    except (OSError, TypeError, ValueError):
        pass


def explore(spawn: Spawn, budget: Budget, *, replay_hint: str = "", machine: type[ResponsesMachine] = ResponsesMachine,
            record_dir: Path | None = None) -> list[list[str]]:
    """Run the state machine against targets made by ``spawn``; raise ExplorationFailed with the
    seed and a replay command on the first (shrunk) failure, whose steps and History are
    written to ``record_dir`` when given (``record_failure``).  Returns every example's rule
    calls (``traced``): the same seed draws the same ones."""
    cls = type(machine.__name__, (machine,), {"spawn": staticmethod(spawn), "failures": [], "records": [], "traces": []})
    phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if budget.shrink else [])
    config = settings(
        max_examples=budget.examples,
        stateful_step_count=budget.steps,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=budget.seed is None,
        database=None,
        phases=phases,
        print_blob=True,
        report_multiple_bugs=False,
    )
    if budget.seed is not None:
        cls = hypothesis.seed(budget.seed)(cls)
    how = f"seed {budget.seed}" if budget.seed is not None else "derandomized (no seed needed)"
    cmd = replay_hint.format(seed=budget.seed if budget.seed is not None else "") if replay_hint else ""
    footer = f"\nexploration: {how}, {budget.examples} example(s) x {budget.steps} steps" + (f"\nreplay: {cmd}" if cmd else "")
    try:
        run_state_machine_as_test(cls, settings=config)
        return cls.traces
    except ExplorationFailed as exc:
        if cls.records:  # the last failure is the example hypothesis raised (the shrunk one, when shrinking)
            record_failure(record_dir, cls.records[-1], footer.strip())
        raise ExplorationFailed(f"{exc}{footer}") from None
    except BaseException as exc:  # hypothesis Flaky*: a live target need not fail at the same step twice
        if not cls.failures or isinstance(exc, KeyboardInterrupt):
            raise
        record_failure(record_dir, cls.records[0], footer.strip())
        note = f"\n(hypothesis could not replay the failure identically: {type(exc).__name__}; first failure shown)"
        raise ExplorationFailed(f"{cls.failures[0]}{note}{footer}") from None


__all__ = ["Budget", "DEFAULT_BUDGET", "ExplorationFailed", "InvocationsMachine", "ResponsesMachine", "budget_for", "explore", "read_cursor"]


def explore_suite(test_name: str, conformance_settings: Any, spawn_target: Any,
                  machine: type[ResponsesMachine] = ResponsesMachine) -> None:
    """The body of a ``conformance/suites/test_explore_<profile>.py`` test: ``explore`` under the
    run's budget and seed, with a replay hint naming this test, the seed, the explore option and
    a non-default target."""
    target = conformance_settings.target
    explore(
        lambda server: spawn_target(server=server),
        budget_for(conformance_settings.explore, conformance_settings.seed),
        machine=machine,
        record_dir=getattr(spawn_target, "work_dir", None),
        replay_hint=f"pytest conformance -k {test_name} --conformance-seed {{seed}}"
        + (f" --conformance-explore {conformance_settings.explore}" if conformance_settings.explore else "")
        + (f" --conformance-target {target.source}" if target.name != "reference" else ""),
    )
