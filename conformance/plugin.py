"""pytest plugin: ``pytest conformance`` turns every contract cell into one test item.

Options are validated before any test runs (one clear line for a bad target, contract glob,
profile, baseline, report path or results dir), then the target is started once and stopped (a
command that cannot start is one ``ERROR:`` with its log tail, not a failure per cell).  Collecting the ``conformance/`` package
directory yields one collector per contract table and one item per cell.  An item's pytest node
id keeps the contract file as its node, ``contracts/responses/resilience.yaml::R1[C,stream=true]``,
so a printed id can be pasted back to rerun that cell; the JSON report and the baseline name the
cell by its cell id, ``responses/resilience::R1[C,stream=true]`` (contract name, row, path,
variant), which does not depend on where the file lies or which directory pytest runs from.

Each item runs its cell through the executor, judges the History with the checkers and applies
the target's claims (unclaimed → skipped and counted), could-not-run (a checker said
``Unknown``: the fault did not happen, the executor failed → "not testable", a failure at every
level), the baseline (listed failure →
xfail, listed pass → stale, fails) and the level (MUST fails, SHOULD xfails as ``warn`` or fails
under ``--conformance-strict`` / ``strict: true``, MAY informs).  Suite tests hand their SHOULD
findings to the ``report_should`` fixture (verdict ``warn``, listed in the JSON report); the
baseline names them by ``conformance/suites/<module>::<test>[<params>]`` (``suite_id``) and
applies to them as to cells.  Every run has an exploration seed (``--conformance-seed``, else
drawn), printed at the end and written to the JSON report.
Results (``results.CellResult`` / ``SuiteResult``) travel as JSON in ``report.user_properties`` so that under pytest-xdist one controller sees them
all and writes one matrix, one JSON report and one HTML report (``--conformance-html``, default
``<run dir>/report.html``; ``conformance/htmlreport``).
"""

from __future__ import annotations

import glob
import json
import os
import random
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from .errors import KitError
from .results import CellResult, SuiteResult

PACKAGE_DIR = Path(__file__).resolve().parent
RESULT_KEY = "conformance_result"
PROFILES = ("responses", "invocations")
SEED_LIMIT = 1 << 32


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "stream-and-task conformance kit")
    group.addoption("--conformance-target", default=None, help="target.yaml to run against (default: the bundled reference server)")
    group.addoption("--conformance-contracts", default=None, help="glob of contract files (default: <rootdir>/contracts/**/*.yaml)")
    group.addoption("--conformance-profile", default=None, help="run only cells of this profile (responses | invocations)")
    group.addoption("--conformance-report", default=None, metavar="PATH", help="write the JSON report here")
    group.addoption("--conformance-baseline", default=None, metavar="PATH", help="expected-failures file (overrides the target's)")
    group.addoption(
        "--conformance-explore",
        type=int,
        default=0,
        metavar="N",
        help="examples per property-based exploration test (default: a small budget that keeps the suite fast)",
    )
    group.addoption(
        "--conformance-seed",
        type=int,
        default=None,
        metavar="N",
        help="seed of the exploration suites (default: a fresh one per run, printed at the end and in the JSON report; "
        "give it to repeat that run's exploration exactly)",
    )
    group.addoption(
        "--conformance-store",
        default=None,
        metavar="NAME[:OPTIONS]",
        help="store provider the target runs with (targets that declare `store:` in their target file)",
    )
    group.addoption(
        "--conformance-strict",
        action="store_true",
        default=False,
        help="SHOULD findings (cells and suite rules) fail the run instead of being reported as '~' "
        "(also: `strict: true` in the target file)",
    )
    group.addoption(
        "--conformance-html",
        default=None,
        metavar="PATH",
        help="write the HTML run report here (default: report.html in the run's results dir)",
    )
    group.addoption(
        "--conformance-results",
        default=None,
        metavar="DIR",
        help="where per-cell histories and incarnation logs go (default: <rootdir>/.conformance-results)",
    )


