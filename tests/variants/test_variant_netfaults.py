"""Broken servers under network faults (issue 14), each caught by the network tables at MUST:
variants of the reference server (``variant_server.py``) that renumber a resumed stream, resend
the event at the cursor, hold the handler back for a slow reader, or cancel a background run
whose stream was reset.  Each test runs the cells of ``contracts/*/network.yaml`` the variant
breaks, in a subprocess, and reads the verdicts from the JSON report."""

from __future__ import annotations

from pathlib import Path

import pytest

from test_variant_verdicts import run_kit, target_file

CASES = {
    "renumber-on-resume": (["responses/network::BG[RS]", "invocations/network::R1[RS]"],
                           "reconnect: expected no duplicate across the resume"),
    "resend-last": (["responses/network::BG[CM]", "invocations/network::R1[CM]"],
                    "reconnect: expected no duplicate across the resume"),
    "blocking-handler": (["responses/network::SR[SL]", "invocations/network::SR[SL]"],
                         "unblocked: expected the run to be terminal before the slow reader"),
    "reset-cancels": (["responses/network::BG[RS]", "invocations/network::R1[RS]"],
                      "status: expected final status 'completed', observed 'cancelled'"),
}


def node(cell: str) -> str:
    table, name = cell.split("::")
    return f"contracts/{table}.yaml::{name}"


@pytest.mark.parametrize("variant", list(CASES))
def test_a_server_broken_under_network_faults_fails_its_cells(tmp_path: Path, variant: str) -> None:
    cells, complaint = CASES[variant]
    code, report, out = run_kit(tmp_path, target_file(tmp_path, variant), *map(node, cells[1:]), select=node(cells[0]))
    verdicts = {e["id"]: e for e in report["cells"]}
    assert code == 1 and sorted(verdicts) == sorted(cells), out
    for cell in cells:
        entry = verdicts[cell]
        assert entry["verdict"] == "fail", (cell, entry, out)  # a MUST failure: the cell ran, the server is wrong
        assert any(v.startswith(complaint) for v in entry["violations"]), (cell, entry["violations"])
