"""Two small JSON reports written by the real ``json_report`` (one cell differs)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from conformance.report import json_report
from conformance.results import CellResult

IDS = [("responses/demo::R1[A]", "R1", "A", 10), ("responses/demo::R1[C]", "R1", "C", 11),
       ("responses/demo::R2[A]", "R2", "A", 20)]


def write_report_pair(tmp_path: Path) -> tuple[Path, Path, str]:
    """sqlite: every cell passes; memory: R1[C] fails.  Returns both paths and the differing id."""
    paths = []
    for store, failing in (("sqlite", None), ("memory", "responses/demo::R1[C]")):
        target = SimpleNamespace(name="reference", source="reference.yaml", store=store, store_info={"name": store})
        settings = SimpleNamespace(target=target, tables=[SimpleNamespace(not_applicable=[])])
        results = [CellResult(id=i, contract="responses/demo", row=row, path=p, variant=p, level="MUST",
                              fault="none", source=f"contracts/responses/demo.yaml:{line}",
                              verdict="fail" if i == failing else "pass") for i, row, p, line in IDS]
        path = tmp_path / f"{store}.json"
        path.write_text(json.dumps(json_report(settings, results, started=0.0)), encoding="utf-8")
        paths.append(path)
    return paths[0], paths[1], "responses/demo::R1[C]"
