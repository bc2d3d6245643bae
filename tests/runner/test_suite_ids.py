"""Suite tests (``conformance/suites/``) by their printed id, end to end: real ``pytest
conformance`` runs in a subprocess against the tiny target of tests/explore/, whose
``cursor-500`` bug makes the adversarial ``bad_cursors`` class fail (and ``none`` passes it).

What is pinned: the id printed for a failing suite test, pasted back as it is, runs exactly that
test; a baseline entry naming a suite test by that id makes its failure expected (xfail, verdict
``baseline``), fails the run as stale when the test passes, and an entry naming no suite test
(nor cell) is one ``baseline.yaml:line:`` error with the closest id before any test runs.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import conformance

PACKAGE = Path(conformance.__file__).parent
CONTRACTS = PACKAGE.parent / "contracts" / "**" / "*.yaml"
TINY = PACKAGE.parent / "tests" / "explore" / "tiny_target.py"
BAD_CURSORS = "test_adversarial_responses and bad_cursors"
SUITE_ID = "conformance/suites/test_adversarial_responses.py::test_adversarial_responses[bad_cursors]"


def tiny_target(tmp_path: Path, bug: str) -> Path:
    """A target file for the tiny responses target with ``--bug <bug>``, and a pytest.ini."""
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    path = tmp_path / f"tiny-{bug}.yaml"
    path.write_text(
        f"name: tiny-{bug}\n"
        f"command: \"{{python}} {TINY} --port {{port}} --state-dir {{state_dir}} --bug {bug}\"\n"
        "readiness: {path: /readiness, timeout_s: 10}\nshutdown_grace_s: 5\nprofiles: [responses]\n"
        "modes:\n  resilient_background: {args: [--resilient-background]}\nclaims: [resilient_background, cancel]\n"
    )
    return path


def pytest_run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """``pytest ARGS`` run from ``tmp_path`` the way a user types it: paths relative to there."""
    cmd = [sys.executable, "-m", "pytest", "-p", "no:benchmark", "-rA", "--conformance-results", "results", *args]
    return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)


def test_printed_suite_id_reruns_that_test_alone(tmp_path):
    target = tiny_target(tmp_path, "cursor-500").name
    first = pytest_run(tmp_path, str(PACKAGE), "--conformance-target", target, "-k", BAD_CURSORS)
    printed = re.findall(r"^FAILED (\S+)", first.stdout, re.M)
    assert first.returncode == 1 and len(printed) == 1, first.stdout[-3000:] + first.stderr
    [node_id] = printed
    assert node_id.endswith("conformance/suites/test_adversarial_responses.py::test_adversarial_responses[bad_cursors]")
    again = pytest_run(tmp_path, node_id, "--conformance-target", target)  # exactly the printed string, nothing else
    assert again.returncode == 1, again.stdout[-3000:] + again.stderr
    assert re.findall(r"^FAILED (\S+)", again.stdout, re.M) == [node_id], again.stdout[-3000:]
    assert re.search(r"^=+ 1 failed in [\d.]+s", again.stdout.rstrip().splitlines()[-1]), again.stdout[-3000:]
    assert "conformance matrix" in again.stdout  # a pasted suite id is a conformance run: matrix and totals


def baseline_run(tmp_path: Path, bug: str, entries: str) -> tuple[subprocess.CompletedProcess, dict | None]:
    """``bad_cursors`` against the tiny target with ``--bug`` and a baseline of ``entries``."""
    target = tiny_target(tmp_path, bug).name
    (tmp_path / "baseline.yaml").write_text("expected_failures:\n" + entries)
    proc = pytest_run(tmp_path, str(PACKAGE), "--conformance-target", target, "-k", BAD_CURSORS, "--conformance-baseline", "baseline.yaml",
                      "--conformance-report", "report.json")
    report = tmp_path / "report.json"
    return proc, json.loads(report.read_text()) if report.exists() else None


def test_baseline_listed_suite_failure_is_expected(tmp_path):
    proc, rep = baseline_run(tmp_path, "cursor-500", f'  "{SUITE_ID}": the tiny target answers 500 to a bad cursor\n')
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert re.search(r"^XFAIL \S*test_adversarial_responses\[bad_cursors\] - in baseline \(the tiny target answers 500",
                     proc.stdout, re.M), proc.stdout[-3000:]
    assert rep is not None and rep["passed"] is True and rep["totals"] == {"baseline": 1}, rep
    [entry] = rep["suites"]
    assert entry["id"] == SUITE_ID and entry["verdict"] == "baseline", entry
    assert entry["reason"].startswith("in baseline (the tiny target answers 500 to a bad cursor): AssertionError: "
                                      "bad_cursors: GET ") and "-> 500" in entry["reason"], entry
    assert "suite tests: 1 baseline" in proc.stdout, proc.stdout[-3000:]


def test_baseline_listed_suite_test_that_passes_is_stale(tmp_path):
    proc, rep = baseline_run(tmp_path, "none", f'  "{SUITE_ID}": was broken once\n')
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr
    assert f"stale baseline: {SUITE_ID} is listed as expected to fail (was broken once) but passed" in proc.stdout
    assert rep is not None and rep["passed"] is False and rep["totals"] == {"stale_baseline": 1}, rep
    assert [(e["id"], e["verdict"]) for e in rep["suites"]] == [(SUITE_ID, "stale_baseline")]


def test_baseline_entry_naming_no_suite_test_fails_before_any_test(tmp_path):
    typo = SUITE_ID.replace("bad_cursors", "bad_cursor")
    proc, rep = baseline_run(tmp_path, "none", f'  "{SUITE_ID}": fine\n  "{typo}": a typo\n'
                                               '  "test_adversarial_responses[bad_ids]": no module\n')
    assert proc.returncode == 4 and rep is None, proc.stdout[-3000:] + proc.stderr
    assert (f"ERROR: baseline.yaml:3: expected_failures: {typo!r} is not the id of any contract cell or suite test "
            f"(did you mean {SUITE_ID!r}?)") in proc.stderr, proc.stderr
    assert ("baseline.yaml:4: expected_failures: 'test_adversarial_responses[bad_ids]' is not the id of any contract "
            "cell or suite test (did you mean 'conformance/suites/test_adversarial_responses.py::"
            "test_adversarial_responses[bad_ids]'?)") in proc.stderr, proc.stderr
    assert f"{SUITE_ID!r} is not" not in proc.stderr and "Traceback" not in proc.stdout + proc.stderr
    assert " passed" not in proc.stdout and " failed" not in proc.stdout and "XFAIL" not in proc.stdout
