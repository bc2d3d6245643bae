"""Session reports: a rich matrix per contract in the terminal, and a JSON report for CI.

Both are built from the per-cell result dicts the plugin collects (one per executed cell) and
from the contract tables themselves (so not-applicable pairs show too).

``conformance report A.json B.json ...`` reads JSON reports back (``load_report``) and puts their
matrices side by side, one column group per report, typically one per store provider
(``render_comparison``): rows aligned, then every cell whose verdict differs, then totals.
"""

from __future__ import annotations

import io
import json
import platform
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .errors import KitError
from .results import CellResult, SuiteResult

KIT = "stream-task-conformance"
SCHEMA_VERSION = 1
"""Version of the JSON report's layout.  Fields may be added within a version; removing,
renaming or changing the meaning of one bumps it."""
SCHEMA_FILE = Path(__file__).resolve().parent / "schema" / "report.schema.json"

GLYPHS: dict[str, tuple[str, str]] = {
    "pass": ("✓", "green"),
    "fail": ("✗", "bold red"),
    "not_testable": ("!", "bold magenta"),
    "stale_baseline": ("S", "bold red"),
    "warn": ("~", "yellow"),
    "baseline": ("b", "yellow"),
    "info": ("i", "cyan"),
    "not_claimed": ("∅", "dim"),
    "not_applicable": ("·", "dim"),
    "not_run": ("?", "dim"),
}
LEGEND = (
    "✓ pass  ✗ MUST failed  ! not testable  S stale baseline  ~ SHOULD not met  "
    "b baseline xfail  i MAY not met  ∅ not claimed  · not applicable  ? not run"
)
FAILING = ("fail", "not_testable", "stale_baseline")


def render_matrix(
    tables: list[Any], results: list[CellResult], color: bool = True, suites: list[SuiteResult] | None = None
) -> str:
    """One table per contract that ran: its rows that ran x paths, one glyph per variant, then
    totals (of the cells, and of the suite tests in ``conformance/suites/`` when ``suites`` has
    their results).  A table none of whose cells ran is not drawn, nor is a row none of whose
    cells ran (a one-cell run draws one row); a line under the table says how much was left out."""
    by_id = {r.id: r for r in results}
    out = io.StringIO()
    console = Console(file=out, force_terminal=color, no_color=not color, width=140)
    console.rule("conformance matrix")
    na_total = 0
    for table in tables:
        ran_rows = [row for row in table.row_ids if any(c.row == row and c.id in by_id for c in table.cells)]
        if not ran_rows:
            continue
        paths = list(table.paths)
        grid = Table(show_lines=False)
        grid.add_column("row", no_wrap=True)
        for path in paths:
            grid.add_column(path, justify="center")
        na = {(n.row, n.path) for n in table.not_applicable if n.row in ran_rows}
        na_total += len(na)
        for row in ran_rows:
            cells_text = []
            for path in paths:
                text = Text()
                if (row, path) in na:
                    glyph, style = GLYPHS["not_applicable"]
                    text.append(glyph, style)
                for cell in (c for c in table.cells if c.row == row and c.path == path):
                    verdict = by_id[cell.id].verdict if cell.id in by_id else "not_run"
                    glyph, style = GLYPHS.get(verdict, GLYPHS["not_run"])
                    text.append(glyph, style)
                cells_text.append(text)
            grid.add_row(row, *cells_text)
        console.print(Text(f"{table.name}  [{table.level}]  {table.source}", style="bold"))
        console.print(grid)
        left_out = len(table.row_ids) - len(ran_rows)
        if left_out:
            console.print(f"({left_out} of {len(table.row_ids)} rows not run, not drawn)", style="dim")
    counts = Counter(r.verdict for r in results)
    summary = ", ".join(f"{counts[k]} {k}" for k in GLYPHS if counts.get(k)) or "no cells"
    console.print(f"cells: {summary}; {na_total} not applicable (declared) in the rows drawn")
    blackbox = [r for r in results if r.control == "blackbox"]
    needs = Counter(r.missing[0] for r in results if r.control == "needs" and r.missing)
    if blackbox or needs:  # a target with no test-control adapter (docs/protocol.md §8)
        console.print(f"black-box: {len(blackbox)} cell(s) judged from the wire alone; "
                      f"{sum(needs.values())} need control (not claimed):")
        for reason, n in needs.most_common():
            console.print(f"  {n:3d} × {reason.removeprefix('control (').removesuffix(')')}",
                          style="dim", markup=False, highlight=False)
    if suites:
        console.print(f"suite tests: {_counts_text(Counter(r.verdict for r in suites))}")
        for entry in suites:  # SHOULD findings do not fail the run: they are listed, one line a rule
            for finding in (entry.should or []) if entry.verdict == "warn" else []:
                console.print(f"~ {entry.id}: {finding[:300]}", style="yellow", markup=False, highlight=False)
    console.print(LEGEND, style="dim")
    return out.getvalue()


