"""The multi-worker suite, end to end, as a user runs it: ``pytest conformance --conformance-store sqlite``.

The reference server with one lease promise broken (``$REFERENCE_IMPL_FAULT_LEASE``, test-only,
see reference_impl/faults.py) must be caught by the fault that exposes it; the correct server
passes every fault; a store that is not shared reports the suite as not claimed, never passed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "conformance" / "targets" / "reference.yaml"


def run_suite(tmp_path: Path, select: str, *extra: str, fault: str | None = None) -> subprocess.CompletedProcess[str]:
    target = yaml.safe_load(REFERENCE.read_text())
    if fault:
        target["name"] = f"reference-{fault}"
        target["env"] = {"REFERENCE_IMPL_FAULT_LEASE": fault}
    target_file = tmp_path / "target.yaml"
    target_file.write_text(yaml.safe_dump(target))
    env = dict(os.environ)
    env.pop("PYTEST_XDIST_WORKER", None)
    cmd = [
        sys.executable, "-m", "pytest", "conformance", "-k", select, "--conformance-target", str(target_file),
        "-q", "-p", "no:benchmark", "-p", "no:cacheprovider", "-p", "no:xdist", "-rs",
        "--conformance-results", str(tmp_path / "results"), *extra,
    ]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    ("fault", "select", "finding"),
    [
        ("steal", "test_multi_worker and none", "re-ran the response while its owner was alive"),
        ("no_reclaim", "test_multi_worker and sigkill", "after fault 'sigkill' the response must end 'completed'"),
        ("no_tail", "test_multi_worker and sigkill", "the replay attached on the other worker did not reach the terminal event"),
    ],
)
def test_broken_lease_promise_is_caught(tmp_path: Path, fault: str, select: str, finding: str) -> None:
    proc = run_suite(tmp_path, select, "--conformance-store", "sqlite", fault=fault)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "1 failed" in proc.stdout and finding in proc.stdout, proc.stdout[-3000:]


def test_correct_workers_pass_every_fault(tmp_path: Path) -> None:
    proc = run_suite(tmp_path, "test_multi_worker", "--conformance-store", "sqlite")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "5 passed" in proc.stdout, proc.stdout[-2000:]


def test_unshared_store_is_not_claimed(tmp_path: Path) -> None:
    proc = run_suite(tmp_path, "test_multi_worker", "--conformance-store", "file")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "5 skipped" in proc.stdout and "multi_worker needs a store that several processes share" in proc.stdout, proc.stdout[-2000:]
