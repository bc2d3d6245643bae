"""The black-box tier: a contract cell re-phrased for a target with no test-control adapter.

A target file with ``control: none`` has no script, no markers and no release file
(docs/protocol.md §8).  ``derive(cell)`` is a pure function of the cell: either the cell's
black-box variant, whose expectations are judged from the wire alone, or the reason the cell
needs control (the plugin counts it "not claimed" with that reason, never silently drops it).

What changes in a black-box variant:

- the request carries the target's plain ``blackbox.input`` instead of a script;
- a fault at ``held`` is placed by observation of the wire instead: after the first delta on the
  live stream (``first_delta``), or while ``GET`` says the response is not terminal
  (``in_progress``, stream=false).  The executor proves the fault landed mid-run (no terminal
  event on the faulted live stream) or the cell is "not testable", never a pass;
- expectations that need the script or the markers are dropped (``attempts``, ``stopped``, the exact reset
  text of ``replay.reset_event``), and the exact output text becomes ``output: streamed`` (the
  final text equals the output the stream announced: the last ``response.in_progress``'s output
  plus every delta after it) where a complete stream from the start is read, else it is dropped;
- everything that holds for any server is kept: statuses, HTTP codes, content types, error
  shapes, stream order, one ``response.created`` first, one terminal event last, the status
  inside it, replays from every cursor (no loss, no duplicate), exit modes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .model import NET_FAULTS, Cell, FaultSpec
from .profiles import profile_of

DROPPED_KEYS = frozenset({"attempts", "output_text", "stopped"})
"""Keys judged from the script or the markers; never in a black-box variant."""

INVOCATIONS_CONTROL_KEYS = frozenset({"steering", "queue", "cancel_queued"})
"""Invocations keys whose cells drive the handler through its hold and checkpoints."""


def _judged_from_a_full_stream(cell: Cell, expect: dict[str, Any]) -> bool:
    """A complete read from the start exists: a replay from the start, or a live stream the
    fault does not cut (none, cancel, a fault at the terminal status)."""
    replay = expect.get("replay")
    if isinstance(replay, dict) and "start" in [str(a) for a in replay.get("after") or []]:
        return True
    if profile_of(cell.profile).transcript_after_end:
        return True  # the kit reads the whole stream after the end (the expectation probes' transcript)
    fault = cell.fault
    uncut = fault.kind in ("none", "cancel", "pause") or fault.at == "terminal"
    return bool(cell.request.get("stream")) and uncut


def _numeric_cursors(expect: dict[str, Any]) -> bool:
    """Expectations that name cursors by number (``resume.from: [5, 7]``, ``replay.after: [3]``)."""
    values: list[Any] = []
    for key, option in (("resume", "from"), ("replay", "after")):
        spec = expect.get(key)
        if isinstance(spec, dict) and isinstance(spec.get(option), list):
            values += spec[option]
    return any(isinstance(v, int) and not isinstance(v, bool) for v in values)


def needs_control(cell: Cell) -> str | None:
    """Why the cell cannot be judged from the wire alone, or None when it can."""
    script, fault, request = cell.script, cell.fault, cell.request
    profile = profile_of(cell.profile)
    if fault.kind in ("steer", "queue") or INVOCATIONS_CONTROL_KEYS & set(cell.expect):
        return "steering and queues are driven through the handler's hold and checkpoints"
    if fault.kind == "drain":
        return "drain releases the handler's hold right after the SIGTERM, so that it ends inside the grace"
    if fault.kind in NET_FAULTS:
        return ("network-fault cells are placed at the handler's hold and judge a scripted stream's "
                "length (not yet derived black-box)")
    deltas, hold = script.get("deltas"), script.get("hold_at")
    if isinstance(deltas, int) and isinstance(hold, int) and hold >= deltas - 1 and fault.kind != "none":
        return "the fault is placed after the run's last delta, a point a plain run does not stop at"
    if cell.server.get("event_retention") and _numeric_cursors(cell.expect):
        return "its cursors are counted from the script's events, against the retention window"
    if script.get("fail_at") is not None:
        return "fail_at: a handler error on demand needs the test-control script"
    if script.get("hold_at") == -1:
        return "hold_at: -1 holds the handler before creation, which a plain prompt cannot do"
    if fault.kind == "crash_twice":
        return "crash_twice places its second crash at the recovering attempt's held marker"
    live = profile.always_live or bool(request.get("stream"))
    background = profile.always_background or bool(request.get("background"))
    if not background and not live and fault.kind != "none" and fault.at != "terminal":
        return "a foreground non-stream create reveals no id and no progress until it ends"
    if fault.kind in ("sigterm", "sigterm_then_sigkill") and not live:
        return ("whether the run was still going when the shutdown grace ran out is visible only on "
                "a live stream (stream=true)")
    return None


def _black_box_fault(cell: Cell) -> FaultSpec:
    fault = cell.fault
    if fault.at != "held":
        return fault
    live = profile_of(cell.profile).always_live or cell.request.get("stream")
    return dataclasses.replace(fault, at="first_delta" if live else "in_progress")


def _black_box_expect(cell: Cell) -> dict[str, Any]:
    expect = {k: v for k, v in cell.expect.items() if k not in DROPPED_KEYS}
    replay = expect.get("replay")
    if isinstance(replay, dict) and "reset_event" in replay:
        expect["replay"] = {k: v for k, v in replay.items() if k != "reset_event"}
    wants_text = "output_text" in cell.expect or cell.expect.get("output") == "full"
    if cell.expect.get("output") == "full":
        del expect["output"]
    if wants_text and _judged_from_a_full_stream(cell, expect):
        expect["output"] = "streamed"
    return expect


def derive(cell: Cell) -> Cell | str:
    """The cell's black-box variant, or the reason it needs control (a string)."""
    reason = needs_control(cell)
    if reason is not None:
        return reason
    expect = _black_box_expect(cell)
    if not [k for k in expect if k != "status"]:
        return "nothing but the status is left to judge from the wire"
    return dataclasses.replace(
        cell,
        script={},
        fault=_black_box_fault(cell),
        expect=expect,
        blackbox=True,
    )


