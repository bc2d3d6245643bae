"""Spawn a target server, wait for it to be ready, signal it, restart it, leave nothing behind.

One ``Target`` is one server under test: a command template, a fixed loopback port, a
state directory, a marker directory and a log directory, kept across restarts.  Each
lifetime of the process is an ``Incarnation`` with its own log file and a recorded end
(``exit_mode``).  The harness knows nothing of the wire protocol except one readiness GET.

POSIX only: the process is started in its own session so that signals go to its whole
process group, and every descendant ever seen is tracked so that escaped ones (setsid,
double fork) are killed too.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from . import orphans
from .errors import (
    CommandTemplateError,
    HarnessError,
    OrphanError,
    PortInUseError,
    ReadinessError,
    SpawnError,
    TargetStateError,
)
from .logs import mentions, tail_text
from .markers import Markers
from .ports import PortReservation, reserve_port

PLACEHOLDERS = ("port", "state_dir", "marker_dir", "work_dir", "python")
"""Names a command template may use as ``{name}``."""

MARKER_DIR_ENV = "CONFORMANCE_MARKER_DIR"
"""Environment variable through which the target learns its marker directory."""

EXIT_MODES = ("graceful", "killed_after_grace", "killed", "exited")
"""Possible ``Incarnation.exit_mode`` values once a process is gone (None while alive)."""

_PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ADDR_IN_USE = ("address already in use", "errno 98", "eaddrinuse", "address in use")
_PROBE_TIMEOUT_S = 1.0
_POLL_MIN_S = 0.005  # between readiness probes during the first _FAST_PHASE_S: a start is seen within ~5 ms
_POLL_MAX_S = 0.05  # then the interval grows to this, so a slow starter is not hammered
_FAST_PHASE_S = 1.0
_ANSWERED_MIN_S = 0.1  # between probes once the server answers, but not yet with a 2xx
_ANSWERED_MAX_S = 0.25
_STOP_WAIT_S = 2.0
_KILL_WAIT_S = 5.0
_SWEEP_ROUNDS = 5
TAIL_LINES = 40
"""Log lines quoted in a readiness or port error message."""


@dataclass(frozen=True)
class TargetSpec:
    """How to start one target server (the process-level part of ``target.yaml``)."""

    command: str
    env: Mapping[str, str] = field(default_factory=dict)
    readiness_path: str = "/readiness"
    readiness_timeout_s: float = 20.0
    shutdown_grace_s: float = 5.0
    cwd: str | None = None
    extra_args: tuple[str, ...] = ()
    python: str | None = None  # what {python} stands for (default: this interpreter, sys.executable)

    def __post_init__(self) -> None:
        if not isinstance(self.command, str) or not self.command.strip():
            raise CommandTemplateError("target command is empty")
        if not self.readiness_path.startswith("/"):
            raise CommandTemplateError(f"readiness_path must start with '/': {self.readiness_path!r}")
        if not self.readiness_timeout_s > 0:
            raise CommandTemplateError(f"readiness_timeout_s must be > 0, got {self.readiness_timeout_s!r}")
        if not self.shutdown_grace_s >= 0:
            raise CommandTemplateError(f"shutdown_grace_s must be >= 0, got {self.shutdown_grace_s!r}")
        # Own copies of the inputs (as plain types, so dataclasses.asdict and JSON work).
        object.__setattr__(self, "env", {str(k): str(v) for k, v in dict(self.env).items()})
        object.__setattr__(self, "extra_args", tuple(str(a) for a in self.extra_args))

    def render(self, values: Mapping[str, str]) -> list[str]:
        """The argv for ``values``: the template is shlex-split first, then placeholders are filled
        into each token, so a value with spaces or quotes stays one argument."""
        try:
            tokens = shlex.split(self.command)
        except ValueError as exc:
            raise CommandTemplateError(f"cannot parse target command {self.command!r}: {exc}") from None
        if not tokens:
            raise CommandTemplateError("target command is empty")

        def fill(token: str) -> str:
            def sub(m: re.Match[str]) -> str:
                name = m.group(1)
                if name not in values:
                    known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
                    raise CommandTemplateError(
                        f"unknown placeholder {{{name}}} in target command {self.command!r} (known: {known})"
                    )
                return str(values[name])

            return _PLACEHOLDER_RE.sub(sub, token)

        return [fill(t) for t in tokens] + [fill(a) for a in self.extra_args]


@dataclass
class Incarnation:
    """One lifetime of the target process.  Times are seconds since the Target's ``t0``."""

    index: int
    pid: int | None
    started_at: float
    ready_at: float | None = None
    exited_at: float | None = None
    exit_code: int | None = None  # Popen returncode: negative = killed by that signal
    exit_mode: str | None = None  # graceful | killed_after_grace | killed | exited | None while alive
    log_path: str = ""
    stragglers_killed: int = 0
    survivors: list[int] = field(default_factory=list)  # pids still alive after the latest sweep


