"""A server that answers readiness with 204 No Content."""

import sys

from _common import make_server

make_server(int(sys.argv[1]), readiness_status=204).serve_forever()
