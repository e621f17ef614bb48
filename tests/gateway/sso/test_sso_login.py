"""Logging in through an OpenID Connect provider (a fake one speaking the real protocol, signing
real RS256 ID tokens), through the running app: the redirect, the callback, who the person
becomes, and every way the callback refuses."""

from __future__ import annotations

import time
import uuid
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.fakes.oidc_server import FakeUser, new_signing_key
from tests.gateway.accounts_helpers import invite, signup
from tests.gateway.sso.conftest import PROVIDER, login_error, sso_login, start_login


async def test_providers_lists_each_configured_provider_with_its_login_url(visitor):
    response = await visitor.get("/api/auth/providers")
    assert response.status_code == 200
    assert response.json() == {"items": [{"id": "fake", "name": "Fake IdP", "login_url": "/api/auth/sso/fake/login"}]}


async def test_login_redirects_to_the_provider_with_state_nonce_and_pkce(visitor, oidc, base_url):
    response = await start_login(visitor)
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{oidc.issuer}/authorize"
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["client_id"] == oidc.client_id and query["response_type"] == "code"
    assert query["redirect_uri"] == f"{base_url}/api/auth/sso/fake/callback"
    assert set(query["scope"].split()) == {"openid", "email", "profile"}
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) >= 43
    assert len(query["state"]) >= 20 and len(query["nonce"]) >= 20
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith("sparring_sso="))
    assert "HttpOnly" in cookie and "Path=/api/auth/sso" in cookie and "SameSite=lax" in cookie
    assert oidc.client_secret not in response.headers["location"] and oidc.client_secret not in cookie


async def test_unknown_provider_is_404_on_login_and_callback(visitor):
    for path in ("/api/auth/sso/nope/login", "/api/auth/sso/nope/callback?code=x&state=y"):
        response = await visitor.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "unknown_provider"


async def test_first_login_without_invite_or_claimed_domain_is_refused_and_creates_nobody(visitor, oidc, sql):
    response = await sso_login(visitor)
    assert login_error(response) == "invite_required"
    assert "sparring_access" not in visitor.cookies
    assert await sql.fetchval("SELECT count(*) FROM users WHERE lower(email) = lower($1)", oidc.user.email) == 0


async def test_invite_through_sso_creates_the_member_and_signs_them_in_like_a_password_login(
        visitor, oidc, sql, base_url):
    async with httpx.AsyncClient(base_url=base_url) as admin_client:
        admin = await signup(admin_client)
        code = await invite(admin_client, admin, "coach")
    response = await sso_login(visitor, invite=code)
    assert response.status_code == 302, response.text
    assert response.headers["location"] == f"{base_url}/#/practice"
    set_cookies = response.headers.get_list("set-cookie")
    for name in ("sparring_access=", "sparring_refresh=", "sparring_csrf="):
        assert any(h.startswith(name) for h in set_cookies), name
    assert any(h.startswith("sparring_sso=") and "Max-Age=0" in h for h in set_cookies), "the state is spent"
    me = await visitor.get("/api/me")
    assert me.status_code == 200
    assert me.json()["org"] == admin["org"] and me.json()["role"] == "coach"
    assert me.json()["user"]["email"] == oidc.user.email and me.json()["user"]["name"] == "Sam Sso"
    user_id = uuid.UUID(me.json()["user"]["id"])
    assert await sql.fetchval("SELECT password_hash FROM users WHERE id = $1", user_id) is None
    assert await sql.fetchval("SELECT user_id FROM user_identities WHERE provider = 'fake' AND subject = $1",
                              oidc.user.sub) == user_id
    assert oidc.token_requests[-1].get("code_verifier"), "the code was exchanged with the PKCE verifier"
    audited = {r["table_name"] for r in await sql.fetch(
        "SELECT table_name FROM audit_log WHERE action = 'insert' AND (row_id = $1 OR new_data ->> 'user_id' = $1)",
        str(user_id))}
    assert {"users", "memberships", "user_identities"} <= audited
    # The same refresh rotation as any login.
    first = visitor.cookies.get("sparring_refresh")
    rotated = await visitor.post("/api/auth/refresh")
    assert rotated.status_code == 200 and visitor.cookies.get("sparring_refresh") != first
    # The invite was used: the next person cannot join with it.
    async with httpx.AsyncClient(base_url=base_url, follow_redirects=False) as other:
        oidc.user = FakeUser("sub-other-" + uuid.uuid4().hex[:6], f"other-{uuid.uuid4().hex[:6]}@example.com")
        assert login_error(await sso_login(other, invite=code)) == "invalid_invite"


