"""uvicorn, run programmatically so the app hears SIGTERM at once (docs/protocol.md §4.2)."""

from __future__ import annotations

import logging
import signal
from types import FrameType

import uvicorn

from .app import build_app
from .config import ServerConfig
from .faults import apply_faults
from .runtime import Runtime
from .stores import open_store

log = logging.getLogger("reference_impl")


class ReferenceServer(uvicorn.Server):
    """uvicorn.Server whose signal handler also starts the app's own wind-down immediately.

    uvicorn 0.54 runs the lifespan shutdown only after open connections drained, which is too
    late for an app with SSE clients attached. The signal is also not recorded for re-raising
    after ``serve()`` returns, so a graceful stop ends with exit code 0.
    """

    def __init__(self, config: uvicorn.Config, runtime: Runtime) -> None:
        super().__init__(config)
        self.runtime = runtime

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        else:
            self.should_exit = True
        self.runtime.signal_shutdown()


def serve(config: ServerConfig) -> int:
    store = apply_faults(open_store(config.store, config.state_dir))
    runtime = Runtime(config, store)
    app = build_app(runtime)
    uv_config = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        http="h11",
        loop="asyncio",
        lifespan="on",
        log_level="warning",
        access_log=False,
        # Backstop only: the runtime itself ends every run within the grace.
        timeout_graceful_shutdown=config.shutdown_grace + 1.5,
        timeout_keep_alive=5,
    )
    server = ReferenceServer(uv_config, runtime)
    log.info(
        "starting on http://%s:%d state_dir=%s store=%s resilient_background=%s resilient_invocations=%s "
        "event_retention=%d grace=%.3gs worker=%s lease_ttl=%s",
        config.host,
        config.port,
        config.state_dir,
        config.store,
        config.resilient_background,
        config.resilient_invocations,
        config.event_retention,
        config.shutdown_grace,
        config.worker_id,
        config.lease_ttl,
    )
    server.run()
    if not server.started:
        return 1
    log.info("stopped")
    return 0
