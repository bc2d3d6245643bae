"""Render the HTML run report and the HTML comparison (Jinja2 templates shipped in the package).

``write_run_report`` builds one self-contained page (inline CSS and JS, no network) from what a
session recorded: the contract tables, the per-cell JSON results, the suite results and the
``history.json`` each cell left.  ``render_comparison_html`` draws ``conformance report A B
--html``.  Neither judges anything: verdicts come from the results as recorded.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from conformance.history import History

from ..report import FAILING, GLYPHS, LEGEND
from .timeline import CellView, cell_view

RICH_COLOURS = {
    "green": "#1a7f37",
    "red": "#cf222e",
    "magenta": "#a626a4",
    "yellow": "#9a6700",
    "cyan": "#0a7ea4",
}


def glyph_css(verdict: str) -> str:
    """The CSS of a verdict's glyph, from the terminal matrix's rich style (same colours)."""
    _, style = GLYPHS.get(verdict, GLYPHS["not_run"])
    words = style.split()
    css = []
    colour = next((RICH_COLOURS[w] for w in words if w in RICH_COLOURS), None)
    if colour:
        css.append(f"color:{colour}")
    if "bold" in words:
        css.append("font-weight:bold")
    if "dim" in words:
        css.append("color:#8c959f")
    return ";".join(css)


def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("conformance", "htmlreport/templates"),
        autoescape=select_autoescape(["html", "j2"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.do"],
    )
    env.globals.update(glyph=lambda v: GLYPHS.get(v, GLYPHS["not_run"])[0], glyph_css=glyph_css, GLYPHS=GLYPHS,
                       LEGEND=LEGEND)
    env.filters["secs"] = lambda t: "" if t is None else f"{t:.3f}"
    return env


def as_dict(record: Any) -> dict[str, Any]:
    """A result as a dict: a dict as is, a typed record by its ``to_dict()`` (or as a dataclass),
    anything else as an empty result (the page says "not run" rather than failing)."""
    if isinstance(record, dict):
        return record
    to_dict = getattr(record, "to_dict", None)
    if callable(to_dict):
        data = to_dict()
        return data if isinstance(data, dict) else {}
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        return dataclasses.asdict(record)
    return {}


def anchor_of(cell_id: str) -> str:
    """An HTML id for a cell id (letters, digits, ``-`` and ``_`` only, prefixed ``cell-``)."""
    return "cell-" + re.sub(r"[^A-Za-z0-9_-]+", "-", cell_id).strip("-")


@dataclass
class Slot:
    """One matrix slot (row x path): a glyph per variant, each linking to its cell's detail."""

    glyphs: list[dict[str, str]] = field(default_factory=list)  # {verdict, glyph, css, href, id, level}


@dataclass
class MatrixTable:
    """The terminal matrix of one contract, as the page draws it."""

    name: str
    level: str
    source: str
    paths: list[str]
    rows: list[tuple[str, list[Slot]]]


def matrix_tables(tables: list[Any], results: list[dict[str, Any]]) -> list[MatrixTable]:
    """The terminal matrix as data: per contract, rows x paths, one glyph per variant."""
    by_id = {r.get("id"): r for r in results}
    out = []
    for table in tables:
        paths = list(table.paths)
        na = {(n.row, n.path) for n in table.not_applicable}
        rows = []
        ran_any = False
        for row in table.row_ids:
            slots = []
            for path in paths:
                slot = Slot()
                if (row, path) in na:
                    slot.glyphs.append({"verdict": "not_applicable", "glyph": GLYPHS["not_applicable"][0],
                                        "css": glyph_css("not_applicable"), "href": "", "id": f"{row}[{path}]",
                                        "level": table.level, "contract": table.name})
                for cell in (c for c in table.cells if c.row == row and c.path == path):
                    verdict = str(by_id.get(cell.id, {}).get("verdict", "not_run"))
                    ran_any = ran_any or cell.id in by_id
                    slot.glyphs.append({"verdict": verdict, "glyph": GLYPHS.get(verdict, GLYPHS["not_run"])[0],
                                        "css": glyph_css(verdict), "href": f"#{anchor_of(cell.id)}" if cell.id in by_id else "",
                                        "id": cell.id, "level": cell.level, "contract": table.name})
                slots.append(slot)
            rows.append((row, slots))
        if ran_any:
            out.append(MatrixTable(table.name, table.level, table.source, paths, rows))
    return out