class Settings:
    """Validated options of one session (built lazily: only a conformance run needs them)."""

    def __init__(self, config: pytest.Config) -> None:
        from .contract import load_contracts
        from .targets import load_baseline, load_target

        opt = config.option
        self.target = load_target(opt.conformance_target)
        if opt.conformance_store:
            self.target = self.target.with_store(opt.conformance_store)
        if opt.conformance_explore < 0:
            raise KitError("--conformance-explore: expected a whole number >= 0")
        self.explore = opt.conformance_explore
        if opt.conformance_seed is not None and not 0 <= opt.conformance_seed < SEED_LIMIT:
            raise KitError(f"--conformance-seed: expected a whole number from 0 to {SEED_LIMIT - 1}")
        self.strict = bool(opt.conformance_strict or self.target.strict)
        baseline = Path(opt.conformance_baseline) if opt.conformance_baseline else self.target.baseline
        if baseline is not None and not baseline.is_file():
            raise KitError(f"--conformance-baseline: file {baseline} not found")
        self.baseline = load_baseline(baseline)
        self.baseline_path = baseline
        if opt.conformance_profile is not None and opt.conformance_profile not in PROFILES:
            raise KitError(f"--conformance-profile: unknown profile {opt.conformance_profile!r} (known: {', '.join(PROFILES)})")
        pattern = opt.conformance_contracts or str(default_contracts_dir(config) / "**" / "*.yaml")
        files = sorted(glob.glob(pattern, recursive=True))
        if not files:
            raise KitError(f"--conformance-contracts: no contract file matches {pattern!r}")
        tables = load_contracts(files)
        self.tables = [t for t in tables if opt.conformance_profile in (None, t.profile)]
        self.baseline_cells: set[str] | None = None
        """Set when some baseline entries name no cell: the cell ids, to check those entries
        against the suite tests too once the session can enumerate them (``check_suite_baseline``)."""
        if self.baseline:
            self.baseline_cells = _baseline_cells(self.baseline, tables, files, config)
        self.results_dir = Path(opt.conformance_results or config.rootpath / ".conformance-results").resolve()
        _check_creatable("--conformance-results", self.results_dir, directory=True)
        if opt.conformance_report:
            _check_creatable("--conformance-report", Path(opt.conformance_report), directory=False)
        if getattr(opt, "conformance_html", None):
            _check_creatable("--conformance-html", Path(opt.conformance_html), directory=False)
        workerinput = getattr(config, "workerinput", None)
        if workerinput is not None and "conformance_run_dir" in workerinput:
            self.run_dir = Path(workerinput["conformance_run_dir"])
            self.seed: int = workerinput["conformance_seed"]
        else:
            self.run_dir = self.results_dir / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
            self.seed = opt.conformance_seed if opt.conformance_seed is not None else random.randrange(SEED_LIMIT)


KIT_CONTRACTS_DIR = PACKAGE_DIR.parent / "contracts"


def default_contracts_dir(config: pytest.Config) -> Path:
    """Where contracts are looked for without ``--conformance-contracts``: ``<rootdir>/contracts/``, or the
    kit's own ``contracts/`` (next to the package) when the rootdir has none.  pytest picks the
    rootdir from the paths on the command line (a pasted node id, an existing results dir, a
    target file next to a ``pytest.ini``), so the same run typed two ways may get two rootdirs;
    the fallback keeps a pasted suite id runnable from a user's own directory."""
    own = config.rootpath / "contracts"
    return own if own.is_dir() else KIT_CONTRACTS_DIR


def _baseline_cells(entries: dict[str, str], tables: list[Any], files: list[str], config: pytest.Config) -> set[str] | None:
    """None when every baseline entry names an existing cell, else every cell id there is (the
    entries left are suite test ids or unknown: ``check_suite_baseline`` decides).  An entry for
    a cell that ``--conformance-profile`` or ``--conformance-contracts`` left out is not unknown: the ids are looked up in
    every table of the ``--conformance-contracts`` files (before the profile filter) and, only when that
    leaves some unknown, in the default contracts dir too.  ``-k`` and node-id selection change
    what is collected, not what exists, so they never make an entry unknown."""
    from .contract import load_contracts

    known = {c.id for t in tables for c in t.cells}
    if all(e in known for e in entries):
        return None
    loaded = {str(Path(f).resolve()) for f in files}
    others = [f for f in glob.glob(str(default_contracts_dir(config) / "**" / "*.yaml"), recursive=True)
              if str(Path(f).resolve()) not in loaded]
    if others:
        try:
            known |= {c.id for t in load_contracts(sorted(others)) for c in t.cells}
        except KitError:
            pass  # a broken contract outside this run's selection is not this run's problem
    return None if all(e in known for e in entries) else known


def suite_id(item: pytest.Item) -> str:
    """The id of a test of ``conformance/suites/`` in the JSON report and the baseline: its
    pytest node id from the repository root, ``conformance/suites/<module>::<test>[<params>]``,
    whatever directory pytest runs from."""
    chain = item.listchain()
    module = next(i for i, node in enumerate(chain) if isinstance(node, pytest.Module))
    return f"conformance/suites/{chain[module].path.name}::" + "::".join(n.name for n in chain[module + 1:])


