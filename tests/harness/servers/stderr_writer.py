"""A server that writes one line to stderr (and one to stdout) before it listens."""

import sys

from _common import make_server

port = int(sys.argv[1])
print("to stdout: starting", flush=True)
sys.stderr.write(f"to stderr: warning from the server on {port}\n")
sys.stderr.flush()
make_server(port).serve_forever()
