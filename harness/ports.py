"""Loopback ports for targets: outside the kernel's ephemeral range, reserved across processes.

A target keeps one port for all its incarnations, so the port is unbound between a kill and the
restart. Two things could take it in that gap if the port were an ordinary ``bind(0)`` pick:

- another harness (a pytest-xdist worker) picking "a free port" at that moment;
- any outgoing connection, whose source port the kernel takes from the same ephemeral range.

So ports come from below the ephemeral range (``/proc/sys/net/ipv4/ip_local_port_range``), and each
is reserved with an ``flock`` on ``<tmp>/conformance-ports/<port>.lock`` that the owning Target
holds until it closes: every harness process on the machine sees the reservation, and a crashed
holder's lock vanishes with it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import random
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

LOCK_DIR = Path(tempfile.gettempdir()) / "conformance-ports"
DEFAULT_RANGE = (20000, 32767)
_ATTEMPTS = 200


def ephemeral_range() -> tuple[int, int]:
    """The kernel's ephemeral port range (Linux default when it cannot be read)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def candidate_range() -> tuple[int, int]:
    """Where reserved ports come from: below the ephemeral range when there is room for it."""
    low, _ = ephemeral_range()
    if low - 1 - 10000 >= 1000:
        return max(10000, min(DEFAULT_RANGE[0], low - 1000)), low - 1
    return DEFAULT_RANGE  # an unusual kernel setting: still reserved, just not outside the range


@dataclass
class PortReservation:
    """One reserved port; ``release()`` (idempotent) gives it back."""

    port: int
    _fd: int | None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing drops the flock


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def reserve_port(host: str = "127.0.0.1") -> PortReservation:
    """A port that is free now and that no other harness on this machine will hand out."""
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    low, high = candidate_range()
    rng = random.Random()
    for _ in range(_ATTEMPTS):
        port = rng.randint(low, high)
        fd = os.open(LOCK_DIR / f"{port}.lock", os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EACCES):
                continue  # another harness holds it
            raise
        if _bindable(host, port):
            return PortReservation(port, fd)
        os.close(fd)  # something outside the kit listens there: try another
    raise OSError(errno.EADDRINUSE, f"no free port found in {low}-{high} after {_ATTEMPTS} attempts")
