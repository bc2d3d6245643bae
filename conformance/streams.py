"""Stream predicates: pure functions over recorded SSE frames, shared by the checkers
(``conformance.checks``) and the exploration invariants (``conformance.explore.invariants``).

No I/O and no verdict wording: each predicate returns the frames or cursors that break a rule,
and the caller words the violation in its own vocabulary.  A profile's wire enters only as
arguments: how to read a frame's cursor (``seq_of``: the responses ``sequence_number``,
``event_id_of``: the invocations ``id:`` line), which event types are terminal, which type opens
a stream.  Rules (docs/protocol.md): cursors strictly increasing, no duplicate, all after the
read's cursor; exactly one terminal event and it is last; one created event, first, at one of
the accepted first cursors (§6: ``response.created`` at 0 or 1); one payload per cursor across
reads (no rewrite); a read holds every cursor another read saw inside its range (no loss).
Whether a gap no read saw is a MUST or a SHOULD is the caller's (§6 rules table).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from conformance.history import HttpCall, SSEFrame

Cursor = Callable[[SSEFrame], "int | None"]
"""How a profile reads a frame's cursor."""


def seq_of(frame: SSEFrame) -> int | None:
    """The responses-profile cursor: the JSON ``sequence_number``."""
    return frame.seq


def event_id_of(frame: SSEFrame) -> int | None:
    """The invocations-profile cursor: the ``id:`` line as an int."""
    return frame.event_id


# -- frames and labels ------------------------------------------------------------------------


def is_comment_frame(frame: SSEFrame) -> bool:
    """A frame with neither an event name nor data (keep-alive comment residue)."""
    return frame.event is None and not (frame.data or "").strip()


def event_frames(frames: Iterable[SSEFrame]) -> list[SSEFrame]:
    """The frames that are events (keep-alive comment residue dropped)."""
    return [f for f in list(frames) if not is_comment_frame(f)]


def frame_label(frame: SSEFrame, cursor: Callable[[SSEFrame], Any] = seq_of) -> str:
    """``type#cursor`` for a frame, e.g. ``response.created#0``."""
    return f"{frame.type}#{cursor(frame)}"


