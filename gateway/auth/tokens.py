"""Access tokens (short-lived JWTs we sign), Supabase access tokens, and opaque refresh tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import uuid
from typing import Literal

import jwt
import msgspec

from coaching.errors import SparringError

__all__ = [
    "ACCESS_TTL_S", "REFRESH_TTL_S", "AccessClaims", "InvalidToken", "SupabaseClaims", "csrf_token",
    "decode_access_token", "decode_supabase_token", "hash_secret", "issue_access_token", "new_secret",
    "successor_token",
]

ACCESS_TTL_S = 15 * 60
REFRESH_TTL_S = 30 * 24 * 3600
_ISSUER = "sparring"
_AUDIENCE = "sparring"
_LEEWAY_S = 10


class InvalidToken(SparringError):
    """The token is malformed, badly signed, expired or not meant for us."""


class AccessClaims(msgspec.Struct, frozen=True):
    user_id: uuid.UUID
    org_id: uuid.UUID
    role: Literal["trainee", "coach", "admin"]
    family_id: uuid.UUID | None = None  # the login (refresh-token family) that issued it: `fam`
    token_id: str | None = None  # `jti`; set when decoded (issuing makes a new one)
    expires_at: int = 0  # `exp`, epoch seconds; set when decoded

    @property
    def revocation_ids(self) -> list[str]:
        """What the denylist may hold for this token: its own id and its login's."""
        ids = [f"jti:{self.token_id}"] if self.token_id else []
        return ids + ([f"family:{self.family_id}"] if self.family_id else [])


class SupabaseClaims(msgspec.Struct, frozen=True):
    external_id: str
    email: str | None


def issue_access_token(claims: AccessClaims, secret: str, *, now: float | None = None) -> str:
    issued = int(now if now is not None else time.time())
    payload = {
        "iss": _ISSUER, "aud": _AUDIENCE, "typ": "access", "jti": uuid.uuid4().hex,
        "sub": str(claims.user_id), "org": str(claims.org_id), "role": claims.role,
        "iat": issued, "exp": issued + ACCESS_TTL_S,
    }
    if claims.family_id is not None:
        payload["fam"] = str(claims.family_id)
    return jwt.encode(payload, secret, algorithm="HS256")


def decode_access_token(token: str, secret: str) -> AccessClaims:
    """Raises:
        InvalidToken: for any reason the token cannot be trusted.
    """
    try:
        payload = jwt.decode(
            token, secret, algorithms=["HS256"], audience=_AUDIENCE, issuer=_ISSUER, leeway=_LEEWAY_S,
            options={"require": ["exp", "iat", "sub", "aud", "iss"]},
        )
        if payload.get("typ") != "access":
            raise InvalidToken("not an access token")
        family = payload.get("fam")
        return AccessClaims(uuid.UUID(payload["sub"]), uuid.UUID(payload["org"]), payload["role"],
                            family_id=uuid.UUID(family) if family else None,
                            token_id=str(payload["jti"]) if payload.get("jti") else None,
                            expires_at=int(payload["exp"]))
    except (jwt.PyJWTError, KeyError, ValueError, TypeError) as exc:
        raise InvalidToken(type(exc).__name__) from None


def decode_supabase_token(token: str, secret: str) -> SupabaseClaims:
    """Supabase access tokens: HS256 with the project's JWT secret, audience `authenticated`.

    Raises:
        InvalidToken: for any reason the token cannot be trusted.
    """
    try:
        payload = jwt.decode(
            token, secret, algorithms=["HS256"], audience="authenticated", leeway=_LEEWAY_S,
            options={"require": ["exp", "sub", "aud"]},
        )
        return SupabaseClaims(str(payload["sub"]), payload.get("email"))
    except (jwt.PyJWTError, KeyError) as exc:
        raise InvalidToken(type(exc).__name__) from None


def csrf_token(secret: str, family_id: uuid.UUID) -> str:
    """The CSRF token of one login: an HMAC of its refresh-token family, keyed by the JWT secret.
    A cookie planted by a sibling subdomain cannot match it."""
    digest = hmac.new(secret.encode(), b"sparring-csrf|" + family_id.bytes, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def successor_token(secret: str, presented: str) -> str:
    """The refresh token that replaces `presented` when it is spent: an HMAC of it keyed by the
    JWT secret. Two requests spending the same token at once (two tabs) get the same successor,
    so the login keeps one chain and a later replay of either copy is still caught; nobody
    without the secret can compute it."""
    digest = hmac.new(secret.encode(), b"sparring-refresh|" + presented.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def new_secret() -> str:
    """A random token for refresh tokens, invite codes and CSRF tokens."""
    return secrets.token_urlsafe(32)


def hash_secret(value: str) -> str:
    """What the database keeps of a refresh token or invite code: never the value itself."""
    return hashlib.sha256(value.encode()).hexdigest()
