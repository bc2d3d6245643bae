"""How many exploration examples find the planted crash-schedule bugs, and what they cost.

    python bench/explore_budget.py                          # budgets 3 6 10 20, 5 seeds, both bugs
    python bench/explore_budget.py --budgets 3 10 --seeds 3 --steps 10
    python bench/explore_budget.py --reference             # also the cost of a passing run on the reference

For each planted bug of the tiny target (tests/explore/tiny_target.py: ``reuse-seq``,
``lose-last``), each budget (examples per run) and each seed (1, 2, ... ``--seeds``), one
exploration runs exactly as ``test_explore_responses`` does (``explore()`` with
``Budget(examples, steps, seed, shrink=False)``), stopping at the first failure.  "Found" is an
``ExplorationFailed`` with a broken invariant (a wait that timed out is counted apart, as
"other"); the correct tiny target is explored with the same seeds and must never fail.  Most
findings name the sequence numbers (rewritten, duplicate, missing); ``lose-last`` also shows as
a terminal status that went back to ``in_progress`` (the lost last write was a cancel's).  The
time of a run that finds the bug
is time-to-find; the cost of a budget is the wall time of a run that finds nothing, measured
against the correct tiny target (``--bug none``) and, with ``--reference``, the bundled reference
server.  Figures are printed as a Markdown table, never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "explore"))

from conformance.explore.machine import Budget, ExplorationFailed, explore  # noqa: E402
from conformance.targets import TargetConfig, load_target  # noqa: E402
from explore_helpers import tiny_config  # noqa: E402
from harness.process import Target  # noqa: E402

BUGS = ("reuse-seq", "lose-last")


def spawner(config: TargetConfig, work: Path) -> tuple[Any, list[Target]]:
    targets: list[Target] = []

    def spawn(server: dict[str, Any]) -> Target:
        target = Target(config.spec_for(server), work / f"target-{len(targets)}")
        targets.append(target)
        target.start()
        return target

    return spawn, targets


def run_once(config: TargetConfig, budget: Budget) -> tuple[str, float]:
    """("found" | "none" | "other: <first line>", wall seconds) of one exploration."""
    with tempfile.TemporaryDirectory(prefix="explore-budget-") as tmp:
        spawn, targets = spawner(config, Path(tmp))
        started = time.monotonic()
        try:
            explore(spawn, budget)
            outcome = "none"
        except ExplorationFailed as exc:
            text = str(exc)
            broken = text.startswith("invariant broken:") and "timed out after" not in text
            outcome = "found" if broken else "other: " + text.splitlines()[1][:160]
        finally:
            elapsed = time.monotonic() - started
            for target in targets:
                target.close()
    return outcome, elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budgets", type=int, nargs="+", default=[3, 6, 10, 20])
    ap.add_argument("--seeds", type=int, default=5, help="seeds 1..N per budget and bug")
    ap.add_argument("--steps", type=int, default=10, help="steps per example (the default budget's)")
    ap.add_argument("--bugs", nargs="+", default=list(BUGS))
    ap.add_argument("--reference", action="store_true", help="also time a passing run against the reference server")
    a = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="explore-budget-configs-"))
    configs = {bug: tiny_config(work, bug) for bug in (*a.bugs, "none")}
    if a.reference:
        configs["reference"] = load_target(None)
    rows = []
    for examples in a.budgets:
        row: dict[str, Any] = {"budget": examples}
        for bug in a.bugs:
            runs = [run_once(configs[bug], Budget(examples, a.steps, seed, shrink=False)) for seed in range(1, a.seeds + 1)]
            found = [t for o, t in runs if o == "found"]
            others = [o for o, _ in runs if o.startswith("other")]
            row[bug] = f"{len(found)}/{len(runs)}" + (f" ({statistics.median(found):.1f} s)" if found else "")
            for other in others:
                print(f"  budget {examples}, {bug}: {other}", file=sys.stderr)
            print(f"budget {examples} {bug}: {runs}", file=sys.stderr, flush=True)
        for name in ("none", "reference") if a.reference else ("none",):
            runs = [run_once(configs[name], Budget(examples, a.steps, seed, shrink=False)) for seed in range(1, a.seeds + 1)]
            bad = [o for o, _ in runs if o != "none"]
            row[name] = f"{statistics.median(t for _, t in runs):.1f} s" + (f" ({len(bad)} failed!)" if bad else "")
            print(f"budget {examples} {name}: {runs}", file=sys.stderr, flush=True)
        rows.append(row)
    cols = ["budget", *a.bugs, "none", *(["reference"] if a.reference else [])]
    heads = {"budget": "examples", "none": "passing run, tiny target", "reference": "passing run, reference"}
    print(f"\n{a.seeds} seeds per cell, {a.steps} steps per example; found = runs that found the bug (median time to find)\n")
    print("| " + " | ".join(heads.get(c, f"`{c}` found") for c in cols) + " |")
    print("|" + "---|" * len(cols))
    for row in rows:
        print("| " + " | ".join(str(row[c]) for c in cols) + " |")


if __name__ == "__main__":
    main()
