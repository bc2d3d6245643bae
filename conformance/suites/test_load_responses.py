"""Load during faults (responses profile): N concurrent streams with readers attached, SIGKILL,
restart; every acknowledged response ends with the status its row promises and replays without
gap or rewrite.  N = 16 by default, 50 with ``--conformance-explore N`` (N > 0).  Loopback only.

Against a black-box target (``control: none``) the same rows run in black-box form
(``run_load(plain=...)``: plain input, the SIGKILL placed after every live stream's first delta,
output judged against the streamed deltas, not markers); a run whose fault could not be placed
mid-run is "not testable", never a pass."""

from __future__ import annotations

import pytest

from conformance.explore.load import run_load

BLACKBOX = True
"""Runs against a ``control: none`` target too, in black-box form (see above)."""

DEFAULT_N = 16
EXPLORE_N = 50


@pytest.mark.parametrize("resilient", [True, False], ids=["resilient", "not_resilient"])
def test_load_responses_sigkill(resilient: bool, conformance_settings, spawn_target) -> None:
    target_config = conformance_settings.target
    if "responses" not in target_config.profiles:
        pytest.skip("target does not claim the responses profile")
    if resilient and "resilient_background" not in target_config.claims:
        pytest.skip(f"not claimed by target {target_config.name}: resilient_background")
    n = EXPLORE_N if conformance_settings.explore else DEFAULT_N
    target = spawn_target(server={"resilient_background": resilient})
    plain = target_config.blackbox_request("responses") if target_config.blackbox else None
    result = run_load(target, n, resilient=resilient, plain=plain)
    if result.history is not None:  # the whole run, for the HTML report's timeline
        (spawn_target.work_dir / "history.json").write_text(result.history.to_json(), encoding="utf-8")
    if result.not_testable and not result.problems:
        pytest.skip(f"not testable: {result.not_testable}")
    assert result.acknowledged == n, f"only {result.acknowledged}/{n} creates acknowledged: {result.problems[:5]}"
    assert not result.problems, f"{len(result.problems)} problem(s) after SIGKILL under load of {n}:\n  - " + "\n  - ".join(result.problems[:20])
