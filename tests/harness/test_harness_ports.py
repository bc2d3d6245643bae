"""Port reservations (harness/ports.py): outside the ephemeral range, exclusive across processes,
released by close()."""

from __future__ import annotations

import subprocess
import sys

from harness.ports import LOCK_DIR, candidate_range, ephemeral_range, reserve_port

PROBE = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except OSError:
    print("held")
else:
    print("free")
"""


def lock_state(port: int) -> str:
    out = subprocess.run([sys.executable, "-c", PROBE, str(LOCK_DIR / f"{port}.lock")], capture_output=True, text=True, timeout=30)
    return out.stdout.strip()


def test_reserved_ports_are_distinct_and_outside_the_ephemeral_range() -> None:
    low, high = candidate_range()
    eph_low, eph_high = ephemeral_range()
    reservations = [reserve_port() for _ in range(40)]
    try:
        ports = [r.port for r in reservations]
        assert len(set(ports)) == len(ports)
        assert all(low <= p <= high for p in ports)
        if eph_low - 1 - 10000 >= 1000:
            assert all(not eph_low <= p <= eph_high for p in ports)
    finally:
        for r in reservations:
            r.release()


def test_a_reservation_is_seen_by_other_processes_until_released() -> None:
    r = reserve_port()
    assert lock_state(r.port) == "held"
    r.release()
    r.release()  # idempotent
    assert lock_state(r.port) == "free"


def test_a_target_holds_its_port_until_close(target_factory, spec_for) -> None:
    target = target_factory(spec_for("basic"), start=True)
    assert lock_state(target.port) == "held"
    target.close()
    assert lock_state(target.port) == "free"
