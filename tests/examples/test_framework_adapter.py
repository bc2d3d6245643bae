"""The worked adapter of docs/adapter-guide.md passes the kit's create, replay, cancel and delete tables.

Runs ``pytest conformance --conformance-target examples/framework_adapter/target.yaml`` as a user
would (a subprocess, cells only, a JSON report), and once more against a copy whose adapter emits
a wrong delta text, to see that the same run can fail.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "framework_adapter"
SELECTED = "create or replay or cancel or delete"  # cells of contracts/responses/<those>.yaml
MIN_PASSING = 47  # 8 create + 9 replay + 18 cancel + 12 delete cells: the target claims cancel and delete


def run_kit(target: Path, tmp_path: Path, tables: str = SELECTED) -> tuple[dict, str]:
    report = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "pytest", "conformance", "-q", "-p", "no:cacheprovider",
           "-m", "conformance_cell", "-k", tables,
           "--conformance-target", str(target), "--conformance-profile", "responses",
           "--conformance-report", str(report), "--conformance-results", str(tmp_path / "results")]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert report.exists(), f"no report; exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
    return json.loads(report.read_text()), proc.stdout + proc.stderr


def test_framework_adapter_passes_create_replay_cancel_delete(tmp_path: Path) -> None:
    rep, out = run_kit(EXAMPLE / "target.yaml", tmp_path)
    tables = {c["contract"] for c in rep["cells"]}
    assert tables == {"responses/create", "responses/replay", "responses/cancel", "responses/delete"}, tables
    bad = {c["id"]: (c["verdict"], c["violations"]) for c in rep["cells"]
           if c["verdict"] not in ("pass", "not_claimed")}
    assert not bad, f"cells neither passing nor not claimed: {bad}\n{out[-3000:]}"
    passing = sum(c["verdict"] == "pass" for c in rep["cells"])
    assert passing >= MIN_PASSING, f"only {passing} cells pass (expected >= {MIN_PASSING})\n{out[-3000:]}"


def test_a_broken_adapter_fails_the_same_run(tmp_path: Path) -> None:
    copy = tmp_path / "framework_adapter"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    adapter = copy / "adapter.py"
    text = adapter.read_text()
    assert 'yield f"a1:d{i} "' in text
    adapter.write_text(text.replace('yield f"a1:d{i} "', 'yield f"a1:d{i}"'))  # the trailing space lost
    rep, out = run_kit(copy / "target.yaml", tmp_path, tables="create")
    failed = [c["id"] for c in rep["cells"] if c["verdict"] == "fail"]
    assert failed, f"a wrong delta text passed every create cell\n{out[-3000:]}"
    assert any("output" in v for c in rep["cells"] for v in c["violations"]), rep["cells"][0]
