"""The shipped contracts and the schema: all load, ids unique, vocabulary in sync with the model."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from conformance.contract import (
    CAPABILITIES,
    CELL_SETTINGS,
    REQUEST_FIELDS,
    SCHEMA_PATH,
    SCRIPT_FIELDS,
    SERVER_MODES,
    collect_cells,
    load_contracts,
)
from conformance.checks.replay import REPLAY_OPTIONS, STREAM_OPTIONS, asserting_options
from conformance.history import CALL_NAMES, TERMINAL_STATUSES
from conformance.expectations.builtin import EXPECTATIONS
from conformance.model import LEVELS, PROCESS_FAULTS

EXPECTATION_KEYS = tuple(e.name for e in EXPECTATIONS)

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "contracts"
EXPECTED = {
    "responses/cancel", "responses/create", "responses/crosscutting", "responses/delete", "responses/errors", "responses/replay",
    "responses/resilience", "responses/stops", "responses/terminal", "responses/network", "invocations/network",
    "invocations/reconnect", "invocations/retention", "invocations/stops",
}


@pytest.fixture(scope="module")
def tables():
    return load_contracts(str(CONTRACTS))


def test_every_shipped_contract_loads_in_sorted_order(tables):
    assert {t.name for t in tables} >= EXPECTED
    assert [t.source for t in tables] == sorted(t.source for t in tables)
    assert load_contracts(str(CONTRACTS / "**" / "*.yaml")) and \
        [t.name for t in load_contracts(str(CONTRACTS / "**" / "*.yaml"))] == [t.name for t in tables]


def test_cell_ids_are_unique_and_every_table_has_cells(tables):
    cells = collect_cells(tables)
    assert len({c.id for c in cells}) == len(cells)
    assert all(t.cells for t in tables)


def test_every_cell_passes_the_depth_gate_and_has_a_source(tables):
    for cell in collect_cells(tables):
        counted = {
            k for k, v in cell.expect.items()
            if k != "status" and (k not in ("stream", "replay") or asserting_options(v))
        }
        assert counted, cell.id
        assert cell.level in LEVELS
        path, _, line = cell.source.rpartition(":")
        assert path.endswith(".yaml") and line.isdigit(), cell.source


def test_every_fault_cell_carries_evidence_that_the_fault_happened(tables):
    """A process-fault cell pins the exit mode, so a crash that never happened fails (docs/contracts.md Sources: weaknesses 2 and 3)."""
    for cell in collect_cells(tables):
        if cell.fault.kind in PROCESS_FAULTS:
            assert "exit" in cell.expect, cell.id
            assert "attempts" in cell.expect, cell.id


def test_scripts_are_deterministic(tables):
    for cell in collect_cells(tables):
        assert cell.script.get("delay_ms", 0) == 0, cell.id


STREAM = [(("stream", False),), (("stream", True),)]
"""The two variants of a row that varies stream."""
SOURCE_RE = re.compile(r"docs/[\w/.-]+\.md|issue \d+|\bB\d+\b|§\s?\d")
"""What names a source in a contract's header: a docs page (docs/contracts.md "Sources" states the
Azure rules), an issue, a B-rule or a section sign."""


def _variant_text(variant: tuple) -> str:
    return ",".join(f"{k}={'true' if v is True else 'false' if v is False else v}" for k, v in variant)


def assert_matrix(table, rows: list[str], paths: list[str], variants: dict[str, list[tuple]],
                  not_applicable: set[tuple[str, str, tuple]]) -> None:
    """The table has exactly these rows and paths, in order, and every row x path x variant
    (``variants[row]``, default: no vary) is exactly one cell or one not-applicable record;
    the not-applicable ones are exactly ``not_applicable`` (row, path, variant)."""
    assert table.row_ids == rows, table.name
    assert list(table.paths) == paths, table.name
    seen: Counter = Counter()
    declared_na: set[tuple[str, str, tuple]] = set()
    for cell in table.cells:
        seen[(cell.row, cell.path, cell.variant)] += 1
    for na in table.not_applicable:
        assert na.reason, (table.name, na)
        row_variants = variants.get(na.row, [()])
        named = [v for v in row_variants if v and na.reason.startswith(_variant_text(v) + ": ")]
        for variant in named or row_variants:
            seen[(na.row, na.path, variant)] += 1
            declared_na.add((na.row, na.path, variant))
    wanted = {(r, p, v) for r in rows for p in paths for v in variants.get(r, [()])}
    assert set(seen) == wanted, (table.name, sorted(set(seen) ^ wanted))
    assert [k for k, n in seen.items() if n != 1] == [], table.name
    assert declared_na == not_applicable, (table.name, sorted(declared_na ^ not_applicable))


def table_named(tables, name: str):
    return next(t for t in tables if t.name == name)


def test_create_table_rows_are_pinned(tables):
    """The create matrix (docs/contracts.md Sources): C1-C8, one cell each, store x background x stream."""
    table = table_named(tables, "responses/create")
    rows = [f"C{i}" for i in range(1, 9)]
    assert_matrix(table, rows, ["A"], {}, set())
    combos = {(c.request["store"], c.request["background"], c.request["stream"]) for c in table.cells}
    assert len(combos) == 8


def test_replay_table_rows_are_pinned(tables):
    table = table_named(tables, "responses/replay")
    assert_matrix(table, [f"P{i}" for i in range(1, 9)], ["A"], {"P5": STREAM}, set())


def test_cancel_table_rows_and_moments_are_pinned(tables):
    """BG / FG / FGX x created / held / terminal x stream: every one a cell, none waived."""
    table = table_named(tables, "responses/cancel")
    rows = ["BG", "FG", "FGX"]
    assert_matrix(table, rows, ["created", "held", "terminal"], {r: STREAM for r in rows}, set())
    assert all(c.fault.kind == "cancel" for c in table.cells)


def test_crosscutting_table_rows_are_pinned(tables):
    table = table_named(tables, "responses/crosscutting")
    assert_matrix(
        table, ["X1", "X2", "X3", "X4"], ["C", "M", "T"], {"X4": STREAM},
        {("X2", "M", ()), ("X2", "T", ()), ("X3", "M", ()), ("X4", "M", STREAM[0]), ("X4", "M", STREAM[1]),
         ("X4", "T", STREAM[0]), ("X4", "T", STREAM[1])},
    )


NETWORK_PATHS = ["RS", "CM", "CE", "ST", "SC", "SL", "RF", "RK"]


def test_responses_network_table_rows_are_pinned(tables):
    """issue 14: a background stream under every network fault but the slow reader (BG), the
    foreground reset as a disconnect (FG), the slow reader on a long stream (SR)."""
    table = table_named(tables, "responses/network")
    waived = {("FG", p, ()) for p in NETWORK_PATHS if p != "RS"} | {("SR", p, ()) for p in NETWORK_PATHS if p != "SL"}
    assert_matrix(table, ["BG", "FG", "SR"], NETWORK_PATHS, {}, waived | {("BG", "SL", ())})
    by_path = {c.path: c for c in table.cells if c.row == "BG"}
    for path, cell in by_path.items():  # a background run is untouched, and the client resumes to the end
        assert cell.expect["status"] == "completed" and cell.expect["reconnect"] == {"terminal": "response.completed"}
    assert by_path["RK"].fault.then == "sigkill" and by_path["RK"].expect["exit"] == "killed"
    [fg] = [c for c in table.cells if c.row == "FG"]
    assert fg.expect["status"] == "cancelled" and "disconnect" in fg.requires
    [slow] = [c for c in table.cells if c.row == "SR"]
    assert slow.expect["unblocked"] is True and slow.fault.param("bytes_per_s") == 2500


def test_invocations_network_table_rows_are_pinned(tables):
    """issue 14, invocations: the live GET of a resilient run under every network fault but the
    slow reader (R1), the slow reader on a long stream (SR)."""
    table = table_named(tables, "invocations/network")
    waived = {("SR", p, ()) for p in NETWORK_PATHS if p != "SL"} | {("R1", "SL", ())}
    assert_matrix(table, ["R1", "SR"], NETWORK_PATHS, {}, waived)
    for cell in table.cells:
        assert cell.expect["status"] == "completed", cell.id
        assert cell.expect["reconnect"] == {"terminal": "invocation.completed"}, cell.id
        assert cell.expect["cursor"] == {"terminal": "invocation.completed"}, cell.id
    [slow] = [c for c in table.cells if c.row == "SR"]
    assert slow.expect["unblocked"] is True


def test_terminal_table_rows_are_pinned(tables):
    """issue 17: every kind of end is replayed past its terminal (one_terminal), cancels twice included."""
    table = table_named(tables, "responses/terminal")
    assert_matrix(table, ["T1", "T2", "T3"], ["A", "C", "E", "K"], {}, {("T3", "C", ()), ("T3", "E", ())})
    assert all(c.expect.get("one_terminal") is True for c in table.cells)


def test_delete_table_rows_are_pinned(tables):
    """issue 17: DELETE on live (H) and terminal (A) responses of each kind."""
    table = table_named(tables, "responses/delete")
    rows = ["DB", "DF", "DX"]
    assert_matrix(table, rows, ["A", "H"], {r: STREAM for r in rows}, set())
    assert {c.fault.kind for c in table.cells if c.path == "H"} == {"delete"}


def test_stops_tables_rows_are_pinned(tables):
    """issue 17: every stop cause judged by the handler's markers, and a SIGTERM the handler outlives."""
    table = table_named(tables, "responses/stops")
    rows = ["S1", "S2", "S3", "S4"]
    assert_matrix(table, rows, ["B", "D", "E", "G"], {r: STREAM for r in rows},
                  {("S1", "D", STREAM[0]), ("S2", "D", STREAM[0])})
    inv = table_named(tables, "invocations/stops")
    assert_matrix(inv, ["N", "R", "NL", "RL"], ["B", "D", "E", "G"], {},
                  {("NL", "D", ()), ("RL", "D", ()), ("RL", "E", ())})
    for t in (table, inv):
        assert all("stopped" in c.expect for c in t.cells), t.name
        assert {c.fault.kind for c in t.cells if c.path == "G"} == {"drain"}


