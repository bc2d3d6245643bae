"""The HTML run report, built from recorded histories (tests/checks builders) and read back
structurally: the violation sits in the failing cell's detail next to the frames it names,
every incarnation lane and fault is drawn, a passing cell highlights nothing, a load-sized
history stays paginated, a broken history is one line on the page and never a crash."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from checks.builders import SIGKILL_HELD, calls, crash_run, make_cell, make_history, normal_run
from checks.invocation_builders import crash as inv_crash, inv_cell, inv_history, retext
from conformance.checks import run_checks
from conformance.checks.invocations import transcript
from conformance.history import History
from conformance.htmlreport.locate import locate
from conformance.htmlreport.render import anchor_of, glyph_css, render_run_report, write_run_report
from conformance.model import ContractTable, FaultSpec
from conformance.report import GLYPHS

from .dom import Node, parse

KILL = FaultSpec("sigkill", "held")
REPLAY_GAP = {"replay": {"gap_free": True, "after": ["start"]}, "output": "full", "status": "completed"}


def result_for(cell, history: History, tmp_path: Path, verdict: str | None = None) -> dict:
    """The JSON result the plugin records for a cell, with its history.json written."""
    violations = [str(v) for v in run_checks(history, cell)]
    work = tmp_path / anchor_of(cell.id)
    (work / "logs").mkdir(parents=True, exist_ok=True)
    for inc in history.incarnations:
        inc.log_path = str(work / "logs" / f"incarnation-{inc.index}.log")
        Path(inc.log_path).write_text(f"log of incarnation {inc.index}\n")
    (work / "history.json").write_text(history.to_json())
    return {"id": cell.id, "contract": cell.contract, "row": cell.row, "path": cell.path, "variant": cell.variant_id,
            "level": cell.level, "fault": cell.fault.describe(), "source": "contracts/x.yaml:3",
            "verdict": verdict or ("fail" if violations else "pass"), "violations": violations,
            "history": str(work / "history.json"), "duration_s": 1.5}


def detail_of(doc: Node, cell_id: str) -> Node:
    return doc.by_id(anchor_of(cell_id))


def frame_rows(detail: Node) -> list[Node]:
    return detail.find_all(lambda n: n.tag == "tr" and "frame" in n.classes)


def responses_gap_history() -> History:
    """A SIGKILL crash cell whose replay from the start lost seq 5."""
    h = make_history(crash_run(), replays=("start",))
    replay = calls(h, "replay")[0]
    replay.frames = [f for f in replay.frames if f.seq != 5]
    return h


def test_failing_cell_shows_the_violation_next_to_the_frames_it_names(tmp_path):
    cell = make_cell(REPLAY_GAP, fault=SIGKILL_HELD)
    result = result_for(cell, responses_gap_history(), tmp_path)
    assert any("observed 1 missing: 5 (" in v for v in result["violations"])  # seen live: lost, not a mere gap
    doc = parse(render_run_report([], [result], [], base_dir=tmp_path))
    detail = detail_of(doc, cell.id)
    assert "failing" in detail.classes and detail.attrs["data-verdict"] == "fail"

    # the violation list names it, and its number is on the frames on either side of the hole
    assert "observed 1 missing: 5" in detail.text()
    hits = [r for r in frame_rows(detail) if "hit" in r.classes and r.attrs["id"].startswith(f"{detail.attrs['id']}-c1-")]
    assert sorted(r.attrs["data-label"] for r in hits) == ["response.output_text.delta#4", "response.output_text.delta#6"]
    assert all(r.attrs["data-violations"] == "1" for r in hits)
    # ... and its text is the row right after the first of them, in the replay's frame table
    note = hits[0].next_sibling()
    assert note is not None and "vrow" in note.classes and "observed 1 missing: 5" in note.text()
    # no other frame of the cell is highlighted (the live stream had no hole)
    assert len(detail.find_all(lambda n: "fr" in n.classes and "hit" in n.classes)) == 2

    # the timeline: a lane per incarnation with spawn / ready / exit (mode and signal), the fault
    timeline = doc.by_id(f"{detail.attrs['id']}-timeline")
    lanes = timeline.find_all(lambda n: n.attrs.get("data-lane") == "incarnation")
    assert [n.attrs["data-index"] for n in lanes] == ["0", "1"]
    assert "killed (SIGKILL)" in lanes[0].text() and "ready" in lanes[0].text() and "spawn" in lanes[0].text()
    assert "alive at the end" in lanes[1].text()
    faults = timeline.find_all(lambda n: n.attrs.get("data-fault"))
    assert [f.attrs["data-fault"] for f in faults] == ["sigkill"] and "held" in faults[0].text()
    # every frame of every stream is on the axis, with seq and type readable
    ticks = timeline.find_all(lambda n: "fr" in n.classes)
    h = History.from_json(Path(result["history"]).read_text())
    assert len(ticks) == sum(len(c.frames) for c in h.calls)
    assert any("0 created" in t.text() for t in ticks)
    # the violation note sits in the lane right under the replay call
    note_lane = timeline.find_all(lambda n: n.attrs.get("data-lane") == "violations")
    assert len(note_lane) == 1 and note_lane[0].attrs["data-call-index"] == "1" and "missing: 5" in note_lane[0].text()

    # links into the results dir, relative to the report
    links = {a.attrs["href"] for a in detail.find_all(lambda n: n.tag == "a" and not n.attrs.get("href", "#").startswith("#"))}
    assert f"{anchor_of(cell.id)}/history.json" in links
    assert f"{anchor_of(cell.id)}/logs/incarnation-0.log" in links and f"{anchor_of(cell.id)}/logs/incarnation-1.log" in links


def test_wrong_output_shows_a_diff_and_marks_the_final_object(tmp_path):
    h = make_history(crash_run(), replays=("start",))
    text = h.final["output"][0]["content"][0]["text"]
    h.final["output"][0]["content"][0]["text"] = text.replace("a2:d4 ", "a1:d4 ")
    get = calls(h, "get")[0]
    get.body = h.final
    cell = make_cell({"output": "full"}, fault=SIGKILL_HELD)
    result = result_for(cell, h, tmp_path)
    assert result["violations"], "the broken output must fail the check"
    detail = detail_of(parse(render_run_report([], [result], [], base_dir=tmp_path)), cell.id)
    diff = detail.find_all(lambda n: n.tag == "pre" and "diff" in n.classes)[0]
    removed = [n.text() for n in diff.children if "del" in n.classes]
    added = [n.text() for n in diff.children if "add" in n.classes]
    assert removed == ["− a2:d4 "] and added == ["+ a1:d4 "]
    # the output violation concerns the final get: that call is marked
    get_lane = [n for n in detail.find_all(lambda n: n.attrs.get("data-call") == "get")][0]
    assert any("hit" in n.classes for n in get_lane.iter())


def test_passing_cell_highlights_nothing(tmp_path):
    cell = make_cell({"status": "completed", "output": "full", "stream": {"order": True}})
    result = result_for(cell, make_history(normal_run()), tmp_path)
    assert result["verdict"] == "pass"
    doc = parse(render_run_report([], [result], [], base_dir=tmp_path))
    detail = detail_of(doc, cell.id)
    assert "failing" not in detail.classes
    assert not detail.find_all(lambda n: "hit" in n.classes or "vrow" in n.classes)
    assert doc.by_id("totals").text().count("pass") == 1
    assert not detail.find_all(lambda n: n.attrs.get("data-fault"))


def test_invocations_cell_locates_frames_by_event_id(tmp_path):
    h = inv_history(inv_crash())
    replay = transcript(h)
    replay.frames[2] = retext(replay.frames[2], text="a2:d1 ")  # id 3 reused for another event
    cell = inv_cell({"cursor": {"terminal": "invocation.completed"}}, fault=KILL)
    result = result_for(cell, h, tmp_path)
    assert any("invocation.delta#3 was rewritten" in v for v in result["violations"])
    detail = detail_of(parse(render_run_report([], [result], [], base_dir=tmp_path)), cell.id)
    hits = [r for r in frame_rows(detail) if "hit" in r.classes]
    assert hits and {r.attrs["data-label"] for r in hits} == {"invocation.delta#3"}
    live_index = next(i for i, c in enumerate(h.calls) if c.name == "live")
    assert any(r.attrs["id"].startswith(f"{detail.attrs['id']}-c{live_index}-") for r in hits)
    assert "vrow" in hits[0].next_sibling().classes and "was rewritten" in hits[0].next_sibling().text()
    lanes = detail.find_all(lambda n: n.attrs.get("data-lane") == "incarnation")
    assert len(lanes) == 2 and "killed" in lanes[0].text()


def test_load_sized_history_is_paginated_and_fast(tmp_path):
    h = make_history(normal_run(deltas=300), replays=("start", "mid", "start"))
    frames = sum(len(c.frames) for c in h.calls)
    assert frames > 900
    cell = make_cell({"status": "completed"})
    result = result_for(cell, h, tmp_path)
    started = time.perf_counter()
    written = write_run_report(tmp_path / "report.html", [], [result], [])
    elapsed = time.perf_counter() - started
    assert elapsed < 20, f"rendering {frames} frames took {elapsed:.1f}s"
    doc = parse(written.path.read_text())
    detail = detail_of(doc, cell.id)
    pages = detail.find_all(lambda n: n.tag == "details" and "page" in n.classes)
    assert len(pages) == sum((len(c.frames) + 99) // 100 for c in h.calls)
    assert len(frame_rows(detail)) == frames  # every frame is there, paged
    open_pages = [p for p in pages if "open" in p.attrs]
    assert len(open_pages) == sum(1 for c in h.calls if c.frames)  # only the first page of each stream starts open
    labels = detail.find_all(lambda n: n.tag == "span" and "lbl" in n.classes)
    loud = [n for n in labels if "quiet" not in n.classes]
    assert len(labels) == frames and len(loud) < frames / 4  # a dense lane does not print every label at 1x
    assert written.size == len(written.path.read_bytes())


def test_matrix_uses_the_terminal_glyphs_colours_and_links_to_details(tmp_path):
    passing = make_cell({"status": "completed"})
    failing = make_cell(REPLAY_GAP, fault=SIGKILL_HELD)
    failing = type(failing)(**{**failing.__dict__, "path": "C"})
    table = ContractTable(name="responses/test", profile="responses", level="MUST", source="contracts/x.yaml",
                          paths={"A": passing.fault, "C": failing.fault}, cells=[passing, failing], row_ids=["R1"])
    results = [result_for(passing, make_history(normal_run()), tmp_path),
               result_for(failing, responses_gap_history(), tmp_path)]
    doc = parse(render_run_report([table], results, [], base_dir=tmp_path))
    glyphs = doc.find_all(lambda n: n.tag == "a" and "g" in n.classes)
    by_verdict = {g.attrs["data-verdict"]: g for g in glyphs}
    assert set(by_verdict) == {"pass", "fail"}
    for verdict, g in by_verdict.items():
        assert g.text() == GLYPHS[verdict][0] and g.attrs["style"] == glyph_css(verdict)
    assert "font-weight:bold" in glyph_css("fail") and "#cf222e" in glyph_css("fail")
    assert by_verdict["fail"].attrs["href"] == f"#{anchor_of(failing.id)}"
    doc.by_id(anchor_of(failing.id))
    selects = {s.attrs["data-filter"] for s in doc.find_all(lambda n: n.tag == "select")}
    assert selects == {"verdict", "contract", "level"}
    rows = doc.by_id("cell-list").find_all(lambda n: n.tag == "tr" and "filterable" in n.classes)
    assert {(r.attrs["data-verdict"], r.attrs["data-level"], r.attrs["data-contract"]) for r in rows} == {
        ("pass", "MUST", "responses/test"), ("fail", "MUST", "responses/test")}


def test_missing_or_broken_history_is_one_line_not_a_crash(tmp_path):
    cell = make_cell({"status": "completed"})
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    results = [
        {"id": "a::R1[A]", "verdict": "fail", "violations": ["status: x"], "history": str(tmp_path / "gone.json")},
        {"id": cell.id, "verdict": "fail", "violations": "not a list", "history": str(broken), "duration_s": "x"},
        {"verdict": 3},
    ]
    doc = parse(render_run_report([], results, [], base_dir=tmp_path))
    assert "gone.json not found" in doc.by_id(anchor_of("a::R1[A]")).text()
    assert "unreadable" in doc.by_id(anchor_of(cell.id)).text()


def test_suite_steps_and_histories_are_shown(tmp_path):
    suite_id = "conformance/suites/test_explore_responses.py::test_explore_responses"
    work = tmp_path / "conformance_suites_test_explore_responses.py_test_explore_responses"
    work.mkdir()
    (work / "steps.json").write_text(json.dumps({"steps": ["create deltas=4", "sigkill at held 2", "restart"],
                                                 "failure": "replay lost seq 3"}))
    (work / "case-1").mkdir()
    (work / "case-1" / "history.json").write_text(responses_gap_history().to_json())
    doc = parse(render_run_report([], [], [{"id": suite_id, "verdict": "fail"}], base_dir=tmp_path, run_dir=tmp_path))
    detail = doc.by_id(anchor_of(suite_id))
    steps = detail.find_all(lambda n: n.tag == "ol" and "steps" in n.classes)[0]
    assert [li.text() for li in steps.children] == ["create deltas=4", "sigkill at held 2", "restart"]
    assert "replay lost seq 3" in detail.text()
    assert len(detail.find_all(lambda n: n.attrs.get("data-lane") == "incarnation")) == 2


@pytest.mark.parametrize("text", [
    "status: expected final status 'completed', observed 'failed'",
    "replay: replay #7 from start: expected one terminal event, observed none",
    "nonsense without a check",
])
def test_locate_names_nothing_it_cannot_find(text):
    h = make_history(normal_run())
    where = locate(text, h)
    assert not where.frames
    if text.startswith("replay"):
        assert not where.calls  # there is no 7th replay


def test_text_timeline_shows_lanes_fault_and_the_frames_around_the_violation():
    from conformance.htmlreport.textline import text_timeline

    h = responses_gap_history()
    violations = [str(v) for v in run_checks(h, make_cell(REPLAY_GAP, fault=SIGKILL_HELD))]
    lines = text_timeline(h, violations)
    assert len(lines) <= 15, lines
    text = "\n".join(lines)
    assert "incarnation 0 pid 1000: spawn 0.000, ready 0.500, exit 4.000 killed (SIGKILL)" in text
    assert "incarnation 1 pid 1001" in text and "alive at the end" in text
    assert "fault sigkill@held at 3.900 on incarnation 0" in text and "restarted as 1" in text
    assert "frames of call 1 (replay) around violation 1:" in text
    marked = [ln for ln in lines if ln.endswith("<- violation")]
    assert [ln.split()[3] for ln in marked] == ["#4", "#6"]
    # a violation that names no frame: the live frames before the fault instead
    lines = text_timeline(h, ["status: expected final status 'completed', observed 'failed'"])
    assert "last live frames of create from incarnation 0 (the fault's):" in "\n".join(lines)
    assert not any("<- violation" in ln for ln in lines)


def test_comparison_as_html_lists_both_column_groups_and_the_differing_cell(tmp_path, capsys):
    from conformance.cli import main

    from .runner_reports import write_report_pair

    a, b, differing = write_report_pair(tmp_path)
    out = tmp_path / "compare.html"
    code = main(["report", "--no-color", str(a), str(b), "--html", str(out)])
    printed = capsys.readouterr().out
    assert code == 1 and f"HTML comparison written to {out}" in printed
    doc = parse(out.read_text(encoding="utf-8"))
    labels = [r.attrs["data-label"] for r in doc.by_id("reports").find_all(lambda n: n.attrs.get("data-label"))]
    assert labels == ["sqlite", "memory"]
    rows = doc.find_all(lambda n: n.tag == "tr" and "differing" in n.classes)
    assert [r.attrs["data-cell"] for r in rows] == [differing]
    cells = [td.text().strip() for td in rows[0].children if td.tag == "td"][1:]
    assert cells == ["✓ pass", "✗ fail"]
    matrix_rows = {r.attrs["data-row"]: r for r in doc.find_all(lambda n: n.tag == "tr" and n.attrs.get("data-row"))}
    assert "differs" in matrix_rows["R1"].classes and "differs" not in matrix_rows["R2"].classes
    glyphs = [g.attrs["data-verdict"] for g in matrix_rows["R1"].find_all(lambda n: "g" in n.classes)]
    assert glyphs.count("fail") == 1 and glyphs.count("pass") == 3


def test_comparison_html_to_a_directory_is_one_line(tmp_path, capsys):
    from conformance.cli import main

    from .runner_reports import write_report_pair

    a, b, _ = write_report_pair(tmp_path)
    code = main(["report", str(a), str(b), "--html", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "is a directory" in err


def test_markers_are_placed_when_their_times_were_recorded(tmp_path):
    h = responses_gap_history()
    h.marker_times = [0.6 + 0.01 * i for i in range(len(h.markers))]
    cell = make_cell(REPLAY_GAP, fault=SIGKILL_HELD)
    detail = detail_of(parse(render_run_report([], [result_for(cell, h, tmp_path)], [], base_dir=tmp_path)), cell.id)
    lane = detail.find_all(lambda n: n.attrs.get("data-lane") == "markers")
    assert len(lane) == 1
    marks = lane[0].find_all(lambda n: "data-marker" in n.attrs)
    assert [m.attrs["data-marker"] for m in marks] == h.markers
    xs = [float(m.attrs["style"].split("left:")[1].rstrip("%")) for m in marks]
    assert xs == sorted(xs) and len(set(xs)) == len(xs)
    # an older history without marker times: the markers are listed, not drawn
    h.marker_times = []
    detail = detail_of(parse(render_run_report([], [result_for(cell, h, tmp_path)], [], base_dir=tmp_path)), cell.id)
    assert not detail.find_all(lambda n: n.attrs.get("data-lane") == "markers")
    assert "held 3" in detail.text()


def test_a_lost_frame_is_found_where_it_was_seen():
    h = responses_gap_history()
    text = ("replay: replay #1 from start: expected every live event up to seq 20 in the replay, observed 1 lost: "
            "response.output_text.delta#5")
    where = locate(text, h)
    assert where.calls == {1}  # the replay it concerns
    assert {(ci, h.calls[ci].name, h.calls[ci].frames[fi].seq) for ci, fi in where.frames} == {(0, "create", 5)}


def test_typed_result_records_render_like_dicts(tmp_path):
    """The plugin may hand typed records (with ``to_dict``) instead of dicts."""
    cell = make_cell(REPLAY_GAP, fault=SIGKILL_HELD)
    result = result_for(cell, responses_gap_history(), tmp_path)

    class Record:
        def to_dict(self):
            return dict(result)

    from_dict = render_run_report([], [result], [], base_dir=tmp_path)
    from_record = render_run_report([], [Record()], [], base_dir=tmp_path)
    strip = lambda html: "\n".join(ln for ln in html.splitlines() if "generated" not in ln)  # noqa: E731
    assert strip(from_record) == strip(from_dict)
