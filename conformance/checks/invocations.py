"""Invocations-profile expectations: ``cursor``, ``entry_modes``, ``resume``, ``readers``,
``steering``, ``queue`` and ``cancel_queued`` (pure, History -> Violations).

Rules (the invocations wire): the cursor is the frame's ``id:`` line, a positive integer,
strictly increasing per invocation, never reused, durable (the same id means the same event
forever: across readers, restarts and recovery); ``data.event_id`` equals it; a resume after
``N`` holds only ids > N; exactly one terminal event per invocation, last;
``invocation.started`` carries ``attempt``, ``entry_mode`` (fresh | recovered | resumed) and
``from``.  The full transcript is the ``replay`` call (a GET without a cursor after the end).
Steering: a POST on a busy session is queued; the running turn winds down at its next checkpoint
boundary (never in the middle of a step, so a held turn goes on until released) and ends
``superseded``, or completes when no boundary is left before its last delta; queued inputs run
FIFO, one at a time, each exactly once as attempt 1 with ``entry_mode: resumed``, also when the
server crashes while they wait.
"""

from __future__ import annotations

from typing import Any

from conformance.history import INVOCATION_TERMINAL_EVENTS as TERMINAL_EVENTS
from conformance.history import INVOCATION_TERMINAL_STATUSES as TERMINAL_STATUSES
from conformance.history import HttpCall, History, SSEFrame, SteeredInput, Violation
from conformance.model import Cell
from conformance.streams import (
    after_cursor,
    after_terminal,
    by_cursor,
    contiguous_from,
    cursor_order,
    diverges_at,
    event_frames,
    event_id_of,
    frame_label,
    frames_excerpt,
    read_cursor,
    rewritten,
    same_event,
    terminals,
)
from harness.markers import Checkpoint, Done, Held, Interrupted, Released, Start, parse_markers

from ._util import allowed_non_200, as_int, call_summary, excerpt, quoted
from .output import markers_excerpt, piece, predict_output

ENTRY_MODES = ("fresh", "recovered", "resumed")
STREAM_CALLS = ("live", "reader", "replay", "resume")
"""Calls whose frames belong to the (first) invocation."""


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def events(call: HttpCall) -> list[SSEFrame]:
    """The call's event frames (keep-alive comment residue dropped)."""
    return event_frames(call.frames)


def _raw_id(frame: SSEFrame) -> str | None:
    return frame.id


def label(frame: SSEFrame) -> str:
    """``type#id`` for a frame, e.g. ``invocation.delta#4`` (the raw ``id:`` line)."""
    return frame_label(frame, _raw_id)


def labels(frames: list[SSEFrame], limit: int = 30) -> str:
    return frames_excerpt(frames, limit, _raw_id) or "no frames"


def payload(frame: SSEFrame) -> dict[str, Any]:
    data = frame.json
    return data if isinstance(data, dict) else {}


def transcript(history: History, name: str = "replay", steer: int | None = None) -> HttpCall | None:
    """The last 200 event-stream call of that name (of steered input ``steer``), else None."""
    found = None
    for call in history.calls_named(name):
        if steer is not None and call.params.get("steer") != steer:
            continue
        if call.status == 200 and call.is_sse:
            found = call
    return found


def cursor_of(call: HttpCall) -> int | None:
    """The resume cursor a call sent (header or query), as an int; None when absent or malformed."""
    return read_cursor(call, "last_event_id")


def _malformed(call: HttpCall) -> bool:
    value = call.params.get("last_event_id") if isinstance(call.params, dict) else None
    return value is not None and (cursor_of(call) is None or cursor_of(call) < 0 or "\n" in str(value))


def id_problems(frames: list[SSEFrame], after: int | None, invocation_id: str | None) -> list[str]:
    """Every frame has a positive integer id equal to ``data.event_id``, the right
    ``invocation_id``; ids strictly increasing, gap-free, all > ``after``."""
    problems: list[str] = []
    order = cursor_order(frames, event_id_of, after)
    bad = [f for f in frames if f.event_id is None or f.event_id < 1]
    if bad:
        problems.append(
            f"{len(bad)} frame(s) without a positive integer id: "
            + ", ".join(f"{label(f)} raw={quoted(f.raw, 60)}" for f in bad[:5])
        )
    mismatch = [f for f in frames if f.event_id is not None and as_int(payload(f).get("event_id")) != f.event_id]
    if mismatch:
        problems.append(
            "data.event_id differs from the id line: "
            + ", ".join(f"{label(f)} event_id={payload(f).get('event_id')!r}" for f in mismatch[:5])
        )
    if invocation_id is not None:
        foreign = [f for f in frames if payload(f).get("invocation_id") != invocation_id]
        if foreign:
            problems.append(
                f"frames naming another invocation than {invocation_id}: "
                + ", ".join(f"{label(f)} invocation_id={payload(f).get('invocation_id')!r}" for f in foreign[:5])
            )
    problems += [f"duplicate id: {label(a)} then {label(b)}" for a, b in order.duplicates]
    problems += [f"id decreases: {label(a)} then {label(b)}" for a, b in order.decreases]
    problems += [
        f"gap: {label(a)} then {label(b)} (ids {event_id_of(a) + 1}..{event_id_of(b) - 1} missing)"  # type: ignore[operator]
        for a, b in order.gaps
    ]
    ids = [f for f in frames if f.event_id is not None]
    if after is not None:
        if order.early:
            problems.append(f"event(s) at or before the cursor {after}: {labels(order.early, 10)}")
        if ids and ids[0].event_id is not None and ids[0].event_id > after + 1 and after > 0:
            problems.append(f"first id after cursor {after} is {ids[0].event_id}: ids {after + 1}..{ids[0].event_id - 1} skipped")
    return problems


