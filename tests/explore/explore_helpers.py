"""Helpers of the exploration tests (a unique module name: test dirs share sys.path)."""

from __future__ import annotations

from pathlib import Path

from conformance.targets import TargetConfig, load_target

TINY = Path(__file__).with_name("tiny_target.py")


def tiny_config(tmp_path: Path, bug: str = "none") -> TargetConfig:
    """A target file for the tiny target with ``--bug <bug>``."""
    path = tmp_path / f"tiny-{bug}.yaml"
    path.write_text(
        f"name: tiny-{bug}\n"
        f"command: \"{{python}} {TINY} --port {{port}} --state-dir {{state_dir}} --bug {bug}\"\n"
        "readiness: {path: /readiness, timeout_s: 10}\n"
        "shutdown_grace_s: 5\n"
        "profiles: [responses]\n"
        "modes:\n  resilient_background: {args: [--resilient-background]}\n"
        "claims: [resilient_background, cancel]\n"
    )
    return load_target(path)