def pick_free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel considers free right now on ``host`` (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_owner(port: int) -> list[psutil.Process]:
    """Processes listening on TCP ``port`` (any address), as far as psutil can tell."""
    owners = []
    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.Error, OSError):
        return []
    for conn in conns:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            try:
                owners.append(psutil.Process(conn.pid))
            except psutil.Error:
                pass
    return owners


def check_port_free(port: int, host: str = "127.0.0.1") -> None:
    """Raise ``PortInUseError`` if something listens on ``host:port``.

    The probe binds with SO_REUSEADDR as servers (uvicorn, http.server) do, so a port whose
    old connections linger in TIME_WAIT counts as free, exactly as it will for the server.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                raise PortInUseError(f"cannot bind {host}:{port} to check it is free: {exc}") from None
            raise PortInUseError(f"port {port} on {host} is already in use{_owner_text(port)}") from None


def _owner_text(port: int, exclude: set[int] | None = None) -> str:
    owners = [p for p in port_owner(port) if not exclude or p.pid not in exclude]
    if not owners:
        return ""
    return f" (held by pid {orphans.describe(owners)})"


class Target:
    """One server under test: spawn, readiness, signals, restarts on the same port and dirs."""

    def __init__(
        self,
        spec: TargetSpec,
        work_dir: Path,
        port: int | None = None,
        *,
        state_dir: Path | None = None,
        marker_dir: Path | None = None,
    ) -> None:
        """``state_dir``/``marker_dir`` default to ``<work_dir>/state`` and ``<work_dir>/markers``;
        pass another target's to run several servers on one state (e.g. workers of one store)."""
        self.spec = spec
        self.t0 = time.monotonic()
        self.work_dir = Path(work_dir).resolve()
        self.state_dir = Path(state_dir).resolve() if state_dir is not None else self.work_dir / "state"
        self.marker_dir = Path(marker_dir).resolve() if marker_dir is not None else self.work_dir / "markers"
        self.log_dir = self.work_dir / "logs"
        for d in (self.state_dir, self.marker_dir, self.log_dir):
            d.mkdir(parents=True, exist_ok=True)
        # A port of our own, reserved (across processes) until close(): see harness/ports.py.
        self._port_reservation: PortReservation | None = None if port is not None else reserve_port()
        self.port = int(port) if port is not None else self._port_reservation.port  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.incarnations: list[Incarnation] = []
        self.markers = Markers(self.marker_dir, log_tail=lambda: self.log_tail())
        self._token = f"{uuid.uuid4().hex}-"
        self._procs: dict[int, subprocess.Popen[bytes]] = {}  # incarnation index -> Popen
        self._seen: dict[int, dict[int, psutil.Process]] = {}  # incarnation index -> pid -> Process
        self._group_killed: set[int] = set()  # incarnations whose group got our SIGKILL
        self._paused = False
        self._closed = False
        self._lock = threading.RLock()
        self._client: httpx.Client | None = None

    # -- introspection ---------------------------------------------------------------------

    @property
    def current(self) -> Incarnation | None:
        """The latest incarnation (alive or finished); None before the first start."""
        self._refresh()
        return self.incarnations[-1] if self.incarnations else None

    @property
    def log_paths(self) -> list[Path]:
        """Log files of all incarnations, in order (``incarnation-<n>.log``)."""
        return [Path(i.log_path) for i in self.incarnations]

    @property
    def pid(self) -> int | None:
        """Pid of the live incarnation's leader, else None."""
        proc = self._live_proc()
        return proc.pid if proc is not None else None

    def now(self) -> float:
        """Seconds since the Target was created (the time base of every Incarnation field)."""
        return time.monotonic() - self.t0

    def is_alive(self) -> bool:
        """True if the current incarnation's leader process has not exited."""
        alive = self._live_proc() is not None
        if not alive:
            self._refresh()
        return alive

    def log_tail(self, lines: int = TAIL_LINES, index: int | None = None) -> str:
        """Last ``lines`` lines of an incarnation's log (the current one by default)."""
        if not self.incarnations:
            return ""
        inc = self.incarnations[-1 if index is None else index]
        return tail_text(inc.log_path, lines)

    def lifecycle(self) -> list[dict[str, Any]]:
        """All incarnations as plain dicts, in order."""
        self._refresh()
        return [dataclasses.asdict(i) for i in self.incarnations]

    def tree_pids(self, index: int | None = None) -> list[int]:
        """Pids of an incarnation's process tree seen so far (leader included)."""
        if not self.incarnations:
            return []
        idx = self.incarnations[-1].index if index is None else index
        return sorted(self._seen.get(idx, {}))

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Incarnation:
        """Spawn the next incarnation and wait until it answers readiness with a 2xx."""
        with self._lock:
            self._check_open()
            if self._live_proc() is not None:
                raise TargetStateError(
                    f"target on port {self.port} is already running (pid {self.pid}); use restart()"
                )
            self._refresh()
            return self._spawn_and_wait()

    def restart(self) -> Incarnation:
        """Kill the current incarnation if it is alive (recorded as killed), start the next one."""
        with self._lock:
            self._check_open()
            if self._live_proc() is not None:
                self._check_swept(self._stop(graceful=False, grace_s=0.0), "restart")
            self._refresh()
            return self._spawn_and_wait()

    def terminate(self, grace_s: float | None = None, after_signal: Callable[[], None] | None = None) -> Incarnation:
        """SIGTERM the process group, wait up to ``grace_s`` (default: the spec's), then SIGKILL.
        ``after_signal`` is called right after the SIGTERM is sent, before the wait.

        Returns the finished record: ``graceful`` if the leader exited within the grace,
        ``killed_after_grace`` if it had to be killed, ``exited`` if it was already gone.
        Raises ``OrphanError`` if a process of the incarnation survived the sweep (recorded in
        ``Incarnation.survivors`` too).
        """
        grace = self.spec.shutdown_grace_s if grace_s is None else grace_s
        with self._lock:
            return self._check_swept(self._stop(graceful=True, grace_s=grace, after_signal=after_signal), "terminate")

    def kill(self) -> Incarnation:
        """SIGKILL the process group; the record ends as ``killed`` (or ``exited`` if already gone).

        Raises ``OrphanError`` like ``terminate()`` if anything of the incarnation survived."""
        with self._lock:
            return self._check_swept(self._stop(graceful=False, grace_s=0.0), "kill")

    def pause(self) -> None:
        """SIGSTOP the process group and wait (bounded) until the leader and the members of its
        group seen so far are stopped; ``HarnessError`` if that does not happen in time."""
        with self._lock:
            proc = self._require_live("pause")
            self._snapshot()
            self._signal_group(proc, signal.SIGSTOP)
            self._paused = True  # even if the wait fails: the stop may still land, so terminate() sends SIGCONT
            self._wait_status(proc, stopped=True)

    def resume(self) -> None:
        """SIGCONT the process group and wait (bounded) until the leader and the members of its
        group run again; ``HarnessError`` if they are still stopped at the deadline."""
        with self._lock:
            proc = self._require_live("resume")
            self._signal_group(proc, signal.SIGCONT)
            self._wait_status(proc, stopped=False)
            self._paused = False

    def close(self) -> None:
        """Kill whatever is alive, then make sure no process of any incarnation survives.

        Idempotent.  Raises ``OrphanError`` only if a process could not be killed.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                if self._live_proc() is not None:
                    self._stop(graceful=False, grace_s=0.0)
                self._refresh()
                for inc in self.incarnations:
                    self._sweep(inc)
                survivors = [p for p in self._tracked_alive(None)]
                if survivors:
                    orphans.kill_processes(survivors, timeout_s=_KILL_WAIT_S)
                    survivors = [p for p in survivors if orphans.is_alive(p)]
                if survivors:
                    raise OrphanError(
                        f"target on port {self.port}: processes survived SIGKILL: {orphans.describe(survivors)}"
                    )
                for seen in self._seen.values():
                    orphans.unregister(seen)
                orphans.unregister_token(self._token)
            finally:
                if self._client is not None:
                    self._client.close()
                    self._client = None
                if self._port_reservation is not None:
                    self._port_reservation.release()

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("alive" if self._live_proc() else "stopped")
        return f"<Target {self.base_url} incarnations={len(self.incarnations)} {state}>"

    # -- spawning --------------------------------------------------------------------------

    def _values(self) -> dict[str, str]:
        return {
            "port": str(self.port),
            "state_dir": str(self.state_dir),
            "marker_dir": str(self.marker_dir),
            "work_dir": str(self.work_dir),
            "python": self.spec.python or sys.executable,
        }

    def _env(self, index: int) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")  # so that a log tail shows what a Python server printed
        env.update(self.spec.env)
        env[MARKER_DIR_ENV] = str(self.marker_dir)
        env[orphans.ENV_TOKEN] = self._inc_token(index)
        return env

    def _inc_token(self, index: int) -> str:
        return f"{self._token}{index}."

    def _spawn_and_wait(self) -> Incarnation:
        argv = self.spec.render(self._values())
        index = len(self.incarnations)
        log_path = self.log_dir / f"incarnation-{index}.log"
        if self.incarnations:
            # Leftovers of a self-exited one may hold the port, or write into the state dir.
            self._sweep(self.incarnations[-1])
            self._check_swept(self.incarnations[-1], "start")
        check_port_free(self.port)
        env = self._env(index)
        orphans.register_token(self._token)
        if self._client is None:
            # Plain HTTP to loopback only: no proxies from the environment, no CA bundle to load.
            self._client = httpx.Client(
                trust_env=False, verify=False, timeout=_PROBE_TIMEOUT_S, headers={"Connection": "close"}
            )
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        try:
            started = self.now()
            try:
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log_fd,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    env=env,
                    cwd=self.spec.cwd,
                    close_fds=True,
                )
            except OSError as exc:
                what = exc.strerror or str(exc)
                where = f" ({exc.filename})" if exc.filename else ""
                msg = f"cannot start target command {argv[0]!r}: [Errno {exc.errno}] {what}{where}; command: {shlex.join(argv)}"
                if self.spec.cwd:
                    msg += f"; cwd: {self.spec.cwd}"
                os.write(log_fd, f"harness: {msg}\n".encode())
                raise SpawnError(msg) from None
        finally:
            os.close(log_fd)
        inc = Incarnation(index=index, pid=proc.pid, started_at=started, log_path=str(log_path))
        self.incarnations.append(inc)
        self._procs[index] = proc
        self._paused = False
        try:
            leader = psutil.Process(proc.pid)
            self._seen[index] = {proc.pid: leader}
            orphans.register(leader)
        except psutil.Error:
            self._seen[index] = {}
        try:
            self._wait_ready(inc, proc, argv)
        except BaseException as exc:
            if proc.poll() is None:
                self._stop(graceful=False, grace_s=0.0)
            else:
                self._refresh()
                self._sweep(inc)
            if inc.survivors:  # the start's own error stays the one raised; close() raises OrphanError
                exc.add_note(f"harness: still alive after the failed start: pids {inc.survivors}")
            raise
        return inc

    def _wait_ready(self, inc: Incarnation, proc: subprocess.Popen[bytes], argv: list[str]) -> None:
        url = self.base_url + self.spec.readiness_path
        timeout = self.spec.readiness_timeout_s
        begin = time.monotonic()
        deadline = begin + timeout
        client = self._client
        assert client is not None
        last = "no answer yet"
        interval = _POLL_MIN_S
        while True:
            remaining = deadline - time.monotonic()
            answered = False
            try:
                resp = client.get(url, timeout=max(0.05, min(_PROBE_TIMEOUT_S, remaining)))
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                if 200 <= resp.status_code < 300:
                    inc.ready_at = self.now()
                    self._snapshot()
                    self._verify_listener(inc)
                    return
                answered = True
                body = resp.text[:200].strip()
                last = f"HTTP {resp.status_code}" + (f": {body}" if body else "")
            # Next probe: every 5 ms while nothing listens (cheap, and the ready time stays
            # precise); slower once the server answers non-2xx (each probe may log a line) or
            # after the first second.  The process is watched in slices of at most 50 ms meanwhile.
            if answered:
                interval = min(max(interval * 1.5, _ANSWERED_MIN_S), _ANSWERED_MAX_S)
            elif time.monotonic() - begin > _FAST_PHASE_S:
                interval = min(interval * 1.5, _POLL_MAX_S)
            next_probe = min(time.monotonic() + interval, deadline)
            code = None
            while True:
                now = time.monotonic()
                if now >= next_probe:
                    break
                try:
                    code = proc.wait(timeout=min(_POLL_MAX_S, next_probe - now))
                    break
                except subprocess.TimeoutExpired:
                    continue
            if code is None:
                if time.monotonic() >= deadline:
                    break
                continue
            raise self._exited_during_startup(inc, code, url, last, argv)
        code = proc.poll()
        if code is not None:
            raise self._exited_during_startup(inc, code, url, last, argv)
        self._snapshot()
        tail = self.log_tail(TAIL_LINES, inc.index)
        raise ReadinessError(
            f"target not ready within {timeout:g}s: GET {url} never answered 2xx "
            f"(last: {last}); process pid {proc.pid} still running, killed it; command: {shlex.join(argv)}",
            log_tail=f"last {TAIL_LINES} lines of {inc.log_path}:\n{_indent(tail)}",
            log_path=inc.log_path,
        )

    def _exited_during_startup(
        self, inc: Incarnation, code: int, url: str, last: str, argv: list[str]
    ) -> ReadinessError | PortInUseError:
        self._record_exit(inc, code, "exited")
        self._sweep(inc)
        tail = _indent(self.log_tail(TAIL_LINES, inc.index))
        quoted = f"last {TAIL_LINES} lines of {inc.log_path}:\n{tail}"
        if mentions(inc.log_path, _ADDR_IN_USE):
            return PortInUseError(
                f"target exited with code {code} during startup because port {self.port} is in use"
                f"{_owner_text(self.port)}; command: {shlex.join(argv)}",
                log_tail=quoted,
                log_path=inc.log_path,
            )
        return ReadinessError(
            f"target exited with code {code} after {inc.exited_at - inc.started_at:.2f}s, "
            f"before GET {url} answered 2xx (last: {last}); command: {shlex.join(argv)}",
            log_tail=quoted,
            log_path=inc.log_path,
        )

    def _verify_listener(self, inc: Incarnation) -> None:
        """After a 2xx: make sure it was our process tree that answered, not a stranger."""
        seen = self._seen.get(inc.index, {})
        for proc in list(seen.values()):
            try:
                conns = proc.net_connections(kind="tcp")
            except (psutil.Error, OSError):
                continue
            for conn in conns:
                if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == self.port:
                    return
        # Not found in the tree we know; a daemonised server may have escaped the snapshot.
        mine = {p.pid for p in orphans.processes_with_token(self._token)} | set(seen)
        owners = port_owner(self.port)
        if not owners or any(p.pid in mine for p in owners):
            return  # psutil cannot tell, or it is ours after all
        raise PortInUseError(
            f"port {self.port} answered readiness, but the listener is not in the target's process tree: "
            f"held by pid {orphans.describe(owners)}"
        )

    # -- stopping --------------------------------------------------------------------------

    def _stop(self, *, graceful: bool, grace_s: float, after_signal: Callable[[], None] | None = None) -> Incarnation:
        if not self.incarnations:
            raise TargetStateError("target was never started")
        inc = self.incarnations[-1]
        proc = self._procs.get(inc.index)
        if proc is None or inc.exit_mode is not None:
            self._sweep(inc)
            return inc
        code = proc.poll()
        if code is not None:
            self._record_exit(inc, code, "exited")
            self._sweep(inc)
            return inc
        self._snapshot()
        if graceful:
            self._signal_group(proc, signal.SIGTERM)
            if self._paused:
                self._signal_group(proc, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
                self._paused = False
            if after_signal is not None:
                after_signal()
            try:
                code = proc.wait(timeout=grace_s)
                mode = "graceful"
            except subprocess.TimeoutExpired:
                self._snapshot()
                code = self._kill_leader(proc)
                mode = "killed_after_grace"
        else:
            code = self._kill_leader(proc)
            mode = "killed"
        self._paused = False
        self._record_exit(inc, code, mode)
        self._sweep(inc)
        return inc

    def _kill_leader(self, proc: subprocess.Popen[bytes]) -> int:
        self._group_killed.add(self.incarnations[-1].index)
        self._signal_group(proc, signal.SIGKILL)
        try:
            proc.kill()
        except OSError:
            pass
        try:
            return proc.wait(timeout=_KILL_WAIT_S)
        except subprocess.TimeoutExpired:
            raise OrphanError(f"pid {proc.pid} did not die within {_KILL_WAIT_S}s of SIGKILL") from None

    def _record_exit(self, inc: Incarnation, code: int, mode: str) -> None:
        if inc.exit_mode is None:
            inc.exited_at = self.now()
            inc.exit_code = code
            inc.exit_mode = mode

    def _sweep(self, inc: Incarnation) -> None:
        """Kill what is left of an incarnation's tree after its leader is gone; count it.

        A straggler is a process of the tree that is still alive once the leader is gone and
        that our signal to the group did not already doom: a member of the group that we
        SIGKILLed is merely dying and is not counted; one that ignored SIGTERM, or that left
        the group (setsid, double fork), is.

        Whatever is still alive after the last round is recorded in ``inc.survivors`` (and is
        not counted as killed); ``_check_swept`` turns that into an ``OrphanError``.
        """
        doomed_group = inc.pid if inc.index in self._group_killed else None
        counted: set[int] = set()
        seen = self._seen.setdefault(inc.index, {})
        for round_ in range(_SWEEP_ROUNDS + 1):  # the extra look sees what the last kills left
            alive = self._leftovers(inc.index)
            for p in alive:
                orphans.register(p)
                seen.setdefault(p.pid, p)
            if not alive or round_ == _SWEEP_ROUNDS:
                break
            counted.update(p.pid for p in alive if doomed_group is None or _pgid(p.pid) != doomed_group)
            orphans.kill_processes(alive)
        inc.survivors = sorted(p.pid for p in alive)
        inc.stragglers_killed += len(counted - {inc.pid} - set(inc.survivors))

    def _leftovers(self, index: int) -> list[psutil.Process]:
        """Live processes of an incarnation: tracked ones and holders of its token."""
        alive = self._tracked_alive(index)
        known = {p.pid for p in alive}
        alive += [p for p in orphans.processes_with_token(self._inc_token(index)) if p.pid not in known]
        return alive

    def _check_swept(self, inc: Incarnation, action: str) -> Incarnation:
        """``OrphanError`` if the last sweep of ``inc`` left survivors; else ``inc``."""
        if not inc.survivors:
            return inc
        seen = self._seen.get(inc.index, {})
        procs = [seen[pid] for pid in inc.survivors if pid in seen]
        raise OrphanError(
            f"{action}: target on port {self.port}, incarnation {inc.index}: {len(inc.survivors)} process(es) "
            f"still alive after {_SWEEP_ROUNDS} rounds of SIGSTOP+SIGKILL: {orphans.describe(procs)}"
        )

    def _tracked_alive(self, index: int | None) -> list[psutil.Process]:
        groups = self._seen.values() if index is None else [self._seen.get(index, {})]
        alive = []
        for seen in groups:
            alive.extend(p for p in seen.values() if orphans.is_alive(p))
        return alive

    # -- helpers ---------------------------------------------------------------------------

    def _snapshot(self) -> None:
        """Remember every live descendant of the current incarnation's known processes.

        One pass over the process table (ppid map), then a walk down from every process of
        the tree seen so far, so that children of an escaped (setsid) child are found too.
        """
        if not self.incarnations:
            return
        idx = self.incarnations[-1].index
        seen = self._seen.setdefault(idx, {})
        roots = [p for p in seen.values() if orphans.is_alive(p)]
        if not roots:
            return
        by_parent: dict[int, list[psutil.Process]] = {}
        for proc in psutil.process_iter(["ppid"]):
            ppid = proc.info.get("ppid")
            if ppid:
                by_parent.setdefault(ppid, []).append(proc)
        stack = list(roots)
        while stack:
            parent = stack.pop()
            try:
                born = parent.create_time()
            except psutil.Error:
                continue
            for kid in by_parent.get(parent.pid, ()):
                try:
                    if kid.create_time() < born:
                        continue  # pid reuse: older than its supposed parent
                except psutil.Error:
                    continue
                if kid.pid not in seen:
                    seen[kid.pid] = kid
                    orphans.register(kid)
                    stack.append(kid)

    def _signal_group(self, proc: subprocess.Popen[bytes], sig: int) -> None:
        if proc.returncode is not None:
            return  # reaped: the pgid may already belong to someone else
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            try:
                proc.send_signal(sig)
            except OSError:
                pass

    def _wait_status(self, proc: subprocess.Popen[bytes], *, stopped: bool) -> None:
        """Wait until the leader and the members of its group seen so far are all stopped
        (``stopped``) or all running again; bounded by ``_STOP_WAIT_S``.

        Members that exited meanwhile do not count.  ``TargetStateError`` if the leader itself
        exited; ``HarnessError`` naming each laggard and its status at the deadline."""
        sig, want = ("SIGSTOP", "stopped") if stopped else ("SIGCONT", "running")
        leader = proc.pid
        seen = self._seen.get(self.incarnations[-1].index, {})
        members = {leader: seen.get(leader)}
        members.update({pid: p for pid, p in seen.items() if pid != leader and _pgid(pid) == leader})
        deadline = time.monotonic() + _STOP_WAIT_S
        ticker = threading.Event()
        while True:
            lagging: dict[int, str] = {}
            for pid, p in members.items():
                try:
                    status = (p if p is not None else psutil.Process(pid)).status()
                except psutil.Error:
                    status = psutil.STATUS_DEAD
                if status in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
                    if pid == leader:
                        self._refresh()
                        raise TargetStateError(
                            f"target on port {self.port}: leader pid {leader} exited while waiting for it to be "
                            f"{want} after {sig}\nlast {TAIL_LINES} lines of the log:\n{_indent(self.log_tail())}"
                        )
                    continue
                if (status == psutil.STATUS_STOPPED) != stopped:
                    lagging[pid] = status
            if not lagging:
                return
            if time.monotonic() >= deadline:
                break
            ticker.wait(0.002)
        what = ", ".join(f"pid {pid}{' (leader)' if pid == leader else ''} is {st}" for pid, st in lagging.items())
        raise HarnessError(
            f"target on port {self.port}: {sig} to process group {leader} did not take effect within "
            f"{_STOP_WAIT_S:g}s: waited for every process of the group to be {want}, last seen: {what}"
        )

    def _live_proc(self) -> subprocess.Popen[bytes] | None:
        if not self.incarnations:
            return None
        inc = self.incarnations[-1]
        proc = self._procs.get(inc.index)
        if proc is None or inc.exit_mode is not None or proc.poll() is not None:
            return None
        return proc

    def _require_live(self, what: str) -> subprocess.Popen[bytes]:
        self._check_open()
        proc = self._live_proc()
        if proc is None:
            raise TargetStateError(f"cannot {what}: target on port {self.port} is not running")
        return proc

    def _refresh(self) -> None:
        """Record an exit the process made on its own (mode ``exited``), without blocking."""
        if not self.incarnations or not self._lock.acquire(blocking=False):
            return
        try:
            inc = self.incarnations[-1]
            proc = self._procs.get(inc.index)
            if proc is not None and inc.exit_mode is None:
                code = proc.poll()
                if code is not None:
                    self._record_exit(inc, code, "exited")
        finally:
            self._lock.release()

    def _check_open(self) -> None:
        if self._closed:
            raise TargetStateError(f"target on port {self.port} is closed")


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _indent(text: str) -> str:
    if not text:
        return "  | (log is empty)"
    return "\n".join(f"  | {line}" for line in text.splitlines())
