"""A server that fails at start with exit code 3."""

import sys

print("fatal: configuration file is broken")
sys.exit(3)
