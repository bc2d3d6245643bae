"""The contract parser: every rule reports the exact file:line and key, good files expand right."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.contract import collect_cells, load_contract, load_contracts, parse_contract
from conformance.errors import ContractError, ContractNotFoundError, KitError
from conformance.model import Cell, FaultSpec

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> str:
    return str(FIXTURES / f"{name}.yaml")


def problems(name: str) -> list[ContractError]:
    with pytest.raises(ContractError) as info:
        load_contract(fixture(name))
    return info.value.errors


def only_problem(name: str) -> ContractError:
    errors = problems(name)
    assert len(errors) == 1, [str(e) for e in errors]
    return errors[0]


def assert_at(err: ContractError, name: str, line: int, key: str | None, *fragments: str) -> None:
    assert err.file == fixture(name)
    assert err.line == line, str(err)
    assert err.key == key, str(err)
    text = str(err)
    prefix = f"{fixture(name)}:{line}: " + (f"{key}: " if key else "")
    assert text.startswith(prefix), text
    for fragment in fragments:
        assert fragment in text, text


# -- one test per rule -----------------------------------------------------------------------
def test_unknown_key_names_the_key_and_the_known_ones():
    err = only_problem("unknown_key")
    assert_at(err, "unknown_key", 7, "rows[0].titel", "unknown row key 'titel'", "known: id, title")


def test_unknown_top_level_key_is_an_error_not_a_warning():
    errors = problems("bad_faults")
    assert_at(errors[0], "bad_faults", 3, "script_comment", "unknown key 'script_comment'")


def test_unknown_expectation_lists_the_vocabulary_and_nothing_else():
    err = only_problem("unknown_expectation")
    assert_at(err, "unknown_expectation", 11, "rows[0].cells.A.outptu",
              "unknown expectation 'outptu' (known: status, http, content_type")


def test_unknown_path_lists_the_declared_paths():
    err = only_problem("unknown_path")
    assert_at(err, "unknown_path", 15, "rows[0].cells.D", "unknown path 'D' (declared paths: A, B, C)")


def test_duplicate_row_id_points_at_the_second_and_names_the_first():
    err = only_problem("duplicate_id")
    assert_at(err, "duplicate_id", 10, "rows[1].id", "duplicate row id 'R1' (first at line 6)")


def test_duplicate_yaml_key_is_an_error_not_a_silent_overwrite():
    err = only_problem("duplicate_key")
    assert_at(err, "duplicate_key", 10, None, "duplicate key 'A' (first at line 9)")


def test_vary_must_name_a_request_field():
    err = only_problem("bad_vary")
    assert_at(err, "bad_vary", 8, "rows[0].vary.strem", "'strem', which is not a request field", "stream")


def test_when_overlap_and_vary_override_are_errors():
    errors = problems("bad_when")
    assert [(e.line, e.key) for e in errors] == [
        (12, "rows[0].cells.A[1].when.store"),
        (13, "rows[0].cells.A[2]"),
        (14, "rows[0].cells.A[3].request.stream"),
    ]
    assert "does not vary" in errors[0].message
    assert "already covered by the entry at line 11" in errors[1].message


def test_completeness_gate_missing_path_and_missing_variant():
    errors = problems("missing_cell")
    assert len(errors) == 2
    assert_at(errors[0], "missing_cell", 11, "rows[0].cells", "completeness gate", "no cell for path C",
              "not_applicable")
    assert_at(errors[1], "missing_cell", 18, "rows[1].cells.C", "completeness gate",
              "variant stream=false of path C has no cell")


def test_depth_gate_rejects_a_bare_status_and_a_replay_that_asserts_nothing():
    errors = problems("bare_status")
    assert len(errors) == 2
    assert_at(errors[0], "bare_status", 10, "rows[0].cells.A", "depth gate", "bare status proves nothing")
    assert_at(errors[1], "bare_status", 11, "rows[0].cells.B", "depth gate")


def test_depth_gate_counts_a_stream_with_every_option_off_as_absent():
    """`stream: {order: false}` checks nothing a conforming stream could fail; `terminal: null`
    (no terminal came) and `terminal_status` do assert, so those cells load."""
    errors = problems("hollow_stream")
    assert len(errors) == 2, [str(e) for e in errors]
    assert_at(errors[0], "hollow_stream", 12, "rows[0].cells.A", "depth gate: this cell asserts only a status",
              "stream turns every option off: order: false")
    assert_at(errors[1], "hollow_stream", 16, "rows[1].cells.A", "depth gate",
              "order: false, single_created: false")


def test_depth_gate_counts_a_replay_with_every_check_off_as_absent():
    """`replay: {after: [start], single_created: false}` only names cursors; a replay with one
    option on, or with terminal_status, counts."""
    errors = problems("hollow_replay")
    assert len(errors) == 2, [str(e) for e in errors]
    assert_at(errors[0], "hollow_replay", 13, "rows[0].cells.A", "depth gate: this cell asserts only a status",
              "replay turns every option off: single_created: false")
    assert_at(errors[1], "hollow_replay", 17, "rows[1].cells.A", "depth gate: this cell asserts nothing",
              "gap_free: false, single_created: false, reset_event: false, keeps_live: false")


def test_terminal_status_needs_a_terminal_event_with_a_response():
    errors = problems("terminal_status_conflict")
    assert len(errors) == 3, [str(e) for e in errors]
    assert_at(errors[0], "terminal_status_conflict", 14, "rows[0].cells.A.stream.terminal_status",
              "terminal: null expects no terminal event")
    assert_at(errors[1], "terminal_status_conflict", 18, "rows[1].cells.A.replay.terminal_status",
              "terminal: 'error' is an error event")
    assert_at(errors[2], "terminal_status_conflict", 22, "rows[2].cells.A.stream.terminal_status",
              "invalid value 'in_progress'", "completed, failed, cancelled, incomplete")


def test_not_applicable_needs_a_reason():
    err = only_problem("na_no_reason")
    assert_at(err, "na_no_reason", 11, "rows[0].cells.B.not_applicable", "needs a reason")


def test_not_applicable_cell_has_no_expectations():
    err = only_problem("na_with_expectations")
    assert_at(err, "na_with_expectations", 11, "rows[0].cells.B", "must have no expectations", "attempts")


def test_yaml_syntax_error_has_its_line():
    err = only_problem("syntax_error")
    assert_at(err, "syntax_error", 5, None, "YAML syntax error", "started at line 4")


def test_fault_rules_all_reported_together_sorted_by_line():
    errors = problems("bad_faults")
    assert [(e.line, e.key) for e in errors] == [
        (3, "script_comment"),
        (5, "paths.A.fault"),
        (6, "paths.B"),
        (7, "paths.C.at"),
        (8, "paths.D.at.after_events"),
        (9, "paths.E.at"),
    ]
    messages = [e.message for e in errors]
    assert "unknown fault kind 'explode'" in messages[1]
    assert "needs a trigger" in messages[2]
    assert "unknown trigger 'whenever'" in messages[3]
    assert "after_events needs N >= 1" in messages[4]
    assert "takes no trigger" in messages[5]


def test_call_names_must_be_known():
    errors = problems("bad_calls")
    assert [(e.line, e.key) for e in errors] == [
        (10, "rows[0].cells.A.http.creat"),
        (11, "rows[0].cells.A.content_type.stream"),
        (12, "rows[0].cells.A.error.respons"),
    ]
    assert "unknown call 'creat'" in errors[0].message
    assert "response" in errors[2].message  # `error` also accepts the response itself


def test_replay_cursors_are_start_mid_ints_or_raw():
    errors = problems("bad_cursor")
    assert [(e.line, e.key) for e in errors] == [
        (14, "rows[0].cells.A.replay.after[1]"),
        (15, "rows[0].cells.A.replay.after[2]"),
        (16, "rows[0].cells.A.replay.after[3]"),
        (17, "rows[0].cells.A.replay.after[4]"),
    ]
    assert all("invalid cursor" in e.message for e in errors[:3])
    assert "would read as the token 'mid'" in errors[3].message


def test_cells_that_could_not_run_are_rejected():
    errors = problems("unrunnable")
    text = "\n".join(str(e) for e in errors)
    assert "only a cancel path makes" in text
    assert "'exit' needs a process fault" in text
    assert "no hold_at: the trigger would never fire" in text
    assert "'stream' expectations need stream=true" in text
    assert "needs stream=true (restrict the cell with when" in text
    assert "nothing to disconnect" in text
    assert {e.line for e in errors} == {12, 13, 14}


def test_contract_name_must_match_profile_and_file_stem():
    err = only_problem("wrong_name")
    assert_at(err, "wrong_name", 1, "contract", "must be 'responses/wrong_name'")


def test_aggregate_error_prints_one_line_per_problem():
    with pytest.raises(ContractError) as info:
        load_contract(fixture("bad_faults"))
    lines = str(info.value).splitlines()
    assert len(lines) == 6
    assert all(line.startswith(fixture("bad_faults") + ":") for line in lines)
    assert isinstance(info.value, KitError)


def test_empty_and_non_mapping_documents():
    with pytest.raises(ContractError, match=r"x\.yaml:1: empty contract file"):
        parse_contract("# nothing\n", "x.yaml")
    with pytest.raises(ContractError, match=r"x\.yaml:1: a contract is a mapping"):
        parse_contract("- a\n- b\n", "x.yaml")


def test_schema_type_errors_are_readable():
    text = "contract: responses/x\nprofile: responses\npaths:\n  A: {fault: none}\nrows:\n" \
           "  - id: R1\n    title: t\n    cells:\n      A: {attempts: two, output: most}\n"
    with pytest.raises(ContractError) as info:
        parse_contract(text, "x.yaml")
    lines = str(info.value).splitlines()
    assert "x.yaml:9: rows[0].cells.A.attempts: expected an integer, got text 'two'" in lines
    assert "x.yaml:9: rows[0].cells.A.output: invalid value 'most' (expected one of: full, empty, streamed)" in lines


def test_missing_file_is_its_own_error():
    with pytest.raises(ContractNotFoundError):
        load_contract(FIXTURES / "no_such.yaml")
    with pytest.raises(ContractNotFoundError, match="no contract file matches"):
        load_contracts(str(FIXTURES / "nothing*.yaml"))


# -- the good fixture expands as documented ----------------------------------------------------
@pytest.fixture(scope="module")
def good():
    return load_contract(fixture("good"))


def by_name(table, name: str) -> Cell:
    return next(c for c in table.cells if c.name == name)


def test_good_fixture_expands_rows_paths_and_variants(good):
    assert good.name == "responses/good" and good.profile == "responses" and good.level == "MUST"
    assert good.row_ids == ["R1", "R3"]
    assert [c.name for c in good.cells] == [
        "R1[A,stream=false]", "R1[A,stream=true]", "R1[C,stream=false]", "R1[C,stream=true]",
        "R1[D,stream=true]", "R3[A]", "R3[C]",
    ]
    assert good.paths["D"] == FaultSpec(kind="disconnect", at="after_events", after_events=3)
    assert good.paths["C"] == FaultSpec(kind="sigkill", at="held")


def test_good_fixture_merges_defaults_row_cell(good):
    cell = by_name(good, "R1[C,stream=true]")
    assert cell.id == "responses/good::R1[C,stream=true]"
    assert cell.variant == (("stream", True),)
    assert cell.request == {"store": True, "background": True, "stream": True}
    assert cell.script == {"deltas": 4, "delay_ms": 0, "hold_at": 1, "checkpoint_every": 2}
    assert cell.requires == ("checkpoints", "resilient_background")
    assert cell.server == {"resilient_background": True}
    assert cell.expect["replay"]["after"] == ["start", "mid", 0, "abc"]  # {raw: abc} is sent verbatim
    assert cell.source == f"{fixture('good')}:23"
    assert type(cell.expect["replay"]) is dict  # plain data, no line bookkeeping


def test_good_fixture_null_removes_a_script_key(good):
    assert "hold_at" not in by_name(good, "R1[A,stream=false]").script


def test_levels_cell_over_row_over_file(good):
    assert by_name(good, "R1[C,stream=false]").level == "SHOULD"  # cell
    assert by_name(good, "R1[C,stream=true]").level == "MUST"  # file
    assert by_name(good, "R3[A]").level == "SHOULD"  # row


def test_not_applicable_entries_keep_reason_and_source(good):
    reasons = {(n.row, n.path): n for n in good.not_applicable}
    assert reasons[("R3", "D")].reason == "covered elsewhere"
    assert reasons[("R1", "D")].reason == "stream=false: no open connection"
    assert reasons[("R1", "D")].source == f"{fixture('good')}:26"


def test_cell_notes_fall_back_to_row_notes(good):
    assert by_name(good, "R1[D,stream=true]").notes == "B18"


def test_collect_cells_rejects_duplicate_ids(good):
    with pytest.raises(ContractError, match="duplicate cell id 'responses/good::R1"):
        collect_cells([good, good])


def test_network_fault_rules_each_have_their_line():
    """issue 14: parameters of stall / slow_reader, none for the others, ``then`` only after a
    network fault, a live stream to fault (not at 'terminal', when it is over), and ``unblocked`` / ``exit`` only where they apply."""
    name = "bad_net_faults"
    got = [(e.line, e.key, e.message) for e in problems(name)]
    text = "\n".join(f"{line} {key}: {msg}" for line, key, msg in got)
    for fragment in (
        "8 paths.S0.fault.stall: stall needs seconds: a number > 0, got 0",
        "8 paths.S0.fault.stall.then: stall then must be resume or close, got 'maybe'",
        "9 paths.S1.fault: fault 'stall' needs parameters: fault: {stall: {seconds: a number > 0",
        "10 paths.W.fault.slow_reader.burst: unknown slow_reader parameter 'burst' (known: bytes_per_s)",
        "11 paths.X.fault.reset: fault 'reset' takes no parameters (write fault: reset)",
        "12 paths.Y.then: then (a process fault while the client is away) follows a network fault",
        "27 rows[0].cells.R[0]: [stream=false] path R is a network fault (reset) on the live stream's connection, "
        "which needs stream=true",
        "28 rows[0].cells.R[1].unblocked: [stream=true] 'unblocked' needs a slow_reader path (path R is 'reset')",
        "28 rows[0].cells.R[1].exit: [stream=true] 'exit' needs a process fault, path R is 'reset'",
        "34 rows[0].cells.T[1]: [stream=true] path T is a network fault (reset) at 'terminal': the live stream is over "
        "by then, so there is nothing to fault (use held or after_events)",
    ):
        assert fragment in text, text
    assert len(got) == 10, text  # a slow reader with unblocked and reconnect is fine


def test_network_fault_paths_expand_with_their_parameters(tmp_path):
    path = tmp_path / "responses" / "net.yaml"
    path.parent.mkdir()
    path.write_text(
        "# Where the rules come from: issue 14\n"
        "contract: responses/net\nprofile: responses\n"
        "defaults: {request: {store: true, background: true, stream: true}, script: {deltas: 4, hold_at: 1}}\n"
        "paths:\n"
        "  ST: {fault: {stall: {seconds: 1.5}}, at: held}\n"
        "  RK: {fault: reset, at: {after_events: 2}, then: sigkill}\n"
        "rows:\n"
        "  - id: A\n    title: t\n    cells:\n"
        "      ST: {status: completed, output: full}\n"
        "      RK: {status: completed, attempts: 2, exit: killed, reconnect: {terminal: response.completed}}\n"
    )
    table = load_contract(str(path))
    st, rk = (next(c for c in table.cells if c.path == p) for p in ("ST", "RK"))
    assert st.fault == FaultSpec(kind="stall", at="held", params=(("seconds", 1.5), ("then", "resume")))
    assert st.fault.param("seconds") == 1.5 and st.fault.is_net_fault
    assert rk.fault == FaultSpec(kind="reset", at="after_events", after_events=2, then="sigkill")
    assert (st.fault.describe(), rk.fault.describe()) == ("stall(seconds=1.5,then=resume)@held", "reset@after_events:2+sigkill")
