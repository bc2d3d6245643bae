"""A server that listens only after <delay_s> seconds measured by itself (default 0.3)."""

import sys
import threading
import time

from _common import make_server

port = int(sys.argv[1])
delay = float(sys.argv[2]) if len(sys.argv) > 2 else 0.3
begin = time.monotonic()
tick = threading.Event()
while time.monotonic() - begin < delay:  # the delay under test, not a synchronisation
    tick.wait(delay - (time.monotonic() - begin))
server = make_server(port)
print(f"bound after {time.monotonic() - begin:.3f}s", flush=True)
server.serve_forever()
