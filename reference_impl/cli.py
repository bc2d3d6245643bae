"""``python -m reference_impl --port P --state-dir D [options]``."""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from typing import Any, Callable, NoReturn

from .config import ServerConfig
from .stores import StoreConfigError, check_spec

PROG = "reference_impl"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{PROG}: error: {message}\n")
        raise SystemExit(2)


def _number(what: str, kind: type, low: float, high: float = math.inf) -> Callable[[str], Any]:
    """An argparse type: ``kind`` (int or float, finite) within ``[low, high]``, one clear line if not."""
    unit = "an integer" if kind is int else "a number of seconds"

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {what} {text!r} ({unit})") from None
        if not (math.isfinite(value) and low <= value <= high):
            bounds = f">= {low:g}" if high == math.inf else f"between {low:g} and {high:g}"
            raise argparse.ArgumentTypeError(f"{what} must be {bounds}, got {text!r}")
        return value

    return parse


_port = _number("port", int, 1, 65535)
_grace = _number("grace", float, 0)
_retention = _number("retention", int, 0)
_lease_ttl = _number("lease ttl", float, 0.1, 3600)


def _store(text: str) -> str:
    try:
        check_spec(text)  # unknown name, failing import, bad option: one line, exit 2
    except StoreConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _plain_script(text: str) -> dict[str, Any]:
    """``--plain-script JSON``: the script a request without one runs (a plain prompt)."""
    import json

    from .script import HandlerFailure, parse_script

    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"plain script is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise argparse.ArgumentTypeError(f"plain script must be a JSON object, got {text!r}")
    try:
        parse_script(raw)
    except HandlerFailure as exc:
        raise argparse.ArgumentTypeError(f"plain script: {exc.message}") from None
    if raw.get("hold_at") is not None or raw.get("tag") is not None:
        raise argparse.ArgumentTypeError("plain script: hold_at and tag need the test-control contract, not a plain prompt")
    return raw


def _worker_id(text: str) -> str:
    if not 1 <= len(text) <= 64 or not all(c.isalnum() or c in "-_." for c in text):
        raise argparse.ArgumentTypeError(f"worker id must be 1-64 characters of [A-Za-z0-9._-], got {text!r}")
    return text


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Reference server of the stream-and-task conformance kit (responses profile).")
    p.add_argument("--port", type=_port, required=True)
    p.add_argument("--state-dir", required=True, help="directory for the file store (created if missing)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--store", default="file", type=_store, metavar="NAME[:OPTIONS]", help="store provider (file, sqlite, memory, postgres, or an installed entry point)")
    p.add_argument("--resilient-background", action="store_true", help="re-run store+background responses after a crash")
    p.add_argument("--shutdown-grace", type=_grace, default=2.0, help="seconds handlers may run on after SIGTERM")
    p.add_argument("--marker-dir", default=None, help="marker directory (default: $CONFORMANCE_MARKER_DIR)")
    p.add_argument("--resilient-invocations", action="store_true", help="recover invocations from their last checkpoint after a crash")
    p.add_argument("--worker-id", type=_worker_id, default=None, help="this worker's name in leases (default: worker-<pid>)")
    p.add_argument("--lease-ttl", type=_lease_ttl, default=None, metavar="SECONDS", help="lease task records so several workers can share one store")
    p.add_argument("--plain-script", type=_plain_script, default=None, metavar="JSON",
                   help='what a request without a script runs, e.g. \'{"deltas": 40, "delay_ms": 25}\' (default {"deltas": 3}); for black-box runs')
    p.add_argument("--event-retention", type=_retention, default=0, metavar="N", help="replayable events per invocation (0: all)")
    return p


def parse_config(argv: list[str] | None = None) -> ServerConfig:
    parser = build_parser()
    args = parser.parse_args(argv)
    marker_dir = args.marker_dir or os.environ.get("CONFORMANCE_MARKER_DIR") or None
    for name, path in (("--state-dir", args.state_dir), ("--marker-dir", marker_dir)):
        if path is None:
            continue
        if os.path.exists(path) and not os.path.isdir(path):
            parser.error(f"{name} {path!r} exists and is not a directory")
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            parser.error(f"cannot create {name} {path!r}: {exc.strerror}")
    return ServerConfig(
        port=args.port,
        state_dir=args.state_dir,
        host=args.host,
        store=args.store,
        resilient_background=args.resilient_background,
        shutdown_grace=args.shutdown_grace,
        marker_dir=marker_dir,
        resilient_invocations=args.resilient_invocations,
        event_retention=args.event_retention,
        worker_id=args.worker_id or f"worker-{os.getpid()}",
        lease_ttl=args.lease_ttl,
        plain_script=args.plain_script,
    )


def main(argv: list[str] | None = None) -> int:
    config = parse_config(argv)
    if config.plain_script is not None:
        from . import script as script_mod

        script_mod.DEFAULT_SCRIPT = config.plain_script  # read at call time by parse_script
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    from .server import serve  # imported late: CLI errors stay fast

    try:
        return serve(config)
    except StoreConfigError as exc:  # e.g. the database named in the options is unreachable
        sys.stderr.write(f"{PROG}: error: --store {config.store}: {exc}\n")
        return 2
