"""Every error Sparring raises on purpose, mapped in one place: HTTP requests get one error body
({"error": {"code", "message", "field"?}}, 4xx for bad input), WebSockets one close code each.

Close codes 4000-4999 are the application's own (the HTTP status plus 4000 where one fits); the
1000s are the WebSocket standard's. docs/protocol.md lists what each means to a client.
"""

from __future__ import annotations

import logging
import re

import msgspec
import sentry_sdk
from litestar import Request, Response
from litestar.exceptions import HTTPException, SerializationException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from coaching.errors import SparringError

__all__ = [
    "BAD_MESSAGE", "CLOSE_CODES", "ENDED", "INTERNAL", "INVALID_DATA", "NORMAL", "NOT_FOUND", "POLICY",
    "RATE_LIMITED", "REFUSED", "RESTARTING", "TAKEN_OVER", "TOO_LONG", "TRY_AGAIN", "UNAUTHENTICATED",
    "UNSUPPORTED", "ApiError", "CallRefused", "ErrorBody", "ErrorDetail", "exception_handlers",
]

# --- WebSocket close codes: every one the code base uses is named here -------------------------
NORMAL = 1000  # the call (or the socket's job) ended
UNSUPPORTED = 1003  # audio before `start`
INVALID_DATA = 1007  # an audio frame with an odd byte count, or too long
POLICY = 1008  # a message that is not what this socket accepts
INTERNAL = 1011  # the server failed; nothing the client sent caused it
RESTARTING = 1012  # the gateway is restarting: reconnect to resume
TRY_AGAIN = 1013  # overloaded, too far behind, or a dependency is down: reconnect later
BAD_MESSAGE = 4400
UNAUTHENTICATED = 4401
REFUSED = 4403
NOT_FOUND = 4404
TOO_LONG = 4408
TAKEN_OVER = 4409  # the call continues on another connection (window or instance)
ENDED = 4410  # the call has ended
RATE_LIMITED = 4429

CLOSE_CODES: dict[int, str] = {
    NORMAL: "normal", UNSUPPORTED: "unsupported", INVALID_DATA: "invalid_data", POLICY: "policy",
    INTERNAL: "internal", RESTARTING: "restarting", TRY_AGAIN: "try_again", BAD_MESSAGE: "bad_message",
    UNAUTHENTICATED: "unauthenticated", REFUSED: "refused", NOT_FOUND: "not_found", TOO_LONG: "too_long",
    TAKEN_OVER: "taken_over", ENDED: "ended", RATE_LIMITED: "rate_limited",
}

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


class CallRefused(SparringError):
    """A socket cannot join (or stay in) a call: a close code from the table above and a reason
    for the client."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


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
