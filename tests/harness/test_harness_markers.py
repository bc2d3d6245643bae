"""Markers: complete lines only, bounded waits with useful messages, release files."""

from __future__ import annotations

import threading
import time

import pytest

from harness.errors import HarnessError, MarkerTimeout
from harness.markers import (
    Checkpoint, Delta, Done, Fail, Held, Interrupted, Markers, Released, Start, Unparsed, parse_marker, parse_markers,
)


def append(markers: Markers, tag: str, text: str) -> None:
    with open(markers.path(tag), "a") as fh:
        fh.write(text)


@pytest.fixture
def markers(tmp_path) -> Markers:
    return Markers(tmp_path, log_tail=lambda: "server line 1\nserver line 2")


def test_lines_ignore_a_torn_last_line(markers):
    assert markers.lines("t") == []
    append(markers, "t", "start attempt=1 id=r1\ndelta 0\ndel")
    assert markers.lines("t") == ["start attempt=1 id=r1", "delta 0"]
    append(markers, "t", "ta 1\n")
    assert markers.lines("t") == ["start attempt=1 id=r1", "delta 0", "delta 1"]


def test_wait_for_returns_first_match_from_start(markers):
    append(markers, "t", "start attempt=1 id=a\nheld 3\nstart attempt=2 id=a\nheld 3\n")
    assert markers.wait_for("t", r"^start attempt=\d") == "start attempt=1 id=a"
    assert markers.wait_for("t", r"^start attempt=\d", start=1) == "start attempt=2 id=a"
    assert markers.wait_count("t", r"^held \d+$", 2) == ["held 3", "held 3"]


def test_wait_sees_lines_written_while_waiting(markers):
    def writer() -> None:
        for i in range(5):
            append(markers, "w", f"delta {i}\n")
        append(markers, "w", "done\n")

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert markers.wait_for("w", "^done$", timeout_s=5) == "done"
    finally:
        thread.join(5)
    assert markers.wait_count("w", r"^delta", 5, timeout_s=1) == [f"delta {i}" for i in range(5)]


def test_timeout_names_tag_pattern_last_lines_and_log_tail(markers):
    append(markers, "t1", "".join(f"delta {i}\n" for i in range(15)) + "half a li")
    begin = time.monotonic()
    with pytest.raises(MarkerTimeout) as info:
        markers.wait_for("t1", r"^held \d+$", timeout_s=0.1)
    assert 0.1 <= time.monotonic() - begin < 2
    msg = str(info.value)
    assert "'t1'" in msg and r"/^held \d+$/" in msg and "0.1s" in msg
    assert "last marker lines (10 of 15)" in msg
    assert "delta 14" in msg and "delta 4" not in msg.replace("delta 14", "")
    assert "half a li" not in msg
    assert "server line 2" in msg  # the log tail
    assert isinstance(info.value, HarnessError)


def test_timeout_on_a_missing_file_says_so(tmp_path):
    with pytest.raises(MarkerTimeout, match="does not exist") as info:
        Markers(tmp_path).wait_for("nobody", "x", timeout_s=0.05)
    assert "incarnation log" not in str(info.value)  # no log_tail given


def test_wait_count_timeout_reports_progress(markers):
    append(markers, "c", "delta 0\ndelta 1\n")
    with pytest.raises(MarkerTimeout, match=r"3 lines matching /delta/ \(got 2\)"):
        markers.wait_count("c", "delta", 3, timeout_s=0.05)


def test_dead_process_fails_fast(markers):
    append(markers, "d", "start attempt=1 id=x\n")
    begin = time.monotonic()
    with pytest.raises(MarkerTimeout) as info:
        markers.wait_for("d", "^held", timeout_s=10, alive=lambda: False)
    assert time.monotonic() - begin < 1
    assert "exited while waiting" in str(info.value)
    assert "start attempt=1 id=x" in str(info.value)


def test_dead_process_line_written_before_death_still_counts(markers):
    append(markers, "d2", "held 2\n")
    assert markers.wait_for("d2", "^held", timeout_s=10, alive=lambda: False) == "held 2"


def test_alive_turning_false_during_wait(markers):
    calls = {"n": 0}

    def alive() -> bool:
        calls["n"] += 1
        return calls["n"] < 5

    begin = time.monotonic()
    with pytest.raises(MarkerTimeout, match="exited"):
        markers.wait_for("e", "x", timeout_s=10, alive=alive)
    assert time.monotonic() - begin < 1


def test_release_creates_the_file_idempotently(markers):
    assert not markers.is_released("r")
    markers.release("r")
    assert markers.release_path("r").exists()
    assert markers.release_path("r").name == "r.release"
    markers.release("r")
    assert markers.is_released("r")


