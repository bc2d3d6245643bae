"""Invocations under real SIGKILL / SIGTERM, then a restart on the same state dir.

Every fault is triggered on a marker (``held k``, ``delta k``), and every test checks that the
fault happened (exit mode, marker lines, a new incarnation).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from inv_wire import GRACE, TERM_WAIT_S, Frame, InvApi, check_frames, new_tag, starts, text
from ri_wire import spec

from harness.process import Target

RESILIENT = ("--resilient-invocations", *GRACE)
PLAIN = GRACE
TERMINAL_TYPES = {"invocation.completed", "invocation.failed", "invocation.cancelled", "invocation.interrupted", "invocation.superseded"}


@pytest.fixture
def make(target_factory) -> Callable[..., Target]:
    return lambda *extra: target_factory(spec(*extra), start=True)


def hold_script(tag: str, hold_at: int, **extra: int) -> dict:
    return {"deltas": 6, "checkpoint_every": 2, "hold_at": hold_at, "tag": tag, **extra}


def read_until_held(api: InvApi, target: Target, inv: str, tag: str, hold_at: int, stack: list) -> tuple:
    cm = api.open_stream(inv)
    reader = cm.__enter__()
    stack.append(cm)
    # The last frame before the hold: the checkpoint when hold_at ends a group of 2, else the delta.
    last_type = "invocation.checkpoint" if (hold_at + 1) % 2 == 0 else "invocation.delta"
    before = reader.read(stop=lambda f: f.type == last_type and f.data["index"] == hold_at)
    target.markers.wait_for(tag, rf"^held {hold_at}$")
    return reader, before


def close_all(stack: list) -> None:
    for cm in stack:
        try:
            cm.__exit__(None, None, None)
        except Exception:  # the server died under the stream
            pass


def check_recovered(api: InvApi, inv: str, before: list[Frame], resume_from: int, deltas: int = 6) -> list[Frame]:
    """Ids continue without gap or reuse; every pre-crash cursor resumes to exactly the rest."""
    final = api.wait_status(inv)
    full = api.stream(inv)
    assert final["status"] == "completed", final
    assert (final["attempt"], final["entry_mode"]) == (2, "recovered")
    assert final["output"] == text(1, 0, resume_from) + text(2, resume_from, deltas)  # carry-over + recovered
    assert [f.id for f in full] == list(range(1, len(full) + 1))  # no gap, no reuse
    assert full[: len(before)] == before  # the same id means the same event
    started = [f for f in full if f.type == "invocation.started"]
    assert [(s.data["attempt"], s.data["entry_mode"], s.data["from"]) for s in started] == [
        (1, "fresh", 0), (2, "recovered", resume_from)
    ]
    recovered_deltas = [f.data["index"] for f in full[full.index(started[1]) :] if f.type == "invocation.delta"]
    assert recovered_deltas == list(range(resume_from, deltas))
    assert full[-1].type == "invocation.completed" and full[-1].data["output"] == final["output"]
    assert final["last_event_id"] == full[-1].id
    for k in range(0, before[-1].id + 1):  # a reader resuming from every id it saw gets exactly the rest
        assert api.stream(inv, header=k) == full[k:], k
    return full


# ---------------------------------------------------------------- resilient: SIGKILL, SIGTERM past the grace
@pytest.mark.parametrize(("hold_at", "resume_from"), [(3, 4), (2, 2)], ids=["after-checkpoint", "mid-group"])
def test_resilient_sigkill_recovers_from_the_last_checkpoint(make, hold_at: int, resume_from: int) -> None:
    target: Target = make(*RESILIENT)
    tag = new_tag("rk")
    stack: list = []
    with InvApi(target.base_url) as api:
        inv = api.create(hold_script(tag, hold_at))["invocation_id"]
        _, before = read_until_held(api, target, inv, tag, hold_at, stack)
        assert target.kill().exit_mode == "killed"
        close_all(stack)
        # A torn half-line at the end of the event log, as a crash mid-append would leave it.
        with open(target.state_dir / "streams" / f"{inv}.jsonl", "ab") as f:
            f.write(b'{"type":"invocation.delta","event_id":')
        target.markers.release(tag)
        target.restart()
        check_recovered(api, inv, before, resume_from)
    lines = target.markers.lines(tag)
    assert starts(lines) == [f"start attempt=1 id={inv} from=0", f"start attempt=2 id={inv} from={resume_from}"]
    assert lines[-1] == "done" and "interrupted" not in lines  # SIGKILL: the handler never heard of it
    assert len(target.incarnations) == 2


def test_resilient_sigterm_past_grace_recovers_next_lifetime(make) -> None:
    target: Target = make(*RESILIENT)
    tag = new_tag("rt")
    stack: list = []
    with InvApi(target.base_url) as api:
        inv = api.create(hold_script(tag, 3))["invocation_id"]
        reader, before = read_until_held(api, target, inv, tag, 3, stack)
        inc = target.terminate(grace_s=TERM_WAIT_S)
        assert (inc.exit_mode, inc.exit_code) == ("graceful", 0)
        before += reader.read()
        assert reader.ended and not any(f.type in TERMINAL_TYPES for f in before)  # ended cleanly, no terminal
        close_all(stack)
        assert target.markers.lines(tag)[-1] == "interrupted"
        target.markers.release(tag)
        target.restart()
        check_recovered(api, inv, before, 4)
    assert starts(target.markers.lines(tag))[-1] == f"start attempt=2 id={inv} from=4"


# ---------------------------------------------------------------- not resilient
def test_plain_sigterm_drain_interrupts_and_keeps_finished_runs(make) -> None:
    target: Target = make(*PLAIN)
    held, last, done = new_tag("drain"), new_tag("lastheld"), new_tag("finished")
    stack: list = []
    with InvApi(target.base_url) as api:
        finished = api.create({"deltas": 2, "tag": done})["invocation_id"]
        assert api.wait_status(finished)["status"] == "completed"
        produced = api.create({"deltas": 2, "hold_at": 1, "tag": last})["invocation_id"]  # held after its last delta
        inv = api.create(hold_script(held, 3))["invocation_id"]
        reader, before = read_until_held(api, target, inv, held, 3, stack)
        target.markers.wait_for(last, r"^held 1$")
        inc = target.terminate(grace_s=TERM_WAIT_S)
        assert (inc.exit_mode, inc.exit_code) == ("graceful", 0)
        rest = reader.read()
        close_all(stack)
        assert [f.type for f in rest] == ["invocation.interrupted"] and rest[0].id == before[-1].id + 1
        target.restart()
        snap = api.snapshot(inv)
        assert (snap["status"], snap["output"], snap["last_event_id"]) == ("interrupted", text(1, 0, 4), rest[0].id)
        assert api.stream(inv) == before + rest
        kept = api.snapshot(produced)
        assert (kept["status"], kept["output"]) == ("completed", text(1, 0, 2))
        assert api.stream(produced)[-1].type == "invocation.completed"
        assert api.snapshot(finished)["status"] == "completed"
    assert target.markers.lines(held)[-1] == "interrupted" and len(starts(target.markers.lines(held))) == 1
    assert target.markers.lines(last)[-2:] == ["interrupted", "done"]


def test_plain_sigkill_next_lifetime_marks_interrupted_without_rerun(make) -> None:
    target: Target = make(*PLAIN)
    tag = new_tag("pk")
    stack: list = []
    with InvApi(target.base_url) as api:
        inv = api.create(hold_script(tag, 3))["invocation_id"]
        _, before = read_until_held(api, target, inv, tag, 3, stack)
        assert target.kill().exit_mode == "killed"
        close_all(stack)
        target.markers.release(tag)
        target.restart()
        snap = api.snapshot(inv)  # the scan ran before readiness: already terminal
        full = api.stream(inv)
    assert (snap["status"], snap["attempt"], snap["output"]) == ("interrupted", 1, text(1, 0, 4))
    assert full[:-1] == before and full[-1].type == "invocation.interrupted" and full[-1].id == before[-1].id + 1
    assert starts(target.markers.lines(tag)) == [f"start attempt=1 id={inv} from=0"]
    assert not (target.state_dir / "tasks" / f"{inv}.json").exists()


# ---------------------------------------------------------------- crash while inputs are queued
# The first turn is held mid-group (hold_at 2, checkpoint_every 2): a steer winds it down only at
# its next checkpoint, which it cannot reach while held, so both inputs stay queued, together,
# until the crash. Nothing here waits on time.
def queue_two(api: InvApi, target: Target, t1: str, t2: str, t3: str) -> tuple[dict, dict, dict]:
    first = api.create(hold_script(t1, 2))
    target.markers.wait_for(t1, r"^held 2$")
    second = api.create({"deltas": 2, "hold_at": 0, "tag": t2}, session_id=first["session_id"])
    third = api.create({"deltas": 2, "tag": t3}, session_id=first["session_id"])
    assert second["status"] == third["status"] == "queued"
    for inv in (second, third):
        assert api.snapshot(inv["invocation_id"])["status"] == "queued"
    assert target.markers.lines(t2) == target.markers.lines(t3) == []
    return first, second, third


def check_redelivered(api: InvApi, target: Target, first: dict, queued: tuple[dict, dict], tags: tuple[str, str, str],
                      first_ends: str) -> None:
    t1, t2, t3 = tags
    second, third = queued
    target.markers.wait_for(t2, r"^held 0$")  # FIFO: the second runs first ...
    assert target.markers.lines(t3) == []  # ... and alone
    assert api.snapshot(third["invocation_id"])["status"] == "queued"
    target.markers.release(t2)
    finals = [api.wait_status(x["invocation_id"]) for x in queued]
    snap1 = api.snapshot(first["invocation_id"])
    frames1 = api.stream(first["invocation_id"])
    assert snap1["status"] == first_ends and frames1[-1].type == f"invocation.{first_ends}"
    assert snap1["output"] == text(1, 0, 3)  # what it had produced before the fault
    check_frames(frames1, first["invocation_id"])
    assert [f.id for f in frames1] == list(range(1, len(frames1) + 1))
    for final, inv in zip(finals, queued):
        assert (final["status"], final["attempt"], final["entry_mode"]) == ("completed", 1, "resumed")
        assert final["output"] == text(1, 0, 2)
        full = api.stream(inv["invocation_id"])
        assert [f.id for f in full] == list(range(1, len(full) + 1))
        assert [f.type for f in full].count("invocation.started") == 1 and full[-1].type == "invocation.completed"
    assert starts(target.markers.lines(t1)) == [f"start attempt=1 id={first['invocation_id']} from=0"]
    for tag, inv in ((t2, second), (t3, third)):
        assert starts(target.markers.lines(tag)) == [f"start attempt=1 id={inv['invocation_id']} from=0"]
    assert not list((target.state_dir / "tasks").iterdir())


@pytest.mark.parametrize(("mode", "first_ends"), [(RESILIENT, "superseded"), (PLAIN, "interrupted")], ids=["resilient", "plain"])
def test_sigkill_with_queued_inputs_redelivers_each_exactly_once(make, mode: tuple, first_ends: str) -> None:
    target: Target = make(*mode)
    tags = (new_tag("q1"), new_tag("q2"), new_tag("q3"))
    with InvApi(target.base_url) as api:
        first, second, third = queue_two(api, target, *tags)
        assert target.kill().exit_mode == "killed"
        target.markers.release(tags[0])  # released, the first turn is still not re-run
        target.restart()
        check_redelivered(api, target, first, (second, third), tags, first_ends)
    assert target.markers.lines(tags[0])[-1] == "held 2"  # SIGKILL: the handler never heard of it
    assert len(target.incarnations) == 2


@pytest.mark.parametrize(("mode", "first_ends"), [(RESILIENT, "superseded"), (PLAIN, "interrupted")], ids=["resilient", "plain"])
def test_sigterm_with_queued_inputs_redelivers_each_exactly_once(make, mode: tuple, first_ends: str) -> None:
    target: Target = make(*mode)
    tags = (new_tag("tq1"), new_tag("tq2"), new_tag("tq3"))
    with InvApi(target.base_url) as api:
        first, second, third = queue_two(api, target, *tags)
        inc = target.terminate(grace_s=TERM_WAIT_S)
        assert (inc.exit_mode, inc.exit_code) == ("graceful", 0)
        assert target.markers.lines(tags[0])[-1] == "interrupted"  # stopped after the grace
        assert target.markers.lines(tags[1]) == target.markers.lines(tags[2]) == []  # not started in a drain
        for inv in (second, third):
            task = json.loads((target.state_dir / "tasks" / f"{inv['invocation_id']}.json").read_text())
            assert task["status"] == "queued"
        target.markers.release(tags[0])
        target.restart()
        check_redelivered(api, target, first, (second, third), tags, first_ends)
    assert len(target.incarnations) == 2


@pytest.mark.parametrize("mode", [RESILIENT, PLAIN], ids=["resilient", "plain"])
def test_second_crash_while_a_redelivered_input_runs(make, mode: tuple) -> None:
    """Input 2 was queued before input 1 started, so input 1 was never asked to stop: a crash while
    input 1 runs recovers it (resilient: attempt 2 from its checkpoint) or interrupts it (plain),
    and input 2 still runs exactly once after it."""
    target: Target = make(*mode)
    t1, t2, t3 = new_tag("c1"), new_tag("c2"), new_tag("c3")
    with InvApi(target.base_url) as api:
        first = api.create(hold_script(t1, 2))
        target.markers.wait_for(t1, r"^held 2$")
        second = api.create({"deltas": 4, "checkpoint_every": 2, "hold_at": 2, "tag": t2}, session_id=first["session_id"])
        third = api.create({"deltas": 2, "tag": t3}, session_id=first["session_id"])
        assert target.kill().exit_mode == "killed"
        target.restart()
        target.markers.wait_for(t2, r"^held 2$")
        assert target.markers.lines(t3) == []
        assert target.kill().exit_mode == "killed"
        target.markers.release(t2)
        target.restart()
        final2 = api.wait_status(second["invocation_id"])
        final3 = api.wait_status(third["invocation_id"])
    sid = second["invocation_id"]
    if mode == RESILIENT:
        assert (final2["status"], final2["attempt"], final2["entry_mode"]) == ("completed", 2, "recovered")
        assert final2["output"] == text(1, 0, 2) + text(2, 2, 4)
        assert starts(target.markers.lines(t2)) == [f"start attempt=1 id={sid} from=0", f"start attempt=2 id={sid} from=2"]
    else:
        assert (final2["status"], final2["output"]) == ("interrupted", text(1, 0, 3))
        assert starts(target.markers.lines(t2)) == [f"start attempt=1 id={sid} from=0"]
    assert (final3["status"], final3["attempt"], final3["entry_mode"]) == ("completed", 1, "resumed")
    assert starts(target.markers.lines(t3)) == [f"start attempt=1 id={third['invocation_id']} from=0"]
    assert len(target.incarnations) == 3


def test_torn_last_line_is_ignored_after_a_finished_run(make) -> None:
    target: Target = make(*PLAIN)
    with InvApi(target.base_url) as api:
        inv = api.create({"deltas": 2})["invocation_id"]
        api.wait_status(inv)
        full = api.stream(inv)
        target.kill()
        log = target.state_dir / "streams" / f"{inv}.jsonl"
        lines = log.read_bytes().splitlines()
        assert [json.loads(x)["event_id"] for x in lines] == [f.id for f in full]
        with open(log, "ab") as f:
            f.write(b'{"type":"invocation.delta","ev')
        target.restart()
        assert api.stream(inv) == full and api.snapshot(inv)["status"] == "completed"
