"""Error answers of the HTTP API: `ApiError`, and the route class that turns any error into JSON.

The route class (not app-level exception handlers) does the translation, so the router keeps its
documented error bodies when mounted in someone else's application.
"""

from __future__ import annotations

import http
import logging
import secrets
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from sigcache.api_models import (
    ConflictBody,
    ErrorBody,
    PhaseErrorBody,
    ServerErrorBody,
    ValidationErrorBody,
    ValidationErrorItem,
)

__all__ = [
    "ERROR_RESPONSES",
    "PHASE_ERROR_RESPONSES",
    "ApiError",
    "GuardedRoute",
    "new_error_id",
    "unauthorized",
]

log = logging.getLogger("sigcache.api")


class ApiError(Exception):
    """An error answer with a documented body (raised by routes and the auth dependency)."""

    def __init__(
        self, status: int, body: ErrorBody, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(body.error)
        self.status, self.body, self.headers = status, body, dict(headers or {})

    def response(self) -> JSONResponse:
        """The JSON response of this error."""
        content = self.body.model_dump(mode="json", exclude_none=True)
        return JSONResponse(content, status_code=self.status, headers=self.headers)


def unauthorized(error: str) -> ApiError:
    """A 401 asking for a bearer token."""
    return ApiError(401, ErrorBody(error=error), {"WWW-Authenticate": "Bearer"})


def new_error_id() -> str:
    """A random id tying a client's error body to the server's log line."""
    return secrets.token_hex(8)


def _validation_response(exc: RequestValidationError) -> JSONResponse:
    # Location, message and type only: the offending input is never echoed back.
    errors = [
        ValidationErrorItem(
            loc=[p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
            msg=str(e.get("msg", "")),
            type=str(e.get("type", "")),
        )
        for e in exc.errors()
    ]
    body = ValidationErrorBody(error="malformed request", errors=errors)
    return JSONResponse(body.model_dump(mode="json"), status_code=422)


def _http_error_response(exc: HTTPException) -> JSONResponse:
    if exc.status_code == 400:
        # FastAPI's "error parsing the body" (e.g. not UTF-8) is a malformed request too.
        item = ValidationErrorItem(loc=["body"], msg="body could not be parsed", type="body_parse")
        body = ValidationErrorBody(error="malformed request", errors=[item])
        return JSONResponse(body.model_dump(mode="json"), status_code=422)
    phrase = http.HTTPStatus(exc.status_code).phrase
    return ApiError(exc.status_code, ErrorBody(error=phrase), exc.headers).response()


def _server_error(request: Request) -> JSONResponse:
    error_id = new_error_id()
    log.exception(
        "[SIGCACHE_API] internal error %s on %s %s", error_id, request.method, request.url.path
    )
    body = ServerErrorBody(error="internal error", error_id=error_id)
    return JSONResponse(body.model_dump(mode="json"), status_code=500)


class GuardedRoute(APIRoute):
    """A route whose errors, whatever raised them, leave as the documented JSON bodies."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """FastAPI's handler, wrapped."""
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as exc:
                return exc.response()
            except RequestValidationError as exc:
                return _validation_response(exc)
            except HTTPException as exc:  # raised inside FastAPI, e.g. for an undecodable body
                return _http_error_response(exc)
            except Exception:
                return _server_error(request)

        return guarded


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing, malformed or unknown bearer token."},
    422: {"model": ValidationErrorBody, "description": "Malformed parameters or body."},
    500: {"model": ServerErrorBody, "description": "Internal error; see the server log."},
}
PHASE_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": PhaseErrorBody, "description": "Unknown phase; the body lists the valid ones."},
    409: {
        "model": ConflictBody,
        "description": "Illegal move, gate refusal (names the failed rules) or migration mode off.",
    },
    **ERROR_RESPONSES,
}
