"""output (full | empty, predicted from markers), output_text, attempts, and the prediction."""

from __future__ import annotations

from conformance.checks.output import check_attempts, check_output, check_output_text, predict_output

from .builders import (
    RID,
    SIGKILL_HELD,
    crash_run,
    make_cell,
    make_history,
    message_item,
    messages,
    normal_run,
    text_of,
)

CELL = make_cell(fault=SIGKILL_HELD)


def set_text(history, *texts):
    history.final["output"] = [message_item(f"m{i}", t) for i, t in enumerate(texts)]


# ------------------------------------------------------------------ prediction


def test_prediction_single_attempt():
    p = predict_output(normal_run(4).markers, 4)
    assert p.text == "a1:d0 a1:d1 a1:d2 a1:d3 "
    assert [s.number for s in p.starts] == [1]


def test_prediction_crash_without_checkpoint_is_all_last_attempt():
    p = predict_output(crash_run(6, 3).markers, 6)
    assert p.text == text_of(2, range(6))
    assert p.starts[1].snapshot_text == ""


def test_prediction_checkpointed_deltas_keep_their_attempt():
    p = predict_output(crash_run(6, 3, checkpoint_every=3).markers, 6)
    assert p.text == text_of(1, range(3)) + text_of(2, range(3, 6))
    assert p.starts[1].start_from == 3
    assert p.starts[1].snapshot_text == text_of(1, range(3))


def test_prediction_three_attempts_and_inferred_from():
    markers = [
        "start attempt=1 id=r",  # no from=: inferred 0
        "delta 0", "delta 1", "checkpoint 1", "delta 2", "held 2",
        "start attempt=2 id=r",  # no from=: inferred from its first delta marker
        "delta 2", "delta 3", "checkpoint 3", "delta 4",
        "start attempt=3 id=r from=4",
        "delta 4", "delta 5", "done",
    ]
    p = predict_output(markers, 6)
    assert p.text == "a1:d0 a1:d1 a2:d2 a2:d3 a3:d4 a3:d5 "
    assert [s.start_from for s in p.starts] == [0, 2, 4]
    assert p.starts[2].snapshot_text == "a1:d0 a1:d1 a2:d2 a2:d3 "
    assert p.problems == []


def test_prediction_checkpoint_survives_a_resume_from_zero():
    """A recovered attempt that starts over although d0..d2 were checkpointed lost them."""
    markers = ["start attempt=1 id=r from=0", "checkpoint 2", "start attempt=2 id=r from=0"]
    p = predict_output(markers, 4)
    assert p.text == text_of(1, range(3)) + text_of(2, [3])
    assert "attempt 2 resumed from d0 but the checkpoints before it cover d0..d2 (a checkpoint was lost or ignored)" in p.problems


def test_prediction_resume_beyond_checkpoint_is_a_problem():
    markers = ["start attempt=1 id=r from=0", "checkpoint 1", "start attempt=2 id=r from=4"]
    p = predict_output(markers, 6)
    assert "attempt 2 resumed from d4 but the checkpoints before it cover d0..d1" in p.problems[0]


def test_prediction_checkpoint_durable_before_its_marker():
    """Killed after the checkpoint was persisted, before its marker: the crashed attempt's own
    delta markers show it reached d1, so resuming from d2 is that attempt's checkpoint."""
    markers = ["start attempt=1 id=r from=0", "delta 0", "delta 1", "start attempt=2 id=r from=2", "delta 2", "delta 3"]
    p = predict_output(markers, 4)
    assert p.problems == []
    assert p.text == text_of(1, range(2)) + text_of(2, [2, 3])


def test_prediction_resume_past_what_the_crashed_attempt_emitted_is_a_problem():
    markers = ["start attempt=1 id=r from=0", "delta 0", "start attempt=2 id=r from=2"]
    p = predict_output(markers, 4)
    assert "attempt 2 resumed from d2 but the checkpoints before it cover nothing" in p.problems[0]


def test_output_names_a_lost_checkpoint():
    scn = crash_run(6, 3, checkpoint_every=2)
    history = make_history(scn)
    history.markers = [m.replace("start attempt=2 id=resp_0123456789abcdef from=4", "start attempt=2 id=r from=0") for m in history.markers]
    set_text(history, text_of(2, range(6)))
    [v] = check_output(history, "full", CELL)
    assert "text from attempt 2 for d0 d1 d2 d3 where attempt 1 checkpointed them" in v.message
    assert "markers inconsistent: attempt 2 resumed from d0" in v.message


# ------------------------------------------------------------------ output: full


def test_output_full_passes_plain_crash_and_checkpointed():
    assert check_output(make_history(normal_run()), "full", make_cell()) == []
    for every in (None, 1, 2, 3, 4):
        assert check_output(make_history(crash_run(checkpoint_every=every)), "full", CELL) == []


def test_output_full_may_span_several_items():
    history = make_history(crash_run())
    set_text(history, text_of(2, range(2)), "", text_of(2, range(2, 6)))
    assert check_output(history, "full", CELL) == []


