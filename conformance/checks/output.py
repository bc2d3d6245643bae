"""Output expectations: ``output`` (full | empty, predicted from the markers), ``output_text``
(exact), ``attempts`` (handler starts counted from markers).

The prediction (``predict_output``) follows the test-control contract (docs/protocol.md §3): delta ``i``
of attempt ``n`` has the text ``"a{n}:d{i} "``; a ``checkpoint i`` marker commits every delta up
to ``i`` not committed yet to the attempt that wrote it, for good: a checkpointed delta keeps the
attempt that checkpointed it even when a later attempt resumes before it (``from=f`` below the
checkpoints means the store lost or the server ignored an acknowledged checkpoint, and the
recovered text then shows up as "text from attempt 2 where attempt 1 checkpointed them"); every
delta that is not committed belongs to the last attempt.  ``from=`` only serves as a consistency
note and, when absent, is inferred from the attempt's first ``delta`` marker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from conformance.history import INVOCATION_TERMINAL_EVENTS, TERMINAL_EVENTS, History, SSEFrame, Violation
from harness.markers import Checkpoint, Delta, Start, Unparsed, parse_markers
from conformance.model import Cell
from conformance.profiles import profile_of

from ._util import as_int, output_text, quoted

PIECE_RE = re.compile(r"a(\d+):d(\d+) ")


def piece(attempt: int, index: int) -> str:
    """The text of delta ``index`` emitted by attempt ``attempt``."""
    return f"a{attempt}:d{index} "


@dataclass
class AttemptStart:
    """One ``start attempt=n id=... from=f`` marker, with ``from`` resolved."""

    number: int
    start_from: int
    line: str
    snapshot: dict[int, int]  # delta index -> committing attempt, checkpointed before this start
    from_inferred: bool = False

    @property
    def snapshot_text(self) -> str:
        """The checkpointed text this attempt resumed from ("" when nothing was checkpointed)."""
        return "".join(piece(self.snapshot[i], i) for i in sorted(self.snapshot))


@dataclass
class Prediction:
    """What the markers say the final output must be."""

    deltas: int
    starts: list[AttemptStart]
    owners: list[int]  # owners[i] = attempt whose delta i must be in the final output
    problems: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(piece(att, i) for i, att in enumerate(self.owners))


def _inferred_from(markers: list[Any], index: int, committed: dict[int, int]) -> int:
    """``from`` of a start marker that does not say it: the first ``delta i`` marker of that
    attempt, else one past the contiguous committed prefix."""
    for marker in markers[index + 1 :]:
        if isinstance(marker, Start):
            break
        if isinstance(marker, Delta):
            return marker.index
    return _prefix(committed)


def _prefix(committed: dict[int, int]) -> int:
    """How many deltas from d0 on are checkpointed without a hole."""
    n = 0
    while n in committed:
        n += 1
    return n


def predict_output(markers: list[str], deltas: int) -> Prediction:
    """Walk the markers and predict which attempt's text each delta must carry."""
    committed: dict[int, int] = {}
    starts: list[AttemptStart] = []
    problems: list[str] = []
    current: int | None = None
    emitted: set[int] = set()  # deltas the current attempt's markers show it emitted
    parsed = parse_markers(markers)
    for index, (line, marker) in enumerate(zip(markers, parsed)):
        if isinstance(marker, Start):
            number = marker.attempt
            if number is None:
                number = len(starts) + 1
                problems.append(f"start marker without attempt number: {line!r}")
            start_from = marker.from_
            inferred = start_from is None
            if start_from is None:
                start_from = _inferred_from(parsed, index, committed)
            prefix = _prefix(committed)
            if current is not None and start_from > prefix and all(i in emitted for i in range(prefix, start_from)):
                # The checkpoint is durable before its marker is written, so a kill can land in
                # between: a resume point the crashed attempt really reached (its delta markers)
                # is that attempt's checkpoint.  A resume past what it emitted stays a violation.
                for i in range(prefix, start_from):
                    committed.setdefault(i, current)
                prefix = start_from
            emitted = set()
            if start_from != prefix:
                problems.append(
                    f"attempt {number} resumed from d{start_from} but the checkpoints before it "
                    + (f"cover d0..d{prefix - 1}" if prefix else "cover nothing")
                    + (" (a checkpoint was lost or ignored)" if start_from < prefix else "")
                )
            starts.append(AttemptStart(number, start_from, line, dict(committed), inferred))
            current = number
        elif isinstance(marker, Delta):
            emitted.add(marker.index)
        elif isinstance(marker, Unparsed) and marker.word == "checkpoint":
            problems.append(f"unreadable checkpoint marker {line!r}")
        elif isinstance(marker, Checkpoint):
            upto = marker.index
            if current is None:
                problems.append(f"{line!r} before any start marker")
                continue
            for i in range(upto + 1):
                committed.setdefault(i, current)
    last = starts[-1].number if starts else 0
    owners = [committed.get(i, last) for i in range(deltas)]
    return Prediction(deltas, starts, owners, problems)


