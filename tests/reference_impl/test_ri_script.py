"""The test-control handler in isolation: script parsing and the call order an adapter follows."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from reference_impl.script import HandlerFailure, Script, ScriptShapeError, extract_script, parse_script, run_script


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain text", None),
        ('{"other": 1}', None),
        ("[1, 2]", None),
        ('"json string"', None),
        ([{"role": "user"}], None),
        ('{"conformance": {"deltas": 2}}', {"deltas": 2}),
        ('{"conformance": {}}', {}),
    ],
)
def test_extract_script(value, expected) -> None:
    assert extract_script(value) == expected


@pytest.mark.parametrize("value", ['{"conformance": 1}', '{"conformance": null}', '{"conformance": {}, "more": 1}'])
def test_extract_script_rejects_non_objects(value) -> None:
    with pytest.raises(ScriptShapeError):
        extract_script(value)


def test_parse_defaults_and_full_script() -> None:
    assert parse_script(None) == Script(deltas=3)
    assert parse_script({}) == Script()
    full = {"deltas": 6, "delay_ms": 1.5, "hold_at": -1, "checkpoint_every": 2, "fail_at": 4, "tag": "a.b-C_9"}
    assert parse_script(full) == Script(**full)


def test_parse_rejects_unknown_fields_by_name() -> None:
    with pytest.raises(HandlerFailure) as info:
        parse_script({"deltas": 1, "sleep": 3})
    assert info.value.code == "unsupported_script" and "'sleep'" in info.value.message


class FakeRun:
    """Records the calls the handler makes, like a framework adapter would receive them."""

    def __init__(self, attempt: int = 1, start_delta: int = 0, checkpointing: bool = True) -> None:
        self.id = "resp_x"
        self.attempt = attempt
        self.start_delta = start_delta
        self.checkpointing = checkpointing
        self.calls: list[str] = []

    def begin(self) -> None:
        self.calls.append("begin")

    def open_item(self) -> None:
        self.calls.append("open")

    def delta(self, text: str) -> None:
        self.calls.append(text)

    def close_item(self) -> None:
        self.calls.append("close")

    def checkpoint(self, next_delta: int) -> None:
        self.calls.append(f"ckpt->{next_delta}")

    def complete(self) -> None:
        self.calls.append("complete")


def run(fake: FakeRun, script: dict, marker_dir: Path | None) -> None:
    asyncio.run(run_script(fake, script, str(marker_dir) if marker_dir else None))


def test_fresh_attempt_call_order_and_markers(tmp_path: Path) -> None:
    fake = FakeRun()
    run(fake, {"deltas": 5, "checkpoint_every": 2, "tag": "t"}, tmp_path)
    assert fake.calls == [
        "begin",
        "open", "a1:d0 ", "a1:d1 ", "close", "ckpt->2",
        "open", "a1:d2 ", "a1:d3 ", "close", "ckpt->4",
        "open", "a1:d4 ", "close", "ckpt->5",
        "complete",
    ]  # fmt: skip
    assert (tmp_path / "t.log").read_text().splitlines() == [
        "start attempt=1 id=resp_x from=0",
        "delta 0", "delta 1", "checkpoint 1",
        "delta 2", "delta 3", "checkpoint 3",
        "delta 4", "checkpoint 4",
        "done",
    ]  # fmt: skip


def test_recovered_attempt_starts_at_the_checkpoint(tmp_path: Path) -> None:
    fake = FakeRun(attempt=3, start_delta=4)
    (tmp_path / "t.release").touch()
    run(fake, {"deltas": 6, "checkpoint_every": 2, "hold_at": 5, "tag": "t"}, tmp_path)
    assert fake.calls == ["begin", "open", "a3:d4 ", "a3:d5 ", "close", "ckpt->6", "complete"]
    assert (tmp_path / "t.log").read_text().splitlines() == [
        "start attempt=3 id=resp_x from=4", "delta 4", "delta 5", "checkpoint 5", "held 5", "released", "done",
    ]  # fmt: skip


def test_no_checkpoints_when_not_resilient(tmp_path: Path) -> None:
    fake = FakeRun(checkpointing=False)
    run(fake, {"deltas": 2, "checkpoint_every": 1, "tag": "t"}, tmp_path)
    assert "ckpt->1" not in fake.calls and fake.calls.count("open") == 2
    assert not any(line.startswith("checkpoint") for line in (tmp_path / "t.log").read_text().splitlines())


def test_fail_at_raises_before_the_delta(tmp_path: Path) -> None:
    fake = FakeRun()
    with pytest.raises(HandlerFailure) as info:
        run(fake, {"deltas": 3, "fail_at": 1, "tag": "t"}, tmp_path)
    assert info.value.code == "handler_error"
    assert fake.calls == ["begin", "open", "a1:d0 "]
    assert (tmp_path / "t.log").read_text().splitlines()[-1] == "fail 1"


def test_hold_before_anything_then_cancel_writes_interrupted(tmp_path: Path) -> None:
    fake = FakeRun()

    async def main() -> None:
        task = asyncio.create_task(run_script(fake, {"deltas": 1, "hold_at": -1, "tag": "t"}, str(tmp_path)))
        log = tmp_path / "t.log"
        deadline = asyncio.get_running_loop().time() + 10
        while not (log.exists() and "held -1" in log.read_text()):
            assert asyncio.get_running_loop().time() < deadline, "handler never held"
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert fake.calls == []  # nothing was created
    assert (tmp_path / "t.log").read_text().splitlines() == ["start attempt=1 id=resp_x from=0", "held -1", "interrupted"]


def test_no_marker_dir_means_no_markers(tmp_path: Path) -> None:
    fake = FakeRun()
    run(fake, {"deltas": 1, "tag": "t"}, None)
    assert fake.calls[-1] == "complete" and not list(tmp_path.iterdir())
