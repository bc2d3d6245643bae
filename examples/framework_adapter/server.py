"""The example server: the framework app with the conformance adapter as its handler.

    python server.py --port 8000 --state-dir ./state [--shutdown-grace 0.5]

A real deployment registers its model-calling handler instead of ``conformance_handler``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import FrameType
from typing import Callable

import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from adapter import check_input, conformance_handler  # noqa: E402
from framework import App  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--shutdown-grace", type=float, default=0.5,
                        help="seconds running responses may go on after SIGTERM before they end failed")
    args = parser.parse_args()
    app = App(conformance_handler, args.state_dir, check_input=check_input)
    config = uvicorn.Config(app.starlette, host="127.0.0.1", port=args.port, log_level="warning")
    Server(config, lambda: app.begin_shutdown(args.shutdown_grace)).run()


class Server(uvicorn.Server):
    """uvicorn runs the lifespan shutdown only once connections drained: start our grace at SIGTERM."""

    def __init__(self, config: uvicorn.Config, on_exit: Callable[[], None]) -> None:
        super().__init__(config)
        self.on_exit = on_exit

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self.should_exit:
            self.on_exit()
        super().handle_exit(sig, frame)


if __name__ == "__main__":
    main()
