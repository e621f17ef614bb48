"""Resolving the caller of an HTTP request or WebSocket, and the tenant transaction they work in.

Tokens come from `Authorization: Bearer`, the access cookie (the web app), or — WebSockets only,
since browsers cannot set headers there — the `token` query parameter. Cookie-authenticated
requests that change state must send in `X-CSRF-Token` the CSRF token bound to their login (an
HMAC of the refresh-token family, `tokens.csrf_token`; the web app echoes the `sparring_csrf`
cookie, which login and refresh set to it), on top of SameSite; cookie-authenticated WebSockets
must come from an allowed Origin. A token revoked by logout (its `jti`, or its whole login) is
refused everywhere (`revoked_tokens`, shared by every instance).
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import AsyncGenerator
from typing import Any, Literal
from urllib.parse import urlsplit

import asyncpg
import msgspec
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.enums import ScopeType

from gateway.auth.tokens import AccessClaims, InvalidToken, csrf_token, decode_access_token, decode_supabase_token
from gateway.errors import ApiError, AuthRefused  # AuthRefused is re-exported: it lived here
from storage import accounts
from storage.tenancy import Tenant, set_tenant

__all__ = [
    "ACCESS_COOKIE", "CSRF_COOKIE", "CSRF_HEADER", "REFRESH_COOKIE", "AuthRefused", "Caller", "CallerDep", "TenantDb",
    "authenticate", "origin_allowed", "provide_caller", "provide_db", "require_role", "socket_caller",
]

ACCESS_COOKIE = "sparring_access"
REFRESH_COOKIE = "sparring_refresh"
CSRF_COOKIE = "sparring_csrf"
CSRF_HEADER = "x-csrf-token"
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
_SCOPE_KEY = "sparring.caller"  # where `authenticate` leaves the caller of a connection


class Caller(msgspec.Struct, frozen=True):
    user_id: uuid.UUID
    org_id: uuid.UUID
    role: Literal["trainee", "coach", "admin"]
    email: str
    name: str
    org_name: str
    token_id: str | None = None  # the access token's `jti` (None: a Supabase token)
    family_id: uuid.UUID | None = None  # the login it belongs to

    @property
    def revocation_ids(self) -> list[str]:
        return AccessClaims(self.user_id, self.org_id, self.role, family_id=self.family_id,
                            token_id=self.token_id).revocation_ids

    @property
    def tenant(self) -> Tenant:
        return Tenant(org_id=self.org_id, user_id=self.user_id, role=self.role)

    @property
    def is_staff(self) -> bool:
        return self.role in ("coach", "admin")


def origin_allowed(connection: ASGIConnection[Any, Any, Any, Any], site_url: str | None) -> bool:
    """The Origin is this server itself (as the browser reached it) or SITE_URL's origin."""
    origin = connection.headers.get("origin")
    if not origin:
        return False
    parts = urlsplit(origin)
    if site_url and f"{parts.scheme}://{parts.netloc}" == "{0.scheme}://{0.netloc}".format(urlsplit(site_url)):
        return True
    return parts.netloc != "" and parts.netloc == connection.headers.get("host")


TokenSource = Literal["header", "cookie", "query"]


def _find_token(connection: ASGIConnection[Any, Any, Any, Any]) -> tuple[str, TokenSource] | None:
    header = connection.headers.get("authorization", "")
    if header[:7].lower() == "bearer " and header[7:].strip():
        return header[7:].strip(), "header"
    if connection.scope["type"] == ScopeType.WEBSOCKET and connection.query_params.get("token"):
        return connection.query_params["token"], "query"
    if connection.cookies.get(ACCESS_COOKIE):
        return connection.cookies[ACCESS_COOKIE], "cookie"
    return None


async def _identify(conn: asyncpg.Connection, token: str, state: State) -> AccessClaims:
    try:
        claims = decode_access_token(token, state.jwt_secret)
    except InvalidToken:
        if not state.settings.supabase_jwt_secret:
            raise
    else:
        if await accounts.token_revoked(conn, claims.revocation_ids):
            raise AuthRefused(401, "token_revoked", "this login has ended; sign in again")
        return claims
    supabase = decode_supabase_token(token, state.settings.supabase_jwt_secret)
    user_id = await accounts.user_by_external_id(conn, supabase.external_id)
    membership = await accounts.primary_membership(conn, user_id) if user_id else None
    if user_id is None or membership is None:
        raise AuthRefused(401, "unknown_account", "this login has no Sparring account; ask your admin for an invite")
    return AccessClaims(user_id, membership[0], membership[1])


