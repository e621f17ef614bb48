"""Logging in through OpenID Connect providers: the list of providers, the redirect to one, and
its callback, which signs the person in exactly as a password login does (`issue_session`).

Who the person is, in order: an identity seen before (provider, subject) is that account; else an
account with the same provider-verified email is linked to the identity; else a new account is
made — in the organization of the invite the login started with, or (no invite) the organization
that claimed the email's domain, as a trainee; with neither the login is refused.

Failures before the state is verified answer JSON (unknown provider 404, missing or foreign state
400); after it, the browser goes back to the log-in page with `sso_error=<code>`, which the page
words (web/pages/auth.js).
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

import asyncpg
import msgspec
from litestar import Request, Response, get
from litestar.datastructures import Cookie, State
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect

from gateway.auth.oidc import (
    STATE_COOKIE,
    STATE_TTL_S,
    OidcClient,
    OidcIdentity,
    SsoFailed,
    decode_state,
    encode_state,
)
from gateway.auth.sessions import is_secure, issue_session
from gateway.auth.tokens import ACCESS_TTL_S, hash_secret
from gateway.errors import ApiError
from gateway.ratelimit import RateLimiter, client_address, limit_request
from storage import accounts, sso
from storage.tenancy import Tenant, set_tenant

__all__ = ["ProviderOut", "Providers", "list_providers", "sso_callback", "sso_clients", "sso_login"]

log = logging.getLogger(__name__)

_STATE_PATH = "/api/auth/sso"
_SIGNED_IN = "/#/practice"
_LOGIN_PAGE = "/#/login"
Invite = Annotated[str | None, QueryParameter(max_length=200)]
QueryText = Annotated[str | None, QueryParameter(max_length=4096)]


class ProviderOut(msgspec.Struct):
    id: str
    name: str
    login_url: str


class Providers(msgspec.Struct):
    items: list[ProviderOut]


def sso_clients(state: State) -> dict[str, OidcClient]:
    """The app's provider clients, made once from Settings (their discovery and keys are cached in them)."""
    clients: dict[str, OidcClient] | None = getattr(state, "sso_clients", None)
    if clients is None:
        clients = {p.id: OidcClient(p) for p in state.settings.oidc}
        state.sso_clients = clients
    return clients


def provider_list(state: State) -> list[ProviderOut]:
    return [ProviderOut(c.id, c.name, f"{_STATE_PATH}/{c.id}/login") for c in sso_clients(state).values()]


def _client(state: State, provider: str) -> OidcClient:
    client = sso_clients(state).get(provider)
    if client is None:
        raise ApiError(404, "unknown_provider", f"no sign-in provider {provider[:64]!r} is configured here")
    return client


def _site(request: Request[Any, Any, Any]) -> str:
    site_url: str | None = request.app.state.settings.site_url
    return site_url.rstrip("/") if site_url else f"{request.url.scheme}://{request.url.netloc}"


def _state_cookie(request: Request[Any, Any, Any], value: str, *, max_age: int) -> Cookie:
    # Lax, not Strict: the provider sends the browser back with a top-level cross-site GET.
    return Cookie(key=STATE_COOKIE, value=value, path=_STATE_PATH, max_age=max_age, httponly=True,
                  secure=is_secure(request), samesite="lax")


def _back_to_login(request: Request[Any, Any, Any], code: str) -> Redirect:
    return Redirect(f"{_site(request)}{_LOGIN_PAGE}?sso_error={quote(code)}", status_code=302,
                    cookies=[_state_cookie(request, "", max_age=0)], headers={"Cache-Control": "no-store"})


@get("/api/auth/providers", tags=["auth"], summary="The single sign-on providers configured here")
async def list_providers(state: State) -> Providers:
    return Providers(provider_list(state))


@get("/api/auth/sso/{provider:str}/login", tags=["auth"], status_code=302,
     summary="Start a login through a provider (302 to it); ?invite=CODE joins that invite's org")
async def sso_login(request: Request[Any, Any, Any], state: State, provider: FromPath[str],
                    invite: Invite = None) -> Redirect:
    client = _client(state, provider)
    redirect_uri = f"{_site(request)}{_STATE_PATH}/{client.id}/callback"
    try:
        url, record = await client.authorization_url(redirect_uri, invite=(invite or "").strip() or None)
    except SsoFailed as failed:
        log.warning("sso login could not start", extra={"provider": client.id, "code": failed.code,
                                                          "reason": failed.message})
        return _back_to_login(request, failed.code)
    cookie = _state_cookie(request, encode_state(record, state.jwt_secret), max_age=STATE_TTL_S)
    return Redirect(url, status_code=302, cookies=[cookie], headers={"Cache-Control": "no-store"})


@get("/api/auth/sso/{provider:str}/callback", tags=["auth"], status_code=302,
     summary="Where the provider sends the browser back: signs in (302 to the app) or back to the log-in page")
