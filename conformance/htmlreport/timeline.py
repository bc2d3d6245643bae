"""A cell's detail as view data (pure): lanes on one time axis, located violations, output diff.

``cell_view`` turns one JSON result (as the plugin records it) and its History into a
``CellView`` the templates draw without computing anything: every position is a percentage of
one time axis (``Axis``: real time, each recorded instant given a little room), every frame
already knows the numbers of the violations that concern it.
"""

from __future__ import annotations

import bisect
import difflib
import math
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.history import History, HttpCall, SSEFrame

from .locate import Location, ParsedViolation, locate, parse_violation

PAGE = 100
"""Frames per page of a call's frame table (each page is one collapsible block)."""

LABEL_ROOM = 9.0
"""% of the axis one frame label needs at 1x zoom (about 80 px of a 900 px track): a label that
has no room in any of the lane's three label rows is shown at 10x zoom (and as a tooltip)."""


def signal_name(exit_code: int | None) -> str | None:
    """``SIGKILL`` for exit code -9 (a process ended by a signal), else None."""
    if exit_code is None or exit_code >= 0:
        return None
    try:
        return signal.Signals(-exit_code).name
    except ValueError:
        return f"signal {-exit_code}"


def short_type(kind: str | None) -> str:
    """``output_text.delta`` for ``response.output_text.delta`` (the profile prefix dropped)."""
    if not kind:
        return "(no type)"
    head, dot, tail = kind.partition(".")
    tail = tail if dot and head in ("response", "invocation") else kind
    return tail.replace("output_text.", "text.").replace("output_item.", "item.").replace("content_part.", "part.")


class Axis:
    """A monotone time axis in % of the track: real time, with every recorded instant given at
    least ``MIN_STEP`` units of room, so a burst of frames a millisecond apart stays readable
    while idle stretches keep their length relative to each other (order is never changed)."""

    MIN_STEP = 1.0  # units of room per distinct instant
    SPAN = 100.0  # units for the whole real duration

    def __init__(self, times: list[float], t_end: float) -> None:
        self.t_end = t_end if t_end > 0 else 1.0
        knots = sorted({round(max(t, 0.0), 6) for t in times} | {0.0, round(self.t_end, 6)})
        self.knots = knots
        units = [0.0]
        for a, b in zip(knots, knots[1:]):
            units.append(units[-1] + self.MIN_STEP + self.SPAN * (b - a) / self.t_end)
        total = units[-1] or 1.0
        self.xs = [100.0 * u / total for u in units]

    def x(self, t: float | None) -> float:
        """Where ``t`` sits, in % (linear between the two recorded instants around it)."""
        t = min(max(float(t or 0.0), 0.0), self.knots[-1])
        i = bisect.bisect_left(self.knots, t)
        if i < len(self.knots) and self.knots[i] == t:
            return round(self.xs[i], 3)
        a, b = self.knots[i - 1], self.knots[i]
        xa, xb = self.xs[i - 1], self.xs[i]
        return round(xa + (xb - xa) * (t - a) / (b - a), 3)


def _excerpt(text: Any, limit: int = 160) -> str:
    s = text if isinstance(text, str) else repr(text)
    s = s.replace("\n", "\\n")
    return s if len(s) <= limit else s[: limit - 1] + "…"


@dataclass
class ViolationView:
    """One violation, numbered from 1, with the events it concerns (``locate``)."""

    number: int
    check: str
    message: str
    evidence: str | None
    text: str
    anchors: list[tuple[str, str]] = field(default_factory=list)  # (html id, text): frames, then calls
    lanes: list[str] = field(default_factory=list)
    x: float = 0.0  # where its note sits on the axis (%)


@dataclass
class FrameView:
    """One SSE frame on the axis: its cursor (seq or id), type, data excerpt, violations."""

    anchor: str
    index: int
    t: float
    x: float
    key: str  # seq (responses) or id (invocations), "" when none
    type: str
    short: str
    label: str  # type#key, as checkers write it
    data: str
    incarnation: int
    violations: list[int] = field(default_factory=list)
    show_label: bool = True
    row: int = 0  # label row in the lane (alternates to keep neighbours apart)


