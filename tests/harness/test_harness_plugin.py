"""The pytest plugin, exercised through separate pytest processes (its orphan registry is global).

Each inner run costs a pytest start-up, so there are few of them, each holding several inner
tests, and the runs the selected outer tests need are all started together when the first
one is asked for (none of them has tight timing; they only wait on their own servers).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from pid_checks import dead

SERVERS = Path(__file__).resolve().parent / "servers"
INNER_TIMEOUT_S = 60.0

HEADER = """
import os, shlex, sys, subprocess
from pathlib import Path
from harness import orphans
from harness.process import TargetSpec

SERVERS = Path({servers!r})
OUT = Path({out!r})  # where the inner tests leave pids for the outer test

def spec(script, *args, **kw):
    cmd = " ".join(["{{python}}", "-S", shlex.quote(str(SERVERS / (script + ".py"))), "{{port}}", *args])
    return TargetSpec(command=cmd, **kw)
"""

# -- the inner runs: name -> (body, extra pytest args) -------------------------------------

FAILURES_BODY = """
    HELD = []

    def test_fails(target_factory):
        t = target_factory(spec("basic"), start=True)
        t.restart()
        (OUT / "pids.txt").write_text(" ".join(str(i.pid) for i in t.incarnations))
        assert False, "deliberate failure"

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
        (OUT / "second.pid").write_text(str(second.current.pid))

    def test_the_target_after_a_close_error_was_closed():
        second = HELD[1]
        assert second.current.exit_mode == "killed" and not second.is_alive()

    def test_interrupted(target_factory):
        t = target_factory(spec("basic"), start=True)
        (OUT / "interrupted.pid").write_text(str(t.current.pid))
        raise KeyboardInterrupt
"""

ORPHANS_BODY = """
    from harness import Target

    LEAKED = []

    def test_leaks_a_process():
        proc = subprocess.Popen([sys.executable, "-c", "import signal\\nwhile True: signal.pause()"],
                                start_new_session=True)
        orphans.register(proc.pid)
        (OUT / "orphan.pid").write_text(str(proc.pid))

    def test_leaks_a_target(tmp_path):
        t = Target(spec("basic"), tmp_path / "unclosed")  # not from the fixture, never closed
        LEAKED.append(t)
        t.start()
        (OUT / "target.pid").write_text(str(t.current.pid))

    def test_passes(target_factory):
        assert target_factory(spec("basic"), start=True).is_alive()
"""

XDIST_BODY = """
    def test_leaks():
        proc = subprocess.Popen([sys.executable, "-c", "import signal\\nwhile True: signal.pause()"],
                                start_new_session=True)
        orphans.register(proc.pid)
        (OUT / "orphan.pid").write_text(str(proc.pid))
