"""Pure invariants over what an exploration observed: ``Observations`` in, problem strings out.

No I/O here; the stream predicates themselves are ``conformance.streams``'s.  The state machine records every HTTP exchange (``HttpCall`` with its SSE frames
and monotonic timestamps), the responses it was told exist, the marker lines of each script
tag and the moments the process was stopped; after every step it calls ``all_problems``.

What is promised (responses profile, docs/protocol.md §2, §3, §3.6):

- every read: cursors are integers, strictly increasing, all after the read's cursor; at most
  one terminal event and nothing after it; a read that ended cleanly ended on a terminal event
  unless the server was stopped while it was open or its cursor is at or past the terminal
  event (no partial SSE stream);
- across reads of one response: one payload per sequence number, whatever the lifetime (no
  rewrite); one terminal sequence number; a read from cursor ``c`` holds every event after ``c``
  that any read saw before it started, up to where it got (no gap, no loss), in order;
- statuses: once a terminal status is observed, every later observation shows the same one
  (never changes, never goes back to ``in_progress``); an acknowledged response never answers
  404; no call ever gets a 5xx (a 503 while the server is being stopped is no loss);
- output: a ``completed`` snapshot's text is exactly what the markers predict for the attempts
  they record (``checks.output.predict_output``); for a response tracked without a tag (a
  black-box run: no markers) it is what every complete read from the start announced
  (``checks.output.streamed_text``: the last ``response.in_progress``'s output plus the deltas
  after it, i.e. the deltas of the attempt that finished).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit


from conformance import profiles, streams
from conformance.checks._util import as_int, excerpt
from conformance.checks.output import predict_output, snapshot_text, streamed_text
from conformance.history import HttpCall, SSEFrame
from conformance.profiles import Profile
from conformance.streams import after_terminal, cursor_order, event_frames, lost, same_payload, terminals

@dataclass(frozen=True)
class Wire:
    """Where a profile keeps what the invariants read: its ``Profile`` (cursor, terminal events,
    the status and snapshot a terminal event carries, output text) plus how a recorded call names
    the resource: its path, the created id's key, a read's cursor parameter."""

    profile: Profile
    path: re.Pattern[str]
    created_id_key: str
    read_cursor_param: str
    snapshot_calls: tuple[str, ...] = ("get", "poll")

    @property
    def name(self) -> str:
        return self.profile.name

    @property
    def terminal_types(self) -> frozenset[str]:
        return self.profile.terminal_events

    def cursor(self, frame: SSEFrame) -> int | None:
        return self.profile.cursor_of(frame)

    def terminal(self, frame: SSEFrame) -> tuple[str | None, Any]:
        """(status, snapshot) of a terminal frame."""
        return self.profile.terminal_status(frame), self.profile.terminal_snapshot(frame)

    def output(self, snapshot: Any) -> str:
        """The text of a completed snapshot."""
        return snapshot_text(self.profile.name, snapshot)


RESPONSES = Wire(profiles.RESPONSES, re.compile(r"/responses/([^/?]+)"), "id", "starting_after")
INVOCATIONS = Wire(profiles.INVOCATIONS, re.compile(r"/invocations/([^/?]+)"), "invocation_id", "last_event_id")
TERMINAL_ANY = frozenset().union(*(p.terminal_statuses for p in profiles.PROFILES.values()))


@dataclass
class Tracked:
    """A response the target acknowledged (create answered with its id)."""

    response_id: str
    tag: str | None
    script: dict[str, Any]
    acked_at: float
    stream: bool = True  # created with stream=true (replayable)


@dataclass
class Observations:
    """Everything an exploration saw, in the shape the invariants read."""

    calls: list[HttpCall] = field(default_factory=list)
    responses: dict[str, Tracked] = field(default_factory=dict)
    markers: dict[str, list[str]] = field(default_factory=dict)  # tag -> marker lines
    stops: list[float] = field(default_factory=list)  # times a process was SIGTERMed/SIGKILLed
    wire: Wire = RESPONSES


@dataclass(frozen=True)
class StatusSeen:
    """One observation of a response's status: the server state lies in [t_from, t_seen]."""

    t_from: float
    t_seen: float
    status: str
    source: str