@dataclass
class CallView:
    """One HTTP call: a bar from its start to its end, its frames, the violations naming it."""

    anchor: str
    index: int
    name: str
    method: str
    url: str
    status: int | None
    ended: str
    error: str | None
    t0: float
    t1: float
    x0: float
    width: float
    incarnation: int
    params: dict[str, Any]
    body: str
    frames: list[FrameView]
    violations: list[int] = field(default_factory=list)
    notes: list[ViolationView] = field(default_factory=list)  # violations naming this call but none of its frames

    @property
    def title(self) -> str:
        status = self.status if self.status is not None else f"transport error ({self.error or self.ended})"
        return f"{self.name} {self.method} {self.url} → {status}"

    @property
    def pages(self) -> list[list[FrameView]]:
        return [self.frames[i : i + PAGE] for i in range(0, len(self.frames), PAGE)] or [[]]


@dataclass
class IncarnationView:
    """One server lifetime: spawn, ready and exit (mode and signal), its log."""

    anchor: str
    index: int
    pid: int | None
    t_start: float
    t_ready: float | None
    t_exit: float | None
    x_start: float
    x_ready: float | None
    x_exit: float
    exit_mode: str | None
    exit_code: int | None
    signal: str | None
    log_href: str | None
    violations: list[int] = field(default_factory=list)

    @property
    def exit_text(self) -> str:
        if self.t_exit is None:
            return "alive at the end"
        how = self.exit_mode or "exited"
        return f"{how} ({self.signal})" if self.signal else f"{how} (code {self.exit_code})"


@dataclass
class FaultView:
    """A fault the executor delivered, with the observation that fired it."""

    anchor: str
    kind: str
    trigger: str
    observed: str | None
    t: float
    x: float
    incarnation: int
    exit_mode: str | None
    restarted_as: int | None
    last_seq_before: int | None
    violations: list[int] = field(default_factory=list)


@dataclass
class MarkerView:
    """One marker line, placed at the time the kit first saw it when that was recorded."""

    line: str
    t: float | None  # when the kit first saw the line (None: not recorded, an older history)
    x: float | None
    row: int = 0
    show_label: bool = True


@dataclass
class DiffLine:
    """One line of the expected-vs-actual output diff (one script delta per line)."""

    kind: str  # same | add | del
    text: str


@dataclass
class CellView:
    """Everything the detail of one cell shows."""

    anchor: str
    id: str
    contract: str
    row: str
    path: str
    variant: str
    level: str
    verdict: str
    fault: str
    source: str
    duration_s: float | None
    kind: str  # cell | suite
    t_end: float = 0.0
    ticks: list[tuple[float, str]] = field(default_factory=list)
    violations: list[ViolationView] = field(default_factory=list)
    incarnations: list[IncarnationView] = field(default_factory=list)
    faults: list[FaultView] = field(default_factory=list)
    markers: list[MarkerView] = field(default_factory=list)
    calls: list[CallView] = field(default_factory=list)
    final_violations: list[int] = field(default_factory=list)
    final_status: str | None = None
    expected_text: str | None = None
    actual_text: str | None = None
    diff: list[DiffLine] = field(default_factory=list)
    history_href: str | None = None
    problem: str | None = None  # why no timeline could be drawn (history missing or unreadable)
    notes: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)  # a suite's recorded (shrunk) schedule
    frame_count: int = 0

    @property
    def failing(self) -> bool:
        return self.verdict in ("fail", "not_testable", "stale_baseline")


def href(path: str | os.PathLike[str] | None, base_dir: Path | None) -> str | None:
    """A link to ``path`` relative to the report's directory (as posix), or None."""
    if not path:
        return None
    if base_dir is None:
        return Path(path).as_posix()
    try:
        return Path(os.path.relpath(Path(path).resolve(), base_dir.resolve())).as_posix()
    except ValueError:  # another drive (Windows)
        return Path(path).as_posix()


def _nice_ticks(axis: Axis) -> list[tuple[float, str]]:
    """About eight round time marks (1-2-5 steps) from 0 to the end: (x %, label)."""
    raw = axis.t_end / 8
    scale = 10.0 ** math.floor(math.log10(raw))
    step = next(m * scale for m in (1, 2, 5, 10) if m * scale >= raw)
    marks = [(axis.x(k * step), f"{round(k * step, 6):g}s") for k in range(int(axis.t_end / step) + 1)]
    kept: list[tuple[float, str]] = []
    for x, label in marks:  # drop a mark the compression pushed onto its neighbour
        if not kept or x - kept[-1][0] >= 3.0:
            kept.append((x, label))
    return kept


