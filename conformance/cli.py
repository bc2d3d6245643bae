"""The ``conformance`` console command (also ``python -m conformance``).

``conformance lint PATH...`` validates contract files, directories or globs and prints, per
table, its rows, cells and not-applicable pairs.  A target file among them (a mapping with
``command:`` and no ``contract:``) is checked as one, with the errors a run would give (but the
server is not started).  Exit codes: 0 all valid, 1 a file has problems (each printed as
``file:line: key: message``), 2 a usage mistake (a path that names no contract file, a bad
option).  A user's mistake never shows a traceback.

``conformance report FILE.json...`` puts JSON reports (``pytest conformance --conformance-report``,
typically one per store provider) side by side: per contract one table, one column group per
report, then the cells whose verdict differs and totals per report.  Exit codes: 0 every report
passed, 1 a report has failing cells (named on the last line), 2 bad input (a missing file, not
JSON, not a report of this kit, no file at all, an ``--html`` path that cannot be written), as one
line on stderr.  ``--html OUT.html`` also writes the comparison as one self-contained HTML page.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Sequence, TextIO

from rich.console import Console
from rich.table import Table

from .errors import ContractError, ContractNotFoundError, KitError, TargetConfigError

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2

DESCRIPTION = """\
Stream-and-task conformance kit.

A conformance run is a pytest run, not this command:
  pytest conformance                                  every cell and suite (bundled reference server)
  pytest conformance --conformance-target T.yaml      against your server, described by its target file
  pytest "contracts/responses/resilience.yaml::R1[C,stream=true]"    one cell, by its printed id
Main run options (all under `pytest --help`): --conformance-target T.yaml,
  --conformance-contracts GLOB, --conformance-profile responses|invocations,
  --conformance-store NAME[:OPTIONS], --conformance-baseline PATH, --conformance-report PATH,
  --conformance-strict, --conformance-results DIR, --conformance-explore N.

