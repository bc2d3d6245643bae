"""``one_terminal``: a response has one terminal event, and nothing after it, in every stream.

docs/protocol.md §2.6: the sequence numbers go up by one and each response has exactly one
terminal event, its last. A single stream cannot show a second terminal (a replay ends at the
first one), so the executor also replays from the first terminal's own sequence number: that
replay must be empty (§2.1: only ``sequence_number > N``). This check looks at every 200 stream of
the cell (the live create stream and every replay): all terminal frames have one sequence
number, and no frame has a higher one.
"""

from __future__ import annotations

from typing import Any

from conformance.history import History, SSEFrame, Violation
from conformance.model import Cell

from conformance.streams import event_frames, terminal_cursors

from ._util import TERMINAL_EVENTS, as_int, frame_label, frames_excerpt

TERMINAL_LABEL = "terminal"
"""The ``cursor_label`` of the executor's replay from the first terminal's sequence number."""


def _streams(history: History) -> list[tuple[str, list[SSEFrame]]]:
    out = []
    for n, call in enumerate(history.calls):
        if call.name not in ("create", "replay") or call.status != 200:
            continue
        frames = [f for f in event_frames(call.frames) if f.seq is not None]
        label = call.params.get("cursor_label") if isinstance(call.params, dict) else None
        name = "live stream" if call.name == "create" else f"replay #{n} ({label or 'start'})"
        out.append((name, frames))
    return out


def check_one_terminal(history: History, expected: Any, cell: Cell) -> list[Violation]:
    if expected is not True:
        return [Violation("one_terminal", f"expected one_terminal must be true, got {expected!r}")]
    streams = _streams(history)
    terminals = [(name, f) for name, frames in streams for f in frames if f.type in TERMINAL_EVENTS]
    if not terminals:
        return [Violation("one_terminal", "no stream of the response showed a terminal event",
                          evidence="; ".join(f"{name}: {frames_excerpt(fr, 10)}" for name, fr in streams) or "no 200 stream")]
    first = min(terminal_cursors((f for _, f in terminals), TERMINAL_EVENTS))
    past = [c for c in history.calls if c.name == "replay" and isinstance(c.params, dict)
            and c.params.get("cursor_label") == TERMINAL_LABEL]
    problems = []
    if not past:
        problems.append("no replay from the terminal's sequence number was made: nothing past the terminal was read")
    elif all(c.status != 200 for c in past):
        problems.append(f"the replay from the terminal's sequence number answered {past[0].status}, not 200 "
                        f"(§2.1: a cursor at or past the last event is served, with no events)")
    seconds = sorted({f.seq for _, f in terminals if f.seq != first})
    if seconds:
        where = [f"{frame_label(f)} in the {name}" for name, f in terminals if f.seq != first]
        problems.append(f"a second terminal event after the first (#{first}): {', '.join(where[:5])}")
    after = [(name, f) for name, frames in streams for f in frames
             if (as_int(f.seq) or 0) > first and f.type not in TERMINAL_EVENTS]
    if after:
        shown = ", ".join(f"{frame_label(f)} in the {name}" for name, f in after[:5])
        problems.append(f"event(s) after the terminal #{first}: {shown}")
    return [Violation("one_terminal", p) for p in problems]