def call_response_id(call: HttpCall, wire: Wire = RESPONSES) -> str | None:
    """The resource a call is about: the id in its URL, else the one a create revealed."""
    match = wire.path.search(urlsplit(call.url).path)
    if match:
        return match.group(1)
    if isinstance(call.body, dict) and isinstance(call.body.get(wire.created_id_key), str):
        return call.body[wire.created_id_key]
    for frame in list(call.frames)[:3]:
        payload = frame.json
        if isinstance(payload, dict) and isinstance(payload.get("response"), dict):
            rid = payload["response"].get("id")
            if isinstance(rid, str):
                return rid
    return None


def read_cursor(call: HttpCall, wire: Wire = RESPONSES) -> int | None:
    """The cursor a read was opened with (``starting_after`` / ``last_event_id``; None: from the start)."""
    return streams.read_cursor(call, wire.read_cursor_param)


def answer_of(call: HttpCall, limit: int = 200) -> str:
    """What a call got, for failure texts: ``HTTP 400 {"error": ...}`` (status and a body
    excerpt), the frames of an event stream, or how it ended when there was no answer.  A replay
    refused with 400 then reads as such, not as "0 frames"."""
    if call.status is None:
        return f"no answer ({call.ended}{': ' + call.error if call.error else ''})"
    if call.frames:
        return f"HTTP {call.status}, {len(call.frames)} frame(s), {call.ended}"
    body = call.body if call.body is not None else call.body_text
    return f"HTTP {call.status}, 0 frames, {call.ended}, body: {excerpt(body, limit) if body not in (None, '') else '(empty)'}"


def frame_label(frame: SSEFrame, wire: Wire = RESPONSES) -> str:
    return streams.frame_label(frame, wire.cursor)


def cursor_problems(frames: list[SSEFrame], after: int | None, wire: Wire = RESPONSES) -> list[str]:
    """Cursors present and ints, strictly increasing (no duplicate), all > ``after``."""
    order = cursor_order(frames, wire.cursor, after)
    problems: list[str] = []
    if order.missing:
        problems.append(f"{len(order.missing)} frame(s) without an integer cursor: "
                        + ", ".join(f"{f.type} data={excerpt(f.data, 60)}" for f in order.missing[:5]))
    problems += [
        f"duplicate sequence_number/cursor {wire.cursor(frame)}: {frame_label(frame, wire)}"
        for _, frame in order.duplicates
    ]
    problems += [
        f"sequence_number/cursor decreases: {frame_label(previous, wire)} then {frame_label(frame, wire)}"
        for previous, frame in order.decreases
    ]
    problems += [f"event {frame_label(frame, wire)} at or before the cursor {after}" for frame in order.early]
    return problems


def _frames(call: HttpCall) -> list[SSEFrame]:
    return event_frames(call.frames)


def _reads(obs: Observations) -> dict[str, list[HttpCall]]:
    """SSE reads (live streams and replays) of tracked resources, by id."""
    out: dict[str, list[HttpCall]] = {}
    for call in list(obs.calls):
        if not call.is_sse or call.status != 200:
            continue
        rid = call_response_id(call, obs.wire)
        if rid is not None and rid in obs.responses:
            out.setdefault(rid, []).append(call)
    return out


def _stopped_during(obs: Observations, call: HttpCall) -> bool:
    end = call.ended_at if call.ended != "in_flight" else float("inf")
    return any(call.started_at <= t <= end for t in obs.stops)


def _label(call: HttpCall, wire: Wire = RESPONSES) -> str:
    cursor = read_cursor(call, wire)
    where = "live create stream" if call.name == "create" else f"read after {cursor}"
    return f"{where} of {call_response_id(call, wire)} (started t={call.started_at:.3f}, {call.ended})"


def _opened_after(call: HttpCall, wire: Wire) -> int | None:
    return read_cursor(call, wire) if call.name != "create" else None


