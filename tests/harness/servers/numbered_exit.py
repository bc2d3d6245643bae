"""Prints 100 numbered lines ("output line 1" .. "output line 100"), then exits with code 4."""

import sys

for i in range(1, 101):
    print(f"output line {i}")
sys.stdout.flush()
sys.exit(4)
