"""Verifying a VAPI delivery on its raw bytes, before anything is decoded. Constant-time compares.

Modes (VAPI_WEBHOOK_AUTH, or an organization's own setting):
    hmac    VAPI's HMAC credential: signature header over a payload format (default
            `{timestamp}.{body}`), timestamp within +-300 s (seconds or milliseconds).
    secret  `X-Vapi-Secret: <secret>` (the legacy inline `server.secret`).
    bearer  `Authorization: Bearer <secret>`.
    legacy  `x-vapi-signature: hex(HMAC-SHA256(secret, body))`, what the original service checked.
    auto    whichever of those the request carries, checked strictly.
    none    nothing checked (only when set explicitly; start-up warns).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import time
from collections.abc import Mapping
from typing import Literal, get_args

import msgspec

__all__ = ["AuthFailed", "HmacScheme", "Mode", "WebhookAuth", "parse_mode", "sign_hmac", "verify"]

MAX_SKEW_S = 300
Mode = Literal["auto", "hmac", "secret", "bearer", "legacy", "none"]
_MODES: tuple[Mode, ...] = get_args(Mode)


class AuthFailed(Exception):
    """Which check failed, in words safe to return and log (never the secret or the body)."""


class HmacScheme(msgspec.Struct, frozen=True, kw_only=True):
    signature_header: str = "x-signature"
    timestamp_header: str = "x-timestamp"
    prefix: str = ""
    payload: str = "{timestamp}.{body}"
    algorithm: Literal["sha256", "sha512", "sha1"] = "sha256"
    encoding: Literal["hex", "base64"] = "hex"


class WebhookAuth(msgspec.Struct, frozen=True, kw_only=True):
    mode: Mode = "auto"
    secret: str | None = None
    hmac: HmacScheme = HmacScheme()


def parse_mode(stored: str | None) -> Mode:
    """A stored auth mode (an organization's setting) as a `Mode`; unset means "auto".

    Raises:
        ValueError: for a value that is no mode (the database's CHECK allows only modes).
    """
    if not stored:
        return "auto"
    for mode in _MODES:
        if mode == stored:
            return mode
    raise ValueError(f"unknown VAPI webhook auth mode {stored!r}")


def sign_hmac(scheme: HmacScheme, secret: str, body: bytes, timestamp: str) -> str:
    """The signature header value VAPI sends for `body` at `timestamp` (also used by tests)."""
    head, _, tail = scheme.payload.partition("{body}")
    message = head.replace("{timestamp}", timestamp).encode() + body + tail.replace("{timestamp}", timestamp).encode()
    digest = hmac.new(secret.encode(), message, getattr(hashlib, scheme.algorithm)).digest()
    encoded = digest.hex() if scheme.encoding == "hex" else base64.b64encode(digest).decode()
    return scheme.prefix + encoded


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def verify(auth: WebhookAuth, headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> str:
    """Checks one delivery. `headers` must be case-insensitive (or lower-cased). Returns the mode used.

    Raises:
        AuthFailed: saying which check failed.
    """
    if auth.mode == "none":
        return "none"
    if not auth.secret:
        raise AuthFailed("no VAPI webhook secret is configured, so no delivery can be verified")
    mode = auth.mode
    scheme = auth.hmac
    if mode == "auto":
        if headers.get(scheme.signature_header):
            mode = "hmac"
        elif headers.get("x-vapi-signature"):
            mode = "legacy"
        elif headers.get("x-vapi-secret"):
            mode = "secret"
        elif headers.get("authorization"):
            mode = "bearer"
        else:
            raise AuthFailed(f"no VAPI credentials in the request (expected {scheme.signature_header}, "
                             "x-vapi-signature, x-vapi-secret or authorization)")
    if mode == "hmac":
        _check_hmac(scheme, auth.secret, headers, body, time.time() if now is None else now)
    elif mode == "legacy":
        given = headers.get("x-vapi-signature", "").strip().removeprefix("sha256=")
        if not given:
            raise AuthFailed("missing x-vapi-signature header")
        if not _same(given.lower(), hmac.new(auth.secret.encode(), body, hashlib.sha256).hexdigest()):
            raise AuthFailed("x-vapi-signature does not match the body")
    elif mode == "secret":
        inline = headers.get("x-vapi-secret")
        if inline is None:
            raise AuthFailed("missing x-vapi-secret header")
        if not _same(inline.strip(), auth.secret):
            raise AuthFailed("x-vapi-secret is wrong")
    elif mode == "bearer":
        given = headers.get("authorization", "")
        if not given.lower().startswith("bearer "):
            raise AuthFailed("missing Authorization: Bearer header")
        if not _same(given[7:].strip(), auth.secret):
            raise AuthFailed("the bearer token is wrong")
    return mode


def _check_hmac(scheme: HmacScheme, secret: str, headers: Mapping[str, str], body: bytes, now: float) -> None:
    given = headers.get(scheme.signature_header)
    if not given:
        raise AuthFailed(f"missing {scheme.signature_header} header")
    timestamp = headers.get(scheme.timestamp_header, "").strip()
    if "{timestamp}" in scheme.payload:
        if not timestamp:
            raise AuthFailed(f"missing {scheme.timestamp_header} header")
        try:
            seconds = float(timestamp)
        except ValueError:
            raise AuthFailed(f"{scheme.timestamp_header} is not a number") from None
        if not math.isfinite(seconds):  # nan compares false with everything: it would pass the window
            raise AuthFailed(f"{scheme.timestamp_header} is not a finite number")
        if seconds > 1e11:  # milliseconds
            seconds /= 1000
        if abs(now - seconds) > MAX_SKEW_S:
            raise AuthFailed(f"{scheme.timestamp_header} is more than {MAX_SKEW_S} s away from now (a replay?)")
    if not _same(given.strip(), sign_hmac(scheme, secret, body, timestamp)):
        raise AuthFailed(f"{scheme.signature_header} does not match the body")
