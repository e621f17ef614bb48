"""Every error Sparring raises on purpose, mapped in one place: HTTP requests get one error body
({"error": {"code", "message", "field"?}}, 4xx for bad input, 503 for "try again later"),
WebSockets one close code each.

`status_for(exc)` and `close_for(exc)` are the mapping; the Litestar `exception_handlers` and the
socket handlers (`close_socket`) both go through them, so a refusal reads the same on either.

Close codes 4000-4999 are the application's own (the HTTP status plus 4000 where one fits); the
1000s are the WebSocket standard's. docs/protocol.md lists what each means to a client.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Literal

import msgspec
import sentry_sdk
from litestar import Request, Response, WebSocket
from litestar.exceptions import HTTPException, SerializationException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ExceptionHandlersMap

from coaching.errors import Overloaded, ProviderUnavailable, SparringError
from gateway.auth.tokens import InvalidToken

__all__ = [
    "BAD_MESSAGE", "CLOSE_CODES", "ENDED", "INTERNAL", "INVALID_DATA", "NORMAL", "NOT_FOUND", "POLICY",
    "RATE_LIMITED", "REFUSED", "RESTARTING", "TAKEN_OVER", "TOO_BIG", "TOO_LONG", "TRY_AGAIN", "UNAUTHENTICATED",
    "UNSUPPORTED", "ApiError", "AuthRefused", "CallRefused", "ErrorBody", "ErrorDetail", "JobState",
    "RateLimitUnavailable",
    "RateLimited", "close_for", "close_socket", "error_detail", "exception_handlers", "status_for",
]

# --- WebSocket close codes: every one the code base uses is named here -------------------------
NORMAL = 1000  # the call (or the socket's job) ended
UNSUPPORTED = 1003  # audio before `start`
INVALID_DATA = 1007  # an audio frame with an odd byte count, or too long
POLICY = 1008  # a message that is not what this socket accepts
TOO_BIG = 1009  # a frame larger than the socket accepts (the microphone test)
INTERNAL = 1011  # the server failed; nothing the client sent caused it
RESTARTING = 1012  # the gateway is restarting: reconnect to resume
TRY_AGAIN = 1013  # overloaded, too far behind, or a dependency is down: reconnect later
BAD_MESSAGE = 4400  # a message the socket does not accept (the microphone test)
UNAUTHENTICATED = 4401  # no token, or a bad or expired one
REFUSED = 4403  # signed in, but not allowed
NOT_FOUND = 4404  # no such session (or not one the caller may see)
TOO_LONG = 4408  # the socket's time is up (the microphone test)
TAKEN_OVER = 4409  # the call continues on another connection (window or instance)
ENDED = 4410  # the call has ended
RATE_LIMITED = 4429  # over a rate limit or the live-call limit

CLOSE_CODES: dict[int, str] = {
    NORMAL: "normal", UNSUPPORTED: "unsupported", INVALID_DATA: "invalid_data", POLICY: "policy",
    TOO_BIG: "too_big", INTERNAL: "internal", RESTARTING: "restarting", TRY_AGAIN: "try_again",
    BAD_MESSAGE: "bad_message", UNAUTHENTICATED: "unauthenticated", REFUSED: "refused", NOT_FOUND: "not_found",
    TOO_LONG: "too_long", TAKEN_OVER: "taken_over", ENDED: "ended", RATE_LIMITED: "rate_limited",
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
_INTERNAL_MESSAGE = "internal error; it has been logged"
_MAX_REASON_BYTES = 123  # what a WebSocket close frame can carry


# --- The errors ----------------------------------------------------------------------------------
class JobState(msgspec.Struct):
    """The background job an answer waits on (e.g. a scorecard not ready yet)."""

    id: str
    status: str
    error: str | None = None


class ErrorDetail(msgspec.Struct, omit_defaults=True):
    code: str
    message: str
    field: str | None = None
    job: JobState | None = None


class ErrorBody(msgspec.Struct):
    error: ErrorDetail


class ApiError(SparringError, HTTPException):
    """Raised by handlers for a refusal the client can act on.

    Args:
        status_code: the HTTP status (4xx or 503).
        code: a stable machine-readable code, e.g. `email_taken`.
        message: what went wrong and what to do, in words a user understands.
        field: the request field at fault, if one is.
    """

    def __init__(self, status_code: int, code: str, message: str, *, field: str | None = None,
                 headers: dict[str, str] | None = None, job: JobState | None = None) -> None:
        super().__init__(status_code=status_code, detail=message, headers=headers)
        self.code, self.message, self.field, self.job = code, message, field, job


class AuthRefused(SparringError):
    """Why a caller was refused: 401 (who are you?) or 403 (not allowed), with a code and message."""

    def __init__(self, status: Literal[401, 403], code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class CallRefused(SparringError):
    """A socket cannot join (or stay in) a call: a close code from the table above and a reason
    for the client."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