def _call_span(call: HttpCall) -> tuple[float, float]:
    times = [call.started_at, call.ended_at] + [f.t for f in call.frames]
    known = [t for t in times if isinstance(t, (int, float))]
    t0 = min([call.started_at] + [f.t for f in call.frames]) if call.frames else call.started_at
    return float(t0 or 0.0), float(max(known) if known else 0.0)


def _frame_key(frame: SSEFrame) -> str:
    if frame.seq is not None:
        return str(frame.seq)
    return frame.id or ""


def expected_vs_actual(history: History) -> tuple[str | None, str | None]:
    """The output text the markers predict and the text the final object carries (None when
    either cannot be told: no delta count, no start marker, no final object)."""
    from conformance.checks.output import final_output_text, predict_output

    actual = final_output_text(history) if isinstance(history.final, dict) else None
    deltas = history.script.get("deltas") if isinstance(history.script, dict) else None
    expected = None
    if isinstance(deltas, int) and not isinstance(deltas, bool) and any(m.startswith("start ") for m in history.markers):
        try:
            expected = predict_output(history.markers, deltas).text
        except Exception:  # a malformed marker stream: the checkers already said so
            expected = None
    return expected, actual


def text_diff(expected: str, actual: str) -> list[DiffLine]:
    """A line diff of two output texts, one script delta (``a1:d0 ``) per line."""
    def pieces(s: str) -> list[str]:
        return [p + " " for p in s.split(" ") if p] if s else []

    out = []
    for line in difflib.ndiff(pieces(expected), pieces(actual)):
        tag, text = line[:1], line[2:]
        if tag == "?":
            continue
        out.append(DiffLine({"+": "add", "-": "del"}.get(tag, "same"), text))
    return out


