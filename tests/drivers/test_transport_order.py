"""The transport writes a call's ``ended`` last, so a judge on another thread that sees a call
ended also sees its final frames, body, status and end time (``explore.invariants.settled``)."""

from __future__ import annotations

import httpx
import pytest

from conformance.drivers.base import Recorder, Transport
from conformance.history import HttpCall

SSE = b'event: a\ndata: {"sequence_number": 0}\n\nevent: b\ndata: {"sequence_number": 1}\n\n'


class _WatchedCall(HttpCall):
    """Logs every attribute write once recorded, with the frame count at that moment."""

    def __setattr__(self, name: str, value: object) -> None:
        super().__setattr__(name, value)
        log = self.__dict__.setdefault("_writes", [])
        log.append((name, value, len(self.__dict__.get("frames", []))))


class _WatchingRecorder(Recorder):
    def add(self, call: HttpCall) -> None:
        call.__class__ = _WatchedCall
        call.__dict__["_writes"] = []
        super().add(call)


def _transport(handler) -> tuple[Transport, _WatchingRecorder]:
    rec = _WatchingRecorder(lambda: 7.0, lambda: 0)
    transport = Transport("http://target", rec)
    transport.client = httpx.Client(transport=httpx.MockTransport(handler))
    return transport, rec


@pytest.mark.parametrize(
    ("answer", "ended"),
    [
        (lambda r: httpx.Response(200, headers={"content-type": "text/event-stream"}, content=SSE), "complete"),
        (lambda r: httpx.Response(200, json={"status": "completed"}), "complete"),
        (lambda r: (_ for _ in ()).throw(httpx.ConnectError("refused")), "broken"),
    ],
)
def test_ended_is_the_last_write(answer, ended: str) -> None:
    transport, rec = _transport(answer)
    call = transport.call("get", "GET", "/x")
    writes = call.__dict__["_writes"]
    assert call.ended == ended
    assert writes[-1][:2] == ("ended", ended), writes
    assert [name for name, _, _ in writes].count("ended") == 1  # never a provisional value first
    names_before = {name for name, _, _ in writes[:-1]}
    assert "ended_at" in names_before and call.ended_at == 7.0
    if call.is_sse:
        assert writes[-1][2] == 2  # both frames were in place when ``ended`` was written
    elif ended == "complete":
        assert call.body == {"status": "completed"} and "body" in names_before
