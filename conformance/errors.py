"""The kit's own errors: one base, a family per part, each saying when it is raised."""

from __future__ import annotations


class KitError(Exception):
    """Base of every error the kit raises for a user's mistake (shown as one line, no traceback)."""


class ContractError(KitError):
    """A contract file is invalid: syntax, schema, unknown names, or a completeness/depth gate."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 key: str | None = None, errors: list["ContractError"] | None = None) -> None:
        super().__init__(message)
        self.file, self.line, self.key = file, line, key
        self.errors = errors or []


class TargetConfigError(KitError):
    """A target file is invalid or names a command that cannot run."""


class OptionError(KitError):
    """A command-line option has a value the kit cannot use."""