def json_report(
    settings: Any, results: list[CellResult], started: float, suites: list[SuiteResult] | None = None
) -> dict[str, Any]:
    """The machine-readable report (``SCHEMA_FILE`` describes it, version ``SCHEMA_VERSION``):
    target, totals, every cell with verdict and evidence paths, every suite test with its
    verdict.  ``totals`` and ``passed`` count cells and suite tests alike (a suite test skipped
    for a capability the target does not claim is "not_claimed")."""
    suites = sorted(suites or [], key=lambda r: r.id)
    counts = Counter(r.verdict for r in [*results, *suites])
    return {
        "kit": KIT,
        "schema_version": SCHEMA_VERSION,
        "target": {"name": settings.target.name, "source": settings.target.source},
        "store": store_of(settings.target),
        "started": started,
        "finished": time.time(),
        "python": platform.python_version(),
        "strict": bool(getattr(settings, "strict", False)),
        "control": getattr(settings.target, "control", "full"),  # "none": black-box cells only
        "seed": getattr(settings, "seed", None),  # the exploration seed: --conformance-seed repeats the run
        "totals": dict(sorted(counts.items())),
        "passed": not any(counts.get(k) for k in FAILING),
        "cells": [r.to_dict() for r in sorted(results, key=lambda r: r.id)],
        "suites": [r.to_dict() for r in suites],
        "not_applicable": [
            {"contract": n.contract, "row": n.row, "path": n.path, "reason": n.reason, "source": n.source}
            for t in settings.tables
            for n in t.not_applicable
        ],
    }


def store_of(target: Any) -> dict[str, Any]:
    """The store provider a run used, as the JSON report records it: ``{"name", "info"}``.

    With ``--conformance-store NAME[:OPTIONS]``: ``name`` is that spec (a password inside a URL option is
    masked) and ``info`` is what the target's ``store.describe`` printed (``{"name", "durable",
    "shared", "withdraws"}`` for the reference server).  Without ``--conformance-store``: ``name`` is the
    ``store.default`` the target file declares (``file`` for the bundled reference target), else
    ``None``, and ``info`` is ``{}``, because ``describe`` only runs for a store selected with
    ``--conformance-store``.
    """
    spec = getattr(target, "store", None)
    if spec:
        return {"name": _mask_password(spec), "info": dict(getattr(target, "store_info", None) or {})}
    return {"name": getattr(target, "store_default", None), "info": {}}


def _mask_password(spec: str) -> str:
    """``postgres:dsn=postgresql://u:secret@h/db`` -> ``postgres:dsn=postgresql://u:***@h/db``."""
    return re.sub(r"(://[^:/@\s]+):[^@/\s]*@", r"\1:***@", spec)


# -- several reports side by side (`conformance report`) ----------------------------------
class ReportError(KitError):
    """A file given to ``conformance report`` is missing, not JSON, or not a report of this kit."""


@dataclass(frozen=True)
class ReportCell:
    """One cell of a report, reduced to what the side-by-side matrix needs."""

    id: str
    contract: str
    row: str
    path: str
    verdict: str
    file: str  # the contract file (from the cell's source), "" when unknown
    line: int  # its line in that file; orders rows and paths as the contract declares them


@dataclass
class LoadedReport:
    """A JSON report read back, with the column-group label it is shown under."""

    path: Path
    data: dict[str, Any]
    cells: list[ReportCell]
    not_applicable: list[tuple[str, str, str, int]]  # (contract, row, path, line)
    label: str = ""

    @property
    def store(self) -> str | None:
        store = self.data.get("store")
        name = store.get("name") if isinstance(store, dict) else None
        return name if isinstance(name, str) and name else None

    @property
    def passed(self) -> bool:
        return self.data["passed"] is True

    @property
    def verdicts(self) -> dict[str, str]:
        return {c.id: c.verdict for c in self.cells}


