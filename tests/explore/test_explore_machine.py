"""The crash-schedule state machine against the tiny target.

- Scripted schedules (deterministic: the rules called in a fixed order, exactly as hypothesis
  calls them) prove that the machine's rules and invariants catch each deliberately broken
  variant, and that the correct variant passes the same schedule.
- A small derandomized search over the correct tiny target finds nothing (no false alarm).
- The failure text carries the steps, the problems and the replay line.
"""

from __future__ import annotations

import pytest
from explore_helpers import tiny_config

from conformance.explore.machine import Budget, ExplorationFailed, ResponsesMachine, explore


def crash_schedule(spawn) -> None:
    """create (held at delta 2, live stream) -> SIGKILL + restart -> read -> settle -> teardown."""
    machine_cls = type("Scripted", (ResponsesMachine,), {"spawn": staticmethod(spawn), "failures": []})
    m = machine_cls()
    try:
        m.start(resilient=True)
        m.create(deltas=4, hold=2, checkpoint=None, delay=0, stream=True)
        m.invariants_hold()
        m.sigkill_restart()
        m.invariants_hold()
        m.read_k(pick=0, cursor_pick=0, k=2)
        m.invariants_hold()
        m.release(pick=0)
        m.wait_terminal(pick=0)
        m.invariants_hold()
    finally:
        m.teardown()


def test_correct_tiny_target_passes_the_crash_schedule(tmp_path, spawn_factory) -> None:
    crash_schedule(spawn_factory(tiny_config(tmp_path)))


@pytest.mark.parametrize(
    ("bug", "expected"),
    [
        ("reuse-seq", ("rewritten", "duplicate sequence_number", "missing seq")),
        ("lose-last", ("rewritten", "missing seq", "terminal events at different seqs")),
    ],
)
def test_crash_schedule_catches_the_broken_tiny_target(tmp_path, spawn_factory, bug, expected) -> None:
    with pytest.raises(ExplorationFailed) as info:
        crash_schedule(spawn_factory(tiny_config(tmp_path, bug)))
    text = str(info.value)
    assert any(word in text for word in expected), text
    assert "steps (t since example start):" in text and "SIGKILL + restart" in text, text


def test_search_over_the_correct_tiny_target_finds_nothing(tmp_path, spawn_factory) -> None:
    explore(spawn_factory(tiny_config(tmp_path)), Budget(examples=4, steps=10, shrink=False))


class AlwaysBroken(ResponsesMachine):
    """A machine whose invariant check always reports one synthetic problem."""

    def _check(self) -> None:
        self._fail(["synthetic problem"])


def test_failure_text_has_the_seed_and_the_replay_line(tmp_path, spawn_factory) -> None:
    with pytest.raises(ExplorationFailed) as info:
        explore(spawn_factory(tiny_config(tmp_path)), Budget(examples=3, steps=5, seed=5, shrink=False), machine=AlwaysBroken,
                replay_hint="CONFORMANCE_EXPLORE_SEED={seed} pytest conformance -k test_explore_responses")
    text = str(info.value)
    assert "invariant broken:\n  - synthetic problem" in text and "start target" in text, text
    assert "exploration: seed 5, 3 example(s) x 5 steps" in text, text
    assert "replay: CONFORMANCE_EXPLORE_SEED=5 pytest conformance -k test_explore_responses" in text, text


def test_failing_exploration_records_its_steps_and_history_for_the_html_report(tmp_path, spawn_factory) -> None:
    import json

    from conformance.history import History
    from conformance.htmlreport.render import render_run_report

    record = tmp_path / "results" / "conformance_suites_test_explore_responses.py_test_explore_responses"
    with pytest.raises(ExplorationFailed):
        explore(spawn_factory(tiny_config(tmp_path)), Budget(examples=2, steps=3, seed=7, shrink=False),
                machine=AlwaysBroken, record_dir=record)
    steps = json.loads((record / "steps.json").read_text())
    assert steps["steps"] and steps["steps"][0].split(None, 1)[1].startswith("start target"), steps
    assert steps["failure"] == "synthetic problem" and "seed 7" in steps["exploration"]
    history = History.from_json((record / "history.json").read_text())
    assert history.incarnations and history.incarnations[0].ready_at is not None
    assert history.notes == ["invariant broken: synthetic problem"]
    html = render_run_report([], [], [{"id": "conformance/suites/test_explore_responses.py::test_explore_responses",
                                       "verdict": "fail"}], run_dir=tmp_path / "results", base_dir=tmp_path)
    assert '<ol class="steps">' in html and "start target" in html and "synthetic problem" in html


def test_one_seed_repeats_an_exploration_exactly(tmp_path, spawn_factory) -> None:
    """The same seed draws the same examples (the rule calls and their arguments, in order),
    run after run; another seed draws others (so the seed is what decides, not derandomizing)."""
    spawn = spawn_factory(tiny_config(tmp_path))
    budget = Budget(examples=2, steps=6, seed=99, shrink=False)
    first = explore(spawn, budget)
    again = explore(spawn, budget)
    other = explore(spawn, Budget(examples=2, steps=6, seed=7, shrink=False))
    assert all(trace[0].startswith("start(resilient=") for trace in first), first
    assert any("restart()" in step or "create(" in step for trace in first for step in trace), first
    assert again == first
    assert other != first, other
