"""The crash harness: start target servers, wait for readiness, signal, restart, leave no orphan.

It knows processes, not protocols (its only HTTP is the readiness GET).  See docs/harness.md.
"""

from .errors import (
    CommandTemplateError,
    HarnessError,
    MarkerTimeout,
    OrphanError,
    PortInUseError,
    ReadinessError,
    SpawnError,
    TargetStateError,
)
from .markers import Markers
from .orphans import find_orphans, reap_orphans
from .process import Incarnation, Target, TargetSpec

__all__ = [
    "CommandTemplateError",
    "HarnessError",
    "Incarnation",
    "MarkerTimeout",
    "Markers",
    "OrphanError",
    "PortInUseError",
    "ReadinessError",
    "SpawnError",
    "Target",
    "TargetSpec",
    "TargetStateError",
    "find_orphans",
    "reap_orphans",
]