def _check_csrf(connection: ASGIConnection[Any, Any, Any, Any], claims: AccessClaims, secret: str) -> None:
    """A cookie-authenticated change must carry its login's CSRF token, whatever the csrf cookie says."""
    sent = connection.headers.get(CSRF_HEADER, "")
    if claims.family_id is None:  # issued before tokens carried their login: refresh for one that does
        raise AuthRefused(401, "invalid_token", "the access token is outdated; sign in again")
    expected = csrf_token(secret, claims.family_id)
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        raise AuthRefused(403, "csrf_failed", f"cookie-authenticated changes need the {CSRF_HEADER} header")


def socket_caller(connection: ASGIConnection[Any, Any, Any, Any]) -> Caller | None:
    """The caller `authenticate` found for this connection (None: not authenticated)."""
    caller = connection.scope.get(_SCOPE_KEY)
    return caller if isinstance(caller, Caller) else None


async def authenticate(connection: ASGIConnection[Any, Any, Any, Any], conn: asyncpg.Connection) -> Caller:
    """Identifies the caller and sets their tenant context on `conn` (inside its transaction).

    Raises:
        AuthRefused: no usable token, a CSRF or Origin failure, or an account that no longer exists.
    """
    state: State = connection.app.state
    found = _find_token(connection)
    if found is None:
        raise AuthRefused(401, "unauthenticated", "sign in first: no access token was sent")
    token, source = found
    if source == "cookie" and connection.scope["type"] == ScopeType.WEBSOCKET:
        if not origin_allowed(connection, state.settings.site_url):
            raise AuthRefused(403, "origin_refused", "this page's origin may not open Sparring sockets")
    try:
        claims = await _identify(conn, token, state)
    except InvalidToken:
        raise AuthRefused(401, "invalid_token", "the access token is invalid or expired; sign in again") from None
    if (source == "cookie" and connection.scope["type"] != ScopeType.WEBSOCKET
            and connection.scope.get("method") not in _SAFE_METHODS):
        _check_csrf(connection, claims, state.jwt_secret)
    await set_tenant(conn, Tenant(org_id=claims.org_id, user_id=claims.user_id, role=claims.role))
    account = await accounts.get_account(conn, claims.user_id, claims.org_id)
    if account is None:
        raise AuthRefused(401, "account_gone", "this account or its membership no longer exists")
    caller = Caller(account.user_id, account.org_id, account.role, account.email, account.name, account.org_name,
                    token_id=claims.token_id, family_id=claims.family_id)
    if caller.role != claims.role:  # the role changed since the token was issued: the database wins
        await set_tenant(conn, caller.tenant)
    # Scope is a TypedDict of the ASGI keys; the revocation sweep reads this private key back.
    connection.scope[_SCOPE_KEY] = caller  # type: ignore[literal-required]
    return caller


async def provide_db(request: Request[Any, Any, Any], state: State) -> AsyncGenerator[asyncpg.Connection, None]:
    """The request's connection: one transaction, with the caller's tenant context set. It commits
    when the handler returns and rolls back when it raises."""
    async with state.pool.acquire() as conn, conn.transaction():
        # An AuthRefused goes to the exception handlers, which answer it with its 401 or 403.
        request.state.caller = await authenticate(request, conn)
        yield conn


# Handlers declare these to get the caller and their tenant transaction.
TenantDb = NamedDependency[asyncpg.Connection]
CallerDep = NamedDependency[Caller]


async def provide_caller(request: Request[Any, Any, Any], db: TenantDb) -> Caller:
    caller: Caller = request.state.caller
    return caller


def require_role(caller: Caller, *roles: str) -> None:
    """Raises:
        ApiError: 403 when the caller's role is not one of `roles`.
    """
    if caller.role not in roles:
        raise ApiError(403, "forbidden", f"this needs the {' or '.join(roles)} role; you are {caller.role}")
