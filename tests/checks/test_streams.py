"""conformance.streams: each stream predicate passes a well-formed stream and catches the broken
one it exists for, on both wires (responses ``sequence_number``, invocations ``id:``)."""

from __future__ import annotations

import json

import pytest

from conformance import streams as S
from conformance.history import HttpCall, SSEFrame

TERMINALS = {"response.completed", "response.failed"}


def rf(seq: int | None, kind: str = "response.output_text.delta", **fields: object) -> SSEFrame:
    """A responses-wire frame at ``seq`` (no ``sequence_number`` when None)."""
    payload: dict[str, object] = {"type": kind, **fields}
    if seq is not None:
        payload["sequence_number"] = seq
    return SSEFrame(event=kind, data=json.dumps(payload))


def inf(n: int | str, kind: str = "invocation.delta", **fields: object) -> SSEFrame:
    """An invocations-wire frame with ``id: n``."""
    return SSEFrame(event=kind, data=json.dumps({"event_id": n, **fields}), id=str(n))


def stream(n: int = 5, first: int = 0) -> list[SSEFrame]:
    """created, n-2 deltas, completed: seqs first..first+n-1."""
    return (
        [rf(first, "response.created")]
        + [rf(first + i, delta=f"d{i}") for i in range(1, n - 1)]
        + [rf(first + n - 1, "response.completed")]
    )


def seqs(frames: list[SSEFrame]) -> list[int | None]:
    return [f.seq for f in frames]


# -- frames and labels ------------------------------------------------------------------------


def test_event_frames_drops_comment_residue_only() -> None:
    frames = [rf(0), SSEFrame(event=None, data=""), SSEFrame(event=None, data="  "), SSEFrame(event="x", data="")]
    assert S.event_frames(frames) == [frames[0], frames[3]]


def test_labels_name_type_and_cursor_of_either_wire() -> None:
    assert S.frame_label(rf(3, "response.created")) == "response.created#3"
    assert S.frame_label(inf(4), S.event_id_of) == "invocation.delta#4"
    many = [rf(i) for i in range(10)]
    shown = S.frames_excerpt(many, 4)
    assert shown.startswith("response.output_text.delta#0, response.output_text.delta#1, ... 6 more ...")


def test_read_cursor_reads_ints_and_refuses_the_rest() -> None:
    def call(value: object) -> HttpCall:
        return HttpCall("replay", "GET", "http://127.0.0.1/x", params={"starting_after": value})

    assert S.read_cursor(call("7"), "starting_after") == 7
    assert S.read_cursor(call(7), "starting_after") == 7
    assert S.read_cursor(call("abc"), "starting_after") is None
    assert S.read_cursor(call(True), "starting_after") is None
    assert S.read_cursor(call("7"), "last_event_id") is None


# -- cursor order -----------------------------------------------------------------------------


def test_cursor_order_accepts_a_well_formed_read() -> None:
    order = S.cursor_order(stream())
    assert order.ordered and not order.gaps
    assert S.cursor_order(stream()[2:], after=1).ordered


def test_cursor_order_catches_missing_duplicate_decrease_gap_and_early() -> None:
    frames = [rf(0), rf(None), rf(1), rf(3), rf(2), rf(1), rf(4)]
    order = S.cursor_order(frames, after=0)
    assert not order.ordered
    assert order.missing == [frames[1]]
    assert [(a.seq, b.seq) for a, b in order.duplicates] == [(1, 1)]  # the reuse, wherever the first was
    assert [(a.seq, b.seq) for a, b in order.decreases] == [(3, 2)]
    assert [(a.seq, b.seq) for a, b in order.gaps] == [(1, 3), (1, 4)]
    assert [f.seq for f in order.early] == [0]


def test_cursor_order_on_the_invocations_wire() -> None:
    frames = [inf(1), inf(2), inf(2), inf(5), inf("x3")]
    order = S.cursor_order(frames, S.event_id_of)
    assert [f.id for f in order.missing] == ["x3"]
    assert [(a.id, b.id) for a, b in order.duplicates] == [("2", "2")]
    assert [(a.id, b.id) for a, b in order.gaps] == [("2", "5")]


def test_skipped_lists_numbers_no_frame_carries() -> None:
    assert S.skipped(stream(), 0) == []
    broken = [f for f in stream(8) if f.seq not in (3, 5)]
    assert S.skipped(broken, 0) == [3, 5]
    assert S.skipped(broken, 0, excused={3}) == [5]
    assert S.skipped([], 0) == []


