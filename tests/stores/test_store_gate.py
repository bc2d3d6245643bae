"""The provider gate, end to end: ``pytest conformance --conformance-store NAME`` run as a user would.

The deliberately broken providers (``plugins/broken_store_providers.py``, registered through a
real ``entry_points.txt`` on PYTHONPATH) must be caught by the provider contract; the bundled
providers must pass it; a provider that cannot be loaded is one clear line before any test runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = Path(__file__).resolve().parent / "plugins"


def run_gate(store: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(PLUGINS), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    env.pop("PYTEST_XDIST_WORKER", None)
    cmd = [
        sys.executable, "-m", "pytest", "conformance", "-k", "test_store_contract", "--conformance-store", store,
        "-q", "-p", "no:benchmark", "-p", "no:cacheprovider", "-p", "no:xdist",
        "--conformance-results", str(tmp_path / "results"), *extra,
    ]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_ack_before_fsync_is_caught(tmp_path: Path) -> None:
    proc = run_gate("ackbeforefsync", tmp_path)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "FAILED conformance/suites/test_store_contract.py::test_sigkill_mid_write_leaves_old_or_new_state" in proc.stdout
    assert "acknowledged events were lost" in proc.stdout
    assert "1 failed, 7 passed" in proc.stdout, proc.stdout[-2000:]


def test_last_write_wins_cas_is_caught(tmp_path: Path) -> None:
    proc = run_gate("lastwritewins", tmp_path)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "FAILED conformance/suites/test_store_contract.py::test_cas_create_if_absent_and_conflicts" in proc.stdout
    assert "FAILED conformance/suites/test_store_contract.py::test_cas_is_atomic_under_concurrent_writers" in proc.stdout
    assert "2 failed, 6 passed" in proc.stdout, proc.stdout[-2000:]


@pytest.mark.parametrize("store", ["file", "sqlite", "sqlite:path=db/elsewhere.db"])
def test_bundled_durable_providers_pass(tmp_path: Path, store: str) -> None:
    proc = run_gate(store, tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "8 passed" in proc.stdout


def test_memory_reports_durability_as_not_claimed(tmp_path: Path) -> None:
    proc = run_gate("memory", tmp_path, "-rs")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "6 passed, 2 skipped" in proc.stdout
    assert "SKIPPED [2]" in proc.stdout and "not claimed: durable_store (withdrawn by store memory" in proc.stdout


@pytest.mark.parametrize(
    ("store", "message"),
    [
        ("nope", "unknown store provider 'nope'"),
        ("brokenimport", "store provider 'brokenimport' failed to import: ModuleNotFoundError"),
        ("notaprovider", "is not a StoreProvider subclass"),
        ("file:colour=blue", "store file: unknown option(s) colour (known: none)"),
        ("sqlite:path", "option 'path' is not key=value"),
    ],
)
def test_unusable_store_is_one_line_before_any_test(tmp_path: Path, store: str, message: str) -> None:
    proc = run_gate(store, tmp_path)
    assert proc.returncode == 4, proc.stdout + proc.stderr  # pytest usage error: nothing ran
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"ERROR: --conformance-store {store}: "), proc.stderr
    assert message in lines[0]
    assert "Traceback" not in proc.stdout + proc.stderr


SUITE = '''
def test_restarts(spawn_target, conformance_target):
    t = spawn_target(server={})
    t.kill()
    t.start()
    assert conformance_target.store != "memory", "a second lifetime ran on a store that does not survive it"
'''


@pytest.mark.parametrize(("store", "outcome"), [("memory", "1 skipped"), ("sqlite", "1 passed")])
def test_a_suite_restart_is_not_claimed_on_a_non_durable_store(tmp_path: Path, store: str, outcome: str) -> None:
    (tmp_path / "test_suite_restart.py").write_text(SUITE)
    cmd = [
        sys.executable, "-m", "pytest", str(tmp_path / "test_suite_restart.py"), "--conformance-store", store, "-rs", "-q",
        "-p", "no:benchmark", "-p", "no:cacheprovider", "-p", "no:xdist", "--rootdir", str(tmp_path),
        "--conformance-contracts", str(ROOT / "contracts" / "**" / "*.yaml"), "--conformance-results", str(tmp_path / "results"),
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert outcome in proc.stdout, proc.stdout[-3000:] + proc.stderr[-2000:]
    if store == "memory":
        assert "not claimed by target reference: durable_store (withdrawn by store memory)" in proc.stdout
