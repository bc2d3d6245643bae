"""A server that answers readiness with 503 forever."""

import sys

from _common import make_server

server = make_server(int(sys.argv[1]), readiness_status=503)
print("still warming up, come back later")
server.serve_forever()
