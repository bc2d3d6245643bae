"""The pytest plugin end to end: real `pytest conformance` runs in a subprocess against the
reference server, with small contracts made for the purpose.

What is pinned: bad options give one clear line before any test runs; a wrong expectation
fails its cell (a verdict can fail); levels (MUST fails, SHOULD xfails, MAY informs); claims
(an unclaimed capability is skipped and counted); the baseline (listed failure xfails, listed
pass fails as stale); the JSON report and the matrix, also under xdist.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from xml.etree import ElementTree

import jsonschema
import pytest

import conformance
from conformance.report import SCHEMA_FILE

PACKAGE = str(Path(conformance.__file__).parent)
REPORT_SCHEMA = json.loads(SCHEMA_FILE.read_text())

CONTRACT = """\
contract: responses/selftest
profile: responses
level: MUST
defaults:
  request: {store: true, background: true}
  script: {deltas: 2, delay_ms: 0}
paths:
  A: {fault: none}
rows:
  - id: OK
    title: a true expectation
    cells:
      A: {status: completed, output_text: "a1:d0 a1:d1 ", attempts: 1}
  - id: WRONG
    title: a false expectation must fail
    level: %(level)s
    cells:
      A: {status: completed, output_text: "a1:d0 a1:d1 ", attempts: 2}