This command lints contract files and compares JSON reports of runs:"""


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors on our stream with exit 2 (never a traceback)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"conformance: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="conformance", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    lint = sub.add_parser("lint", help="validate contract files (and target files) and count their cells")
    lint.add_argument("paths", nargs="+", metavar="PATH", help="contract file or target file, directory or glob")
    lint.add_argument("--cells", action="store_true", help="also list every cell id with its source line")
    rep = sub.add_parser("report", help="show JSON reports (e.g. one per store provider) side by side")
    rep.add_argument("files", nargs="*", metavar="FILE.json", help="a report written by --conformance-report")
    rep.add_argument("--no-color", action="store_true", help="no colour (the default when stdout is not a terminal)")
    rep.add_argument("--html", metavar="OUT.html", default=None, help="also write the comparison as one HTML page")
    return parser


def lint(paths: Sequence[str], *, show_cells: bool = False, out: TextIO | None = None) -> int:
    """Validate contracts and target files; print counts or problems; return the exit code."""
    from .contract import collect_cells, expand_paths, load_contract
    from .targets import load_target

    out = out or sys.stdout
    try:
        files = expand_paths(paths)
    except ContractNotFoundError as exc:
        for err in exc.errors:
            print(f"conformance lint: {err}", file=out)
        return EXIT_USAGE

    tables, problems = [], []
    targets, target_problems = [], []  # target files: their configs, their error lines (file, text)
    for file in files:
        if _is_target_file(file):
            try:
                targets.append(load_target(file))
            except TargetConfigError as exc:
                target_problems += [(file, line) for line in str(exc).splitlines()]
            continue
        try:
            tables.append(load_contract(file))
        except ContractError as exc:
            problems.extend(exc.errors)
    names: dict[str, str] = {}
    for table in tables:
        if table.name in names:
            problems.append(ContractError(f"contract '{table.name}' is also defined in {names[table.name]}",
                                          file=table.source, line=1, key="contract"))
        names.setdefault(table.name, table.source)
    try:
        cells = collect_cells(tables)
    except ContractError as exc:
        problems.extend(exc.errors)
        cells = []

    console = Console(file=out, highlight=False)
    if tables:
        grid = Table(title="contracts", title_justify="left")
        for column, justify in (("contract", "left"), ("file", "left"), ("rows", "right"),
                                ("cells", "right"), ("not applicable", "right")):
            grid.add_column(column, justify=justify, no_wrap=True)
        for t in tables:
            grid.add_row(t.name, t.source, str(len(t.row_ids)), str(len(t.cells)), str(len(t.not_applicable)))
        grid.add_row("total", f"{len(tables)} file(s)", str(sum(len(t.row_ids) for t in tables)),
                     str(sum(len(t.cells) for t in tables)), str(sum(len(t.not_applicable) for t in tables)),
                     style="bold")
        # Never truncate a contract name or path: widen past the terminal if the table needs it.
        console.width = max(console.width, console.measure(grid, options=console.options.update_width(10_000)).maximum)
        console.print(grid)
        if show_cells:
            for cell in cells:
                print(f"{cell.id}  [{cell.level}]  {cell.source}", file=out)
    for target in targets:
        print(f"target file {target.source}: {target.name} (profiles: {', '.join(target.profiles)}; "
              f"claims: {', '.join(sorted(target.claims)) or 'none'})", file=out)
    for err in problems:
        print(str(err), file=out)
    for _, line in target_problems:
        print(line, file=out)
    if problems or target_problems:
        bad_files = {e.file for e in problems} | {f for f, _ in target_problems}
        print(f"conformance lint: {len(problems) + len(target_problems)} problem(s) in {len(bad_files)} file(s)", file=out)
        return EXIT_INVALID
    counted = f", {len(targets)} target file(s)" if targets else ""
    if not tables and targets:
        print(f"conformance lint: {len(targets)} target file(s): ok", file=out)
        return EXIT_OK
    print(f"conformance lint: {len(tables)} contract(s), {len(cells)} cell(s), "
          f"{sum(len(t.not_applicable) for t in tables)} not applicable{counted}: ok", file=out)
    return EXIT_OK


def _is_target_file(file: str) -> bool:
    """A mapping with ``command:`` and no ``contract:`` is a target file (anything else, even
    text that is not YAML, is checked as a contract, whose errors then say why)."""
    from .yamlfile import YamlSyntaxError, parse

    try:
        with open(file, encoding="utf-8") as handle:
            doc, _ = parse(handle.read())
    except (OSError, UnicodeDecodeError, YamlSyntaxError):
        return False
    return isinstance(doc, dict) and "command" in doc and "contract" not in doc


def report(files: Sequence[str], *, color: bool | None = None, out: TextIO | None = None,
           err: TextIO | None = None, html: str | None = None) -> int:
    """Render reports side by side (and as HTML to ``html``); return 0 all passed, 1 some
    failed, 2 bad input (including an HTML path that cannot be written)."""
    from .report import ReportError, comparison_outcome, load_reports, render_comparison

    out, err = out or sys.stdout, err or sys.stderr
    if html is not None and os.path.isdir(html):
        print(f"conformance report: --html: {html} is a directory; give a file path", file=err)
        return EXIT_USAGE
    try:
        reports = load_reports(list(files))
    except ReportError as exc:
        print(f"conformance report: {exc}", file=err)
        return EXIT_USAGE
    if html is not None:
        from .htmlreport.render import render_comparison_html

        try:
            Path(html).write_text(render_comparison_html(reports), encoding="utf-8")
        except OSError as exc:
            print(f"conformance report: --html: cannot write {html}: {exc.strerror or exc}", file=err)
            return EXIT_USAGE
    tty = out.isatty() if hasattr(out, "isatty") else False
    if color is None:
        color = tty and not os.environ.get("NO_COLOR")
    width = shutil.get_terminal_size((80, 24)).columns if tty else 80
    out.write(render_comparison(reports, color=color, width=width))
    code, line = comparison_outcome(reports)
    if html is not None:
        print(f"conformance report: HTML comparison written to {html}", file=out)
    print(line, file=out)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``conformance`` console script; returns the exit code."""
    parser = _parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # --help (0) or a usage error (2)
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        if args.command == "lint":
            return lint(args.paths, show_cells=args.cells)
        if args.command == "report":
            return report(args.files, color=False if args.no_color else None, html=args.html)
    except KitError as exc:
        print(f"conformance: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_USAGE  # pragma: no cover - argparse rejects unknown commands
