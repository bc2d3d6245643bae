"""Reading incarnation logs: cheap tails of files that may be many megabytes long."""

from __future__ import annotations

import os
from pathlib import Path

_BLOCK = 64 * 1024
_MAX_TAIL_BYTES = 4 * 1024 * 1024


def tail_lines(path: str | os.PathLike[str], lines: int = 40) -> list[str]:
    """The last ``lines`` lines of a file (without their newlines), reading from the end.

    A missing or unreadable file gives ``[]``.  Bytes that are not UTF-8 are replaced.
    At most 4 MiB are read from the end, so a log of one endless line stays cheap.
    """
    if lines <= 0:
        return []
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            end = fh.tell()
            pos = end
            chunks: list[bytes] = []
            newlines = 0
            # lines + 1 newlines guarantee `lines` complete lines before the end.
            while pos > 0 and newlines <= lines and end - pos < _MAX_TAIL_BYTES:
                step = min(_BLOCK, pos)
                pos -= step
                fh.seek(pos)
                chunk = fh.read(step)
                chunks.append(chunk)
                newlines += chunk.count(b"\n")
    except OSError:
        return []
    data = b"".join(reversed(chunks))
    text = data.decode("utf-8", errors="replace")
    result = text.splitlines()
    if pos > 0 and result:
        result = result[1:]  # the first piece is probably a partial line
    return result[-lines:]


def tail_text(path: str | os.PathLike[str], lines: int = 40) -> str:
    """``tail_lines`` joined with newlines ("" when there is nothing)."""
    return "\n".join(tail_lines(path, lines))


def mentions(path: str | os.PathLike[str], needles: tuple[str, ...], lines: int = 200) -> bool:
    """True if any of ``needles`` (case-insensitive) occurs in the last ``lines`` lines."""
    text = tail_text(path, lines).lower()
    return any(n.lower() in text for n in needles)


def log_size(path: str | os.PathLike[str]) -> int:
    """Size of the file in bytes, 0 if missing."""
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0