def all_suite_ids(session: pytest.Session) -> set[str]:
    """The id of every test of ``conformance/suites/`` (every profile's), parametrized by pytest
    itself: each module is collected on a node of its own, outside the session's tree (its node
    id is not a prefix of any real node's, so the fixtures it registers apply to nothing).  A
    module that cannot be imported contributes nothing here; its real collection reports it."""
    ids: set[str] = set()
    for module in sorted(SUITES_DIR.glob("test_*.py")):
        stack: list[Any] = [pytest.Module.from_parent(session, path=module, nodeid=f"<baseline check>/{module.name}")]
        while stack:
            node = stack.pop()
            if isinstance(node, pytest.Item):
                ids.add(suite_id(node))
                continue
            try:
                stack.extend(node.collect())
            except Exception:  # noqa: BLE001 - an import error is the real collection's to report
                continue
    return ids


def check_suite_baseline(session: pytest.Session) -> None:
    """Baseline entries that name no cell must name a suite test, else one ``baseline:line:``
    error per entry with the closest cell or suite id, before any test runs."""
    from .targets import check_baseline_ids

    s = settings(session.config)
    if s.baseline_cells is None or s.baseline_path is None:
        return
    check_baseline_ids(s.baseline_path, s.baseline, s.baseline_cells | all_suite_ids(session))


def _check_creatable(option: str, path: Path, *, directory: bool) -> None:
    """``path`` is (or can be created as) a directory / a writable file: a mistake is one
    KitError before any test runs, not a traceback after all of them."""
    if path.exists():
        if directory and not path.is_dir():
            raise KitError(f"{option}: {path} is a file, not a directory")
        if not directory and path.is_dir():
            raise KitError(f"{option}: {path} is a directory; give a file path (e.g. {path / 'report.json'})")
        if not os.access(path, os.W_OK):
            raise KitError(f"{option}: {path} is not writable")
        return
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise KitError(f"{option}: cannot create {path}: {ancestor} is a file, not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise KitError(f"{option}: cannot create {path}: {ancestor} is not writable")


def settings(config: pytest.Config) -> Settings:
    cached = getattr(config, "_conformance_settings", None)
    if cached is None:
        cached = Settings(config)
        config._conformance_settings = cached  # type: ignore[attr-defined]
    return cached


def _conformance_requested(config: pytest.Config) -> bool:
    """True when this run collects cells or suite tests: the conformance package, a contract
    file, a suite module (a pasted suite test id), or a kit option."""
    opt = config.option
    if any(getattr(opt, name, None) for name in ("conformance_target", "conformance_contracts", "conformance_profile", "conformance_report", "conformance_html", "conformance_baseline", "conformance_store")):
        return True
    contracts_dir = default_contracts_dir(config).resolve()
    for arg in config.args:
        path = Path(arg.split("::")[0]).resolve()
        if path in (PACKAGE_DIR, contracts_dir) or contracts_dir in path.parents or SUITES_DIR in (path, *path.parents):
            return True
    return False


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "conformance_cell: a generated contract cell")
    if not _conformance_requested(config):
        return
    try:
        s = settings(config)
    except KitError as exc:
        raise pytest.UsageError(str(exc)) from None
    if not hasattr(config, "workerinput"):  # controller (or plain run): this run's own dir
        config._conformance_results = []  # type: ignore[attr-defined]
        config._conformance_suites = {}  # type: ignore[attr-defined]
        config._conformance_t0 = time.time()  # type: ignore[attr-defined]
        try:
            _prepare_run_dir(s.results_dir, s.run_dir)
        except OSError as exc:
            raise pytest.UsageError(f"--conformance-results: cannot create {s.run_dir}: {exc.strerror or exc}") from None
        if not config.option.collectonly:
            _probe(s)


def _probe(s: Settings) -> None:
    """Start the target once before any test (see ``targets.probe_target``): a command that
    cannot start is one ``ERROR:`` line, not a "not testable" failure per cell.  Only the
    controller probes (xdist workers start after it), and ``--collect-only`` does not."""
    from .targets import probe_target

    try:
        probe_target(s.target, s.run_dir / "probe")
    except KitError as exc:
        raise pytest.UsageError(str(exc)) from None


KEEP_RUNS = 5
IDLE_BEFORE_PRUNE_S = 3600


def _prepare_run_dir(results_dir: Path, run_dir: Path) -> None:
    """Create this run's directory, point ``latest`` at it, prune all but the newest runs.

    Every run has its own directory, and only runs idle for an hour are pruned, so concurrent
    sessions never delete each other's evidence.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    latest = results_dir / "latest"
    try:
        if latest.is_symlink() or latest.exists():
            latest.unlink()
        latest.symlink_to(run_dir.name)
    except OSError:
        pass
    runs = sorted(p for p in results_dir.glob("run-*") if p.is_dir() and p != run_dir)
    idle_since = time.time() - IDLE_BEFORE_PRUNE_S
    for old in runs[: max(len(runs) - (KEEP_RUNS - 1), 0)]:
        if old.stat().st_mtime < idle_since:  # a run still adding cells may belong to a live session
            shutil.rmtree(old, ignore_errors=True)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist: every worker writes into the controller's run directory."""
    s = getattr(node.config, "_conformance_settings", None)
    if s is not None:
        node.workerinput["conformance_run_dir"] = str(s.run_dir)
        node.workerinput["conformance_seed"] = s.seed  # one seed for the run, whichever worker explores


