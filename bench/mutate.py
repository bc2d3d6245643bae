"""The mutation gate: does the kit catch realistic bugs planted in the reference server?

    python bench/mutate.py                       # every mutant of bench/mutants.yaml, full `pytest conformance -x`
    python bench/mutate.py --ci                  # the CI subset: mutants marked `ci`, each with its `k` expression
    python bench/mutate.py --only R-cancel-failed-200 --only I-resume-inclusive
    python bench/mutate.py --json out.json -n 2  # also a JSON report; pytest-xdist with 2 workers
    python bench/mutate.py --list                # the set, no run
    python bench/mutate.py --only r-cancel-failed-200 -- -k terminal   # extra pytest arguments after --

Each mutant is one ``(file, old, new)`` replacement in ``reference_impl/`` that breaks one rule of
docs/protocol.md (``rule``: an id of docs/rules.md). For each mutant the runner copies
``reference_impl/`` into a temporary directory, applies the replacement there (never in the
repo), writes a target file that is the bundled one with ``cwd`` set to that directory (so
``python -m reference_impl`` imports the copy), and runs ``pytest conformance --conformance-target <it> -x``.

Verdicts, one per mutant:

- ``killed``: pytest exited 1 (or 2, "interrupted", which is how ``-x`` stops under pytest-xdist)
  and its junit XML names a failed test (the killing test id is reported);
- ``survived``: pytest exited 0 with at least one test passed: the kit did not notice the bug;
- ``error``: anything else, never counted as killed or survived: the ``old`` text is not in the
  file exactly once (the mutant no longer applies: update it), pytest could not run (exit 2-5),
  it ran no test, or it failed without naming a test.

The exit status is 0 when every mutant was killed, 1 when one survived or errored, 2 on a bad
mutants file or option (one ``ERROR:`` line).
"""

from __future__ import annotations

import argparse
import json
import py_compile
import re
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
MUTANTS_FILE = ROOT / "bench" / "mutants.yaml"
BASE_TARGET = ROOT / "conformance" / "targets" / "reference.yaml"
PACKAGE = "reference_impl"
MUTANT_KEYS = {"id", "rule", "file", "old", "new", "why", "k", "ci", "profile"}
PROFILES = ("responses", "invocations")
# The profile a file of reference_impl serves: a mutant there is run against that profile's
# tables and suites only (--conformance-profile); a file both profiles use runs against everything.
FILE_PROFILES = {
    f"{PACKAGE}/responses.py": "responses",
    f"{PACKAGE}/runtime.py": "responses",
    f"{PACKAGE}/invocations.py": "invocations",
    f"{PACKAGE}/sessions.py": "invocations",
}
REQUIRED_KEYS = ("id", "rule", "file", "old", "new", "why")
ID_RE = re.compile(r"[a-z0-9][a-z0-9.-]{0,63}")


class MutantsFileError(Exception):
    """The mutants file is unusable; the message is one line (with ``file:line`` when known)."""


@dataclass(frozen=True)
class Mutant:
    """One planted bug: replace ``old`` (exactly one occurrence) by ``new`` in ``file``."""

    id: str
    rule: str  # docs/rules.md id of the rule it breaks
    file: str  # path relative to the repo root, under reference_impl/
    old: str
    new: str
    why: str  # what the bug does, in the words of docs/protocol.md
    k: str | None = None  # pytest -k expression: the cells the rule maps to (the CI subset runs only these)
    ci: bool = False  # part of the subset `.ci/run` runs
    profile: str | None = None  # run only this profile's tests (default: from FILE_PROFILES; None: both)
    line: int = 0  # where it is defined in the mutants file

    @property
    def run_profile(self) -> str | None:
        return self.profile or FILE_PROFILES.get(self.file)


@dataclass
class Outcome:
    """The verdict on one mutant."""

    id: str
    rule: str
    verdict: str  # killed | survived | error
    killer: str | None = None  # the first failed test id (killed)
    detail: str = ""
    seconds: float = 0.0
    failed: list[str] = field(default_factory=list)


class NotApplicable(Exception):
    """The mutant's ``old`` text is not in its file exactly once."""


