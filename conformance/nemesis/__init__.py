"""The nemesis: the one place where the kit delivers a fault (docs/architecture.md "Faults").

Every fault goes through here: a cell's process faults (``sigterm``, ``sigkill``,
``sigterm_then_sigkill``, ``drain``, ``pause``, ``crash_twice``'s second kill, the restart after
them), a client disconnect, the network faults of the cell's fault proxy (``network.py``), and
the faults the exploration machine, the load run, the multi-worker schedules and the store
suite decide.  The nemesis delivers a fault through the harness (signals, restarts) or the
proxy, and records it as a ``FaultRecord``: the observation that fired it, the incarnation it
hit, the exit mode the harness recorded, the incarnation started after it.

It does not decide when (that is the caller's schedule: the executor's, a machine rule, a load
or worker schedule) and speaks no wire beyond what the proxy needs.  A new fault kind is added
here: a process fault in ``STOPS`` / ``Nemesis.stop``, a network fault in ``network.py``.
"""

from __future__ import annotations

import subprocess
from typing import Any, Callable

from harness.groups import kill_group
from harness.process import Target

from ..drivers.base import StreamControl
from ..history import FaultRecord
from .network import NetFaults

STOPS = frozenset({"sigterm", "sigkill", "sigterm_then_sigkill", "drain", "crash_twice"})
"""Faults that stop the target's process (the exit mode is the proof); ``crash_twice``'s first
stop is a SIGKILL (its caller kills the recovering attempt again with a ``sigkill``)."""

TERM_THEN_KILL_GRACE_S = 0.05
"""``sigterm_then_sigkill``: the grace between the SIGTERM and the SIGKILL."""


class Nemesis:
    """Delivers faults to one target and appends each one's record to ``faults`` (a History's
    list, shared with the caller).  ``net`` is the cell's fault proxy, if its path has one."""

    def __init__(
        self,
        target: Target,
        clock: Callable[[], float],
        faults: list[FaultRecord] | None = None,
        net: NetFaults | None = None,
    ) -> None:
        self.target = target
        self.clock = clock
        self.faults: list[FaultRecord] = faults if faults is not None else []
        self.net = net

    # -- records -------------------------------------------------------------------------
    def incarnation(self) -> int:
        """The index of the incarnation a fault delivered now hits."""
        return max(len(self.target.incarnations) - 1, 0)

    def record(
        self, kind: str, trigger: str, observed: str | None, *, last_seq_before: int | None = None
    ) -> FaultRecord:
        """A new fault about to be delivered now, already in ``faults``."""
        rec = FaultRecord(kind=kind, trigger=trigger, observed=observed, t=self.clock(),
                          incarnation=self.incarnation(), last_seq_before=last_seq_before)
        self.faults.append(rec)
        return rec

    # -- process faults ------------------------------------------------------------------
    def stop(self, record: FaultRecord, *, release: Callable[[], None] | None = None) -> str | None:
        """Stop the target's process as ``record.kind`` says and record its exit mode.
        ``drain`` calls ``release`` right after the SIGTERM (a draining server lets the held
        handler end inside its grace)."""
        kind = record.kind
        if kind == "sigterm":
            inc = self.target.terminate()
        elif kind == "drain":
            inc = self.target.terminate(after_signal=release)
        elif kind == "sigterm_then_sigkill":
            inc = self.target.terminate(grace_s=TERM_THEN_KILL_GRACE_S)
        elif kind in ("sigkill", "crash_twice"):
            inc = self.target.kill()
        else:
            raise ValueError(f"{kind!r} is not a process stop (known: {', '.join(sorted(STOPS))})")
        record.exit_mode = inc.exit_mode
        return record.exit_mode

    def restart(self, record: FaultRecord) -> int:
        """Start the target's next incarnation after ``record``'s fault (same port, same state)."""
        record.restarted_as = self.target.restart().index
        return record.restarted_as

    def crash(
        self,
        kind: str,
        trigger: str,
        observed: str | None,
        *,
        release: Callable[[], None] | None = None,
        last_seq_before: int | None = None,
    ) -> FaultRecord:
        """Record, stop (``kind``), ``release`` what was held, restart: a whole crash-restart."""
        rec = self.record(kind, trigger, observed, last_seq_before=last_seq_before)
        self.stop(rec, release=release)
        if release is not None and kind != "drain":
            release()
        self.restart(rec)
        return rec

    def pause_resume(self, record: FaultRecord | None = None) -> None:
        """SIGSTOP the target's process group, then SIGCONT it (each waited for, bounded)."""
        self.target.pause()
        self.target.resume()

    def freeze(self, record: FaultRecord | None = None) -> None:
        """SIGSTOP the target's process group and leave it stopped until ``thaw()``."""
        self.target.pause()

    def thaw(self) -> None:
        """SIGCONT a frozen target."""
        self.target.resume()

    # -- client and network faults ---------------------------------------------------------
    def disconnect(self, control: StreamControl) -> None:
        """The client leaves: shut down the socket of the stream ``control`` belongs to."""
        control.drop()

    def network(self, run: Any, record: FaultRecord, rid: str) -> None:
        """Deliver the cell's network fault through its proxy (``network.NetFaults.deliver``)."""
        if self.net is None:
            raise ValueError(f"{record.kind!r} is a network fault but the cell has no fault proxy")
        self.net.deliver(run, record, rid)

    def close(self) -> None:
        """Close the fault proxy, if any (every connection through it ends)."""
        if self.net is not None:
            self.net.close()


def kill_writer(proc: subprocess.Popen[bytes], wait_s: float) -> int:
    """SIGKILL a process the caller spawned itself (a store suite's writer, in its own session)
    and reap it; its exit code (``-SIGKILL`` when the signal killed it)."""
    return kill_group(proc, wait_s)


__all__ = ["STOPS", "NetFaults", "Nemesis", "kill_writer"]
