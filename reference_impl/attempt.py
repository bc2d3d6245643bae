"""One attempt of the test-control handler in this process, for both profiles.

A response's :class:`~reference_impl.runtime.Run` and an invocation's
:class:`~reference_impl.sessions.Invocation` run the script the same way and differ only in what
their terminals are. This base runs the script as an asyncio task and maps how it ended:

- the script returned without a terminal: ``fail(server_error)``;
- it raised :class:`~reference_impl.script.HandlerFailure`: ``fail(code, message)``;
- it was cancelled (``stop()``): ``_stopped()``, the profile's disposition for the stop reason;
- a write was refused because this worker lost the task's lease: nothing more is written;
- anything else: logged, ``fail(server_error)``.

Whatever happens, ``close()`` runs last (live readers end).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from . import script as script_mod
from .feed import LiveFeed
from .leases import LeaseLost

log = logging.getLogger("reference_impl")


class HandlerAttempt:
    """The shared lifecycle; subclasses provide the hooks below."""

    id: str
    feed: LiveFeed
    handle: asyncio.Task[None] | None = None
    stop_reason: str | None = None

    # -- hooks ---------------------------------------------------------------------------------
    def _script(self) -> tuple[dict[str, Any] | None, str | None]:
        """The raw script and the marker dir."""
        raise NotImplementedError

    @property
    def ended(self) -> bool:
        """A terminal was recorded for this attempt."""
        raise NotImplementedError

    def fail(self, code: str, message: str) -> None:
        raise NotImplementedError

    def _stopped(self) -> None:
        """The profile's disposition after ``stop()`` (per ``stop_reason``)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # -- the lifecycle -------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        """No more events from this attempt in this process."""
        return self.feed.closed

    def launch(self, name: str) -> None:
        self.handle = asyncio.create_task(self._drive(), name=name)
        self.handle.add_done_callback(self._handle_done)

    async def _drive(self) -> None:
        try:
            raw, marker_dir = self._script()
            await script_mod.run_script(self, raw, marker_dir)
            if not self.ended:
                self.fail("server_error", "The handler ended without a terminal event.")
        except asyncio.CancelledError:
            self._stopped()
        except LeaseLost as exc:
            self.stop_reason = "lease_lost"
            log.warning("%s: stopped, %s", self.id, exc)
        except script_mod.HandlerFailure as exc:
            self._guarded(self.fail, exc.code, exc.message)
        except Exception:
            log.exception("handler of %s crashed", self.id)
            self._guarded(self.fail, "server_error", "The handler raised an unexpected error.")
        finally:
            self.close()

    def _guarded(self, fn: Any, *args: Any, **kw: Any) -> None:
        """Record an end; a failure to do so is logged, never raised out of the handler task."""
        try:
            fn(*args, **kw)
        except LeaseLost as exc:
            self.stop_reason = "lease_lost"
            log.warning("%s: end not recorded here, %s", self.id, exc)
        except Exception:
            log.exception("could not record the end of %s", self.id)

    def _handle_done(self, task: asyncio.Task[None]) -> None:
        # A task cancelled before its first step never entered _drive's try block.
        if not self.closed:
            self._stopped()
            self.close()
