"""``python -m reference_impl.stores``: what a conformance run needs from a provider, out of process.

``describe SPEC``
    Check the spec (name, import, options), open the provider once on a scratch directory, print
    one JSON line ``{"name", "durable", "shared", "withdraws"}`` and exit 0; any mistake is one
    line on stderr and exit 2. The target file's ``store.describe`` runs this before any cell.

``writer SPEC STATE_DIR ACK_FILE [--payload N]``
    The crash-safety probe: loop forever, alternately (1) compare-and-set the record
    ``response/crashprobe`` from ``n`` to ``n + 1`` and (2) append event ``seq + 1`` to the log
    ``crashprobe``, each carrying an ``N``-byte payload derived from its number and a checksum.
    After each write the store acknowledged, one line (``rec <n>`` / ``ev <seq>``) is appended to
    ACK_FILE. It resumes from whatever the store holds, so it can be killed and started again.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from typing import Any

from . import KIND_RESPONSE, StoreError, check_spec, open_store

PROG = "reference_impl.stores"
PROBE_KEY = "crashprobe"


def probe_payload(n: int, size: int) -> str:
    """A payload whose every part depends on n, so a mix of two writes is visible."""
    unit = f"<{n}>"
    return (unit * (size // len(unit) + 1))[:size]


def probe_checksum(n: int, payload: str) -> str:
    return hashlib.sha256(f"{n}|{payload}".encode()).hexdigest()


def probe_ok(value: Any, number_key: str) -> bool:
    """True when a probe record/event is whole: its payload and checksum match its number."""
    if not isinstance(value, dict):
        return False
    n, payload = value.get(number_key), value.get("payload")
    if not isinstance(n, int) or not isinstance(payload, str):
        return False
    return payload == probe_payload(n, len(payload)) and value.get("check") == probe_checksum(n, payload)


def _describe(spec_text: str) -> int:
    spec, cls = check_spec(spec_text)
    with tempfile.TemporaryDirectory(prefix="store-describe-") as scratch:
        store = open_store(spec_text, scratch)
        store.close()
    caps = cls.capabilities
    out = {"name": spec.name, "durable": caps.durable, "shared": caps.shared, "withdraws": caps.withdrawn_claims()}
    print(json.dumps(out))
    return 0


def _writer(spec_text: str, state_dir: str, ack_file: str, size: int) -> int:
    store = open_store(spec_text, state_dir)
    ack = os.open(ack_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    current = store.records.get(KIND_RESPONSE, PROBE_KEY)
    last = store.events.last_seq(PROBE_KEY)
    seq = -1 if last is None else last
    n = current["n"] if current else 0
    while True:
        payload = probe_payload(n + 1, size)
        new = {"n": n + 1, "payload": payload, "check": probe_checksum(n + 1, payload)}
        if not store.records.compare_and_set(KIND_RESPONSE, PROBE_KEY, current, new):
            sys.stderr.write(f"{PROG}: error: compare_and_set from n={n} lost to another writer\n")
            return 3
        current, n = new, n + 1
        os.write(ack, f"rec {n}\n".encode())
        payload = probe_payload(seq + 1, size)
        store.events.append(
            PROBE_KEY,
            {"type": "probe", "sequence_number": seq + 1, "payload": payload, "check": probe_checksum(seq + 1, payload)},
        )
        seq += 1
        os.write(ack, f"ev {seq}\n".encode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description="Store provider tools for conformance runs.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("describe", help="check a store spec and print its capabilities as JSON")
    d.add_argument("spec")
    w = sub.add_parser("writer", help="crash-safety probe: write until killed, acknowledging each write")
    w.add_argument("spec")
    w.add_argument("state_dir")
    w.add_argument("ack_file")
    w.add_argument("--payload", type=int, default=32768)
    args = parser.parse_args(argv)
    try:
        if args.cmd == "describe":
            return _describe(args.spec)
        return _writer(args.spec, args.state_dir, args.ack_file, args.payload)
    except StoreError as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        return 2