_NO_LINE = 10**9  # sorts after every real line


def _source_line(source: Any) -> tuple[str, int]:
    file, _, line = str(source or "").rpartition(":")
    return (file, int(line)) if line.isdigit() else (str(source or ""), _NO_LINE)


def load_report(path: str | Path) -> LoadedReport:
    """Read one JSON report; every problem is a ReportError naming the file (one line)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(f"{file}: no such file") from None
    except IsADirectoryError:
        raise ReportError(f"{file}: is a directory, not a JSON report") from None
    except UnicodeDecodeError:
        raise ReportError(f"{file}: not JSON (not UTF-8 text)") from None
    except OSError as exc:
        raise ReportError(f"{file}: cannot be read: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ReportError(f"{file}: not JSON ({exc})") from None
    not_ours = f"{file}: not a {KIT} report"
    if not isinstance(data, dict) or data.get("kit") != KIT:
        raise ReportError(f'{not_ours} (no "kit": "{KIT}"; `pytest conformance --conformance-report PATH` writes one)')

    def bad(what: str) -> ReportError:
        return ReportError(f"{not_ours}: {what}")

    version = data.get("schema_version", SCHEMA_VERSION)  # reports from before versioning have none: version 1
    if version != SCHEMA_VERSION:
        raise bad(f'"schema_version" is {version!r}; this kit reads version {SCHEMA_VERSION}')
    if not isinstance(data.get("passed"), bool):
        raise bad('"passed" is not true or false')
    if not isinstance(data.get("cells"), list):
        raise bad('"cells" is not a list')
    store = data.get("store")
    if store is not None and not (isinstance(store, dict) and isinstance(store.get("name"), (str, type(None)))):
        raise bad('"store" is not {"name": ..., "info": ...}')
    cells: dict[str, ReportCell] = {}
    for i, raw in enumerate(data["cells"]):
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not isinstance(raw.get("verdict"), str):
            raise bad(f'cells[{i}] has no "id" and "verdict" strings')
        fields = {}
        for key in ("contract", "row", "path"):  # carried by every cell entry: never parsed back out of the id
            value = raw.get(key)
            if not isinstance(value, str) or not value:
                raise bad(f'cells[{i}]: cannot tell its {key} (no "{key}" string in cell {raw["id"]!r})')
            fields[key] = value
        src_file, line = _source_line(raw.get("source"))
        cells[raw["id"]] = ReportCell(raw["id"], fields["contract"], fields["row"], fields["path"], raw["verdict"],
                                      src_file, line)  # a cell recorded twice (a rerun): the last one counts
    na_raw = data.get("not_applicable", [])
    if not isinstance(na_raw, list):
        raise bad('"not_applicable" is not a list')
    not_applicable = []
    for i, raw in enumerate(na_raw):
        if not isinstance(raw, dict) or not all(isinstance(raw.get(k), str) for k in ("contract", "row", "path")):
            raise bad(f'not_applicable[{i}] has no "contract", "row" and "path" strings')
        not_applicable.append((raw["contract"], raw["row"], raw["path"], _source_line(raw.get("source"))[1]))
    return LoadedReport(file, data, list(cells.values()), not_applicable)


def load_reports(paths: list[str] | list[Path]) -> list[LoadedReport]:
    """Read every report (the first bad one raises ReportError) and label each column group:
    the store name, else the file stem; a label two reports share gets the file stem added."""
    if not paths:
        raise ReportError("no report files given (usage: conformance report FILE.json [FILE.json ...])")
    reports = [load_report(p) for p in paths]
    first = [r.store or r.path.stem for r in reports]
    labels = [f"{r.store} ({r.path.stem})" if r.store and first.count(first[i]) > 1 else first[i]
              for i, r in enumerate(reports)]
    labels = [f"{label} #{labels[:i].count(label) + 1}" if labels.count(label) > 1 else label
              for i, label in enumerate(labels)]
    for r, label in zip(reports, labels):
        r.label = label
    return reports


def _ordered(items: list[tuple[str, int, int]]) -> list[str]:
    """Names ordered by (smallest line, first appearance)."""
    best: dict[str, tuple[int, int]] = {}
    for name, line, seen in items:
        best[name] = min(best.get(name, (line, seen)), (line, seen))
    return sorted(best, key=lambda n: best[n])


def _merge_paths(rows: list[list[str]]) -> list[str]:
    """One path order for a contract from each row's paths in declared order: a path first seen
    in a row goes right after that row's previous path (or before its next known one)."""
    order: list[str] = []
    for seq in rows:
        for i, path in enumerate(seq):
            if path in order:
                continue
            before = [p for p in seq[:i] if p in order]
            after = [p for p in seq[i + 1:] if p in order]
            if before:
                order.insert(order.index(before[-1]) + 1, path)
            elif after:
                order.insert(order.index(after[0]), path)
            else:
                order.append(path)
    return order


