"""Pure pieces of the invocations server: frame encoding, the output rebuilt from a log, flags."""

from __future__ import annotations

import json

import pytest
from inv_wire import parse_frames

from reference_impl.cli import parse_config
from reference_impl.invocations import encode_frame
from reference_impl.sessions import output_from_log, wire


def ev(seq: int, type_: str, **fields) -> dict:
    return {"type": type_, "event_id": seq, "invocation_id": "inv_x", "sequence_number": seq, **fields}


def test_encode_frame_round_trips_and_wire_drops_the_log_field() -> None:
    data = wire(ev(7, "invocation.delta", index=2, text="a1:d2 "))
    assert "sequence_number" not in data
    raw = encode_frame(data)
    assert raw.startswith(b"id: 7\nevent: invocation.delta\ndata: {") and raw.endswith(b"\n\n")
    frames, rest = parse_frames(raw)
    assert rest == b"" and frames[0].id == 7 and frames[0].data == data
    assert b"\n" not in json.dumps(data).encode()  # one data line per frame


def test_output_from_log_keeps_the_carry_over_and_the_last_attempt() -> None:
    log = [
        ev(1, "invocation.started", attempt=1, entry_mode="fresh", **{"from": 0}),
        *[ev(2 + i, "invocation.delta", index=i, text=f"a1:d{i} ") for i in range(4)],  # checkpoint after d1
        ev(6, "invocation.started", attempt=2, entry_mode="recovered", **{"from": 2}),
        ev(7, "invocation.delta", index=2, text="a2:d2 "),
        ev(8, "invocation.started", attempt=3, entry_mode="recovered", **{"from": 2}),
        ev(9, "invocation.delta", index=2, text="a3:d2 "),
        ev(10, "invocation.delta", index=3, text="a3:d3 "),
    ]
    assert output_from_log(log) == "a1:d0 a1:d1 a3:d2 a3:d3 "
    assert output_from_log([]) == ""
    # Junk events (no index, odd types) are ignored rather than crashing the recovery scan.
    assert output_from_log([{"type": "invocation.delta"}, {"type": "x"}, {"nothing": 1}]) == ""


def test_flags(tmp_path) -> None:
    base = ["--port", "1", "--state-dir", str(tmp_path)]
    cfg = parse_config(base)
    assert (cfg.resilient_invocations, cfg.event_retention) == (False, 0)
    cfg = parse_config([*base, "--resilient-invocations", "--event-retention", "5"])
    assert (cfg.resilient_invocations, cfg.event_retention) == (True, 5)
    for bad in ("-1", "x", "1.5"):
        with pytest.raises(SystemExit) as exc:
            parse_config([*base, "--event-retention", bad])
        assert exc.value.code == 2
