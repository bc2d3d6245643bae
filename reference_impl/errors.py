"""The JSON error envelope ``{"error": {"type", "code", "message", "param"}}``."""

from __future__ import annotations

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
