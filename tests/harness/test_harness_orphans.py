"""The orphan registry: registered pids and env-token holders are found and reaped."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from harness import orphans
from harness.logs import tail_lines

SLEEPER = [sys.executable, "-c", "import signal\nwhile True: signal.pause()"]


@pytest.fixture
def sleeper():
    procs: list[subprocess.Popen] = []

    def spawn(env: dict[str, str] | None = None) -> subprocess.Popen:
        proc = subprocess.Popen(SLEEPER, env={**os.environ, **(env or {})}, start_new_session=True)
        procs.append(proc)
        return proc

    yield spawn
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)


def test_registered_process_is_found_and_reaped(sleeper):
    proc = sleeper()
    orphans.register(proc.pid)
    assert proc.pid in [p.pid for p in orphans.find_orphans()]
    assert proc.pid in orphans.reap_orphans()
    assert proc.wait(5) == -9
    assert proc.pid not in [p.pid for p in orphans.find_orphans()]
    assert proc.pid not in orphans.registered_pids()


def test_token_holder_is_found_without_registration(sleeper, until):
    token = f"test-{uuid.uuid4().hex}-"
    proc = sleeper({orphans.ENV_TOKEN: token + "0."})
    orphans.register_token(token)
    try:
        # bounded: until the child has exec'd and carries its own environment
        until(lambda: orphans.processes_with_token(token), what="the token holder to appear")
        assert [p.pid for p in orphans.processes_with_token(token)] == [proc.pid]
        assert proc.pid in [p.pid for p in orphans.find_orphans()]
        assert proc.pid in orphans.reap_orphans()
        assert proc.wait(5) == -9
        assert orphans.processes_with_token(token) == []
    finally:
        orphans.unregister_token(token)


def test_dead_and_unknown_pids_are_not_orphans(sleeper):
    orphans.register(999_999_999)  # no such pid: ignored
    assert 999_999_999 not in orphans.registered_pids()
    proc = sleeper()
    orphans.register(proc.pid)
    proc.kill()
    proc.wait(5)
    assert proc.pid not in [p.pid for p in orphans.find_orphans()]
    assert orphans.reap_orphans() == []
    assert proc.pid not in orphans.registered_pids()  # pruned once dead


def test_tail_lines_reads_from_the_end(tmp_path):
    path = tmp_path / "big.log"
    with open(path, "w") as fh:
        for i in range(200_000):
            fh.write(f"line {i}\n")
        fh.write("last line without newline")
    assert tail_lines(path, 3) == ["line 199998", "line 199999", "last line without newline"]
    assert tail_lines(tmp_path / "missing.log") == []
    assert tail_lines(path, 0) == []
