"""Median spawn-to-ready time of a target through the harness (``Target.start``).

    python bench/startup.py                      # bare stdlib HTTP server (python -c)
    python bench/startup.py -n 20                # more samples
    python bench/startup.py --command "{python} -m reference_impl --port {port} --state-dir {state_dir}"
    python bench/startup.py --reference          # also the bundled reference server, if present

Spawn-to-ready = ``ready_at - started_at`` of the incarnation: from just before ``Popen`` to the
first 2xx on the readiness path.  Each sample is a fresh Target (new port, new state dir),
terminated gracefully afterwards.  Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.process import Target, TargetSpec  # noqa: E402

BARE = (
    "{python} -c \"import http.server as h, sys\n"
    "class H(h.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        self.send_response(200); self.send_header('Content-Length', '0'); self.end_headers()\n"
    "    def log_message(self, *a): pass\n"
    "h.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()\" {port}"
)
REFERENCE = "{python} -m reference_impl --port {port} --state-dir {state_dir}"


def measure(command: str, n: int, readiness_path: str, timeout_s: float) -> list[float]:
    spec = TargetSpec(command=command, readiness_path=readiness_path, readiness_timeout_s=timeout_s,
                      cwd=str(ROOT))
    samples = []
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        for i in range(n):
            with Target(spec, Path(tmp) / f"t{i}") as target:
                inc = target.start()
                assert inc.ready_at is not None
                samples.append(inc.ready_at - inc.started_at)
                target.terminate()
    return samples


def report(name: str, samples: list[float]) -> float:
    med = statistics.median(samples)
    print(
        f"{name}: median spawn-to-ready {med * 1000:.1f} ms over {len(samples)} starts "
        f"(min {min(samples) * 1000:.1f}, max {max(samples) * 1000:.1f})"
    )
    return med


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=10, help="starts per command (default 10)")
    parser.add_argument("--command", action="append", default=[],
                        help="another command template to measure (repeatable)")
    parser.add_argument("--reference", action="store_true",
                        help="also measure the bundled reference server (reference_impl/__main__.py)")
    parser.add_argument("--readiness-path", default="/readiness")
    parser.add_argument("--timeout", type=float, default=20.0, help="readiness timeout per start (s)")
    args = parser.parse_args(argv)

    commands = [("bare stdlib http.server", BARE)]
    commands += [(cmd, cmd) for cmd in args.command]
    if args.reference:
        if (ROOT / "reference_impl" / "__main__.py").exists():
            commands.append(("reference_impl", REFERENCE))
        else:
            print("reference_impl/__main__.py not found: skipping the reference server")
    begin = time.monotonic()
    for name, command in commands:
        report(name, measure(command, args.n, args.readiness_path, args.timeout))
    print(f"total {time.monotonic() - begin:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
