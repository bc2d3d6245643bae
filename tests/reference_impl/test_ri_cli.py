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
