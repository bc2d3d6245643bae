"""Provider registry, spec parsing, the describe tool, CLI errors, and claim withdrawal."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.targets import cell_requires, load_target
from reference_impl.stores import (
    StoreConfigError,
    StoreSpec,
    check_spec,
    open_store,
    parse_store_spec,
    provider_names,
)
from reference_impl.stores.memory import MemoryStoreProvider
from reference_impl.stores.sqlite import SqliteStoreProvider


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("file", StoreSpec("file", {})),
        ("sqlite:path=a.db", StoreSpec("sqlite", {"path": "a.db"})),
        ("postgres:dsn=postgresql://u@127.0.0.1:5432/db?x=1,namespace=n1",
         StoreSpec("postgres", {"dsn": "postgresql://u@127.0.0.1:5432/db?x=1", "namespace": "n1"})),
        ("x:empty=", StoreSpec("x", {"empty": ""})),
    ],
)
def test_parse_store_spec(text: str, spec: StoreSpec) -> None:
    assert parse_store_spec(text) == spec


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        (":x", "expected NAME"),
        ("a b", "expected NAME"),
        ("file:novalue", "is not key=value"),
        ("file:=v", "is not key=value"),
        ("file:a=1,a=2", "given twice"),
    ],
)
def test_parse_store_spec_rejects(text: str, message: str) -> None:
    with pytest.raises(StoreConfigError, match=message):
        parse_store_spec(text)


def test_bundled_names_and_option_check() -> None:
    assert {"file", "sqlite", "memory", "postgres"} <= set(provider_names())
    with pytest.raises(StoreConfigError, match=r"unknown option\(s\) path \(known: none\)"):
        check_spec("memory:path=x")
    with pytest.raises(StoreConfigError, match="unknown store provider 'nope'.*conformance.store_providers"):
        check_spec("nope")
    assert isinstance(StoreConfigError("x"), ValueError)  # older callers catch ValueError


def test_open_store_builds_the_named_provider(tmp_path: Path) -> None:
    assert isinstance(open_store("memory", tmp_path), MemoryStoreProvider)
    store = open_store("sqlite:path=sub/s.db", tmp_path)
    assert isinstance(store, SqliteStoreProvider) and store.path == tmp_path / "sub" / "s.db"
    store.close()


def test_sqlite_is_wal_with_full_sync(tmp_path: Path) -> None:
    store = open_store("sqlite", tmp_path)
    store.records.put("task", "resp_1", {"id": "resp_1"})
    assert store._db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._db.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    store.close()
    conn = sqlite3.connect(tmp_path / "store.sqlite3")
    assert conn.execute("SELECT count(*) FROM records").fetchone()[0] == 1
    conn.close()


def test_sqlite_damaged_row_is_a_store_error(tmp_path: Path) -> None:
    from reference_impl.stores import StoreCorruptError

    store = open_store("sqlite", tmp_path)
    store._db.conn.execute("INSERT INTO records VALUES ('task', 'resp_x', '{torn')")
    with pytest.raises(StoreCorruptError):
        store.records.get("task", "resp_x")
    store.close()


def test_memory_rejects_what_it_could_not_store(tmp_path: Path) -> None:
    store = open_store("memory", tmp_path)
    with pytest.raises(TypeError):
        store.records.put("task", "resp_1", {"x": object()})
    with pytest.raises(ValueError):
        store.records.put("nokind", "resp_1", {})
    assert store.records.get("task", "resp_1") is None


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=60)


def test_describe_tool() -> None:
    out = run("-m", "reference_impl.stores", "describe", "memory")
    assert out.returncode == 0 and json.loads(out.stdout) == {
        "name": "memory", "durable": False, "shared": False, "withdraws": ["durable_store"]
    }
    assert json.loads(run("-m", "reference_impl.stores", "describe", "sqlite").stdout)["withdraws"] == []
    bad = run("-m", "reference_impl.stores", "describe", "nope")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "unknown store provider" in bad.stderr


@pytest.mark.parametrize("store", ["nope", "file:x=1", "sqlite:path"])
def test_server_cli_rejects_a_bad_store_in_one_line(tmp_path: Path, store: str) -> None:
    out = run("-m", "reference_impl", "--port", "8000", "--state-dir", str(tmp_path), "--store", store)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("reference_impl: error: argument --store: "), out.stderr


def test_memory_withdraws_durability_from_restarting_cells() -> None:
    target = load_target(None)
    assert target.missing_claims(cell_requires((), True), "responses") == []
    mem = target.with_store("memory")
    assert mem.withdrawn == frozenset({"durable_store"}) and mem.store_info["durable"] is False
    assert mem.missing_claims(cell_requires((), True), "responses") == ["durable_store (withdrawn by store memory)"]
    assert mem.missing_claims(cell_requires(("cancel",), False), "responses") == []
    assert target.with_store("sqlite").missing_claims(cell_requires((), True), "responses") == []


def test_a_crash_while_the_client_is_away_needs_a_durable_store() -> None:
    """A network fault followed (``then``) by SIGKILL restarts the target: on a store that withdraws
    ``durable_store`` (memory) that cell is not claimed, never run and failed (CI caught the gap)."""
    from conformance.contract import collect_cells, load_contracts
    from conformance.model import FaultSpec

    assert FaultSpec(kind="reset", at="held", then="sigkill").restarts_target
    assert not FaultSpec(kind="reset", at="held").restarts_target
    assert FaultSpec(kind="sigkill", at="held").restarts_target
    assert not FaultSpec(kind="sigkill", at="held", restart=False).restarts_target
    root = Path(__file__).resolve().parents[2] / "contracts"
    away = [c for c in collect_cells(load_contracts(str(root / "**/*.yaml"))) if c.fault.then is not None]
    assert away, "the bundled contracts pin a crash while the client is away"
    mem = load_target(None).with_store("memory")
    for cell in away:
        missing = mem.missing_claims(cell_requires(cell.requires, cell.fault.restarts_target), cell.profile)
        assert "durable_store (withdrawn by store memory)" in missing, cell.id
