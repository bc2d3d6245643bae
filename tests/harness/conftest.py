"""Helpers for the harness tests: the tiny servers under ./servers and a spec builder."""

from __future__ import annotations

import shlex
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.process import TargetSpec

SERVERS = Path(__file__).resolve().parent / "servers"


def server_spec(script: str, *args: str, **kw) -> TargetSpec:
    """A spec running ``servers/<script>.py {port} <args>`` with the current interpreter.

    ``-S`` (no site module): the tiny servers use the standard library only, and a start
    without site-packages is a few tens of milliseconds faster, which adds up over the folder."""
    path = shlex.quote(str(SERVERS / f"{script}.py"))
    command = " ".join(["{python}", "-S", path, "{port}", *args])
    kw.setdefault("readiness_timeout_s", 10.0)
    kw.setdefault("shutdown_grace_s", 5.0)
    return TargetSpec(command=command, **kw)


def wait_until(predicate: Callable[[], bool], timeout_s: float = 5.0, what: str = "condition") -> None:
    """Bounded poll (no bare sleeps): return as soon as predicate() is true, fail at the deadline."""
    deadline = time.monotonic() + timeout_s
    tick = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        tick.wait(0.005)


@pytest.fixture
def spec_for() -> Callable[..., TargetSpec]:
    return server_spec


@pytest.fixture
def until() -> Callable[..., None]:
    return wait_until


@pytest.fixture
def servers_dir() -> Path:
    return SERVERS
