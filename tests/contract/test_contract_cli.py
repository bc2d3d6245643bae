"""`conformance lint`: exit codes, counts, file:line problems, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conformance.cli import main

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"


def test_lint_real_contracts_exit_0_and_counts(capsys):
    assert main(["lint", str(ROOT / "contracts")]) == 0
    out = capsys.readouterr().out
    assert "responses/resilience" in out and "total" in out
    assert "invocations/lifecycle" in out and "invocations/streams" in out and "invocations/queue" in out
    assert "conformance lint: 17 contract(s)" in out and ": ok" in out
    assert "Traceback" not in out


def test_lint_cells_lists_ids(capsys):
    assert main(["lint", "--cells", str(FIXTURES / "good.yaml")]) == 0
    out = capsys.readouterr().out
    assert "responses/good::R1[C,stream=true]  [MUST]" in out
    assert "1 contract(s), 7 cell(s), 2 not applicable: ok" in out


def test_lint_broken_file_exit_1_with_file_line(capsys):
    broken = FIXTURES / "unknown_path.yaml"
    assert main(["lint", str(broken)]) == 1
    out = capsys.readouterr().out
    assert f"{broken}:15: rows[0].cells.D: unknown path 'D' (declared paths: A, B, C)" in out
    assert "Traceback" not in out


def test_lint_good_and_broken_together_reports_both(capsys):
    assert main(["lint", str(FIXTURES / "good.yaml"), str(FIXTURES / "duplicate_id.yaml")]) == 1
    out = capsys.readouterr().out
    assert "responses/good" in out
    assert "duplicate_id.yaml:10: rows[1].id: duplicate row id" in out


def test_lint_missing_path_exit_2_one_line(capsys, tmp_path):
    assert main(["lint", str(tmp_path / "nope.yaml")]) == 2
    out = capsys.readouterr().out
    assert out.strip() == f"conformance lint: {tmp_path / 'nope.yaml'}: no such file or directory"


def test_lint_directory_without_yaml_exit_2(capsys, tmp_path):
    assert main(["lint", str(tmp_path)]) == 2
    assert "directory holds no contract file" in capsys.readouterr().out


def test_no_command_and_bad_option_exit_2(capsys):
    assert main([]) == 2
    assert main(["lint"]) == 2
    assert main(["lint", "--bogus", "x"]) == 2


def test_python_dash_m_runs_the_same_command():
    proc = subprocess.run([sys.executable, "-m", "conformance", "lint", "/no/such/dir"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2
    assert "no such file or directory" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


def test_lint_table_never_truncates_long_paths_on_narrow_output(capsys, tmp_path, monkeypatch):
    """CI checkouts live under long paths and pipes are narrow: names and paths must print whole."""
    deep = tmp_path.joinpath(*["a-rather-long-directory-name"] * 5)
    deep.mkdir(parents=True)
    contract = deep / "good.yaml"
    contract.write_text((FIXTURES / "good.yaml").read_text())
    monkeypatch.setenv("COLUMNS", "40")
    assert main(["lint", str(contract)]) == 0
    out = capsys.readouterr().out
    assert "responses/good" in out and str(contract) in out and "…" not in out


def test_help_says_runs_are_pytest_and_names_only_real_run_options(capsys, pytestconfig):
    """``conformance --help`` sends a newcomer to ``pytest conformance`` for runs; every run option
    it names is one the pytest plugin really registers (so the help cannot drift from the plugin)."""
    import re

    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "pytest conformance" in out and "--conformance-target" in out
    assert "lints contract files and compares JSON reports" in out
    named = set(re.findall(r"--conformance-[a-z-]+", out))
    assert {"--conformance-target", "--conformance-store", "--conformance-profile"} <= named
    for option in named:  # getoption raises ValueError for an option nobody registered
        pytestconfig.getoption(option.removeprefix("--").replace("-", "_"))
def test_lint_recognises_a_target_file_and_checks_it_as_one(capsys, tmp_path):
    good = tmp_path / "my-target.yaml"
    good.write_text('command: "{python} -m my_server --port {port}"\nprofiles: [responses]\nclaims: [cancel]\n')
    assert main(["lint", str(good)]) == 0
    out = capsys.readouterr().out
    assert f"target file {good}: my-target (profiles: responses; claims: cancel)" in out
    assert out.strip().endswith("conformance lint: 1 target file(s): ok")
    bad = tmp_path / "bad-target.yaml"
    bad.write_text('command: "{python} -m my_server"\nprofiles: [responses]\nclaims: [checkpoint]\n')
    assert main(["lint", str(bad), str(FIXTURES / "good.yaml")]) == 1
    out = capsys.readouterr().out
    assert f"{bad}:3: claims[0]: unknown claim 'checkpoint' (did you mean checkpoints? known: " in out
    assert [line for line in out.splitlines() if line.startswith(str(bad))] == [  # one error, not ten contract errors
        next(line for line in out.splitlines() if "unknown claim" in line)]
    assert "missing required key" not in out and "responses/good" in out
    assert "conformance lint: 1 problem(s) in 1 file(s)" in out


def test_lint_of_a_target_file_gives_the_errors_a_run_gives(capsys, tmp_path):
    from conformance.errors import TargetConfigError
    from conformance.targets import load_target

    target = tmp_path / "t.yaml"
    target.write_text("command: ./run-server {port}\nprofiles: [responses]\n")
    assert main(["lint", str(target)]) == 1
    out = capsys.readouterr().out
    try:
        load_target(target)
    except TargetConfigError as exc:
        assert str(exc) in out and str(exc).startswith(f"{target}:1: command: program './run-server' does not exist")
    else:
        raise AssertionError("load_target accepted a missing program")
