"""pytest plugin: the ``target_factory`` fixture, log tails on failure, orphan check at session end.

Enable with ``pytest_plugins = ["harness.pytest_fixtures"]`` in a top-level conftest, or
``-p harness.pytest_fixtures``.

- ``target_factory(spec, *, port=None, start=False) -> Target``: a Target with its own work
  dir under the test's ``tmp_path``; every Target made is closed at teardown, whatever the
  outcome (failure, error, KeyboardInterrupt), and one that fails to close does not keep the
  others open: the first close error is raised after all were tried.
- A failed test that made targets gets one report section per incarnation log: its path,
  exit mode and last 40 lines.
- At session end every process the harness ever started must be gone.  Survivors are killed,
  listed on one clear line, and the run fails (exit status 1), also under pytest-xdist.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from . import orphans
from .process import Target, TargetSpec

TAIL_LINES = 40

_targets_key = pytest.StashKey[list[Target]]()
_reported_key = pytest.StashKey[bool]()
_worker_orphans_key = pytest.StashKey[list[str]]()

TargetFactory = Callable[..., Target]


@pytest.fixture
def target_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TargetFactory]:
    """Make Targets with isolated work dirs (``tmp_path/target-<k>``); all closed at teardown."""
    targets: list[Target] = []
    request.node.stash[_targets_key] = targets

    def factory(spec: TargetSpec, *, port: int | None = None, start: bool = False) -> Target:
        target = Target(spec, tmp_path / f"target-{len(targets)}", port=port)
        targets.append(target)
        if start:
            target.start()
        return target

    try:
        yield factory
    finally:
        _close_all(targets)


def _close_all(targets: list[Target]) -> None:
    """Close every target even if some fail to close; then raise the first error (the others
    are attached to it as notes)."""
    errors: list[tuple[int, Exception]] = []
    for k, target in enumerate(targets):
        try:
            target.close()
        except Exception as exc:
            errors.append((k, exc))
    if errors:
        first = errors[0][1]
        for k, exc in errors[1:]:
            first.add_note(f"closing target-{k} failed too: {type(exc).__name__}: {exc}")
        raise first


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if not report.failed or item.stash.get(_reported_key, False):
        return
    targets = item.stash.get(_targets_key, None)
    if not targets:
        return
    item.stash[_reported_key] = True
    for k, target in enumerate(targets):
        for record in target.lifecycle():
            name = Path(record["log_path"]).name
            title = name if len(targets) == 1 else f"target-{k} {name}"
            report.sections.append((title, _section_text(target, record)))


def _section_text(target: Target, record: dict[str, Any]) -> str:
    mode = record["exit_mode"] or "alive"
    head = (
        f"log: {record['log_path']}\n"
        f"pid {record['pid']}, port {target.port}, exit_mode {mode}, exit_code {record['exit_code']}, "
        f"stragglers_killed {record['stragglers_killed']}\n"
        f"--- last {TAIL_LINES} lines ---\n"
    )
    tail = target.log_tail(TAIL_LINES, record["index"])
    return head + (tail if tail else "(log is empty)") + "\n"


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: collect the orphan lines a worker reported (its exit status is not passed on)."""
    lines = (getattr(node, "workeroutput", None) or {}).get("harness_orphans") or []
    if lines:
        node.config.stash.setdefault(_worker_orphans_key, []).extend(lines)


@pytest.hookimpl(trylast=True)  # after fixture teardown at session end (interrupted runs)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    lines: list[str] = []
    found = orphans.find_orphans()
    if found:
        text = orphans.describe(found)
        orphans.reap_orphans()
        lines.append(f"harness: {len(found)} orphan process(es) were still alive at session end and were killed: {text}")
    if hasattr(config, "workerinput"):
        if lines:
            config.workeroutput["harness_orphans"] = lines  # type: ignore[attr-defined]
    else:
        lines.extend(config.stash.get(_worker_orphans_key, []))
    if not lines:
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    for line in lines:
        if reporter is not None:
            reporter.write_line(line, red=True, bold=True)
        else:
            print(line, file=sys.stderr)
    if session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
