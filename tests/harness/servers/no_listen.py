"""Not a server: it stays alive but never listens, so every readiness probe is refused."""

import signal

print("alive but not listening", flush=True)
while True:
    signal.pause()
