"""The store provider contract: the provider under test, directly (no HTTP, no server).

``pytest conformance --conformance-store NAME[:OPTIONS]`` runs these against that provider, next to the full
matrix; without ``--conformance-store`` they run against the reference server's default ``file`` provider.
They check what the matrix can only see from far away:

- records: get/put/delete, compare-and-set (create-if-absent, stale expectation refused and
  nothing changed, delete-if-equal), CAS atomicity under concurrent writers;
- event logs: append order, strictly increasing sequence numbers, read after a cursor, retention
  (nothing dropped until ``delete``; a deleted log never comes back);
- durability: everything acknowledged is there after a reopen;
- crash safety: a writer process SIGKILLed while it writes leaves, for the record, the last
  acknowledged state or the one being written (never a torn one), and for the log every
  acknowledged event, gap-free, each one whole; and the store accepts writes again.

A provider that declares ``durable=False`` (``memory``) has the durability and crash-safety
tests reported as not claimed (skipped with the reason), never as passes.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from conformance.nemesis import kill_writer

CRASH_ROUNDS = 3
ACKS_PER_ROUND = 12
WAIT_S = 60.0
PROBE_KIND = "response"
BLACKBOX = True
"""Runs against a ``control: none`` target too: it drives the store provider the target file names
(``store:``) directly, with no server and no test-control adapter."""


class _Provider:
    """Opens the provider under test; every instance is closed at teardown."""

    def __init__(self, spec: str, stores: Any, caps: Any) -> None:
        self.spec = spec
        self.caps = caps
        self._stores = stores
        self._open: list[Any] = []

    def open(self, state_dir: Path) -> Any:
        store = self._stores.open_store(self.spec, state_dir)
        self._open.append(store)
        return store

    def close(self, store: Any) -> None:
        if store in self._open:
            self._open.remove(store)
        store.close()

    def close_all(self) -> None:
        while self._open:
            self._open.pop().close()

    def require_durable(self) -> None:
        if not self.caps.durable:
            pytest.skip(f"not claimed: durable_store (withdrawn by store {self.spec}: it does not survive a restart)")


@pytest.fixture
def provider(conformance_target: Any) -> Any:
    if not conformance_target.store_args:
        pytest.skip(f"not claimed: target {conformance_target.name} declares no store provider (no `store:` in its file)")
    from reference_impl import stores

    spec = conformance_target.store or "file"
    _, cls = stores.check_spec(spec)
    p = _Provider(spec, stores, cls.capabilities)
    yield p
    p.close_all()


def ev(seq: int, **extra: Any) -> dict[str, Any]:
    return {"type": "response.output_text.delta", "sequence_number": seq, **extra}


def seqs(events: list[dict[str, Any]]) -> list[int]:
    return [e["sequence_number"] for e in events]


# ---------------------------------------------------------------- records
def test_records_roundtrip(provider: Any, tmp_path: Path) -> None:
    store = provider.open(tmp_path)
    rec = store.records
    assert rec.get("task", "resp_a") is None
    body = {"id": "resp_a", "attempt": 1, "nested": {"list": [1, 2.5, None, True], "text": "é\n\"x\""}}
    rec.put("task", "resp_a", body)
    rec.put("response", "resp_a", {"response": {"status": "in_progress"}})
    assert rec.get("task", "resp_a") == body
    rec.put("task", "resp_a", dict(body, attempt=2))
    assert rec.get("task", "resp_a")["attempt"] == 2
    rec.put("task", "resp_b", {"id": "resp_b"})
    assert sorted(r["id"] for r in rec.list_unfinished()) == ["resp_a", "resp_b"]
    rec.delete("task", "resp_b")
    rec.delete("task", "resp_b")  # deleting a missing record is not an error
    assert [r["id"] for r in rec.list_unfinished()] == ["resp_a"]
    assert rec.get("response", "resp_a") == {"response": {"status": "in_progress"}}  # kinds are separate


def test_cas_create_if_absent_and_conflicts(provider: Any, tmp_path: Path) -> None:
    rec = provider.open(tmp_path).records
    v1 = {"id": "resp_c", "lease": {"owner": "w1", "until": 10}}
    v2 = {"id": "resp_c", "lease": {"owner": "w2", "until": 20}}
    assert rec.compare_and_set("task", "resp_c", None, v1) is True
    assert rec.compare_and_set("task", "resp_c", None, v2) is False, "create-if-absent succeeded over an existing record"
    assert rec.get("task", "resp_c") == v1
    stale = {"id": "resp_c", "lease": {"owner": "w0", "until": 5}}
    assert rec.compare_and_set("task", "resp_c", stale, v2) is False, "CAS with a stale expectation succeeded"
    assert rec.get("task", "resp_c") == v1, "a refused CAS changed the record"
    assert rec.compare_and_set("task", "resp_c", v1, v2) is True
    assert rec.get("task", "resp_c") == v2
    assert rec.compare_and_set("task", "resp_c", v1, None) is False, "CAS-delete with a stale expectation succeeded"
    assert rec.get("task", "resp_c") == v2
    assert rec.compare_and_set("task", "resp_c", v2, None) is True
    assert rec.get("task", "resp_c") is None
    assert rec.compare_and_set("task", "resp_c", v2, v1) is False, "CAS on a deleted record succeeded"
    assert rec.get("task", "resp_c") is None


def test_cas_is_atomic_under_concurrent_writers(provider: Any, tmp_path: Path) -> None:
    """Threads increment one counter by CAS-retry; no increment may be lost or doubled."""
    threads_n, per_thread = 4, 25
    first = provider.open(tmp_path)
    first.records.put("task", "counter", {"n": 0})
    # Shared providers get one instance per writer (as separate workers would); others share one.
    instances = [provider.open(tmp_path) if provider.caps.shared else first for _ in range(threads_n)]
    wins = [0] * threads_n
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads_n)

    def work(i: int) -> None:
        try:
            rec = instances[i].records
            barrier.wait(timeout=30)
            while wins[i] < per_thread:
                cur = rec.get("task", "counter")
                if rec.compare_and_set("task", "counter", cur, {"n": cur["n"] + 1}):
                    wins[i] += 1
        except BaseException as exc:  # reported below, with the thread's index
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(threads_n)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(timeout=WAIT_S)
    assert not any(t.is_alive() for t in workers), f"CAS writers still running after {WAIT_S}s (wins so far: {wins})"
    assert not errors, f"a CAS writer raised: {errors[0]!r}"
    final = first.records.get("task", "counter")["n"]
    assert final == threads_n * per_thread, (
        f"{sum(wins)} successful compare-and-set increments but the counter is {final}: "
        "a CAS succeeded against a value another writer had already replaced (last write wins)"
    )


# ---------------------------------------------------------------- event logs
def test_append_order_and_increasing_sequence_numbers(provider: Any, tmp_path: Path) -> None:
    log = provider.open(tmp_path).events
    assert log.read("resp_e") == [] and log.last_seq("resp_e") is None
    for i in range(20):
        log.append("resp_e", ev(i, delta=f"d{i} "))
    assert seqs(log.read("resp_e")) == list(range(20))
    assert [e["delta"] for e in log.read("resp_e")] == [f"d{i} " for i in range(20)]
    assert log.last_seq("resp_e") == 19
    for bad in (19, 3, -1):
        with pytest.raises(ValueError):
            log.append("resp_e", ev(bad, delta="dup"))
    with pytest.raises(ValueError):
        log.append("resp_e", {"type": "x"})  # no sequence_number
    assert seqs(log.read("resp_e")) == list(range(20)), "a rejected append changed the log"
    log.append("resp_e", ev(25))  # increasing is enough; the runtime itself never leaves gaps
    assert log.last_seq("resp_e") == 25
    log.append("resp_other", ev(0))
    assert seqs(log.read("resp_other")) == [0], "logs of different keys are not independent"


def test_read_after_cursor(provider: Any, tmp_path: Path) -> None:
    log = provider.open(tmp_path).events
    for s in (0, 1, 2, 3, 7, 8):
        log.append("resp_r", ev(s))
    assert seqs(log.read("resp_r", after=None)) == [0, 1, 2, 3, 7, 8]
    assert seqs(log.read("resp_r", after=-1)) == [0, 1, 2, 3, 7, 8]
    assert seqs(log.read("resp_r", after=0)) == [1, 2, 3, 7, 8]
    assert seqs(log.read("resp_r", after=3)) == [7, 8]
    assert seqs(log.read("resp_r", after=5)) == [7, 8]
    assert seqs(log.read("resp_r", after=8)) == []
    assert seqs(log.read("resp_r", after=100)) == []
    assert log.read("resp_missing", after=2) == []


def test_retention_until_delete_and_no_resurrection(provider: Any, tmp_path: Path) -> None:
    store = provider.open(tmp_path)
    for i in range(50):
        store.events.append("resp_t", ev(i, big="x" * 2000))
    assert seqs(store.events.read("resp_t")) == list(range(50)), "events were dropped before delete"
    store.events.delete("resp_t")
    store.events.delete("resp_t")  # deleting a missing log is not an error
    assert store.events.read("resp_t") == [] and store.events.last_seq("resp_t") is None
    store.events.append("resp_t", ev(0, fresh=True))  # a new log under the same key starts empty
    assert store.events.read("resp_t") == [ev(0, fresh=True)]
    if provider.caps.durable:
        provider.close(store)
        again = provider.open(tmp_path)
        assert again.events.read("resp_t") == [ev(0, fresh=True)], "a deleted log came back after a reopen"


def test_acknowledged_state_survives_a_reopen(provider: Any, tmp_path: Path) -> None:
    provider.require_durable()
    store = provider.open(tmp_path)
    store.records.put("task", "resp_d", {"id": "resp_d", "attempt": 3})
    store.records.put("response", "resp_d", {"response": {"status": "completed"}})
    store.records.put("task", "resp_gone", {"id": "resp_gone"})
    store.records.delete("task", "resp_gone")
    for i in range(10):
        store.events.append("resp_d", ev(i))
    provider.close(store)
    again = provider.open(tmp_path)
    assert again.records.get("task", "resp_d") == {"id": "resp_d", "attempt": 3}
    assert again.records.get("response", "resp_d") == {"response": {"status": "completed"}}
    assert again.records.get("task", "resp_gone") is None, "a deleted record came back after a reopen"
    assert [r["id"] for r in again.records.list_unfinished()] == ["resp_d"]
    assert seqs(again.events.read("resp_d")) == list(range(10))
    again.events.append("resp_d", ev(10))  # the sequence check holds across lifetimes
    with pytest.raises(ValueError):
        again.events.append("resp_d", ev(10))


# ---------------------------------------------------------------- crash safety
class _Acks:
    """The writer's acknowledgement file: ``rec <n>`` / ``ev <seq>`` lines."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def lines(self) -> list[str]:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return []
        return [ln for ln in text.split("\n")[:-1] if ln]  # a line is acknowledged once whole

    def last(self, prefix: str) -> int | None:
        nums = [int(ln.split()[1]) for ln in self.lines() if ln.startswith(prefix + " ")]
        return max(nums) if nums else None