async def sso_callback(request: Request[Any, Any, Any], state: State, provider: FromPath[str],
                       code: QueryText = None,
                       state_param: Annotated[str | None, QueryParameter(name="state", max_length=4096)] = None,
                       error: QueryText = None) -> Response[Any]:
    client = _client(state, provider)
    address = client_address(request)
    await limit_request(request, "login_address", address)
    # As for passwords, only failures count per address (and provider): a person who keeps
    # logging in is never locked out.
    limiter: RateLimiter = state.limiter
    failures_key = f"{address}|sso:{client.id}"
    if not await limiter.would_allow("login", failures_key):
        await limit_request(request, "login", failures_key)
    try:
        record = decode_state(request.cookies.get(STATE_COOKIE), state_param, client.id, state.jwt_secret)
    except SsoFailed as failed:
        raise ApiError(400, failed.code, failed.message, field="state") from None
    try:
        if error or not code:
            raise SsoFailed("provider_denied", f"{client.name} did not sign you in ({(error or 'no code')[:100]})")
        identity = await client.identify(record, code)
        async with state.pool.acquire() as conn, conn.transaction():
            account = await _account_for(conn, identity, record.invite)
            _, cookies = await issue_session(request, conn, account)
    except SsoFailed as failed:
        await limiter.check("login", failures_key)
        log.info("sso login refused", extra={"provider": client.id, "code": failed.code, "reason": failed.message})
        return _back_to_login(request, failed.code)
    cookies.append(_state_cookie(request, "", max_age=0))
    return Redirect(f"{_site(request)}{_SIGNED_IN}", status_code=302, cookies=cookies,
                    headers={"Cache-Control": "no-store"})


async def _member_account(conn: asyncpg.Connection, user_id: uuid.UUID) -> accounts.Account:
    """The account's primary membership, with its tenant context set.

    Raises:
        SsoFailed: `no_membership` when it belongs to no organization any more.
    """
    membership = await accounts.primary_membership(conn, user_id)
    account = None
    if membership is not None:
        await set_tenant(conn, Tenant(org_id=membership[0], user_id=user_id, role=membership[1]))
        account = await accounts.get_account(conn, user_id, membership[0])
    if account is None:
        raise SsoFailed("no_membership", "this account belongs to no organization; ask your admin for an invite")
    return account


async def _account_for(conn: asyncpg.Connection, identity: OidcIdentity, invite: str | None) -> accounts.Account:
    """The account this identity signs in as, linking or creating it (see the module docstring).

    Raises:
        SsoFailed: `email_unverified`, `invalid_invite`, `invite_required`, `no_membership`, `try_again`.
    """
    user_id = await sso.user_by_identity(conn, identity.provider, identity.subject)
    if user_id is not None:
        account = await _member_account(conn, user_id)
        await sso.touch_identity(conn, provider=identity.provider, subject=identity.subject, email=identity.email)
        return account
    if identity.email is None:
        raise SsoFailed("email_unverified", "the provider did not confirm your email address; verify it there first")
    existing = await accounts.login_user(conn, identity.email)
    if existing is not None:  # a password account with this verified email: link, do not duplicate
        account = await _member_account(conn, existing.id)
        if existing.password_hash is not None:
            # Sign-ups verify no email: whoever set this password may not own the address the provider
            # just vouched for (an account made in advance to be linked). The password and every
            # login it opened end here; the owner signs in through the provider from now on.
            families = await sso.end_password_logins(conn, existing.id)
            if families:
                await accounts.revoke_tokens(conn, [f"family:{f}" for f in families],
                                             datetime.now(UTC) + timedelta(seconds=ACCESS_TTL_S))
        await _link(conn, identity, existing.id)
        return account
    if invite is not None:
        claim = await accounts.claim_invite(conn, hash_secret(invite))
        if claim is None:
            raise SsoFailed("invalid_invite", "this invite code is unknown, expired or used up")
        org_id, role = claim.org_id, claim.role
    else:
        found = await sso.org_for_domain(conn, identity.email.rsplit("@", 1)[-1])
        if found is None:
            raise SsoFailed("invite_required",
                            "no organization here has claimed your email's domain; ask for an invite")
        org_id, role = found, "trainee"
    user_id = uuid.uuid4()
    # The invite or the domain claim vouches for the membership; background role `system` may write it.
    await set_tenant(conn, Tenant(org_id=org_id, user_id=user_id, role="system"))
    name = identity.name or identity.email.split("@", 1)[0][:200] or "New member"
    try:
        await accounts.create_user(conn, user_id, email=identity.email, name=name, password_hash=None)
    except accounts.EmailTaken:  # a sign-up with this email committed a moment ago
        raise SsoFailed("try_again", "this account was just created; sign in again") from None
    await accounts.add_membership(conn, org_id, user_id, role)
    await set_tenant(conn, Tenant(org_id=org_id, user_id=user_id, role=role))
    await _link(conn, identity, user_id)
    return await _member_account(conn, user_id)


async def _link(conn: asyncpg.Connection, identity: OidcIdentity, user_id: uuid.UUID) -> None:
    try:
        await sso.add_identity(conn, provider=identity.provider, subject=identity.subject, user_id=user_id,
                               email=identity.email)
    except sso.IdentityTaken:
        raise SsoFailed("try_again", "this sign-in raced another one; sign in again") from None
