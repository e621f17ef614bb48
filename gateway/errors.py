"""One error body everywhere: {"error": {"code", "message", "field"?}}, 4xx for bad input."""

from __future__ import annotations

import logging
import re

import msgspec
import sentry_sdk
from litestar import Request, Response
from litestar.exceptions import HTTPException, SerializationException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

__all__ = ["ApiError", "ErrorBody", "ErrorDetail", "exception_handlers"]

log = logging.getLogger(__name__)

_MISSING = re.compile(r"missing required field `([^`]+)`")
_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    503: "unavailable",
}


class ErrorDetail(msgspec.Struct, omit_defaults=True):
    code: str
    message: str
    field: str | None = None


class ErrorBody(msgspec.Struct):
    error: ErrorDetail


class ApiError(HTTPException):
    """Raised by handlers for a refusal the client can act on.

    Args:
        status_code: the HTTP status (4xx or 503).
        code: a stable machine-readable code, e.g. `email_taken`.
        message: what went wrong and what to do, in words a user understands.
        field: the request field at fault, if one is.
    """

    def __init__(self, status_code: int, code: str, message: str, *, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code=status_code, detail=message, headers=headers)
        self.code, self.message, self.field = code, message, field


def _response(status: int, detail: ErrorDetail, headers: dict[str, str] | None = None) -> Response[ErrorBody]:
    return Response(ErrorBody(detail), status_code=status, headers=headers)


def _validation(_: Request, exc: ValidationException) -> Response[ErrorBody]:
    extra = exc.extra if isinstance(exc.extra, list) else []
    first = extra[0] if extra and isinstance(extra[0], dict) else {}
    message = str(first.get("message") or exc.detail)
    field = first.get("key") or None
    missing = _MISSING.search(message)
    if missing:  # msgspec reports a missing field at its parent's path
        field = missing.group(1) if field in (None, "data") else f"{field}.{missing.group(1)}"
    return _response(400, ErrorDetail("invalid_field" if field else "bad_request", message, field))


def _http(_: Request, exc: HTTPException) -> Response[ErrorBody]:
    if isinstance(exc, ApiError):
        detail = ErrorDetail(exc.code, exc.message, exc.field)
    elif isinstance(exc.__cause__, SerializationException):
        # Litestar wraps a body that does not decode at all (truncated, not JSON) this way.
        detail = ErrorDetail("malformed_json", "the request body is not valid JSON")
    else:
        status = exc.status_code
        detail = ErrorDetail(_CODES.get(status, "error" if status < 500 else "internal"), str(exc.detail))
    return _response(exc.status_code, detail, exc.headers)


def _internal(_: Request, exc: Exception) -> Response[ErrorBody]:
    log.error("unhandled error", exc_info=exc)
    sentry_sdk.capture_exception(exc)
    return _response(HTTP_500_INTERNAL_SERVER_ERROR, ErrorDetail("internal", "internal error; it has been logged"))


exception_handlers = {ValidationException: _validation, HTTPException: _http, Exception: _internal}
