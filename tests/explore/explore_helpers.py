"""Helpers of the exploration tests (a unique module name: test dirs share sys.path)."""

from __future__ import annotations

from pathlib import Path

from conformance.targets import TargetConfig, load_target

TINY = Path(__file__).with_name("tiny_target.py")


def tiny_config(tmp_path: Path, bug: str = "none", plain_script: str | None = None) -> TargetConfig:
    """A target file for the tiny target with ``--bug <bug>``; with ``plain_script`` (JSON) a
    black-box one (``control: none``) whose plain input runs that script."""
    path = tmp_path / f"tiny-{bug}{'-blackbox' if plain_script else ''}.yaml"
    plain = " --plain-script '{}'".format(plain_script.replace('"', '\\"')) if plain_script else ""  # inside a YAML "..." scalar
    path.write_text(
        f"name: tiny-{bug}\n"
        f"command: \"{{python}} {TINY} --port {{port}} --state-dir {{state_dir}} --bug {bug}{plain}\"\n"
        "readiness: {path: /readiness, timeout_s: 10}\n"
        "shutdown_grace_s: 5\n"
        "profiles: [responses]\n"
        "modes:\n  resilient_background: {args: [--resilient-background]}\n"
        "claims: [resilient_background, cancel]\n"
        + ("control: none\nblackbox: {input: \"Count from 1 to 20.\"}\n" if plain_script else "")
    )
    return load_target(path)
