"""Process facts the harness tests assert on (a module, not a fixture: plain helpers)."""

from __future__ import annotations

import psutil


def dead(pid: int) -> bool:
    """True once ``pid`` is gone or a zombie (exited, not yet reaped by its parent)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
