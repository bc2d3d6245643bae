"""Fixtures of the reference server's own tests.

Wire tests share one server per xdist worker (``server``); every test uses its own tags, so
they stay independent. Crash tests make their own server with ``make_server`` (harness
``Target``: own port, state dir and marker dir). Every wait is bounded; nothing sleeps to
synchronise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from ri_wire import Api, spec

from harness.markers import Markers
from harness.process import Target


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """One shared resilient server for wire tests (per xdist worker)."""
    target = Target(spec("--resilient-background", "--shutdown-grace", "0.5"), tmp_path_factory.mktemp("shared"))
    try:
        target.start()
        yield target
    finally:
        target.close()


@pytest.fixture
def api(server: Target) -> Iterator[Api]:
    client = Api(server.base_url)
    yield client
    client.close()


@pytest.fixture
def markers(server: Target) -> Markers:
    return Markers(server.marker_dir, log_tail=lambda: server.log_tail())


@pytest.fixture
def make_server(target_factory: Callable[..., Target]) -> Callable[..., Target]:
    """Own servers for crash tests: ``make_server(*extra_args, env=...)`` -> started Target.

    Built on the harness's ``target_factory``: closed at teardown, logs attached on failure.
    """

    def make(*extra: str, env: dict[str, str] | None = None) -> Target:
        return target_factory(spec(*extra, env=env), start=True)

    return make
