"""target.yaml validation: every mistake is one TargetConfigError naming file:line and key."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from conformance.errors import TargetConfigError
from conformance.targets import REFERENCE_TARGET, load_baseline, load_target, probe_target


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
    assert str(e.value).startswith(f"{p}:3: shutdown_grace: unknown key 'shutdown_grace' (did you mean shutdown_grace_s? known: name, command,")
    assert "\n" not in str(e.value) and "Additional properties" not in str(e.value)


def test_unknown_nested_key_names_its_own_line(tmp_path):
    p = write(tmp_path, "command: python\nprofiles: [responses]\nreadiness:\n  path: /r\n\n  colour:\n    - red\n")
    with pytest.raises(TargetConfigError) as e:
        load_target(p)
    assert str(e.value) == f"{p}:6: readiness.colour: unknown key 'colour' (known: path, timeout_s)"


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
    with pytest.raises(TargetConfigError, match=rf"{p}:3: YAML syntax error: expected ',' or ']'"):
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
    with pytest.raises(TargetConfigError, match=rf"{p}:3: control: `control: none` and `blackbox: {{input"):
        load_target(p)
    p = write(tmp_path, base + "blackbox: {input: hi}\n", name="b.yaml")
    with pytest.raises(TargetConfigError, match=rf"{p}:3: blackbox: `control: none`"):
        load_target(p)
    p = write(tmp_path, base + "control: none\nblackbox: {input: hi, body: {model: m}, invocations: {input: {q: 1}}}\n",
              name="c.yaml")
    t = load_target(p)
    assert t.blackbox and t.blackbox_request("responses") == ("hi", {"model": "m"})
    assert t.blackbox_request("invocations") == ({"q": 1}, {"model": "m"})
    assert not load_target().blackbox  # the bundled reference target has the adapter
    assert load_target(REFERENCE_TARGET.with_name("reference-blackbox.yaml")).blackbox
# -- ${VAR}, python:, relative paths (the target file's folder) -----------------------------------

def test_variables_are_expanded_in_command_env_and_paths(tmp_path):
    (tmp_path / "srv").mkdir()
    p = write(tmp_path, "command: \"{python} -m my_server --token ${TOKEN} --price $$5 --level ${LEVEL:-info}\"\n"
                        "env: {HOME_DIR: '${HOME_DIR}/x', EMPTY: '${UNSET_EMPTY:-}'}\ncwd: '${SUB}'\nprofiles: [responses]\n")
    cfg = load_target(p, environ={"TOKEN": "t0k", "HOME_DIR": "/home/me", "SUB": "srv"})
    assert cfg.command == "{python} -m my_server --token t0k --price $5 --level info"
    assert cfg.env == {"HOME_DIR": "/home/me/x", "EMPTY": ""}
    assert cfg.cwd == str(tmp_path / "srv")


def test_an_unset_variable_is_one_line_naming_it_and_its_line(tmp_path):
    p = write(tmp_path, "profiles: [responses]\ncommand: \"${MY_VENV}/bin/server --port {port}\"\n")
    with pytest.raises(TargetConfigError) as e:
        load_target(p, environ={})
    assert str(e.value) == (f"{p}:2: command: environment variable MY_VENV is not set "
                            "(set it, write ${MY_VENV:-default}, or $$ for a literal $)")


def test_a_malformed_variable_reference_is_an_error(tmp_path):
    p = write(tmp_path, "command: python\nprofiles: [responses]\nenv:\n  A: '${1bad}'\n")
    with pytest.raises(TargetConfigError) as e:
        load_target(p, environ={})
    assert str(e.value).startswith(f"{p}:4: env.A: bad variable reference '${{1bad}}'")


def test_python_names_the_interpreter_of_python_placeholders(tmp_path):
    exe = Path(sys.executable)
    p = write(tmp_path, f"python: '${{VENV_BIN}}/{exe.name}'\ncommand: \"{{python}} -m srv --port {{port}}\"\nprofiles: [responses]\n")
    cfg = load_target(p, environ={"VENV_BIN": str(exe.parent)})
    assert cfg.python == os.path.abspath(exe)
    assert cfg.spec_for({}).python == os.path.abspath(exe)
    missing = write(tmp_path, "python: venv/bin/python\ncommand: '{python} -m srv'\nprofiles: [responses]\n", "m.yaml")
    with pytest.raises(TargetConfigError) as e:
        load_target(missing)
    assert str(e.value) == (f"{missing}:1: python: interpreter {tmp_path / 'venv/bin/python'} not found "
                            "(a relative path is relative to the target file's folder)")


def test_the_python_of_the_target_file_is_the_one_that_runs_the_server(tmp_path):
    """{python} in the command runs the interpreter named by `python:` (here a wrapper that
    leaves a trace, then runs the real one), also for store.describe."""
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    wrapper = bin_dir / "python"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> "{tmp_path}/used"\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    p = write(tmp_path, "python: ${MY_VENV}/bin/python\n"
                        'command: "{python} -m reference_impl --port {port} --state-dir {state_dir}"\nprofiles: [responses]\n'
                        'store: {args: [--store, "{store}"], describe: "{python} -m reference_impl.stores describe {store}"}\n')
    cfg = load_target(p, environ={"MY_VENV": str(tmp_path / "venv")})
    probe_target(cfg, tmp_path / "probe")
    assert "-m reference_impl --port" in (tmp_path / "used").read_text()
    cfg.with_store("file")
    assert "-m reference_impl.stores describe file" in (tmp_path / "used").read_text()


def test_an_unknown_placeholder_is_caught_when_loading(tmp_path):
    p = write(tmp_path, "command: python -m srv --port {prot}\nprofiles: [responses]\n")
    with pytest.raises(TargetConfigError) as e:
        load_target(p)
    assert str(e.value).startswith(f"{p}:1: command: unknown placeholder {{prot}}")


def test_a_duplicate_key_is_an_error(tmp_path):
    p = write(tmp_path, "command: python\nprofiles: [responses]\ncommand: python3\n")
    with pytest.raises(TargetConfigError) as e:
        load_target(p)
    assert str(e.value) == f"{p}:3: duplicate key 'command' (first at line 1)"


def server_script(folder: Path) -> Path:
    """An executable ``run-server PORT STATE_DIR`` that starts the reference server."""
    script = folder / "run-server"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m reference_impl --port "$1" --state-dir "$2"\n')
    script.chmod(0o755)
    return script


def test_a_relative_program_starts_from_any_working_directory(tmp_path, monkeypatch):
    """The program and cwd are resolved against the target file's folder, both by the up-front
    check and when the server starts: from another working directory the probe still starts it."""
    folder = tmp_path / "targets"
    folder.mkdir()
    server_script(folder)
    p = write(folder, "command: ./run-server {port} {state_dir}\nprofiles: [responses]\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = load_target(os.path.relpath(p))  # a relative path to the file, too
    assert cfg.cwd == str(folder)
    probe_target(cfg, tmp_path / "probe")  # raises if the server did not start
    typo = write(folder, "command: ./run-srever {port}\nprofiles: [responses]\n", "typo.yaml")
    with pytest.raises(TargetConfigError) as e:
        load_target(typo)
    assert str(e.value) == f"{typo}:1: command: program './run-srever' does not exist (looked for {folder / 'run-srever'})"


def test_a_command_that_exits_before_readiness_fails_the_probe_once(tmp_path):
    p = write(tmp_path, "command: '{python} -m missing_module --port {port}'\nprofiles: [responses]\n")
    with pytest.raises(TargetConfigError) as e:
        probe_target(load_target(p), tmp_path / "probe")
    text = str(e.value)
    assert text.startswith(f"{p}: command: target t did not start: target exited with code 1")
    assert text.count("No module named missing_module") == 1, text


# -- claims -------------------------------------------------------------------------------------

def test_an_unknown_claim_is_a_file_line_error_with_did_you_mean(tmp_path):
    p = write(tmp_path, "command: python\nprofiles: [responses]\nclaims:\n  - cancel\n  - checkpoint\n")
    with pytest.raises(TargetConfigError) as e:
        load_target(p)
    assert str(e.value).startswith(f"{p}:5: claims[1]: unknown claim 'checkpoint' (did you mean checkpoints? known: ")
    assert "\n" not in str(e.value)


def test_the_schema_lists_every_claim_a_contract_or_suite_can_need():
    from conformance.contract import CAPABILITIES
    from conformance.targets import IMPLICIT_CLAIMS, KNOWN_CLAIMS, target_schema

    assert target_schema()["properties"]["claims"]["items"]["enum"] == list(KNOWN_CLAIMS)
    assert set(CAPABILITIES) | {"multi_worker"} | IMPLICIT_CLAIMS == set(KNOWN_CLAIMS)
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert all(f"`{claim}`" in readme for claim in KNOWN_CLAIMS)


def test_a_command_that_expands_to_nothing_is_one_line(tmp_path):
    p = write(tmp_path, "command: '${EMPTY} '\nprofiles: [responses]\n")
    with pytest.raises(TargetConfigError) as e:
        load_target(p, environ={"EMPTY": ""})
    assert str(e.value) == f"{p}:1: command: target command is empty"
