"""Typed results and the versioned JSON report: what travels from an xdist worker to the
controller is a CellResult / SuiteResult (rebuilt exactly from its JSON), and a report that
breaks the documented layout (conformance/schema/report.schema.json) fails validation."""

from __future__ import annotations

import copy
import json
from types import SimpleNamespace

import jsonschema
import pytest

from conformance.model import NotApplicable
from conformance.report import SCHEMA_FILE, SCHEMA_VERSION, ReportError, json_report, load_report
from conformance.results import CellResult, SuiteResult

SCHEMA = json.loads(SCHEMA_FILE.read_text())

RAN = CellResult(id="responses/demo::R1[C,stream=true]", contract="responses/demo", row="R1", path="C",
                 variant="C,stream=true", level="MUST", fault="sigkill@delta:2", source="contracts/demo.yaml:11",
                 verdict="fail", violations=["attempts: expected 2, got 1"], duration_s=1.5,
                 history="/tmp/h.json", incarnations=2, ready_s=[0.2, 0.3], script={"deltas": 3})
SKIPPED = CellResult(id="responses/demo::R2[A]", contract="responses/demo", row="R2", path="A", variant="A",
                     level="SHOULD", fault="none", source="contracts/demo.yaml:20", verdict="not_claimed",
                     missing=["cancel"])
SUITE = SuiteResult(id="conformance/suites/test_x_responses.py::test_y", verdict="warn", should=["rule: example"])


def a_report() -> dict:
    target = SimpleNamespace(name="reference", source="conformance/targets/reference.yaml", store=None,
                             store_default="file")
    na = [NotApplicable("responses/demo", "R2", "C", "nothing to crash", "contracts/demo.yaml:21")]
    settings = SimpleNamespace(target=target, tables=[SimpleNamespace(not_applicable=na)], strict=False)
    return json.loads(json.dumps(json_report(settings, [RAN, SKIPPED], started=0.0, suites=[SUITE])))


@pytest.mark.parametrize("record", [RAN, SKIPPED, SUITE])
def test_a_result_survives_the_trip_from_worker_to_controller(record):
    assert type(record).from_json(record.to_json()) == record


def test_unset_optional_fields_are_left_out_of_the_report_entry():
    assert SKIPPED.to_dict() == {"id": SKIPPED.id, "contract": "responses/demo", "row": "R2", "path": "A",
                                 "variant": "A", "level": "SHOULD", "fault": "none",
                                 "source": "contracts/demo.yaml:20", "verdict": "not_claimed", "missing": ["cancel"]}


def test_an_unknown_field_is_refused_not_dropped():
    with pytest.raises(ValueError, match="unknown field"):
        CellResult.from_dict({**RAN.to_dict(), "colour": "red"})


def test_the_report_is_versioned_and_valid_against_its_schema():
    report = a_report()
    assert report["schema_version"] == SCHEMA_VERSION == 1
    jsonschema.validate(report, SCHEMA)
    assert report["cells"][0] == RAN.to_dict() and report["suites"] == [SUITE.to_dict()]


@pytest.mark.parametrize("breakage", [
    lambda r: r.pop("schema_version"),
    lambda r: r.update(schema_version=2),
    lambda r: r["cells"][0].pop("verdict"),
    lambda r: r["cells"][0].pop("contract"),
    lambda r: r["cells"][0].update(level="MAYBE"),
    lambda r: r["suites"][0].pop("id"),
    lambda r: r.update(passed="yes"),
    lambda r: r["store"].pop("info"),
    lambda r: r["not_applicable"][0].pop("reason"),
    lambda r: r["totals"].update(fail=-1),
], ids=["no-version", "version-2", "cell-no-verdict", "cell-no-contract", "bad-level", "suite-no-id",
        "passed-not-bool", "store-no-info", "na-no-reason", "negative-total"])
def test_a_broken_report_fails_the_schema(breakage):
    report = copy.deepcopy(a_report())
    breakage(report)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(report, SCHEMA)


def test_conformance_report_refuses_another_schema_version(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({**a_report(), "schema_version": 2}))
    with pytest.raises(ReportError, match='"schema_version" is 2; this kit reads version 1'):
        load_report(path)
    path.write_text(json.dumps({k: v for k, v in a_report().items() if k != "schema_version"}))
    assert load_report(path).cells[0].row == "R1"  # a report from before versioning reads as version 1