def test_errors_table_rows_are_pinned(tables):
    table = table_named(tables, "responses/errors")
    assert_matrix(table, ["E1", "E2", "E3"], ["A"], {"E1": STREAM}, set())
    by_row = {c.row: c for c in table.cells}
    # the mutants r-bad-id-accepted and r-query-twice-first-wins (bench/mutants.yaml) die on these
    assert by_row["E2"].expect["http"] == {"bad_id_get": 400}
    assert by_row["E2"].expect["error"]["bad_id_get"]["param"] == "response_id"
    assert by_row["E3"].expect["http"] == {"replay_cursor_twice": 400}
    assert by_row["E3"].expect["error"]["replay_cursor_twice"]["param"] == "starting_after"
    assert by_row["E3"].request["background"] is True and by_row["E3"].request["stream"] is True


def test_queue_table_cancels_a_queued_input(tables):
    """QC: §7.5 a cancelled queued input never runs (mutant i-cancel-queued-runs-handler)."""
    qc = [c for c in table_named(tables, "invocations/queue").cells if c.row == "QC"]
    assert [(c.path, c.fault.kind, c.fault.at) for c in qc] == [("Q", "queue", "held")]
    assert qc[0].expect["cancel_queued"] is True and qc[0].expect["status"] == "completed"


