"""The black-box tier end to end (docs/protocol.md §8): the reference server with no adapter
(``conformance/targets/reference-blackbox.yaml``: plain prompts, no markers) passes every cell
that can be judged from the wire, with the others counted "not claimed" and their reason; and
broken variants of it (``variant_server.py``) are each caught by a black-box cell."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SERVER = Path(__file__).with_name("variant_server.py")
BLACKBOX = REPO / "conformance" / "targets" / "reference-blackbox.yaml"


def target_file(tmp_path: Path, variant: str | None) -> Path:
    text = BLACKBOX.read_text()
    if variant is not None:
        text = text.replace("name: reference-blackbox", f"name: blackbox-{variant}").replace(
            "{python} -m reference_impl", f"{{python}} {SERVER} --variant {variant}")
        assert f"--variant {variant}" in text
    path = tmp_path / f"{variant or 'reference'}-blackbox.yaml"
    path.write_text(text)
    return path


def run_kit(tmp_path: Path, target: Path, *args: str) -> tuple[int, dict, str]:
    report = tmp_path / f"report-{len(list(tmp_path.glob('report-*')))}.json"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--conformance-target", str(target),
           "--conformance-report", str(report), "--conformance-results", str(tmp_path / "results"), *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1200, env=env)
    out = proc.stdout + proc.stderr
    assert report.is_file(), f"no report written (exit {proc.returncode}):\n{out[-4000:]}"
    return proc.returncode, json.loads(report.read_text()), out[-6000:]


def test_the_reference_without_its_adapter_passes_every_black_box_cell(tmp_path: Path) -> None:
    code, report, out = run_kit(tmp_path, target_file(tmp_path, None), "conformance", "-n", "2")
    bad = [e["id"] for e in report["cells"] + report["suites"] if e["verdict"] not in ("pass", "not_claimed")]
    assert code == 0 and not bad, f"{bad}\n{out}"
    ran = [e for e in report["cells"] if e.get("control") == "blackbox"]
    assert len(ran) >= 100 and {e["contract"].split("/")[0] for e in ran} == {"responses", "invocations"}, len(ran)
    assert all(e["verdict"] == "pass" for e in ran)
    needs = [e for e in report["cells"] if e.get("control") == "needs"]
    assert needs and all(e["verdict"] == "not_claimed" and e["missing"][0].startswith("control (") for e in needs)
    assert len(ran) + len(needs) == len(report["cells"])  # no cell silently dropped
    runs = {"test_adversarial_responses.py", "test_adversarial_invocations.py", "test_load_responses.py", "test_store_contract.py"}
    module = {e["id"]: e["id"].split("::")[0].rsplit("/", 1)[-1] for e in report["suites"]}
    for entry in report["suites"]:  # a suite test runs black-box, or says what control it needs
        if entry["verdict"] != "pass":
            assert entry["verdict"] == "not_claimed" and ": needs control: " in (entry.get("reason") or ""), entry
    assert {module[e["id"]] for e in report["suites"] if e["verdict"] == "pass"} == runs, report["suites"]
    assert {module[e["id"]] for e in report["suites"] if e["verdict"] == "not_claimed"} >= {
        "test_explore_responses.py", "test_explore_invocations.py", "test_multi_worker_responses.py"}
    assert "black-box" in out  # the matrix says how the cells ran


@pytest.mark.parametrize("variant, cell, violation", [
    ("seq-restart", "contracts/responses/resilience.yaml::R1[C,stream=true]", ""),
    ("replay-drops-last", "contracts/responses/replay.yaml::P1[A]", "expected one terminal event"),
    ("terminal-not-last", "contracts/responses/replay.yaml::P1[A]", "is not the last frame"),
    ("cursor-500", "contracts/responses/replay.yaml::P8[A]", "observed 500"),
    ("cancel-keeps-streaming", "contracts/responses/cancel.yaml::BG[held,stream=true]", "expected final status 'cancelled'"),
])
def test_a_broken_server_without_an_adapter_is_caught_black_box(tmp_path: Path, variant: str, cell: str,
                                                                 violation: str) -> None:
    code, report, out = run_kit(tmp_path, target_file(tmp_path, variant), cell)
    [entry] = report["cells"]
    assert code == 1 and entry["verdict"] == "fail" and entry.get("control") == "blackbox", (entry, out)
    assert violation in "\n".join(entry["violations"]), entry["violations"]