def _wait_for_acks(proc: subprocess.Popen, acks: _Acks, count: int, err: Path) -> None:
    deadline = time.monotonic() + WAIT_S
    while True:
        lines = acks.lines()
        if len(lines) >= count:
            return
        if proc.poll() is not None or time.monotonic() > deadline:
            what = f"exited with {proc.returncode}" if proc.returncode is not None else f"still running after {WAIT_S}s"
            tail = err.read_text(errors="replace").strip().splitlines()[-5:] if err.exists() else []
            pytest.fail(
                f"waiting for {count} acknowledged writes from the crash-probe writer: it {what}; "
                f"last ack seen: {lines[-1] if lines else 'none'}; writer stderr tail: {tail}"
            )
        time.sleep(0.005)  # polling the ack file (the awaited marker), bounded by the deadline


def test_sigkill_mid_write_leaves_old_or_new_state(provider: Any, tmp_path: Path) -> None:
    """Kill a writer while it writes (CAS records and appends with 32 KiB payloads), several times.

    After each kill: the record is whole and is the last acknowledged one or the one in flight;
    the log holds every acknowledged event, gap-free, each whole; the store takes writes again.
    """
    provider.require_durable()
    from reference_impl.stores.tool import PROBE_KEY, probe_ok

    state = tmp_path / "state"
    acks = _Acks(tmp_path / "acks.log")
    for rnd in range(1, CRASH_ROUNDS + 1):
        err = tmp_path / f"writer-{rnd}.err"
        with open(err, "wb") as errf:
            proc = subprocess.Popen(
                [sys.executable, "-m", "reference_impl.stores", "writer", provider.spec, str(state), str(acks.path)],
                stdout=subprocess.DEVNULL,
                stderr=errf,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            _wait_for_acks(proc, acks, rnd * ACKS_PER_ROUND, err)
        finally:
            kill_writer(proc, WAIT_S)  # the nemesis: every fault of the kit goes through it
        assert proc.returncode == -signal.SIGKILL, f"round {rnd}: the writer was not killed (exit {proc.returncode})"
        acked_rec, acked_ev = acks.last("rec"), acks.last("ev")
        store = provider.open(state)
        rec = store.records.get(PROBE_KIND, PROBE_KEY)
        assert rec is not None, f"round {rnd}: record acknowledged up to n={acked_rec} is missing after SIGKILL"
        assert probe_ok(rec, "n"), f"round {rnd}: torn record after SIGKILL (n={rec.get('n')!r}, payload mixed or cut)"
        assert acked_rec is not None and rec["n"] in (acked_rec, acked_rec + 1), (
            f"round {rnd}: record n={rec['n']} after SIGKILL, acknowledged n={acked_rec}: "
            "an acknowledged compare-and-set was lost"
        )
        events = store.events.read(PROBE_KEY)
        got = seqs(events)
        assert got == list(range(len(got))), f"round {rnd}: the log has gaps or disorder after SIGKILL: {got[-5:]}"
        assert acked_ev is not None and len(got) - 1 >= acked_ev, (
            f"round {rnd}: events acknowledged up to seq {acked_ev}, but the log ends at "
            f"{got[-1] if got else 'nothing'} after SIGKILL: acknowledged events were lost"
        )
        assert len(got) - 1 <= acked_ev + 1, f"round {rnd}: the log holds events never written: {got[-3:]}"
        torn = [e["sequence_number"] for e in events if not probe_ok(e, "sequence_number")]
        assert not torn, f"round {rnd}: torn events after SIGKILL: {torn[:5]}"
        assert seqs(store.events.read(PROBE_KEY, after=acked_ev - 1))[:1] == [acked_ev]
        provider.close(store)
    # After the last crash the store still takes writes where the log ended.
    store = provider.open(state)
    last = store.events.last_seq(PROBE_KEY)
    store.events.append(PROBE_KEY, ev(last + 1))
    assert seqs(store.events.read(PROBE_KEY, after=last)) == [last + 1]
