"""The adversarial and load suites catch the deliberately broken tiny targets, and pass the
correct one.  The adversarial suite runs as a real ``pytest conformance --conformance-target`` subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from explore_helpers import tiny_config

import conformance
from conformance.explore.load import run_load

PACKAGE = Path(conformance.__file__).parent
CONTRACTS = PACKAGE.parent / "contracts" / "**" / "*.yaml"


def run_suite(tmp_path: Path, bug: str, select: str) -> subprocess.CompletedProcess:
    config = tiny_config(tmp_path, bug)
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    cmd = [sys.executable, "-m", "pytest", str(PACKAGE), "-q", "-p", "no:benchmark", "--conformance-target", config.source,
           "--conformance-contracts", str(CONTRACTS), "--conformance-results", str(tmp_path / "results"), "-k", select]
    return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("bug, expected", [("none", None), ("cursor-500", "(a 5xx for bad input)"),
                                           ("echo-cursor", "expected exactly the later events")])
def test_adversarial_bad_cursors_catches_a_bad_cursor(tmp_path, bug, expected) -> None:
    proc = run_suite(tmp_path, bug, "test_adversarial_responses and bad_cursors")
    out = proc.stdout + proc.stderr
    if bug == "none":
        assert proc.returncode == 0 and "1 passed" in out, out[-3000:]
    else:
        assert proc.returncode == 1, out[-3000:]
        assert "test_adversarial_responses[bad_cursors]" in out and expected in out, out[-3000:]
        # the failure shows how to reproduce it (hypothesis words this differently across versions)
        assert "Falsifying example" in out or "@reproduce_failure(" in out, out[-3000:]


@pytest.mark.parametrize("bug", ["none", "lose-last"])
def test_load_sigkill_catches_a_lost_last_event(tmp_path, spawn_factory, bug) -> None:
    target = spawn_factory(tiny_config(tmp_path, bug))({"resilient_background": True})
    result = run_load(target, 8, resilient=True)
    assert result.acknowledged == 8, result.problems
    if bug == "none":
        assert result.problems == [], result.problems
    else:
        assert any("rewritten" in p or "missing seq" in p for p in result.problems), result.problems
