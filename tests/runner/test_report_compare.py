"""`conformance report A.json B.json ...`: JSON reports (one per store provider) side by side.

What is pinned: the JSON report records its store provider; per contract one table with the rows
aligned and one column group per report (headed by the store name, else the file stem); every
cell whose verdict differs is listed with the verdict per report; totals per report; exit 0 when
every report passed, 1 naming the failing ones, 2 with one line and no traceback for bad input;
long names are never cut on a narrow, non-tty output.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import pytest

import conformance
from conformance.cli import main
from conformance.model import NotApplicable
from conformance.report import SCHEMA_FILE, json_report, load_reports, render_comparison, store_of
from conformance.results import CellResult
from conformance.targets import REFERENCE_TARGET, load_target

ROOT = Path(__file__).resolve().parents[2]
CONTRACT_FILE = "contracts/responses/demo.yaml"
ANSI = re.compile(r"\x1b\[[0-9;]*m")

# (id, row, path, variant, source line): two rows, paths A and C, R1 varies stream on C
CELLS = [
    ("responses/demo::R1[A]", "R1", "A", "A", 10),
    ("responses/demo::R1[C,stream=false]", "R1", "C", "C,stream=false", 11),
    ("responses/demo::R1[C,stream=true]", "R1", "C", "C,stream=true", 11),
    ("responses/demo::R2[A]", "R2", "A", "A", 20),
]
NA = [NotApplicable("responses/demo", "R2", "C", "nothing to crash", f"{CONTRACT_FILE}:21")]


def cell(cell_id: str, verdict: str) -> CellResult:
    """A cell result as the plugin records it (plugin.py ``_record``)."""
    _, row, path, variant, line = next(c for c in CELLS if c[0] == cell_id)
    return CellResult(id=cell_id, contract="responses/demo", row=row, path=path, variant=variant,
                      level="MUST", fault="none", source=f"{CONTRACT_FILE}:{line}", verdict=verdict)


def write_report(path: Path, store: str | None, verdicts: dict[str, str] | None = None,
                 na: list[NotApplicable] = NA) -> Path:
    """A report written by the real json_report; every cell passes unless ``verdicts`` says otherwise."""
    verdicts = verdicts or {}
    target = SimpleNamespace(name="reference", source=str(REFERENCE_TARGET), store=store,
                             store_info={"name": store, "durable": store != "memory"} if store else {})
    settings = SimpleNamespace(target=target, tables=[SimpleNamespace(not_applicable=na)])
    results = [cell(c[0], verdicts.get(c[0], "pass")) for c in CELLS]
    path.write_text(json.dumps(json_report(settings, results, started=0.0)), encoding="utf-8")
    return path


def compare(capsys, *files: Path | str) -> tuple[int, str, str]:
    code = main(["report", "--no-color", *map(str, files)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def table_line(out: str, row: str, contract: str = "responses/demo") -> str:
    """The table line of ``row`` in the table printed under ``contract``."""
    section = out.split(contract, 1)[1]
    return next(line for line in section.splitlines() if re.match(rf"^│ {re.escape(row)}\s+│", line))


# -- the JSON report records its store -------------------------------------------------------
def test_json_report_records_the_store_given_with_store_option():
    target = load_target().with_store("sqlite")  # runs the reference target's store.describe
    assert store_of(target) == {"name": "sqlite", "info": target.store_info}
    assert target.store_info["name"] == "sqlite" and target.store_info["durable"] is True
    report = json_report(SimpleNamespace(target=target, tables=[]), [], started=0.0)
    assert report["store"]["name"] == "sqlite"
    for key in ("kit", "target", "started", "finished", "python", "totals", "passed", "cells", "not_applicable"):
        assert key in report


def test_json_report_without_store_records_the_declared_default_or_null(tmp_path):
    assert store_of(load_target()) == {"name": "file", "info": {}}  # the bundled target declares `file`
    target_file = tmp_path / "target.yaml"
    target_file.write_text(
        'command: "{python} -m reference_impl --port {port} --state-dir {state_dir}"\n'
        'profiles: [responses]\nstore: {args: [--store, "{store}"], default: file}\n'
    )
    assert store_of(load_target(target_file)) == {"name": "file", "info": {}}


def test_json_report_masks_a_password_in_the_store_spec():
    target = SimpleNamespace(store="postgres:dsn=postgresql://ci:s3cret@127.0.0.1:5432/db", store_info={})
    assert store_of(target)["name"] == "postgres:dsn=postgresql://ci:***@127.0.0.1:5432/db"


CONTRACT = """\
contract: responses/storedemo
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
"""


def test_plugin_writes_the_store_into_the_report_and_report_reads_it(tmp_path, capsys):
    """End to end: `pytest conformance --conformance-store sqlite --conformance-report` then `conformance report`."""
    contracts = tmp_path / "contracts" / "responses"
    contracts.mkdir(parents=True)
    (contracts / "storedemo.yaml").write_text(CONTRACT)
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    out = tmp_path / "conformance-sqlite.json"
    cmd = [sys.executable, "-m", "pytest", str(Path(conformance.__file__).parent), "-q", "-m", "conformance_cell",
           "--conformance-contracts", str(tmp_path / "contracts/**/*.yaml"), "--conformance-results", str(tmp_path / "results"),
           "--conformance-store", "sqlite", "--conformance-report", str(out)]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rep = json.loads(out.read_text())
    jsonschema.validate(rep, json.loads(SCHEMA_FILE.read_text()))
    assert rep["store"]["name"] == "sqlite" and rep["store"]["info"]["durable"] is True
    code, printed, err = compare(capsys, out)
    assert code == 0 and err == ""
    assert "sqlite" in printed and "responses/storedemo" in printed and "1 pass" in printed


# -- side by side --------------------------------------------------------------------------
def test_two_providers_side_by_side_list_the_difference_and_exit_1_naming_the_failing_one(tmp_path, capsys):
    default = write_report(tmp_path / "conformance.json", None)
    sqlite = write_report(tmp_path / "conformance-sqlite.json", "sqlite",
                          {"responses/demo::R1[C,stream=true]": "fail"})
    code, out, err = compare(capsys, default, sqlite)
    assert code == 1 and err == ""
    # one table for the contract, one column group per report: the file stem (no store), then the store
    assert out.count("responses/demo  ") == 1
    header = next(line for line in out.splitlines() if "conformance" in line and "sqlite" in line and "┃" in line)
    assert header.index("conformance") < header.index("sqlite")
    paths_line = out.splitlines()[out.splitlines().index(header) + 1]
    assert re.search(r"A\s+C.*A\s+C", paths_line), paths_line
    # rows aligned: each row is one line carrying both groups; R1[C] shows both variants
    r1, r2 = table_line(out, "R1"), table_line(out, "R2")
    assert re.search(r"✓\s+✓✓\s+│\s+✓\s+✓✗", r1), r1
    assert "≠" in r1 and "≠" not in r2
    assert r2.count("·") == 2  # R2 x C declared not applicable, in both groups
    # the differences list: the one differing cell, with each provider's verdict
    diff = out.split("differences:", 1)[1].split("failing:", 1)[0]
    assert "1 cell(s)" in diff
    line = next(ln for ln in diff.splitlines() if "responses/demo::" in ln)
    assert "responses/demo::R1[C,stream=true]" in line
    assert re.search(r"conformance ✓ pass\s+sqlite ✗ fail", line), line
    assert "R1[A]" not in diff and "R2[A]" not in diff
    # totals per provider, and the last line says which report failed
    totals = out.split("totals:", 1)[1]
    assert re.search(r"conformance\s+\S+conformance\.json\s+passed\s+4 pass; 1 not applicable", totals), totals
    assert re.search(r"sqlite\s+\S+conformance-sqlite\.json\s+FAILED\s+3 pass, 1 fail", totals), totals
    last = out.strip().splitlines()[-1]
    assert last.startswith("conformance report: 1 of 2 report(s) failed: sqlite (") and "1 fail" in last
    assert "✓ pass  ✗ MUST failed" in out  # the legend of render_matrix


def test_all_reports_passing_exit_0_and_no_differences(tmp_path, capsys):
    files = [write_report(tmp_path / f"conformance-{s}.json", s) for s in ("file", "sqlite", "postgres")]
    code, out, err = compare(capsys, *files)
    assert code == 0 and err == ""
    assert "differences: none (4 cell(s), the same verdict in every report)" in out
    assert "≠" not in table_line(out, "R1") and "failing:" not in out
    assert out.strip().splitlines()[-1] == "conformance report: 3 report(s), every one passed"


def test_not_claimed_versus_pass_is_listed_as_a_difference_and_still_passes(tmp_path, capsys):
    sqlite = write_report(tmp_path / "conformance-sqlite.json", "sqlite")
    memory = write_report(tmp_path / "conformance-memory.json", "memory",
                          {"responses/demo::R1[C,stream=false]": "not_claimed",
                           "responses/demo::R1[C,stream=true]": "not_claimed"})
    code, out, err = compare(capsys, sqlite, memory)
    assert code == 0 and err == ""
    diff_lines = [ln for ln in out.split("differences:", 1)[1].splitlines() if "responses/demo::" in ln]
    assert [ln.split()[0] for ln in diff_lines] == ["responses/demo::R1[C,stream=false]",
                                                   "responses/demo::R1[C,stream=true]"]
    assert all(re.search(r"sqlite ✓ pass\s+memory ∅ not_claimed", ln) for ln in diff_lines), diff_lines
    assert re.search(r"✓\s+✓✓\s+│\s+✓\s+∅∅", table_line(out, "R1"))
    assert "2 not_claimed" in out.split("totals:", 1)[1]


def test_a_cell_missing_from_one_report_shows_as_not_run(tmp_path, capsys):
    full = write_report(tmp_path / "conformance-file.json", "file")
    partial = json.loads(write_report(tmp_path / "conformance-sqlite.json", "sqlite").read_text())
    partial["cells"] = [c for c in partial["cells"] if c["row"] != "R2"]
    (tmp_path / "conformance-sqlite.json").write_text(json.dumps(partial))
    code, out, _ = compare(capsys, full, tmp_path / "conformance-sqlite.json")
    assert code == 0
    assert re.search(r"file ✓ pass\s+sqlite \? not_run", out)


def test_reports_with_the_same_label_are_told_apart(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    a = write_report(tmp_path / "x" / "run.json", None)
    b = write_report(tmp_path / "y" / "run.json", None)
    c = write_report(tmp_path / "one.json", "sqlite")
    d = write_report(tmp_path / "two.json", "sqlite")
    assert [r.label for r in load_reports([a, b, c, d])] == ["run #1", "run #2", "sqlite (one)", "sqlite (two)"]


def test_long_names_are_never_cut_on_a_narrow_non_tty_output(tmp_path):
    long_contract = "responses/" + "a-very-long-contract-name-" * 4
    cells = [dict(cell(c[0], "pass").to_dict(), contract=long_contract, id=c[0].replace("responses/demo", long_contract))
             for c in CELLS]
    data = json.loads(write_report(tmp_path / "x.json", None).read_text())
    data["cells"], data["not_applicable"] = cells, []
    store = "sqlite:path=/a/rather/long/path/to/a/database/file/that/does/not/fit/in/forty/columns.db"
    data["store"] = {"name": store, "info": {}}
    (tmp_path / "x.json").write_text(json.dumps(data))
    env = {**os.environ, "COLUMNS": "40"}
    proc = subprocess.run([sys.executable, "-m", "conformance", "report", str(tmp_path / "x.json")],
                          capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert store in proc.stdout and long_contract in proc.stdout and "…" not in proc.stdout
    assert not ANSI.search(proc.stdout)  # not a tty: no colour


def test_colour_only_when_asked_or_on_a_tty(tmp_path):
    reports = load_reports([write_report(tmp_path / "conformance-sqlite.json", "sqlite",
                                         {"responses/demo::R2[A]": "fail"})])
    assert ANSI.search(render_comparison(reports, color=True))
    assert not ANSI.search(render_comparison(reports, color=False))


# -- bad input: exit 2, one line, no traceback --------------------------------------------
BAD = {
    "missing": (None, "no such file"),
    "not_json": ("{not json", "not JSON (Expecting property name"),
    "binary": (b"\xff\xfe\x00", "not JSON"),
    "json_list": ("[1, 2]", "not a stream-task-conformance report"),
    "other_kit": ('{"kit": "pytest-json", "cells": []}', 'no "kit": "stream-task-conformance"'),
    "no_cells": ('{"kit": "stream-task-conformance", "passed": true}', '"cells" is not a list'),
    "cell_without_verdict": ('{"kit": "stream-task-conformance", "passed": true, "cells": [{"id": "a::R[A]"}]}',
                             'cells[0] has no "id" and "verdict" strings'),
    "unparsable_cell": ('{"kit": "stream-task-conformance", "passed": true, "cells": [{"id": "x", "verdict": "pass"}]}',
                        "cells[0]: cannot tell its contract"),
    "passed_not_bool": ('{"kit": "stream-task-conformance", "passed": "yes", "cells": []}',
                        '"passed" is not true or false'),
    "bad_not_applicable": ('{"kit": "stream-task-conformance", "passed": true, "cells": [], "not_applicable": [1]}',
                           "not_applicable[0]"),
    "bad_store": ('{"kit": "stream-task-conformance", "passed": true, "cells": [], "store": "sqlite"}',
                  '"store" is not'),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_exit_2_with_one_line(tmp_path, capsys, case):
    content, message = BAD[case]
    good = write_report(tmp_path / "good.json", "sqlite")
    bad = tmp_path / f"{case}.json"
    if isinstance(content, bytes):
        bad.write_bytes(content)
    elif content is not None:
        bad.write_text(content)
    code, out, err = compare(capsys, good, bad)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"conformance report: {bad}: ") and message in err, err


def test_a_directory_and_no_file_at_all_are_exit_2_with_one_line(tmp_path, capsys):
    code, out, err = compare(capsys, tmp_path)
    assert code == 2 and out == "" and err == f"conformance report: {tmp_path}: is a directory, not a JSON report\n"
    code, out, err = compare(capsys)
    assert code == 2 and out == "" and err.count("\n") == 1 and "no report files given" in err


def test_bad_input_through_the_console_entry_point_has_no_traceback(tmp_path):
    (tmp_path / "broken.json").write_text('{"kit": "stream-task-conformance", "passed": true, "cells": 3}')
    for args in ([str(tmp_path / "nope.json")], [str(tmp_path / "broken.json")], []):
        proc = subprocess.run([sys.executable, "-m", "conformance", "report", *args],
                              capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert proc.stdout == "" and len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr


def test_the_ci_step_is_in_place():
    """.ci/run compares the default report with every per-store report, through `run`."""
    script = (ROOT / ".ci" / "run").read_text()
    step = textwrap.dedent("""\
        reports=(.ci/out/conformance.json)
        for f in .ci/out/conformance-*.json; do
          if [ -f "$f" ]; then reports+=("$f"); fi
        done
        run conformance report "${reports[@]}"
        exit "$status"
        """)
    assert script.endswith(step)