# -- per read ------------------------------------------------------------------------------
def read_problems(obs: Observations) -> list[str]:
    """Each read on its own: cursors ints, strictly increasing, > its cursor; one terminal, last;
    a cleanly ended read ends on a terminal unless the server was stopped meanwhile."""
    problems: list[str] = []
    w = obs.wire
    for calls in _reads(obs).values():
        terminal_cursors = streams.terminal_cursors((f for c in calls for f in _frames(c)), w.terminal_types, w.cursor)
        for call in calls:
            frames = _frames(call)
            cursor = _opened_after(call, w)
            past_end = cursor is not None and any(cursor >= s for s in terminal_cursors)  # type: ignore[operator]
            for p in cursor_problems(frames, cursor, w):
                problems.append(f"{_label(call, w)}: {p}")
            found = terminals(frames, w.terminal_types)
            if len(found) > 1:
                problems.append(
                    f"{_label(call, w)}: {len(found)} terminal events: "
                    + ", ".join(frame_label(f, w) for _, f in found)
                )
            trailing = after_terminal(frames, w.terminal_types)
            if trailing is not None:
                problems.append(
                    f"{_label(call, w)}: terminal {frame_label(trailing[0], w)} is not last; "
                    f"after it: {', '.join(frame_label(f, w) for f in trailing[1][:5])}"
                )
            if call.ended == "complete" and not found and not past_end and not _stopped_during(obs, call):
                last = frame_label(frames[-1], w) if frames else "no frames"
                problems.append(
                    f"{_label(call, w)}: stream ended without a terminal event while the server ran "
                    f"(partial SSE stream; last: {last})"
                )
    return problems


# -- across reads --------------------------------------------------------------------------
def replay_problems(obs: Observations) -> list[str]:
    """Across the reads of one resource: same payload per cursor (no rewrite), one terminal
    cursor, and a read from ``c`` holds every cursor > c seen earlier, up to where it got."""
    problems: list[str] = []
    w = obs.wire
    for rid, calls in _reads(obs).items():
        first: dict[int, tuple[SSEFrame, HttpCall]] = {}
        terminal_seqs: dict[int, str] = {}
        rewritten: set[int] = set()
        for call in calls:
            for frame in _frames(call):
                seq = w.cursor(frame)
                if seq is None:
                    continue
                if frame.type in w.terminal_types:
                    terminal_seqs.setdefault(seq, f"{frame_label(frame, w)} in {_label(call, w)}")
                seen = first.get(seq)
                if seen is None:
                    first[seq] = (frame, call)
                elif seq not in rewritten and not same_payload(seen[0], frame):
                    rewritten.add(seq)
                    problems.append(
                        f"{rid}: seq {seq} rewritten: {frame_label(seen[0], w)} "
                        f"{excerpt(seen[0].data, 160)} in {_label(seen[1], w)} vs {frame_label(frame, w)} "
                        f"{excerpt(frame.data, 160)} in {_label(call, w)}"
                    )
        if len(terminal_seqs) > 1:
            problems.append(f"{rid}: terminal events at different seqs: {'; '.join(terminal_seqs.values())}")
        for call in calls:
            if call.name == "create":
                continue
            cursor = read_cursor(call, w)
            got = streams.cursors(_frames(call), w.cursor)
            floor = -1 if cursor is None else cursor
            # A read reached the end of the resource only if it carried the terminal event: a
            # close-delimited stream (HTTP/1.0 style, ``Connection: close``) of a killed server
            # also ends "complete" at the transport, with nothing after what it got.
            whole = call.ended == "complete" and any(f.type in w.terminal_types for f in _frames(call))
            limit = float("inf") if whole else (max(got) if got else floor)
            earlier = [
                c
                for other in calls
                if other is not call
                for f in _frames(other)
                if (c := w.cursor(f)) is not None and f.t < call.started_at
            ]
            missing = lost(got, earlier, floor, limit)
            if missing:
                problems.append(
                    f"{_label(call, w)}: missing seq(s) {missing[:10]} that earlier reads saw "
                    f"(got {got[:20]}{'...' if len(got) > 20 else ''})"
                )
    return problems


