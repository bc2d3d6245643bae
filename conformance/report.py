"""Session reports: a rich matrix per contract in the terminal, and a JSON report for CI.

Both are built from the per-cell result dicts the plugin collects (one per executed cell) and
from the contract tables themselves (so not-applicable pairs show too).
"""

from __future__ import annotations

import io
import platform
import time
from collections import Counter
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

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


def render_matrix(tables: list[Any], results: list[dict[str, Any]], color: bool = True) -> str:
    """One table per contract: rows x paths, one glyph per variant, then totals."""
    by_id = {r["id"]: r for r in results}
    out = io.StringIO()
    console = Console(file=out, force_terminal=color, no_color=not color, width=140)
    console.rule("conformance matrix")
    for table in tables:
        paths = list(table.paths)
        grid = Table(show_lines=False)
        grid.add_column("row", no_wrap=True)
        for path in paths:
            grid.add_column(path, justify="center")
        na = {(n.row, n.path) for n in table.not_applicable}
        ran_any = False
        for row in table.row_ids:
            cells_text = []
            for path in paths:
                text = Text()
                if (row, path) in na:
                    glyph, style = GLYPHS["not_applicable"]
                    text.append(glyph, style)
                for cell in (c for c in table.cells if c.row == row and c.path == path):
                    verdict = by_id.get(cell.id, {}).get("verdict", "not_run")
                    ran_any = ran_any or cell.id in by_id
                    glyph, style = GLYPHS.get(verdict, GLYPHS["not_run"])
                    text.append(glyph, style)
                cells_text.append(text)
            grid.add_row(row, *cells_text)
        if ran_any:
            console.print(Text(f"{table.name}  [{table.level}]  {table.source}", style="bold"))
            console.print(grid)
    counts = Counter(r["verdict"] for r in results)
    na_total = sum(len(t.not_applicable) for t in tables)
    summary = ", ".join(f"{counts[k]} {k}" for k in GLYPHS if counts.get(k)) or "no cells"
    console.print(f"cells: {summary}; {na_total} not applicable (declared)")
    console.print(LEGEND, style="dim")
    return out.getvalue()


def json_report(settings: Any, results: list[dict[str, Any]], started: float) -> dict[str, Any]:
    """The machine-readable report: target, totals, every cell with verdict and evidence paths."""
    counts = Counter(r["verdict"] for r in results)
    return {
        "kit": "stream-task-conformance",
        "target": {"name": settings.target.name, "source": settings.target.source},
        "started": started,
        "finished": time.time(),
        "python": platform.python_version(),
        "totals": dict(sorted(counts.items())),
        "passed": not any(counts.get(k) for k in FAILING),
        "cells": sorted(results, key=lambda r: r["id"]),
        "not_applicable": [
            {"contract": n.contract, "row": n.row, "path": n.path, "reason": n.reason, "source": n.source}
            for t in settings.tables
            for n in t.not_applicable
        ],
    }