def test_stale_text_from_attempt_1():
    history = make_history(crash_run(6, 3))
    set_text(history, text_of(1, range(4)) + text_of(2, range(4, 6)))
    [v] = check_output(history, "full", CELL)
    assert "stale text from attempt 1 for d0 d1 d2 d3 (expected attempt 2)" in v.message
    assert "expected output text 'a2:d0 " in v.message and "observed 'a1:d0 " in v.message
    assert "start attempt=2" in v.evidence


def test_stale_text_kept_next_to_recovered_text():
    """Recovered run appended to the stale item instead of replacing it: duplicates."""
    history = make_history(crash_run(6, 3))
    set_text(history, text_of(1, range(4)), text_of(2, range(6)))
    [v] = check_output(history, "full", CELL)
    assert "stale text from attempt 1" in v.message
    assert "duplicated d0 (attempts [1, 2])" in v.message


def test_checkpoint_lost_shows_newer_attempt():
    history = make_history(crash_run(6, 3, checkpoint_every=2))
    set_text(history, text_of(2, range(6)))
    [v] = check_output(history, "full", CELL)
    assert "text from attempt 2 for d0 d1 d2 d3 where attempt 1 checkpointed them" in v.message


def test_missing_and_extra_deltas():
    history = make_history(normal_run(4))
    set_text(history, "a1:d0 a1:d1 a1:d3 a1:d4 tail")
    [v] = check_output(history, "full", make_cell())
    assert "missing d2" in v.message
    assert "deltas beyond the script's 4: d4" in v.message
    assert "text that is no script delta: 'tail'" in v.message


def test_out_of_order_deltas():
    history = make_history(normal_run(3))
    set_text(history, "a1:d1 a1:d0 a1:d2 ")
    [v] = check_output(history, "full", make_cell())
    assert "deltas out of order: d1 d0 d2" in v.message


def test_output_full_without_markers_is_a_violation():
    history = make_history(normal_run())
    history.markers = []
    [v] = check_output(history, "full", make_cell())
    assert "no `start` marker: no evidence of what ran" in v.message


def test_output_full_without_delta_count():
    history = make_history(normal_run())
    history.script = {}
    [v] = check_output(history, "full", make_cell(script={"hold_at": 1}))
    assert "no `deltas` count" in v.message


def test_output_full_uses_cell_script_as_fallback():
    history = make_history(normal_run(6))
    history.script = {}
    assert check_output(history, "full", make_cell(script={"deltas": 6})) == []


def test_output_non_message_items_contribute_nothing():
    history = make_history(normal_run(2))
    history.final["output"].insert(0, {"type": "reasoning", "content": [{"type": "output_text", "text": "x"}]})
    assert check_output(history, "full", make_cell()) == []


def test_output_no_final():
    history = make_history(normal_run())
    history.final = None
    [v] = check_output(history, "full", make_cell())
    assert "observed no final response object" in v.message


def test_output_unknown_mode():
    [v] = check_output(make_history(normal_run()), "partial", make_cell())
    assert "unknown output expectation 'partial'" in v.message


# ------------------------------------------------------------------ output: empty


def test_output_empty_passes():
    history = make_history(normal_run())
    history.final["output"] = []
    assert check_output(history, "empty", make_cell()) == []
    set_text(history, "", "")
    assert check_output(history, "empty", make_cell()) == []


def test_output_empty_violated():
    [v] = check_output(make_history(normal_run(2)), "empty", make_cell())
    assert "expected empty output, observed text 'a1:d0 a1:d1 '" in v.message


# ------------------------------------------------------------------ output_text


def test_output_text_exact():
    history = make_history(normal_run(2))
    assert check_output_text(history, "a1:d0 a1:d1 ", make_cell()) == []
    [v] = check_output_text(history, "a1:d0 ", make_cell())
    assert "expected output text 'a1:d0 ', observed 'a1:d0 a1:d1 '" in v.message
    history.final = None
    [v] = check_output_text(history, "", make_cell())
    assert "no final response object" in v.message


# ------------------------------------------------------------------ attempts


def test_attempts_pass():
    assert check_attempts(make_history(normal_run()), 1, make_cell()) == []
    assert check_attempts(make_history(crash_run()), 2, CELL) == []


def test_attempts_wrong_count_shows_markers():
    [v] = check_attempts(make_history(crash_run()), 1, CELL)
    assert "expected 1 handler start(s), observed 2" in v.message
    assert f"start attempt=1 id={RID}" in v.evidence and "start attempt=2" in v.evidence


def test_attempts_re_invoked_handler():
    """Row 2 C: the handler must not be re-invoked after the crash."""
    text = messages(check_attempts(make_history(crash_run()), 1, CELL))
    assert "observed 2" in text


def test_attempts_malformed():
    [v] = check_attempts(make_history(normal_run()), "two", make_cell())
    assert "must be an int" in v.message
