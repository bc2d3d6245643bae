"""Command line: bad arguments exit 2 with one line on stderr."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "args",
    [
        ["--state-dir", "{d}"],
        ["--port", "x", "--state-dir", "{d}"],
        ["--port", "70000", "--state-dir", "{d}"],
        ["--port", "8000"],
        ["--port", "8000", "--state-dir", "{d}", "--shutdown-grace", "-1"],
        ["--port", "8000", "--state-dir", "{d}", "--shutdown-grace", "nan"],
        ["--port", "8000", "--state-dir", "{d}", "--store", "sqlite-not-yet"],
        ["--port", "8000", "--state-dir", "{f}"],
        ["--port", "8000", "--state-dir", "{d}", "--bogus"],
        ["--port", "8000", "--state-dir", "{d}", "--plain-script", "{{not json"],
        ["--port", "8000", "--state-dir", "{d}", "--plain-script", "[1]"],
        ["--port", "8000", "--state-dir", "{d}", "--plain-script", '{{"deltas": -1}}'],
        ["--port", "8000", "--state-dir", "{d}", "--plain-script", '{{"hold_at": 1, "tag": "t"}}'],
    ],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path, args: list[str]) -> None:
    afile = tmp_path / "a-file"
    afile.write_text("x")
    argv = [a.format(d=tmp_path / "state", f=afile) for a in args]
    proc = subprocess.run([sys.executable, "-m", "reference_impl", *argv], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("reference_impl: error: "), proc.stderr


def test_listens_on_loopback_only_by_default(make_server) -> None:
    """Started without --host, the server's listening sockets are bound to 127.0.0.1 only."""
    import psutil

    target = make_server()
    leader = psutil.Process(target.pid)
    listening = [c.laddr for p in (leader, *leader.children(recursive=True))
                 for c in p.net_connections("inet") if c.status == psutil.CONN_LISTEN]
    assert listening, f"no listening socket found for pid {target.pid}"
    assert {addr.ip for addr in listening} == {"127.0.0.1"} and {addr.port for addr in listening} == {target.port}, listening


def test_plain_script_is_what_a_request_without_a_script_runs(make_server) -> None:
    """``--plain-script`` (black-box runs, docs/protocol.md §8): a plain prompt runs that script;
    a request with its own script still runs its own."""
    import httpx

    from ri_wire import output_text, script_input

    target = make_server("--plain-script", '{"deltas": 5, "checkpoint_every": 2}')
    with httpx.Client(base_url=target.base_url, timeout=30) as client:
        plain = client.post("/responses", json={"input": "Count from 1 to 5"}).json()
        scripted = client.post("/responses", json={"input": script_input(deltas=2)}).json()
    assert plain["status"] == "completed" and output_text(plain) == "".join(f"a1:d{i} " for i in range(5))
    assert len(plain["output"]) == 3  # checkpoint_every 2: items of 2, 2 and 1 deltas
    assert output_text(scripted) == "a1:d0 a1:d1 "
