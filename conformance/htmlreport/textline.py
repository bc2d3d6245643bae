"""The compact text timeline a failing cell's terminal message ends with (about a dozen lines):
the incarnations, the faults, the calls, and the frames around the first located violation, so
that a CI log alone explains most failures."""

from __future__ import annotations

from collections import Counter

from conformance.history import History, HttpCall

from .locate import locate
from .timeline import signal_name

AROUND = 3
"""Frames shown on each side of the first frame a violation names."""


def _t(t: float | None) -> str:
    return "-" if t is None else f"{t:.3f}"


def _call_line(calls: list[HttpCall]) -> str:
    parts = []
    for name, n in Counter(c.name for c in calls).items():
        same = [c for c in calls if c.name == name]
        statuses = ",".join(sorted({str(c.status) if c.status is not None else "err" for c in same}))
        frames = sum(len(c.frames) for c in same)
        parts.append(f"{name}×{n}→{statuses}" + (f" ({frames} fr)" if frames else ""))
    return "calls: " + "; ".join(parts) if parts else "calls: none"


def text_timeline(history: History, violations: list[str]) -> list[str]:
    """About a dozen lines: one per incarnation and fault, one for the calls, then the frames
    around the first frame a violation names (else the live frames around the first fault)."""
    lines = ["timeline (seconds since the cell started):"]
    for inc in history.incarnations:
        ended = "alive at the end"
        if inc.exited_at is not None:
            sig = signal_name(inc.exit_code)
            ended = f"exit {_t(inc.exited_at)} {inc.exit_mode or 'exited'}" + (f" ({sig})" if sig else f" (code {inc.exit_code})")
        lines.append(f"  incarnation {inc.index} pid {inc.pid}: spawn {_t(inc.started_at)}, ready {_t(inc.ready_at)}, {ended}")
    for f in history.faults:
        restarted = f", restarted as {f.restarted_as}" if f.restarted_as is not None else ""
        lines.append(f"  fault {f.kind}@{f.trigger} at {_t(f.t)} on incarnation {f.incarnation} "
                     f"(observed {f.observed!r}, last seq {f.last_seq_before}){restarted}")
    lines.append("  " + _call_line(history.calls))
    target = None
    for n, text in enumerate(violations, 1):
        where = locate(text, history)
        if where.frames:
            target = (n, min(where.frames), where.frames)
            break
    if target is not None:
        n, (ci, fi), hits = target
        call = history.calls[ci]
        lines.append(f"  frames of call {ci} ({call.name}) around violation {n}:")
        window = range(max(fi - AROUND, 0), min(fi + AROUND + 1, len(call.frames)))
    else:
        live = [i for i, c in enumerate(history.calls) if c.name in ("create", "live") and c.frames]
        if not live:
            return lines
        ci, hits = live[0], set()
        call = history.calls[ci]
        fault = history.faults[0] if history.faults else None
        # the frames the hit incarnation served (a trigger is noted before the frames it waits for
        # may have arrived, so the fault's time is no cut-off)
        served = [i for i, f in enumerate(call.frames) if fault is None or f.incarnation == fault.incarnation]
        after = served[-1] + 1 if served else 0
        lines.append(f"  last live frames of {call.name}" + (f" from incarnation {fault.incarnation} (the fault's):" if fault else ":"))
        window = range(max(after - 2 * AROUND, 0), after)
    for i in window:
        f = call.frames[i]
        key = f.seq if f.seq is not None else f.id
        mark = "  <- violation" if (ci, i) in hits else ""
        lines.append(f"    {_t(f.t)} inc {f.incarnation} #{key} {f.type}{mark}")
    return lines