def load_history(path: Any) -> tuple[History | None, str | None]:
    """A cell's History from its ``history.json``, or None and one line saying why."""
    if not isinstance(path, str) or not path:
        return None, "no history recorded"
    try:
        return History.from_json(Path(path).read_text(encoding="utf-8")), None
    except FileNotFoundError:
        return None, f"history {path} not found"
    except (OSError, ValueError, TypeError) as exc:
        return None, f"history {path} unreadable: {type(exc).__name__}: {exc}"


def _suite_slug(test_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=,-]+", "_", test_id).strip("_")


def suite_views(suites: list[dict[str, Any]], run_dir: Path | None, base_dir: Path | None) -> list[CellView]:
    """Details of suite tests: verdict and reason, the ``steps.json`` (a shrunk hypothesis
    schedule) and every ``history.json`` a suite test left under its work dir."""
    views = []
    for entry in sorted(suites, key=lambda e: str(e.get("id"))):
        test_id = str(entry.get("id", "?"))
        work = run_dir / _suite_slug(test_id) if run_dir is not None else None
        result: dict[str, Any] = {"id": test_id, "verdict": entry.get("verdict", "not_run"), "kind": "suite",
                                  "violations": [str(entry["reason"])] if entry.get("reason") else []}
        result["violations"] += [f"should: {s}" for s in entry.get("should", []) or []]
        histories: list[Path] = []
        if work is not None and work.is_dir():
            steps_file = work / "steps.json"
            if steps_file.is_file():
                try:
                    data = json.loads(steps_file.read_text(encoding="utf-8"))
                    result["steps"] = [str(s) for s in data.get("steps", [])] if isinstance(data, dict) else []
                    if isinstance(data, dict) and data.get("failure"):
                        result["violations"].append(f"failure: {data['failure']}")
                except (OSError, ValueError) as exc:
                    result["violations"].append(f"steps.json unreadable: {exc}")
            histories = sorted(work.rglob("history.json"))
        if not histories:
            views.append(cell_view(result, None, anchor=anchor_of(test_id), base_dir=base_dir))
        for k, hist_path in enumerate(histories):
            history, problem = load_history(str(hist_path))
            sub = dict(result, history=str(hist_path))
            if k:
                sub["id"] = f"{test_id} ({hist_path.parent.name})"
            views.append(cell_view(sub, history, anchor=anchor_of(str(sub["id"])) + (f"-{k}" if k else ""),
                                   base_dir=base_dir, problem=problem))
    return views


@dataclass
class RunMeta:
    """What the page header says about the run."""

    target: str = ""
    store: str | None = None
    strict: bool = False
    run_dir: str | None = None
    json_report: str | None = None


def render_run_report(
    tables: list[Any],
    results: list[dict[str, Any]],
    suites: list[dict[str, Any]] | None = None,
    *,
    meta: RunMeta | None = None,
    base_dir: Path | None = None,
    run_dir: Path | None = None,
) -> str:
    """The whole run as one HTML document (string)."""
    meta = meta or RunMeta()
    results = [as_dict(r) for r in results]
    suites = [as_dict(r) for r in suites or []]
    cells = []
    for r in sorted(results, key=lambda r: str(r.get("id"))):
        history, problem = load_history(r.get("history")) if r.get("history") else (None, None)
        cells.append(cell_view(r, history, anchor=anchor_of(str(r.get("id"))), base_dir=base_dir, problem=problem))
    suite_cells = suite_views(suites, run_dir, base_dir)
    counts = Counter(str(r.get("verdict")) for r in [*results, *suites])
    totals = [(k, counts[k]) for k in GLYPHS if counts.get(k)] + sorted((k, v) for k, v in counts.items() if k not in GLYPHS)
    passed = not any(counts.get(k) for k in FAILING)
    return _env().get_template("report.html.j2").render(
        meta=meta, matrix=matrix_tables(tables, results), cells=cells, suites=suite_cells, totals=totals,
        passed=passed, contracts=sorted({c.contract for c in cells if c.contract}),
        levels=[lv for lv in ("MUST", "SHOULD", "MAY") if any(c.level == lv for c in cells)],
        verdicts=[k for k, _ in totals], generated=time.strftime("%Y-%m-%d %H:%M:%S"),
    )


