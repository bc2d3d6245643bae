"""Event-stream expectations: ``replay`` (every ``replay`` call's events) and ``stream`` (the
create call's own live stream).

Responses-profile rules these encode (docs/contracts.md Sources: B-rules, streaming clauses): cursors are
the JSON ``sequence_number`` (B9, B27); a replay after ``N`` holds only events with seq > N (B4);
exactly one terminal event, last (B26); one ``response.created`` per stream, first, at seq 0 or 1
(B9 says 0, the spec's worked example 1: both are accepted, docs/protocol.md §6);
a recovered attempt's first client-visible event is a ``response.in_progress`` reset carrying the
corrected output (clause 3); pre-crash events keep their ids and payloads (clause 4, B23); B8
event order; the terminal event carries the response in its final status (B37), e.g. a cancelled
response's stream ends with ``response.failed`` whose ``response.status`` is ``cancelled`` (B11;
a contract accepts ``response.cancelled`` too by listing both terminal types).

Gaps: §2.2 clause 4 allows gaps in the numbering, so ``gap_free`` judges two rules apart: an event
that another read of the response saw (the live stream, another replay) and that this replay
skips is lost data (MUST); a number skipped that no read ever saw is only a SHOULD finding
(``Violation.level``), since the documents allow it.
"""

from __future__ import annotations

import re
from typing import Any

from conformance.history import HttpCall, History, SSEFrame, Violation
from conformance.model import Cell
from conformance.streams import (
    after_terminal,
    by_cursor,
    created_problem,
    cursor_order,
    cursors,
    event_frames,
    first_cursor,
    lost,
    read_cursor,
    rewritten,
    same_payload,
    skipped,
    terminal_cursors,
    terminals,
)

from ._util import (
    TERMINAL_EVENTS,
    allowed_non_200,
    as_int,
    call_summary,
    excerpt,
    frame_label,
    frames_excerpt,
    output_text,
    quoted,
)
from .output import AttemptStart, markers_excerpt, predict_output, script_deltas
from .process import process_faults

REPLAY_OPTIONS = (
    "after", "gap_free", "single_created", "reset_event", "keeps_live", "terminal", "terminal_status",
)
STREAM_OPTIONS = ("terminal", "terminal_status", "order", "single_created")
ASSERTING_WHEN_PRESENT = frozenset({"terminal", "terminal_status"})
"""Options that assert something whatever their value (``terminal: null`` asserts no terminal)."""
ASSERTING_WHEN_TRUE = frozenset({"order", "single_created", "gap_free", "reset_event", "keeps_live"})
"""Options that assert something only when on (``false`` turns the check off)."""


def asserting_options(expected: Any) -> list[str]:
    """The options of a ``stream`` or ``replay`` expectation that make its checker assert
    something a conforming stream could fail.  ``after`` only says which replays to make, and
    an option set to ``false`` turns its check off, so neither counts (the parser's depth gate
    uses this: an expectation with no asserting option is no expectation)."""
    if not isinstance(expected, dict):
        return []
    return [
        k
        for k, v in expected.items()
        if k in ASSERTING_WHEN_PRESENT or (k in ASSERTING_WHEN_TRUE and v not in (False, None, ""))
    ]


FIRST_SEQS = (0, 1)
"""Where a stream's numbering may start (``response.created``'s seq): B9 says 0, the spec's
worked example 1; docs/protocol.md §6 accepts both."""

GAP_SOURCE = "gaps are allowed by §2.2 clause 4 (docs/protocol.md §6)"

OUTPUT_EVENT_PREFIXES = ("response.output_item.", "response.content_part.", "response.output_text.")
ATTEMPT_RE = re.compile(r"a(\d+):d\d+ ")


# --------------------------------------------------------------------------------------
# stream-shape helpers (pure, return problem strings)
# --------------------------------------------------------------------------------------


