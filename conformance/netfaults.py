"""Moved to ``conformance/nemesis/network.py`` (the nemesis delivers every fault); kept so that
``from conformance.netfaults import NetFaults`` still works."""

from .nemesis.network import RECONNECT_ATTEMPTS, SLOW_RCVBUF, NetFaults

__all__ = ["RECONNECT_ATTEMPTS", "SLOW_RCVBUF", "NetFaults"]
