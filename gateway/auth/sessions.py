"""Issuing a signed-in session: refresh token row, access token, and the cookies the web app uses."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import asyncpg
import msgspec
from litestar import Request, Response
from litestar.datastructures import Cookie

from gateway.auth.caller import ACCESS_COOKIE, CSRF_COOKIE, REFRESH_COOKIE
from gateway.auth.tokens import (
    ACCESS_TTL_S,
    REFRESH_TTL_S,
    AccessClaims,
    csrf_token,
    hash_secret,
    issue_access_token,
    new_secret,
)
from storage import accounts

__all__ = ["AuthOut", "OrgOut", "UserOut", "clear_cookies", "issue_session", "is_secure", "signed_in"]

_REFRESH_PATH = "/api/auth"
R = TypeVar("R")


class UserOut(msgspec.Struct):
    id: uuid.UUID
    email: str
    name: str


class OrgOut(msgspec.Struct):
    id: uuid.UUID
    name: str


class AuthOut(msgspec.Struct):
    user: UserOut
    org: OrgOut
    role: str
    access_token: str
    token_type: str
    expires_in: int


def is_secure(request: Request[Any, Any, Any]) -> bool:
    site_url: str = request.app.state.settings.site_url or ""
    return request.url.scheme == "https" or site_url.startswith("https://")


async def issue_session(request: Request[Any, Any, Any], conn: asyncpg.Connection, account: accounts.Account, *,
                        family_id: uuid.UUID | None = None, refresh: str | None = None
                        ) -> tuple[AuthOut, list[Cookie]]:
    """Stores a new refresh token (in `family_id`'s family, or a new one) and returns the answer
    body (with the access token) and the refresh, access and CSRF cookies. The access token
    carries the family (`fam`) and the CSRF cookie is bound to it (`tokens.csrf_token`). Every
    way of signing in (password, SSO, refresh) goes through here. `refresh`: the refresh token to
    answer with (a rotation's successor, `tokens.successor_token`); a new random one by default."""
    refresh = refresh or new_secret()
    family = family_id or uuid.uuid4()
    await accounts.store_refresh_token(
        conn, user_id=account.user_id, org_id=account.org_id, family_id=family,
        token_hash=hash_secret(refresh), expires_at=datetime.now(UTC) + timedelta(seconds=REFRESH_TTL_S),
    )
    secret: str = request.app.state.jwt_secret
    claims = AccessClaims(account.user_id, account.org_id, account.role, family_id=family)
    access = issue_access_token(claims, secret)
    secure = is_secure(request)
    body = AuthOut(
        UserOut(account.user_id, account.email, account.name), OrgOut(account.org_id, account.org_name),
        account.role, access, "bearer", ACCESS_TTL_S,
    )
    return body, [
        Cookie(key=REFRESH_COOKIE, value=refresh, path=_REFRESH_PATH, max_age=REFRESH_TTL_S, httponly=True,
               secure=secure, samesite="strict"),
        Cookie(key=ACCESS_COOKIE, value=access, path="/", max_age=ACCESS_TTL_S, httponly=True, secure=secure,
               samesite="lax"),
        Cookie(key=CSRF_COOKIE, value=csrf_token(secret, family), path="/", max_age=REFRESH_TTL_S, httponly=False,
               secure=secure,
               samesite="lax"),
    ]


async def signed_in(request: Request[Any, Any, Any], conn: asyncpg.Connection, account: accounts.Account, *,
                    status_code: int, family_id: uuid.UUID | None = None, refresh: str | None = None
                    ) -> Response[AuthOut]:
    """`issue_session`, answered as JSON with the cookies set."""
    body, cookies = await issue_session(request, conn, account, family_id=family_id, refresh=refresh)
    return Response(body, status_code=status_code, cookies=cookies, headers={"Cache-Control": "no-store"})


def clear_cookies(response: Response[R]) -> Response[R]:
    for key, path in ((REFRESH_COOKIE, _REFRESH_PATH), (ACCESS_COOKIE, "/"), (CSRF_COOKIE, "/")):
        response.delete_cookie(key, path=path)
    return response
