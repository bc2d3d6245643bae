"""The nemesis's network part: the fault proxy in front of the target and how each fault is
delivered on the live stream's connection (docs/contracts.md "Network faults").

A cell whose path is a network fault gets a ``harness.netproxy.FaultProxy`` on its own loopback
port; the executor's drivers talk to it instead of the target, so every call of the cell passes
through it, but only the live stream's connection (found by its client port) is faulted.  The
proxy knows bytes and frame boundaries; this module knows the order of a cell around a network
fault (arm, release the held handler, wait for the fault to act, a process fault while the
client is away, resume by cursor), and the executor's run knows the wire.  Every wait is
bounded by the cell timeout.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError
from harness.netproxy import FaultProxy, NetFault

from ..drivers.base import StreamControl
from ..history import FaultRecord, HttpCall
from ..model import Cell
from ..profiles import profile_of

if TYPE_CHECKING:  # the executor imports this module; the type is only for annotations
    from ..executor import CellRun

SLOW_RCVBUF = 1
"""The proxy's receive buffer toward the target for a slow reader: the kernel minimum, so the target,
not the proxy's kernel, holds what the reader has not taken yet."""

RECONNECT_ATTEMPTS = 3
"""Resumes tried after a fault before giving up (a refused connection is retried)."""


class NetFaults:
    """The proxy of one cell and the delivery of its path's network fault."""

    def __init__(self, cell: Cell, target_port: int, timeout_s: float) -> None:
        self.cell = cell
        self.spec = cell.fault
        self.timeout = timeout_s
        rcvbuf = SLOW_RCVBUF if self.spec.kind == "slow_reader" else None
        self.proxy = FaultProxy(target_port, upstream_rcvbuf=rcvbuf).start()
        self.readers: list[tuple[threading.Thread, StreamControl]] = []

    @classmethod
    def for_cell(cls, cell: Cell, target_port: int, timeout_s: float) -> NetFaults | None:
        """A proxy for a cell whose path is a network fault; None for any other cell."""
        return cls(cell, target_port, timeout_s) if cell.fault.is_net_fault else None

    @property
    def url(self) -> str:
        return self.proxy.url

    def close(self) -> None:
        """Drop the resume streams, close the proxy (every connection ends), join the readers."""
        for _, control in self.readers:
            control.drop()
        self.proxy.close()
        for thread, _ in self.readers:
            thread.join(timeout=5)

    # -- delivery ------------------------------------------------------------------------
    def deliver(self, run: CellRun, record: FaultRecord, rid: str) -> None:
        """Deliver the path's network fault at its trigger, then what follows it: a process
        fault while the client is away (``then``), the resume by cursor (``reconnect``)."""
        kind = self.spec.kind
        live = run.live_stream
        if live is None:
            raise _not_testable(run, "there is no live stream to fault")
        if self.spec.at == "terminal" or live.ended != "in_flight" or _carried_terminal(run, live):
            # whether its socket still lingers at the client is a race: never fault a finished stream
            raise _not_testable(run, f"the live stream {_how_over(run, live)} before the fault: nothing left to {kind}")
        resume = "reconnect" in self.cell.expect
        try:
            if kind == "refuse":
                run.nemesis.disconnect(run.control)  # the client leaves; its next connection is refused
                self._await_end(run, live, "the live stream to end after the client dropped it")
                outcome = self.proxy.arm(NetFault("refuse"))
                self._crash_if_asked(run)
                self._resume(run, rid)
                record.detail = self.proxy.wait_applied(outcome, self.timeout)
                return
            port = run.control.local_port()
            if port is None:
                raise _not_testable(run, "the live stream's connection is not known (no socket captured)")
            before = self._bytes_down(port)
            outcome = self.proxy.arm(_net_fault(self.spec.kind, dict(self.spec.params)), port)
            if kind == "reset":
                self.proxy.wait_applied(outcome, self.timeout)
                self._await_end(run, live, "the live stream to end after the reset")
                if not self._background():  # a foreground stream's reset is a disconnect: the row's rule
                    run._await_handler_stop("the connection reset")
            elif kind == "slow_reader":
                run.markers.release(run.tag)
                run._poll_terminal(rid)
                at_terminal = self._bytes_down(port) - before
                self._await_end(run, live, "the slow reader's stream to end")
                outcome.detail.update(bytes_at_terminal=at_terminal, stream_bytes=self._bytes_down(port) - before)
                self.proxy.wait_applied(outcome, self.timeout)
            else:  # cut_mid_frame, stall: the next frames come once the handler goes on
                run.markers.release(run.tag)
                self.proxy.wait_applied(outcome, self.timeout + float(self.spec.param("seconds", 0)))
                self._await_end(run, live, f"the live stream to end after the {kind}")
            record.detail = outcome.summary()
            self._crash_if_asked(run)
            if resume and not _carried_terminal(run, live):
                self._resume(run, rid)
        except HarnessError as exc:
            record.detail = record.detail or {"kind": kind, "applied": False, "error": str(exc)}
            raise
        finally:
            run.markers.release(run.tag)

    def _background(self) -> bool:
        return profile_of(self.cell.profile).always_background or bool(self.cell.request.get("background", False))

    def _bytes_down(self, port: int) -> int:
        return next((c.bytes_down for c in self.proxy.connections() if c.client_port == port), 0)

    def _await_end(self, run: CellRun, call: HttpCall, what: str) -> None:
        run.await_(lambda: call.ended != "in_flight", what, run._last_seen)

    def _crash_if_asked(self, run: CellRun) -> None:
        """``then: <process fault>``: stop the target while the client is away, release, restart."""
        kind = self.spec.then
        if kind is None:
            return
        run.process_faulted = True
        run.nemesis.crash(
            kind,
            f"after {self.spec.kind}",
            f"the client was away after the {self.spec.kind}",
            release=lambda: run.markers.release(run.tag),
            last_seq_before=run.live_cursor_max(),
        )

    def _resume(self, run: CellRun, rid: str) -> None:
        """Resume by cursor (the last whole event the client counted) through the proxy: wait
        until the resume answers (a refused attempt is retried), release the held handler, and
        follow the resumed stream to its end."""
        cursor = run.live_cursor_max()
        call: HttpCall | None = None
        for attempt in range(1, RECONNECT_ATTEMPTS + 1):
            control = StreamControl()
            before = len(run.recorder.calls)
            thread = threading.Thread(target=run._reconnect_call, args=(rid, cursor, control, attempt), daemon=True)
            self.readers.append((thread, control))
            thread.start()

            def mine() -> HttpCall | None:
                return next((c for c in run.recorder.calls[before:] if c.name == "reconnect"), None)

            call = run.await_(mine, f"reconnect attempt {attempt} to start", run._last_seen)
            run.await_(lambda: call.status is not None or call.ended != "in_flight",
                       f"reconnect attempt {attempt} (cursor {cursor}) to answer", run._last_seen)
            if call.status is not None:
                break
        run.markers.release(run.tag)
        if call is not None and call.status is not None:
            self._await_end(run, call, "the resumed stream to end")


def _net_fault(kind: str, params: dict[str, Any]) -> NetFault:
    if kind == "stall":
        return NetFault(kind, seconds=float(params["seconds"]), then=str(params.get("then", "resume")))
    if kind == "slow_reader":
        return NetFault(kind, bytes_per_s=int(params["bytes_per_s"]))
    return NetFault(kind)


def _not_testable(run: CellRun, why: str) -> Exception:
    from ..executor import NotTestable

    return NotTestable(f"{run.cell.fault.kind}: {why}")


def _carried_terminal(run: CellRun, live: HttpCall) -> bool:
    return any(f.type in run.TERMINAL_EVENT_TYPES for f in live.frames)


def _how_over(run: CellRun, live: HttpCall) -> str:
    if _carried_terminal(run, live):
        return "had carried its terminal event"
    if live.ended != "in_flight":
        return f"had ended ({live.ended})"
    return "belongs to a run already at the terminal status the fault waited for"
