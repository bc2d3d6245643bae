"""Decimal replay cursors, parsed the same way by both profiles (docs/protocol.md §2.3, §7.2)."""

from __future__ import annotations

import re

DIGITS_RE = re.compile(r"[0-9]+")
# Any cursor with more digits is past every event: it is served, with no events, and clamped to
# this value so that it still fits a 64-bit store column (and int(), which refuses 4300 digits).
CEILING_DIGITS = 18
CEILING = 10**CEILING_DIGITS


def cursor_value(text: str) -> int | None:
    """The cursor ``text`` names (digits only, any length, no sign/space/newline), or None if malformed."""
    if not DIGITS_RE.fullmatch(text):  # fullmatch: '$' would let a trailing newline in
        return None
    digits = text.lstrip("0") or "0"
    return int(digits) if len(digits) <= CEILING_DIGITS else CEILING
