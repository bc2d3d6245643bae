"""Fixtures of the exploration tests: ``spawn_factory(config)`` gives a ``spawn(server)`` that
starts harness Targets in this test's tmp dir and closes them all at teardown (the tiny target's
config comes from ``explore_helpers.tiny_config``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance.targets import TargetConfig
from harness.process import Target


@pytest.fixture
def spawn_factory(tmp_path: Path) -> Iterator[Callable[[TargetConfig], Callable[[dict[str, Any]], Target]]]:
    """``spawn_factory(config)`` -> ``spawn(server) -> started Target``; all closed at teardown."""
    targets: list[Target] = []

    def factory(config: TargetConfig) -> Callable[[dict[str, Any]], Target]:
        def spawn(server: dict[str, Any]) -> Target:
            target = Target(config.spec_for(server), tmp_path / f"target-{len(targets)}")
            targets.append(target)
            target.start()
            return target

        return spawn

    yield factory
    for target in targets:
        target.close()

