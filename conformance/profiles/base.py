"""The ``Profile`` record: what the kit knows of one wire profile."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Profile:
    """One wire profile: its vocabulary, driver, runnable faults and keys, and its run class."""

    name: str
    statuses: frozenset[str]  # every status its answers may carry
    terminal_statuses: frozenset[str]
    terminal_events: frozenset[str]  # SSE event types that end a run
    delta_event: str  # the event a black-box ``first_delta`` trigger waits for
    completed_event: str  # the terminal event of a run that completed
    cursor: str  # how a read resumes: the request parameter or header and the frame field it names
    calls: tuple[str, ...]  # the call names its run records
    faults: frozenset[str]  # fault kinds its run delivers
    always_background: bool  # every run is a background run (no foreground create to disconnect)
    driver: str  # "module:Class" of its driver
    run: str  # "module:Class" of its cell run

    @property
    def keys(self) -> frozenset[str]:
        """The expectation keys that apply to it: the registry's (``conformance.expectations``), plugins' included."""
        from ..expectations import registry

        return frozenset(registry().for_profile(self.name))

    def driver_class(self) -> Any:
        """Its driver class (imported on first use)."""
        return _load(self.driver)

    def run_class(self) -> Any:
        """The class that runs one of its cells: ``run_class()(cell, config, work_dir).execute()``."""
        return _load(self.run)


def _load(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)
