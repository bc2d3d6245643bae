"""The harness's exceptions: one base, one class per way a process-level step can fail.

Every message is meant to be read by a person: it names what was attempted, what was
observed last, and (when there is one) the tail of the incarnation log.  The log part is also
kept apart (``log_tail``, ``log_path``) and ``message`` is the text without it, so that a caller
that shows the log itself (the plugin prints every incarnation's tail) quotes it once.  Lower-layer
errors (``OSError``, ``httpx`` errors, ``psutil`` errors) are mapped onto these at the
harness boundary; callers never need to catch anything else from ``harness``.
"""

from __future__ import annotations


class HarnessError(Exception):
    """Base class of every error the harness raises.  ``str(exc)`` is ``message`` followed, on
    the next lines, by ``log_tail`` (the quoted end of the log at ``log_path``) when there is one."""

    def __init__(self, message: str = "", *, log_tail: str = "", log_path: str | None = None) -> None:
        super().__init__(f"{message}\n{log_tail}" if log_tail else message)
        self.message = message
        self.log_tail = log_tail
        self.log_path = log_path


class CommandTemplateError(HarnessError):
    """The target command template is malformed (bad quoting, unknown placeholder, empty)."""


class TargetStateError(HarnessError):
    """A Target method was called in a state that does not allow it (e.g. start while running)."""


class SpawnError(HarnessError):
    """The command could not be started at all; names the command and the OS error."""


class PortInUseError(HarnessError):
    """The target's port is held by another process (before spawn, or seen at readiness)."""


class ReadinessError(HarnessError):
    """The process did not answer its readiness check with a 2xx before the deadline, or exited first."""


class MarkerTimeout(HarnessError):
    """An awaited marker line did not appear in time, or the process died while it was awaited."""


class OrphanError(HarnessError):
    """Processes started by the harness were still alive after they should all be gone."""
