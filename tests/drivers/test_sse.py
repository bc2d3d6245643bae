"""The kit's SSE framing agrees with httpx-sse and keeps what httpx-sse drops (raw text, comments)."""

from __future__ import annotations

import httpx
from httpx_sse import EventSource
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.drivers.sse import FrameParser, iter_frames, iter_lines

text = st.text(alphabet=st.characters(blacklist_characters="\r\n\0", blacklist_categories=("Cs",)), max_size=20)
event = st.fixed_dictionaries(
    {"event": st.one_of(st.none(), text.filter(lambda s: s.strip() != "")), "data": st.lists(text, min_size=1, max_size=3), "id": st.one_of(st.none(), st.integers(0, 10**6).map(str))}
)


def encode(events, newline: str) -> str:
    out = []
    for e in events:
        lines = []
        if e["event"] is not None:
            lines.append(f"event: {e['event']}")
        if e["id"] is not None:
            lines.append(f"id: {e['id']}")
        lines += [f"data: {d}" for d in e["data"]]
        out.append(newline.join(lines) + newline + newline)
    return "".join(out)


@settings(max_examples=150, deadline=None)
@given(st.lists(event, min_size=1, max_size=6), st.sampled_from(["\n", "\r\n", "\r"]))
def test_agrees_with_httpx_sse(events, newline):
    body = encode(events, newline).encode()
    response = httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)
    theirs = [(e.event, e.data, e.id or None) for e in EventSource(response).iter_sse()]
    response2 = httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)
    ours = [(f.event or "message", f.data, f.id) for f in iter_frames(iter_lines(response2.iter_text()))]
    assert ours == theirs


def test_keeps_raw_text_and_comments():
    lines = [": keep-alive", "", "event: response.created", 'data: {"sequence_number": 0}', ""]
    frames = list(iter_frames(lines))
    assert frames[0].comments == ["keep-alive"] and frames[0].data == ""
    assert frames[1].raw == 'event: response.created\ndata: {"sequence_number": 0}\n\n'
    assert frames[1].event == "response.created"


def test_torn_last_frame_is_not_dispatched():
    assert list(iter_frames(["event: x", "data: 1"])) == []


def test_id_with_nul_is_ignored_and_last_id_sticks():
    p = FrameParser()
    for line in ["id: 7", "data: a", ""]:
        f = p.feed(line)
    assert f is not None and f.id == "7"
    for line in ["id: 8\0", "data: b"]:
        assert p.feed(line) is None
    assert p.feed("").id == "7"


@given(st.text(alphabet="ab\r\n\x1e", max_size=40), st.integers(1, 5))
def test_line_split_ignores_chunking(text, size):
    chunks = [text[i : i + size] for i in range(0, len(text), size)]
    assert list(iter_lines(chunks)) == list(iter_lines([text]))
    assert all("\r" not in line and "\n" not in line for line in iter_lines([text]))
