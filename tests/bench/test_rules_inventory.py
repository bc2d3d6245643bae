"""docs/rules.md, the rule inventory, stays true: every cell and suite test it names exists,
every rule has a cell or test that would fail (or a stated reason why none can), and every
mutant of bench/mutants.yaml names a rule of it."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from conformance.contract import load_contracts

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "docs" / "rules.md"
ROW_RE = re.compile(r"^\| `([a-z][a-z0-9.-]+)` \|(.*)$")
CELL_RE = re.compile(r"`((?:responses|invocations)/[a-z_]+)::([A-Za-z0-9_.-]+)`")
TEST_RE = re.compile(r"`(test_[a-z_0-9]+)(?:\[[a-z_]+\])?`")


def _sections() -> tuple[dict[str, str], dict[str, str]]:
    """(rule id -> its row text) for the covered tables, and for the 'no cell' table."""
    covered: dict[str, str] = {}
    uncovered: dict[str, str] = {}
    target = covered
    for line in RULES.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            target = uncovered if "no cell" in line else covered
        match = ROW_RE.match(line)
        if match:
            assert match.group(1) not in target, f"rule {match.group(1)} listed twice"
            target[match.group(1)] = match.group(2)
    return covered, uncovered


def test_every_named_cell_row_and_suite_test_exists() -> None:
    tables = {t.name: set(t.row_ids) for t in load_contracts(str(ROOT / "contracts"))}
    suites = "\n".join(p.read_text() for p in (ROOT / "conformance" / "suites").glob("*.py"))
    text = RULES.read_text(encoding="utf-8")
    for table, row in CELL_RE.findall(text):
        assert table in tables, f"docs/rules.md names {table}, which is no contract table"
        assert row in tables[table], f"docs/rules.md names {table}::{row}, which is no row of it"
    for name in TEST_RE.findall(text):
        assert f"def {name}(" in suites, f"docs/rules.md names {name}, which is no suite test"


def test_every_rule_has_a_cell_or_a_reason() -> None:
    covered, uncovered = _sections()
    assert len(covered) >= 60
    for rule, row in covered.items():
        named = CELL_RE.search(row) or TEST_RE.search(row) or "every " in row
        assert named or rule in uncovered, f"rule {rule} names no cell and no reason in 'Rules no cell covers'"
    for rule, row in uncovered.items():
        assert len(row.split("|")[1].strip()) > 20, f"rule {rule}: the reason is missing"


def test_every_mutant_names_a_rule_of_the_inventory() -> None:
    covered, uncovered = _sections()
    mutants = yaml.safe_load((ROOT / "bench" / "mutants.yaml").read_text(encoding="utf-8"))
    missing = sorted({m["rule"] for m in mutants} - set(covered) - set(uncovered))
    assert not missing, f"rules named by mutants but not in docs/rules.md: {missing}"
    listed = {m for row in covered.values() for m in re.findall(r"`([rit]-[a-z0-9-]+)`", row)}
    assert listed == {m["id"] for m in mutants}, sorted(listed ^ {m["id"] for m in mutants})