# ------------------------------------------------------------------------------------------ loading
def load_mutants(path: Path) -> list[Mutant]:
    """Parse and check the mutants file (a YAML list of mappings)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MutantsFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise MutantsFileError(f"{where}: YAML error: {getattr(exc, 'problem', None) or exc}") from None
    if root is None or not isinstance(root, yaml.SequenceNode):
        raise MutantsFileError(f"{path}:1: expected a list of mutants")
    mutants: list[Mutant] = []
    seen: dict[str, int] = {}
    for node in root.value:
        line = node.start_mark.line + 1
        if not isinstance(node, yaml.MappingNode):
            raise MutantsFileError(f"{path}:{line}: a mutant must be a mapping")
        data = yaml.safe_load(yaml.serialize(node))
        unknown = sorted(set(data) - MUTANT_KEYS)
        if unknown:
            raise MutantsFileError(f"{path}:{line}: unknown key {unknown[0]!r} (known: {', '.join(sorted(MUTANT_KEYS))})")
        for key in REQUIRED_KEYS:
            if not isinstance(data.get(key), str) or not data[key]:
                raise MutantsFileError(f"{path}:{line}: {key!r} must be a non-empty string")
        if not ID_RE.fullmatch(data["id"]):
            raise MutantsFileError(f"{path}:{line}: id {data['id']!r} must match {ID_RE.pattern}")
        if data["old"] == data["new"]:
            raise MutantsFileError(f"{path}:{line}: mutant {data['id']!r}: 'new' equals 'old'")
        if not data["file"].startswith(PACKAGE + "/") or ".." in Path(data["file"]).parts:
            raise MutantsFileError(f"{path}:{line}: mutant {data['id']!r}: file must be under {PACKAGE}/")
        if data["id"] in seen:
            raise MutantsFileError(f"{path}:{line}: duplicate id {data['id']!r} (first at line {seen[data['id']]})")
        if "k" in data and not isinstance(data["k"], str):
            raise MutantsFileError(f"{path}:{line}: 'k' must be a string (a pytest -k expression)")
        if "ci" in data and not isinstance(data["ci"], bool):
            raise MutantsFileError(f"{path}:{line}: 'ci' must be true or false")
        if "profile" in data and data["profile"] not in PROFILES:
            raise MutantsFileError(f"{path}:{line}: 'profile' must be one of {', '.join(PROFILES)}")
        if data.get("ci") and not data.get("k"):
            raise MutantsFileError(f"{path}:{line}: mutant {data['id']!r}: a ci mutant needs a 'k' expression")
        seen[data["id"]] = line
        mutants.append(Mutant(**{k: data[k] for k in data}, line=line))
    if not mutants:
        raise MutantsFileError(f"{path}:1: no mutants")
    return mutants


# ------------------------------------------------------------------------------------------ applying
def apply_mutant(mutant: Mutant, src_root: Path, dest_root: Path) -> Path:
    """Copy ``src_root/reference_impl`` to ``dest_root`` and plant the mutant there; the mutated file.

    Raises NotApplicable when ``old`` is not in the file exactly once, or the result does not compile
    (a syntax error would be "killed" by any test: it proves nothing)."""
    src_pkg = src_root / PACKAGE
    dest_pkg = dest_root / PACKAGE
    shutil.copytree(src_pkg, dest_pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    target = dest_root / mutant.file
    if not target.is_file():
        raise NotApplicable(f"{mutant.file} does not exist")
    text = target.read_text(encoding="utf-8")
    count = text.count(mutant.old)
    if count != 1:
        what = "not found" if count == 0 else f"found {count} times (must be exactly once)"
        raise NotApplicable(f"the old text of {mutant.id} is {what} in {mutant.file}")
    target.write_text(text.replace(mutant.old, mutant.new), encoding="utf-8")
    if target.suffix == ".py":
        try:
            py_compile.compile(str(target), cfile=str(dest_root / ".compiled.pyc"), doraise=True)
        except py_compile.PyCompileError as exc:
            raise NotApplicable(f"{mutant.id} does not compile: {exc.msg.strip().splitlines()[-1]}") from None
    return target


def write_target(base_target: Path, copy_root: Path, out: Path, name: str) -> Path:
    """The bundled target, run from ``copy_root`` so that ``-m reference_impl`` is the mutated copy."""
    data = yaml.safe_load(base_target.read_text(encoding="utf-8"))
    data["name"] = name
    data["cwd"] = str(copy_root)
    out.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return out


# ------------------------------------------------------------------------------------------ judging
def failed_tests(junit: Path) -> list[str]:
    """Test ids (``file::name``) of the failed or errored test cases of a junit XML, in file order."""
    try:
        tree = ET.parse(junit)
    except (OSError, ET.ParseError):
        return []
    failed = []
    for case in tree.iter("testcase"):
        if case.find("failure") is None and case.find("error") is None:
            continue
        failed.append(_case_id(case))
    return failed


def _case_id(case: ET.Element) -> str:
    classname = case.get("classname", "")
    name = case.get("name", "")
    for prop in case.iter("property"):
        if prop.get("name") == "conformance_result":
            try:
                cell = json.loads(prop.get("value") or "{}").get("id")
            except ValueError:
                cell = None
            if cell:
                return str(cell)
    if classname.endswith(".yaml"):
        return f"{classname[: -len('.yaml')].replace('.', '/')}.yaml::{name}"
    return f"{classname.replace('.', '/')}.py::{name}"


def passed_count(junit: Path) -> int:
    try:
        tree = ET.parse(junit)
    except (OSError, ET.ParseError):
        return 0
    return sum(
        1
        for case in tree.iter("testcase")
        if all(case.find(t) is None for t in ("failure", "error", "skipped"))
    )


def classify(mutant: Mutant, returncode: int, junit: Path, output_tail: str) -> Outcome:
    """killed / survived / error from pytest's exit status and junit XML."""
    failed = failed_tests(junit)
    # 2 is pytest's "interrupted": what -x does under pytest-xdist after the first failure.
    if returncode in (1, 2) and failed:
        return Outcome(mutant.id, mutant.rule, "killed", killer=failed[0], failed=failed)
    if returncode == 0:
        if passed_count(junit) == 0:
            return Outcome(mutant.id, mutant.rule, "error", detail="pytest passed but ran no test")
        return Outcome(mutant.id, mutant.rule, "survived", detail="every test passed")
    if returncode == 1:
        return Outcome(mutant.id, mutant.rule, "error", detail=f"pytest failed without naming a test: {output_tail}")
    return Outcome(mutant.id, mutant.rule, "error", detail=f"pytest exit {returncode}: {output_tail}")


