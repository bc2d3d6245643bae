"""Parser rules of the drain and delete faults and the stopped / one_terminal / after_delete
vocabulary (issue 17): each bad cell is one file:line error, each good one expands."""

from __future__ import annotations

import textwrap

import pytest

from conformance.contract import parse_contract
from conformance.errors import ContractError

HEAD = """\
contract: responses/t
profile: responses
defaults:
  script: {deltas: 6, hold_at: 3}
paths:
  G: {fault: drain, at: held}
  H: {fault: delete, at: held}
  A: {fault: none}
rows:
  - id: R
    title: t
    request: {store: true, background: true, stream: true}
    cells:
"""


def parse(cells: str, head: str = HEAD):
    return parse_contract(head + textwrap.indent(textwrap.dedent(cells), "      "), "responses/t.yaml")


def errors(cells: str, head: str = HEAD) -> list[str]:
    with pytest.raises(ContractError) as info:
        parse(cells, head)
    return [str(e) for e in info.value.errors]


GOOD = """\
G: {status: completed, attempts: 1, exit: graceful, stopped: false}
H: {status: completed, attempts: 1, stopped: false, http: {delete: 400}}
A: {status: completed, one_terminal: true, http: {delete: 200, after_delete_get: 404, after_delete_replay: [400, 404]}}
"""


def test_the_new_vocabulary_expands_into_cells() -> None:
    table = parse(GOOD)
    by_path = {c.path: c for c in table.cells}
    assert by_path["G"].fault.kind == "drain" and by_path["G"].fault.is_process_fault
    assert by_path["H"].fault.kind == "delete" and by_path["H"].expect["stopped"] is False
    assert by_path["A"].expect["one_terminal"] is True


def test_drain_needs_held() -> None:
    head = HEAD.replace("G: {fault: drain, at: held}", "G: {fault: drain, at: created}")
    assert any("drains: it releases the hold right after the SIGTERM, so it needs at: held" in e
               for e in errors(GOOD, head))


def test_after_delete_calls_need_a_delete_after_the_end() -> None:
    bad = GOOD.replace("http: {delete: 400}", "http: {delete: 400, after_delete_get: 404}")
    assert any("responses/t.yaml:" in e and "after_delete_* calls follow the DELETE the executor sends after the end" in e
               for e in errors(bad))


def test_one_terminal_needs_a_replayable_response() -> None:
    head = HEAD.replace("request: {store: true, background: true, stream: true}", "request: {store: true, background: false, stream: true}")
    assert any("one_terminal replays from the terminal's sequence number" in e for e in errors(GOOD, head))


@pytest.mark.parametrize(("cell", "fragment"), [
    ("A: {status: completed, one_terminal: false}", "one_terminal"),
    ("A: {status: completed, stopped: 1}", "stopped"),
])
def test_bad_values_are_refused(cell: str, fragment: str) -> None:
    cells = GOOD.splitlines()
    cells[2] = cell
    assert any(fragment in e for e in errors("\n".join(cells) + "\n"))


def test_invocations_refuse_the_responses_only_keys_and_the_delete_fault() -> None:
    head = """\
contract: invocations/t
profile: invocations
defaults:
  script: {deltas: 6, hold_at: 3}
paths:
  H: {fault: delete, at: held}
rows:
  - id: R
    title: t
    cells:
"""
    found = errors("H: {status: completed, stopped: true, one_terminal: true}\n", head)
    assert any("one_terminal" in e and "does not apply to profile invocations" in e for e in found)
    assert any("delete" in e for e in found)
