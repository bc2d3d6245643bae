"""A server that dies the way uvicorn does when its port is taken."""

import sys

print("ERROR:    [Errno 98] error while attempting to bind on address: address already in use")
sys.exit(1)
