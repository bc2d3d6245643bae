"""Readiness: which answers count, what a failure says, when ready_at is; and what a failed
start leaves behind after close() (nothing: no process, no port reservation)."""

from __future__ import annotations

import fcntl
import os
import re
import time

import psutil
import pytest

from harness import orphans
from harness.errors import PortInUseError, ReadinessError
from harness.ports import LOCK_DIR
from harness.process import TAIL_LINES, check_port_free
from pid_checks import dead


def reservation_free(port: int) -> bool:
    """True if nobody holds the port's reservation lock (flock conflicts across open file
    descriptions, so this process's own Target holding it counts as held too)."""
    fd = os.open(LOCK_DIR / f"{port}.lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


# -- which answers count -----------------------------------------------------------------


def test_a_non_default_readiness_path_is_the_one_probed(target_factory, spec_for):
    ready = target_factory(spec_for("up_only", readiness_path="/up"), start=True)
    assert ready.is_alive() and ready.current.ready_at is not None
    # the same server probed on the default path answers 404: never ready, and the message says so
    t = target_factory(spec_for("up_only", readiness_timeout_s=0.3))
    begin = time.monotonic()
    with pytest.raises(ReadinessError) as info:
        t.start()
    assert 0.3 <= time.monotonic() - begin < 4.0
    msg = str(info.value)
    assert f"GET {t.base_url}/readiness never answered 2xx (last: HTTP 404: no such path)" in msg
    assert t.current.exit_mode == "killed"


def test_a_204_counts_as_ready(target_factory, spec_for):
    t = target_factory(spec_for("no_content"), start=True)
    assert t.is_alive() and t.current.ready_at is not None
    assert "GET /readiness HTTP/1.1\" 204" in t.log_tail()


# -- what a failure says -----------------------------------------------------------------


def test_a_server_that_never_listens_names_the_connection_error(target_factory, spec_for):
    t = target_factory(spec_for("no_listen", readiness_timeout_s=0.3))
    with pytest.raises(ReadinessError) as info:
        t.start()
    msg = str(info.value)
    assert "within 0.3s" in msg
    assert "(last: ConnectError: " in msg and "refused" in msg.lower()
    assert "alive but not listening" in msg  # the log tail
    assert dead(t.current.pid)


def test_an_early_exit_quotes_exactly_the_log_tail_and_the_exit_code(target_factory, spec_for):
    assert TAIL_LINES == 40
    t = target_factory(spec_for("numbered_exit"))
    with pytest.raises(ReadinessError) as info:
        t.start()
    msg = str(info.value)
    assert "target exited with code 4" in msg
    assert f"last {TAIL_LINES} lines of {t.log_paths[0]}:" in msg
    quoted = [int(n) for n in re.findall(r"^  \| output line (\d+)$", msg, re.MULTILINE)]
    assert quoted == list(range(61, 101))  # line 60 and earlier are not quoted
    assert (t.current.exit_mode, t.current.exit_code) == ("exited", 4)
    # the log part is also kept apart, so that a caller printing the log itself quotes it once
    err = info.value
    assert msg == f"{err.message}\n{err.log_tail}" and err.log_path == str(t.log_paths[0])
    assert "target exited with code 4" in err.message and "output line" not in err.message
    assert "command: " in err.message and "output line 100" in err.log_tail


def test_port_in_use_messages_name_the_port_in_the_harness_own_words(target_factory, spec_for):
    """Not just text copied from the log: the harness says which port, and that it is in use."""
    t = target_factory(spec_for("addr_in_use"))
    with pytest.raises(PortInUseError) as info:
        t.start()
    head = str(info.value).splitlines()[0]  # the log tail comes after the first line
    assert f"because port {t.port} is in use" in head
    assert "exited with code 1 during startup" in head


# -- ready_at and the incarnation record -------------------------------------------------


def test_ready_at_is_when_the_server_listens_and_the_record_is_complete(target_factory, spec_for):
    delay = 0.2
    t = target_factory(spec_for("slow_bind", str(delay), shutdown_grace_s=5.0))
    inc = t.start()
    assert inc.ready_at - inc.started_at >= delay  # the server itself waited that long to bind
    measured = re.search(r"bound after ([\d.]+)s", t.log_tail())
    assert measured and float(measured.group(1)) >= delay
    pid = inc.pid
    assert pid == t.pid and any(a.endswith("slow_bind.py") for a in psutil.Process(pid).cmdline())
    before = t.now()
    done = t.terminate()
    after = t.now()
    assert done is inc and done.pid == pid
    assert done.started_at < done.ready_at <= before <= done.exited_at <= after  # each taken when it happened
    assert (done.exit_mode, done.exit_code) == ("graceful", -15)  # http.server: SIGTERM's default action
    assert t.lifecycle()[0] == {
        "index": 0, "pid": pid, "started_at": done.started_at, "ready_at": done.ready_at,
        "exited_at": done.exited_at, "exit_code": -15, "exit_mode": "graceful",
        "log_path": str(t.log_paths[0]), "stragglers_killed": 0, "survivors": [],
    }


# -- close() after a failed start --------------------------------------------------------


def test_close_after_a_failed_start_releases_the_port_and_leaves_no_process(target_factory, spec_for):
    """The forking server starts three children (one in its group, one in a new session, one
    double-forked) that ignore SIGTERM, then exits with 3: a failed start that leaves them behind."""
    t = target_factory(spec_for("forking", "{state_dir}/kids.txt", "exit"))
    with pytest.raises(ReadinessError, match="exited with code 3"):
        t.start()
    kids = [int(x) for x in (t.state_dir / "kids.txt").read_text().split()]
    assert len(kids) == 3
    assert not reservation_free(t.port)  # held until close(), for the restart
    t.close()
    assert reservation_free(t.port)
    check_port_free(t.port)
    assert all(dead(p) for p in [t.incarnations[0].pid, *kids])
    assert orphans.processes_with_token(t._token) == []
    assert not {p.pid for p in orphans.find_orphans()} & {t.incarnations[0].pid, *kids}
