"""The executor around a network fault, against the bundled reference target: the cell's fault
proxy carries the calls, the fault's record holds what the proxy did, and nothing of the proxy
(thread, socket) outlives the cell."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from conformance.checks import run_checks
from conformance.contract import load_contract
from conformance.executor import run_cell
from conformance.targets import load_target

ROOT = Path(__file__).resolve().parents[2]


def cell(table: str, name: str):
    return next(c for c in load_contract(str(ROOT / "contracts" / f"{table}.yaml")).cells if c.name == name)


def proxy_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("netproxy")]


def test_a_reset_cell_runs_through_the_proxy_and_leaves_nothing_behind(tmp_path: Path) -> None:
    fds = len(os.listdir("/proc/self/fd"))
    the_cell = cell("responses/network", "BG[RS]")
    history = run_cell(the_cell, load_target(), tmp_path)
    assert run_checks(history, the_cell) == []
    [reset] = history.faults
    assert reset.kind == "reset" and reset.detail["applied"] is True and reset.detail["bytes_before"] > 0
    live, resume = history.calls_named("create")[0], history.calls_named("reconnect")[0]
    port = int(live.url.split(":")[2].split("/")[0])
    assert resume.url.startswith(f"http://127.0.0.1:{port}/")  # the resume went through the proxy too ...
    assert "Connection reset" in (live.error or "")  # ... and the live stream got the RST
    assert resume.params["starting_after"] == max(f.seq for f in live.frames)
    assert proxy_threads() == []
    assert len(os.listdir("/proc/self/fd")) <= fds


def test_a_cut_that_cannot_act_is_not_a_pass(tmp_path: Path) -> None:
    """A cut at the terminal status has no live stream left to cut: the cell is not testable
    (a note, and the evidence says the fault did not happen), it never passes.  Decided from the
    run (terminal status reached, terminal event seen), not from whether the client's socket
    still lingers, which was a race (the connection was sometimes still known under load)."""
    import dataclasses

    base = cell("responses/network", "BG[CM]")
    the_cell = dataclasses.replace(base, fault=dataclasses.replace(base.fault, at="terminal"))
    history = run_cell(the_cell, load_target(), tmp_path)
    violations = run_checks(history, the_cell)
    assert {"evidence", "notes"} <= {v.check for v in violations}, violations
    assert any("not testable: cut_mid_frame: the live stream" in v.message and "before the fault: nothing left to "
               "cut_mid_frame" in v.message for v in violations), violations
    assert proxy_threads() == []
