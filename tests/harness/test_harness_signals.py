"""Signals reach the whole process group, and a signal that does not take effect (a stop that
does not land, a process that survives its sweep) is an error, never a silent give-up."""

from __future__ import annotations

import signal
import threading
import time

import psutil
import pytest

from harness import orphans
from harness import process as harness_process
from harness.errors import HarnessError, OrphanError
from pid_checks import dead


def status(pid: int) -> str:
    return psutil.Process(pid).status()


@pytest.fixture
def group_target(target_factory, spec_for):
    """A started group_child server: (target, pid of the child that shares its process group)."""
    t = target_factory(spec_for("group_child", "{state_dir}/child.pid", "{state_dir}/child.txt"), start=True)
    child = int((t.state_dir / "child.pid").read_text())
    assert child in t.tree_pids()  # seen by the readiness snapshot
    assert psutil.Process(child).ppid() == t.current.pid
    return t, child


def wait_for_death_only(procs, timeout_s: float = 2.0) -> list[int]:
    """Stand-in for orphans.kill_processes that sends no signal: it only waits (bounded) for the
    processes to die, so whatever dies did so from the harness's group signal alone."""
    procs = list(procs)
    deadline = time.monotonic() + min(timeout_s, 1.0)
    tick = threading.Event()
    while any(orphans.is_alive(p) for p in procs) and time.monotonic() < deadline:
        tick.wait(0.005)
    return []


def test_terminate_reaches_the_child_in_the_group(group_target):
    t, child = group_target
    inc = t.terminate(grace_s=5.0)
    # The leader waits for its child before exiting; the child exits only through its SIGTERM handler.
    assert (t.state_dir / "child.txt").read_text() == f"child {child} got SIGTERM\n"
    assert (inc.exit_mode, inc.exit_code) == ("graceful", 0)
    assert inc.stragglers_killed == 0 and inc.survivors == []
    assert dead(child)


def test_pause_stops_and_resume_continues_the_child_too(group_target):
    t, child = group_target
    t.pause()
    assert status(t.current.pid) == psutil.STATUS_STOPPED
    assert status(child) == psutil.STATUS_STOPPED  # pause() returns once the whole group is stopped
    t.resume()
    assert status(t.current.pid) != psutil.STATUS_STOPPED
    assert status(child) != psutil.STATUS_STOPPED
    assert t.current.exit_mode is None


def test_kill_reaches_the_whole_group_without_the_sweep(group_target, monkeypatch):
    t, child = group_target
    with monkeypatch.context() as m:
        m.setattr(orphans, "kill_processes", wait_for_death_only)
        inc = t.kill()  # would raise OrphanError if the child outlived the group SIGKILL
    assert (inc.exit_mode, inc.exit_code) == ("killed", -9)
    assert dead(child) and inc.survivors == []
    assert not (t.state_dir / "child.txt").exists()  # SIGKILL: no handler ran


def test_pause_and_resume_that_do_not_take_effect_raise(target_factory, spec_for, monkeypatch):
    t = target_factory(spec_for("basic"), start=True)
    real_signal_group = t._signal_group
    with monkeypatch.context() as m:
        m.setattr(harness_process, "_STOP_WAIT_S", 0.1)
        m.setattr(t, "_signal_group", lambda proc, sig: None)  # the SIGSTOP never lands
        begin = time.monotonic()
        with pytest.raises(HarnessError) as info:
            t.pause()
        assert 0.1 <= time.monotonic() - begin < 3
    msg = str(info.value)
    assert "SIGSTOP" in msg and "did not take effect within 0.1s" in msg
    assert f"pid {t.current.pid} (leader) is " in msg and "to be stopped" in msg
    assert status(t.current.pid) != psutil.STATUS_STOPPED
    # the other way round: stopped for real, then a SIGCONT that never lands
    t.pause()
    with monkeypatch.context() as m:
        m.setattr(harness_process, "_STOP_WAIT_S", 0.1)
        m.setattr(t, "_signal_group",
                  lambda proc, sig: None if sig == signal.SIGCONT else real_signal_group(proc, sig))
        with pytest.raises(HarnessError, match=r"SIGCONT .* did not take effect .* is stopped"):
            t.resume()
    t.resume()
    assert status(t.current.pid) != psutil.STATUS_STOPPED


def test_a_survivor_of_the_sweep_is_recorded_and_raised(target_factory, spec_for, monkeypatch):
    """The forking server's children ignore SIGTERM; with a sweep whose kills do nothing they
    survive terminate(), which must say so instead of returning as if all were gone."""
    t = target_factory(spec_for("forking", "{state_dir}/kids.txt"), start=True)
    kids = [int(x) for x in (t.state_dir / "kids.txt").read_text().split()]
    with monkeypatch.context() as m:
        m.setattr(orphans, "kill_processes", lambda procs, timeout_s=2.0: [])
        with pytest.raises(OrphanError) as info:
            t.terminate(grace_s=5.0)
        inc = t.current
        assert inc.exit_mode == "graceful"  # the leader itself went
        assert sorted(inc.survivors) == sorted(kids)
        assert inc.stragglers_killed == 0  # signalled but not killed: not counted
        msg = str(info.value)
        assert "terminate" in msg and "still alive after" in msg
        assert all(str(k) in msg for k in kids)
        with pytest.raises(OrphanError):  # a restart refuses to run beside the survivors
            t.start()
    t.close()  # the real sweep now kills them
    assert all(dead(k) for k in kids)
