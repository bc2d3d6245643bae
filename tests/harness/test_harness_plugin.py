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


def orphan_line(out: str) -> str:
    lines = [line for line in out.splitlines() if "orphan process(es)" in line]
    return "\n".join(lines)


def test_failures_teardown_errors_and_an_interrupt_in_one_run(tmp_path, servers_dir):
    """One inner run (each costs a pytest start-up): failed tests get their incarnation logs,
    a target whose close() raises does not keep the others open, and a KeyboardInterrupt still
    closes the interrupted test's targets before the session-end orphan check."""
    pids = tmp_path / "pids.txt"
    second_pid = tmp_path / "second.pid"
    interrupted_pid = tmp_path / "interrupted.pid"
    result = run_pytest(tmp_path, servers_dir, f"""
        HELD = []

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

        def test_close_errors(target_factory):
            def broken(name):
                def close():
                    raise RuntimeError(name + " close failed")
                return close

            first = target_factory(spec("basic"))
            second = target_factory(spec("basic"), start=True)
            third = target_factory(spec("basic"))
            first.close = broken("first")
            third.close = broken("third")
            HELD[:] = [first, second, third]
            Path({str(second_pid)!r}).write_text(str(second.current.pid))

        def test_the_target_after_a_close_error_was_closed():
            second = HELD[1]
            assert second.current.exit_mode == "killed" and not second.is_alive()

        def test_interrupted(target_factory):
            t = target_factory(spec("basic"), start=True)
            Path({str(interrupted_pid)!r}).write_text(str(t.current.pid))
            raise KeyboardInterrupt
    """)
    out = result.stdout + result.stderr
    assert result.returncode == 2, out  # pytest's "interrupted"
    assert "2 failed, 3 passed, 1 error" in result.stdout, out  # test_close_errors passed, then errored
    # incarnation logs on failure
    failed_one = out[out.index("_ test_fails _"):out.index("_ test_two_targets _")]
    assert "incarnation-0.log" in failed_one and "incarnation-1.log" in failed_one
    assert "basic server listening on" in failed_one  # the log tail itself
    assert "exit_mode killed" in failed_one and "exit_mode alive" in failed_one
    assert "logs/incarnation-1.log" in failed_one  # the path
    assert failed_one.count("--- last 40 lines ---") == 2
    two = out[out.index("_ test_two_targets _"):out.index("short test summary info")]
    assert "target-0 incarnation-0.log" in two and "target-2 incarnation-0.log" in two
    assert "target-1 " not in two
    assert out.count("--- last 40 lines ---") == 5  # 2 + 2 + the errored test's one; the passing test carries none
    assert all(dead(int(p)) for p in pids.read_text().split())
    # a close error: reported (the first one, the later one as a note), the others still closed
    teardown = out[out.index("ERROR at teardown of test_close_errors"):out.index("= FAILURES =")]
    assert "RuntimeError: first close failed" in teardown
    assert "closing target-2 failed too: RuntimeError: third close failed" in teardown
    assert "PASSED test_inner.py::test_the_target_after_a_close_error_was_closed" in out
    assert dead(int(second_pid.read_text()))
    # interrupted: closed by fixture teardown before the orphan check ran
    assert dead(int(interrupted_pid.read_text()))
    assert "orphan" not in out


def test_orphans_at_session_end_fail_an_otherwise_passing_run(tmp_path, servers_dir):
    """A bare process the harness registered and a real Target nobody closed: both are reported
    on the session-end line and killed, and they alone turn a passing run into a failed one."""
    proc_pid = tmp_path / "orphan.pid"
    target_pid = tmp_path / "target.pid"
    result = run_pytest(tmp_path, servers_dir, f"""
        from harness import Target

        LEAKED = []

        def test_leaks_a_process():
            proc = subprocess.Popen([sys.executable, "-c", "import signal\\nwhile True: signal.pause()"],
                                    start_new_session=True)
            orphans.register(proc.pid)
            Path({str(proc_pid)!r}).write_text(str(proc.pid))

        def test_leaks_a_target(tmp_path):
            t = Target(spec("basic"), tmp_path / "unclosed")  # not from the fixture, never closed
            LEAKED.append(t)
            t.start()
            Path({str(target_pid)!r}).write_text(str(t.current.pid))

        def test_passes(target_factory):
            assert target_factory(spec("basic"), start=True).is_alive()
    """)
    out = result.stdout + result.stderr
    assert "3 passed" in result.stdout, out
    assert "--- last 40 lines ---" not in out  # passing tests carry no log sections
    assert result.returncode == 1, out
    line = orphan_line(out)
    assert "orphan process(es) were still alive at session end and were killed: " in line, out
    for pidfile in (proc_pid, target_pid):
        pid = int(pidfile.read_text())
        assert f"{pid} (" in line, out
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
