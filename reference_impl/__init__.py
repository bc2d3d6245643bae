"""Bundled reference server of the stream-and-task conformance kit (responses profile).

Run it with ``python -m reference_impl --port P --state-dir D``; see docs/protocol.md.
This package imports nothing from the kit (``conformance``, ``harness``).
"""

__version__ = "0.1.0"