# -- statuses --------------------------------------------------------------------------------
def status_observations(obs: Observations) -> dict[str, list[StatusSeen]]:
    """Every status observed per tracked resource: JSON GETs, cancel answers, terminal frames."""
    out: dict[str, list[StatusSeen]] = {}
    w = obs.wire
    for call in list(obs.calls):
        rid = call_response_id(call, w)
        if rid is None or rid not in obs.responses:
            continue
        if call.is_sse:
            for frame in _frames(call):
                if frame.type in w.terminal_types:
                    status, _ = w.terminal(frame)
                    if isinstance(status, str):
                        out.setdefault(rid, []).append(StatusSeen(frame.t, frame.t, status, frame_label(frame, w)))
            continue
        if call.status == 200 and isinstance(call.body, dict) and isinstance(call.body.get("status"), str):
            if call.name in (*w.snapshot_calls, "cancel"):
                out.setdefault(rid, []).append(
                    StatusSeen(call.started_at, call.ended_at, call.body["status"], f"{call.name} {call.method}")
                )
    return out


def status_problems(obs: Observations) -> list[str]:
    """A terminal status, once observed, is what every later observation shows."""
    problems: list[str] = []
    for rid, seen in status_observations(obs).items():
        for a in seen:
            if a.status not in TERMINAL_ANY:
                continue
            for b in seen:
                if b.t_from > a.t_seen and b.status != a.status:
                    problems.append(
                        f"{rid}: status {a.status!r} observed at t={a.t_seen:.3f} ({a.source}), "
                        f"then {b.status!r} at t={b.t_from:.3f} ({b.source})"
                    )
                    break
    return problems


def _cancelled_before(obs: Observations, rid: str, t: float) -> bool:
    """A cancel of ``rid`` was accepted, or its status seen ``cancelled``, before ``t``: a replay
    refused after that is a reading the documents allow (docs/protocol.md §6: "stream gone")."""
    accepted = any(
        c.name == "cancel" and call_response_id(c, obs.wire) == rid and c.status is not None
        and 200 <= c.status < 300 and c.ended_at <= t
        for c in list(obs.calls)
    )
    return accepted or any(s.status == "cancelled" and s.t_seen <= t for s in status_observations(obs).get(rid, []))


def http_problems(obs: Observations) -> list[str]:
    """No 5xx anywhere, but a 503 to a create, or to any call the server was being stopped
    during (a draining server may refuse work; nothing is lost by it); an acknowledged resource
    never answers 404 afterwards; a replay of an acknowledged stream resource is never refused
    (4xx): the explorers replay only those, from cursors they saw; but after a cancel, a 400
    ("stream gone") is a reading the documents allow (docs/protocol.md §6)."""
    problems: list[str] = []
    for call in list(obs.calls):
        draining = call.status == 503 and (call.name == "create" or _stopped_during(obs, call))
        if call.status is not None and call.status >= 500 and not draining:
            problems.append(f"{call.method} {call.url} -> {call.status}: {excerpt(call.body or call.body_text, 200)}")
        rid = call_response_id(call, obs.wire)
        tracked = obs.responses.get(rid) if rid else None
        if (call.name == "replay" and tracked is not None and tracked.stream and call.status is not None
                and 400 <= call.status < 500 and call.status != 404 and call.started_at > tracked.acked_at
                and not _cancelled_before(obs, rid, call.started_at)):
            problems.append(
                f"{rid}: acknowledged at t={tracked.acked_at:.3f} as a stream, then its replay "
                f"{call.method} {call.url} {call.params} was refused at t={call.started_at:.3f}: {answer_of(call)}"
            )
        if call.status == 404 and tracked is not None and call.started_at > tracked.acked_at:
            problems.append(
                f"{rid}: acknowledged at t={tracked.acked_at:.3f}, then {call.method} {call.url} -> 404 "
                f"at t={call.started_at:.3f} (an acknowledged response was lost)"
            )
    return problems


def _full_reads(obs: Observations, rid: str) -> list[HttpCall]:
    """The reads of ``rid`` from the start (no cursor) that ended on a terminal event."""
    w = obs.wire
    return [c for c in obs.calls if c.is_sse and call_response_id(c, w) == rid and read_cursor(c, w) is None
            and c.frames and c.frames[-1].type in w.terminal_types]


