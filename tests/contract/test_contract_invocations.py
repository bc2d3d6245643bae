"""The parser on invocations tables: profile-specific keys, calls, statuses, faults and cursors."""

from __future__ import annotations

import textwrap

import pytest

from conformance.contract import parse_contract
from conformance.errors import ContractError

HEAD = """\
contract: invocations/t
profile: invocations
defaults:
  script: {deltas: 6, hold_at: 3}
paths:
  A: {fault: none}
  C: {fault: sigkill, at: held}
  S: {fault: steer, at: held}
rows:
"""
GOOD_ROW = """\
  - id: R1
    title: ok
    server: {resilient_invocations: true}
    cells:
      A: {status: completed, output: full, readers: 3, cursor: {terminal: invocation.completed}, resume: {from: [seen, 0, {raw: abc}], via: query}, http: {live: 200, resume: [200, 400]}}
      C: {status: completed, attempts: 2, exit: killed, entry_modes: [fresh, recovered]}
      S: {status: superseded, steering: {inputs: 2}, http: {steer: 200}}
"""


def parse(rows: str, head: str = HEAD, name: str = "invocations/t.yaml"):
    return parse_contract(head + textwrap.dedent(rows), name)


def errors(rows: str, head: str = HEAD) -> list[str]:
    with pytest.raises(ContractError) as info:
        parse(rows, head)
    return [str(e) for e in info.value.errors]


def test_good_invocations_table_expands():
    table = parse(GOOD_ROW)
    cells = {c.path: c for c in table.cells}
    assert cells["A"].expect["resume"] == {"from": ["seen", 0, "abc"], "via": "query"}
    assert cells["A"].profile == "invocations" and cells["A"].requires == ("resilient_invocations",)
    assert cells["S"].fault.kind == "steer"


def row(cells: str, extra: str = "") -> str:
    return f"""\
  - id: R1
    title: t
{extra}    cells:
      A: {cells}
      C: {{not_applicable: n/a}}
      S: {{not_applicable: n/a}}
"""


@pytest.mark.parametrize(
    ("cell", "fragment"),
    [
        ("{status: completed, replay: {after: [start], gap_free: true}}", "expectation 'replay' does not apply to profile invocations"),
        ("{status: completed, stream: {terminal: x}}", "expectation 'stream' does not apply to profile invocations"),
        ("{status: completed, persisted: true}", "expectation 'persisted' does not apply"),
        ("{status: incomplete, output: full}", "status 'incomplete' is not a invocations status"),
        ("{status: completed, http: {delete: 200}}", "call 'delete' is not made by the invocations executor"),
        ("{status: completed, resume: {from: [-1]}}", "invalid cursor -1"),
        ("{status: completed, resume: {from: [{raw: seen}]}}", "raw cursor 'seen' would read as the token"),
        ("{status: completed, resume: {from: [start]}}", "invalid cursor 'start'"),
        ("{status: completed, output: full, http: {resume: 400}}", "add a resume expectation"),
        ("{status: completed, steering: true}", "steering expectations need a steer path"),
        ("{status: completed, readers: 1}", "below the minimum 2"),
        ("{status: completed, entry_modes: [sideways]}", "invalid value 'sideways'"),
        ("{status: completed, cursor: {terminal: response.completed}}", "does not match the pattern"),
        ("{status: completed, output: full, request: {stream: true}}", "invocations cells take no request fields"),
    ],
)
def test_invocations_cell_rules(cell, fragment):
    text = "\n".join(errors(row(cell)))
    assert fragment in text, text


def test_steer_path_needs_a_steering_expectation_and_a_held_trigger():
    rows = """\
  - id: R1
    title: t
    cells:
      A: {not_applicable: n/a}
      C: {not_applicable: n/a}
      S: {status: superseded, attempts: 1}
"""
    assert any("must judge it with a 'steering' expectation" in e for e in errors(rows))
    head = HEAD.replace("S: {fault: steer, at: held}", "S: {fault: steer, at: created}")
    rows = rows.replace("S: {status: superseded, attempts: 1}", "S: {status: superseded, steering: true}")
    assert any("a steer is only deterministic at 'held'" in e for e in errors(rows, head))


def test_row_level_profile_rules():
    text = "\n".join(errors(row("{status: completed, output: full}", "    server: {resilient_background: true}\n    vary: {stream: [true]}\n")))
    assert "server mode 'resilient_background' does not apply to profile invocations" in text
    assert "invocations rows take no 'vary'" in text


def test_faults_per_profile():
    head = HEAD.replace("S: {fault: steer, at: held}", "S: {fault: pause, at: held}")
    assert any("fault 'pause' does not apply to profile invocations" in e
               for e in errors(row("{status: completed, output: full}"), head))
    responses_head = HEAD.replace("invocations/t", "responses/t").replace("profile: invocations", "profile: responses")
    with pytest.raises(ContractError) as info:
        parse_contract(responses_head + row("{status: completed, output: full}"), "responses/t.yaml")
    assert any("fault 'steer' does not apply to profile responses" in str(e) for e in info.value.errors)


