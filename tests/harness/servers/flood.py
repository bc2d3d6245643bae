"""A server that writes <mb> MB to stdout before it listens (a pipe would block; a file must not)."""

import sys

from _common import make_server

port, mb = int(sys.argv[1]), int(sys.argv[2])
line = "x" * 1023 + "\n"
chunk = line * 1024  # 1 MiB
for i in range(mb):
    sys.stdout.write(chunk)
sys.stdout.write("flood done\n")
sys.stdout.flush()
make_server(port).serve_forever()