def test_contiguous_from_a_cursor() -> None:
    assert S.contiguous_from([inf(3), inf(4), inf(5)], 2, S.event_id_of)
    assert not S.contiguous_from([inf(3), inf(5)], 2, S.event_id_of)
    assert not S.contiguous_from([inf(4), inf(5)], 2, S.event_id_of)


# -- terminal and first events ----------------------------------------------------------------


def test_one_terminal_and_it_is_last() -> None:
    good = stream()
    assert len(S.terminals(good, TERMINALS)) == 1 and S.after_terminal(good, TERMINALS) is None
    trailing = good + [rf(5)]
    found = S.after_terminal(trailing, TERMINALS)
    assert found is not None and found[0].seq == 4 and seqs(found[1]) == [5]
    twice = good + [rf(5, "response.failed")]
    assert [f.seq for _, f in S.terminals(twice, TERMINALS)] == [4, 5]
    assert S.terminals(good[:-1], TERMINALS) == []


def test_terminal_cursors_across_reads() -> None:
    assert S.terminal_cursors(stream() + stream(), TERMINALS) == {4}
    assert S.terminal_cursors(stream(5) + stream(6), TERMINALS) == {4, 5}


@pytest.mark.parametrize("first", [0, 1])
def test_created_first_at_an_accepted_cursor(first: int) -> None:
    assert S.created_problem(stream(first=first), True, "response.created", (0, 1)) is None
    assert S.first_cursor(stream(first=first), (0, 1)) == first


def test_created_problems() -> None:
    created = "response.created"
    assert S.created_problem(stream()[1:], True, created, (0, 1)) == ("count", [])
    two = stream() + [rf(5, created)]
    kind, frames = S.created_problem(two, True, created, (0, 1))  # type: ignore[misc]
    assert kind == "count" and len(frames) == 2
    late = stream(first=2)
    assert S.created_problem(late, True, created, (0, 1)) == ("cursor", [late[0]])
    assert S.first_cursor(late, (0, 1)) == 0
    assert S.created_problem(stream()[2:], False, created, (0, 1)) is None
    after = stream()[2:] + [rf(9, created)]
    assert S.created_problem(after, False, created, (0, 1)) == ("after", [after[-1]])
    # a cursor before the stream's start (0 where numbering starts at 1) opens the read
    assert S.created_problem(stream(first=1), False, created, (0, 1)) is None


# -- across reads -----------------------------------------------------------------------------


def test_same_payload_and_same_event() -> None:
    a, b = rf(1, delta="x"), rf(1, delta="x")
    assert S.same_payload(a, b) and S.same_event(a, b)
    assert not S.same_payload(a, rf(1, delta="y"))
    renamed = SSEFrame(event="other", data=a.data)
    assert S.same_payload(a, renamed) and not S.same_event(a, renamed)
    assert not S.same_payload(SSEFrame(event="x", data="raw"), SSEFrame(event="x", data="raw2"))


def test_rewritten_pairs_the_reference_with_the_changed_frame() -> None:
    ref = S.by_cursor(stream())
    read = stream()[2:]
    assert S.rewritten(ref, read) == []
    read[1] = rf(3, delta="changed")
    assert [(r.seq, f.seq) for r, f in S.rewritten(ref, read)] == [(3, 3)]
    assert S.rewritten(ref, [rf(99)]) == []  # a cursor the reference lacks is not a rewrite


def test_by_cursor_keeps_the_first_frame() -> None:
    frames = [rf(1, delta="first"), rf(1, delta="second")]
    assert S.by_cursor(frames)[1] is frames[0]


def test_lost_cursors_inside_the_read_range() -> None:
    assert S.lost([2, 3, 4], [1, 2, 3, 4, 5], 1, 4) == []
    assert S.lost([2, 4], [1, 2, 3, 4, 5], 1, 4) == [3]
    assert S.lost([], [3, 2], -1, float("inf")) == [2, 3]


def test_suffix_after_a_cursor_and_prefix_divergence() -> None:
    full = [inf(i) for i in range(1, 6)]
    assert [f.id for f in S.after_cursor(full, 3, S.event_id_of)] == ["4", "5"]
    assert S.diverges_at(full[:3], full, S.event_id_of, S.same_event) is None
    assert S.diverges_at([], full, S.event_id_of) is None
    changed = full[:3]
    changed[1] = inf(2, kind="invocation.checkpoint")
    assert S.diverges_at(changed, full, S.event_id_of, S.same_event) == 1
    assert S.diverges_at([full[0], full[2]], full, S.event_id_of) == 1
    assert S.diverges_at(full + [inf(6)], full, S.event_id_of) == 5
