"""The reference server with one behaviour changed, for the kit's own tests of its verdicts.

``python variant_server.py --variant NAME <reference_impl options>`` patches ``reference_impl``
in this process, then runs its command line as usual.  Variants:

- ``lenient``: correct but lenient, every difference a reading the documents allow or a SHOULD:
  an unknown body field is ignored (200), a body without (or with another) ``Content-Type`` is
  read as JSON, the framework's own 404/405 answers are ``text/plain``, and a negative cursor
  (``starting_after=-1``, ``Last-Event-ID: -1``) means "from the start".  It must pass every
  MUST and show its SHOULD findings.
- ``deep-500``: a create body nested too deep for ``json.loads`` answers 500 (a MUST: 5xx for
  bad input).
- ``surrogate-500``: a lone surrogate in ``model`` answers 500 ``text/plain`` (a MUST).
- ``stuck``: the startup recovery scan leaves an interrupted non-resilient response
  ``in_progress`` for ever instead of marking it ``failed`` (a MUST: the row's status).
- ``replay-gap``: every replay drops the event at ``sequence_number`` 5 (a MUST: gap-free
  replay); the README's screenshot of the HTML report is a cell run against it.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

VARIANTS = ("lenient", "deep-500", "surrogate-500", "stuck", "replay-gap")


def _lenient() -> None:
    from starlette.exceptions import HTTPException
    from starlette.responses import PlainTextResponse

    from reference_impl import app, cursors, invocations, responses
    from reference_impl.errors import parse_json_body

    async def any_content_type(request: Any) -> dict[str, Any]:
        body = parse_json_body(await request.body())
        if not isinstance(body, dict):
            raise responses._bad(None, "The request body must be a JSON object.", "invalid_json")
        return body

    original_validate = responses.validate_create

    def ignore_unknown(body: dict[str, Any]) -> dict[str, Any]:
        return original_validate({k: v for k, v in body.items() if k in responses.CREATE_FIELDS})

    async def plain_http_error(request: Any, exc: Exception) -> Any:
        assert isinstance(exc, HTTPException)
        return PlainTextResponse(str(exc.detail), status_code=exc.status_code)

    def negative_is_start(text: str) -> int | None:
        return -1 if re.fullmatch(r"-[0-9]{1,18}", text) else cursors.cursor_value(text)

    responses._json_body = any_content_type
    responses.validate_create = ignore_unknown
    app._http_error = plain_http_error
    responses.cursor_value = negative_is_start
    invocations.cursor_value = negative_is_start


def _deep_500() -> None:
    from reference_impl import responses

    original = responses.parse_json_body

    def parse(raw: bytes) -> Any:
        try:
            json.loads(raw)
        except RecursionError:
            raise RuntimeError("nesting too deep") from None  # unhandled: the server answers 500
        except ValueError:
            pass
        return original(raw)

    responses.parse_json_body = parse


def _surrogate_500() -> None:
    from starlette.responses import PlainTextResponse

    from reference_impl import app, responses

    original = responses._json_body

    async def body(request: Any) -> dict[str, Any]:
        raw = await request.body()
        try:
            model = json.loads(raw).get("model")
        except (ValueError, AttributeError, RecursionError):
            model = None
        if isinstance(model, str) and re.search("[\ud800-\udfff]", model):
            raise UnicodeEncodeError("utf-8", model, 0, 1, "surrogates not allowed")
        return await original(request)

    async def plain_500(request: Any, exc: Exception) -> Any:
        return PlainTextResponse("Internal Server Error", status_code=500)

    responses._json_body = body
    app._server_error = plain_500


def _stuck() -> None:
    from reference_impl import runtime

    original = runtime.Runtime._recover_one

    async def recover_one(self: Any, rid: str, task: dict[str, Any]) -> None:
        if task.get("disposition") != runtime.DISPOSITION_REINVOKE and not task.get("cancel_requested"):
            return  # the bug: an interrupted response that should be marked failed stays in_progress
        await original(self, rid, task)

    runtime.Runtime._recover_one = recover_one


def _replay_gap() -> None:
    from reference_impl import runtime

    original = runtime.Runtime.replay

    async def replay(self: Any, rid: str, after: int | None) -> Any:
        async for event in original(self, rid, after):
            if event.get("sequence_number") != 5:  # the bug: a replay loses the event at seq 5
                yield event

    runtime.Runtime.replay = replay


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "--variant" or argv[1] not in VARIANTS:
        print(f"usage: variant_server.py --variant {{{'|'.join(VARIANTS)}}} <reference_impl options>", file=sys.stderr)
        return 2
    {"lenient": _lenient, "deep-500": _deep_500, "surrogate-500": _surrogate_500, "stuck": _stuck,
     "replay-gap": _replay_gap}[argv[1]]()
    from reference_impl.cli import main as reference_main

    return reference_main(argv[2:])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
