"""The executor copies what the harness saw of each incarnation into the History, whole."""

from __future__ import annotations

from pathlib import Path

from conformance.executor import _incarnation_record
from harness.process import Incarnation


def test_incarnation_record_keeps_every_harness_fact() -> None:
    inc = Incarnation(index=1, pid=4242, started_at=1.0, ready_at=1.2, exited_at=2.0, exit_code=-9,
                      exit_mode="killed", log_path=Path("/tmp/x/incarnation-1.log"), stragglers_killed=2, survivors=[4243])
    record = _incarnation_record(inc)
    assert (record.index, record.pid, record.started_at, record.ready_at, record.exited_at) == (1, 4242, 1.0, 1.2, 2.0)
    assert (record.exit_code, record.exit_mode, record.log_path) == (-9, "killed", "/tmp/x/incarnation-1.log")
    assert record.stragglers_killed == 2 and record.survivors == [4243]


def test_one_incarnation_type_and_the_history_keeps_a_snapshot() -> None:
    """The History records the harness's own Incarnation type (no field-by-field twin), as a copy:
    what the harness learns later (exit, survivors) does not rewrite the recorded evidence."""
    from conformance.history import History, IncarnationRecord

    assert IncarnationRecord is Incarnation
    inc = Incarnation(index=0, pid=7, started_at=0.0, log_path="/tmp/x/incarnation-0.log", survivors=[8])
    record = _incarnation_record(inc)
    inc.exit_mode, inc.exited_at = "killed", 3.0
    inc.survivors.append(9)
    assert record is not inc and record.exit_mode is None and record.survivors == [8]
    history = History(cell_id="c", incarnations=[record])
    assert History.from_json(history.to_json()).incarnations == [record]
