"""Server configuration (built from the command line)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServerConfig:
    port: int
    state_dir: str
    host: str = "127.0.0.1"
    store: str = "file"
    resilient_background: bool = False
    shutdown_grace: float = 2.0
    marker_dir: str | None = None
    resilient_invocations: bool = False
    event_retention: int = 0
    worker_id: str = "worker"  # the lease owner name (stable across restarts: own tasks reclaimed at once)
    lease_ttl: float | None = None  # leases on task records (several workers on one shared store)
    plain_script: dict | None = None  # what a request without a script runs (black-box runs); None: {"deltas": 3}