def test_responses_tables_reject_invocations_vocabulary():
    head = """\
contract: responses/t
profile: responses
paths:
  A: {fault: none}
rows:
"""
    rows = """\
  - id: R1
    title: t
    server: {resilient_invocations: true}
    cells:
      A: {status: interrupted, cursor: {terminal: invocation.completed}, http: {live: 200}, queue: {inputs: 2}}
"""
    with pytest.raises(ContractError) as info:
        parse_contract(head + rows, "responses/t.yaml")
    text = "\n".join(str(e) for e in info.value.errors)
    assert "expectation 'cursor' does not apply to profile responses" in text
    assert "status 'interrupted' is not a responses status" in text
    assert "call 'live' is not made by the responses executor" in text
    assert "server mode 'resilient_invocations' does not apply to profile responses" in text
    assert "expectation 'queue' does not apply to profile responses" in text


QUEUE_HEAD = HEAD.replace("S: {fault: steer, at: held}", "Q: {fault: queue, at: held}")


def test_queue_path_and_expectation():
    rows = """  - id: R1
    title: t
    requires: [steering, checkpoints]
    script: {checkpoint_every: 2, hold_at: 2}
    cells:
      A: {not_applicable: n/a}
      C: {status: interrupted, attempts: 1, exit: killed, queue: {inputs: 2}}
      Q: {status: superseded, queue: {inputs: 3}}
"""
    cells = {c.path: c for c in parse(rows, QUEUE_HEAD).cells}
    assert cells["Q"].fault.kind == "queue" and cells["Q"].fault.at == "held"
    assert cells["C"].expect["queue"] == {"inputs": 2} and cells["Q"].expect["queue"] == {"inputs": 3}
    assert cells["Q"].requires == ("checkpoints", "steering")


@pytest.mark.parametrize(
    ("cell", "fragment"),
    [
        ("{status: superseded, queue: {inputs: 0}}", "below the minimum 1"),
        ("{status: superseded, queue: {}}", "missing required key 'inputs'"),
        ("{status: superseded, queue: {inputs: 2, order: fifo}}", "unknown queue expectation 'order'"),
        ("{status: superseded, queue: 2}", "expected a mapping, got an integer 2"),
    ],
)
def test_queue_expectation_shape(cell, fragment):
    rows = f"""\
  - id: R1
    title: t
    cells:
      A: {{not_applicable: n/a}}
      C: {{not_applicable: n/a}}
      Q: {cell}
"""
    text = "\n".join(errors(rows, QUEUE_HEAD))
    assert fragment in text, text


def test_queue_fault_is_invocations_only():
    responses_head = QUEUE_HEAD.replace("invocations/t", "responses/t").replace("profile: invocations", "profile: responses")
    rows = """  - id: R1
    title: t
    cells:
      A: {status: completed, output: full}
      C: {not_applicable: n/a}
      Q: {not_applicable: n/a}
"""
    with pytest.raises(ContractError) as info:
        parse_contract(responses_head + rows, "responses/t.yaml")
    assert any("fault 'queue' does not apply to profile responses" in str(e) for e in info.value.errors)


@pytest.mark.parametrize(
    ("path", "cell", "why"),
    [
        ("A: {fault: none}", "{status: superseded, attempts: 1, queue: {inputs: 2}}", "a queue is POSTed while the first turn is held"),
        ("Q: {fault: queue, at: created}", "{status: superseded, attempts: 1, queue: {inputs: 2}}", "a queue is POSTed while the first turn is held"),
        ("Q: {fault: queue, at: held}", "{status: superseded, attempts: 1, cursor: {terminal: invocation.superseded}}", "must say how many with a queue expectation"),
        ("A: {fault: cancel, at: held}", "{status: completed, attempts: 1, cancel_queued: true}", "cancel_queued queues one input"),
        ("Q: {fault: queue, at: held}", "{status: completed, attempts: 1, cancel_queued: true, queue: {inputs: 2}}",
         "cancel_queued queues one input"),
    ],
)
def test_parser_refuses_a_queue_it_cannot_run_deterministically(path, cell, why):
    """A queue cell that could not be run deterministically fails the contract at load time
    (file:line), not the cell at run time."""
    head = f"""\
contract: invocations/t
profile: invocations
defaults:
  requires: [steering]
  script: {{deltas: 6, hold_at: 2}}
paths:
  {path}
rows:
"""
    pid = path.split(":")[0]
    text = "\n".join(errors(f"""\
  - id: R1
    title: t
    cells:
      {pid}: {cell}
""", head))
    assert why in text and "invocations/t.yaml:" in text, text


def test_executor_still_refuses_a_queue_cell_built_around_the_parser(tmp_path):
    """Defence in depth: a Cell made in code (not parsed) with a queue on a path that cannot
    hold is refused before the server starts, and the note fails the cell."""
    import dataclasses

    from conformance.checks import run_checks
    from conformance.executor import run_cell
    from conformance.model import FaultSpec
    from conformance.targets import load_target

    table = parse("""\
  - id: R1
    title: t
    requires: [steering, checkpoints]
    script: {checkpoint_every: 2, hold_at: 2}
    cells:
      A: {not_applicable: n/a}
      C: {not_applicable: n/a}
      Q: {status: superseded, queue: {inputs: 2}}
""", QUEUE_HEAD)
    (good,) = table.cells
    bad = dataclasses.replace(good, fault=FaultSpec(kind="none"))
    history = run_cell(bad, load_target(), tmp_path)
    assert any(n.startswith("not testable:") and "a queue is POSTed while the first turn is held" in n for n in history.notes), history.notes
    assert not history.incarnations  # refused before the server was started
    assert any(v.check == "notes" for v in run_checks(history, bad))
