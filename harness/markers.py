"""Test-control marker files (docs/protocol.md §3.4), read, parsed and waited on by the harness.

The target's handler appends one fsync'd line per event to ``<marker_dir>/<tag>.log``
(``start attempt=1 id=...``, ``delta 0``, ``held 3``, ``released``, ``done``...).  A held
handler goes on when ``<marker_dir>/<tag>.release`` exists.  ``parse_marker`` turns a line
into its typed record (``Start``, ``Delta``, ``Held``, ... or ``Unparsed``): the one place the
line formats are read.

Only complete lines count: a last line without its ``\\n`` is a write in progress and is
ignored until it is finished.  Every wait is bounded; a timeout names the tag, the
pattern, the last lines seen and the tail of the target's log.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import MarkerTimeout

POLL_S = 0.005
"""Interval between two looks at a marker file while waiting."""

_SHOW_LINES = 10


# -- marker lines, parsed once ---------------------------------------------------------------
# The lines a handler writes (docs/protocol.md §3.4 and §7.9), one record type each.  Every
# consumer in the kit reads these records instead of matching the text itself.


@dataclass(frozen=True)
class Start:
    """``start attempt=<n> id=<id> from=<i>``: an attempt begins (``from_``: its first delta).
    A field the line leaves out is ``None`` (the checks say what is missing)."""

    attempt: int | None
    id: str | None
    from_: int | None

    def __str__(self) -> str:
        parts = [f"{k}={v}" for k, v in (("attempt", self.attempt), ("id", self.id), ("from", self.from_)) if v is not None]
        return " ".join(["start", *parts])


@dataclass(frozen=True)
class Delta:
    """``delta <i>``: delta ``i`` was emitted (and persisted)."""

    index: int

    def __str__(self) -> str:
        return f"delta {self.index}"


@dataclass(frozen=True)
class Checkpoint:
    """``checkpoint <i>``: a checkpoint covering deltas up to ``i`` is durable."""

    index: int

    def __str__(self) -> str:
        return f"checkpoint {self.index}"


@dataclass(frozen=True)
class Held:
    """``held <i>``: the handler blocks at ``hold_at = i`` (``-1``: before it started)."""

    index: int

    def __str__(self) -> str:
        return f"held {self.index}"


@dataclass(frozen=True)
class Fail:
    """``fail <i>``: ``fail_at = i`` fired."""

    index: int

    def __str__(self) -> str:
        return f"fail {self.index}"


@dataclass(frozen=True)
class Released:
    """``released``: the release file was seen."""

    def __str__(self) -> str:
        return "released"


@dataclass(frozen=True)
class Interrupted:
    """``interrupted``: cancel, disconnect, shutdown or a supersede reached the handler."""

    def __str__(self) -> str:
        return "interrupted"


@dataclass(frozen=True)
class Done:
    """``done``: the terminal event of a completed run was emitted."""

    def __str__(self) -> str:
        return "done"


@dataclass(frozen=True)
class Unparsed:
    """A line that is none of the above: kept as written, with its first ``word`` and ``why``."""

    line: str
    word: str
    why: str

    def __str__(self) -> str:
        return self.line


Marker = Start | Delta | Checkpoint | Held | Fail | Released | Interrupted | Done | Unparsed
"""One parsed marker line."""

_INDEXED: dict[str, type] = {"delta": Delta, "checkpoint": Checkpoint, "held": Held, "fail": Fail}
_BARE: dict[str, Marker] = {"released": Released(), "interrupted": Interrupted(), "done": Done()}


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def parse_marker(line: str) -> Marker:
    """The record of one marker line; a line that does not follow the contract is ``Unparsed``
    (never an exception)."""
    words = line.split()
    word = words[0] if words else ""
    if word in _BARE:
        return _BARE[word] if len(words) == 1 else Unparsed(line, word, f"'{word}' takes no argument")
    if word in _INDEXED:
        index = _int(words[1]) if len(words) == 2 else None
        if index is None:
            return Unparsed(line, word, f"expected '{word} <integer>'")
        return _INDEXED[word](index)
    if word == "start":
        fields = dict(w.split("=", 1) for w in words[1:] if "=" in w)  # a word without '=' is ignored
        return Start(_int(fields.get("attempt")), fields.get("id") or None, _int(fields.get("from")))
    return Unparsed(line, word, "not a marker line of the test-control contract" if word else "empty line")


def parse_markers(lines: list[str]) -> list[Marker]:
    """``parse_marker`` of every line, in order."""
    return [parse_marker(line) for line in lines]


MarkerWanted = type | Marker
"""What a wait can ask for: a record type (any ``Held``) or one record (``Held(1)``)."""


def _matches(wanted: str | MarkerWanted) -> Callable[[str], bool]:
    if isinstance(wanted, str):
        regex = re.compile(wanted)
        return lambda line: regex.search(line) is not None
    if isinstance(wanted, type):
        return lambda line: isinstance(parse_marker(line), wanted)
    return lambda line: parse_marker(line) == wanted


def _describe(wanted: str | MarkerWanted, n: int = 1) -> str:
    lines = "line" if n == 1 else f"{n} lines"
    if isinstance(wanted, str):
        return f"{lines} matching /{wanted}/"
    return f"{lines} '{_FORMS.get(wanted, wanted) if isinstance(wanted, type) else wanted}' (marker)"


_FORMS: dict[type, str] = {Start: "start attempt=N id=ID from=N", Delta: "delta N", Checkpoint: "checkpoint N",
                           Held: "held N", Fail: "fail N", Released: "released", Interrupted: "interrupted", Done: "done"}


class Markers:
    """Reader of one marker directory.  ``log_tail`` gives the target's log tail for error messages."""

    def __init__(self, marker_dir: Path, log_tail: Callable[[], str] | None = None) -> None:
        self.marker_dir = Path(marker_dir)
        self._log_tail = log_tail
        self._cache: dict[str, tuple[tuple[int, int, int], list[str]]] = {}
        self._cache_lock = threading.Lock()
        self._first_seen: dict[str, list[float]] = {}

    # -- files ---------------------------------------------------------------------------

    def path(self, tag: str) -> Path:
        """The marker file of ``tag``."""
        return self.marker_dir / f"{_check_tag(tag)}.log"

    def release_path(self, tag: str) -> Path:
        """The release file of ``tag``."""
        return self.marker_dir / f"{_check_tag(tag)}.release"

    def lines(self, tag: str) -> list[str]:
        """Complete lines of the tag's marker file, without newlines ([] if there is no file)."""
        path = self.path(tag)
        try:
            st = path.stat()
        except FileNotFoundError:
            return []
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        with self._cache_lock:
            cached = self._cache.get(tag)
        if cached is not None and cached[0] == key:
            return list(cached[1])
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n")
        complete = data[: end + 1] if end >= 0 else b""
        result = complete.decode("utf-8", errors="replace").splitlines()
        # Cache on what was read, not on the earlier stat: a size mismatch just re-reads next time.
        key = (st.st_ino, len(data), st.st_mtime_ns)
        now = time.monotonic()
        with self._cache_lock:
            self._cache[tag] = (key, result)
            seen = self._first_seen.setdefault(tag, [])
            seen.extend([now] * (len(result) - len(seen)))
        return list(result)

    def first_seen(self, tag: str) -> list[float]:
        """``time.monotonic()`` of the first read that found each complete line of ``tag`` (by
        any caller: a wait, a watch, a plain ``lines``)."""
        with self._cache_lock:
            return list(self._first_seen.get(tag, []))

    def all(self) -> dict[str, list[str]]:
        """Every tag in the directory with its complete lines."""
        try:
            names = sorted(p.name for p in self.marker_dir.iterdir() if p.suffix == ".log")
        except FileNotFoundError:
            return {}
        return {name[: -len(".log")]: self.lines(name[: -len(".log")]) for name in names}

    def release(self, tag: str) -> None:
        """Create the release file for ``tag`` (idempotent), fsync'd along with its directory."""
        path = self.release_path(tag)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        _fsync_dir(self.marker_dir)

    def is_released(self, tag: str) -> bool:
        """True if the release file exists."""
        return self.release_path(tag).exists()

    # -- waiting -------------------------------------------------------------------------

    def wait_for(
        self,
        tag: str,
        pattern: str | MarkerWanted,
        timeout_s: float = 10.0,
        *,
        start: int = 0,
        alive: Callable[[], bool] | None = None,
    ) -> str:
        """First line at index >= ``start`` that is the marker ``pattern`` asks for (a record type
        such as ``Held``, or a record such as ``Held(1)``), or, for a ``str``, that ``re.search``es
        it; bounded by ``timeout_s``.

        If ``alive()`` returns False the wait ends at once (after one last look at the file)
        with ``MarkerTimeout``.
        """
        return self.wait_count(tag, pattern, 1, timeout_s, start=start, alive=alive)[0]

    def wait_count(
        self,
        tag: str,
        pattern: str | MarkerWanted,
        n: int,
        timeout_s: float = 10.0,
        *,
        start: int = 0,
        alive: Callable[[], bool] | None = None,
    ) -> list[str]:
        """The first ``n`` lines (from index ``start``) matching ``pattern``; bounded by ``timeout_s``."""
        wanted = _matches(pattern)
        deadline = time.monotonic() + timeout_s
        ticker = threading.Event()
        matched: list[str] = []
        checked = start
        while True:
            died = alive is not None and not alive()
            # Read after asking alive(): a line written just before death is still seen.
            lines = self.lines(tag)
            for line in lines[checked:]:
                if wanted(line):
                    matched.append(line)
                    if len(matched) >= n:
                        return matched
            checked = max(checked, len(lines))
            if died:
                raise self._timeout(tag, pattern, n, matched, lines, timeout_s, died=True)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._timeout(tag, pattern, n, matched, lines, timeout_s, died=False)
            ticker.wait(min(POLL_S, remaining))

    def _timeout(
        self,
        tag: str,
        pattern: str | MarkerWanted,
        n: int,
        matched: list[str],
        lines: list[str],
        timeout_s: float,
        *,
        died: bool,
    ) -> MarkerTimeout:
        want = _describe(pattern, n) + ("" if n == 1 else f" (got {len(matched)})")
        if died:
            head = f"marker {tag!r}: the target process exited while waiting for a {want}"
        else:
            head = f"marker {tag!r}: no {want} within {timeout_s:g}s"
        parts = [head, f"marker file: {self.path(tag)}"]
        if not self.path(tag).exists():
            parts.append("last marker lines: (the marker file does not exist)")
        elif not lines:
            parts.append("last marker lines: (no complete line yet)")
        else:
            shown = lines[-_SHOW_LINES:]
            parts.append(f"last marker lines ({len(shown)} of {len(lines)}):")
            parts.extend(f"  {line}" for line in shown)
        quoted: list[str] = []
        if self._log_tail is not None:
            try:
                tail = self._log_tail()
            except Exception as exc:  # the message must not fail to be built
                tail = f"(log tail unavailable: {exc})"
            quoted.append("tail of the incarnation log:" if tail else "tail of the incarnation log: (empty)")
            if tail:
                quoted.extend(f"  | {line}" for line in tail.splitlines())
        return MarkerTimeout("\n".join(parts), log_tail="\n".join(quoted))


def _check_tag(tag: str) -> str:
    if not tag or "/" in tag or "\0" in tag or tag in (".", "..") or tag.startswith("."):
        raise ValueError(f"invalid marker tag {tag!r}: must be a plain file name")
    return tag


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class MarkerWatch:
    """Makes sure each complete line of one tag's marker file is read soon after it is written,
    so ``Markers.first_seen`` knows when it appeared: it reads the file every ``interval_s`` (a
    sampling period, not a synchronisation) from ``start()`` until ``stop()``.  A line another
    reader (a wait) saw first keeps that earlier time."""

    def __init__(self, markers: Markers, tag: str, interval_s: float = 0.01) -> None:
        self.markers = markers
        self.tag = tag
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"marker-watch-{tag}")

    def start(self) -> "MarkerWatch":
        self._thread.start()
        return self

    def stop(self) -> list[float]:
        """Stop watching (bounded join), read once more, return ``first_seen`` of the tag."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._look()
        return self.markers.first_seen(self.tag)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._look()

    def _look(self) -> None:
        try:
            self.markers.lines(self.tag)
        except OSError:
            pass
