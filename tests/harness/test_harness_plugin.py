"""The pytest plugin, exercised through a separate pytest process (its orphan registry is global)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

HEADER = """
import os, shlex, sys, subprocess
from pathlib import Path
from harness import orphans
from harness.process import TargetSpec

SERVERS = Path({servers!r})

def spec(script, *args, **kw):
    cmd = " ".join(["{{python}}", shlex.quote(str(SERVERS / (script + ".py"))), "{{port}}", *args])
    return TargetSpec(command=cmd, **kw)
"""


def run_pytest(tmp_path: Path, servers: Path, body: str, *args: str) -> subprocess.CompletedProcess[str]:
    test_file = tmp_path / "test_inner.py"
    test_file.write_text(HEADER.format(servers=str(servers)) + textwrap.dedent(body))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # only what we load below, whatever else is installed
    cmd = [sys.executable, "-m", "pytest", "-p", "harness.pytest_fixtures", "-p", "no:cacheprovider",
           "-rA", "--basetemp", str(tmp_path / "inner-tmp"), str(test_file), *args]
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)


def dead(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_failed_test_gets_incarnation_logs_and_targets_are_closed(tmp_path, servers_dir):
    pids = tmp_path / "pids.txt"
    result = run_pytest(tmp_path, servers_dir, f"""
        def test_fails(target_factory):
            t = target_factory(spec("basic"), start=True)
            t.restart()
            Path({str(pids)!r}).write_text(" ".join(str(i.pid) for i in t.incarnations))
            assert False, "deliberate failure"

        def test_passes(target_factory):
            t = target_factory(spec("basic"), start=True)
            assert t.is_alive()

        def test_two_targets(target_factory):
            target_factory(spec("basic"), start=True)
            target_factory(spec("basic"))  # never started: no log, no section
            target_factory(spec("basic"), start=True)
            assert False
    """)
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "2 failed, 1 passed" in out
    failed_one = out[out.index("_ test_fails _"):out.index("_ test_two_targets _")]
    assert "incarnation-0.log" in failed_one and "incarnation-1.log" in failed_one
    assert "basic server listening on" in failed_one  # the log tail itself
    assert "exit_mode killed" in failed_one and "exit_mode alive" in failed_one
    assert "logs/incarnation-1.log" in failed_one  # the path
    assert failed_one.count("--- last 40 lines ---") == 2
    two = out[out.index("_ test_two_targets _"):]
    assert "target-0 incarnation-0.log" in two and "target-2 incarnation-0.log" in two
    assert "target-1 " not in two
    assert out.count("--- last 40 lines ---") == 4  # the passing test carries none
    assert "orphan" not in out
    assert all(dead(int(p)) for p in pids.read_text().split())


def test_interrupted_test_still_closes_its_targets(tmp_path, servers_dir):
    pidfile = tmp_path / "target.pid"
    result = run_pytest(tmp_path, servers_dir, f"""
        def test_interrupted(target_factory):
            t = target_factory(spec("basic"), start=True)
            Path({str(pidfile)!r}).write_text(str(t.current.pid))
            raise KeyboardInterrupt
    """)
    out = result.stdout + result.stderr
    assert result.returncode == 2, out  # pytest's "interrupted"
    assert dead(int(pidfile.read_text()))
    assert "orphan" not in out  # closed by fixture teardown before the orphan check ran


def test_orphan_at_session_end_fails_the_run(tmp_path, servers_dir):
    pidfile = tmp_path / "orphan.pid"
    result = run_pytest(tmp_path, servers_dir, f"""
        def test_leaks():
            proc = subprocess.Popen([sys.executable, "-c", "import signal\\nwhile True: signal.pause()"],
                                    start_new_session=True)
            orphans.register(proc.pid)
            Path({str(pidfile)!r}).write_text(str(proc.pid))
    """)
    out = result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert result.returncode == 1, out
    pid = int(pidfile.read_text())
    assert f"orphan process(es) were still alive at session end and were killed: {pid}" in out
    assert dead(pid)


@pytest.mark.skipif(importlib.util.find_spec("xdist") is None, reason="needs pytest-xdist")
def test_orphan_in_an_xdist_worker_fails_the_run(tmp_path, servers_dir):
    pidfile = tmp_path / "orphan.pid"
    result = run_pytest(tmp_path, servers_dir, f"""
        def test_leaks():
            proc = subprocess.Popen([sys.executable, "-c", "import signal\\nwhile True: signal.pause()"],
                                    start_new_session=True)
            orphans.register(proc.pid)
            Path({str(pidfile)!r}).write_text(str(proc.pid))
    """, "-p", "xdist.plugin", "-n", "1")
    out = result.stdout + result.stderr
    assert "1 passed" in result.stdout, out
    assert result.returncode == 1, out
    assert "orphan process(es)" in out
    assert dead(int(pidfile.read_text()))
