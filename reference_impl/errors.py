"""The JSON error envelope ``{"error": {"type", "code", "message", "param"}}``."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import JSONResponse


class ApiError(Exception):
    """An HTTP error answer; raised by endpoint code and rendered by the app."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None,
        param: str | None = None,
        type_: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.type = type_

    def response(self) -> JSONResponse:
        return error_response(self.status, self.message, code=self.code, param=self.param, type_=self.type)


def error_response(
    status: int,
    message: str,
    *,
    code: str | None,
    param: str | None = None,
    type_: str = "invalid_request_error",
) -> JSONResponse:
    body = {"error": {"type": type_, "code": code, "message": message, "param": param}}
    return JSONResponse(body, status_code=status)


def not_found(response_id: str, param: str = "response_id") -> ApiError:
    return ApiError(
        404,
        f"Response with id '{response_id}' not found.",
        code="invalid_request_error",
        param=param,
    )


def bad_request(param: str | None, message: str, code: str = "invalid_value") -> ApiError:
    """A 400 naming the offending parameter (None: the body as a whole)."""
    return ApiError(400, message, code=code, param=param)


def parse_json_body(raw: bytes) -> Any:
    """The request body as JSON, or a 400 ``invalid_json``: never a 5xx for any bytes."""
    try:
        body = json.loads(raw)
        # A lone UTF-16 surrogate ("\\ud800") parses but can never be encoded back: refuse it
        # here rather than fail later while writing the answer (500).
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except (ValueError, UnicodeDecodeError, UnicodeEncodeError, RecursionError):
        raise bad_request(None, "The request body is not valid JSON (or nests too deep, or holds a lone surrogate).",
                          "invalid_json") from None
    return body
