"""The postgres provider against a real server (``REFERENCE_IMPL_PG_DSN``; `.ci/run` starts one).

Without a DSN these tests are skipped with that reason; `.ci/run` always provides one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

DSN = os.environ.get("REFERENCE_IMPL_PG_DSN")
pytestmark = pytest.mark.skipif(not DSN, reason="no PostgreSQL: set REFERENCE_IMPL_PG_DSN (.ci/run starts a server)")
ROOT = Path(__file__).resolve().parents[2]


def test_namespaces_isolate_state_dirs_and_can_be_shared(tmp_path: Path) -> None:
    from reference_impl.stores import open_store

    a = open_store("postgres", tmp_path / "a")
    b = open_store("postgres", tmp_path / "b")
    a_again = open_store("postgres", tmp_path / "a")
    try:
        a.records.put("task", "resp_ns", {"id": "resp_ns"})
        a.events.append("resp_ns", {"type": "x", "sequence_number": 0})
        assert b.records.get("task", "resp_ns") is None and b.records.list_unfinished() == []
        assert b.events.read("resp_ns") == []
        assert a_again.records.get("task", "resp_ns") == {"id": "resp_ns"}  # a restart finds its state
        shared = open_store(f"postgres:namespace={a.namespace}", tmp_path / "elsewhere")
        assert shared.events.last_seq("resp_ns") == 0  # several workers: name one namespace
        shared.close()
    finally:
        for s in (a, b, a_again):
            s.close()


def test_unreachable_server_is_one_line(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "reference_impl.stores", "describe", "postgres:dsn=postgresql://nobody@127.0.0.1:1/x"],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "postgres: cannot connect" in out.stderr


def test_provider_gate_passes(tmp_path: Path) -> None:
    cmd = [
        sys.executable, "-m", "pytest", "conformance", "-k", "test_store_contract", "--conformance-store", "postgres",
        "-q", "-p", "no:benchmark", "-p", "no:cacheprovider", "-p", "no:xdist",
        "--conformance-results", str(tmp_path / "results"),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "8 passed" in proc.stdout