def test_fail_at_is_pinned_by_the_output_it_leaves(tables):
    """§3.2 fail_at 2 fails before delta 2, §7.4 keeps the output as of the end (mutant t-fail-at-late)."""
    f1 = next(c for c in table_named(tables, "invocations/lifecycle").cells if c.row == "F1" and c.path == "A")
    assert f1.script["fail_at"] == 2 and f1.expect["output_text"] == "a1:d0 a1:d1 "


def test_reconnect_table_rows_are_pinned(tables):
    table = table_named(tables, "invocations/reconnect")
    assert_matrix(table, ["H1"], ["A", "C"], {}, set())
    assert all(c.expect["resume"]["via"] == "reconnect" for c in table.cells)


def test_retention_table_rows_are_pinned(tables):
    table = table_named(tables, "invocations/retention")
    assert_matrix(table, ["W1", "W2"], ["A"], {}, set())


def test_every_contract_file_starts_with_a_header_naming_its_sources():
    """A table is only as good as the rules it encodes: each file opens with comment lines
    saying where they come from (docs pages, B-rules, issues)."""
    files = sorted(CONTRACTS.rglob("*.yaml")) + sorted(CONTRACTS.rglob("*.yml"))
    assert files
    for path in files:
        lines = path.read_text(encoding="utf-8").splitlines()
        assert lines and lines[0].startswith("# "), f"{path}:1: no header comment"
        header = []
        for line in lines:
            if not line.startswith("#") and line.strip():
                assert line.startswith("contract:"), f"{path}: the header comment must come before 'contract:'"
                break
            header.append(line)
        text = "\n".join(header)
        assert "Where the rules come from" in text, f"{path}: header does not say where the rules come from"
        assert SOURCE_RE.search(text), f"{path}: header names no source (docs page, rule id)"


