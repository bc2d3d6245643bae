"""target.yaml validation: every mistake is one TargetConfigError naming file:line and key."""

from __future__ import annotations

import sys

import pytest

from conformance.errors import TargetConfigError
from conformance.targets import REFERENCE_TARGET, load_baseline, load_target


def write(tmp_path, text, name="t.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_reference_target_loads_and_maps_modes():
    cfg = load_target(None)
    assert cfg.source == str(REFERENCE_TARGET)
    spec = cfg.spec_for({"resilient_background": True})
    assert "--resilient-background" in spec.extra_args
    assert cfg.spec_for({"resilient_background": False}).extra_args == ()
    assert cfg.missing_claims(("resilient_background",), "responses") == []
    assert cfg.missing_claims(("steering", "resilient_invocations"), "invocations") == []
    assert "--resilient-invocations" in cfg.spec_for({"resilient_invocations": True}).extra_args
    assert cfg.missing_claims(("steerable_conversations",), "invocations") == ["steerable_conversations"]


def test_unknown_key_names_line_and_key(tmp_path):
    p = write(tmp_path, "command: python\nprofiles: [responses]\nshutdown_grace: 3\n")
    with pytest.raises(TargetConfigError) as e:
        load_target(p)
    assert str(e.value).startswith(f"{p}:3: shutdown_grace: unknown key (did you mean shutdown_grace_s? known: name, command,")
    assert "\n" not in str(e.value) and "Additional properties" not in str(e.value)


def test_unknown_nested_key_names_its_own_line(tmp_path):
    p = write(tmp_path, "command: python\nprofiles: [responses]\nreadiness:\n  path: /r\n\n  colour:\n    - red\n")
    with pytest.raises(TargetConfigError) as e:
        load_target(p)
    assert str(e.value) == f"{p}:6: readiness.colour: unknown key (known: path, timeout_s)"


def test_wrong_type_names_the_line(tmp_path):
    p = write(tmp_path, "command: python\nprofiles: [responses]\nreadiness:\n  path: /r\n  timeout_s: soon\n")
    with pytest.raises(TargetConfigError) as e:
        load_target(p)
    assert f"{p}:5: readiness.timeout_s" in str(e.value)


def test_missing_program_is_one_clear_line(tmp_path):
    p = write(tmp_path, "command: no-such-server-xyz --port {port}\nprofiles: [responses]\n")
    with pytest.raises(TargetConfigError, match="program 'no-such-server-xyz' not found on PATH"):
        load_target(p)


def test_yaml_syntax_error_has_line(tmp_path):
    p = write(tmp_path, "command: python\nprofiles: [responses\n")
    with pytest.raises(TargetConfigError, match=rf"{p}:\d+: not valid YAML"):
        load_target(p)


def test_missing_file(tmp_path):
    with pytest.raises(TargetConfigError, match="target file not found"):
        load_target(tmp_path / "nope.yaml")


def test_mode_must_be_claimed(tmp_path):
    p = write(tmp_path, "command: python\nprofiles: [responses]\nmodes:\n  fast: {args: [--fast]}\n")
    with pytest.raises(TargetConfigError, match="fast defined but not listed in claims"):
        load_target(p)


def test_baseline(tmp_path):
    write(tmp_path, "expected_failures:\n  'responses/x::R1[A]': known bug\n", "b.yaml")
    p = write(tmp_path, f"command: {sys.executable}\nprofiles: [responses]\nbaseline: b.yaml\n")
    cfg = load_target(p)
    assert load_baseline(cfg.baseline) == {"responses/x::R1[A]": "known bug"}
    bad = write(tmp_path, "expected_failures: [a, b]\n", "bad.yaml")
    with pytest.raises(TargetConfigError, match="expected_failures"):
        load_baseline(bad)


def test_store_selection(tmp_path):
    cfg = load_target(None).with_store("file")
    assert cfg.spec_for({}).extra_args[:2] == ("--store", "file")
    p = write(tmp_path, f"command: {sys.executable}\nprofiles: [responses]\n")
    with pytest.raises(TargetConfigError, match="does not declare how to select a store"):
        load_target(p).with_store("sqlite")
    with pytest.raises(TargetConfigError, match="expected NAME"):
        load_target(None).with_store(":x")


def test_workers_render_the_worker_name_and_go_with_the_claim(tmp_path):
    cfg = load_target(None)
    assert "multi_worker" in cfg.claims and cfg.lease_ttl_s == 2.0
    args = cfg.spec_for({}, worker="w7").extra_args
    assert args[args.index("--worker-id") + 1] == "w7"
    claim_only = write(tmp_path, "command: python\nprofiles: [responses]\nclaims: [multi_worker]\n")
    with pytest.raises(TargetConfigError) as e:
        load_target(claim_only)
    assert f"{claim_only}:3:" in str(e.value) and "workers" in str(e.value)
    workers_only = write(tmp_path, "command: python\nprofiles: [responses]\nworkers: {args: [-w, '{worker}'], lease_ttl_s: 2}\n", "w.yaml")
    with pytest.raises(TargetConfigError) as e:
        load_target(workers_only)
    assert f"{workers_only}:3:" in str(e.value) and "multi_worker" in str(e.value)
    no_ttl = write(tmp_path, "command: python\nprofiles: [responses]\nclaims: [multi_worker]\nworkers: {args: []}\n", "n.yaml")
    with pytest.raises(TargetConfigError) as e:
        load_target(no_ttl)
    assert "lease_ttl_s" in str(e.value)
    plain = load_target(write(tmp_path, "command: python\nprofiles: [responses]\n", "p.yaml"))
    with pytest.raises(TargetConfigError) as e:
        plain.spec_for({}, worker="w1")
    assert "declares no `workers:`" in str(e.value)


def test_strict_is_a_boolean_and_defaults_off(tmp_path):
    assert load_target(None).strict is False
    assert load_target(write(tmp_path, "command: python\nprofiles: [responses]\nstrict: true\n")).strict is True
    p = write(tmp_path, "command: python\nprofiles: [responses]\nstrict: sometimes\n", "bad.yaml")
    with pytest.raises(TargetConfigError) as e:
        load_target(p)
    assert str(e.value).startswith(f"{p}:3: strict")


def test_control_none_needs_a_blackbox_request_and_vice_versa(tmp_path):
    """A target without the test-control adapter says what to send instead of a script."""
    base = "command: python -V\nprofiles: [responses]\n"
    p = write(tmp_path, base + "control: none\n")
    with pytest.raises(TargetConfigError, match=rf"{p}:3: `control: none` and `blackbox: {{input"):
        load_target(p)
    p = write(tmp_path, base + "blackbox: {input: hi}\n", name="b.yaml")
    with pytest.raises(TargetConfigError, match=rf"{p}:3: `control: none`"):
        load_target(p)
    p = write(tmp_path, base + "control: none\nblackbox: {input: hi, body: {model: m}, invocations: {input: {q: 1}}}\n",
              name="c.yaml")
    t = load_target(p)
    assert t.blackbox and t.blackbox_request("responses") == ("hi", {"model": "m"})
    assert t.blackbox_request("invocations") == ({"q": 1}, {"model": "m"})
    assert not load_target().blackbox  # the bundled reference target has the adapter
    assert load_target(REFERENCE_TARGET.with_name("reference-blackbox.yaml")).blackbox
