"""A server that leaves children behind: one in its group, one that escaped with setsid, and a
double-forked grandchild in its own session.  All of them ignore SIGTERM/SIGINT/SIGHUP and hold
the listening socket.  Their pids go to <pidfile>; the server becomes ready once all are there.
With a third argument "exit" it never listens and exits with code 3 once the children are
there (a failed start that leaves children behind; a socket they held but nobody served would
make each readiness probe wait for its own timeout)."""

import os
import signal
import sys
import threading

from _common import make_server

port, pidfile = int(sys.argv[1]), sys.argv[2]
exit_early = sys.argv[3:] == ["exit"]
server = None if exit_early else make_server(port)  # bound before forking: the children inherit the socket


def linger():
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    with open(pidfile, "a") as fh:
        fh.write(f"{os.getpid()}\n")
    while True:
        signal.pause()


if os.fork() == 0:  # child in our process group
    linger()
if os.fork() == 0:  # child that leaves the group
    os.setsid()
    linger()
middle = os.fork()
if middle == 0:  # double fork: the grandchild is re-parented away from us
    os.setsid()
    if os.fork() == 0:
        linger()
    os._exit(0)
os.waitpid(middle, 0)

tick = threading.Event()
for _ in range(1000):  # bounded: 5 s
    try:
        with open(pidfile) as fh:
            if len(fh.read().split()) >= 3:
                break
    except FileNotFoundError:
        pass
    tick.wait(0.005)
if exit_early:
    print("children started; exiting with 3", flush=True)
    sys.exit(3)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
print("children started")
server.serve_forever()