def _counts_text(counts: Counter) -> str:
    known = [k for k in GLYPHS if counts.get(k)] + sorted(k for k in counts if k not in GLYPHS)
    return ", ".join(f"{counts[k]} {k}" for k in known) or "no cells"


def render_comparison(reports: list[LoadedReport], color: bool = False, width: int = 80) -> str:
    """Per contract ONE table: a row column, then one column group per report (its paths, one
    glyph per variant, as in ``render_matrix``) with the rows aligned, and a ``≠`` column marking
    rows whose verdicts differ.  Then the differing cells, the failing cells and totals."""
    if not reports[0].label:
        raise ValueError("label the reports first (load_reports)")
    verdicts = [r.verdicts for r in reports]
    na_sets = [{(c, row, p) for c, row, p, _ in r.not_applicable} for r in reports]
    union: dict[str, ReportCell] = {}
    for r in reports:
        for cell in r.cells:
            union.setdefault(cell.id, cell)

    def verdict_row(cell_id: str) -> list[str]:
        return [v.get(cell_id, "not_run") for v in verdicts]

    differing = [cid for cid in sorted(union) if len(set(verdict_row(cid))) > 1]
    differing_set = set(differing)

    grids: list[tuple[Text, Table]] = []
    for contract in sorted({c.contract for c in union.values()}):
        cells = sorted((c for c in union.values() if c.contract == contract), key=lambda c: (c.line, c.id))
        na_entries = [(row, p, line) for r in reports for c, row, p, line in r.not_applicable if c == contract]
        seen = 0
        row_items, path_items = [], {}
        for row, path, line in [(c.row, c.path, c.line) for c in cells] + na_entries:
            row_items.append((row, line, seen))
            path_items.setdefault(row, []).append((path, line, seen))
            seen += 1
        rows = _ordered(row_items)
        paths = _merge_paths([_ordered(path_items[row]) for row in rows])
        slot_cells = {(row, p): [c for c in cells if c.row == row and c.path == p] for row in rows for p in paths}

        def slot(i: int, row: str, path: str) -> Text:
            text = Text()
            if (contract, row, path) in na_sets[i]:
                text.append(*GLYPHS["not_applicable"])
            for cell in slot_cells[(row, path)]:
                text.append(*GLYPHS.get(verdicts[i].get(cell.id, "not_run"), GLYPHS["not_run"]))
            return text

        slots = {(i, row, p): slot(i, row, p) for i in range(len(reports)) for row in rows for p in paths}
        widths = {p: max([len(p)] + [len(slots[(i, row, p)]) for i in range(len(reports)) for row in rows])
                  for p in paths}

        def padded(parts: list[tuple[Text, int]]) -> Text:
            out = Text()
            for n, (part, w) in enumerate(parts):
                left = (w - len(part)) // 2
                out.append(" " * ((1 if n else 0) + left))
                out.append_text(part)
                out.append(" " * (w - len(part) - left))
            return out

        grid = Table(show_lines=False)
        grid.add_column("row", no_wrap=True)
        for r in reports:
            header = Text(r.label, style="bold")
            header.append("\n")
            header.append_text(padded([(Text(p), widths[p]) for p in paths]))
            grid.add_column(header, no_wrap=True)
        if len(reports) > 1:
            grid.add_column("≠", no_wrap=True, justify="center")
        for row in rows:
            groups = [padded([(slots[(i, row, p)], widths[p]) for p in paths]) for i in range(len(reports))]
            differs = any(c.id in differing_set for p in paths for c in slot_cells[(row, p)])
            mark = [Text("≠", style="bold yellow") if differs else Text("")] if len(reports) > 1 else []
            grid.add_row(Text(row), *groups, *mark)  # Text: a row id is never read as markup
        files = sorted({c.file for c in cells if c.file})
        grids.append((Text(f"{contract}  {', '.join(files)}".rstrip(), style="bold"), grid))

    lines: list[Text] = []
    if len(reports) < 2:
        lines.append(Text("differences: one report, nothing to compare"))
    elif not differing:
        lines.append(Text(f"differences: none ({len(union)} cell(s), the same verdict in every report)"))
    else:
        lines.append(Text(f"differences: {len(differing)} cell(s) whose verdict is not the same in every report",
                          style="bold"))
        lines.extend(_verdict_lines(differing, reports, verdict_row))
    failing = [cid for cid in sorted(union) if any(v in FAILING for v in verdict_row(cid))]
    if failing:
        lines.append(Text(f"failing: {len(failing)} cell(s) fail in at least one report", style="bold red"))
        lines.extend(_verdict_lines(failing, reports, verdict_row))
    lines.append(Text("totals:", style="bold"))
    label_w = max(len(r.label) for r in reports)
    path_w = max(len(str(r.path)) for r in reports)
    for r in reports:
        counts = Counter(c.verdict for c in r.cells)
        line = Text(f"  {r.label:<{label_w}}  {str(r.path):<{path_w}}  ")
        line.append("passed" if r.passed else "FAILED", "green" if r.passed else "bold red")
        line.append(f"  {_counts_text(counts)}; {len(r.not_applicable)} not applicable (declared)")
        lines.append(line)

    out = io.StringIO()
    console = Console(file=out, force_terminal=color, no_color=not color, highlight=False, width=max(width, 20))
    # Never truncate a name, a path or a cell id: widen past the terminal when the content needs it.
    wide = console.options.update_width(10_000)
    needed = [console.measure(g, options=wide).maximum for _, g in grids] + [t.cell_len for t, _ in grids]
    needed += [t.cell_len for t in lines]
    console.width = max([console.width, *needed])
    console.rule(f"conformance report: {len(reports)} report(s) side by side")
    for title, grid in grids:
        console.print(title)
        console.print(grid)
    if not grids:
        console.print("no contract cells in these reports")
    for line in lines:
        console.print(line)
    console.print(LEGEND, style="dim", soft_wrap=True)  # one line: a terminal wraps it between words
    return out.getvalue()