@dataclass
class Written:
    """Where the report went, its size in bytes and how long rendering and writing took."""

    path: Path
    size: int
    seconds: float


def write_run_report(path: Path, tables: list[Any], results: list[dict[str, Any]], suites: list[dict[str, Any]] | None,
                     *, meta: RunMeta | None = None, run_dir: Path | None = None) -> Written:
    """Render and write the run report; links are relative to ``path``'s directory."""
    started = time.perf_counter()
    path = Path(path)
    html = render_run_report(tables, results, suites, meta=meta, base_dir=path.parent, run_dir=run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return Written(path, len(html.encode("utf-8")), time.perf_counter() - started)


# -- `conformance report A.json B.json --html OUT` -----------------------------------------
def render_comparison_html(reports: list[Any]) -> str:
    """The side-by-side comparison (``report.render_comparison``) as one HTML document."""
    from ..report import _merge_paths, _ordered

    verdicts = [r.verdicts for r in reports]
    union: dict[str, Any] = {}
    for r in reports:
        for cell in r.cells:
            union.setdefault(cell.id, cell)
    na_sets = [{(c, row, p) for c, row, p, _ in r.not_applicable} for r in reports]

    def row_verdicts(cid: str) -> list[str]:
        return [v.get(cid, "not_run") for v in verdicts]

    differing = [cid for cid in sorted(union) if len(set(row_verdicts(cid))) > 1]
    failing = [cid for cid in sorted(union) if any(v in FAILING for v in row_verdicts(cid))]
    contracts = []
    for contract in sorted({c.contract for c in union.values()}):
        cells = sorted((c for c in union.values() if c.contract == contract), key=lambda c: (c.line, c.id))
        na_entries = [(row, p, line) for r in reports for c, row, p, line in r.not_applicable if c == contract]
        row_items, path_items = [], {}
        for seen, (row, path, line) in enumerate([(c.row, c.path, c.line) for c in cells] + na_entries):
            row_items.append((row, line, seen))
            path_items.setdefault(row, []).append((path, line, seen))
        rows = _ordered(row_items)
        paths = _merge_paths([_ordered(path_items[row]) for row in rows])
        grid = []
        for row in rows:
            groups = []
            differs = False
            for i in range(len(reports)):
                slots = []
                for p in paths:
                    glyphs = []
                    if (contract, row, p) in na_sets[i]:
                        glyphs.append({"verdict": "not_applicable", "id": f"{row}[{p}]"})
                    for cell in (c for c in cells if c.row == row and c.path == p):
                        glyphs.append({"verdict": verdicts[i].get(cell.id, "not_run"), "id": cell.id})
                        differs = differs or cell.id in differing
                    slots.append(glyphs)
                groups.append(slots)
            grid.append((row, groups, differs))
        files = sorted({c.file for c in cells if c.file})
        contracts.append({"name": contract, "files": files, "paths": paths, "grid": grid})
    totals = [(r, sorted(Counter(c.verdict for c in r.cells).items())) for r in reports]
    return _env().get_template("compare.html.j2").render(
        reports=reports, contracts=contracts, differing=differing, failing=failing, row_verdicts=row_verdicts,
        totals=totals, generated=time.strftime("%Y-%m-%d %H:%M:%S"),
    )