"""


def setup_run(tmp_path: Path, level: str = "MUST") -> Path:
    contracts = tmp_path / "contracts" / "responses"
    contracts.mkdir(parents=True)
    (contracts / "selftest.yaml").write_text(CONTRACT % {"level": level})
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    return tmp_path


def run(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    # -m conformance_cell: only the cells of these small contracts, not the suites in conformance/suites/
    cmd = [sys.executable, "-m", "pytest", PACKAGE, "-rA", "-m", "conformance_cell",
           "--conformance-contracts", str(tmp_path / "contracts/**/*.yaml"),
           "--conformance-results", str(tmp_path / "results"), *args]
    return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env=None if env is None else {**os.environ, **env})


def report(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path / "report.json"
    proc = run(tmp_path, "--conformance-report", str(out), *args, env=env)
    assert out.exists(), proc.stdout + proc.stderr
    rep = json.loads(out.read_text())
    jsonschema.validate(rep, REPORT_SCHEMA)  # every real report of these runs has the documented layout
    return proc, rep


def verdicts(rep: dict) -> dict[str, str]:
    return {c["row"]: c["verdict"] for c in rep["cells"]}


def test_wrong_expectation_fails_and_true_one_passes(tmp_path):
    proc, rep = report(setup_run(tmp_path), "--junitxml", str(tmp_path / "junit.xml"))
    assert proc.returncode == 1, proc.stdout
    assert verdicts(rep) == {"OK": "pass", "WRONG": "fail"}
    wrong = next(c for c in rep["cells"] if c["row"] == "WRONG")
    assert any(v.startswith("attempts:") for v in wrong["violations"]), wrong["violations"]
    assert Path(wrong["history"]).is_file()
    # the failure text names the cell, its source line, the violation and the server log
    assert "responses/selftest::WRONG[A]" in proc.stdout and "selftest.yaml:" in proc.stdout
    assert "incarnation-0.log" in proc.stdout
    assert "conformance matrix" in proc.stdout
    assert rep["passed"] is False and rep["totals"] == {"fail": 1, "pass": 1}
    # the matrix: one glyph per cell in its row, then the totals line
    matrix = proc.stdout[proc.stdout.index("conformance matrix"):]
    rows = {line.split()[1]: line for line in matrix.splitlines() if line.startswith("│")}
    assert "✓" in rows["OK"] and "✗" not in rows["OK"] and "✗" in rows["WRONG"], matrix
    assert "cells: 1 pass, 1 fail; 0 not applicable (declared)" in matrix
    # JUnit: every cell carries its contract, row, path, variant and level as properties
    cases = {c.get("name"): c for c in ElementTree.parse(tmp_path / "junit.xml").iter("testcase")}
    props = {p.get("name"): p.get("value") for p in cases["WRONG[A]"].iter("property")}
    assert {k: props.get(k) for k in ("contract", "row", "path", "variant", "level")} == {
        "contract": "responses/selftest", "row": "WRONG", "path": "A", "variant": "A", "level": "MUST"}, props


def test_one_cell_run_draws_only_what_ran(tmp_path):
    """``pytest "<file>::<cell>"`` draws the one table and the one row that ran, not every table
    full of ``?``; the not-applicable count is that of the rows drawn."""
    setup_run(tmp_path)
    other = tmp_path / "contracts/responses/other.yaml"
    other.write_text(CONTRACT.replace("responses/selftest", "responses/other") % {"level": "MUST"})
    cmd = [sys.executable, "-m", "pytest", "contracts/responses/selftest.yaml::OK[A]", "-q",
           "--conformance-contracts", str(tmp_path / "contracts/**/*.yaml"),
           "--conformance-results", str(tmp_path / "results")]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    matrix = proc.stdout[proc.stdout.index("conformance matrix"):]
    assert "responses/selftest  [MUST]" in matrix and "responses/other" not in matrix, matrix
    rows = {line.split()[1]: line for line in matrix.splitlines() if line.startswith("│")}
    assert set(rows) == {"OK"} and "✓" in rows["OK"], matrix
    assert "?" not in "".join(rows.values()), matrix
    assert "(1 of 2 rows not run, not drawn)" in matrix
    assert "cells: 1 pass; 0 not applicable (declared) in the rows drawn" in matrix


def test_should_level_xfails_and_may_informs(tmp_path):
    proc, rep = report(setup_run(tmp_path, level="SHOULD"))
    assert proc.returncode == 0, proc.stdout
    assert verdicts(rep)["WRONG"] == "warn" and "XFAIL" in proc.stdout
    other = tmp_path / "may"
    other.mkdir()
    proc, rep = report(setup_run(other, level="MAY"))
    assert proc.returncode == 0, proc.stdout
    assert verdicts(rep)["WRONG"] == "info"


def test_baseline_xfails_listed_failure_and_flags_stale_entry(tmp_path):
    setup_run(tmp_path)
    baseline = tmp_path / "baseline.yaml"
    baseline.write_text(textwrap.dedent("""\
        expected_failures:
          "responses/selftest::WRONG[A]": known off-by-one
          "responses/selftest::OK[A]": listed, but it passes
        """))
    proc, rep = report(tmp_path, "--conformance-baseline", str(baseline))
    assert verdicts(rep) == {"WRONG": "baseline", "OK": "stale_baseline"}
    assert proc.returncode == 1 and "stale baseline" in proc.stdout


def test_unclaimed_capability_is_skipped_and_counted(tmp_path):
    setup_run(tmp_path)
    target = tmp_path / "target.yaml"
    target.write_text(
        'command: "{python} -m reference_impl --port {port} --state-dir {state_dir}"\n'
        "profiles: [responses]\nclaims: []\n"
    )
    contract = tmp_path / "contracts/responses/selftest.yaml"
    contract.write_text(contract.read_text().replace("    title: a true expectation\n",
                                                     "    title: a true expectation\n    server: {resilient_background: true}\n"))
    proc, rep = report(tmp_path, "--conformance-target", str(target))
    assert verdicts(rep)["OK"] == "not_claimed"
    assert "not claimed by target" in proc.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--conformance-target", "nope.yaml"], "nope.yaml: target file not found"),
        (["--conformance-profile", "grpc"], "--conformance-profile: unknown profile 'grpc'"),
        (["--conformance-baseline", "missing.yaml"], "--conformance-baseline: file missing.yaml not found"),
        (["--conformance-report", "contracts"], "--conformance-report: contracts is a directory; give a file path"),
        (["--conformance-report", "pytest.ini/r.json"], "--conformance-report: cannot create pytest.ini/r.json: pytest.ini is a file"),
        (["--conformance-results", "pytest.ini"], "is a file, not a directory"),
        (["--conformance-results", "pytest.ini/sub"], "pytest.ini is a file, not a directory"),
    ],
)
def test_bad_option_is_one_clear_line(tmp_path, args, message):
    proc = run(setup_run(tmp_path), *args)  # the last --conformance-results given wins
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr + proc.stdout
    assert "ERROR:" in proc.stderr and "INTERNALERROR" not in proc.stderr + proc.stdout
    assert " passed" not in proc.stdout and " failed" not in proc.stdout  # before any test ran


def test_kit_options_carry_the_plugin_prefix(tmp_path):
    """Generic names (``--profile`` is also pytest-profiling's) would collide with other plugins
    at argparse level: the kit registers only ``--conformance-*`` options."""
    proc = subprocess.run([sys.executable, "-m", "pytest", "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    group = proc.stdout.split("stream-and-task conformance kit:")[1].split("\n\n")[0]
    options = re.findall(r"^\s+(--[\w-]+)", group, re.M)
    assert {"--conformance-target", "--conformance-contracts", "--conformance-profile", "--conformance-baseline",
            "--conformance-store"} <= set(options), group
    assert all(o.startswith("--conformance-") for o in options), options


def test_bad_contract_glob_is_one_clear_line(tmp_path):
    cmd = [sys.executable, "-m", "pytest", PACKAGE, "--conformance-contracts", str(tmp_path / "none/*.yaml")]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 4 and "--conformance-contracts: no contract file matches" in proc.stderr


def test_bad_contract_fails_collection_with_file_line(tmp_path):
    setup_run(tmp_path)
    contract = tmp_path / "contracts/responses/selftest.yaml"
    contract.write_text(contract.read_text().replace("attempts: 2}", "attempts: 2, colour: red}"))
    proc = run(tmp_path)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "selftest.yaml:18" in proc.stderr and "colour" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_xdist_workers_report_into_one_matrix_and_json(tmp_path):
    proc, rep = report(setup_run(tmp_path), "-n", "2")
    assert verdicts(rep) == {"OK": "pass", "WRONG": "fail"}
    assert "conformance matrix" in proc.stdout
    runs = list((tmp_path / "results").glob("run-*"))
    assert len(runs) == 1 and len(list(runs[0].glob("*/history.json"))) == 2


def test_printed_cell_id_reruns_that_cell_alone(tmp_path):
    setup_run(tmp_path)
    cmd = [sys.executable, "-m", "pytest", "contracts/responses/selftest.yaml::OK[A]", "-q",
           "--conformance-results", str(tmp_path / "results")]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout + proc.stderr


def test_cell_whose_trigger_never_shows_fails_as_not_testable(tmp_path):
    """The target writes its markers somewhere else: `held` is never observed, so the crash
    never happens, and the cell must fail as not testable (not pass, not skip)."""
    setup_run(tmp_path)
    (tmp_path / "contracts/responses/selftest.yaml").write_text(textwrap.dedent("""\
        contract: responses/selftest
        profile: responses
        level: MUST
        defaults:
          request: {store: true, background: true}
          script: {deltas: 2, delay_ms: 0, hold_at: 0}
        paths:
          C: {fault: sigkill, at: held}
        rows:
          - id: CRASH
            title: needs the held marker
            cells:
              C: {status: completed, attempts: 2, exit: killed}
        """))
    target = tmp_path / "target.yaml"
    target.write_text(
        'command: "{python} -m reference_impl --port {port} --state-dir {state_dir} --marker-dir {work_dir}/elsewhere"\n'
        "profiles: [responses]\ncell_timeout_s: 3\n"
    )
    proc, rep = report(tmp_path, "--conformance-target", str(target))
    assert proc.returncode == 1
    [cell] = rep["cells"]
    assert cell["verdict"] == "not_testable", cell
    assert any("not testable" in v and "held" in v for v in cell["violations"])
    assert any("fault did not happen" in v for v in cell["violations"])


def slow_table(tmp_path, rows: str, *, request: str = "{store: true, background: true}", path: str = "{fault: none}") -> None:
    """A table whose every cell outlives a 1 s cell timeout (3 deltas, 1.5 s apart)."""
    (tmp_path / "contracts/responses/selftest.yaml").write_text(
        "contract: responses/selftest\nprofile: responses\nlevel: MUST\n"
        f"defaults:\n  request: {request}\n  script: {{deltas: 3, delay_ms: 1500}}\n"
        f"paths:\n  A: {path}\nrows:\n" + rows
    )


def slow_target(tmp_path, extra: str = ""):
    target = tmp_path / "target.yaml"
    target.write_text(
        'command: "{python} -m reference_impl --port {port} --state-dir {state_dir} --shutdown-grace 0.2"\n'
        "profiles: [responses]\ncell_timeout_s: 1\n" + extra
    )
    return target


def test_a_status_stuck_past_the_deadline_is_the_targets_violation_at_its_level(tmp_path):
    """A background response still in progress at the cell deadline is a ``status`` violation of
    the target, judged at the cell's level (MUST fails, SHOULD warns, MAY informs), one message,
    never "not testable"; strict (``strict: true`` in the target file) fails the SHOULD cell."""
    setup_run(tmp_path)
    rows = "".join(
        f"  - id: STUCK_{level}\n    title: outlives the cell timeout\n    level: {level}\n"
        "    cells:\n      A: {status: completed, attempts: 1}\n"
        for level in ("MUST", "SHOULD", "MAY")
    )
    slow_table(tmp_path, rows)
    proc, rep = report(tmp_path, "--conformance-target", str(slow_target(tmp_path)))
    assert proc.returncode == 1, proc.stdout
    assert verdicts(rep) == {"STUCK_MUST": "fail", "STUCK_SHOULD": "warn", "STUCK_MAY": "info"}, rep["cells"]
    for cell in rep["cells"]:
        assert len(cell["violations"]) == 1 and cell["violations"][0].startswith(
            "status: expected final status 'completed', observed resp_"), cell["violations"]
        assert "is still 'in_progress'" in cell["violations"][0] and "log tail" not in cell["violations"][0]
    proc, rep = report(tmp_path, "--conformance-target", str(slow_target(tmp_path, "strict: true\n")))
    assert verdicts(rep) == {"STUCK_MUST": "fail", "STUCK_SHOULD": "fail", "STUCK_MAY": "info"}, rep["cells"]
    assert rep["strict"] is True and "2 failed" in proc.stdout, proc.stdout


def test_cell_that_could_not_run_fails_at_every_level(tmp_path):
    """An executor error (here: the 500th event a fault waits for never comes within the cell timeout) is a
    cell the target claims but that could not be run: "not testable" and a failure at MUST,
    SHOULD and MAY alike, never an xfail nor informational, also when the baseline lists it."""
    setup_run(tmp_path)
    rows = "".join(
        f"  - id: SLOW_{level}\n    title: outlives the cell timeout\n    level: {level}\n"
        "    cells:\n      A: {status: completed, attempts: 1}\n"
        for level in ("MUST", "SHOULD", "MAY")
    )
    slow_table(tmp_path, rows, request="{store: true, background: true, stream: true}",
               path="{fault: sigkill, at: {after_events: 500}}")
    target = slow_target(tmp_path)
    baseline = tmp_path / "baseline.yaml"  # listing it changes nothing: a claimed cell that could not run
    baseline.write_text('expected_failures:\n  "responses/selftest::SLOW_MUST[A]": slow\n')
    proc, rep = report(tmp_path, "--conformance-target", str(target), "--conformance-baseline", str(baseline))
    assert proc.returncode == 1, proc.stdout
    assert verdicts(rep) == {f"SLOW_{level}": "not_testable" for level in ("MUST", "SHOULD", "MAY")}, rep["cells"]
    assert all(any("executor error" in v for v in c["violations"]) for c in rep["cells"])
    assert "3 failed" in proc.stdout and "XFAIL" not in proc.stdout, proc.stdout


def test_could_not_run_is_judged_by_the_finding_not_the_text():
    """Classification is structural: an `Unknown` finding (the fault did not happen, an executor
    error / not testable note) means "could not run", whatever check reports it; a wrong answer
    does not, even when its text or its check's name happens to say those words."""
    from conformance.history import Unknown, Violation
    from conformance.plugin import could_not_run

    assert could_not_run([Unknown("evidence", "fault did not happen: expected a sigkill fault, observed none")])
    assert could_not_run([Unknown("notes", "expected a cell the executor could run, observed note: executor error: x")])
    assert could_not_run([Violation("status", "expected completed, observed failed"), Unknown("my_key", "no probe")])
    assert not could_not_run([Violation("status", "expected completed, observed failed (body: not testable: x)")])
    assert not could_not_run([Violation("evidence", "named like the fault check, but a violation")])
    assert not could_not_run([])


def test_baseline_entry_naming_no_cell_fails_before_any_test(tmp_path):
    setup_run(tmp_path)
    baseline = tmp_path / "baseline.yaml"
    baseline.write_text(textwrap.dedent("""\
        expected_failures:
          "responses/selftest::WRONG[A]": known
          "responses/selftest::WRNG[A]": a typo
          "zzz": nothing like it
        """))
    proc = run(tmp_path, "--conformance-baseline", str(baseline))
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert (f"ERROR: {baseline}:3: expected_failures: 'responses/selftest::WRNG[A]' is not the id of any contract "
            "cell or suite test (did you mean 'responses/selftest::WRONG[A]'?)") in proc.stderr
    assert f"{baseline}:4: expected_failures: 'zzz' is not the id of any contract cell or suite test\n" in proc.stderr
    assert "WRONG[A]' is not" not in proc.stderr and "Traceback" not in proc.stderr
    assert " passed" not in proc.stdout and " failed" not in proc.stdout


def test_baseline_entry_for_a_cell_left_out_is_not_unknown(tmp_path):
    """--conformance-profile, --conformance-contracts and -k narrow what runs, not what exists: a baseline entry for a
    cell they leave out is fine (cwd = the tmp project, so its contracts/ is the default)."""
    setup_run(tmp_path)
    (tmp_path / "contracts/responses/second.yaml").write_text(
        (CONTRACT % {"level": "MUST"}).replace("responses/selftest", "responses/second"))
    baseline = tmp_path / "baseline.yaml"
    baseline.write_text('expected_failures:\n  "responses/selftest::WRONG[A]": x\n  "responses/second::WRONG[A]": y\n')
    refused = []
    for args in (["contracts/responses/selftest.yaml", "--conformance-contracts", "contracts/responses/selftest.yaml"],
                 ["contracts", "--conformance-profile", "invocations"],
                 ["contracts", "-k", "OK"]):
        cmd = [sys.executable, "-m", "pytest", *args, "--collect-only", "-q", "--conformance-baseline", str(baseline),
               "--conformance-results", str(tmp_path / "results")]
        proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        if proc.returncode not in (0, 5) or "ERROR" in proc.stderr:
            refused.append((args, proc.stdout[-500:] + proc.stderr))
    assert not refused, [a for a, _ in refused]


def test_profile_selects_the_suites_of_that_profile_only(tmp_path):
    setup_run(tmp_path)
    collected = {}
    for profile in ("responses", "invocations"):
        cmd = [sys.executable, "-m", "pytest", PACKAGE, "--collect-only", "-q", "--conformance-profile", profile,
               "--conformance-contracts", str(tmp_path / "contracts/**/*.yaml"), "--conformance-results", str(tmp_path / "results")]
        proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        collected[profile] = {line.split("::")[0].rsplit("/", 1)[-1] for line in proc.stdout.splitlines()
                              if "suites/test_" in line}
    assert "test_adversarial_responses.py" in collected["responses"], collected
    assert "test_adversarial_invocations.py" in collected["invocations"], collected
    assert not {m for m in collected["responses"] if m.endswith("_invocations.py")}, collected
    assert not {m for m in collected["invocations"] if m.endswith("_responses.py")}, collected
    assert "test_store_contract.py" in collected["responses"] & collected["invocations"]  # no profile: both


def test_suite_tests_not_claimed_are_counted(tmp_path):
    """A target with no `store:` and no multi_worker claim: the store-contract tests (skipped in
    a fixture) and the multi-worker tests (skipped in the test) count as not claimed."""
    setup_run(tmp_path)
    target = tmp_path / "target.yaml"
    target.write_text('command: "{python} -m reference_impl --port {port} --state-dir {state_dir}"\n'
                      "profiles: [responses]\nclaims: [resilient_background]\n")
    out = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "pytest", PACKAGE, "-q", "-k", "store_contract or multi_worker",
           "--conformance-target", str(target), "--conformance-profile", "responses", "--conformance-report", str(out),
           "--conformance-contracts", str(tmp_path / "contracts/**/*.yaml"), "--conformance-results", str(tmp_path / "results")]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rep = json.loads(out.read_text())
    skipped = int(re.search(r"(\d+) skipped", proc.stdout.splitlines()[-1]).group(1))
    assert skipped > 5 and rep["cells"] == [] and rep["totals"] == {"not_claimed": skipped}, rep["totals"]
    assert len(rep["suites"]) == skipped and {s["verdict"] for s in rep["suites"]} == {"not_claimed"}
    mw = next(s for s in rep["suites"] if "multi_worker" in s["id"])
    assert mw["id"].startswith("conformance/suites/test_multi_worker_responses.py::") and "multi_worker" in mw["reason"]
    assert f"suite tests: {skipped} not_claimed" in proc.stdout, proc.stdout


