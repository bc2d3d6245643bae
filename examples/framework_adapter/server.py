"""The example server: the framework app with the conformance adapter as its handler.

    python server.py --port 8000 --state-dir ./state [--shutdown-grace 0.5]

A real deployment registers its model-calling handler instead of ``conformance_handler``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from adapter import check_input, conformance_handler  # noqa: E402
from framework import App  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--shutdown-grace", type=float, default=0.5,
                        help="seconds open requests may go on after SIGTERM before they are cancelled")
    args = parser.parse_args()
    app = App(conformance_handler, args.state_dir, check_input=check_input)
    uvicorn.run(app.starlette, host="127.0.0.1", port=args.port, log_level="warning",
                timeout_graceful_shutdown=args.shutdown_grace)


if __name__ == "__main__":
    main()
