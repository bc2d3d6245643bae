"""Unit tests of the file store provider: atomic records, fsync order, torn tails."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference_impl.stores import KIND_RESPONSE, KIND_TASK, StoreCorruptError, StoreError, open_store
from reference_impl.stores.file import FileEventLog, FileStoreProvider


@pytest.fixture
def store(tmp_path: Path) -> FileStoreProvider:
    return open_store("file", tmp_path / "state")


def ev(seq: int, **extra) -> dict:
    return {"type": "response.output_text.delta", "sequence_number": seq, **extra}


def fd_path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


@pytest.fixture
def syscalls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Record fsync / replace / ftruncate calls (with the path they concern), in order."""
    calls: list[tuple[str, str]] = []
    real_fsync, real_replace, real_truncate = os.fsync, os.replace, os.ftruncate

    def fsync(fd: int) -> None:
        calls.append(("fsync", fd_path(fd)))
        real_fsync(fd)

    def replace(src, dst) -> None:
        calls.append(("replace", f"{src} -> {dst}"))
        real_replace(src, dst)

    def ftruncate(fd: int, size: int) -> None:
        calls.append(("ftruncate", fd_path(fd)))
        real_truncate(fd, size)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "ftruncate", ftruncate)
    return calls


def test_unknown_provider_name() -> None:
    with pytest.raises(ValueError, match="unknown store provider"):
        open_store("nope", "/tmp/x")


# ---------------------------------------------------------------- records
def test_record_roundtrip_delete_and_listing(store: FileStoreProvider) -> None:
    rec = store.records
    assert rec.get(KIND_TASK, "resp_1") is None
    rec.put(KIND_TASK, "resp_1", {"id": "resp_1", "attempt": 1})
    rec.put(KIND_TASK, "resp_2", {"id": "resp_2", "attempt": 1})
    rec.put(KIND_RESPONSE, "resp_1", {"response": {"status": "in_progress"}})
    rec.put(KIND_TASK, "resp_1", {"id": "resp_1", "attempt": 2})
    assert rec.get(KIND_TASK, "resp_1") == {"id": "resp_1", "attempt": 2}
    assert sorted(r["id"] for r in rec.list_unfinished()) == ["resp_1", "resp_2"]
    rec.delete(KIND_TASK, "resp_2")
    rec.delete(KIND_TASK, "resp_2")  # idempotent
    assert [r["id"] for r in rec.list_unfinished()] == ["resp_1"]
    assert rec.get(KIND_RESPONSE, "resp_1") == {"response": {"status": "in_progress"}}


@pytest.mark.parametrize("key", ["../escape", "a/b", "", ".hidden", "x" * 200])
def test_record_keys_are_plain_names(store: FileStoreProvider, key: str) -> None:
    with pytest.raises(ValueError):
        store.records.put(KIND_TASK, key, {})
    with pytest.raises(ValueError):
        store.events.append(key, ev(0))


def test_put_is_tmp_fsync_replace_fsync_dir(store: FileStoreProvider, syscalls) -> None:
    store.records.put(KIND_TASK, "resp_1", {"id": "resp_1"})
    tasks = str(store.root.resolve() / "tasks")
    assert [c[0] for c in syscalls] == ["fsync", "replace", "fsync"]
    assert syscalls[0][1].startswith(tasks + "/.resp_1.json.") and syscalls[0][1].endswith(".tmp")
    assert syscalls[1][1].endswith(f"-> {tasks}/resp_1.json")
    assert syscalls[2][1] == tasks  # the directory, after the rename