def test_all_lists_every_tag(markers):
    append(markers, "a", "x\n")
    append(markers, "b", "y\nz\n")
    markers.release("a")
    assert markers.all() == {"a": ["x"], "b": ["y", "z"]}


@pytest.mark.parametrize("tag", ["", "../escape", "a/b", ".hidden"])
def test_invalid_tags_are_refused(markers, tag):
    with pytest.raises(ValueError):
        markers.path(tag)


def test_broken_log_tail_does_not_hide_the_timeout(tmp_path):
    def broken() -> str:
        raise RuntimeError("boom")

    with pytest.raises(MarkerTimeout, match="log tail unavailable: boom"):
        Markers(tmp_path, log_tail=broken).wait_for("t", "x", timeout_s=0.01)


# -- marker lines, parsed once (docs/protocol.md §3.4, §7.9) --------------------------------


@pytest.mark.parametrize("line, record", [
    ("start attempt=2 id=resp_1 from=3", Start(2, "resp_1", 3)),
    ("start attempt=1 id=inv-9", Start(1, "inv-9", None)),  # from= left out: the checks say so
    ("start id=x", Start(None, "x", None)),
    ("delta 0", Delta(0)),
    ("checkpoint 4", Checkpoint(4)),
    ("held 3", Held(3)),
    ("held -1", Held(-1)),
    ("fail 2", Fail(2)),
    ("released", Released()),
    ("interrupted", Interrupted()),
    ("done", Done()),
])
def test_every_marker_form_parses_to_its_record(line, record):
    assert parse_marker(line) == record
    assert str(record) == line  # the record prints as the line it came from


def test_a_start_line_keeps_its_fields_and_ignores_stray_words():
    assert parse_marker("start attempt=x id=a from=1 extra") == Start(None, "a", 1)


@pytest.mark.parametrize("line, why", [
    ("held", "expected 'held <integer>'"),
    ("held x", "expected 'held <integer>'"),
    ("delta 1 2", "expected 'delta <integer>'"),
    ("checkpoint", "expected 'checkpoint <integer>'"),
    ("done now", "'done' takes no argument"),
    ("pid 42", "not a marker line"),
    ("", "empty line"),
    ("\x00\xff garbage", "not a marker line"),
])
def test_a_malformed_line_is_unparsed_never_an_exception(line, why):
    record = parse_marker(line)
    assert isinstance(record, Unparsed) and record.line == line and why in record.why, record
    assert str(record) == line


def test_parse_markers_keeps_the_order():
    assert parse_markers(["start attempt=1 id=a from=0", "delta 0", "bogus"]) == [
        Start(1, "a", 0), Delta(0), Unparsed("bogus", "bogus", "not a marker line of the test-control contract")]


def test_waits_for_a_record_type_or_one_record(tmp_path):
    (tmp_path / "r.log").write_text("start attempt=1 id=a from=0\nheld x\nheld 2\nheld 3\nreleased\n")
    markers = Markers(tmp_path)
    assert markers.wait_for("r", Held, timeout_s=1) == "held 2"  # 'held x' is no Held
    assert markers.wait_for("r", Held(3), timeout_s=1) == "held 3"
    assert markers.wait_count("r", Held, 2, timeout_s=1) == ["held 2", "held 3"]
    with pytest.raises(MarkerTimeout, match=r"no line 'held 4' \(marker\) within"):
        markers.wait_for("r", Held(4), timeout_s=0.05)
    with pytest.raises(MarkerTimeout, match=r"no line 'done' \(marker\) within"):
        markers.wait_for("r", Done, timeout_s=0.05)
def test_marker_watch_notes_when_each_complete_line_was_first_seen(markers):
    from harness.markers import MarkerWatch

    append(markers, "w", "start attempt=1 id=r1\n")
    t0 = time.monotonic()
    assert markers.lines("w") == ["start attempt=1 id=r1"]  # any read notes the time
    append(markers, "w", "delta 0\nheld 0\ndel")  # a torn last line is not seen yet
    watch = MarkerWatch(markers, "w", interval_s=0.005).start()
    deadline = time.monotonic() + 5
    while len(markers.first_seen("w")) < 3 and time.monotonic() < deadline:  # the watcher's own read, bounded
        time.sleep(0.005)
    t1 = time.monotonic()
    append(markers, "w", "ta 1\n")
    times = watch.stop()
    assert len(times) == 4 and times == sorted(times), times
    assert times[0] <= t0 + 0.5 and t0 <= times[1] <= t1 and times[3] >= t1, (t0, t1, times)