# ------------------------------------------------------------------------------------------ running
def run_one(
    mutant: Mutant,
    *,
    pytest_cmd: Sequence[str],
    src_root: Path = ROOT,
    base_target: Path = BASE_TARGET,
    use_k: bool = False,
    workers: int = 0,
    extra: Sequence[str] = (),
    keep: Path | None = None,
    plant: bool = True,
) -> Outcome:
    """Plant ``mutant`` in a temporary copy, run the kit against it (fail-fast), judge.

    ``plant=False`` runs the unmutated copy (the control: it must pass, or no verdict means anything)."""
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix=f"mutant-{mutant.id}-", dir=keep))
    try:
        copy_root = tmp / "copy"
        copy_root.mkdir()
        try:
            if plant:
                apply_mutant(mutant, src_root, copy_root)
            else:
                shutil.copytree(src_root / PACKAGE, copy_root / PACKAGE, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        except NotApplicable as exc:
            return Outcome(mutant.id, mutant.rule, "error", detail=f"not applicable: {exc}",
                           seconds=time.monotonic() - started)
        target = write_target(base_target, copy_root, tmp / "target.yaml", f"mutant-{mutant.id}")
        junit = tmp / "junit.xml"
        argv = [*pytest_cmd, "conformance", "--conformance-target", str(target), "-x", "-q", "-p", "no:randomly",
                "--junitxml", str(junit), "--conformance-results", str(tmp / "results")]
        if mutant.run_profile:
            argv += ["--conformance-profile", mutant.run_profile]
        if workers:
            argv += ["-n", str(workers)]
        if use_k and mutant.k:
            argv += ["-k", mutant.k]
        argv += list(extra)
        returncode, output = _run_pytest(argv, src_root, tmp / "pytest.log")
        tail = " | ".join(line for line in output.strip().splitlines()[-3:])[:400]
        outcome = classify(mutant, returncode, junit, tail)
        outcome.seconds = time.monotonic() - started
        return outcome
    finally:
        if keep is None:
            shutil.rmtree(tmp, ignore_errors=True)


def _run_pytest(argv: list[str], cwd: Path, log: Path) -> tuple[int, str]:
    """Run pytest; on Ctrl-C, interrupt it too and wait, so that its harness sweeps the servers."""
    with log.open("w+", encoding="utf-8", errors="replace") as out:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        try:
            returncode = proc.wait()
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)
            proc.wait()
            raise
        out.seek(0)
        return returncode, out.read()


def summary(outcomes: list[Outcome]) -> dict[str, Any]:
    counts = {v: sum(1 for o in outcomes if o.verdict == v) for v in ("killed", "survived", "error")}
    judged = counts["killed"] + counts["survived"]
    return {
        **counts,
        "total": len(outcomes),
        "detection_rate": round(counts["killed"] / judged, 3) if judged else None,
        "seconds": round(sum(o.seconds for o in outcomes), 1),
    }


