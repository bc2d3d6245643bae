"""Server-Sent-Events framing that keeps the raw text of every frame.

httpx-sse (the maintained SSE client for httpx) decodes events but drops the raw text and any
comment lines (``: keep-alive``).  The kit needs both as evidence, so this module splits lines
on exactly ``\\r\\n``, ``\\r`` and ``\\n`` (not httpx's ``iter_lines``, which also splits on
Unicode separators such as ``\\x1e`` that SSE data may contain) and applies the field rules of
the WHATWG event-stream format.  ``tests/drivers`` checks it agrees
with httpx-sse on every generated stream.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field


@dataclass
class RawFrame:
    """One dispatched event: its fields, the raw lines it came from, and comments seen with it."""

    event: str | None
    data: str
    id: str | None
    retry: int | None
    raw: str
    comments: list[str] = field(default_factory=list)


class FrameParser:
    """Feed lines (without terminators); ``feed`` returns a frame when a blank line ends one."""

    def __init__(self) -> None:
        self._reset()
        self.last_event_id: str | None = None

    def _reset(self) -> None:
        self._event: str | None = None
        self._data: list[str] = []
        self._retry: int | None = None
        self._id_set = False
        self._raw: list[str] = []
        self._comments: list[str] = []

    def feed(self, line: str) -> RawFrame | None:
        if line == "":
            return self._dispatch()
        self._raw.append(line)
        if line.startswith(":"):
            self._comments.append(line[1:].lstrip(" "))
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            if "\0" not in value:
                self.last_event_id = value
                self._id_set = True
        elif name == "retry":
            if value.isdigit():
                self._retry = int(value)
        return None

    def _dispatch(self) -> RawFrame | None:
        raw = "\n".join(self._raw)
        if not self._data and not self._event and not self._id_set:
            comments = self._comments
            self._reset()
            if comments:  # a comment-only block (keep-alive): report it, no event
                return RawFrame(None, "", None, None, raw, comments)
            return None
        frame = RawFrame(
            event=self._event or None,
            data="\n".join(self._data),
            id=self.last_event_id,
            retry=self._retry,
            raw=raw + "\n\n",
            comments=self._comments,
        )
        self._reset()
        return frame


def iter_lines(chunks: Iterable[str]) -> Iterator[str]:
    """Split text chunks into SSE lines: terminators are ``\\r\\n``, ``\\r`` or ``\\n`` only."""
    buffer = ""
    for chunk in chunks:
        buffer += chunk
        start = 0
        while True:
            cut = min((i for i in (buffer.find("\r", start), buffer.find("\n", start)) if i >= 0), default=-1)
            if cut < 0:
                break
            if buffer[cut] == "\r" and cut + 1 == len(buffer):
                break  # a CR at the end of a chunk may be the first half of CRLF
            yield buffer[start:cut]
            start = cut + 2 if buffer.startswith("\r\n", cut) else cut + 1
        buffer = buffer[start:]
    if buffer.endswith("\r"):
        yield buffer[:-1]
    elif buffer:
        yield buffer


def iter_frames(lines: Iterable[str]) -> Iterator[RawFrame]:
    """Frames from an iterable of lines; a trailing frame without its blank line is dropped."""
    parser = FrameParser()
    for line in lines:
        frame = parser.feed(line)
        if frame is not None:
            yield frame