def seq_problems(frames: list[SSEFrame], after: int | None = None) -> list[str]:
    """Sequence numbers present and ints, strictly increasing, no duplicates, all > ``after``."""
    order = cursor_order(frames, after=after)
    problems: list[str] = []
    if order.missing:
        problems.append(
            f"{len(order.missing)} frame(s) without an integer sequence_number: "
            + ", ".join(f"{frame_label(f)} data={quoted(f.data, 60)}" for f in order.missing[:5])
        )
    if order.duplicates:
        problems.append(
            "duplicate sequence_number: "
            + "; ".join(f"{frame_label(a)} and {frame_label(b)}" for a, b in order.duplicates[:5])
        )
    if order.decreases:
        problems.append(
            "sequence_number decreases: "
            + "; ".join(f"{frame_label(a)} then {frame_label(b)}" for a, b in order.decreases[:5])
        )
    if order.early:
        problems.append(f"event(s) at or before the cursor {after}: {frames_excerpt(order.early, 10)}")
    return problems


def terminal_kinds(want: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """The terminal event types a ``terminal`` option allows: one type, or a list of types when
    the documents allow several (a cancel: ``response.failed`` or ``response.cancelled``)."""
    if want is None:
        return ()
    if isinstance(want, (list, tuple)):
        return tuple(str(w) for w in want)
    return (str(want),)


def terminal_problems(frames: list[SSEFrame], want: str | list[str] | None = None) -> list[str]:
    """Exactly one terminal event, and it is the last frame; of a type ``want`` allows when given
    (``want`` itself counts as terminal, e.g. a standalone ``error`` event)."""
    allowed = terminal_kinds(want)
    shown = " or ".join(allowed)
    kinds = TERMINAL_EVENTS | set(allowed)
    found = terminals(frames, kinds)
    if not found:
        last = frame_label(frames[-1]) if frames else "no frames"
        return [f"expected one terminal event{f' ({shown})' if allowed else ''}, observed none (last: {last})"]
    problems: list[str] = []
    if len(found) > 1:
        problems.append(
            f"expected exactly one terminal event, observed {len(found)}: "
            + ", ".join(frame_label(f) for _, f in found)
        )
    trailing = after_terminal(frames, kinds)
    if trailing is not None:
        terminal, after = trailing
        problems.append(
            f"terminal event {frame_label(terminal)} is not the last frame; after it: "
            f"{frames_excerpt(after, 10)}"
        )
    if allowed and any(f.type not in allowed for _, f in found):
        problems.append(
            f"expected terminal {shown}, observed "
            + ", ".join(frame_label(f) for _, f in found)
        )
    return problems


def terminal_status_problems(frames: list[SSEFrame], want: str) -> list[str]:
    """The last event is a terminal event whose embedded ``response.status`` is ``want`` (B37:
    the terminal event carries the definitive response; B11: a cancelled response's stream ends
    with ``response.failed`` carrying ``status: cancelled``)."""
    if not frames:
        return [f"expected the last event to carry response.status {want!r}, observed no events"]
    last = frames[-1]
    label = frame_label(last)
    if last.type not in TERMINAL_EVENTS:
        return [
            f"expected a terminal event last, carrying response.status {want!r}; the last event "
            f"is {label}"
        ]
    payload = last.json if isinstance(last.json, dict) else {}
    response = payload.get("response")
    if not isinstance(response, dict):
        seen = "none" if response is None else f"{type(response).__name__} {_shown(response)}"
        return [
            f"expected terminal {label} to carry a response object with status {want!r}, "
            f"observed {seen} (data {quoted(last.data, 120)})"
        ]
    status = response.get("status")
    if status != want:
        return [
            f"expected terminal {label} to carry response.status {want!r}, observed "
            f"{_shown(status) if 'status' in response else 'no status key'}"
        ]
    return []


def _shown(value: Any) -> str:
    return quoted(value, 60) if isinstance(value, str) else excerpt(value, 60)


def no_terminal_problems(frames: list[SSEFrame]) -> list[str]:
    """No terminal event at all (``terminal: null``: the stream was cut, or is still open)."""
    found = [f for _, f in terminals(frames, TERMINAL_EVENTS)]
    if found:
        return [f"expected no terminal event, observed {frames_excerpt(found, 5)}"]
    return []


def created_problems(frames: list[SSEFrame], from_start: bool) -> list[str]:
    """From the start: exactly one ``response.created``, at seq 0 or 1 (``FIRST_SEQS``).  After a
    cursor: none, unless the cursor lies before the stream's start (then it opens the read)."""
    problem = created_problem(frames, from_start, "response.created", FIRST_SEQS)
    if problem is None:
        return []
    kind, created = problem
    if kind == "count":
        return [
            f"expected exactly one response.created, observed {len(created)}"
            + (f": {frames_excerpt(created, 10)}" if created else "")
        ]
    if kind == "cursor":
        return [f"expected response.created at seq 0 or 1, observed {frame_label(created[0])}"]
    return [f"expected no response.created after a cursor, observed {frames_excerpt(created, 10)}"]


def stream_first_seq(frames: list[SSEFrame]) -> int:
    """Where a read from the start is numbered from: its first event's seq when that is one of
    ``FIRST_SEQS``, else 0."""
    return first_cursor(frames, FIRST_SEQS)


def gap_problems(frames: list[SSEFrame], first: int, excused: frozenset[int] = frozenset()) -> list[str]:
    """The sequence numbers are exactly ``first..max`` (contiguous, nothing missing), leaving out
    the seqs in ``excused`` (already reported as lost).  Only a SHOULD rule on its own
    (``GAP_SOURCE``); ``lost_problems`` is the MUST half."""
    missing = skipped(frames, first, excused=excused)
    if missing:
        shown = ", ".join(str(s) for s in missing[:15]) + (" ..." if len(missing) > 15 else "")
        return [
            f"expected contiguous sequence numbers {first}..{max(cursors(frames))}, observed gaps at {shown}"
        ]
    return []


def lost_seqs(frames: list[SSEFrame], low: int, seen_elsewhere: dict[int, str]) -> list[int]:
    """The seqs another read saw inside this read's range ``(low, max seq]`` that it skips."""
    seqs = cursors(frames)
    return lost(seqs, seen_elsewhere, low, max(seqs)) if seqs else []


def lost_problems(frames: list[SSEFrame], low: int, seen_elsewhere: dict[int, str]) -> list[str]:
    """Events another read of the response saw (``seen_elsewhere``: seq -> where) inside this
    read's range ``(low, max seq]`` that this read skips: lost data, whatever the numbering."""
    lost = lost_seqs(frames, low, seen_elsewhere)
    if not lost:
        return []
    high = max(f.seq for f in frames if f.seq is not None)
    shown = "; ".join(f"{s} ({seen_elsewhere[s]})" for s in lost[:10]) + (" ..." if len(lost) > 10 else "")
    return [f"expected every event another read saw up to seq {high}, observed {len(lost)} missing: {shown}"]


def order_problems(frames: list[SSEFrame]) -> list[str]:
    """B8 order: ``response.created`` first (seq 0 or 1); ``response.in_progress`` before any output
    event; per output index item.added < content_part.added < deltas < output_text.done <
    content_part.done < item.done; terminal last; sequence numbers strictly increasing.  A
    ``response.in_progress`` after the first is a reset (client rule): output slots start over."""
    problems = seq_problems(frames)
    if not frames:
        return ["expected events, observed an empty stream"]
    first = frames[0]
    if first.type != "response.created" or first.seq not in FIRST_SEQS:
        problems.append(f"expected response.created (seq 0 or 1) first, observed {frame_label(first)}")
    seen_in_progress = False
    items: dict[int, str] = {}  # output_index -> added | done
    parts: dict[tuple[int, int], int] = {}  # (output_index, content_index) -> phase 1..4
    phase_names = {1: "content_part.added", 2: "output_text.delta", 3: "output_text.done", 4: "content_part.done"}
    for position, frame in enumerate(frames):
        kind = frame.type or ""
        label = frame_label(frame)
        if kind in TERMINAL_EVENTS and position != len(frames) - 1:
            problems.append(f"terminal {label} is not last")
        if kind == "response.in_progress":
            if seen_in_progress:
                items.clear()
                parts.clear()
            seen_in_progress = True
            continue
        if not kind.startswith(OUTPUT_EVENT_PREFIXES):
            continue
        if not seen_in_progress:
            problems.append(f"{label} before response.in_progress")
            seen_in_progress = True  # report once
        payload = frame.json if isinstance(frame.json, dict) else {}
        oi = as_int(payload.get("output_index"))
        if oi is None:
            problems.append(f"{label} has no output_index")
            continue
        ci = as_int(payload.get("content_index"))
        if ci is None:
            ci = 0
        state = items.get(oi)
        if kind == "response.output_item.added":
            if state is not None:
                problems.append(f"{label}: output_index {oi} added twice")
            items[oi] = "added"
            continue
        if state is None:
            problems.append(f"{label} before response.output_item.added for output_index {oi}")
            items[oi] = "added"
        elif state == "done":
            problems.append(f"{label} after response.output_item.done for output_index {oi}")
            continue
        if kind == "response.output_item.done":
            open_parts = [
                f"content_index {c} at {phase_names[p]}"
                for (o, c), p in sorted(parts.items())
                if o == oi and p != 4
            ]
            if open_parts:
                problems.append(f"{label} before content_part.done ({', '.join(open_parts)})")
            items[oi] = "done"
            continue
        key = (oi, ci)
        phase = parts.get(key, 0)
        if kind == "response.content_part.added":
            if phase:
                problems.append(f"{label}: content part {oi}/{ci} added twice")
            parts[key] = 1
        elif kind == "response.output_text.delta":
            if phase == 0:
                problems.append(f"{label} before content_part.added for {oi}/{ci}")
            elif phase > 2:
                problems.append(f"{label} after {phase_names[phase]} for {oi}/{ci}")
            parts[key] = max(phase, 2)
        elif kind == "response.output_text.done":
            if phase == 0:
                problems.append(f"{label} before content_part.added for {oi}/{ci}")
            elif phase > 2:
                problems.append(f"{label} after {phase_names[phase]} for {oi}/{ci}")
            parts[key] = max(phase, 3)
        elif kind == "response.content_part.done":
            if phase != 3:
                problems.append(
                    f"{label} before output_text.done for {oi}/{ci}"
                    if phase < 3
                    else f"{label}: content part {oi}/{ci} done twice"
                )
            parts[key] = 4
    return problems


# --------------------------------------------------------------------------------------
# replay
# --------------------------------------------------------------------------------------


def replay_cursor(call: HttpCall) -> int | None:
    """The call's ``starting_after`` as an int, or None for a replay from the start."""
    return read_cursor(call, "starting_after")


def _from_start(call: HttpCall) -> bool:
    cursor = replay_cursor(call)
    return not _malformed_cursor(call) and (cursor is None or cursor < 0)


def _malformed_cursor(call: HttpCall) -> bool:
    """A cursor sent that is no integer (e.g. ``starting_after=abc``)."""
    params = call.params if isinstance(call.params, dict) else {}
    return params.get("starting_after") is not None and replay_cursor(call) is None


def _label(call: HttpCall, n: int) -> str:
    label = call.params.get("cursor_label") if isinstance(call.params, dict) else None
    cursor = replay_cursor(call)
    if label is None:
        label = "start" if cursor is None else cursor
    where = f"after {label}" if str(label) != "start" else "from start"
    if cursor is not None and str(label) != str(cursor):
        where += f" ({cursor})"
    return f"replay #{n} {where}"


def _known_terminal_seq(history: History) -> int | None:
    """The terminal event's seq as seen anywhere (live stream or any replay)."""
    seqs = terminal_cursors((f for c in history.calls if c.name in ("create", "replay") for f in c.frames), TERMINAL_EVENTS)
    return max(seqs) if seqs else None


def _seen_elsewhere(history: History, call: HttpCall, *, live: bool) -> dict[int, str]:
    """seq -> where, for every event seen by a read of the response other than ``call``: the
    other replays, and the live stream when ``live`` (``keeps_live`` judges it otherwise)."""
    seen: dict[int, str] = {}
    for n, other in enumerate(history.calls_named("replay"), start=1):
        if other is call or other.status != 200:
            continue
        for frame in event_frames(other.frames):
            if frame.seq is not None:
                seen.setdefault(frame.seq, f"{frame_label(frame)} in {_label(other, n)}")
    if live:
        for frame in event_frames(history.live_frames()):
            if frame.seq is not None:
                seen.setdefault(frame.seq, f"{frame_label(frame)} live")
    return seen


def payload_diff(live: SSEFrame, replayed: SSEFrame) -> str:
    """The fields that differ between two frames' payloads: ``key: live -> replay``."""
    a, b = live.json, replayed.json
    if not isinstance(a, dict) or not isinstance(b, dict):
        return f"live {quoted(live.data, 140)} vs replay {quoted(replayed.data, 140)}"
    def show(value: Any) -> str:
        return quoted(value, 120) if isinstance(value, str) else excerpt(value, 120)

    diffs = [
        f"{key}: {show(a.get(key, '<absent>'))} -> {show(b.get(key, '<absent>'))}"
        for key in sorted(set(a) | set(b), key=str)
        if a.get(key, "<absent>") != b.get(key, "<absent>")
    ]
    return "; ".join(diffs) if diffs else "payloads equal"


def _pre_fault_cursor(history: History) -> tuple[int | None, str]:
    """The highest seq the client saw before the first process fault, and where it came from."""
    faults = process_faults(history)
    if not faults:
        return None, "no process fault recorded"
    fault = faults[0]
    if fault.last_seq_before is not None:
        return fault.last_seq_before, f"faults[0].last_seq_before={fault.last_seq_before}"
    seen = [
        f.seq
        for f in history.live_frames()
        if f.seq is not None and f.t <= fault.t and f.incarnation == fault.incarnation
    ]
    if seen:
        return max(seen), f"highest live seq received before the fault (t<={fault.t})"
    return None, "fault has no last_seq_before and no live frame precedes it"


def _reset_attempt(post: list[SSEFrame], index: int) -> int | None:
    """The attempt a reset event belongs to: the ``aN:`` of the first delta after it (before
    the next reset)."""
    for frame in post[index + 1 :]:
        if frame.type == "response.in_progress":
            return None
        if frame.type == "response.output_text.delta":
            payload = frame.json if isinstance(frame.json, dict) else {}
            match = ATTEMPT_RE.match(str(payload.get("delta", "")))
            if match:
                return int(match.group(1))
    return None


def _attempts_mentioned(frame: SSEFrame) -> set[int]:
    """Attempt numbers whose delta text (``aN:dI``) appears anywhere in the frame's data."""
    return {int(m.group(1)) for m in ATTEMPT_RE.finditer(frame.data or "")}


def reset_problems(
    frames: list[SSEFrame],
    cursor: int,
    starts: list[AttemptStart],
    pinned: str | None = None,
) -> list[str]:
    """After the pre-fault cursor: a ``response.in_progress`` reset comes before every event of
    the recovered attempt, and each reset's ``response.output`` text is the checkpointed text
    its attempt resumed from (``pinned``, when the contract pins it, for the last reset).

    The cursor is what the client saw live before the fault, which can lag what the server had
    persisted (frames in flight, item-done events after a held delta, a fault after N frames
    while the handler ran on).  So events between the cursor and the reset are accepted when
    they are the crashed attempt's own unseen tail: no terminal, no ``response.created``, and
    no text of a recovery attempt (delta texts name their attempt).  Any of those before the
    reset is a violation."""
    post = [f for f in frames if f.seq is not None and f.seq > cursor]
    resets = [i for i, f in enumerate(post) if f.type == "response.in_progress"]
    if not resets:
        before = [f for f in frames if f.type == "response.in_progress"]
        extra = f"; response.in_progress only at/before the cursor: {frames_excerpt(before, 5)}" if before else ""
        return [
            f"expected a reset response.in_progress with seq > {cursor}, observed none; "
            f"post-crash events: {frames_excerpt(post, 12) or 'none'}{extra}"
        ]
    problems: list[str] = []
    recoveries = starts[1:]
    first_recovery = recoveries[0].number if recoveries else 2
    tail = post[: resets[0]]
    ahead = [
        f
        for f in tail
        if f.type in TERMINAL_EVENTS
        or f.type == "response.created"
        or any(n >= first_recovery for n in _attempts_mentioned(f))
    ]
    if tail and not ahead:
        # Events without attempt text (item.added, part.added) must still continue the crashed
        # attempt legally: e.g. a second item.added at the same index before the reset is the
        # recovered attempt's, emitted too early.
        pre = [f for f in frames if f.seq is not None and f.seq <= cursor]
        tail_labels = {frame_label(f) for f in tail}
        illegal = [p for p in order_problems(pre + tail) if any(p.startswith(t) or f" {t}" in p for t in tail_labels)]
        if illegal:
            ahead = [f for f in tail if any(frame_label(f) in p for p in illegal)]
    if ahead:
        problems.append(
            f"expected the reset response.in_progress to be the first event after seq {cursor}"
            f" of the recovered attempt, observed {frames_excerpt(ahead, 8)} before {frame_label(post[resets[0]])}"
        )
    if not recoveries:
        problems.append(
            "expected a recovery attempt in the markers to predict the reset content, observed "
            f"{len(starts)} start marker(s)"
        )
        return problems
    by_number = {s.number: s for s in recoveries}
    for k, i in enumerate(resets):
        frame = post[i]
        last = k == len(resets) - 1
        attempt = _reset_attempt(post, i)
        if attempt is None or attempt not in by_number:
            start = recoveries[-1] if last else recoveries[min(k, len(recoveries) - 1)]
        else:
            start = by_number[attempt]
        payload = frame.json if isinstance(frame.json, dict) else {}
        response = payload.get("response")
        if not isinstance(response, dict) or not isinstance(response.get("output"), list):
            problems.append(
                f"reset {frame_label(frame)} has no response.output array (data {quoted(frame.data, 100)})"
            )
            continue
        observed = output_text(response["output"])
        predicted = start.snapshot_text
        if observed != predicted:
            problems.append(
                f"reset {frame_label(frame)} for attempt {start.number} (from d{start.start_from}): "
                f"expected response.output text {quoted(predicted)} (the checkpoints in the "
                f"markers), observed {quoted(observed)}"
            )
        if last and pinned is not None:
            if observed != pinned:
                problems.append(
                    f"reset {frame_label(frame)}: expected response.output text {quoted(pinned)} "
                    f"(pinned by the contract), observed {quoted(observed)}"
                )
            if predicted != pinned:
                problems.append(
                    f"the markers' checkpoints predict reset text {quoted(predicted)} for attempt "
                    f"{start.number}, the contract pins {quoted(pinned)}: the handler did not "
                    "checkpoint as the script says"
                )
    return problems


def check_replay(history: History, expected: Any, cell: Cell) -> list[Violation]:
    """Every ``replay`` call: seqs ints, strictly increasing, > cursor; exactly one terminal,
    last (an empty replay after a cursor at/after the terminal is fine, B4); plus the options:
    ``after`` (one replay per listed cursor label), ``terminal``, ``terminal_status`` (the last
    event's ``response.status``; not judged on an empty replay past the end), ``single_created``,
    ``gap_free``, ``reset_event`` and ``keeps_live`` (see module docs / docs/contracts.md)."""
    if expected is None or expected is True:
        expected = {}
    violations = _option_problems("replay", expected, REPLAY_OPTIONS)
    if not isinstance(expected, dict):
        return violations
    calls = history.calls_named("replay")
    if not calls:
        return violations + [Violation("replay", "expected a `replay` call; none was made")]

    after = expected.get("after") or []
    if not isinstance(after, (list, tuple)):
        after = [after]
    labels = [
        str(c.params.get("cursor_label", "start" if replay_cursor(c) is None else replay_cursor(c)))
        for c in calls
    ]
    for cursor in after:
        if str(cursor) not in labels:
            violations.append(
                Violation(
                    "replay",
                    f"expected a replay after cursor {cursor!r}; none was made",
                    evidence=f"replay cursors made: {labels}",
                )
            )

    allowed = allowed_non_200(cell, "replay")
    terminal_seq = _known_terminal_seq(history)
    want_terminal = expected.get("terminal")
    ok_calls: list[tuple[int, HttpCall, list[SSEFrame]]] = []
    for n, call in enumerate(calls, start=1):
        label = _label(call, n)
        if call.status is None:
            violations.append(
                Violation(
                    "replay",
                    f"expected {label} to answer 200 with events, observed a transport error: "
                    f"{call.error or call.ended}",
                    evidence=call_summary(call),
                )
            )
            continue
        if call.status != 200:
            if call.status not in allowed:
                violations.append(
                    Violation(
                        "replay",
                        f"expected {label} to answer 200 with events, observed {call.status}",
                        evidence=call_summary(call),
                    )
                )
            continue
        frames = event_frames(call.frames)
        if _malformed_cursor(call):
            violations.append(
                Violation(
                    "replay",
                    f"{label}: expected a malformed cursor "
                    f"{call.params.get('starting_after')!r} to be refused, observed 200",
                    evidence=call_summary(call),
                )
            )
            continue
        ok_calls.append((n, call, frames))
        cursor = replay_cursor(call)
        from_start = _from_start(call)
        problems = seq_problems(frames, None if from_start else cursor)
        past_end = (
            not frames and not from_start and terminal_seq is not None and cursor >= terminal_seq
        )
        if "terminal" in expected and want_terminal is None:
            problems += no_terminal_problems(frames)
        elif not frames and not from_start and terminal_seq is None:
            problems.append(
                f"expected events or proof that cursor {cursor} is past the end, observed an "
                "empty replay and no terminal sequence number in any other stream"
            )
        elif not past_end:
            problems += terminal_problems(frames, want_terminal)
        if "terminal_status" in expected and not past_end:
            problems += terminal_status_problems(frames, expected["terminal_status"])
        if expected.get("single_created"):
            problems += created_problems(frames, from_start)
        evidence = (
            f"{label}: {frames_excerpt(frames, 30) or f'no frames ({call.content_type})'} (ended {call.ended})"
        )
        if expected.get("gap_free"):
            low = -1 if from_start else cursor
            elsewhere = _seen_elsewhere(history, call, live=not expected.get("keeps_live"))
            problems += lost_problems(frames, low, elsewhere)
            excused = frozenset(lost_seqs(frames, low, elsewhere))
            if expected.get("keeps_live"):  # those keeps_live reports as lost
                excused |= {f.seq for f in event_frames(history.live_frames()) if f.seq is not None}
            first = stream_first_seq(frames) if from_start else cursor + 1
            for gap in gap_problems(frames, first, excused):
                violations.append(
                    Violation("replay", f"{label}: {gap} ({GAP_SOURCE})", evidence=evidence, level="SHOULD")
                )
        for problem in problems:
            violations.append(Violation("replay", f"{label}: {problem}", evidence=evidence))

    from_start_calls = [(n, c, f) for n, c, f in ok_calls if _from_start(c)]
    needs_start = [k for k in ("reset_event", "keeps_live") if expected.get(k)]
    if needs_start and not from_start_calls:
        violations.append(
            Violation(
                "replay",
                f"expected a 200 replay from the start to judge {', '.join(needs_start)}; none was made",
                evidence=f"replay cursors made: {labels}",
            )
        )
        return violations

    if expected.get("reset_event"):
        cursor, source = _pre_fault_cursor(history)
        if cursor is None:
            violations.append(
                Violation(
                    "replay",
                    f"expected a reset event after the crash, but cannot judge reset without "
                    f"pre-fault cursor ({source})",
                )
            )
        else:
            deltas = script_deltas(history, cell) or 0
            starts = predict_output(history.markers, deltas).starts
            pinned = expected["reset_event"] if isinstance(expected["reset_event"], str) else None
            for n, call, frames in from_start_calls:
                for problem in reset_problems(frames, cursor, starts, pinned):
                    violations.append(
                        Violation(
                            "replay",
                            f"{_label(call, n)}: {problem} (pre-fault cursor from {source})",
                            evidence=f"markers: {markers_excerpt(history.markers)}; frames: "
                            f"{frames_excerpt(frames, 30)}",
                        )
                    )

    if expected.get("keeps_live"):
        live = [f for f in event_frames(history.live_frames()) if f.seq is not None]
        if not live:
            violations.append(
                Violation(
                    "replay",
                    "expected the replay to keep the live stream's events, but the live stream "
                    "has no frames with sequence numbers to compare",
                )
            )
        for n, call, frames in ok_calls:
            seqs = cursors(frames)
            if not seqs:
                continue
            low = -1 if _from_start(call) else replay_cursor(call)
            high = max(seqs)
            live_by_seq = by_cursor(f for f in live if low < f.seq <= high)  # type: ignore[operator]
            missing = lost(seqs, live_by_seq, low, high)  # type: ignore[arg-type]
            lost_frames = [f for f in live if f.seq in missing]
            changed = rewritten(live_by_seq, frames, same=same_payload)  # type: ignore[arg-type]
            label = _label(call, n)
            if lost_frames:
                violations.append(
                    Violation(
                        "replay",
                        f"{label}: expected every live event up to seq {high} in the replay, "
                        f"observed {len(lost_frames)} lost: {frames_excerpt(lost_frames, 10)}",
                        evidence=f"replay seqs: {sorted(set(seqs))[:40]}",
                    )
                )
            for live_frame, replay_frame in changed[:5]:
                violations.append(
                    Violation(
                        "replay",
                        f"{label}: expected {frame_label(live_frame)} replayed unchanged, observed "
                        f"a rewritten payload ({frame_label(replay_frame)})",
                        evidence=payload_diff(live_frame, replay_frame),
                    )
                )
    return violations


# --------------------------------------------------------------------------------------
# live stream
# --------------------------------------------------------------------------------------


def _option_problems(check: str, expected: Any, known: tuple[str, ...]) -> list[Violation]:
    """An options expectation must be a mapping of known option names."""
    if not isinstance(expected, dict):
        return [Violation(check, f"expected a mapping of {check} options, got {excerpt(expected, 100)}")]
    unknown = [k for k in expected if k not in known]
    if unknown:
        return [Violation(check, f"unknown {check} option(s) {unknown} (known: {', '.join(known)})")]
    return []


def check_stream(history: History, expected: Any, cell: Cell) -> list[Violation]:
    """The create call's own frames: ``terminal`` (null: no terminal frame; T: exactly one,
    type T, last), ``terminal_status`` (the last event is terminal and its ``response.status``
    is this), ``order`` (B8), ``single_created``."""
    violations = _option_problems("stream", expected, STREAM_OPTIONS)
    if not isinstance(expected, dict):
        return violations
    creates = history.calls_named("create")
    if not creates:
        return violations + [Violation("stream", "expected a `create` call with a live stream; none was made")]
    if not any(c.is_sse or c.frames for c in creates):
        return violations + [
            Violation(
                "stream",
                "expected the `create` call to answer an event stream, observed "
                + "; ".join(call_summary(c) for c in creates),
            )
        ]
    frames = event_frames(history.live_frames())
    evidence = f"live: {frames_excerpt(frames, 30) or 'no frames'} (ended {creates[-1].ended})"
    problems: list[str] = []
    if "terminal" in expected:
        want = expected["terminal"]
        if want is None:
            problems += no_terminal_problems(frames)
        else:
            problems += terminal_problems(frames, want)
    if "terminal_status" in expected:
        problems += terminal_status_problems(frames, expected["terminal_status"])
    if expected.get("order"):
        problems += [f"B8 order: {p}" for p in order_problems(frames)]
    if expected.get("single_created"):
        problems += created_problems(frames, from_start=True)
    return violations + [Violation("stream", f"live stream: {p}", evidence=evidence) for p in problems]