def test_crash_before_rename_keeps_the_old_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store("file", tmp_path)
    store.records.put(KIND_TASK, "resp_1", {"v": 1})

    def boom(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(StoreError):
        store.records.put(KIND_TASK, "resp_1", {"v": 2})
    monkeypatch.undo()
    assert list((tmp_path / "tasks").glob(".*.tmp"))  # what a crash would leave behind
    reopened = open_store("file", tmp_path)
    assert reopened.records.get(KIND_TASK, "resp_1") == {"v": 1}
    assert not list((tmp_path / "tasks").glob(".*.tmp"))  # cleaned at startup
    assert [r["v"] for r in reopened.records.list_unfinished()] == [1]


def test_unreadable_task_record_is_skipped_by_the_listing(store: FileStoreProvider) -> None:
    store.records.put(KIND_TASK, "resp_ok", {"id": "resp_ok"})
    (store.root / "tasks" / "resp_bad.json").write_bytes(b'{"id": "resp_b')
    assert [r["id"] for r in store.records.list_unfinished()] == ["resp_ok"]
    with pytest.raises(StoreCorruptError):
        store.records.get(KIND_TASK, "resp_bad")


# ---------------------------------------------------------------- event log
def test_append_read_after_last_seq(store: FileStoreProvider) -> None:
    log = store.events
    assert log.read("resp_1") == [] and log.last_seq("resp_1") is None
    for i in range(5):
        log.append("resp_1", ev(i, delta=f"d{i}"))
    assert [e["sequence_number"] for e in log.read("resp_1")] == [0, 1, 2, 3, 4]
    assert [e["sequence_number"] for e in log.read("resp_1", after=2)] == [3, 4]
    assert log.read("resp_1", after=4) == [] and log.read("resp_1", after=99) == []
    assert log.last_seq("resp_1") == 4
    assert FileEventLog(store.root / "streams").last_seq("resp_1") == 4  # a fresh reader agrees


def test_sequence_numbers_must_increase(store: FileStoreProvider) -> None:
    store.events.append("resp_1", ev(3))
    for bad in (3, 2):
        with pytest.raises(ValueError):
            store.events.append("resp_1", ev(bad))
    with pytest.raises(ValueError):
        store.events.append("resp_1", {"type": "x"})
    store.events.append("resp_1", ev(4))


def test_append_is_durable_before_it_returns(store: FileStoreProvider, syscalls) -> None:
    store.events.append("resp_1", ev(0))
    store.events.append("resp_1", ev(1))
    streams = str(store.root.resolve() / "streams")
    log = f"{streams}/resp_1.jsonl"
    # first append: the file, then its new directory entry; later appends: one fsync each
    assert syscalls == [("fsync", log), ("fsync", streams), ("fsync", log)]


@pytest.mark.parametrize(
    "tail",
    [b'{"type":"x","sequence_numb', b"{", b"\x00\x00\x00", b'{"type":"x"}\n', b"garbage\n", b"garbage\n\x00"],
)
def test_torn_tail_is_ignored_then_cut_before_the_next_append(store: FileStoreProvider, syscalls, tail: bytes) -> None:
    path = store.root / "streams" / "resp_1.jsonl"
    path.write_bytes(b"".join(json.dumps(ev(i)).encode() + b"\n" for i in range(3)) + tail)
    fresh = FileEventLog(store.root / "streams")
    assert [e["sequence_number"] for e in fresh.read("resp_1")] == [0, 1, 2]
    assert fresh.last_seq("resp_1") == 2
    fresh.append("resp_1", ev(3))
    assert ("ftruncate", str(path.resolve())) in syscalls
    assert [e["sequence_number"] for e in fresh.read("resp_1")] == [0, 1, 2, 3]
    assert path.read_bytes().endswith(b"\n") and path.read_bytes().count(b"\n") == 4


def test_damage_in_the_middle_is_reported(store: FileStoreProvider) -> None:
    path = store.root / "streams" / "resp_1.jsonl"
    path.write_bytes(json.dumps(ev(0)).encode() + b"\nnot json\n" + json.dumps(ev(1)).encode() + b"\n")
    with pytest.raises(StoreCorruptError):
        store.events.read("resp_1")


def test_delete_log(store: FileStoreProvider) -> None:
    store.events.append("resp_1", ev(0))
    store.events.delete("resp_1")
    store.events.delete("resp_1")
    assert store.events.read("resp_1") == [] and store.events.last_seq("resp_1") is None
    store.events.append("resp_1", ev(0))  # a new log may start again at 0


@settings(max_examples=150, deadline=None)
@given(n=st.integers(1, 12), cut=st.floats(0, 1), payload=st.text(max_size=20))
def test_any_truncation_reads_as_a_prefix(tmp_path_factory, n: int, cut: float, payload: str) -> None:
    """A crash can stop the file at any byte: what loads is always a prefix of what was written."""
    root = tmp_path_factory.mktemp("prefix")
    events = [ev(i, delta=payload) for i in range(n)]
    data = b"".join(json.dumps(e).encode() + b"\n" for e in events)
    at = int(len(data) * cut)
    (root / "resp_1.jsonl").write_bytes(data[:at])
    log = FileEventLog(root)
    got = log.read("resp_1")
    assert got == events[: data[:at].count(b"\n")]
    log.append("resp_1", ev(len(got)))
    assert log.read("resp_1") == events[: len(got)] + [ev(len(got))]
