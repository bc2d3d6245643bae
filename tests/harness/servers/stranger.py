"""Not a server: it starts a *stranger* on the port (double fork, new session, empty environment,
so the harness cannot link it to the target) and then idles without listening itself.
The stranger's pid goes to <pidfile> so that the test can stop it."""

import os
import signal
import sys

port, pidfile = sys.argv[1], sys.argv[2]
here = os.path.dirname(os.path.abspath(__file__))
middle = os.fork()
if middle == 0:
    os.setsid()
    if os.fork() == 0:
        with open(pidfile, "w") as fh:
            fh.write(f"{os.getpid()}\n")
        os.chdir(here)
        os.execve(sys.executable, [sys.executable, os.path.join(here, "basic.py"), port], {})
    os._exit(0)
os.waitpid(middle, 0)
print("stranger started; idling")
while True:
    signal.pause()
