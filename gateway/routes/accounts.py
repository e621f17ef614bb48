"""Sign-up, login, token refresh and logout, and who am I."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import asyncpg
import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.params import JSONBody

from coaching.errors import SparringError
from gateway.auth.caller import ACCESS_COOKIE, REFRESH_COOKIE, CallerDep
from gateway.auth.passwords import MIN_PASSWORD_LENGTH, hash_password, verify_password
from gateway.auth.revocation import sweeper_of
from gateway.auth.sessions import AuthOut, OrgOut, UserOut, clear_cookies, signed_in
from gateway.auth.tokens import ACCESS_TTL_S, InvalidToken, decode_access_token, hash_secret, successor_token
from gateway.errors import ApiError, ErrorBody, ErrorDetail
from gateway.ratelimit import RateLimiter, client_address, limit_request
from storage import accounts, sso
from storage.tenancy import Tenant, set_tenant

__all__ = ["login", "logout", "me", "refresh", "signup"]

Email = Annotated[str, msgspec.Meta(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class SignupIn(msgspec.Struct):
    email: Email
    password: Annotated[str, msgspec.Meta(max_length=1024)]
    name: Name
    org_name: Name | None = None
    invite_code: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None


class LoginIn(msgspec.Struct):
    email: Annotated[str, msgspec.Meta(max_length=320)]
    password: Annotated[str, msgspec.Meta(max_length=1024)]


class MeOut(msgspec.Struct):
    user: UserOut
    org: OrgOut
    role: str


_BAD_LOGIN = ApiError(401, "invalid_credentials", "wrong email or password")
_SSO_REQUIRED = ApiError(403, "sso_required", "your organization signs in with single sign-on (SSO): "
                         "use your company's button on the log-in page instead of a password")


async def _account(conn: asyncpg.Connection, user_id: uuid.UUID, org_id: uuid.UUID) -> accounts.Account:
    """The account just created or verified in this transaction.

    Raises:
        SparringError: it is not there (a bug: answered as a logged 500).
    """
    account = await accounts.get_account(conn, user_id, org_id)
    if account is None:
        raise SparringError(f"account {user_id} in org {org_id} vanished inside its own transaction")
    return account


@post("/api/auth/signup", tags=["auth"], summary="Create an account (and an org, or join one by invite)")
async def signup(request: Request[Any, Any, Any], state: State, data: JSONBody[SignupIn]) -> Response[AuthOut]:
    await limit_request(request, "signup", client_address(request))
    if (data.org_name is None) == (data.invite_code is None):
        raise ApiError(400, "org_or_invite", "give either org_name (a new organization) or invite_code",
                       field="org_name" if data.org_name is None else "invite_code")
    if len(data.password) < MIN_PASSWORD_LENGTH:
        raise ApiError(400, "weak_password", f"the password needs at least {MIN_PASSWORD_LENGTH} characters",
                       field="password")
    email, name = data.email.strip(), data.name.strip()
    password_hash = await hash_password(data.password)
    user_id = uuid.uuid4()
    async with state.pool.acquire() as conn, conn.transaction():
        if data.invite_code is not None:
            invite = await accounts.claim_invite(conn, hash_secret(data.invite_code.strip()))
            if invite is None:
                raise ApiError(400, "invalid_invite", "this invite code is unknown, expired or used up",
                               field="invite_code")
            org_id, role = invite.org_id, invite.role
            if await sso.sso_required(conn, org_id):
                raise _SSO_REQUIRED
            # The invite vouches for the membership; background role `system` may write it.
            await set_tenant(conn, Tenant(org_id=org_id, user_id=user_id, role="system"))
        else:
            assert data.org_name is not None  # exactly one of org_name and invite_code, checked above
            org_id, role = uuid.uuid4(), "admin"
            await set_tenant(conn, Tenant(org_id=org_id, user_id=user_id, role="admin"))
            await accounts.create_org(conn, org_id, data.org_name.strip())
        # The password was hashed above, before this: a taken email costs the same work as a new one.
        try:
            await accounts.create_user(conn, user_id, email=email, name=name, password_hash=password_hash)
        except accounts.EmailTaken as taken:
            raise ApiError(409, "email_taken", str(taken), field="email") from None
        await accounts.add_membership(conn, org_id, user_id, role)
        await set_tenant(conn, Tenant(org_id=org_id, user_id=user_id, role=role))
        account = await _account(conn, user_id, org_id)
        return await signed_in(request, conn, account, status_code=201)


@post("/api/auth/login", tags=["auth"], summary="Log in with email and password", status_code=200)
async def login(request: Request[Any, Any, Any], state: State, data: JSONBody[LoginIn]) -> Response[AuthOut]:
    client = client_address(request)
    await limit_request(request, "login_address", client)
    # Per address and email, only failures count: a user who keeps logging in is never locked out.
    limiter: RateLimiter = state.limiter
    failures_key = f"{client}|{data.email.strip().lower()}"
    if not await limiter.would_allow("login", failures_key):
        await limit_request(request, "login", failures_key)  # refuses, with the limit's headers
    async with state.pool.acquire() as conn, conn.transaction():
        user = await accounts.login_user(conn, data.email.strip())
        # Unknown email and wrong password do the same argon2 work and get the same answer.
        verified = await verify_password(user.password_hash if user else None, data.password)
        membership = await accounts.primary_membership(conn, user.id) if user is not None and verified else None
        if user is None or membership is None:
            await limiter.check("login", failures_key)
            raise _BAD_LOGIN
        if await sso.sso_required(conn, membership[0]):
            raise _SSO_REQUIRED
        await set_tenant(conn, Tenant(org_id=membership[0], user_id=user.id, role=membership[1]))
        account = await _account(conn, user.id, membership[0])
        return await signed_in(request, conn, account, status_code=200)


def _refused(code: str, message: str) -> Response[ErrorBody]:
    body = ErrorBody(ErrorDetail(code, message))
    return clear_cookies(Response(body, status_code=401, headers={"Cache-Control": "no-store"}))


@post("/api/auth/refresh", tags=["auth"], summary="Rotate the refresh cookie for a new access token", status_code=200)
async def refresh(request: Request[Any, Any, Any], state: State) -> Response[Any]:
    presented = request.cookies.get(REFRESH_COOKIE)
    if not presented:
        return _refused("no_refresh_token", "no refresh cookie was sent; log in again")
    async with state.pool.acquire() as conn, conn.transaction():
        record = await accounts.find_refresh_token(conn, hash_secret(presented))
        if record is None:
            return _refused("invalid_refresh_token", "the refresh token is unknown; log in again")
        await set_tenant(conn, Tenant(org_id=record.org_id, user_id=record.user_id, role="trainee"))
        use = "reused" if record.revoked_at is not None else await accounts.use_refresh_token(
            conn, record.id, grace_s=state.settings.refresh_grace_seconds)
        if use == "reused":
            # A spent token came back: someone holds a copy. End every session of this login.
            await accounts.revoke_family(conn, record.family_id)
            await _deny_family(conn, record.family_id)
            return _refused("refresh_token_reused", "this session was ended for safety; log in again")
        # `grace`: another tab spent it a moment ago; this one gets the same successor (already
        # stored by that rotation) and an access token of the same login.
        if record.expires_at < datetime.now(UTC):
            return _refused("refresh_token_expired", "the session expired; log in again")
        account = await accounts.get_account(conn, record.user_id, record.org_id)
        if account is None:
            return _refused("account_gone", "this account no longer exists")
        await set_tenant(conn, Tenant(org_id=account.org_id, user_id=account.user_id, role=account.role))
        return await signed_in(request, conn, account, status_code=200, family_id=record.family_id,
                               refresh=successor_token(state.jwt_secret, presented))


async def _deny_family(conn: asyncpg.Connection, family_id: uuid.UUID) -> None:
    """Every access token of this login stops working now, on every instance."""
    await accounts.revoke_tokens(conn, [f"family:{family_id}"],
                                 datetime.now(UTC) + timedelta(seconds=ACCESS_TTL_S + 60))


@post("/api/auth/logout", tags=["auth"], summary="End this login (revokes its refresh tokens)", status_code=204)
async def logout(request: Request[Any, Any, Any], state: State) -> Response[None]:
    presented = request.cookies.get(REFRESH_COOKIE)
    header = request.headers.get("authorization", "")
    access = header[7:].strip() if header[:7].lower() == "bearer " else request.cookies.get(ACCESS_COOKIE, "")
    try:
        claims = decode_access_token(access, state.jwt_secret) if access else None
    except InvalidToken:
        claims = None
    revoked: list[str] = []
    async with state.pool.acquire() as conn, conn.transaction():
        record = await accounts.find_refresh_token(conn, hash_secret(presented)) if presented else None
        if record is not None:
            await set_tenant(conn, Tenant(org_id=record.org_id, user_id=record.user_id, role="trainee"))
            await accounts.revoke_family(conn, record.family_id)
            await _deny_family(conn, record.family_id)
            revoked.append(f"family:{record.family_id}")
        if claims is not None:  # the access token dies now, not in up to 15 minutes
            await accounts.revoke_tokens(conn, claims.revocation_ids,
                                         datetime.fromtimestamp(claims.expires_at + 60, UTC))
            revoked += claims.revocation_ids
            if claims.family_id is not None and record is None:
                await set_tenant(conn, Tenant(org_id=claims.org_id, user_id=claims.user_id, role="trainee"))
                await accounts.revoke_family(conn, claims.family_id)
    sweeper = sweeper_of(request)
    if sweeper is not None and revoked:
        sweeper.close_token(revoked)  # this instance's sockets of this login; the others within 2 s
    return clear_cookies(Response(None, status_code=204))


@get("/api/me", tags=["auth"], summary="The signed-in user, their org and role")
async def me(caller: CallerDep) -> MeOut:
    return MeOut(UserOut(caller.user_id, caller.email, caller.name), OrgOut(caller.org_id, caller.org_name),
                 caller.role)