async def test_a_later_login_matches_the_provider_subject_not_the_email(visitor, oidc, sql, base_url):
    async with httpx.AsyncClient(base_url=base_url) as admin_client:
        code = await invite(admin_client, await signup(admin_client), "trainee")
    first = await sso_login(visitor, invite=code)
    assert first.status_code == 302 and login_error(first) is None
    user_id = (await visitor.get("/api/me")).json()["user"]["id"]
    oidc.user = FakeUser(oidc.user.sub, f"renamed-{uuid.uuid4().hex[:6]}@example.com")
    async with httpx.AsyncClient(base_url=base_url, follow_redirects=False) as again:
        second = await sso_login(again)  # no invite needed now
        assert login_error(second) is None and second.status_code == 302
        assert (await again.get("/api/me")).json()["user"]["id"] == user_id
    assert await sql.fetchval("SELECT count(*) FROM user_identities WHERE user_id = $1", uuid.UUID(user_id)) == 1
    assert await sql.fetchval("SELECT email FROM user_identities WHERE user_id = $1", uuid.UUID(user_id)) \
        == oidc.user.email


async def test_an_existing_password_account_with_the_verified_email_is_linked_and_its_password_logins_end(
        visitor, oidc, sql, base_url):
    """Linked, not duplicated; but sign-ups verify no email, so the password (which whoever made the
    account in advance may hold) and every login it opened end at the first provider login."""
    async with httpx.AsyncClient(base_url=base_url) as client:
        account = await signup(client, email=oidc.user.email)
    oidc.user = FakeUser(oidc.user.sub, oidc.user.email.upper())
    response = await sso_login(visitor)
    assert login_error(response) is None and response.status_code == 302
    me = (await visitor.get("/api/me")).json()
    assert (me["user"]["id"], me["org"], me["role"]) == (account["user"]["id"], account["org"], "admin")
    assert await sql.fetchval("SELECT count(*) FROM users WHERE lower(email) = lower($1)", oidc.user.email) == 1
    assert await sql.fetchval("SELECT user_id FROM user_identities WHERE subject = $1", oidc.user.sub) \
        == uuid.UUID(account["user"]["id"])
    async with httpx.AsyncClient(base_url=base_url) as client:
        login = await client.post("/api/auth/login", json={"email": account["user"]["email"],
                                                          "password": "correct horse battery"})
        assert login.status_code == 401, "the password was cleared"
        old_login = await client.get("/api/me", headers={"Authorization": f"Bearer {account['access_token']}"})
        assert old_login.status_code == 401 and old_login.json()["error"]["code"] == "token_revoked"
    assert await sql.fetchval("SELECT password_hash FROM users WHERE id = $1", uuid.UUID(account["user"]["id"])) \
        is None


async def test_an_unverified_email_is_neither_linked_nor_used(visitor, oidc, sql, base_url):
    async with httpx.AsyncClient(base_url=base_url) as client:
        account = await signup(client, email=oidc.user.email)
    oidc.user = FakeUser(oidc.user.sub, oidc.user.email, email_verified=False)
    response = await sso_login(visitor)
    assert login_error(response) == "email_unverified"
    assert "sparring_access" not in visitor.cookies
    assert await sql.fetchval("SELECT count(*) FROM user_identities WHERE user_id = $1",
                              uuid.UUID(account["user"]["id"])) == 0


