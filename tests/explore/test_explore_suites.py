"""The adversarial and load suites catch the deliberately broken tiny targets, and pass the
correct one.  The adversarial suite runs as a real ``pytest conformance --conformance-target`` subprocess."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from explore_helpers import tiny_config

import conformance
from conformance.explore.load import run_load
from conformance.explore.machine import DEFAULT_BUDGET, ExplorationFailed, ResponsesMachine, explore_suite

PACKAGE = Path(conformance.__file__).parent
CONTRACTS = PACKAGE.parent / "contracts" / "**" / "*.yaml"


def run_suite(tmp_path: Path, bug: str, select: str, *args: str) -> subprocess.CompletedProcess:
    config = tiny_config(tmp_path, bug)
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    cmd = [sys.executable, "-m", "pytest", str(PACKAGE), "-q", "-p", "no:benchmark", "--conformance-target", config.source,
           "--conformance-contracts", str(CONTRACTS), "--conformance-results", str(tmp_path / "results"), "-k", select, *args]
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


def test_every_run_prints_its_seed_and_the_json_report_has_it(tmp_path) -> None:
    """Without --conformance-seed a run draws a seed and says which; with it, that one is used."""
    drawn = run_suite(tmp_path, "none", "test_explore_responses", "--conformance-report", str(tmp_path / "a.json"))
    assert drawn.returncode == 0, drawn.stdout[-3000:] + drawn.stderr
    [seed] = re.findall(r"^conformance seed: (\d+) \(repeat this run's exploration with --conformance-seed \1\)$",
                        drawn.stdout, re.M)
    assert json.loads((tmp_path / "a.json").read_text())["seed"] == int(seed)
    given = run_suite(tmp_path, "none", "test_explore_responses", "--conformance-seed", "42",
                      "--conformance-report", str(tmp_path / "b.json"))
    assert given.returncode == 0 and "conformance seed: 42 (" in given.stdout, given.stdout[-3000:] + given.stderr
    assert json.loads((tmp_path / "b.json").read_text())["seed"] == 42
    bad = run_suite(tmp_path, "none", "test_explore_responses", "--conformance-seed", "-1")
    assert bad.returncode == 4 and "ERROR: --conformance-seed: expected a whole number from 0 to" in bad.stderr, bad.stderr
    assert "Traceback" not in bad.stdout + bad.stderr


class AlwaysBroken(ResponsesMachine):
    def _check(self) -> None:
        self._fail(["synthetic problem"])


def test_an_exploration_failure_names_the_runs_seed_and_how_to_repeat_it(tmp_path, spawn_factory) -> None:
    config = tiny_config(tmp_path)
    run = SimpleNamespace(target=config, explore=0, seed=42)
    spawn = spawn_factory(config)
    with pytest.raises(ExplorationFailed) as info:
        explore_suite("test_explore_responses", run, lambda server: spawn(server), machine=AlwaysBroken)
    text = str(info.value)
    assert f"exploration: seed 42, {DEFAULT_BUDGET.examples} example(s) x {DEFAULT_BUDGET.steps} steps" in text, text
    assert f"replay: pytest conformance -k test_explore_responses --conformance-seed 42 --conformance-target {config.source}" in text, text