def terminal_problems(frames: list[SSEFrame], want: str | None, must_end: bool) -> list[str]:
    """At most one terminal event and it is the last frame; when ``must_end``, exactly one
    (of type ``want`` when given)."""
    found = terminals(frames, TERMINAL_EVENTS)
    problems: list[str] = []
    if not found:
        if must_end:
            last = label(frames[-1]) if frames else "no frames"
            problems.append(f"expected one terminal event{f' ({want})' if want else ''}, observed none (last: {last})")
        return problems
    if len(found) > 1:
        problems.append(f"expected exactly one terminal event, observed {len(found)}: {labels([f for _, f in found])}")
    _, last = found[-1]
    trailing = after_terminal(frames, TERMINAL_EVENTS)
    if trailing is not None:
        problems.append(f"terminal {label(trailing[0])} is not the last frame; after it: {labels(trailing[1], 10)}")
    if want is not None and last.type != want:
        problems.append(f"expected terminal {want}, observed {label(last)}")
    return problems


def _stream_calls(history: History) -> list[HttpCall]:
    return [c for c in history.calls if c.name in STREAM_CALLS and c.status == 200 and c.is_sse]


def _no_transcript(check: str, history: History, name: str = "replay") -> Violation:
    made = [call_summary(c) for c in history.calls_named(name)]
    return Violation(
        check,
        f"expected a 200 event stream of the whole transcript (`{name}`), observed "
        + ("; ".join(made) if made else "no such call"),
    )


# --------------------------------------------------------------------------------------
# cursor
# --------------------------------------------------------------------------------------


def check_cursor(history: History, expected: Any, cell: Cell) -> list[Violation]:
    """The transcript's ids are well formed (see ``id_problems``) and it ends with exactly one
    terminal (``expected["terminal"]`` when given); every other stream of the invocation (live,
    readers, resumes) has well-formed ids after its cursor, at most one terminal, last, exactly
    one if it ended normally; and every id seen anywhere carries the transcript's payload."""
    spec = expected if isinstance(expected, dict) else {}
    want = spec.get("terminal")
    full = transcript(history)
    if full is None:
        return [_no_transcript("cursor", history)]
    violations: list[Violation] = []
    rid = history.run_id
    frames = events(full)
    for problem in id_problems(frames, None, rid) + terminal_problems(frames, want, must_end=True):
        violations.append(Violation("cursor", f"transcript: {problem}", evidence=labels(frames)))
    by_id = by_cursor(frames, event_id_of)
    for call in _stream_calls(history):
        if call is full:
            continue
        got = events(call)
        after = cursor_of(call) if call.name == "resume" else None
        where = _where(call)
        ended_normally = call.ended == "complete" and call.incarnation not in _crashed(history)
        problems = id_problems(got, after, rid)
        problems += terminal_problems(got, want if ended_normally else None, must_end=ended_normally and _expects_end(call, by_id))
        problems += [
            f"{label(f)} is missing from the transcript (an event seen once and lost)"
            for f in got
            if f.event_id is not None and f.event_id not in by_id
        ]
        problems += [
            f"{label(f)} was rewritten: {_diff(f, ref)} (id reused for another event)"
            for ref, f in rewritten(by_id, got, event_id_of, same_event)
        ]
        for problem in problems:
            violations.append(
                Violation("cursor", f"{where}: {problem}", evidence=f"{where}: {labels(got)} (ended {call.ended})")
            )
    return violations


def _crashed(history: History) -> set[int]:
    """Incarnations a process fault ended: their streams may end without a terminal."""
    from .process import process_faults

    return {f.incarnation for f in process_faults(history)}


def _expects_end(call: HttpCall, by_id: dict[Any, SSEFrame]) -> bool:
    """A stream that ended by itself must have ended with the terminal, unless its cursor was at
    or past the terminal (then it is empty)."""
    after = cursor_of(call) if call.name == "resume" else None
    if after is None or not by_id:
        return True
    return after < max(k for k in by_id if k is not None)


def _where(call: HttpCall) -> str:
    params = call.params if isinstance(call.params, dict) else {}
    if call.name == "resume":
        return f"resume after {params.get('last_event_id')} ({params.get('via', 'header')})"
    if call.name == "reader":
        return f"reader {params.get('reader', '?')}"
    return call.name