def cell_view(
    result: dict[str, Any],
    history: History | None,
    *,
    anchor: str,
    base_dir: Path | None = None,
    problem: str | None = None,
) -> CellView:
    """The detail of one cell (or suite test) from its JSON result and History."""
    view = CellView(
        anchor=anchor,
        id=str(result.get("id", "?")),
        contract=str(result.get("contract") or ""),
        row=str(result.get("row") or ""),
        path=str(result.get("path") or ""),
        variant=str(result.get("variant") or ""),
        level=str(result.get("level") or ""),
        verdict=str(result.get("verdict") or "not_run"),
        fault=str(result.get("fault") or ""),
        source=str(result.get("source") or ""),
        duration_s=result.get("duration_s") if isinstance(result.get("duration_s"), (int, float)) else None,
        kind=str(result.get("kind") or "cell"),
        problem=problem,
    )
    texts = result.get("violations")
    texts = [str(t) for t in texts] if isinstance(texts, list) else []
    hist_path = result.get("history")
    view.history_href = href(hist_path, base_dir) if isinstance(hist_path, str) and hist_path else None
    steps = result.get("steps")
    view.steps = [str(s) for s in steps] if isinstance(steps, list) else []
    parsed: list[ParsedViolation] = [parse_violation(t) for t in texts]
    view.violations = [ViolationView(n, p.check, p.message, p.evidence, p.text) for n, p in enumerate(parsed, 1)]
    if history is None:
        return view
    view.notes = list(history.notes)

    times: list[float] = [0.0]
    for inc in history.incarnations:
        times += [t for t in (inc.started_at, inc.ready_at, inc.exited_at) if t is not None]
    for call in history.calls:
        times += list(_call_span(call))
    times += [f.t for f in history.faults]
    for call in history.calls:
        times += [f.t for f in call.frames]
    marker_times = history.marker_times or []
    times += [t for t in marker_times if isinstance(t, (int, float))]
    t_end = max(times) * 1.02 or 1.0
    axis = Axis(times, t_end)
    view.t_end = t_end
    view.ticks = _nice_ticks(axis)

    locations: list[Location] = [locate(t, history) for t in texts]
    frame_hits: dict[tuple[int, int], list[int]] = {}
    call_hits: dict[int, list[int]] = {}
    for n, where in enumerate(locations, 1):
        for key in where.frames:
            frame_hits.setdefault(key, []).append(n)
        for ci in where.calls:
            call_hits.setdefault(ci, []).append(n)

    for inc in history.incarnations:
        exit_t = inc.exited_at
        view.incarnations.append(IncarnationView(
            anchor=f"{anchor}-inc{inc.index}", index=inc.index, pid=inc.pid, t_start=inc.started_at,
            t_ready=inc.ready_at, t_exit=exit_t, x_start=axis.x(inc.started_at),
            x_ready=axis.x(inc.ready_at) if inc.ready_at is not None else None,
            x_exit=axis.x(exit_t if exit_t is not None else t_end), exit_mode=inc.exit_mode,
            exit_code=inc.exit_code, signal=signal_name(inc.exit_code), log_href=href(inc.log_path, base_dir),
        ))
    for k, fault in enumerate(history.faults):
        view.faults.append(FaultView(
            anchor=f"{anchor}-fault{k}", kind=fault.kind, trigger=fault.trigger, observed=fault.observed,
            t=fault.t, x=axis.x(fault.t), incarnation=fault.incarnation, exit_mode=fault.exit_mode,
            restarted_as=fault.restarted_as, last_seq_before=fault.last_seq_before,
        ))
    last_x = [-1e9, -1e9, -1e9]
    for i, line in enumerate(history.markers):
        t = marker_times[i] if i < len(marker_times) and isinstance(marker_times[i], (int, float)) else None
        x = axis.x(t) if t is not None else None
        row = max(range(3), key=lambda r: (x or 0) - last_x[r])
        show = x is not None and x - last_x[row] >= LABEL_ROOM
        if show:
            last_x[row] = x
        view.markers.append(MarkerView(line, t, x, row, show))

    for ci, call in enumerate(history.calls):
        t0, t1 = _call_span(call)
        frames: list[FrameView] = []
        last_x = [-1e9, -1e9, -1e9]  # the last labelled x per label row
        for fi, frame in enumerate(call.frames):
            key = _frame_key(frame)
            hits = frame_hits.get((ci, fi), [])
            x = axis.x(frame.t)
            room = [x - last for last in last_x]
            row = max(range(3), key=lambda r: room[r])
            show = bool(hits) or room[row] >= LABEL_ROOM
            if show:
                last_x[row] = x
            frames.append(FrameView(
                anchor=f"{anchor}-c{ci}-f{fi}", index=fi, t=frame.t, x=x, key=key,
                type=frame.type or "", short=short_type(frame.type), label=f"{frame.type}#{key or None}",
                data=_excerpt(frame.data), incarnation=frame.incarnation, violations=hits,
                show_label=show, row=row if show else fi % 3,
            ))
        body = call.body if call.body is not None else call.body_text
        view.calls.append(CallView(
            anchor=f"{anchor}-c{ci}", index=ci, name=call.name, method=call.method, url=call.url,
            status=call.status, ended=call.ended, error=call.error, t0=t0, t1=t1, x0=axis.x(t0),
            width=max(axis.x(t1) - axis.x(t0), 0.15), incarnation=call.incarnation,
            params=dict(call.params) if isinstance(call.params, dict) else {},
            body="" if body in (None, "") else _excerpt(body, 400), frames=frames,
            violations=sorted(set(call_hits.get(ci, []) + [n for f in frames for n in f.violations])),
        ))
        view.frame_count += len(frames)

    for v, where in zip(view.violations, locations):
        frame_anchors = [(view.calls[ci].frames[fi].anchor, f"{view.calls[ci].name} {view.calls[ci].frames[fi].label}")
                         for ci, fi in sorted(where.frames)]
        call_anchors = [(view.calls[ci].anchor, f"call {view.calls[ci].name} #{ci}") for ci in sorted(where.calls)]
        v.anchors = frame_anchors + call_anchors
        v.lanes = sorted(where.lanes)
        if where.frames:
            ci, fi = min(where.frames)
            v.x = view.calls[ci].frames[fi].x
        elif where.calls:
            v.x = view.calls[min(where.calls)].x0
        for ci in where.calls:
            if not any(c == ci for c, _ in where.frames):
                view.calls[ci].notes.append(v)
        if "incarnations" in where.lanes:
            for inc in view.incarnations:
                if inc.exit_mode or inc.t_exit is not None:
                    inc.violations.append(v.number)
        if "faults" in where.lanes:
            for f in view.faults:
                f.violations.append(v.number)
        if "final" in where.lanes:
            view.final_violations.append(v.number)

    if isinstance(history.final, dict):
        status = history.final.get("status")
        view.final_status = str(status) if status is not None else None
    view.expected_text, view.actual_text = expected_vs_actual(history)
    if view.expected_text is not None and view.actual_text is not None:
        view.diff = text_diff(view.expected_text, view.actual_text)
    return view