def _verdict_lines(ids: list[str], reports: list[LoadedReport], verdict_row: Any) -> list[Text]:
    """``  <cell id>   label ✓ pass   label ∅ not_claimed`` with the columns aligned."""
    id_w = max(len(i) for i in ids)
    seg_w = [max(len(r.label) + 3 + max(len(verdict_row(i)[n]) for i in ids), 1) for n, r in enumerate(reports)]
    out = []
    for cid in ids:
        line = Text(f"  {cid:<{id_w}}")
        for n, (r, verdict) in enumerate(zip(reports, verdict_row(cid))):
            glyph, style = GLYPHS.get(verdict, GLYPHS["not_run"])
            seg = Text(f"   {r.label} ")
            seg.append(glyph, style)
            seg.append(f" {verdict}")
            if n < len(reports) - 1:
                seg.append(" " * (seg_w[n] + 3 - seg.cell_len))
            line.append_text(seg)
        out.append(line)
    return out


def comparison_outcome(reports: list[LoadedReport]) -> tuple[int, str]:
    """Exit code and the closing line: 0 when every report passed, else 1 naming the failing ones."""
    failing = [r for r in reports if not r.passed]
    if not failing:
        return 0, f"conformance report: {len(reports)} report(s), every one passed"
    parts = []
    for r in failing:
        counts = Counter(c.verdict for c in r.cells if c.verdict in FAILING)
        parts.append(f"{r.label} ({r.path}): {_counts_text(counts) if counts else 'passed is false'}")
    return 1, f"conformance report: {len(failing)} of {len(reports)} report(s) failed: " + "; ".join(parts)
