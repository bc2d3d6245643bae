"""A server that ignores SIGTERM: only SIGKILL ends it."""

import signal
import sys

from _common import make_server

signal.signal(signal.SIGTERM, signal.SIG_IGN)
server = make_server(int(sys.argv[1]))
print("ignoring SIGTERM")
server.serve_forever()
