"""The starlette application: routes, JSON errors, lifespan (recovery scan before readiness)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import invocations, responses
from .errors import ApiError, error_response
from .runtime import Runtime
from .sessions import InvocationRuntime

log = logging.getLogger("reference_impl")


async def readiness(request: Request) -> Response:
    rt: Runtime = request.app.state.runtime
    if rt.ready and not rt.shutting_down:
        return JSONResponse({"status": "ready"})
    return JSONResponse({"status": "shutting_down" if rt.shutting_down else "starting"}, status_code=503)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(404, f"No route for {request.method} {request.url.path}.", code="not_found")
    if exc.status_code == 405:
        return error_response(405, f"Method {request.method} is not allowed here.", code="method_not_allowed")
    return error_response(exc.status_code, str(exc.detail), code=None)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s: %r", request.method, request.url.path, exc)
    return error_response(500, "Internal server error.", code="server_error", type_="server_error")


def build_app(runtime: Runtime) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        import asyncio

        runtime.loop = asyncio.get_running_loop()
        await runtime.recover()  # before readiness: the server does not listen before this ends
        if runtime.leases is None:
            await inv_runtime.recover()
        else:  # leases cover the responses profile only: never take another worker's invocations
            log.warning("leases on: invocations are not recovered (several workers: responses profile only)")
        runtime.ready = True
        if runtime._exit_requested:
            runtime.request_shutdown()
        yield
        await runtime.finish()

    inv_runtime = InvocationRuntime(runtime)
    runtime.participants.append(inv_runtime)
    routes = [
        Route("/readiness", readiness, methods=["GET"]),
        Route("/responses", responses.create_response, methods=["POST"]),
        Route("/responses/{response_id}", responses.get_response, methods=["GET"]),
        Route("/responses/{response_id}", responses.delete_response, methods=["DELETE"]),
        Route("/responses/{response_id}/cancel", responses.cancel_response, methods=["POST"]),
        Route("/invocations", invocations.create_invocation, methods=["POST"]),
        Route("/invocations/{invocation_id}", invocations.get_invocation, methods=["GET"]),
        Route("/invocations/{invocation_id}/cancel", invocations.cancel_invocation, methods=["POST"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={ApiError: _api_error, HTTPException: _http_error, Exception: _server_error},
    )
    # No slash redirects: '/responses/' (an empty id) is a JSON 404/405 like any unknown path,
    # never a bare 307 with an empty body.
    app.router.redirect_slashes = False
    app.state.runtime = runtime
    app.state.invocations = inv_runtime
    return app
