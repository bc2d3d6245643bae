"""A stand-in for ``python -m pytest`` in the mutation runner's tests (no server, instant).

It reads the ``--conformance-target`` file the runner wrote, looks at the copy of reference_impl in its
``cwd``, and answers like pytest would: a file of the copy holding ``MUTANT_KILLS`` fails one
test (exit 1, junit names it); otherwise every test passes (exit 0). ``FAKE_PYTEST_MODE``
forces other answers: ``crash`` (exit 3), ``fail-unnamed`` (exit 1, no junit), ``no-tests``
(exit 0, empty junit), ``usage`` (exit 4), ``xdist-x`` (a failure, then exit 2 as pytest-xdist
does under -x), ``interrupted`` (exit 2, nothing failed). The argv is appended to ``FAKE_PYTEST_ARGV`` if set.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import yaml

CASE = '<testcase classname="contracts.responses.cancel.yaml" name="{name}" time="0.1">{inner}</testcase>'


def main(argv: list[str]) -> int:
    junit = Path(argv[argv.index("--junitxml") + 1])
    target = yaml.safe_load(Path(argv[argv.index("--conformance-target") + 1]).read_text())
    if os.environ.get("FAKE_PYTEST_ARGV"):
        with open(os.environ["FAKE_PYTEST_ARGV"], "a") as f:
            f.write(" ".join(argv) + "\n")
    mode = os.environ.get("FAKE_PYTEST_MODE", "")
    if mode == "crash":
        print("INTERNALERROR> boom")
        return 3
    if mode == "usage":
        print("ERROR: usage")
        return 4
    if mode == "interrupted":
        print("!!! Interrupted: 1 error during collection !!!")
        return 2
    if mode == "fail-unnamed":
        print("1 failed")
        return 1
    cases = []
    if mode != "no-tests":
        copy = Path(target["cwd"]) / "reference_impl"
        killed = any("MUTANT_KILLS" in p.read_text() for p in copy.rglob("*.py"))
        cases.append(CASE.format(name="BG[created,stream=false]", inner=""))
        inner = '<failure message="violation">status</failure>' if killed else ""
        cases.append(CASE.format(name="BG[held,stream=true]", inner=inner))
    junit.write_text('<?xml version="1.0"?><testsuites><testsuite name="pytest">' + "".join(cases) + "</testsuite></testsuites>")
    failed = any("failure" in c for c in cases)
    if failed and mode == "xdist-x":
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