def _diff(a: SSEFrame, b: SSEFrame) -> str:
    ja, jb = payload(a), payload(b)
    keys = sorted(set(ja) | set(jb))
    diffs = [f"{k}: {excerpt(ja.get(k, '<absent>'), 60)} vs transcript {excerpt(jb.get(k, '<absent>'), 60)}" for k in keys if ja.get(k, "<absent>") != jb.get(k, "<absent>")]
    if a.event != b.event:
        diffs.append(f"event: {a.event!r} vs transcript {b.event!r}")
    return "; ".join(diffs) or "raw data differs"


# --------------------------------------------------------------------------------------
# entry modes
# --------------------------------------------------------------------------------------


def started_frames(frames: list[SSEFrame]) -> list[SSEFrame]:
    return [f for f in frames if f.type == "invocation.started"]


def entry_problems(frames: list[SSEFrame], want: list[str], markers: list[str]) -> list[str]:
    """``invocation.started`` entry modes equal ``want``; attempts 1..n in order; each ``from``
    equals the ``from=`` of the matching ``start`` marker."""
    started = started_frames(frames)
    modes = [payload(f).get("entry_mode") for f in started]
    problems: list[str] = []
    if modes != list(want):
        problems.append(f"expected entry modes {list(want)}, observed {modes} ({labels(started)})")
    attempts = [payload(f).get("attempt") for f in started]
    if attempts != list(range(1, len(started) + 1)):
        problems.append(f"expected attempts 1..{len(started)} in order, observed {attempts}")
    by_attempt = {m.attempt: m.from_ for m in parse_markers(markers) if isinstance(m, Start)}
    for f in started:
        attempt = as_int(payload(f).get("attempt"))
        if attempt in by_attempt and by_attempt[attempt] is not None and as_int(payload(f).get("from")) != by_attempt[attempt]:
            problems.append(
                f"{label(f)} says from={payload(f).get('from')!r}, the start marker of attempt {attempt} says from={by_attempt[attempt]}"
            )
    return problems


def check_entry_modes(history: History, expected: Any, cell: Cell) -> list[Violation]:
    """The transcript's ``invocation.started`` entry modes are exactly ``expected`` (a list),
    with attempts 1..n and ``from`` matching the markers."""
    if not isinstance(expected, list) or not all(m in ENTRY_MODES for m in expected):
        return [Violation("entry_modes", f"expected a list of {'/'.join(ENTRY_MODES)}, got {excerpt(expected, 80)}")]
    full = transcript(history)
    if full is None:
        return [_no_transcript("entry_modes", history)]
    frames = events(full)
    return [
        Violation("entry_modes", p, evidence=f"transcript: {labels(frames)}; markers: {markers_excerpt(history.markers)}")
        for p in entry_problems(frames, expected, history.markers)
    ]


# --------------------------------------------------------------------------------------
# resume
# --------------------------------------------------------------------------------------


def _window_reference(history: History, cell: Cell) -> HttpCall | None:
    """When the cell says the server may refuse the whole transcript (``http.replay`` names the
    non-200 it answered, e.g. 410 under retention, §7.3), the reference for resumes is the 200
    stream (live or resume) that starts lowest and is whole from its cursor: ids cursor+1, +2, ...
    without a gap, ending with a terminal event; only without a process fault. None otherwise:
    a missing transcript is never excused silently."""
    replays = history.calls_named("replay")
    allowed = allowed_non_200(cell, "replay")
    if not replays or not all(c.status in allowed for c in replays) or history.faults:
        return None
    best: tuple[int, HttpCall] | None = None
    for call in history.calls_named("live") + history.calls_named("resume"):
        frames = events(call)
        start = (cursor_of(call) or 0) if call.name == "resume" else 0
        if (call.status == 200 and frames and not _malformed(call) and contiguous_from(frames, start, event_id_of)
                and frames[-1].type in TERMINAL_EVENTS and (best is None or start < best[0])):
            best = (start, call)
    return best[1] if best else None


def _seen_before_fault(history: History) -> list[int]:
    live = [c for c in history.calls_named("live")]
    frames = [f for c in live for f in events(c)]
    if history.faults:
        frames = [f for f in frames if f.t <= history.faults[0].t]
    return sorted({f.event_id for f in frames if f.event_id is not None})


