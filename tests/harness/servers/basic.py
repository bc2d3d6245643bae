"""A well-behaved server: ready at once, SIGTERM -> exit with --term-code (default 0)."""

import argparse
import os
import signal
import sys

from _common import make_server, record_boot

parser = argparse.ArgumentParser()
parser.add_argument("port", type=int)
parser.add_argument("--state-dir")
parser.add_argument("--term-code", type=int, default=0)
args = parser.parse_args()


def on_term(signum, frame):
    print(f"got SIGTERM, exiting with {args.term_code}")
    sys.exit(args.term_code)


signal.signal(signal.SIGTERM, on_term)
if os.environ.get("HARNESS_TEST_GREETING"):
    print("greeting:", os.environ["HARNESS_TEST_GREETING"])
record_boot(args.state_dir)
server = make_server(args.port, state_dir=args.state_dir)
print(f"basic server listening on {args.port}")
server.serve_forever()