def test_a_command_that_cannot_start_is_one_error_before_any_test(tmp_path):
    """`{python} -m missing_module` exits before readiness: the plugin starts the target once
    before any test and reports one ERROR naming the command, with the log tail quoted once."""
    setup_run(tmp_path)
    target = tmp_path / "target.yaml"
    target.write_text('command: "{python} -m missing_module --port {port}"\nprofiles: [responses]\n')
    proc = run(tmp_path, "--conformance-target", str(target))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 4, out
    assert f"ERROR: {target}: command: target target did not start: target exited with code 1" in proc.stderr, out
    assert "-m missing_module --port" in proc.stderr
    assert out.count("No module named missing_module") == 1, out
    assert " passed" not in proc.stdout and " failed" not in proc.stdout and "Traceback" not in out


def test_a_mode_that_cannot_start_fails_its_cell_once_without_knock_ons(tmp_path):
    """The default mode starts (so the probe passes) but a claimed mode's args make the server
    exit: that cell is "not testable" with one violation, the log tail printed once."""
    setup_run(tmp_path)
    contract = tmp_path / "contracts/responses/selftest.yaml"
    contract.write_text(contract.read_text().replace(
        "    title: a true expectation\n", "    title: a true expectation\n    server: {resilient_background: true}\n"))
    target = tmp_path / "target.yaml"
    target.write_text(
        'command: "{python} -m reference_impl --port {port} --state-dir {state_dir}"\n'
        "profiles: [responses]\nmodes:\n  resilient_background: {args: [--no-such-flag]}\nclaims: [resilient_background]\n"
    )
    proc, rep = report(tmp_path, "--conformance-target", str(target), "-k", "OK")
    [cell] = rep["cells"]
    assert cell["verdict"] == "not_testable", cell
    [violation] = cell["violations"]
    assert violation.startswith("notes: expected a cell the executor could run, observed note: executor error: harness: "
                                "target exited with code 2"), violation
    assert "unrecognized arguments: --no-such-flag" not in violation  # the log is named, not quoted ...
    assert proc.stdout.count("unrecognized arguments: --no-such-flag") == 1, proc.stdout  # ... and its tail shown once


def test_a_target_file_elsewhere_with_a_relative_program_and_variables_runs(tmp_path):
    """pytest runs in one folder, the target file lies in another and names its program
    relatively (`./run-server`) and its interpreter by an environment variable: the program is
    found and started from the target file's folder, and the cell passes."""
    setup_run(tmp_path)
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    script = deploy / "run-server"
    script.write_text('#!/bin/sh\nexec "$SERVER_PY" -m reference_impl --port "$1" --state-dir "$2"\n')
    script.chmod(0o755)
    target = deploy / "target.yaml"
    target.write_text("command: ./run-server {port} {state_dir}\nenv: {SERVER_PY: '${KIT_TEST_PY}'}\nprofiles: [responses]\n")
    proc, rep = report(tmp_path, "--conformance-target", str(target), "-k", "OK", env={"KIT_TEST_PY": sys.executable})
    assert verdicts(rep) == {"OK": "pass"}, proc.stdout + proc.stderr
    # the same file without the variable: one ERROR line naming it and its line, before any test
    assert "KIT_TEST_PY" not in os.environ
    proc = run(tmp_path, "--conformance-target", str(target))
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert f"ERROR: {target}:2: env.SERVER_PY: environment variable KIT_TEST_PY is not set" in proc.stderr