class RateLimited(SparringError):
    """Over a rate limit: 429 with Retry-After (WebSockets: 4429). The message says when to retry."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.message, self.retry_after = message, retry_after


class RateLimitUnavailable(RateLimited):
    """The rate-limit store is down and limits fail closed: 503 with Retry-After (WebSockets: 1013)."""

    code = "rate_limit_unavailable"


# --- The mapping ---------------------------------------------------------------------------------
def _status_for_close(code: int) -> int:
    if 4000 <= code < 5000:
        return code - 4000
    if code == INTERNAL:
        return 500
    if code in (RESTARTING, TRY_AGAIN):
        return 503
    return 400


def _close_for_status(status: int) -> int:
    if 4000 + status in CLOSE_CODES:
        return 4000 + status
    if status == 503:
        return TRY_AGAIN
    return INTERNAL if status >= 500 else POLICY


def _reason(text: str) -> str:
    return text.encode()[:_MAX_REASON_BYTES].decode(errors="ignore")


def status_for(exc: Exception) -> int:
    """The HTTP status for `exc`: an unexpected error (any other SparringError too) is a 500."""
    match exc:
        case HTTPException():  # ApiError included
            return exc.status_code
        case AuthRefused():
            return exc.status
        case InvalidToken():
            return 401
        case RateLimitUnavailable():
            return 503
        case RateLimited():
            return 429
        case Overloaded() | ProviderUnavailable():
            return 503
        case CallRefused():
            return _status_for_close(exc.code)
        case _:
            return HTTP_500_INTERNAL_SERVER_ERROR


def close_for(exc: Exception) -> tuple[int, str]:
    """The WebSocket close code and reason for `exc`: an unexpected error is INTERNAL (1011)."""
    match exc:
        case CallRefused():
            code, reason = exc.code, exc.reason
        case AuthRefused():
            code, reason = (UNAUTHENTICATED if exc.status == 401 else REFUSED), exc.message
        case InvalidToken():
            code, reason = UNAUTHENTICATED, "the access token is invalid or expired; sign in again"
        case RateLimitUnavailable():
            code, reason = TRY_AGAIN, exc.message
        case RateLimited():
            code, reason = RATE_LIMITED, exc.message
        case ApiError():
            code, reason = _close_for_status(exc.status_code), exc.message
        case HTTPException():
            code, reason = _close_for_status(exc.status_code), str(exc.detail)
        case Overloaded() | ProviderUnavailable():
            code, reason = TRY_AGAIN, str(exc)
        case _:
            code, reason = INTERNAL, _INTERNAL_MESSAGE
    return code, _reason(reason)


def error_detail(exc: Exception) -> ErrorDetail:
    """The HTTP error body's `error` for `exc` (an unexpected error says only that it was logged)."""
    match exc:
        case ApiError():
            return ErrorDetail(exc.code, exc.message, exc.field, exc.job)
        case AuthRefused():
            return ErrorDetail(exc.code, exc.message)
        case InvalidToken():
            return ErrorDetail("invalid_token", "the access token is invalid or expired; sign in again")
        case RateLimited():
            return ErrorDetail(exc.code, exc.message)
        case Overloaded():
            return ErrorDetail("overloaded", str(exc))
        case ProviderUnavailable():
            return ErrorDetail("provider_unavailable", str(exc))
        case CallRefused():
            return ErrorDetail(CLOSE_CODES.get(exc.code, "refused"), exc.reason)
        case HTTPException() if isinstance(exc.__cause__, SerializationException):
            # Litestar wraps a body that does not decode at all (truncated, not JSON) this way.
            return ErrorDetail("malformed_json", "the request body is not valid JSON")
        case HTTPException():
            status = exc.status_code
            return ErrorDetail(_CODES.get(status, "error" if status < 500 else "internal"), str(exc.detail))
        case _:
            return ErrorDetail("internal", _INTERNAL_MESSAGE)


def _expected(exc: Exception) -> bool:
    """Whether `exc` is one the mapping knows (anything else is a bug: logged and reported)."""
    return isinstance(exc, (HTTPException, AuthRefused, InvalidToken, RateLimited, Overloaded, ProviderUnavailable,
                            CallRefused))


def _report(exc: Exception) -> None:
    log.error("unhandled error", exc_info=exc)
    sentry_sdk.capture_exception(exc)


async def close_socket(socket: WebSocket[Any, Any, Any], exc: Exception) -> None:
    """Closes an accepted socket with `exc`'s close code and reason (an unexpected error is reported)."""
    if not _expected(exc):
        _report(exc)
    code, reason = close_for(exc)
    await socket.close(code, reason)


# --- Litestar's exception handlers ---------------------------------------------------------------
def _response(status: int, detail: ErrorDetail, headers: dict[str, str] | None = None) -> Response[ErrorBody]:
    return Response(ErrorBody(detail), status_code=status, headers=headers)


def _validation(_: Request[Any, Any, Any], exc: ValidationException) -> Response[ErrorBody]:
    extra = exc.extra if isinstance(exc.extra, list) else []
    first = extra[0] if extra and isinstance(extra[0], dict) else {}
    message = str(first.get("message") or exc.detail)
    field = first.get("key") or None
    missing = _MISSING.search(message)
    if missing:  # msgspec reports a missing field at its parent's path
        field = missing.group(1) if field in (None, "data") else f"{field}.{missing.group(1)}"
    return _response(400, ErrorDetail("invalid_field" if field else "bad_request", message, field))


def _mapped(_: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    """Every HTTPException and SparringError (ApiError is both), and anything unexpected."""
    if not _expected(exc):
        _report(exc)
    headers: dict[str, str] | None
    if isinstance(exc, RateLimited):
        headers = {"Retry-After": str(exc.retry_after)}
    elif isinstance(exc, HTTPException):
        headers = exc.headers
    else:
        headers = None
    if isinstance(exc, (Overloaded, ProviderUnavailable)):
        log.warning("refused with 503", extra={"error": type(exc).__name__, "reason": str(exc)})
    return _response(status_for(exc), error_detail(exc), headers)


exception_handlers: ExceptionHandlersMap = {
    ValidationException: _validation, HTTPException: _mapped, SparringError: _mapped, Exception: _mapped,
}
