"""Which recorded events a violation text concerns (pure: text + History in, indices out).

Checkers name what they judged in their messages: a call by its label (``replay #2 after mid``,
``resume after 4 (header)``, ``reader 2``, ``transcript``, ``live stream``, `` `create` #1``) and
frames by ``type#seq`` (responses) or ``type#id`` (invocations).  ``locate`` reads those names
back, so the HTML timeline can highlight the events next to the violation text.  It never
guesses beyond the names: a violation that names nothing locatable is listed on its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from conformance.history import History, HttpCall, SSEFrame
from conformance.profiles import PROFILES

EVIDENCE_MARK = " [evidence: "

FRAME_LABEL = re.compile(r"(?<![\w.#])([A-Za-z_][\w-]*(?:\.[\w-]+)+)#(-?\d+|None)\b")
REPLAY_N = re.compile(r"\breplay #(\d+)\b")
NAMED_N = re.compile(r"`(\w+)`(?: #(\d+))?")
RESUME_AFTER = re.compile(r"\bresume after (\S+) \((\w+)\)")
READER_N = re.compile(r"\breader (\d+)\b")
GAPS_AT = re.compile(r"gaps at ((?:\d+(?:, )?)+)")
MISSING = re.compile(r"missing: ((?:\d+ \([^)]*\)(?:; )?)+)")
"""``replay``'s lost events: ``missing: 5 (response.output_text.delta#5 live); 7 (...)``."""

CHECK_LANES: dict[str, tuple[str, ...]] = {
    "evidence": ("faults", "incarnations"),
    "exit": ("faults", "incarnations"),
    "notes": ("faults",),
    "attempts": ("markers",),
    "entry_modes": ("markers",),
    "output": ("final",),
    "output_text": ("final",),
    "status": ("final",),
    "persisted": ("final",),
}
"""Lanes (besides calls and frames) a violation of a check concerns."""

CHECK_CALLS: dict[str, tuple[str, ...]] = {
    "status": ("get",),
    "output": ("get",),
    "output_text": ("get",),
    "persisted": ("get",),
}
"""Calls a violation of a check concerns when its text names none."""


@dataclass(frozen=True)
class ParsedViolation:
    """A violation as the JSON result carries it (``check: message [evidence: ...]``), split."""

    text: str
    check: str
    message: str
    evidence: str | None


def parse_violation(text: str) -> ParsedViolation:
    """Split ``str(Violation)`` back into check, message and evidence (never raises)."""
    check, sep, rest = str(text).partition(": ")
    if not sep or " " in check:
        check, rest = "", str(text)
    evidence = None
    index = rest.find(EVIDENCE_MARK)
    if index >= 0 and rest.endswith("]"):
        rest, evidence = rest[:index], rest[index + len(EVIDENCE_MARK) : -1]
    return ParsedViolation(str(text), check, rest, evidence)


@dataclass
class Location:
    """What a violation concerns: calls and frames by index, and other lanes by name."""

    calls: set[int] = field(default_factory=set)
    frames: set[tuple[int, int]] = field(default_factory=set)  # (call index, frame index)
    lanes: set[str] = field(default_factory=set)


def _nth(calls: list[tuple[int, HttpCall]], n: str | None) -> list[tuple[int, HttpCall]]:
    if n is None:
        return calls
    k = int(n) - 1
    return calls[k : k + 1] if 0 <= k < len(calls) else []


def _named_calls(message: str, history: History, check: str) -> list[int]:
    """Indices of the calls the message's prefix or backticked names point at."""
    indexed = list(enumerate(history.calls))
    by_name = lambda name: [(i, c) for i, c in indexed if c.name == name]  # noqa: E731
    found: list[int] = []
    head = message.split(": ", 1)[0]
    if (m := REPLAY_N.search(head)) is not None:
        found += [i for i, _ in _nth(by_name("replay"), m.group(1))]
    elif (m := RESUME_AFTER.search(head)) is not None:
        found += [i for i, c in by_name("resume")
                  if str(c.params.get("last_event_id")) == m.group(1) and str(c.params.get("via", "header")) == m.group(2)]
    elif (m := READER_N.match(head)) is not None:
        found += [i for i, c in by_name("reader") if str(c.params.get("reader")) == m.group(1)]
    elif head.startswith("transcript") or (head == "replay" and _transcript_replay(history)):
        found += [i for i, _ in by_name("replay")]
    elif head.startswith("live stream") or check == "stream" or head == "live":
        found += [i for i, c in indexed if c.name in ("create", "live")]
    elif head in {c.name for c in history.calls}:
        found += [i for i, _ in by_name(head)]
    for m in NAMED_N.finditer(message):
        found += [i for i, _ in _nth(by_name(m.group(1)), m.group(2))]
    if not found:
        for name in CHECK_CALLS.get(check, ()):
            found += [i for i, _ in by_name(name)][-1:]
    return sorted(set(found))


def _frame_key_matches(frame: SSEFrame, kind: str, key: str) -> bool:
    if frame.type != kind:
        return False
    return key == str(frame.seq) or key == str(frame.id) or (key == "None" and frame.seq is None and frame.id is None)


def locate(text: str, history: History) -> Location:
    """The calls, frames and lanes one violation text names (see module doc)."""
    v = parse_violation(text)
    where = Location(lanes=set(CHECK_LANES.get(v.check, ())))
    where.calls = set(_named_calls(v.message, history, v.check))
    labels = FRAME_LABEL.findall(v.message)
    lost = MISSING.search(v.message)
    if lost and where.calls:  # the labels say where a lost event was seen; the hole is in the named call
        labels = []
    if labels:
        everywhere = list(range(len(history.calls)))
        # the named calls first; a frame named but absent there (lost, say) is found where it was seen
        for scope in ([sorted(where.calls), everywhere] if where.calls else [everywhere]):
            for ci in scope:
                for fi, frame in enumerate(history.calls[ci].frames):
                    if any(_frame_key_matches(frame, kind, key) for kind, key in labels):
                        where.frames.add((ci, fi))
            if where.frames:
                break
    gaps = GAPS_AT.search(v.message)
    if (gaps or lost) and where.calls:  # a missing seq: the frames on either side of the hole
        if gaps:
            missing = {int(n) for n in re.findall(r"\d+", gaps.group(1))}
        else:
            missing = {int(n) for n in re.findall(r"(?:^|; )(\d+) \(", lost.group(1))}
        for ci in where.calls:
            seqs = [(fi, f.seq) for fi, f in enumerate(history.calls[ci].frames) if f.seq is not None]
            for fi, seq in seqs:
                if seq - 1 in missing or seq + 1 in missing:
                    where.frames.add((ci, fi))
    if v.check in ("evidence", "exit", "notes") and not history.faults:
        where.lanes.discard("faults")
    return where


def _transcript_replay(history: History) -> bool:
    """The history's ``replay`` call is its profile's whole read after the end (the transcript)."""
    profile = PROFILES.get(history.profile)
    return profile is not None and profile.transcript_after_end