def check_resume(history: History, expected: Any, cell: Cell) -> list[Violation]:
    """Every ``resume`` call from cursor N answered 200 with exactly the transcript's events
    with id > N, same ids, same payloads, same order (no gap, duplicate or rewrite); a non-200
    answer only where ``http.resume`` allows it; a malformed cursor is never answered 200.
    ``from: seen`` also requires a resume from every id seen live before the first fault, by
    each ``via`` (header, query, or both)."""
    spec = expected if isinstance(expected, dict) else {}
    calls = history.calls_named("resume")
    if not calls:
        return [Violation("resume", "expected `resume` calls; none was made")]
    violations: list[Violation] = []
    via = spec.get("via", "both")
    vias = {"header", "query"} if via == "both" else {via}
    wanted: list[Any] = []
    sources = spec.get("from", "seen")
    for item in sources if isinstance(sources, list) else [sources]:
        if item == "seen":
            wanted += [0] + _seen_before_fault(history)
        else:
            wanted.append(item)
    made = {(str(c.params.get("last_event_id")), c.params.get("via", "header")) for c in calls}
    for cursor in wanted:
        for v in sorted(vias):
            if (str(cursor), v) not in made:
                violations.append(
                    Violation("resume", f"expected a resume after {cursor!r} by {v}; none was made",
                              evidence=f"resumes made: {sorted(made)}")
                )
    allowed = allowed_non_200(cell, "resume")
    full = transcript(history) or _window_reference(history, cell)
    if full is None and any(c.status == 200 for c in calls):
        violations.append(_no_transcript("resume", history))
    ref = [f for f in events(full)] if full is not None else []
    for call in calls:
        where = _where(call)
        if call.status is None:
            violations.append(Violation("resume", f"{where}: expected an answer, observed a transport error: {call.error or call.ended}", evidence=call_summary(call)))
            continue
        if call.status != 200:
            if call.status not in allowed:
                violations.append(Violation("resume", f"{where}: expected 200 with the rest of the transcript, observed {call.status}", evidence=call_summary(call)))
            continue
        if _malformed(call):
            violations.append(Violation("resume", f"{where}: expected a malformed cursor to be refused (400), observed 200", evidence=call_summary(call)))
            continue
        if full is None:
            continue
        after = cursor_of(call) or 0
        want = after_cursor(ref, after, event_id_of)
        got = events(call)
        problems: list[str] = []
        want_ids = [f.event_id for f in want]
        got_ids = [f.event_id for f in got]
        if got_ids != want_ids:
            missing = sorted(set(want_ids) - set(got_ids))
            extra = [i for i in got_ids if i not in want_ids]
            dups = sorted({i for i in got_ids if got_ids.count(i) > 1})
            parts = []
            if missing:
                parts.append(f"missing {missing[:15]}")
            if extra:
                parts.append(f"not after the cursor or not in the transcript {extra[:15]}")
            if dups:
                parts.append(f"duplicated {dups[:15]}")
            if not parts:
                parts.append("out of order")
            problems.append(f"expected ids {want_ids[:30]}, observed {got_ids[:30]}: " + ", ".join(parts))
        for r, f in rewritten(by_cursor(want, event_id_of), got, event_id_of, same_event):
            problems.append(f"{label(f)} differs from the transcript: {_diff(f, r)}")
        for problem in problems:
            violations.append(Violation("resume", f"{where}: {problem}", evidence=f"{where}: {labels(got)}; transcript: {labels(ref)}"))
    return violations


# --------------------------------------------------------------------------------------
# readers
# --------------------------------------------------------------------------------------


def check_readers(history: History, expected: Any, cell: Cell) -> list[Violation]:
    """``expected`` live readers (``live`` + ``reader`` calls) were opened, each answered 200,
    and each saw a prefix of the transcript starting at its first event: the same ids, payloads
    and order; a reader that ended by itself saw the whole transcript."""
    want = as_int(expected)
    if want is None or want < 1:
        return [Violation("readers", f"expected readers must be an int >= 1, got {expected!r}")]
    readers = history.calls_named("live") + history.calls_named("reader")
    violations: list[Violation] = []
    if len(readers) != want:
        violations.append(Violation("readers", f"expected {want} live readers, observed {len(readers)}"))
    full = transcript(history)
    if full is None:
        return violations + [_no_transcript("readers", history)]
    ref = events(full)
    for call in readers:
        where = _where(call)
        if call.status != 200:
            violations.append(Violation("readers", f"{where}: expected 200, observed {call.status}", evidence=call_summary(call)))
            continue
        got = events(call)
        head = ref[: len(got)]
        diverge = diverges_at(got, ref, event_id_of, same_event)
        if diverge is not None:
            violations.append(
                Violation(
                    "readers",
                    f"{where}: expected the transcript's events in order, diverges at position {diverge}: "
                    f"observed {labels(got[diverge:diverge + 3])}, transcript {labels(head[diverge:diverge + 3])}",
                    evidence=f"{where}: {labels(got)}; transcript: {labels(ref)}",
                )
            )
        elif call.ended == "complete" and len(got) != len(ref) and not history.faults:
            violations.append(
                Violation("readers", f"{where}: ended after {len(got)} of the transcript's {len(ref)} events",
                          evidence=f"{where}: {labels(got)}")
            )
    return violations


# --------------------------------------------------------------------------------------
# steering
# --------------------------------------------------------------------------------------

def steer_stop(script: dict[str, Any]) -> int | None:
    """Where a turn steered while it is held at ``hold_at`` winds down: the first checkpoint
    boundary after the hold that is not its last delta (``checkpoint i`` with ``(i + 1) %
    checkpoint_every == 0``); None when no such boundary is left, and the turn completes.  A
    boundary at the hold itself was passed before the steer arrived."""
    deltas = as_int(script.get("deltas", 3))
    every = as_int(script.get("checkpoint_every"))
    hold = as_int(script.get("hold_at"))
    if deltas is None or every is None or every < 1 or hold is None:
        return None
    for i in range(hold + 1, deltas - 1):
        if (i + 1) % every == 0:
            return i
    return None


