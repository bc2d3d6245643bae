"""The plugin writes the HTML run report at the end of every run (real `pytest conformance`
runs in a subprocess against the reference server), prints where, never lets the report change
the verdict, and a failing cell's terminal message ends with the compact text timeline."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import conformance
from conformance.history import History
from conformance.htmlreport.render import anchor_of

from .dom import parse

PACKAGE = str(Path(conformance.__file__).parent)
CRASH_CELL = "responses/htmlself::CRASH[C]"

CONTRACT = """\
contract: responses/htmlself
profile: responses
level: MUST
defaults:
  request: {store: true, background: true, stream: true}
  script: {deltas: 3, delay_ms: 0, hold_at: 1}
paths:
  C: {fault: sigkill, at: held}
rows:
  - id: CRASH
    title: a crash cell with a false expectation (the recovered text is attempt 2's)
    server: {resilient_background: true}
    cells:
      C: {status: completed, output_text: "a1:d0 a1:d1 a1:d2 ", attempts: 2, exit: killed}
"""

BREAK_HTML = '''
import os
import shutil
from pathlib import Path

import pytest

@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    """Between the option check and the report: the report's directory becomes a file."""
    target = Path(os.environ["BREAK_HTML_DIR"])
    shutil.rmtree(target, ignore_errors=True)
    target.write_text("not a directory any more")
'''


def setup_run(tmp_path: Path) -> Path:
    contracts = tmp_path / "contracts" / "responses"
    contracts.mkdir(parents=True)
    (contracts / "htmlself.yaml").write_text(CONTRACT)
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    return tmp_path


def run(tmp_path: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pytest", PACKAGE, "-m", "conformance_cell",
           "--conformance-contracts", str(tmp_path / "contracts/**/*.yaml"),
           "--conformance-results", str(tmp_path / "results"), *args]
    return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)


def test_failing_run_writes_the_report_where_asked_and_explains_the_failure_in_text(tmp_path):
    setup_run(tmp_path)
    out = tmp_path / "html" / "run.html"
    proc = run(tmp_path, "--conformance-html", str(out))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"conformance: HTML report {out} (" in proc.stdout, proc.stdout[-2000:]
    # the terminal failure message ends with the text timeline: incarnations, fault, frames
    failure = proc.stdout[proc.stdout.index(CRASH_CELL):]
    assert "timeline (seconds since the cell started):" in failure
    assert "incarnation 0 pid" in failure and "killed (SIGKILL)" in failure and "incarnation 1 pid" in failure
    assert "fault sigkill@held at" in failure and "last live frames of create from incarnation 0 (the fault's):" in failure
    assert re.search(r"\n\s+\d+\.\d{3} inc 0 #\d+ response\.", failure), failure[:6000]  # frame lines

    # the markers carry the time the kit first saw them: the hold before the SIGKILL
    history = History.from_json(next((tmp_path / "results").glob("run-*/*/history.json")).read_text())
    assert len(history.marker_times) == len(history.markers) > 0
    assert history.marker_times == sorted(history.marker_times)
    held = history.marker_times[history.markers.index("held 1")]
    assert held <= history.faults[0].t, (held, history.faults[0])

    doc = parse(out.read_text(encoding="utf-8"))
    detail = doc.by_id(anchor_of(CRASH_CELL))
    assert detail.attrs["data-verdict"] == "fail" and "output_text: expected" in detail.text()
    lanes = detail.find_all(lambda n: n.attrs.get("data-lane") == "incarnation")
    assert len(lanes) == 2 and "killed (SIGKILL)" in lanes[0].text()
    assert [n.attrs["data-fault"] for n in detail.find_all(lambda n: n.attrs.get("data-fault"))] == ["sigkill"]
    marks = [n.attrs["data-marker"] for n in detail.find_all(lambda n: "data-marker" in n.attrs)]
    assert marks == history.markers  # every marker on the axis, in order
    # links are relative to the report and lead to the run's files
    links = [a.attrs["href"] for a in detail.find_all(lambda n: n.tag == "a" and not n.attrs.get("href", "#").startswith("#"))]
    assert any(h.endswith("history.json") for h in links) and any(h.endswith("incarnation-1.log") for h in links)
    for h in links:
        assert not h.startswith("/") and (out.parent / h).is_file(), h


def test_default_path_is_in_the_run_dir_and_a_render_error_keeps_the_verdict(tmp_path):
    setup_run(tmp_path)
    proc = run(tmp_path)
    assert proc.returncode == 1
    runs = list((tmp_path / "results").glob("run-*"))
    assert len(runs) == 1 and (runs[0] / "report.html").is_file()
    assert f"conformance: HTML report {runs[0] / 'report.html'} (" in proc.stdout

    (tmp_path / "breakhtml.py").write_text(BREAK_HTML)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "BREAK_HTML_DIR": str(tmp_path / "html")}
    broken = run(tmp_path, "-p", "breakhtml", "--conformance-html", str(tmp_path / "html" / "r.html"), env=env)
    assert broken.returncode == 1, broken.stdout + broken.stderr  # the cell's verdict, not the report's
    line = [ln for ln in broken.stdout.splitlines() if "HTML report not written" in ln]
    assert len(line) == 1 and "r.html" in line[0], broken.stdout[-2000:]
    assert "Traceback" not in broken.stdout + broken.stderr and "INTERNALERROR" not in broken.stdout + broken.stderr
    assert "1 failed" in broken.stdout


def test_bad_html_option_is_one_clear_line(tmp_path):
    setup_run(tmp_path)
    proc = run(tmp_path, "--conformance-html", "contracts")
    assert proc.returncode == 4
    assert "--conformance-html: contracts is a directory; give a file path" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_suite_runs_leave_histories_the_report_draws(tmp_path):
    """The multi-worker suite (two workers on one sqlite store, the owner SIGKILLed) leaves its
    schedule as history.json; the report draws both workers' incarnations and the fault."""
    out = tmp_path / "report.html"
    cmd = [sys.executable, "-m", "pytest", PACKAGE, "-q", "-k", "test_multi_worker and sigkill", "--conformance-store", "sqlite",
           "--conformance-results", str(tmp_path / "results"), "--conformance-html", str(out)]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-2000:]
    detail = parse(out.read_text(encoding="utf-8")).by_id(
        anchor_of("conformance/suites/test_multi_worker_responses.py::test_multi_worker[sigkill]"))
    lanes = detail.find_all(lambda n: n.attrs.get("data-lane") == "incarnation")
    assert len(lanes) >= 2 and "killed (SIGKILL)" in lanes[0].text(), [ln.text() for ln in lanes]
    assert [f.attrs["data-fault"] for f in detail.find_all(lambda n: n.attrs.get("data-fault"))] == ["sigkill"]
    assert detail.find_all(lambda n: "fr" in n.classes), "no frame on the suite's timeline"