"""

HAS_XDIST = importlib.util.find_spec("xdist") is not None

RUNS = {  # outer test name -> inner run
    "test_failures_teardown_errors_and_an_interrupt_in_one_run": (FAILURES_BODY, ()),
    "test_orphans_at_session_end_fail_an_otherwise_passing_run": (ORPHANS_BODY, ()),
    "test_orphan_in_an_xdist_worker_fails_the_run": (XDIST_BODY, ("-p", "xdist.plugin", "-n", "1")),
}


class InnerRun:
    """One inner pytest process; output goes to files (never pipes: runs wait on each other)."""

    def __init__(self, root: Path, body: str, args: tuple[str, ...]) -> None:
        self.dir = root
        test_file = root / "test_inner.py"
        test_file.write_text(HEADER.format(servers=str(SERVERS), out=str(root)) + textwrap.dedent(body))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # only what we load below, whatever else is installed
        self.cmd = [sys.executable, "-m", "pytest", "-p", "harness.pytest_fixtures", "-p", "no:cacheprovider",
                    "-rA", "--basetemp", str(root / "inner-tmp"), str(test_file), *args]
        with open(root / "stdout.txt", "wb") as out, open(root / "stderr.txt", "wb") as err:
            self.proc = subprocess.Popen(self.cmd, cwd=root, env=env, stdout=out, stderr=err)
        self._result: subprocess.CompletedProcess[str] | None = None

    def result(self) -> subprocess.CompletedProcess[str]:
        """Wait (bounded) for the run to end; its exit code and output."""
        if self._result is None:
            try:
                code = self.proc.wait(timeout=INNER_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.stop()
                tail = "\n".join((self.dir / "stdout.txt").read_text().splitlines()[-40:])
                raise AssertionError(
                    f"inner pytest run did not end within {INNER_TIMEOUT_S:g}s: {' '.join(self.cmd)}\n"
                    f"last lines of its output:\n{tail}"
                ) from None
            self._result = subprocess.CompletedProcess(
                self.cmd, code, (self.dir / "stdout.txt").read_text(), (self.dir / "stderr.txt").read_text()
            )
        return self._result

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def inner_runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, InnerRun]]:
    """The inner runs of the outer tests selected in this module, all started at once."""
    selected = {item.name for item in request.session.items if item.module is request.module}
    runs = {}
    for name, (body, args) in RUNS.items():
        if name in selected and (HAS_XDIST or "xdist.plugin" not in args):
            runs[name] = InnerRun(tmp_path_factory.mktemp(name[len("test_"):][:40]), body, args)
    try:
        yield runs
    finally:
        for run in runs.values():
            run.stop()


def orphan_line(out: str) -> str:
    lines = [line for line in out.splitlines() if "orphan process(es)" in line]
    return "\n".join(lines)


def test_failures_teardown_errors_and_an_interrupt_in_one_run(inner_runs):
    """Failed tests get their incarnation logs, a target whose close() raises does not keep the
    others open, and a KeyboardInterrupt still closes the interrupted test's targets before the
    session-end orphan check."""
    run = inner_runs["test_failures_teardown_errors_and_an_interrupt_in_one_run"]
    result = run.result()
    out = result.stdout + result.stderr
    assert result.returncode == 2, out  # pytest's "interrupted"
    assert "2 failed, 2 passed, 1 error" in result.stdout, out  # test_close_errors passed, then errored
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
    assert out.count("--- last 40 lines ---") == 5  # 2 + 2 + the errored test's one; passing tests carry none
    assert all(dead(int(p)) for p in (run.dir / "pids.txt").read_text().split())
    # a close error: reported (the first one, the later one as a note), the others still closed
    teardown = out[out.index("ERROR at teardown of test_close_errors"):out.index("= FAILURES =")]
    assert "RuntimeError: first close failed" in teardown
    assert "closing target-2 failed too: RuntimeError: third close failed" in teardown
    assert "PASSED test_inner.py::test_the_target_after_a_close_error_was_closed" in out
    assert dead(int((run.dir / "second.pid").read_text()))
    # interrupted: closed by fixture teardown before the orphan check ran
    assert dead(int((run.dir / "interrupted.pid").read_text()))
    assert "orphan" not in out


def test_orphans_at_session_end_fail_an_otherwise_passing_run(inner_runs):
    """A bare process the harness registered and a real Target nobody closed: both are reported
    on the session-end line and killed, and they alone turn a passing run into a failed one."""
    run = inner_runs["test_orphans_at_session_end_fail_an_otherwise_passing_run"]
    result = run.result()
    out = result.stdout + result.stderr
    assert "3 passed" in result.stdout, out
    assert "--- last 40 lines ---" not in out  # passing tests carry no log sections
    assert result.returncode == 1, out
    line = orphan_line(out)
    assert "orphan process(es) were still alive at session end and were killed: " in line, out
    for name in ("orphan.pid", "target.pid"):
        pid = int((run.dir / name).read_text())
        assert f"{pid} (" in line, out
        assert dead(pid)


@pytest.mark.skipif(not HAS_XDIST, reason="needs pytest-xdist")
def test_orphan_in_an_xdist_worker_fails_the_run(inner_runs):
    run = inner_runs["test_orphan_in_an_xdist_worker_fails_the_run"]
    result = run.result()
    out = result.stdout + result.stderr
    assert "1 passed" in result.stdout, out
    assert result.returncode == 1, out
    pid = int((run.dir / "orphan.pid").read_text())
    assert f"orphan process(es) were still alive at session end and were killed: {pid} (" in orphan_line(out), out
    assert dead(pid)