def wind_down_problems(who: str, markers: list[str], final: dict[str, Any] | None, frames: list[SSEFrame] | None,
                       script: dict[str, Any], *, judge_status: bool = True) -> list[str]:
    """A turn steered while held (one attempt, no fault): its held step goes on until released
    (``released`` right after ``held``: a steer never stops a held turn), then it winds down at
    ``steer_stop`` (markers end ``checkpoint i``, ``interrupted``; no ``done``; status
    ``superseded``; output and transcript stop at delta i, its checkpoint, then
    ``invocation.superseded``), or, with no boundary left, completes (``done``, no
    ``interrupted``, status ``completed``)."""
    stop = steer_stop(script)
    problems: list[str] = []
    status = final.get("status") if isinstance(final, dict) else None
    if stop is not None:
        rule = f"wind down at its next checkpoint boundary after the steer (checkpoint {stop}) and end superseded"
        want = "superseded"
    else:
        rule = "run to its end (no checkpoint boundary left before its last delta) and end completed"
        want = "completed"
    if judge_status and status != want:
        problems.append(f"{who}: steered while held, expected it to {rule}, observed status {status!r}")
    parsed = parse_markers(markers)
    held = next((n for n, m in enumerate(parsed) if isinstance(m, Held)), None)
    if held is None:
        problems.append(f"{who}: expected a `held` marker (it was steered while held), observed none")
    else:
        after = markers[held + 1 : held + 2]
        if parsed[held + 1 : held + 2] != [Released()]:
            problems.append(
                f"{who}: expected its held step to go on until released ('released' right after "
                f"{markers[held]!r}), observed {after or 'nothing'}: a steer must not stop a held turn, "
                "it winds down at its next checkpoint"
            )
    if stop is not None:
        if parsed[-2:] != [Checkpoint(stop), Interrupted()] or Done() in parsed:
            problems.append(
                f"{who}: expected its markers to end 'checkpoint {stop}', 'interrupted' (stopped at the "
                f"boundary, no delta after it, never done), observed ...{markers[-4:]}"
            )
        want_text = "".join(piece(1, i) for i in range(stop + 1))
        if isinstance(final, dict) and final.get("output") != want_text:
            problems.append(f"{who}: expected output {quoted(want_text)} (up to its boundary), observed {quoted(str(final.get('output')))}")
    elif Interrupted() in parsed or parsed[-1:] != [Done()]:
        problems.append(f"{who}: expected it to run to its end (marker 'done' last, never 'interrupted'), observed ...{markers[-4:]}")
    if frames:
        if stop is not None:
            indices = [payload(f).get("index") for f in frames if f.type == "invocation.delta"]
            tail = frames[-2:]
            if indices[-1:] != [stop] or len(tail) < 2 or tail[0].type != "invocation.checkpoint" or payload(tail[0]).get("index") != stop:
                problems.append(
                    f"{who}: expected its transcript to end with delta {stop}, invocation.checkpoint {{index: {stop}}}, "
                    f"then the terminal, observed ...{labels(frames[-3:])} (last delta {indices[-1:] or 'none'})"
                )
    return problems


def _predicted_end(script: dict[str, Any], last: bool) -> str:
    return "completed" if last or steer_stop(script) is None else "superseded"


def _live_prefix_problems(history: History, who: str, k: int, frames: list[SSEFrame]) -> list[str]:
    problems: list[str] = []
    for live in history.calls_named("steer_live"):
        if live.params.get("steer") != k or live.status != 200:
            continue
        got = events(live)
        if diverges_at(got, frames, event_id_of, same_event) is not None:
            problems.append(f"{who}: its live stream {labels(got, 12)} is not a prefix of its transcript {labels(frames, 12)}")
    return problems


def _steered_problems(history: History, record: SteeredInput, session: str | None, last: bool) -> list[str]:
    """One steered input: queued on POST, same session, exactly one handler start, one
    ``invocation.started`` (attempt 1, entry_mode resumed); the last input completed with the
    output its markers predict, every earlier one wound down by the next steer (``wind_down``)."""
    problems: list[str] = []
    k = record.index
    want = _predicted_end(record.script, last)
    if record.invocation_id is None:
        return [f"steered input {k}: no invocation id (POST refused)"]
    if record.post_status != "queued":
        problems.append(f"steered input {k}: expected the POST to answer status queued, observed {record.post_status!r}")
    final = record.final if isinstance(record.final, dict) else None
    if final is None:
        problems.append(f"steered input {k}: no final snapshot")
    else:
        if final.get("status") != want:
            problems.append(f"steered input {k}: expected final status {want}, observed {final.get('status')!r} (error {excerpt(final.get('error'), 120)})")
        if session is not None and final.get("session_id") != session:
            problems.append(f"steered input {k}: expected session_id {session!r}, observed {final.get('session_id')!r}")
        if final.get("entry_mode") not in (None, "resumed"):
            problems.append(f"steered input {k}: snapshot entry_mode {final.get('entry_mode')!r}, expected resumed")
    starts = [m for m in parse_markers(record.markers) if isinstance(m, Start)]
    if len(starts) != 1:
        problems.append(f"steered input {k}: expected exactly one handler start, observed {len(starts)} ({markers_excerpt(record.markers)})")
    full = transcript(history, "steer_replay", steer=k)
    frames = events(full) if full is not None else None
    if not last:
        problems += wind_down_problems(f"steered input {k}", record.markers, final, frames, record.script,
                                       judge_status=False)  # the status is judged above
    if full is None or frames is None:
        problems.append(f"steered input {k}: no 200 transcript (steer_replay)")
        return problems
    problems += [f"steered input {k}: {p}" for p in id_problems(frames, None, record.invocation_id)]
    problems += [f"steered input {k}: {p}" for p in terminal_problems(frames, f"invocation.{want}", must_end=True)]
    problems += _live_prefix_problems(history, f"steered input {k}", k, frames)
    started = started_frames(frames)
    if len(started) != 1 or payload(started[0]).get("entry_mode") != "resumed" or payload(started[0]).get("attempt") != 1:
        problems.append(
            f"steered input {k}: expected one invocation.started with entry_mode resumed, attempt 1; observed "
            + (", ".join(f"{label(f)} {excerpt({x: payload(f).get(x) for x in ('entry_mode', 'attempt')}, 80)}" for f in started) or "none")
        )
    deltas = as_int(record.script.get("deltas"))
    if last and final is not None and deltas is not None and starts:
        predicted = predict_output(record.markers, deltas).text
        if final.get("output") != predicted:
            problems.append(f"steered input {k}: expected output {quoted(predicted)}, observed {quoted(str(final.get('output')))}")
    return problems


