"""The kit's own errors: one base, a family per part, each saying when it is raised.

A user's mistake (a bad contract, target file or option) is one of these and is shown as one
clear line per problem, never as a traceback.
"""

from __future__ import annotations


class KitError(Exception):
    """Base of every error the kit raises for a user's mistake (shown as one line, no traceback)."""


class ContractError(KitError):
    """A contract file is invalid: syntax, schema, unknown names, or a completeness/depth gate.

    One problem reads ``file:line: key: message``.  The loader collects every problem of a file
    and raises one ContractError whose ``errors`` lists them (sorted by line) and whose text is
    one such line per problem; a single problem's ``errors`` is ``[itself]``.
    """

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 key: str | None = None, errors: list["ContractError"] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.file, self.line, self.key = file, line, key
        self.errors: list[ContractError] = list(errors) if errors else [self]

    @property
    def location(self) -> str:
        """``file:line`` (or just ``file``, or "" when unknown)."""
        if self.file is None:
            return ""
        return f"{self.file}:{self.line}" if self.line is not None else self.file

    def __str__(self) -> str:
        if len(self.errors) > 1 or self.errors[0] is not self:
            return "\n".join(str(e) for e in self.errors)
        parts = [p for p in (self.location, self.key) if p]
        return ": ".join(parts + [self.message])


class ContractNotFoundError(ContractError):
    """A contract path, directory or glob names no contract file."""


class TargetConfigError(KitError):
    """A target file is invalid or names a command that cannot run."""


class OptionError(KitError):
    """A command-line option has a value the kit cannot use."""
