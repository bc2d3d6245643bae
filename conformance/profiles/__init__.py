"""Profiles as objects: one ``Profile`` per wire profile (docs/architecture.md "Profiles").

A profile object holds the profile's wire vocabulary (statuses, terminal statuses and events,
the delta and completed events, the cursor a resume sends, the calls its run makes), its
driver, the fault kinds and expectation keys it runs, and the run class that executes its
cells (its client and schedule layers over ``executor.CellRun``), its parse-time runnability
rules and how its frames read (cursor, first event, terminal status).  The runner, the fault
proxy, the parser, the checkers, the black-box derivation and the HTML report ask the cell's
profile; nothing outside this package tests a profile's name.  A third profile is one new module
here (its ``Profile`` and, if its wire differs, its run class) plus its contract tables.
"""

from __future__ import annotations

from .base import Profile
from .invocations import INVOCATIONS
from .responses import RESPONSES

PROFILES: dict[str, Profile] = {p.name: p for p in (RESPONSES, INVOCATIONS)}
"""Every profile the kit runs, by name (a cell's ``profile``)."""


def profile_of(name: str) -> Profile:
    """The profile called ``name``; ``KeyError`` naming the known ones otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(f"unknown profile {name!r} (known: {', '.join(sorted(PROFILES))})") from None


__all__ = ["INVOCATIONS", "PROFILES", "RESPONSES", "Profile", "profile_of"]
