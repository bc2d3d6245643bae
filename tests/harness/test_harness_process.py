"""Target: spawn, readiness, signals, restarts, logs, orphans — against tiny real servers."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from harness import orphans
from harness.errors import (
    CommandTemplateError,
    MarkerTimeout,
    PortInUseError,
    ReadinessError,
    SpawnError,
    TargetStateError,
)
from harness.process import Target, TargetSpec
from pid_checks import dead


def get(target: Target, path: str, timeout: float = 5.0) -> httpx.Response:
    return httpx.get(target.base_url + path, timeout=timeout, trust_env=False)


# -- normal life -------------------------------------------------------------------------


def test_start_ready_then_graceful_terminate_records_exit_code(target_factory, spec_for):
    t = target_factory(spec_for("basic", "--term-code", "7"))
    inc = t.start()
    assert inc.index == 0 and inc.pid and inc.exit_mode is None
    assert inc.ready_at is not None and inc.started_at < inc.ready_at <= t.now()
    assert t.is_alive() and t.current is inc
    assert get(t, "/pid").text == str(inc.pid)
    assert t.base_url == f"http://127.0.0.1:{t.port}"

    done = t.terminate()
    assert done is inc
    assert (done.exit_mode, done.exit_code) == ("graceful", 7)
    assert done.exited_at is not None and done.exited_at >= done.ready_at
    assert not t.is_alive()
    assert "got SIGTERM, exiting with 7" in t.log_tail()
    assert t.log_paths == [t.log_dir / "incarnation-0.log"]
    assert t.lifecycle()[0]["exit_mode"] == "graceful"


def test_sigterm_ignored_ends_killed_after_grace(target_factory, spec_for):
    t = target_factory(spec_for("ignore_term"), start=True)
    begin = time.monotonic()
    inc = t.terminate(grace_s=0.1)
    elapsed = time.monotonic() - begin
    assert inc.exit_mode == "killed_after_grace"
    assert inc.exit_code == -signal.SIGKILL
    assert 0.1 <= elapsed < 5


def test_kill_records_killed(target_factory, spec_for):
    t = target_factory(spec_for("basic"), start=True)
    inc = t.kill()
    assert (inc.exit_mode, inc.exit_code) == ("killed", -signal.SIGKILL)
    assert t.kill() is inc  # already finished: unchanged, no error


def test_process_that_dies_on_its_own_is_recorded_as_exited(target_factory, spec_for, until):
    t = target_factory(spec_for("basic"), start=True)
    assert get(t, "/exit?code=5").status_code == 200
    until(lambda: not t.is_alive(), what="the server to exit")
    assert (t.current.exit_mode, t.current.exit_code) == ("exited", 5)
    assert t.terminate() is t.current  # nothing to signal, record unchanged
    assert t.current.exit_mode == "exited"


def test_spec_env_and_marker_dir_reach_the_process(target_factory, spec_for):
    t = target_factory(spec_for("basic", env={"HARNESS_TEST_GREETING": "hello there"}), start=True)
    assert "greeting: hello there" in t.log_tail()
    # the /hold endpoint writes into $CONFORMANCE_MARKER_DIR: see test_hold_and_release_through_markers


def test_stderr_reaches_the_incarnation_log(target_factory, spec_for):
    t = target_factory(spec_for("stderr_writer"), start=True)
    line = f"to stderr: warning from the server on {t.port}"
    assert line in t.log_tail().splitlines()
    assert line in t.log_paths[0].read_text().splitlines()
    assert "to stdout: starting" in t.log_tail()  # both streams, one file


def test_factory_targets_get_their_own_work_dirs_and_logs(target_factory, spec_for, tmp_path):
    a = target_factory(spec_for("basic"), start=True)
    b = target_factory(spec_for("basic"), start=True)
    assert (a.work_dir, b.work_dir) == ((tmp_path / "target-0").resolve(), (tmp_path / "target-1").resolve())
    for attr in ("state_dir", "marker_dir", "log_dir"):
        assert getattr(a, attr) != getattr(b, attr), attr
    assert a.log_paths[0] != b.log_paths[0]
    assert a.log_paths[0].name == b.log_paths[0].name == "incarnation-0.log"
    a_log, b_log = a.log_paths[0].read_text(), b.log_paths[0].read_text()
    assert f"listening on {a.port}" in a_log and f"listening on {b.port}" not in a_log
    assert f"listening on {b.port}" in b_log and f"listening on {a.port}" not in b_log


# -- process trees and orphans -----------------------------------------------------------


def _kid_pids(t: Target) -> list[int]:
    return [int(x) for x in (t.state_dir / "kids.txt").read_text().split()]


def test_forked_and_escaped_children_are_killed(target_factory, spec_for):
    t = target_factory(spec_for("forking", "{state_dir}/kids.txt"), start=True)
    kids = _kid_pids(t)
    assert len(kids) == 3 and all(not dead(p) for p in kids)
    sessions = {os.getsid(p) for p in kids}
    assert len(sessions) >= 2  # some escaped the target's session

    inc = t.terminate()
    assert inc.exit_mode == "graceful" and inc.exit_code == 0
    assert inc.stragglers_killed == 3
    assert all(dead(p) for p in kids)
    assert not {p.pid for p in orphans.find_orphans()} & set(kids)


def test_restart_after_forking_server_frees_the_port(target_factory, spec_for):
    """The children hold the listening socket; restart works only if they really die."""
    t = target_factory(spec_for("forking", "{state_dir}/kids.txt"), start=True)
    first = _kid_pids(t)
    inc1 = t.restart()
    assert t.incarnations[0].exit_mode == "killed"
    # the in-group child died with the group SIGKILL; the two that left the group are stragglers
    assert t.incarnations[0].stragglers_killed == 2
    assert inc1.index == 1 and t.is_alive()
    assert all(dead(p) for p in first)
    second = [p for p in _kid_pids(t) if p not in first]
    assert len(second) == 3
    t.close()
    assert all(dead(p) for p in second)
    assert t.incarnations[1].stragglers_killed == 2


def test_close_is_idempotent_and_kills_a_live_target(target_factory, spec_for):
    t = target_factory(spec_for("basic"), start=True)
    pid = t.current.pid
    t.close()
    t.close()
    assert dead(pid)
    assert t.current.exit_mode == "killed"
    with pytest.raises(TargetStateError):
        t.start()


# -- failing starts ----------------------------------------------------------------------


def test_never_ready_raises_bounded_readiness_error_with_log_tail(target_factory, spec_for):
    t = target_factory(spec_for("never_ready", readiness_timeout_s=0.3))
    begin = time.monotonic()
    with pytest.raises(ReadinessError) as info:
        t.start()
    elapsed = time.monotonic() - begin
    assert 0.3 <= elapsed < 4.0
    msg = str(info.value)
    assert "/readiness" in msg and "within 0.3s" in msg
    assert "HTTP 503" in msg and "warming up" in msg
    assert "still warming up, come back later" in msg  # the log tail
    assert t.current.exit_mode == "killed"
    assert dead(t.current.pid)


def test_exit_at_start_fails_fast_with_code_and_log(target_factory, spec_for):
    t = target_factory(spec_for("exit_early", readiness_timeout_s=20.0))
    begin = time.monotonic()
    with pytest.raises(ReadinessError) as info:
        t.start()
    assert time.monotonic() - begin < 5.0  # far from the 20 s deadline
    msg = str(info.value)
    assert "exited with code 3" in msg
    assert "fatal: configuration file is broken" in msg
    assert (t.current.exit_mode, t.current.exit_code) == ("exited", 3)
    t.close()
    t.close()  # close after a failed start, twice


def test_flood_of_output_before_ready_does_not_block(target_factory, spec_for):
    t = target_factory(spec_for("flood", "8"), start=True)
    log = t.log_paths[0]
    assert log.stat().st_size > 8 * 1024 * 1024
    assert "flood done" in t.log_tail(lines=10)


def test_missing_command_raises_spawn_error(target_factory):
    t = target_factory(TargetSpec(command="/nonexistent/no-such-server --port {port}"))
    begin = time.monotonic()
    with pytest.raises(SpawnError) as info:
        t.start()
    assert time.monotonic() - begin < 2.0
    msg = str(info.value)
    assert "/nonexistent/no-such-server" in msg
    assert "No such file or directory" in msg
    assert t.incarnations == []


def test_non_executable_command_raises_spawn_error(target_factory, tmp_path):
    script = tmp_path / "not-executable.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o644)
    t = target_factory(TargetSpec(command=f"{script} {{port}}"))
    with pytest.raises(SpawnError, match="Permission denied"):
        t.start()


def test_port_in_use_is_detected_before_spawning(target_factory, spec_for):
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        t = target_factory(spec_for("basic"), port=port)
        begin = time.monotonic()
        with pytest.raises(PortInUseError) as info:
            t.start()
        assert time.monotonic() - begin < 2.0
    msg = str(info.value)
    assert str(port) in msg
    assert str(os.getpid()) in msg  # psutil names the owner: this test process
    assert t.incarnations == []


def test_address_in_use_in_the_log_maps_to_port_in_use(target_factory, spec_for):
    t = target_factory(spec_for("addr_in_use"))
    with pytest.raises(PortInUseError, match="address already in use"):
        t.start()
    assert t.current.exit_code == 1


def test_stranger_answering_on_the_port_is_not_taken_for_the_target(target_factory, spec_for, until):
    t = target_factory(spec_for("stranger", "{state_dir}/stranger.pid"))
    pidfile = t.state_dir / "stranger.pid"
    try:
        with pytest.raises(PortInUseError) as info:
            t.start()
        stranger = int(pidfile.read_text())
        assert "not in the target's process tree" in str(info.value)
        assert str(stranger) in str(info.value)
    finally:
        if pidfile.exists():
            pid = int(pidfile.read_text())
            try:
                psutil.Process(pid).kill()
            except psutil.NoSuchProcess:
                pass
            until(lambda: dead(pid), what="the stranger to die")


def test_start_twice_is_refused(target_factory, spec_for):
    t = target_factory(spec_for("basic"), start=True)
    with pytest.raises(TargetStateError, match="already running"):
        t.start()


def test_signals_need_a_started_target(target_factory, spec_for):
    t = target_factory(spec_for("basic"))
    with pytest.raises(TargetStateError):
        t.terminate()
    with pytest.raises(TargetStateError):
        t.pause()
    assert t.log_tail() == "" and t.current is None and not t.is_alive()


# -- restarts ----------------------------------------------------------------------------


def test_restart_keeps_port_and_state_and_separates_logs(target_factory, spec_for):
    t = target_factory(spec_for("basic", "--state-dir", "{state_dir}"))
    inc0 = t.start()
    port = t.port
    inc1 = t.restart()
    assert t.port == port
    assert inc0.pid != inc1.pid
    assert inc0.exit_mode == "killed"
    boots = get(t, "/state").text.split()  # incarnation 1 reads what incarnation 0 wrote
    assert boots == [str(inc0.pid), str(inc1.pid)]
    assert [p.name for p in t.log_paths] == ["incarnation-0.log", "incarnation-1.log"]
    assert all(p.exists() for p in t.log_paths)
    assert f"listening on {port}" in t.log_tail(index=0)

    t.terminate()
    inc2 = t.start()  # start after a finished incarnation is the next incarnation
    assert inc2.index == 2 and t.port == port
    assert [i["exit_mode"] for i in t.lifecycle()] == ["killed", "graceful", None]


# -- pause / resume ----------------------------------------------------------------------


def test_pause_and_resume(target_factory, spec_for):
    t = target_factory(spec_for("basic"), start=True)
    t.pause()
    assert psutil.Process(t.current.pid).status() == psutil.STATUS_STOPPED
    with pytest.raises(httpx.TimeoutException):
        get(t, "/readiness", timeout=0.1)
    assert t.is_alive()
    t.resume()
    assert get(t, "/readiness").status_code == 200
    assert t.current.exit_mode is None


def test_terminate_a_paused_target_is_still_graceful(target_factory, spec_for):
    t = target_factory(spec_for("basic"), start=True)
    t.pause()
    inc = t.terminate(grace_s=5.0)
    assert (inc.exit_mode, inc.exit_code) == ("graceful", 0)


# -- markers through a real server -------------------------------------------------------


def test_hold_and_release_through_markers(target_factory, spec_for):
    t = target_factory(spec_for("basic"), start=True)
    result: dict[str, int] = {}

    def call() -> None:
        result["status"] = get(t, "/hold?tag=h1", timeout=10).status_code

    thread = threading.Thread(target=call)
    thread.start()
    try:
        assert t.markers.wait_for("h1", r"^held \d+$", timeout_s=5, alive=t.is_alive) == "held 1"
        assert "status" not in result
        t.markers.release("h1")
        assert t.markers.wait_for("h1", "released", timeout_s=5, alive=t.is_alive) == "released"
    finally:
        t.markers.release("h1")
        thread.join(timeout=10)
    assert result["status"] == 200
    assert t.markers.all() == {"h1": ["held 1", "released"]}


def test_restart_keeps_the_marker_dir_and_the_markers_object(target_factory, spec_for):
    t = target_factory(spec_for("basic"), start=True)
    markers, marker_dir = t.markers, t.marker_dir
    inc0 = t.current
    assert get(t, "/mark?tag=m").status_code == 200
    assert markers.wait_for("m", rf"^pid {inc0.pid}$", timeout_s=5, alive=t.is_alive)
    inc1 = t.restart()
    assert t.marker_dir == marker_dir and t.markers is markers and markers.marker_dir == marker_dir
    assert psutil.Process(inc1.pid).environ()["CONFORMANCE_MARKER_DIR"] == str(marker_dir)
    assert get(t, "/mark?tag=m").status_code == 200
    # written by incarnation 1, awaited through the Markers object taken before the restart
    assert markers.wait_for("m", rf"^pid {inc1.pid}$", timeout_s=5, start=1, alive=t.is_alive) == f"pid {inc1.pid}"
    assert markers.lines("m") == [f"pid {inc0.pid}", f"pid {inc1.pid}"]


def test_target_markers_timeout_names_the_pattern_and_shows_the_target_log(target_factory, spec_for):
    t = target_factory(spec_for("basic"), start=True)
    assert get(t, "/mark?tag=w").status_code == 200
    begin = time.monotonic()
    with pytest.raises(MarkerTimeout) as info:
        t.markers.wait_for("w", r"^never \d+$", timeout_s=0.1, alive=t.is_alive)
    assert 0.1 <= time.monotonic() - begin < 3
    msg = str(info.value)
    assert "marker 'w': no line matching /^never \\d+$/ within 0.1s" in msg
    assert f"pid {t.current.pid}" in msg  # the marker line seen
    tail = msg[msg.index("tail of the incarnation log:"):]
    assert f"  | basic server listening on {t.port}" in tail  # this target's log
    assert 'GET /mark?tag=w HTTP/1.1" 200' in tail
    assert info.value.log_tail == tail and "tail of the incarnation log" not in info.value.message


# -- command templates -------------------------------------------------------------------


def test_placeholders_are_filled_per_token():
    spec = TargetSpec(
        command="prog --dir '{state_dir}' --url http://127.0.0.1:{port}/x \"{marker_dir}\"",
        extra_args=("--mode", "{port}"),
    )
    argv = spec.render({"state_dir": "/a b/it's", "port": "1234", "marker_dir": "/m \"q\""})
    assert argv == ["prog", "--dir", "/a b/it's", "--url", "http://127.0.0.1:1234/x", '/m "q"', "--mode", "1234"]


def test_python_placeholder_and_work_dirs(tmp_path):
    t = Target(TargetSpec(command="{python} -V {work_dir}"), tmp_path / "w", port=1)
    try:
        argv = t.spec.render(t._values())
        assert argv[0] == sys.executable
        assert argv[2] == str(t.work_dir)
        assert all(Path(d).is_dir() for d in (t.state_dir, t.marker_dir, t.log_dir))
        assert t.port == 1
    finally:
        t.close()


def test_spec_is_a_plain_value():
    env = {"A": "1"}
    spec = TargetSpec(command="x {port}", env=env, extra_args=["--y"])
    env["A"] = "changed"
    assert spec.env == {"A": "1"} and spec.extra_args == ("--y",)
    assert dataclasses.asdict(spec)["env"] == {"A": "1"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.command = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    "command, fragment",
    [
        ("prog {prot}", "unknown placeholder {prot}"),
        ("prog 'unbalanced", "cannot parse"),
        ("   ", "empty"),
    ],
)
def test_bad_templates_are_reported(command, fragment):
    with pytest.raises(CommandTemplateError, match=fragment.replace("{", r"\{").replace("}", r"\}")):
        TargetSpec(command=command).render({"port": "1"})


def test_picked_ports_differ_per_target(tmp_path):
    a = Target(TargetSpec(command="x"), tmp_path / "a")
    b = Target(TargetSpec(command="x"), tmp_path / "b")
    assert a.port != b.port and a.port > 0
    a.close()
    b.close()
