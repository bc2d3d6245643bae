"""Benchmark the conformance suite: cell wall time against its floor, and the -n speed-up.

    python bench/suite.py                  # runs `pytest conformance` with -n 1 and -n auto
    python bench/suite.py --only auto      # one run
    python bench/suite.py --report a.json  # analyse an existing JSON report, run nothing

Floor of a cell = the start-to-ready time of each of its incarnations (measured in that cell)
+ the script's own time (deltas x delay_ms).  The ratio cell wall time / floor says how much
the kit adds on top of what the target itself must spend; it is printed per cell kind (fault
kind) as a median; SIGTERM kinds also get wall / (floor + the server's own --shutdown-grace),
the wait a held handler imposes on the target itself.  Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_suite(workers: str, extra: list[str]) -> tuple[float, dict]:
    out = Path(tempfile.mkdtemp(prefix="bench-")) / "report.json"
    cmd = [sys.executable, "-m", "pytest", "conformance", "-q", "-p", "no:cacheprovider", "-n", workers,
           "--conformance-report", str(out), *extra]
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.monotonic() - started
    if not out.exists():
        sys.exit(f"bench: the suite wrote no report (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return wall, json.loads(out.read_text())


def floor_of(cell: dict) -> float:
    script = cell.get("script", {})
    script_s = script.get("deltas", 0) * script.get("delay_ms", 0) / 1000.0
    return sum(cell.get("ready_s", [])) + script_s


def server_grace(target_file: Path = ROOT / "conformance" / "targets" / "reference.yaml") -> float:
    """The ``--shutdown-grace`` the bundled target's command gives its server (0 if none)."""
    match = re.search(r"--shutdown-grace\s+([0-9.]+)", target_file.read_text())
    return float(match.group(1)) if match else 0.0


def analyse(report: dict, grace_s: float = 0.0) -> dict[str, dict[str, float]]:
    """Per fault kind: cells, median wall, median wall/floor, and for SIGTERM kinds also the median
    of wall/(floor + the server's own shutdown grace), which such a cell must wait out when its
    handler is held past the signal (Path B): time the target spends, not the kit."""
    kinds: dict[str, list[float]] = defaultdict(list)
    with_grace: dict[str, list[float]] = defaultdict(list)
    durations: dict[str, list[float]] = defaultdict(list)
    for cell in report["cells"]:
        if "duration_s" not in cell or not cell.get("ready_s"):
            continue
        kind = cell["fault"].split("@")[0]
        kinds[kind].append(cell["duration_s"] / floor_of(cell))
        if kind == "sigterm":  # SIGTERM then SIGKILL does not wait for the grace
            with_grace[kind].append(cell["duration_s"] / (floor_of(cell) + grace_s))
        durations[kind].append(cell["duration_s"])
    table = {}
    for kind in sorted(kinds):
        table[kind] = {
            "cells": len(kinds[kind]),
            "median_ratio": statistics.median(kinds[kind]),
            "median_wall_s": statistics.median(durations[kind]),
        }
        if with_grace[kind]:
            table[kind]["median_ratio_with_grace"] = statistics.median(with_grace[kind])
    all_ratios = [r for rs in kinds.values() for r in rs]
    if all_ratios:
        table["ALL"] = {
            "cells": len(all_ratios),
            "median_ratio": statistics.median(all_ratios),
            "median_wall_s": statistics.median([d for ds in durations.values() for d in ds]),
        }
    return table


def show(title: str, table: dict[str, dict[str, float]]) -> None:
    print(f"\n{title}")
    print(f"  {'cell kind':<22}{'cells':>6}{'median wall s':>15}{'median wall/floor':>19}{'wall/(floor+grace)':>20}")
    for kind, row in table.items():
        graced = f"{row['median_ratio_with_grace']:.2f}" if "median_ratio_with_grace" in row else "-"
        print(f"  {kind:<22}{row['cells']:>6}{row['median_wall_s']:>15.3f}{row['median_ratio']:>19.2f}{graced:>20}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["1", "auto"], help="run only this -n setting")
    ap.add_argument("--report", help="analyse this JSON report instead of running")
    ap.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = ap.parse_args()
    if args.report:
        show(args.report, analyse(json.loads(Path(args.report).read_text()), server_grace()))
        return 0
    walls = {}
    for workers in ([args.only] if args.only else ["1", "auto"]):
        wall, report = run_suite(workers, args.pytest_args)
        walls[workers] = wall
        show(f"-n {workers}: suite wall {wall:.1f}s, totals {report['totals']}", analyse(report, server_grace()))
    if len(walls) == 2:
        print(f"\nspeed-up -n auto vs -n 1: {walls['1'] / walls['auto']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
