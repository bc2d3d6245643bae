"""Process-wide registry of everything the harness started, and the last line of defence.

Every Target registers the pid of each process it spawns, every descendant it sees in a
psutil snapshot, and an environment token (``CONFORMANCE_HARNESS_TOKEN``) that all its
descendants inherit, so that a grandchild which escaped by double fork + setsid is still
recognisable as ours.  A Target that closes cleanly removes its entries.

``find_orphans()`` lists what is still alive; ``reap_orphans()`` kills it.  The pytest
plugin calls ``reap_orphans()`` at session end and fails the run if it found anything;
an ``atexit`` hook does the same (with a warning on stderr) for plain scripts.

Zombies count as dead: their resources are gone, and on a system whose init does not
reap (some containers), they would otherwise be reported forever.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable

import psutil

ENV_TOKEN = "CONFORMANCE_HARNESS_TOKEN"
"""Environment variable set in every spawned process; its value identifies target and incarnation."""

_lock = threading.Lock()
_procs: dict[int, psutil.Process] = {}
_tokens: set[str] = set()


def register(proc: psutil.Process | int) -> None:
    """Remember a process (or pid) the harness is responsible for."""
    if isinstance(proc, int):
        try:
            proc = psutil.Process(proc)
        except psutil.Error:
            return
    with _lock:
        known = _procs.get(proc.pid)
        if known is None or not _same(known, proc):
            _procs[proc.pid] = proc


def unregister(pids: Iterable[int]) -> None:
    """Forget processes that are known to be gone."""
    with _lock:
        for pid in pids:
            _procs.pop(pid, None)


def register_token(token: str) -> None:
    """Remember an environment token (a prefix of ``ENV_TOKEN`` values) whose holders are ours."""
    with _lock:
        _tokens.add(token)


def unregister_token(token: str) -> None:
    """Forget a token once every process carrying it is gone."""
    with _lock:
        _tokens.discard(token)


def registered_pids() -> list[int]:
    """Pids currently registered (alive or not)."""
    with _lock:
        return sorted(_procs)


def is_alive(proc: psutil.Process) -> bool:
    """True if the process exists, is the same process (no pid reuse) and is not a zombie."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def processes_with_token(prefix: str) -> list[psutil.Process]:
    """Live processes (other than this one) whose ``ENV_TOKEN`` value starts with ``prefix``."""
    return [p for p, _ in _scan_tokens((prefix,))]


def _scan_tokens(prefixes: Iterable[str]) -> list[tuple[psutil.Process, str]]:
    prefixes = tuple(prefixes)
    if not prefixes:
        return []
    me = os.getpid()
    found = []
    for proc in psutil.process_iter():
        if proc.pid == me:
            continue
        try:
            value = proc.environ().get(ENV_TOKEN)
        except (psutil.Error, OSError):
            continue
        if value and value.startswith(prefixes) and is_alive(proc):
            found.append((proc, value))
    return found


def find_orphans() -> list[psutil.Process]:
    """Registered processes, and processes carrying a registered token, that are still alive."""
    with _lock:
        procs = list(_procs.values())
        tokens = tuple(_tokens)
    alive = {p.pid: p for p in procs if is_alive(p)}
    for proc, _ in _scan_tokens(tokens):
        alive.setdefault(proc.pid, proc)
    return sorted(alive.values(), key=lambda p: p.pid)


def kill_processes(procs: Iterable[psutil.Process], timeout_s: float = 2.0) -> list[int]:
    """SIGSTOP then SIGKILL each live process, wait (bounded) until each is dead or a zombie.

    Stopping everything first keeps a parent from forking replacements while its siblings
    die.  Returns the pids that were alive and got signalled.  Never raises for processes
    that are already gone.
    """
    victims = [p for p in procs if is_alive(p)]
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        for proc in victims:
            try:
                proc.send_signal(sig)
            except psutil.Error:
                pass
    deadline = time.monotonic() + timeout_s
    pending = list(victims)
    event = threading.Event()
    while pending and time.monotonic() < deadline:
        pending = [p for p in pending if is_alive(p)]
        if pending:
            event.wait(0.005)
    return [p.pid for p in victims]


def reap_orphans() -> list[int]:
    """Kill every orphan ``find_orphans()`` reports; return their pids (empty when clean)."""
    orphans = find_orphans()
    killed = kill_processes(orphans) if orphans else []
    with _lock:
        for proc in list(_procs.values()):
            if not is_alive(proc):
                _procs.pop(proc.pid, None)
    return killed


def describe(procs: Iterable[psutil.Process]) -> str:
    """One short description per process: ``pid (name: cmdline)``."""
    parts = []
    for proc in procs:
        try:
            # Arguments may hold newlines (python -c): keep the description on one line.
            cmd = " ".join(a.replace("\n", "\\n") for a in proc.cmdline())[:120] or proc.name()
        except psutil.Error:
            cmd = "?"
        parts.append(f"{proc.pid} ({cmd})")
    return ", ".join(parts)


def _same(a: psutil.Process, b: psutil.Process) -> bool:
    try:
        return a.pid == b.pid and a.create_time() == b.create_time()
    except psutil.Error:
        return False


def _atexit_reap() -> None:
    try:
        orphans = find_orphans()
        if orphans:
            text = describe(orphans)
            kill_processes(orphans)
            print(f"harness: killed orphan processes at exit: {text}", file=sys.stderr)
    except Exception:  # pragma: no cover - never let interpreter exit fail here
        pass


atexit.register(_atexit_reap)
