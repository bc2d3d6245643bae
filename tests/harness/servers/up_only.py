"""A server whose readiness lives at /up (200); /readiness is a 404 like any unknown path."""

import sys

from _common import make_server

make_server(int(sys.argv[1]), readiness_path="/up").serve_forever()
