"""The mutation runner (bench/mutate.py): loading, applying, and judging, with a fake pytest."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FAKE = Path(__file__).with_name("fake_pytest.py")


def _load():
    spec = importlib.util.spec_from_file_location("bench_mutate", ROOT / "bench" / "mutate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_mutate"] = module
    spec.loader.exec_module(module)
    return module


mutate = _load()


@pytest.fixture
def src(tmp_path: Path) -> Path:
    """A tiny stand-in repo: reference_impl/ with one module, and a base target file."""
    root = tmp_path / "src"
    (root / "reference_impl").mkdir(parents=True)
    (root / "reference_impl" / "__init__.py").write_text("")
    (root / "reference_impl" / "mod.py").write_text("def answer():\n    return 400\n")
    (root / "target.yaml").write_text("name: reference\ncommand: '{python} -m reference_impl --port {port}'\n")
    return root


def mutant(**kw):
    base = dict(id="m-one", rule="resp.cancel.failed", file="reference_impl/mod.py",
                old="    return 400\n", new="    return 200  # MUTANT_KILLS\n", why="answers 200")
    base.update(kw)
    return mutate.Mutant(**base)


def run(m, src: Path, **kw):
    return mutate.run_one(m, pytest_cmd=[sys.executable, str(FAKE)], src_root=src, base_target=src / "target.yaml", **kw)


def test_apply_plants_the_mutant_in_a_copy_only(src: Path, tmp_path: Path) -> None:
    dest = tmp_path / "copy"
    dest.mkdir()
    mutate.apply_mutant(mutant(), src, dest)
    assert "return 200" in (dest / "reference_impl" / "mod.py").read_text()
    assert "return 400" in (src / "reference_impl" / "mod.py").read_text()


@pytest.mark.parametrize(
    ("old", "new", "why"),
    [("    return 404\n", "    return 200\n", "not found"),
     ("return", "yield", "found 2 times"),
     ("    return 400\n", "    return (\n", "does not compile")],
)
def test_a_mutant_that_does_not_apply_is_refused(src: Path, tmp_path: Path, old: str, new: str, why: str) -> None:
    (src / "reference_impl" / "mod.py").write_text("def answer():\n    return 400\n\ndef other():\n    return 1\n")
    with pytest.raises(mutate.NotApplicable, match=why):
        mutate.apply_mutant(mutant(old=old, new=new), src, tmp_path)


def test_killed_names_the_killing_test_and_the_target_runs_the_copy(src: Path, tmp_path: Path, monkeypatch) -> None:
    argv_log = tmp_path / "argv"
    monkeypatch.setenv("FAKE_PYTEST_ARGV", str(argv_log))
    outcome = run(mutant(k="BG"), src, use_k=True, workers=2, extra=["-m", "conformance_cell"])
    assert outcome.verdict == "killed"
    assert outcome.killer == "contracts/responses/cancel.yaml::BG[held,stream=true]"
    argv = argv_log.read_text().split()
    assert argv[0] == "conformance" and "-x" in argv and argv[argv.index("-k") + 1] == "BG"
    assert argv[argv.index("-n") + 1] == "2" and argv[-2:] == ["-m", "conformance_cell"]


def test_survived_when_every_test_passes(src: Path) -> None:
    outcome = run(mutant(new="    return 400  # harmless\n"), src)
    assert outcome.verdict == "survived" and outcome.killer is None


def test_not_applicable_is_an_error_never_a_verdict(src: Path) -> None:
    outcome = run(mutant(old="    return 999\n"), src)
    assert outcome.verdict == "error" and "not applicable" in outcome.detail


def test_xdist_stop_after_a_failure_is_a_kill(src: Path, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_PYTEST_MODE", "xdist-x")
    assert run(mutant(), src).verdict == "killed"


@pytest.mark.parametrize(("mode", "why"), [("crash", "exit 3"), ("usage", "exit 4"), ("interrupted", "exit 2"),
                                           ("fail-unnamed", "without naming a test"), ("no-tests", "ran no test")])
def test_pytest_that_cannot_judge_is_an_error(src: Path, monkeypatch, mode: str, why: str) -> None:
    monkeypatch.setenv("FAKE_PYTEST_MODE", mode)
    outcome = run(mutant(), src)
    assert outcome.verdict == "error" and why in outcome.detail


def test_control_run_uses_the_unmutated_copy(src: Path) -> None:
    assert run(mutant(), src, plant=False).verdict == "survived"


def test_failed_tests_prefers_the_cell_id(tmp_path: Path) -> None:
    junit = tmp_path / "j.xml"
    result = json.dumps({"id": "responses/cancel::BG[held,stream=true]"}).replace('"', "&quot;")
    junit.write_text(
        '<testsuites><testsuite><testcase classname="contracts.responses.cancel.yaml" name="BG[held,stream=true]">'
        f'<properties><property name="conformance_result" value="{result}" /></properties><failure/></testcase>'
        '<testcase classname="conformance.suites.test_adversarial_responses" name="test_x[bad_ids]"><error/></testcase>'
        "</testsuite></testsuites>")
    assert mutate.failed_tests(junit) == ["responses/cancel::BG[held,stream=true]",
                                          "conformance/suites/test_adversarial_responses.py::test_x[bad_ids]"]


@pytest.mark.parametrize(
    ("text", "message"),
    [("- {id: a, rule: r, file: reference_impl/x.py, old: a, new: b, why: w, colour: red}\n", ":1: unknown key 'colour'"),
     ("- {id: a, rule: r, file: reference_impl/x.py, old: a, new: b, why: w}\n"
      "- {id: a, rule: r, file: reference_impl/x.py, old: a, new: c, why: w}\n", ":2: duplicate id 'a' (first at line 1)"),
     ("- {id: a, rule: r, file: ../x.py, old: a, new: b, why: w}\n", ":1: mutant 'a': file must be under reference_impl/"),
     ("- {id: a, rule: r, file: reference_impl/x.py, old: a, new: b}\n", ":1: 'why' must be a non-empty string"),
     ("- {id: a, rule: r, file: reference_impl/x.py, old: a, new: b, why: w, ci: true}\n", "a ci mutant needs a 'k'"),
     ("- {id: a\n", "YAML error"),
     ("{}\n", ":1: expected a list of mutants")],
)
def test_bad_mutants_file_is_one_error_line(tmp_path: Path, capsys, text: str, message: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(mutate.MutantsFileError, match="m.yaml"):
        mutate.load_mutants(path)
    assert mutate.main(["--mutants", str(path), "--list"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ERROR: ") and message in err and len(err.strip().splitlines()) == 1


def test_main_reports_text_and_json(tmp_path: Path, capsys) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        "- {id: kills, rule: r.one, file: reference_impl/cursors.py, why: w,\n"
        "   old: 'CEILING_DIGITS = 18', new: 'CEILING_DIGITS = 18  # MUTANT_KILLS'}\n"
        "- {id: lives, rule: r.two, file: reference_impl/cursors.py, why: w,\n"
        "   old: 'CEILING_DIGITS = 18', new: 'CEILING_DIGITS = 18  # harmless'}\n"
        "- {id: stale, rule: r.three, file: reference_impl/cursors.py, why: w, old: 'no such text', new: x}\n")
    report = tmp_path / "r.json"
    assert mutate.main(["--mutants", str(path), "--json", str(report), "--pytest", str(FAKE)]) == 1
    out = capsys.readouterr().out
    assert "killed   kills" in out and "survived lives" in out and "error    stale" in out
    data = json.loads(report.read_text())
    assert data["totals"] == {**data["totals"], "killed": 1, "survived": 1, "error": 1, "detection_rate": 0.5}
    assert [m["verdict"] for m in data["mutants"]] == ["killed", "survived", "error"]
    assert data["mutants"][0]["killer"].endswith("BG[held,stream=true]")


def test_the_repo_set_applies_covers_both_profiles_and_names_documented_rules() -> None:
    mutants = mutate.load_mutants(mutate.MUTANTS_FILE)
    assert len(mutants) >= 30
    assert mutate.check_all(mutants) == 0
    files = {m.file for m in mutants}
    assert {"reference_impl/responses.py", "reference_impl/invocations.py", "reference_impl/sessions.py"} <= files
