"""Signals for a process the kit spawned itself outside a ``Target`` (a store suite's writer):
the same group-wide SIGKILL a ``Target`` uses, for a bare ``subprocess.Popen`` started with
``start_new_session=True``."""

from __future__ import annotations

import os
import signal
import subprocess


def kill_group(proc: subprocess.Popen[bytes], wait_s: float) -> int:
    """SIGKILL ``proc``'s process group (the process alone if the group is gone) and reap it
    within ``wait_s``; return its exit code (``-SIGKILL`` when the signal killed it)."""
    if proc.returncode is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            try:
                proc.send_signal(signal.SIGKILL)
            except OSError:
                pass
    return proc.wait(timeout=wait_s)
