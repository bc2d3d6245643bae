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