def check_steering(history: History, expected: Any, cell: Cell) -> list[Violation]:
    """A chain of steers.  The first input, steered while held, winds down (``wind_down``): its
    held step goes on until released, then it ends ``superseded`` at its next checkpoint
    boundary, or ``completed`` when none is left before its last delta; each steered input was
    queued, ran exactly once as attempt 1 with ``entry_mode: resumed`` on the same session; the
    last completed with the output its markers predict, each earlier one wound down the same way
    when the next was steered; one turn at a time: when steered input k held, the turn before it
    was already terminal."""
    spec = expected if isinstance(expected, dict) else {}
    want = as_int(spec.get("inputs", 1)) or 1
    violations: list[Violation] = []

    def fail(message: str, evidence: str | None = None) -> None:
        violations.append(Violation("steering", message, evidence=evidence))

    final = history.final if isinstance(history.final, dict) else None
    full = transcript(history)
    end = _predicted_end(history.script, last=False)
    if full is not None:
        for p in terminal_problems(events(full), f"invocation.{end}", must_end=True):
            fail(f"first input transcript: {p}", labels(events(full)))
    for p in wind_down_problems("the first input", history.markers, final, events(full) if full else None, history.script):
        fail(p, markers_excerpt(history.markers))
    if len(history.steered) != want:
        fail(f"expected {want} steered input(s), observed {len(history.steered)}")
    for n, record in enumerate(history.steered):
        for p in _steered_problems(history, record, history.session_id, last=n == len(history.steered) - 1):
            fail(p, markers_excerpt(record.markers))
    for record in history.steered[:-1]:
        if not any(o.endswith(tuple(f"status {s!r}" for s in sorted(TERMINAL_STATUSES))) for o in record.observations):
            fail(
                f"one turn at a time: expected the turn before steered input {record.index} terminal once "
                f"input {record.index} ran, observed {record.observations or 'no observation'}"
            )
    return violations


# --------------------------------------------------------------------------------------
# queue
# --------------------------------------------------------------------------------------


def queue_observations(history: History, moment: str | None = None, holding: int | None = None) -> dict[int, HttpCall]:
    """The ``steer_get`` snapshots the executor took at one moment of a queue (``moment``, or
    while queued input ``holding`` held), by input index (0 = the first input)."""
    out: dict[int, HttpCall] = {}
    for call in history.calls_named("steer_get"):
        params = call.params if isinstance(call.params, dict) else {}
        index = params.get("steer")
        if not isinstance(index, int) or isinstance(index, bool):
            continue
        if moment is not None and params.get("moment") == moment and "holding" not in params:
            out[index] = call
        elif holding is not None and params.get("holding") == holding:
            out[index] = call
    return out


def _observed(call: HttpCall) -> tuple[str | None, Any]:
    params = call.params if isinstance(call.params, dict) else {}
    status = call.body.get("status") if isinstance(call.body, dict) else None
    return (status if isinstance(status, str) else None), params.get("starts")