def test_resilience_matrix_shape(tables):
    table = next(t for t in tables if t.name == "responses/resilience")
    assert list(table.paths) == ["A", "B", "C", "D", "E"]
    assert table.row_ids == ["R1", "R2", "R3", "R4", "R11-C1", "R11-C3"]
    # every row x path x stream is a cell or a declared not-applicable (a not-applicable that
    # covers one variant only says which, e.g. "stream=false: ...")
    for row in table.row_ids:
        for path in table.paths:
            covered = {dict(c.variant)["stream"] for c in table.cells if (c.row, c.path) == (row, path)}
            for n in table.not_applicable:
                if (n.row, n.path) == (row, path):
                    if n.reason.startswith("stream="):
                        covered.add(n.reason.startswith("stream=true"))
                    else:
                        covered.update({False, True})
            assert covered == {False, True}, (row, path)
    assert all(n.reason for n in table.not_applicable)
    # the crash matrix (docs/contracts.md Sources): rows 1, 2, 3, 4, 11 (cut points C1/C3) x A-E x stream, and exactly these
    # waived: D for a background non-stream create (nothing to drop), E for foreground rows
    bg = ["R1", "R2", "R11-C1", "R11-C3"]
    assert_matrix(
        table, ["R1", "R2", "R3", "R4", "R11-C1", "R11-C3"], ["A", "B", "C", "D", "E"],
        {r: STREAM for r in table.row_ids},
        {(r, "D", STREAM[0]) for r in bg} | {(r, "E", v) for r in ("R3", "R4") for v in STREAM},
    )


def test_recovered_output_is_pinned_exactly(tables):
    table = next(t for t in tables if t.name == "responses/resilience")
    cell = next(c for c in table.cells if c.name == "R11-C3[C,stream=true]")
    assert cell.expect["output_text"] == "a1:d0 a1:d1 a2:d2 a2:d3 a2:d4 a2:d5 "
    assert cell.expect["replay"]["reset_event"] == "a1:d0 a1:d1 "
    assert cell.requires == ("checkpoints", "resilient_background")


def test_schema_vocabulary_matches_the_model():
    schema = json.loads(SCHEMA_PATH.read_text())
    defs = schema["$defs"]
    cell_keys = set(defs["cell"]["properties"])
    assert cell_keys == set(EXPECTATION_KEYS) | set(CELL_SETTINGS)
    assert defs["cell"]["x-known"] == list(EXPECTATION_KEYS)
    expect = defs["cell"]["properties"]
    assert list(expect["http"]["properties"]) == list(CALL_NAMES)
    assert list(expect["content_type"]["properties"]) == list(CALL_NAMES)
    assert list(expect["error"]["properties"]) == list(CALL_NAMES) + ["response"]
    assert list(defs["request"]["properties"]) == list(REQUEST_FIELDS)
    assert list(defs["script"]["properties"]) == list(SCRIPT_FIELDS)
    assert list(defs["server"]["properties"]) == list(SERVER_MODES)
    assert defs["requires"]["items"]["enum"] == list(CAPABILITIES)
    assert defs["level"]["enum"] == list(LEVELS)
    # the stream / replay options are the ones their checker knows; terminal_status takes the
    # statuses a terminal event's response can carry
    assert list(expect["stream"]["properties"]) == list(STREAM_OPTIONS)
    assert list(expect["replay"]["properties"]) == list(REPLAY_OPTIONS)
    for key in ("stream", "replay"):
        assert set(expect[key]["properties"]["terminal_status"]["enum"]) == TERMINAL_STATUSES


def test_queue_table_queues_while_held_and_proves_every_crash(tables):
    """Every cell of invocations/queue POSTs its inputs while the first turn is held mid-group (so
    they stay queued until the fault), and every crash cell pins the exit mode and attempts."""
    table = next(t for t in tables if t.name == "invocations/queue")
    assert list(table.paths) == ["Q", "B", "C", "K"]
    assert table.row_ids == ["QN", "QR", "QC"]
    assert {(na.row, na.path) for na in table.not_applicable} == {("QC", "B"), ("QC", "C"), ("QC", "K")}
    for cell in (c for c in table.cells if c.row != "QC"):  # QC cancels its one queued input: test_queue_table_cancels_a_queued_input
        assert cell.expect["queue"] == {"inputs": 2}, cell.id
        assert cell.fault.at == "held" and cell.fault.kind in ("queue", "sigterm", "sigkill", "sigterm_then_sigkill"), cell.id
        assert cell.script["hold_at"] == 2 and cell.script["checkpoint_every"] == 2, cell.id
        assert {"steering", "checkpoints"} <= set(cell.requires), cell.id
        if cell.fault.kind != "queue":
            assert {"exit", "attempts", "cursor", "output_text"} <= set(cell.expect), cell.id
            want = "superseded" if cell.server.get("resilient_invocations") else "interrupted"
            assert cell.expect["status"] == want and cell.expect["cursor"] == {"terminal": f"invocation.{want}"}, cell.id

