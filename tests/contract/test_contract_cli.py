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
    assert "conformance lint: 15 contract(s)" in out and ": ok" in out
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