def script_deltas(history: History, cell: Cell) -> int | None:
    """The script's delta count: the script the executor sent, else the cell's."""
    for script in (history.script, cell.script):
        if isinstance(script, dict) and "deltas" in script:
            return as_int(script["deltas"])
    return None


def markers_excerpt(markers: list[str], only_structural: bool = True, limit: int = 30) -> str:
    """The marker lines as evidence: start/checkpoint/held/done lines (all lines if few)."""
    lines = markers
    if only_structural and len(markers) > 12:
        lines = [line for line, m in zip(markers, parse_markers(markers)) if not isinstance(m, Delta)]
    if len(lines) > limit:
        lines = lines[: limit // 2] + [f"... {len(lines) - limit} more ..."] + lines[-limit // 2 :]
    return " | ".join(lines) if lines else "(no markers)"


def diagnose_text(expected_owners: list[int], observed: str) -> list[str]:
    """Explain how ``observed`` differs from the predicted pieces: stale / newer / missing /
    duplicated / out-of-order deltas and text that is no delta at all."""
    findings: list[str] = []
    seen: dict[int, list[int]] = {}
    order: list[int] = []
    pos = 0
    junk: list[str] = []
    for match in PIECE_RE.finditer(observed):
        if match.start() > pos:
            junk.append(observed[pos : match.start()])
        pos = match.end()
        att, idx = int(match.group(1)), int(match.group(2))
        seen.setdefault(idx, []).append(att)
        order.append(idx)
    if pos < len(observed):
        junk.append(observed[pos:])
    stale: dict[tuple[int, int], list[int]] = {}
    newer: dict[tuple[int, int], list[int]] = {}
    for idx, want in enumerate(expected_owners):
        got = seen.get(idx, [])
        if not got:
            continue
        for att in got:
            if att < want:
                stale.setdefault((att, want), []).append(idx)
            elif att > want:
                newer.setdefault((att, want), []).append(idx)
    for (att, want), idxs in sorted(stale.items()):
        findings.append(
            f"stale text from attempt {att} for {_ds(idxs)} (expected attempt {want})"
        )
    for (att, want), idxs in sorted(newer.items()):
        findings.append(
            f"text from attempt {att} for {_ds(idxs)} where attempt {want} checkpointed them "
            "(checkpoint lost or ignored)"
        )
    missing = [i for i in range(len(expected_owners)) if i not in seen]
    if missing:
        findings.append(f"missing {_ds(missing)}")
    dup = sorted(i for i, atts in seen.items() if len(atts) > 1)
    if dup:
        findings.append(
            "duplicated " + ", ".join(f"d{i} (attempts {seen[i]})" for i in dup)
        )
    extra = sorted(i for i in seen if i >= len(expected_owners))
    if extra:
        findings.append(f"deltas beyond the script's {len(expected_owners)}: {_ds(extra)}")
    if order != sorted(order) and not dup:
        findings.append(f"deltas out of order: {' '.join(f'd{i}' for i in order[:20])}")
    if junk:
        findings.append(f"text that is no script delta: {quoted(''.join(junk), 80)}")
    return findings


def _ds(idxs: list[int]) -> str:
    if len(idxs) > 12:
        return " ".join(f"d{i}" for i in idxs[:6]) + f" ... d{idxs[-1]} ({len(idxs)} deltas)"
    return " ".join(f"d{i}" for i in idxs)


def final_output_text(history: History) -> str:
    """The final output text of ``history`` (``snapshot_text`` of its final snapshot)."""
    return snapshot_text(history.profile, history.final)


def snapshot_text(profile: str, snapshot: Any) -> str:
    """A snapshot's output text: its ``output`` string where the profile's output is text
    (invocations), else the text of the Response ``output`` items."""
    out = snapshot.get("output") if isinstance(snapshot, dict) else None
    if profile_of(profile).output_is_text:
        return out if isinstance(out, str) else ""
    return output_text(out)


def streamed_text(frames: list[SSEFrame]) -> str:
    """The output a complete stream announces.  Responses: the text of its last
    ``response.in_progress``'s ``response.output`` (empty on a fresh attempt; a recovered
    attempt's reset carries what it resumed from) plus every ``delta`` after it.  Invocations
    (docs/protocol.md §7.4, §7.6): by delta ``index``, the text of the latest ``invocation.delta``
    with that index (a recovered attempt re-emits from its checkpoint; what it did not re-emit
    is the checkpointed text of the attempts before it)."""
    if any((f.type or "").startswith("invocation.") for f in frames):
        by_index: dict[int, str] = {}
        for frame in frames:
            payload = frame.json if isinstance(frame.json, dict) else {}
            index, text = payload.get("index"), payload.get("text")
            if frame.type == "invocation.delta" and isinstance(index, int) and isinstance(text, str):
                by_index[index] = text
        return "".join(by_index[i] for i in sorted(by_index))
    start = max((i for i, f in enumerate(frames) if f.type == "response.in_progress"), default=-1)
    text = ""
    if start >= 0 and isinstance(frames[start].json, dict):
        response = frames[start].json.get("response")
        text = output_text(response.get("output")) if isinstance(response, dict) else ""
    for frame in frames[start + 1 :]:
        if frame.type == "response.output_text.delta" and isinstance(frame.json, dict):
            delta = frame.json.get("delta")
            text += delta if isinstance(delta, str) else ""
    return text


def _full_stream(history: History) -> tuple[str, list[SSEFrame]] | None:
    """A complete read from the start: the last 200 replay without a cursor, else the live
    stream when it ended on a terminal event."""
    for call in reversed(history.calls_named("replay")):
        params = call.params if isinstance(call.params, dict) else {}
        if call.status == 200 and params.get("starting_after") is None and call.frames:
            return f"replay {params.get('cursor_label', 'start')}", list(call.frames)
    live = history.live_frames()
    if live and live[-1].type in TERMINAL_EVENTS | INVOCATION_TERMINAL_EVENTS:
        return "live stream", list(live)
    return None


def check_output(history: History, expected: Any, cell: Cell) -> list[Violation]:
    """``empty``: the final output has no text.  ``full``: the final output text equals the
    text predicted from the script's delta count and the markers.  ``streamed`` (black-box
    cells): it equals what a complete stream from the start announced (``streamed_text``)."""
    if expected not in ("full", "empty", "streamed"):
        return [Violation("output", f"unknown output expectation {expected!r} (full | empty | streamed)")]
    if history.final is None:
        return [
            Violation(
                "output",
                f"expected {expected} output, observed no final response object",
                evidence=f"final_source={history.final_source!r}",
            )
        ]
    observed = final_output_text(history)
    if expected == "empty":
        if observed:
            return [
                Violation(
                    "output",
                    f"expected empty output, observed text {quoted(observed)}",
                    evidence=f"final ({history.final_source}) status={history.final.get('status')!r}",
                )
            ]
        return []
    if expected == "streamed":
        stream = _full_stream(history)
        if stream is None:
            return [Violation("output", "expected the output a complete stream announced, but no stream "
                              "from the start ended on a terminal event to compare with",
                              evidence=f"final ({history.final_source}) text {quoted(observed)}")]
        where, frames = stream
        announced = streamed_text(frames)
        if observed != announced:
            return [Violation("output", f"expected the final output text to be what the {where} announced "
                              f"(last response.in_progress output + the deltas after it) {quoted(announced)}, "
                              f"observed {quoted(observed)}",
                              evidence=f"{where}: {len(frames)} frames")]
        return []
    deltas = script_deltas(history, cell)
    if deltas is None:
        return [
            Violation(
                "output",
                "expected full output, but the script gives no `deltas` count to predict it from",
                evidence=f"script={history.script!r}",
            )
        ]
    if not history.attempts():
        return [
            Violation(
                "output",
                "expected full output, but there is no `start` marker: no evidence of what ran, "
                f"observed text {quoted(observed)}",
                evidence=markers_excerpt(history.markers),
            )
        ]
    prediction = predict_output(history.markers, deltas)
    if observed == prediction.text:
        return []
    findings = diagnose_text(prediction.owners, observed)
    findings += [f"markers inconsistent: {p}" for p in prediction.problems]
    detail = "; ".join(findings) if findings else "texts differ"
    return [
        Violation(
            "output",
            f"{detail}: expected output text {quoted(prediction.text)}, observed {quoted(observed)}",
            evidence=f"final from {history.final_source}; markers: {markers_excerpt(history.markers)}",
        )
    ]


def check_output_text(history: History, expected: Any, cell: Cell) -> list[Violation]:
    """The final output text equals ``expected`` exactly."""
    if history.final is None:
        return [
            Violation(
                "output_text",
                f"expected output text {quoted(str(expected))}, observed no final response object",
            )
        ]
    observed = final_output_text(history)
    if observed != expected:
        return [
            Violation(
                "output_text",
                f"expected output text {quoted(str(expected))}, observed {quoted(observed)}",
                evidence=f"final from {history.final_source}",
            )
        ]
    return []


def check_attempts(history: History, expected: Any, cell: Cell) -> list[Violation]:
    """The number of ``start`` marker lines equals ``expected``."""
    want = as_int(expected)
    if want is None:
        return [Violation("attempts", f"expected attempts must be an int, got {expected!r}")]
    starts = history.attempts()
    if starts != want:
        return [
            Violation(
                "attempts",
                f"expected {want} handler start(s), observed {starts}",
                evidence=markers_excerpt(history.markers),
            )
        ]
    return []