def _queued_run_problems(history: History, record: SteeredInput, session: str | None) -> list[str]:
    """One queued input ran exactly once: one ``start`` marker (attempt 1, its id, from 0), one
    ``done``, no ``interrupted``; its transcript has ids 1..n without gap, exactly one
    ``invocation.started`` (attempt 1, ``entry_mode: resumed``, from 0) and exactly one terminal,
    ``invocation.completed``, last, carrying the output its markers predict, which the final
    snapshot (``completed``, attempt 1, resumed, same session) shows too; its live stream is a
    prefix of the transcript."""
    k = record.index
    who = f"queued input {k}"
    problems: list[str] = []
    iid = record.invocation_id
    if iid is None:
        return [f"{who}: the POST was refused (no invocation id): the input was never acknowledged"]
    starts = [str(m) for m in parse_markers(record.markers) if isinstance(m, Start)]
    if starts != [str(Start(1, iid, 0))]:
        problems.append(
            f"{who}: expected its handler to run exactly once (one marker 'start attempt=1 id={iid} from=0'), "
            f"observed {len(starts)} start marker(s): {starts[:4]}"
            + (" (delivered more than once)" if len(starts) > 1 else " (lost: never delivered)" if not starts else "")
        )
    parsed = parse_markers(record.markers)
    if parsed.count(Done()) != 1 or Interrupted() in parsed:
        problems.append(f"{who}: expected one 'done' and no 'interrupted' marker, observed ...{record.markers[-4:]}")
    final = record.final if isinstance(record.final, dict) else None
    if final is None:
        problems.append(f"{who}: no final snapshot (lost?)")
    else:
        got = {x: final.get(x) for x in ("status", "attempt", "entry_mode")}
        if got != {"status": "completed", "attempt": 1, "entry_mode": "resumed"}:
            problems.append(f"{who}: expected its final snapshot completed, attempt 1, entry_mode resumed; observed {got}")
        if session is not None and final.get("session_id") != session:
            problems.append(f"{who}: expected session_id {session!r}, observed {final.get('session_id')!r}")
    full = transcript(history, "steer_replay", steer=k)
    if full is None:
        problems.append(f"{who}: no 200 transcript (steer_replay)")
        return problems
    frames = events(full)
    problems += [f"{who}: {p}" for p in id_problems(frames, None, iid)]
    if frames and frames[0].event_id != 1:
        problems.append(f"{who}: expected its ids to start at 1, observed {label(frames[0])} first")
    problems += [f"{who}: {p}" for p in terminal_problems(frames, "invocation.completed", must_end=True)]
    started = started_frames(frames)
    shape = [{x: payload(f).get(x) for x in ("attempt", "entry_mode", "from")} for f in started]
    if shape != [{"attempt": 1, "entry_mode": "resumed", "from": 0}]:
        problems.append(
            f"{who}: expected exactly one invocation.started {{attempt: 1, entry_mode: resumed, from: 0}}, observed "
            + (", ".join(f"{label(f)} {excerpt(x, 80)}" for f, x in zip(started, shape)) or "none")
        )
    deltas = as_int(record.script.get("deltas"))
    if deltas is not None and starts and final is not None:
        predicted = predict_output(record.markers, deltas).text
        completed = [f for f in frames if f.type == "invocation.completed"]
        if final.get("output") != predicted:
            problems.append(f"{who}: expected output {quoted(predicted)}, observed {quoted(str(final.get('output')))}")
        if completed and payload(completed[-1]).get("output") != predicted:
            problems.append(f"{who}: expected {label(completed[-1])} to carry output {quoted(predicted)}, observed "
                            f"{quoted(str(payload(completed[-1]).get('output')))}")
    problems += _live_prefix_problems(history, who, k, frames)
    return problems


def check_queue(history: History, expected: Any, cell: Cell) -> list[Violation]:
    """``inputs`` inputs were POSTed on the first input's session while it was held, each
    acknowledged (200, its own invocation id, status ``queued``) and still waiting together (each
    snapshot ``queued``, no handler start) once all were POSTed, while the first turn was still
    ``in_progress``.  Then, whatever the path's fault: each ran exactly once (``_queued_run``),
    FIFO and one at a time (when queued input k held, the first input and every input before k
    were terminal, every input after k was ``queued`` and had never started).  Without a process
    fault the first input wound down by the steering rule (``wind_down``); with one, its end is
    what the cell's ``status`` and ``cursor`` say, and it never ran again (one ``start``)."""
    spec = expected if isinstance(expected, dict) else {}
    want = as_int(spec.get("inputs"))
    if want is None or want < 1:
        return [Violation("queue", f"expected queue.inputs to be an integer >= 1, got {excerpt(expected, 80)}")]
    violations: list[Violation] = []

    def fail(message: str, evidence: str | None = None) -> None:
        violations.append(Violation("queue", message, evidence=evidence))

    records = history.steered
    if [r.index for r in records] != list(range(1, want + 1)):
        fail(f"expected {want} queued input(s) POSTed on the first input's session, observed {len(records)} "
             f"(indices {[r.index for r in records]})")
    session = history.session_id
    for r in records:
        if r.invocation_id is not None and r.post_status != "queued":
            fail(f"queued input {r.index}: expected its POST to answer status queued (the session was busy), "
                 f"observed {r.post_status!r}")
    together = queue_observations(history, moment="queued")
    first_status, _ = _observed(together[0]) if 0 in together else (None, None)
    if 0 not in together:
        fail("no snapshot of the first input once the queue was POSTed")
    elif first_status != "in_progress":
        fail(f"expected the first input still in_progress (held) while the inputs were queued, observed {first_status!r}")
    for r in records:
        call = together.get(r.index)
        if call is None:
            fail(f"queued input {r.index}: no snapshot once all {want} inputs were POSTed")
            continue
        status, starts = _observed(call)
        if status != "queued" or starts != 0:
            fail(f"queued input {r.index}: expected it waiting (status queued, no handler start) once all {want} "
                 f"inputs were POSTed, observed status {status!r} and {starts!r} start marker(s)", call_summary(call))
    for r in records:
        for p in _queued_run_problems(history, r, session):
            fail(p, markers_excerpt(r.markers))
    for r in records:
        k = r.index
        seen = queue_observations(history, holding=k)
        if not seen:
            fail(f"FIFO: no snapshot while queued input {k} held (it never held)")
            continue
        for j in [0] + [x.index for x in records]:
            if j == k:
                continue
            who = "the first input" if j == 0 else f"queued input {j}"
            call = seen.get(j)
            if call is None:
                fail(f"FIFO: no snapshot of {who} while queued input {k} held")
                continue
            status, starts = _observed(call)
            moment = call.params.get("moment") if isinstance(call.params, dict) else None
            if j < k and status not in TERMINAL_STATUSES:
                fail(f"one at a time: at {moment!r}, {who} (ahead of input {k}) had status {status!r}; "
                     "expected it terminal", call_summary(call))
            if j > k and (status != "queued" or starts != 0):
                fail(f"FIFO: at {moment!r}, {who} (behind input {k}) had status {status!r} and {starts!r} "
                     "start marker(s); expected it still queued, never started", call_summary(call))
    from .process import process_faults

    if not process_faults(history):
        full = transcript(history)
        frames = events(full) if full is not None else None
        final = history.final if isinstance(history.final, dict) else None
        for p in wind_down_problems("the first input", history.markers, final, frames, history.script):
            fail(p, markers_excerpt(history.markers))
    else:
        parsed = parse_markers(history.markers)
        if history.attempts() != 1 or Done() in parsed or Released() in parsed:
            fail("the first input: expected it never to run again or past its hold after the fault (one 'start', "
                 f"no 'released', no 'done'), observed {markers_excerpt(history.markers)}")
    return violations