def render_line(o: Outcome) -> str:
    what = o.killer if o.verdict == "killed" else o.detail
    return f"{o.verdict:8} {o.id:34} {o.seconds:6.1f}s  {o.rule:34} {what}"


def check_all(mutants: list[Mutant], src_root: Path = ROOT) -> int:
    """Apply each mutant to a scratch copy: 0 when all apply and compile, else 1 (one line each)."""
    bad = 0
    for m in mutants:
        with tempfile.TemporaryDirectory(prefix="mutant-check-") as tmp:
            try:
                apply_mutant(m, src_root, Path(tmp))
            except NotApplicable as exc:
                bad += 1
                print(f"error    {m.id}: not applicable: {exc}")
    print(f"{len(mutants) - bad} of {len(mutants)} mutant(s) apply")
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mutants", type=Path, default=MUTANTS_FILE, help="mutants file (default bench/mutants.yaml)")
    parser.add_argument("--only", action="append", default=[], metavar="ID", help="run only this mutant (repeatable)")
    parser.add_argument("--ci", action="store_true", help="the CI subset: mutants marked ci, each restricted to its -k")
    parser.add_argument("--use-k", action="store_true", help="restrict every mutant's run to its -k expression")
    parser.add_argument("-n", type=int, default=0, metavar="N", help="pytest-xdist workers per run (0: serial; 2 at most here)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write a JSON report here")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR", help="keep each mutant's copy, target and results under DIR")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--control", action="store_true",
                        help="first run the unmutated copy the same way (all of the chosen mutants' -k); it must pass")
    parser.add_argument("--check", action="store_true", help="only check that every mutant applies and compiles (no pytest)")
    parser.add_argument("pytest_args", nargs="*", metavar="-- PYTEST ARGS",
                        help="more pytest arguments for every run, after '--' (e.g. -- -k stops)")
    parser.add_argument("--pytest", default=None, help=argparse.SUPPRESS)  # a fake pytest, for the runner's own tests
    args = parser.parse_args(argv)
    try:
        mutants = load_mutants(args.mutants)
    except MutantsFileError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    known = {m.id for m in mutants}
    for wanted in args.only:
        if wanted not in known:
            print(f"ERROR: --only {wanted!r}: no such mutant in {args.mutants}", file=sys.stderr)
            return 2
    if args.n < 0:
        print("ERROR: -n must be >= 0", file=sys.stderr)
        return 2
    chosen = [m for m in mutants if (not args.only or m.id in args.only) and (not args.ci or m.ci)]
    if args.list:
        for m in chosen:
            print(f"{m.id:34} {m.rule:34} {'ci ' if m.ci else '   '}{m.file}: {m.why}")
        return 0
    if args.check:
        return check_all(chosen)
    pytest_cmd = [sys.executable, args.pytest] if args.pytest else [sys.executable, "-m", "pytest"]
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
    if args.control:
        ks = [m.k for m in chosen if m.k] if (args.ci or args.use_k) else []
        control = Mutant(id="control", rule="-", file=f"{PACKAGE}/__init__.py", old="-", new="+", why="unmutated",
                         k=" or ".join(f"({k})" for k in ks) or None)
        outcome = run_one(control, pytest_cmd=pytest_cmd, use_k=bool(ks), workers=args.n, keep=args.keep, plant=False,
                          extra=args.pytest_args)
        print(f"control  unmutated copy {outcome.seconds:6.1f}s  "
              + ("passes" if outcome.verdict == "survived" else f"FAILS: {outcome.killer or outcome.detail}"), flush=True)
        if outcome.verdict != "survived":
            print("ERROR: the unmutated reference server does not pass: no mutant verdict would mean anything", file=sys.stderr)
            return 1
    outcomes = []
    print(f"mutation gate: {len(chosen)} mutant(s){' (CI subset)' if args.ci else ''}", flush=True)
    for m in chosen:
        outcome = run_one(m, pytest_cmd=pytest_cmd, use_k=args.ci or args.use_k, workers=args.n, keep=args.keep,
                          extra=args.pytest_args)
        outcomes.append(outcome)
        print(render_line(outcome), flush=True)
    totals = summary(outcomes)
    rate = "n/a" if totals["detection_rate"] is None else f"{totals['detection_rate']:.0%}"
    print(f"killed {totals['killed']}, survived {totals['survived']}, error {totals['error']} of {totals['total']}"
          f" (detection rate {rate}) in {totals['seconds']:.0f}s")
    if args.json is not None:
        report = {"mutants_file": str(args.mutants), "ci_subset": args.ci, "totals": totals,
                  "mutants": [asdict(o) for o in outcomes]}
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0 if totals["killed"] == totals["total"] else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
