"""The nemesis (conformance/nemesis) delivers each process fault through the harness and records
the proof: the exit mode the harness saw, the incarnation it hit, the one started after it."""

from __future__ import annotations

import subprocess
import sys

import pytest
import signal

from conformance.nemesis import STOPS, Nemesis, kill_writer
from pid_checks import dead


def clock() -> float:
    return 1.5


@pytest.mark.parametrize(
    "server, kind, mode",
    [
        ("basic", "sigkill", "killed"),
        ("basic", "sigterm", "graceful"),
        ("ignore_term", "sigterm_then_sigkill", "killed_after_grace"),
        ("basic", "drain", "graceful"),
        ("basic", "crash_twice", "killed"),  # its first stop; the second is a sigkill of its own
    ],
)
def test_a_crash_records_exit_mode_incarnation_and_restart(target_factory, spec_for, server, kind, mode):
    t = target_factory(spec_for(server), start=True)
    first_pid = t.pid
    released: list[str] = []
    nemesis = Nemesis(t, clock)
    rec = nemesis.crash(kind, "held", "held 2", release=lambda: released.append("x"), last_seq_before=7)
    assert nemesis.faults == [rec]
    assert (rec.kind, rec.trigger, rec.observed, rec.t, rec.last_seq_before) == (kind, "held", "held 2", 1.5, 7)
    assert rec.incarnation == 0 and rec.exit_mode == mode and rec.restarted_as == 1
    assert t.incarnations[0].exit_mode == mode and dead(first_pid)
    assert t.is_alive() and t.pid != first_pid
    assert released == ["x"]  # drain releases right after the SIGTERM, the others after the stop
    # the next fault hits the next incarnation
    assert nemesis.record("pause", "rule", None).incarnation == 1


def test_pause_resume_and_freeze_leave_the_target_running_or_stopped(target_factory, spec_for):
    import psutil

    t = target_factory(spec_for("basic"), start=True)
    nemesis = Nemesis(t, clock)
    nemesis.pause_resume(nemesis.record("pause", "rule", None))
    assert psutil.Process(t.pid).status() != psutil.STATUS_STOPPED
    nemesis.freeze()
    assert psutil.Process(t.pid).status() == psutil.STATUS_STOPPED
    nemesis.thaw()
    assert psutil.Process(t.pid).status() != psutil.STATUS_STOPPED
    assert t.is_alive() and len(t.incarnations) == 1


def test_an_unknown_stop_is_refused_not_delivered_as_something_else(target_factory, spec_for):
    t = target_factory(spec_for("basic"), start=True)
    nemesis = Nemesis(t, clock)
    with pytest.raises(ValueError, match="'cancel' is not a process stop"):
        nemesis.stop(nemesis.record("cancel", "held", None))
    assert t.is_alive() and "cancel" not in STOPS


def test_kill_writer_kills_the_whole_group_of_a_bare_process():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    assert kill_writer(proc, 10.0) == -signal.SIGKILL
    assert proc.returncode == -signal.SIGKILL
