"""A server with one child that stays in its process group.

The child writes "child <pid> got SIGTERM" to <statefile> when SIGTERM reaches it, then exits.
On SIGTERM the leader waits (bounded) for the child to exit, then exits 0, so a graceful end
leaves no straggler.  The child's pid goes to <pidfile>; the server is ready once it is there."""

import os
import signal
import sys
import threading

from _common import make_server

port, pidfile, statefile = int(sys.argv[1]), sys.argv[2], sys.argv[3]
server = make_server(port)
tick = threading.Event()

child = os.fork()
if child == 0:  # same process group (no setsid)
    server.socket.close()

    def child_on_term(signum, frame):
        with open(statefile, "a") as fh:
            fh.write(f"child {os.getpid()} got SIGTERM\n")
        os._exit(0)

    signal.signal(signal.SIGTERM, child_on_term)
    with open(pidfile + ".tmp", "w") as fh:
        fh.write(f"{os.getpid()}\n")
    os.rename(pidfile + ".tmp", pidfile)  # atomic: the parent never reads half a pid
    while True:
        signal.pause()


def on_term(signum, frame):
    for _ in range(600):  # bounded: 3 s for the child to act on its own SIGTERM
        if os.waitpid(child, os.WNOHANG)[0]:
            break
        tick.wait(0.005)
    print("leader got SIGTERM, child gone", flush=True)
    os._exit(0)


for _ in range(1000):  # bounded: 5 s
    if os.path.exists(pidfile):
        break
    tick.wait(0.005)
signal.signal(signal.SIGTERM, on_term)
print(f"leader {os.getpid()} with child {child}", flush=True)
server.serve_forever()
