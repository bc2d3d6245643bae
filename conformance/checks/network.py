"""Network-fault expectations: ``reconnect`` (what the client saw, resuming by cursor after the
fault, is the transcript) and ``unblocked`` (a slow reader did not hold the run back), and the
evidence that a network fault really happened (``net_fault_evidence``, used by ``evidence``)."""

from __future__ import annotations

import json
from typing import Any

from conformance.history import (
    FaultRecord,
    History,
    HttpCall,
    SSEFrame,
    Violation,
)
from conformance.model import NET_FAULTS, Cell
from conformance.profiles import profile_of
from conformance.streams import by_cursor, contiguous_from, cursor_order, lost, rewritten, terminals


def _live_call(history: History) -> HttpCall | None:
    calls = history.calls_named(profile_of(history.profile).live_call)
    return calls[0] if calls else None


def _transcript(history: History) -> HttpCall | None:
    """The replay from the start made after the end (the server's own record of the run)."""
    for call in history.calls_named("replay"):
        if call.status == 200 and call.params.get("cursor_label", "start") == "start":
            return call
    return None


def _show(frame: SSEFrame) -> str:
    return frame.raw.strip().replace("\n", "\\n")[:160]


def check_reconnect(history: History, expected: Any, cell: Cell) -> list[Violation]:
    """Every frame of the faulted live connection is a whole event (a partial frame is never
    counted); a reconnect by cursor answered 200 when the live stream broke before its terminal;
    the live frames followed by the reconnects' frames have strictly increasing cursors, no
    duplicate, exactly the transcript's cursors and payloads (invocations: ids without a gap), and
    one terminal event, last, of ``expected['terminal']``."""
    want = expected.get("terminal") if isinstance(expected, dict) else None
    profile = profile_of(history.profile)
    terminal_types = profile.terminal_events
    out: list[Violation] = []

    def fail(message: str, evidence: str | None = None) -> None:
        out.append(Violation("reconnect", message, evidence=evidence))

    live = _live_call(history)
    if live is None:
        return [Violation("reconnect", "expected a live stream, observed none")]
    for frame in live.frames:
        if frame.json is None or profile.cursor_of(frame) is None:
            fail("expected every frame the client counted on the faulted connection to be a whole event "
                 "with a cursor, observed one that is not (a partial frame counted as an event?)", _show(frame))
    reconnects = history.calls_named("reconnect")
    served = [c for c in reconnects if c.status == 200]
    for call in reconnects:
        if call.status is not None and call.status != 200:
            fail(f"expected the resume by cursor to answer 200, observed {call.status}",
                 f"{call.method} {call.url} {call.params}: {(call.body_text or '')[:200]}")
    live_terminal = bool(terminals(live.frames, terminal_types))
    if not live_terminal and not served:
        tried = "; ".join(f"{c.params} -> {c.status} {c.error or ''}" for c in reconnects) or "no reconnect was made"
        fail("expected the client to resume by cursor after its stream broke, observed no served reconnect", tried)
        return out
    union = list(live.frames) + [f for c in served for f in c.frames]
    def cursor(frame: SSEFrame) -> int | None:
        return profile.cursor_of(frame)

    cursors = [cursor(f) for f in union]
    order = cursor_order(union, cursor)
    if order.duplicates:
        first, again = order.duplicates[0]
        at = [next(n for n, f in enumerate(union) if f is x) for x in (first, again)]
        fail(f"expected no duplicate across the resume, observed cursor {cursor(again)} twice (frames {at[0]} "
             f"and {at[1]} of what the client saw)", f"cursors: {cursors}")
    numbered = [c for c in cursors if c is not None]
    if order.duplicates or order.decreases:
        fail("expected strictly increasing cursors across the resume, observed a step back (numbering "
             "restarted on reconnect?)", f"cursors: {cursors}")
    if profile.gapless and numbered and not contiguous_from(
        [f for f in union if cursor(f) is not None], numbered[0] - 1, cursor
    ):
        fail("expected gap-free event ids across the resume, observed a gap", f"ids: {numbered}")
    transcript = _transcript(history)
    if transcript is None:
        fail("expected a replay from the start to compare with, observed none answered 200")
    else:
        reference = by_cursor(transcript.frames, cursor)
        record = {c: f.json for c, f in reference.items()}
        missing = lost(numbered, record, float("-inf"), float("inf"))
        extra = sorted(set(numbered) - set(record))
        if missing:
            fail(f"expected the client to have every event of the transcript across the resume, observed "
                 f"cursors {missing} missing (a gap)", f"client: {numbered}; transcript: {sorted(record)}")
        if extra:
            fail(f"expected only events of the transcript, observed cursors {extra} the transcript lacks",
                 f"client: {numbered}; transcript: {sorted(record)}")
        changed = rewritten(reference, union, cursor)
        if changed:
            ref, frame = changed[0]
            fail(f"expected the event at cursor {cursor(frame)} to carry the transcript's payload, observed another",
                 f"client: {_show(frame)}; transcript: {json.dumps(ref.json)[:160]}")
    ends = [n for n, _ in terminals(union, terminal_types)]
    if len(ends) != 1 or ends[0] != len(union) - 1:
        fail(f"expected exactly one terminal event, last, across the resume, observed {len(ends)} at "
             f"{ends} of {len(union)}", f"types: {[f.type for f in union][-6:]}")
    elif want is not None and union[-1].type != want:
        fail(f"expected the terminal event {want!r}, observed {union[-1].type!r}", _show(union[-1]))
    return out


