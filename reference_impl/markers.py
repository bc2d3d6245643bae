"""Marker lines of the test-control handler: ``<marker_dir>/<tag>.log``, fsync'd appends."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

RELEASE_POLL_S = 0.005


class MarkerWriter:
    """Appends marker lines for one tag; a no-op when there is no marker dir or no tag."""

    def __init__(self, marker_dir: str | None, tag: str | None) -> None:
        self.enabled = bool(marker_dir and tag)
        self._dir = Path(marker_dir) if marker_dir else None
        self._tag = tag
        self.log_path = self._dir / f"{tag}.log" if self.enabled else None
        self.release_path = self._dir / f"{tag}.release" if self.enabled else None

    def write(self, line: str) -> None:
        if not self.enabled:
            return
        assert self._dir is not None and self.log_path is not None
        self._dir.mkdir(parents=True, exist_ok=True)
        created = not self.log_path.exists()
        fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            data = (line + "\n").encode()
            while data:
                n = os.write(fd, data)
                data = data[n:]
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            dfd = os.open(self._dir, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def released(self) -> bool:
        return self.release_path is not None and self.release_path.exists()

    async def wait_release(self) -> None:
        """Block until the release file exists; cancellation (cancel/shutdown) interrupts it."""
        if self.release_path is None:
            # No marker dir or no tag: only cancellation or shutdown can end the hold.
            await asyncio.Event().wait()
            return
        while not self.release_path.exists():
            await asyncio.sleep(RELEASE_POLL_S)