def frames_excerpt(
    frames: Iterable[SSEFrame], limit: int = 40, cursor: Callable[[SSEFrame], Any] = seq_of
) -> str:
    """Labels of several frames, comma separated, shortened in the middle when many."""
    labels = [frame_label(f, cursor) for f in frames]
    if len(labels) > limit:
        labels = labels[: limit // 2] + [f"... {len(labels) - limit} more ..."] + labels[-limit // 2 :]
    return ", ".join(labels)


def as_int(value: Any) -> int | None:
    """An int from an int or a decimal string (not bool); None otherwise (how cursors sent as
    parameters and numbers in payloads are read)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def read_cursor(call: HttpCall, param: str) -> int | None:
    """The cursor a read was opened with (query/header parameter ``param``) as an int; None when
    absent or not an integer."""
    return as_int(call.params.get(param)) if isinstance(call.params, dict) else None


# -- cursor order -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CursorOrder:
    """What breaks "cursors present, strictly increasing, no duplicate, all after the read's
    cursor" in one read; each list is in stream order."""

    missing: list[SSEFrame] = field(default_factory=list)
    """Frames without an integer cursor."""
    duplicates: list[tuple[SSEFrame, SSEFrame]] = field(default_factory=list)
    """(first frame with that cursor, a later one with the same cursor)."""
    decreases: list[tuple[SSEFrame, SSEFrame]] = field(default_factory=list)
    """(previous frame, a frame with a lower cursor than it)."""
    gaps: list[tuple[SSEFrame, SSEFrame]] = field(default_factory=list)
    """(previous frame, the next one) where the cursor rises by more than one."""
    early: list[SSEFrame] = field(default_factory=list)
    """Frames at or before the read's cursor."""

    @property
    def ordered(self) -> bool:
        """Present, strictly increasing, after the cursor (gaps allowed)."""
        return not (self.missing or self.duplicates or self.decreases or self.early)


def cursor_order(frames: list[SSEFrame], cursor: Cursor = seq_of, after: int | None = None) -> CursorOrder:
    """Judge one read's cursors: a cursor seen before is a duplicate (wherever the first was);
    else one lower than the previous frame's decreases; one higher by more than one is a gap."""
    order = CursorOrder()
    seen: dict[int, SSEFrame] = {}
    previous: SSEFrame | None = None
    for frame in frames:
        value = cursor(frame)
        if value is None:
            order.missing.append(frame)
            continue
        before = cursor(previous) if previous is not None else None
        if value in seen:
            order.duplicates.append((seen[value], frame))
        elif previous is not None and before is not None and value < before:
            order.decreases.append((previous, frame))
        elif previous is not None and before is not None and value > before + 1:
            order.gaps.append((previous, frame))
        if after is not None and value <= after:
            order.early.append(frame)
        seen.setdefault(value, frame)
        previous = frame
    return order


def cursors(frames: Iterable[SSEFrame], cursor: Cursor = seq_of) -> list[int]:
    """The frames' integer cursors, in stream order."""
    return [c for c in (cursor(f) for f in frames) if c is not None]


def skipped(frames: list[SSEFrame], first: int, cursor: Cursor = seq_of, excused: Collection[int] = ()) -> list[int]:
    """Numbers in ``first..max`` that no frame carries (a gap in the numbering), leaving out
    ``excused``."""
    present = set(cursors(frames, cursor))
    if not present:
        return []
    return sorted(set(range(first, max(present) + 1)) - present - set(excused))


def contiguous_from(frames: list[SSEFrame], after: int, cursor: Cursor = seq_of) -> bool:
    """The cursors are exactly ``after+1, after+2, ...`` (whole from the cursor, no gap)."""
    got = [cursor(f) for f in frames]
    return got == list(range(after + 1, after + 1 + len(got)))


# -- terminal and first events -----------------------------------------------------------------


def terminals(frames: list[SSEFrame], kinds: Collection[str]) -> list[tuple[int, SSEFrame]]:
    """(position, frame) of every terminal event (a type in ``kinds``)."""
    return [(i, f) for i, f in enumerate(frames) if f.type in kinds]


def after_terminal(frames: list[SSEFrame], kinds: Collection[str]) -> tuple[SSEFrame, list[SSEFrame]] | None:
    """When the last terminal event is not the last frame: it and the frames after it; else
    None ("one terminal and it is last": a second terminal is judged by counting ``terminals``)."""
    found = terminals(frames, kinds)
    if not found or found[-1][0] == len(frames) - 1:
        return None
    index, frame = found[-1]
    return frame, frames[index + 1 :]


def terminal_cursors(frames: Iterable[SSEFrame], kinds: Collection[str], cursor: Cursor = seq_of) -> set[int]:
    """The cursors terminal events were seen at (a resource has one; more is a violation)."""
    return {c for f in frames if f.type in kinds and (c := cursor(f)) is not None}


def created_problem(
    frames: list[SSEFrame],
    from_start: bool,
    created_type: str,
    first_cursors: Collection[int],
    cursor: Cursor = seq_of,
) -> tuple[str, list[SSEFrame]] | None:
    """"One created event, first": from the start, exactly one ``created_type`` at one of
    ``first_cursors`` (``"count"`` or ``"cursor"`` with the created frames); after a cursor,
    none, unless the cursor lay before the stream's start and it opens the read (``"after"``)."""
    created = [f for f in frames if f.type == created_type]
    if from_start:
        if len(created) != 1:
            return "count", created
        if cursor(created[0]) not in first_cursors:
            return "cursor", created
        return None
    if len(created) > 1 or (created and (created[0] is not frames[0] or cursor(created[0]) not in first_cursors)):
        return "after", created
    return None


def first_cursor(frames: list[SSEFrame], first_cursors: Collection[int], cursor: Cursor = seq_of) -> int:
    """Where a read from the start is numbered from: its first cursor when that is one of
    ``first_cursors``, else the lowest of them."""
    first = next((c for c in (cursor(f) for f in frames) if c is not None), None)
    return first if first in first_cursors else min(first_cursors)


# -- across reads --------------------------------------------------------------------------------


def same_payload(a: SSEFrame, b: SSEFrame) -> bool:
    """The same event payload: equal JSON when both parse, else equal raw data."""
    ja, jb = a.json, b.json
    if ja is not None and jb is not None:
        return bool(ja == jb)
    return a.data == b.data


def same_event(a: SSEFrame, b: SSEFrame) -> bool:
    """``same_payload`` and the same ``event:`` line (the invocations wire carries an ``event:``
    line on every frame, and an id names the same event forever: docs/protocol.md §7.4)."""
    return same_payload(a, b) and a.event == b.event


def by_cursor(frames: Iterable[SSEFrame], cursor: Cursor = seq_of) -> dict[int, SSEFrame]:
    """The first frame per cursor."""
    out: dict[int, SSEFrame] = {}
    for f in frames:
        c = cursor(f)
        if c is not None:
            out.setdefault(c, f)
    return out


def rewritten(
    reference: Mapping[int, SSEFrame],
    frames: Iterable[SSEFrame],
    cursor: Cursor = seq_of,
    same: Callable[[SSEFrame, SSEFrame], bool] = same_payload,
) -> list[tuple[SSEFrame, SSEFrame]]:
    """(reference frame, this read's frame) for each cursor both hold with another payload."""
    out: list[tuple[SSEFrame, SSEFrame]] = []
    for f in frames:
        c = cursor(f)
        ref = reference.get(c) if c is not None else None
        if ref is not None and not same(ref, f):
            out.append((ref, f))
    return out


def lost(got: Collection[int], seen: Iterable[int], low: float, high: float) -> list[int]:
    """"A read holds every cursor earlier reads saw": the cursors in ``seen`` inside the read's
    range ``(low, high]`` that the read (``got``) lacks, sorted."""
    have = set(got)
    return sorted({s for s in seen if low < s <= high and s not in have})


def after_cursor(frames: list[SSEFrame], after: int, cursor: Cursor = seq_of) -> list[SSEFrame]:
    """The suffix of a full read that a read after cursor ``after`` must equal."""
    return [f for f in frames if (c := cursor(f)) is not None and c > after]


def diverges_at(
    got: list[SSEFrame],
    reference: list[SSEFrame],
    cursor: Cursor = seq_of,
    same: Callable[[SSEFrame, SSEFrame], bool] = same_payload,
) -> int | None:
    """Where ``got`` stops being a prefix of ``reference`` (first position whose cursor or
    payload differs, or where ``got`` runs past it); None when it is a prefix."""
    for i, frame in enumerate(got):
        if i >= len(reference):
            return i
        ref = reference[i]
        if cursor(frame) != cursor(ref) or not same(frame, ref):
            return i
    return None