@pytest.hookimpl(tryfirst=True)
def pytest_collect_directory(path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if path.resolve() != PACKAGE_DIR:
        return None
    return SuiteDir.from_parent(parent, path=path, nodeid=node_id(parent.config, path))


def node_id(config: pytest.Config, path: Path) -> str:
    """The node id of a kit file (contract, package dir, suite module): its path relative to the
    rootdir, with ``..`` when it lies outside.  pytest prints ids relative to the directory it
    runs in, so every printed id is a path that leads to the file and can be pasted back.
    (pytest's own id for a file outside the rootdir is relative to the command-line argument it
    was found under: ``suites/test_x.py``, or ``::test_y`` for a pasted module, which leads
    nowhere.)"""
    return Path(os.path.relpath(path, config.rootpath)).as_posix()


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    """A suite module named on the command line by itself (a pasted suite test id whose
    directories pytest does not walk, being outside its rootdir) keeps its path as its id."""
    if module_path.parent.resolve() != SUITES_DIR:
        return None
    return pytest.Module.from_parent(parent, path=module_path, nodeid=node_id(parent.config, module_path))


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """A contract file named on the command line (or under a named directory) is collected."""
    if file_path.suffix not in (".yaml", ".yml") or not _conformance_requested(parent.config):
        return None
    table = _table_for(parent.config, file_path)
    return ContractFile.from_parent(parent, path=file_path, table=table, nodeid=node_id(parent.config, file_path)) if table else None


def _table_for(config: pytest.Config, path: Path) -> Any:
    wanted = path.resolve()
    for table in settings(config).tables:
        if Path(table.source).resolve() == wanted:
            return table
    return None


SUITES_DIR = PACKAGE_DIR / "suites"


def suite_profile(module: Path) -> str | None:
    """The profile a suite module belongs to: the last word of its name,
    ``test_<what>_<profile>.py``.  A module without one (the store provider contract, the
    multi-worker suite) belongs to every profile.  With ``--conformance-profile``, modules of the other
    profile are not collected at all."""
    return next((p for p in PROFILES if module.stem.endswith(f"_{p}")), None)


class SuiteDir(pytest.Directory):
    """The conformance package directory: one File collector per contract table, then the
    property-based and adversarial suites (``SuitesDir``, ``conformance/suites/``).

    Every printed id can be run again as is: cells keep the contract file as their node
    (``contracts/responses/resilience.yaml::R1[C,stream=true]``), and suite tests keep their
    real path below this directory (``conformance/suites/test_x.py::test_y[p]``).
    """

    def collect(self):  # type: ignore[override]
        s = settings(self.config)
        for table in s.tables:
            path = Path(table.source).resolve()
            yield ContractFile.from_parent(self, path=path, table=table, nodeid=node_id(self.config, path))
        yield SuitesDir.from_parent(self, path=SUITES_DIR, nodeid=node_id(self.config, SUITES_DIR))

    def repr_failure(self, excinfo):  # type: ignore[override]
        if isinstance(excinfo.value, KitError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


class SuitesDir(pytest.Directory):
    """``conformance/suites/``: its ``test_*.py`` modules (those of the other profile left out
    under ``--profile``).  It is a level of the collection tree of its own because pytest finds
    a pasted node id by walking the path one directory at a time: with the modules hung directly
    under the package directory, ``conformance/suites/test_x.py::test_y`` matched nothing."""

    def collect(self):  # type: ignore[override]
        wanted = self.config.option.conformance_profile
        for module in sorted(self.path.glob("test_*.py")):
            if wanted is None or suite_profile(module) in (None, wanted):
                yield pytest.Module.from_parent(self, path=module, nodeid=node_id(self.config, module))


class ContractFile(pytest.File):
    """One contract table (a YAML file): yields one item per cell."""

    def __init__(self, *, table: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.table = table

    def collect(self):  # type: ignore[override]
        for cell in self.table.cells:
            yield CellItem.from_parent(self, name=cell.name, cell=cell)


def could_not_run(findings: list[Any]) -> bool:
    """True when a checker said ``Unknown`` (history.py: the fault did not happen, the executor
    failed, a probe could not be made): judged by the finding's type, never by the checker's
    name or its text.  Such a cell fails as "not testable" at every level, and before the
    baseline is consulted, since a claimed cell that could not run is never an xfail nor
    informational.  An Unknown wins over Violations found beside it (unlike Jepsen's merge,
    ``history.outcome``): they judge a run that was not the one the cell specifies, so they may
    be knock-ons (a crash that never happened leaves one handler start); they are still listed."""
    from .history import Unknown

    return any(isinstance(f, Unknown) for f in findings)


def cell_verdict(findings: list[Any], cell_level: str, *, strict: bool = False, in_baseline: bool = False) -> str:
    """A cell's verdict from its findings: ``not_testable`` (an Unknown), ``baseline`` /
    ``stale_baseline`` (listed as expected to fail: it did / it passed), ``pass``, or the level
    of the strongest violation: ``fail`` (MUST; SHOULD too when strict), ``warn`` (SHOULD),
    ``info`` (MAY)."""
    from .history import strongest_level

    if could_not_run(findings):
        return "not_testable"
    if in_baseline:
        return "baseline" if findings else "stale_baseline"
    if not findings:
        return "pass"
    # The verdict follows the strongest violation: a violation capped at SHOULD (a reading
    # the documents leave open, docs/protocol.md §6) only warns, even in a MUST cell.
    level = strongest_level(findings, cell_level)
    if level == "MUST" or (level == "SHOULD" and strict):
        return "fail"
    return "warn" if level == "SHOULD" else "info"


class CellFailed(Exception):
    """A cell's violations (or its baseline went stale)."""


class CellItem(pytest.Item):
    """One generated cell: run, judge, apply level / claims / baseline."""

    def __init__(self, *, cell: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cell = cell
        self.add_marker(pytest.mark.conformance_cell)
        for key, value in (
            ("contract", cell.contract),
            ("row", cell.row),
            ("path", cell.path),
            ("variant", cell.variant_id),
            ("level", cell.level),
        ):
            self.user_properties.append((key, value))

    def reportinfo(self):  # type: ignore[override]
        file, _, line = self.cell.source.rpartition(":")
        return Path(file or self.cell.source), (int(line) - 1 if line.isdigit() else None), self.cell.id

    def _record(self, verdict: str, **extra: Any) -> None:
        cell = self.cell
        result = CellResult(
            id=cell.id,
            contract=cell.contract,
            row=cell.row,
            path=cell.path,
            variant=cell.variant_id,
            level=cell.level,
            fault=cell.fault.describe(),
            source=cell.source,
            verdict=verdict,
            **extra,
        )
        self.user_properties.append((RESULT_KEY, result.to_json()))

    def runtest(self) -> None:
        from .checks import run_checks
        from .executor import run_cell
        from .history import strongest_level
        from .targets import cell_requires

        s = settings(self.config)
        cell = self.cell
        restarts = cell.fault.restarts_target
        missing = s.target.missing_claims(cell_requires(cell.requires, restarts), cell.profile)
        if missing:
            self._record("not_claimed", missing=missing)
            pytest.skip(f"not claimed by target {s.target.name}: {', '.join(missing)}")
        if s.target.blackbox:  # no test-control adapter: the cell's black-box variant, or why it needs one
            from .blackbox import derive

            derived = derive(cell)
            if isinstance(derived, str):
                self._record("not_claimed", missing=[f"control ({derived})"], control="needs")
                pytest.skip(f"not claimed by black-box target {s.target.name}: needs control: {derived}")
            cell = derived
        work_dir = s.run_dir / _slug(cell.id)
        started = time.monotonic()
        history = run_cell(cell, s.target, work_dir)
        duration = time.monotonic() - started
        violations = run_checks(history, cell)
        history_path = work_dir / "history.json"
        history_path.write_text(history.to_json(), encoding="utf-8")
        self._history_path = history_path
        self._work_dir = work_dir
        self._history = history
        texts = [str(v) for v in violations]
        baseline_reason = s.baseline.get(cell.id)
        verdict = cell_verdict(violations, cell.level, strict=s.strict, in_baseline=baseline_reason is not None)
        extra = {
            "violations": texts,
            "duration_s": round(duration, 3),
            "history": str(history_path),
            "incarnations": len(history.incarnations),
            "ready_s": [
                round(i.ready_at - i.started_at, 3) for i in history.incarnations if i.ready_at is not None
            ],
            "script": {k: v for k, v in cell.script.items()},
        }
        if cell.blackbox:
            extra["control"] = "blackbox"
            extra["black_box_fault"] = cell.fault.describe()
        if verdict == "not_testable":  # claimed but not run as specified: fails at every level, baseline or not
            self._record("not_testable", **extra)
            raise CellFailed("\n".join(texts))
        if verdict == "baseline":
            self._record("baseline", **extra)
            pytest.xfail(f"in baseline ({baseline_reason}): {texts[0]}")
        if verdict == "stale_baseline":
            self._record("stale_baseline", **extra)
            raise CellFailed(f"stale baseline: {cell.id} is listed as expected to fail ({baseline_reason}) but passed")
        if verdict == "pass":
            self._record("pass", **extra)
            return
        if verdict == "fail" and strongest_level(violations, cell.level) == "SHOULD":
            self._record("fail", strict=True, **extra)
            raise CellFailed("SHOULD not met (--conformance-strict):\n" + "\n".join(texts))
        if verdict == "fail":
            self._record("fail", **extra)
            raise CellFailed("\n".join(texts))
        if verdict == "warn":
            self._record("warn", **extra)
            pytest.xfail(f"SHOULD not met: {texts[0]}")
        self._record("info", **extra)  # MAY: informational only

    def repr_failure(self, excinfo):  # type: ignore[override]
        if isinstance(excinfo.value, CellFailed):
            lines = [f"{self.cell.id}  ({self.cell.level}, fault {self.cell.fault.describe()}, {self.cell.source})"]
            lines += [f"  - {line}" for line in str(excinfo.value).splitlines()]
            history = getattr(self, "_history", None)
            if history is not None:
                from .htmlreport.textline import text_timeline

                lines += [f"  {line}" for line in text_timeline(history, str(excinfo.value).splitlines())]
            work_dir = getattr(self, "_work_dir", None)
            if work_dir is not None:
                lines.append(f"  history: {self._history_path}")
                for log in sorted((work_dir / "logs").glob("incarnation-*.log")):
                    tail = log.read_text(errors="replace").splitlines()[-15:]
                    lines.append(f"  --- {log} (last {len(tail)} lines) ---")
                    lines += [f"  | {t}" for t in tail]
            return _cell_repr(lines, self.cell.source, str(excinfo.value))
        return super().repr_failure(excinfo)


def _cell_repr(lines: list[str], source: str, failure: str):
    """The failure text as pytest's own structured repr, so the short summary ("FAILED id - ...")
    carries one line (the first violation) even where pytest does not trim it (on CI): the log
    tails are printed once, in the failure section. xdist serializes this repr as it is."""
    from _pytest._code.code import ExceptionChainRepr, ReprEntryNative, ReprFileLocation, ReprTraceback

    path, _, line = source.rpartition(":")
    first = failure.splitlines()[0] if failure.strip() else "cell failed"
    more = len([t for t in failure.splitlines() if t.strip()]) - 1
    message = first + (f" (+{more} more line(s))" if more > 0 else "")
    crash = ReprFileLocation(path or source, int(line) if line.isdigit() else 0, message)
    traceback = ReprTraceback([ReprEntryNative(["\n".join(lines) + "\n"])], None, "native")
    return ExceptionChainRepr([(traceback, crash, None)])


# -- fixtures for the suites in conformance/suites/ -------------------------------------------
@pytest.fixture(scope="session")
def conformance_settings(request: pytest.FixtureRequest) -> Settings:
    """The validated options of this run (target, tables, explore budget, run dir)."""
    return settings(request.config)


@pytest.fixture(scope="session")
def conformance_target(conformance_settings: Settings) -> Any:
    """The TargetConfig under test (``--conformance-target``, ``--conformance-store`` applied)."""
    return conformance_settings.target


@pytest.fixture
def spawn_target(request: pytest.FixtureRequest, conformance_settings: Settings):
    """Factory: ``spawn_target(server={...}) -> started harness Target`` in a work dir of its own
    under this run's results dir; every target is closed at teardown, pass or fail.

    When the selected store withdraws ``durable_store`` (``--conformance-store memory``), starting a second
    incarnation skips the test as not claimed: state that does not survive a restart cannot be
    judged across one."""
    from harness.process import Target

    targets: list[Any] = []
    base = conformance_settings.run_dir / _slug(request.node.nodeid)
    cfg = conformance_settings.target
    factory: Any = Target
    if "durable_store" in cfg.withdrawn:
        reason = f"not claimed by target {cfg.name}: durable_store (withdrawn by store {cfg.store}): the test restarts the target"

        class OneLifetimeTarget(Target):
            def start(self) -> Any:
                if self.incarnations:
                    pytest.skip(reason)
                return super().start()

            def restart(self) -> Any:
                pytest.skip(reason)

        factory = OneLifetimeTarget

    def spawn(server: dict[str, Any] | None = None, *, worker: str | None = None, share_state_with: Target | None = None) -> Target:
        """``worker``: start it as that named worker (target file ``workers:``); ``share_state_with``:
        on that target's state and marker dirs (several workers of one store)."""
        shared = {"state_dir": share_state_with.state_dir, "marker_dir": share_state_with.marker_dir} if share_state_with else {}
        target = factory(conformance_settings.target.spec_for(server or {}, worker), base / f"target-{len(targets)}", **shared)
        targets.append(target)
        target.start()
        return target

    spawn.work_dir = base  # type: ignore[attr-defined]  # where a suite records what it leaves (steps.json)
    yield spawn
    for target in targets:
        target.close()


def _slug(cell_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=,-]+", "_", cell_id).strip("_")


@pytest.fixture
def report_should(request: pytest.FixtureRequest, conformance_settings: Settings):
    """``report_should(findings)``: a suite test hands over the SHOULD findings of its rules
    (``["rule: example", ...]``); they are listed in the JSON report and make the test's verdict
    ``warn`` (``~``), or fail it under ``--conformance-strict`` / ``strict: true``."""

    def report(findings: list[str]) -> None:
        if not findings:
            return
        request.node.user_properties.append((SHOULD_KEY, json.dumps(list(findings))))
        if conformance_settings.strict:
            pytest.fail("SHOULD not met (--conformance-strict):\n  - " + "\n  - ".join(findings), pytrace=False)

    return report


# -- suite outcomes, on the worker that ran the test ----------------------------------------
SUITE_KEY = "conformance_suite"
SHOULD_KEY = "conformance_should"
NOT_CLAIMED_SKIP = re.compile(r"\bnot claimed\b|\bdoes not claim\b")
"""A suite test skipped with such a reason (``not claimed by target …: multi_worker``, ``target
does not claim the responses profile``) is counted as "not claimed", the way an unclaimed cell is."""


def _suite_verdict(report: pytest.TestReport) -> tuple[str, str] | None:
    """The verdict (and its reason) one phase's report gives a suite test; None when this phase
    says nothing (a setup or teardown that went well)."""
    if report.failed:
        return "fail", ""
    if report.skipped:
        if hasattr(report, "wasxfail"):
            return "baseline", str(report.wasxfail)  # a known bug the suite lists: expected to fail
        longrepr = report.longrepr
        reason = str(longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else longrepr)
        reason = reason.removeprefix("Skipped: ")
        return ("not_claimed" if NOT_CLAIMED_SKIP.search(reason) else "not_run"), reason
    return ("pass", "") if report.when == "call" else None


def _apply_baseline(report: pytest.TestReport, call: Any, sid: str, reason: str) -> bool:
    """A suite test the baseline lists: a failure (of any phase) becomes an expected failure
    (xfail, verdict ``baseline``); a pass fails the run as stale.  True when it went stale."""
    if report.failed:
        what = call.excinfo.exconly().strip().splitlines()[0] if call.excinfo is not None else "failed"
        report.outcome = "skipped"
        report.wasxfail = f"in baseline ({reason}): {what}"
    elif report.passed and report.when == "call":
        report.outcome = "failed"
        report.longrepr = f"stale baseline: {sid} is listed as expected to fail ({reason}) but passed"
        return True
    return False


BLACKBOX_UNDECLARED = "needs control: this suite does not say how it runs without a test-control adapter"


def blackbox_suite_reason(module: Any) -> str | None:
    """Why a suite module cannot run against a black-box target (``control: none``), or None when
    it can.  A suite module says so itself with ``BLACKBOX``: ``True`` (it runs black-box; a test
    of it that still needs control skips itself with the reason) or a ``"needs control: ..."``
    text naming what it needs; a module that says nothing needs control."""
    declared = getattr(module, "BLACKBOX", None)
    if declared is True:
        return None
    return declared if isinstance(declared, str) and declared else BLACKBOX_UNDECLARED


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Against a black-box target (``control: none``) a suite of ``conformance/suites/`` runs only
    when its module declares it can (``BLACKBOX = True``); any other is not claimed with the reason
    its module gives (docs/protocol.md §8)."""
    if isinstance(item, CellItem) or item.path.parent.resolve() != SUITES_DIR:
        return
    target = settings(item.config).target
    if target.blackbox:
        reason = blackbox_suite_reason(getattr(item, "module", None))
        if reason is not None:
            pytest.skip(f"not claimed by black-box target {target.name}: {reason}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Any:
    """A test of ``conformance/suites/`` carries its verdict on its report (to the controller
    under xdist), so the JSON report and the matrix totals count suite tests too; the baseline
    applies to it as to a cell."""
    report = yield
    if not isinstance(item, CellItem) and item.path.parent.resolve() == SUITES_DIR:
        sid = suite_id(item)
        s = getattr(item.config, "_conformance_settings", None)  # built when the run started
        reason = s.baseline.get(sid) if s is not None else None
        stale = reason is not None and _apply_baseline(report, call, sid, reason)
        judged = ("stale_baseline", str(report.longrepr)) if stale else _suite_verdict(report)
        if judged is not None:
            verdict, reason = judged
            findings = [f for k, v in item.user_properties if k == SHOULD_KEY for f in json.loads(v)]
            if findings and verdict == "pass":
                verdict = "warn"  # every MUST held; SHOULD findings are listed, not failed
            entry = SuiteResult(id=sid, verdict=verdict, reason=reason or None, should=findings or None)
            report.user_properties.append((SUITE_KEY, entry.to_json()))
    return report


# -- results, on the controller -----------------------------------------------------------
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    config = _current_config
    if config is None or not hasattr(config, "_conformance_results"):
        return
    for key, value in report.user_properties:
        if key == RESULT_KEY and report.when == "call":
            config._conformance_results.append(CellResult.from_json(value))
        elif key == SUITE_KEY:  # one entry per phase that has something to say; a failure wins
            entry = SuiteResult.from_json(value)
            suites = config._conformance_suites  # type: ignore[attr-defined]
            if entry.id not in suites or entry.verdict == "fail":
                suites[entry.id] = entry


_current_config: pytest.Config | None = None


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    global _current_config
    _current_config = session.config


@pytest.hookimpl(tryfirst=True)
def pytest_collection(session: pytest.Session) -> None:
    """Before any test runs (on the controller under xdist): baseline entries naming no cell must
    name a suite test.  Here, not at configure time, because only a session can collect the
    suite modules to enumerate their tests."""
    if hasattr(session.config, "_conformance_results"):
        try:
            check_suite_baseline(session)
        except KitError as exc:
            raise pytest.UsageError(str(exc)) from None


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    results = getattr(config, "_conformance_results", None)
    suites = list(getattr(config, "_conformance_suites", {}).values())
    if results or suites:
        from .report import render_matrix

        s = settings(config)
        terminalreporter.write(render_matrix(s.tables, results, color=terminalreporter.hasmarkup, suites=suites))
        terminalreporter.write_line(f"conformance seed: {s.seed} (repeat this run's exploration with --conformance-seed {s.seed})")
    html_line = getattr(config, "_conformance_html_line", None)
    if html_line:
        terminalreporter.write_line(html_line[0], red=html_line[1])


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from harness.orphans import reap_orphans

    reaped = reap_orphans()
    if reaped:
        tr = session.config.pluginmanager.get_plugin("terminalreporter")
        if tr is not None:
            tr.write_line(f"conformance: killed {len(reaped)} orphan process(es) left by targets: {reaped}", red=True)
        session.exitstatus = 1
    config = session.config
    results = getattr(config, "_conformance_results", None)
    if results is None or hasattr(config, "workerinput") or exitstatus == pytest.ExitCode.USAGE_ERROR:
        return  # a usage error (a bad baseline entry) stopped the run before any test: no report
    _write_html_report(config)
    path = config.option.conformance_report
    if path:
        from .report import json_report

        s = settings(config)
        suites = list(config._conformance_suites.values())  # type: ignore[attr-defined]
        report = json_report(s, results, started=config._conformance_t0, suites=suites)  # type: ignore[attr-defined]
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(json.dumps(report, indent=2), encoding="utf-8")
        except OSError as exc:  # checked up front; this is what changed since (disk full, removed dir)
            tr = config.pluginmanager.get_plugin("terminalreporter")
            if tr is not None:
                tr.write_line(f"ERROR: --conformance-report: cannot write {path}: {exc.strerror or exc}", red=True)
            session.exitstatus = 1


def _write_html_report(config: pytest.Config) -> None:
    """The HTML run report (``--conformance-html``, default ``<run dir>/report.html``).  It never
    fails the run: any error while rendering is one line in the terminal summary, the verdict
    unchanged."""
    s = settings(config)
    path = Path(getattr(config.option, "conformance_html", None) or s.run_dir / "report.html")
    try:
        from .htmlreport.render import RunMeta, write_run_report
        from .report import store_of

        meta = RunMeta(target=s.target.name, store=store_of(s.target).get("name"), strict=s.strict,
                       run_dir=str(s.run_dir), json_report=config.option.conformance_report)
        written = write_run_report(path, s.tables, list(config._conformance_results),  # type: ignore[attr-defined]
                                   list(config._conformance_suites.values()), meta=meta, run_dir=s.run_dir)  # type: ignore[attr-defined]
        line = (f"conformance: HTML report {written.path} ({written.size / 1e6:.1f} MB, "
                f"rendered in {written.seconds:.1f}s)", False)
    except Exception as exc:  # noqa: BLE001 - a report must never change the run's verdict
        line = (f"conformance: HTML report not written ({path}): {type(exc).__name__}: {exc}", True)
    config._conformance_html_line = line  # type: ignore[attr-defined]