# -- the wire-only bystander of the adversarial suites ----------------------------------------
GAP_RULE = "a stream's numbering is contiguous: no sequence number skipped that no read ever saw"


def whole_stream_problems(frames: list[Any], ended: str, status_now: Any, profile: str) -> list[str]:
    """What is wrong with a bystander run read from its create (or first read) to its end, with
    ``status_now`` the status its GET answered after the stream ended: the stream ended whole
    (``ended == "complete"``), its first event is the profile's first event (once, where the
    profile says so), its cursors are integers, strictly increasing, from one of the profile's
    first cursors (responses 0 or 1, invocations 1), exactly one terminal event and it is last,
    and the GET status equals the terminal event's status.  A skipped number is a MUST where the
    profile promises gap-free cursors, else a SHOULD finding (docs/protocol.md §0); every other
    problem is a MUST.  Pure: frames are ``history.SSEFrame``s."""
    from conformance.explore.adversarial import should

    p = profile_of(profile)
    problems: list[str] = []
    if ended != "complete":
        problems.append(f"the bystander's stream did not end whole: {ended}")
    if not frames:
        return problems + ["the bystander's stream carried no event"]
    types = [f.type for f in frames]
    if types[0] != p.first_event:
        problems.append(f"the bystander's first event is {types[0]!r}, not {p.first_event!r}")
    if types.count(p.first_event) > 1 and p.single_first_event:
        problems.append(f"the bystander's stream has {types.count(p.first_event)} {p.first_event} events")
    cursors = [p.cursor_of(f) for f in frames]
    if any(not isinstance(c, int) for c in cursors):
        problems.append(f"the bystander's stream has events without an integer cursor: {cursors[:20]}")
    elif any(b <= a for a, b in zip(cursors, cursors[1:])):
        problems.append(f"the bystander's cursors are not strictly increasing: {cursors[:40]}")
    elif cursors[0] not in p.first_cursors:
        problems.append(f"the bystander's stream starts at cursor {cursors[0]}, not at "
                        f"{' or '.join(str(c) for c in p.first_cursors)}")
    elif cursors != list(range(cursors[0], cursors[0] + len(cursors))):
        detail = f"the bystander's cursors skip numbers: {cursors[:40]}"
        problems.append(detail if p.gapless else should(GAP_RULE, detail))
    terminals = [i for i, t in enumerate(types) if t in p.terminal_events]
    if len(terminals) != 1 or terminals[0] != len(frames) - 1:
        problems.append(f"expected exactly one terminal event and it last, the bystander's events are {types[-6:]} "
                        f"(terminal at {terminals} of {len(frames)})")
        return problems
    streamed = p.terminal_status(frames[-1])
    if streamed != status_now:
        problems.append(f"the bystander's terminal event says {streamed!r}, its GET after the stream ended says {status_now!r}")
    return problems
    last = frames[-1]
    if invocations:
        streamed = (last.type or "").split(".", 1)[1]
    else:
        response = last.json.get("response") if isinstance(last.json, dict) else None
        streamed = response.get("status") if isinstance(response, dict) else None
    if streamed != status_now:
        problems.append(f"the bystander's terminal event says {streamed!r}, its GET after the stream ended says {status_now!r}")
    return problems


def bystander_verdict(stream_reader: Any, call: Any, run_id: str, status_now: Any, profile: str,
                      wait_s: float) -> list[str]:
    """A plain-input bystander's verdict once the attack is over: its stream (read by the thread
    ``stream_reader``) must end within ``wait_s``, then ``whole_stream_problems`` against the
    status ``status_now()`` answers; MUST problems are prefixed with the run's id."""
    from conformance.explore.adversarial import level_of

    stream_reader.join(wait_s)
    if stream_reader.is_alive():
        return [f"the plain-input bystander {run_id}'s stream did not end within {wait_s}s after the attack; "
                f"last events {[f.type for f in call.frames][-3:]}"]
    status = status_now()
    return [f"{run_id}: {p}" if level_of(p) == "MUST" else p
            for p in whole_stream_problems(list(call.frames), call.ended, status, profile)]