def final_text(history: History) -> str:
    """The final invocation output (the snapshot's ``output`` string, "" when absent)."""
    final = history.final if isinstance(history.final, dict) else {}
    out = final.get("output")
    return out if isinstance(out, str) else ""


__all__ = [
    "check_cursor",
    "check_entry_modes",
    "check_readers",
    "check_resume",
    "check_queue",
    "check_steering",
    "final_text",
    "steer_stop",
    "wind_down_problems",
]


# --------------------------------------------------------------------------------------
# cancel_queued
# --------------------------------------------------------------------------------------


def check_cancel_queued(history: History, expected: Any, cell: Cell) -> list[Violation]:
    """docs/protocol.md §7.5, §7.4: an input queued behind the held first turn and cancelled
    answered ``queued`` to its POST; the cancel answered 200 (202: §6) with ``cancelled``; every
    snapshot of it after the cancel is ``cancelled`` with ``attempt`` 0 and ``entry_mode``
    ``resumed``; its transcript is exactly one event, ``invocation.cancelled``; and it wrote no
    marker (its handler never ran)."""
    if expected is not True:
        return [Violation("cancel_queued", f"expected cancel_queued must be true, got {expected!r}")]
    record = history.cancelled_queued
    if record is None or record.invocation_id is None:
        return [Violation("cancel_queued", "no input was queued and cancelled: there is nothing to judge")]
    problems: list[str] = []
    evidence: list[str] = []
    if record.post_status != "queued":
        problems.append(f"the input POSTed behind the held turn answered status {record.post_status!r}, expected 'queued'")
    cancels = history.calls_named("queued_cancel")
    for call in cancels:
        evidence.append(call_summary(call))
        if call.status not in (200, 202) or (call.status == 200 and call_status(call) != "cancelled"):
            problems.append(f"the cancel of the queued input answered {call.status} status {call_status(call)!r}, "
                            "expected 200 (or 202) with status 'cancelled'")
    if not cancels:
        problems.append("no cancel of the queued input was sent")
    for call in history.calls_named("queued_get"):
        body = call.body if isinstance(call.body, dict) else {}
        got = (call.status, body.get("status"), body.get("attempt"), body.get("entry_mode"))
        if got != (200, "cancelled", 0, "resumed"):
            problems.append(f"a snapshot of the cancelled queued input is (http, status, attempt, entry_mode) = {got}, "
                            "expected (200, 'cancelled', 0, 'resumed')")
            evidence.append(call_summary(call))
    replay = transcript(history, "queued_replay")
    if replay is None:
        problems.append("no transcript of the cancelled queued input (queued_replay answered no 200 event stream)")
    else:
        frames = events(replay)
        if [f.type for f in frames] != ["invocation.cancelled"]:
            problems.append(f"its transcript must be exactly one invocation.cancelled, observed: {labels(frames)}")
    if record.markers:
        problems.append(f"its handler ran: it wrote markers ({len(record.markers)} line(s), first {record.markers[0]!r})")
        evidence.append(markers_excerpt(record.markers))
    return [Violation("cancel_queued", p, evidence="\n".join(evidence)[:2000]) for p in problems]


def call_status(call: HttpCall) -> Any:
    """The ``status`` of a JSON answer, or None."""
    return call.body.get("status") if isinstance(call.body, dict) else None
