"""The expectation registry is the one home of each key: the schema file agrees with it, the
profiles, depth rule and probes come from it."""

from __future__ import annotations

import json

from conformance.contract import SCHEMA_PATH, schema, schema_with_keys
from conformance.expectations import Expectation, Registry, registry
from conformance.expectations.builtin import EXPECTATIONS
from conformance.model import Cell, FaultSpec


def test_the_schema_file_holds_exactly_the_registrys_fragments():
    """contract.schema.json is what users' editors read: its cell expectation properties must be
    the registry's fragments, key for key and in order (edit the key's record, then the file)."""
    on_disk = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    built = schema_with_keys(on_disk, {e.name: e.schema for e in EXPECTATIONS})
    assert on_disk == built
    assert schema() == built  # no plugin registered: the validator's schema is the file's


def test_schema_with_keys_sees_a_changed_fragment():
    on_disk = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    fragments = {e.name: e.schema for e in EXPECTATIONS}
    assert schema_with_keys(on_disk, dict(fragments, attempts={"type": "integer", "minimum": 1})) != on_disk
    assert schema_with_keys(on_disk, {k: v for k, v in fragments.items() if k != "queue"}) != on_disk


def test_profiles_and_depth_rules():
    reg = registry()
    assert "queue" in reg.for_profile("invocations") and "queue" not in reg.for_profile("responses")
    assert "replay" in reg.for_profile("responses") and "replay" not in reg.for_profile("invocations")
    assert not reg.counts("status", "completed")
    assert reg.counts("attempts", 1)
    assert not reg.counts("stream", {"order": False}) and reg.counts("stream", {"order": True})
    assert not reg.counts("replay", {"after": ["start"]})
    assert reg.specs["replay"].hollow({"after": ["start"]}) == "only lists cursors"
    assert not reg.counts("no_such_key", 1)


def cell(expect, profile="responses", fault=FaultSpec()):
    return Cell(contract=f"{profile}/t", profile=profile, row="R", title="t", path="A", variant=(), level="MUST",
                server={}, request={}, script={}, fault=fault, expect=expect)


def test_probes_follow_the_expectations():
    reg = registry()
    p = reg.probes(cell({"replay": {"after": ["start", "mid", 3]}, "http": {"replay": 200}}))
    assert p.replays == ("start", "mid", 3) and not p.from_terminal
    assert reg.probes(cell({"http": {"replay": 200, "bad_id_get": 404}})).replays == ("start",)
    assert reg.probes(cell({"http": {"bad_id_get": 404}})).calls == frozenset({"bad_id_get"})
    assert reg.probes(cell({"reconnect": {"terminal": "response.completed"}})).replays == ("start",)
    assert reg.probes(cell({"one_terminal": True})).from_terminal
    assert reg.probes(cell({"status": "completed", "attempts": 1})).replays == ()
    inv = reg.probes(cell({"output": "full", "resume": {"from": "seen"}}, profile="invocations"))
    assert inv.transcript and inv.resume == {"from": "seen"}
    assert not reg.probes(cell({"queue": {"inputs": 2}}, profile="invocations")).transcript
    assert reg.probes(cell({"error": {"replay": {"code": "x"}}}, profile="invocations")).transcript


def test_a_key_has_one_home():
    reg = Registry()
    spec = Expectation("k", frozenset({"responses"}), {"const": True}, lambda h, e, c: [])
    reg.register(spec)
    try:
        reg.register(spec)
    except ValueError as exc:
        assert "'k' is already registered" in str(exc)
    else:
        raise AssertionError("a second registration of a key was accepted")