async def test_an_entra_style_token_counts_its_email_verified_only_with_xms_edov(visitor, oidc, sql, base_url):
    """Microsoft Entra sends no email_verified; its optional claim xms_edov vouches for the email."""
    async with httpx.AsyncClient(base_url=base_url) as client:
        account = await signup(client, email=oidc.user.email)
    oidc.user = FakeUser(oidc.user.sub, oidc.user.email, email_verified=None)
    assert login_error(await sso_login(visitor)) == "email_unverified"
    oidc.claim_overrides = {"xms_edov": True}
    response = await sso_login(visitor)
    assert login_error(response) is None and response.status_code == 302
    assert await sql.fetchval("SELECT user_id FROM user_identities WHERE subject = $1", oidc.user.sub) \
        == uuid.UUID(account["user"]["id"])


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"nonce": "not-the-nonce-we-sent"}, "invalid_id_token"),
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 4000}, "id_token_expired"),
        ({"aud": "some-other-client"}, "invalid_id_token"),
        ({"iss": "https://impostor.example"}, "invalid_id_token"),
    ],
    ids=["bad_nonce", "expired", "wrong_audience", "wrong_issuer"],
)
async def test_an_id_token_that_fails_verification_signs_nobody_in(visitor, oidc, sql, base_url, overrides, code):
    async with httpx.AsyncClient(base_url=base_url) as client:
        account = await signup(client, email=oidc.user.email)  # linking would sign them in: it must not
    oidc.claim_overrides = overrides
    response = await sso_login(visitor)
    assert login_error(response) == code
    assert "sparring_access" not in visitor.cookies and "sparring_refresh" not in visitor.cookies
    assert await sql.fetchval("SELECT count(*) FROM user_identities WHERE user_id = $1",
                              uuid.UUID(account["user"]["id"])) == 0


async def test_an_id_token_signed_with_an_unpublished_key_is_refused(visitor, oidc, base_url):
    async with httpx.AsyncClient(base_url=base_url) as client:
        await signup(client, email=oidc.user.email)
    jwks = oidc.jwks_requests
    oidc.rogue_key = new_signing_key()
    try:
        response = await sso_login(visitor)
    finally:
        oidc.rogue_key = None
    assert login_error(response) == "invalid_id_token"
    assert "sparring_access" not in visitor.cookies
    assert oidc.jwks_requests >= jwks + 1, "an unknown kid is looked up again before the token is refused"


async def test_key_rotation_fetches_the_jwks_again_once_and_discovery_stays_cached(visitor, oidc, base_url):
    async with httpx.AsyncClient(base_url=base_url) as client:
        await signup(client, email=oidc.user.email)
    assert login_error(await sso_login(visitor)) is None
    discovery, jwks = oidc.discovery_requests, oidc.jwks_requests
    oidc.rotate_key()
    async with httpx.AsyncClient(base_url=base_url, follow_redirects=False) as again:
        response = await sso_login(again)
        assert login_error(response) is None and response.status_code == 302
        assert (await again.get("/api/me")).status_code == 200
    assert oidc.jwks_requests == jwks + 1, "an unknown kid refetches the JWKS, once"
    async with httpx.AsyncClient(base_url=base_url, follow_redirects=False) as third:
        assert login_error(await sso_login(third)) is None
    assert oidc.jwks_requests == jwks + 1, "the new keys are cached"
    assert oidc.discovery_requests == discovery, "the discovery document is cached"


async def test_a_provider_that_denies_the_login_sends_the_browser_back_to_the_log_in_page(visitor, oidc):
    oidc.deny = True
    assert login_error(await sso_login(visitor)) == "provider_denied"


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"code": "abc"},
        {"code": "abc", "state": "forged"},
        {"code": "abc", "state": "x" * 5000},
        {"error": "access_denied"},
    ],
    ids=["nothing", "no_state", "forged_state", "huge_state", "error_without_state"],
)
async def test_a_callback_without_this_browsers_state_is_400(visitor, query):
    response = await visitor.get(f"/api/auth/sso/{PROVIDER}/callback", params=query)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] in ("bad_state", "invalid_parameter", "invalid_field", "bad_request")


async def test_a_callback_with_another_logins_state_is_400_and_the_code_is_not_redeemed(visitor, oidc, base_url):
    to_provider = await start_login(visitor)
    at_provider = await visitor.get(to_provider.headers["location"])
    query = parse_qs(urlsplit(at_provider.headers["location"]).query)
    async with httpx.AsyncClient(base_url=base_url, follow_redirects=False) as attacker:
        await start_login(attacker)  # the attacker's own state cookie, not the victim's
        requests = len(oidc.token_requests)
        response = await attacker.get(f"/api/auth/sso/{PROVIDER}/callback",
                                      params={"code": query["code"][0], "state": query["state"][0]})
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_state"
    assert len(oidc.token_requests) == requests
    tampered = visitor.cookies.get("sparring_sso")
    visitor.cookies.set("sparring_sso", tampered[:-4] + "AAAA", path="/api/auth/sso")
    response = await visitor.get(at_provider.headers["location"])
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_state"