def output_problems(obs: Observations) -> list[str]:
    """Every ``completed`` snapshot's text is the markers' prediction for the recorded attempts
    (a response tracked without a tag: what every complete read from the start announced)."""
    problems: list[str] = []
    w = obs.wire
    for call in list(obs.calls):
        rid = call_response_id(call, w)
        tracked = obs.responses.get(rid) if rid else None
        if tracked is None:
            continue
        if tracked.tag is None:
            problems.extend(_streamed_output_problems(obs, call, rid))
            continue
        snapshots: list[tuple[str, Any]] = []
        if call.is_sse:
            for frame in _frames(call):
                if frame.type in w.terminal_types:
                    status, snap = w.terminal(frame)
                    if status == "completed":
                        snapshots.append((frame_label(frame, w), snap))
        elif call.status == 200 and call.name in w.snapshot_calls and isinstance(call.body, dict):
            if call.body.get("status") == "completed":
                snapshots.append((f"{call.name} body", call.body))
        for where, snap in snapshots:
            if not isinstance(snap, dict):
                continue
            deltas = as_int(tracked.script.get("deltas", 3))
            prediction = predict_output(obs.markers.get(tracked.tag, []), deltas or 0)
            text = w.output(snap)
            if text != prediction.text:
                problems.append(
                    f"{rid}: completed output {text!r} ({where}) but the markers predict "
                    f"{prediction.text!r}"
                )
            problems.extend(f"{rid}: {p}" for p in prediction.problems)
    return problems


def _completed_snapshots(call: HttpCall, w: Wire) -> list[tuple[str, Any]]:
    """(where, snapshot) of every ``completed`` snapshot ``call`` carries: a terminal frame's or a GET body."""
    found: list[tuple[str, Any]] = []
    if call.is_sse:
        for frame in _frames(call):
            if frame.type in w.terminal_types:
                status, snap = w.terminal(frame)
                if status == "completed" and isinstance(snap, dict):
                    found.append((frame_label(frame, w), snap))
    elif call.status == 200 and call.name in w.snapshot_calls and isinstance(call.body, dict):
        if call.body.get("status") == "completed":
            found.append((f"{call.name} body", call.body))
    return found


def _streamed_output_problems(obs: Observations, call: HttpCall, rid: str) -> list[str]:
    """A markerless response: each ``completed`` snapshot in ``call`` holds the text that every
    complete read from the start announced (``streamed_text``)."""
    problems: list[str] = []
    w = obs.wire
    for where, snap in _completed_snapshots(call, w):
        text = w.output(snap)
        for read in _full_reads(obs, rid):
            announced = streamed_text(list(read.frames))
            if text != announced:
                problems.append(f"{rid}: completed output {text[:300]!r} ({where}) but {_label(read, w)} announced "
                                f"{announced[:300]!r} (its last in_progress output + the deltas after it)")
    return problems


def settled(obs: Observations) -> Observations:
    """A consistent copy of what reader threads are still writing: each call's ``ended`` is read
    before its frames (the transport writes ``ended`` last), so a call seen ended carries all its
    frames, its body and its end time. A JSON call still in flight is left out: its status and
    body are not final yet. Judging the live objects instead can pair an old frame list with a
    newer ``ended`` and report a stream cut short that was not."""
    calls: list[HttpCall] = []
    for call in list(obs.calls):
        ended = call.ended
        if ended == "in_flight" and not call.is_sse:
            continue
        calls.append(replace(call, ended=ended, frames=list(call.frames)))
    return replace(obs, calls=calls, stops=list(obs.stops))


def all_problems(obs: Observations) -> list[str]:
    """Every invariant over one ``settled`` view, in a stable order (duplicates removed)."""
    out: list[str] = []
    view = settled(obs)
    for check in (http_problems, read_problems, replay_problems, status_problems, output_problems):
        for problem in check(view):
            if problem not in out:
                out.append(problem)
    return out