def check_unblocked(history: History, expected: Any, cell: Cell) -> list[Violation]:
    """The run was terminal (by a poll) while the slow reader had received less than half of its
    stream's bytes: the handler did not wait for its reader."""
    record = next((f for f in history.faults if f.kind == "slow_reader"), None)
    detail = record.detail if record is not None else None
    if not detail or "bytes_at_terminal" not in detail or "stream_bytes" not in detail:
        return [Violation("unblocked", "expected a slow_reader fault with the bytes the reader had when the run "
                                       "was terminal, observed none", evidence=str(detail))]
    at, total = detail["bytes_at_terminal"], detail["stream_bytes"]
    if not isinstance(at, int) or not isinstance(total, int) or total <= 0:
        return [Violation("unblocked", f"expected byte counts, observed {at!r} of {total!r}", evidence=str(detail))]
    if 2 * at >= total:
        return [Violation(
            "unblocked",
            f"expected the run to be terminal before the slow reader ({detail.get('bytes_per_s')} B/s) had half "
            f"of its stream, observed it terminal only after {at} of {total} bytes: the handler waited for its reader",
            evidence=str(detail),
        )]
    return []


def net_fault_evidence(fault: FaultRecord, cell: Cell) -> str | None:
    """None when the record proves its network fault acted, else what is missing."""
    if fault.kind not in NET_FAULTS:
        return None
    d = fault.detail
    if not d or not d.get("applied"):
        return f"expected the proxy's record that {fault.kind} acted, observed {d!r}"
    if fault.kind == "reset" and not isinstance(d.get("bytes_before"), int):
        return f"expected the bytes forwarded before the reset, observed {d!r}"
    if fault.kind == "cut_mid_frame":
        part, whole = d.get("partial_bytes"), d.get("frame_bytes")
        if not (isinstance(part, int) and isinstance(whole, int) and 0 < part < whole):
            return f"expected part of a frame forwarded (0 < partial_bytes < frame_bytes), observed {d!r}"
    if fault.kind == "stall":
        seconds = cell.fault.param("seconds", 0) if cell.fault.kind == "stall" else 0
        if not isinstance(d.get("stalled_s"), (int, float)) or d["stalled_s"] < 0.95 * seconds:
            return f"expected a stall of {seconds}s, observed {d!r}"
    if fault.kind == "slow_reader" and not (isinstance(d.get("throttled_bytes"), int) and d["throttled_bytes"] > 0):
        return f"expected bytes forwarded at the slow rate, observed {d!r}"
    if fault.kind == "refuse" and d.get("refused_connections") != 1:
        return f"expected exactly one refused connection, observed {d!r}"
    return None
