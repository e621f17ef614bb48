"""An organization's single sign-on settings through the running app: claiming an email domain
(only by an admin whose address there a provider verified; one organization per domain) so new
SSO users join as trainees, and requiring SSO (password logins then refused with 403)."""

from __future__ import annotations

import uuid

import httpx

from gateway.auth.caller import ACCESS_COOKIE
from tests.fakes.oidc_server import FakeUser
from tests.gateway.accounts_helpers import PASSWORD, bearer, invite, signup
from tests.gateway.sso.conftest import csrf, login_error, sso_login


def _domain() -> str:
    return f"acme-{uuid.uuid4().hex[:8]}.test"


async def _admin_verified_on(base_url: str, oidc, domain: str, *, local: str = "admin") -> dict:
    """A password-signed-up admin of a new org who then logs in once through the provider with
    that same (verified) email, which links the identity (and ends the password's logins: the
    admin goes on with the SSO login's access token)."""
    email = f"{local}@{domain}"
    async with httpx.AsyncClient(base_url=base_url) as client:
        admin = await signup(client, email=email)
    oidc.user = FakeUser(f"sub-{uuid.uuid4().hex[:8]}", email)
    async with httpx.AsyncClient(base_url=base_url, follow_redirects=False) as browser:
        assert login_error(await sso_login(browser)) is None
        access = browser.cookies.get(ACCESS_COOKIE)
    assert access, "the SSO login set the access cookie"
    return {**admin, "access_token": access}


async def test_an_admin_without_a_verified_email_on_the_domain_cannot_claim_it(client, oidc):
    domain = _domain()
    admin = await signup(client, email=f"admin@{domain}")  # a password account: nobody verified the email
    response = await client.post("/api/orgs/sso/domains", json={"domain": domain}, headers=bearer(admin))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "domain_not_verified"
    other = await client.post("/api/orgs/sso/domains", json={"domain": _domain()}, headers=bearer(admin))
    assert other.status_code == 403, "nor a domain their email is not on"


async def test_a_claimed_domain_sends_new_sso_users_to_the_org_as_trainees(client, oidc, base_url, sql):
    domain = _domain()
    admin = await _admin_verified_on(base_url, oidc, domain)
    claimed = await client.post("/api/orgs/sso/domains", json={"domain": f"@{domain.upper()}"},
                                headers=bearer(admin))
    assert claimed.status_code == 201, claimed.text
    assert [d["domain"] for d in claimed.json()["domains"]] == [domain]
    assert await sql.fetchval("SELECT org_id FROM org_email_domains WHERE domain = $1", domain) \
        == uuid.UUID(admin["org"]["id"])
    oidc.user = FakeUser(f"sub-{uuid.uuid4().hex[:8]}", f"bob@{domain}", name="Bob New")
    async with httpx.AsyncClient(base_url=base_url, follow_redirects=False) as browser:
        response = await sso_login(browser)
        assert login_error(response) is None and response.status_code == 302
        me = (await browser.get("/api/me")).json()
    assert (me["org"], me["role"], me["user"]["name"]) == (admin["org"], "trainee", "Bob New")
    members = await client.get("/api/orgs/members", headers=bearer(admin))
    assert f"bob@{domain}" in [m["email"] for m in members.json()["items"]]
    audit = await client.get("/api/audit", headers=bearer(admin))
    assert "org_email_domains" in [e["table_name"] for e in audit.json()["items"]]


async def test_a_domain_belongs_to_one_organization(client, oidc, base_url):
    domain = _domain()
    first = await _admin_verified_on(base_url, oidc, domain)
    second = await _admin_verified_on(base_url, oidc, domain, local="rival")
    assert first["org"] != second["org"]
    assert (await client.post("/api/orgs/sso/domains", json={"domain": domain},
                              headers=bearer(first))).status_code == 201
    again = await client.post("/api/orgs/sso/domains", json={"domain": domain}, headers=bearer(first))
    assert again.status_code == 201, "claiming one's own domain again changes nothing"
    taken = await client.post("/api/orgs/sso/domains", json={"domain": domain}, headers=bearer(second))
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "domain_taken"
    released = await client.delete(f"/api/orgs/sso/domains/{domain}", headers=bearer(first))
    assert released.status_code == 204
    assert (await client.post("/api/orgs/sso/domains", json={"domain": domain},
                              headers=bearer(second))).status_code == 201


async def test_public_mail_domains_and_non_domains_cannot_be_claimed(client):
    admin = await signup(client)
    for domain, code in (("gmail.com", "public_domain"), ("not a domain", "invalid_domain"), ("x", "invalid_domain")):
        response = await client.post("/api/orgs/sso/domains", json={"domain": domain}, headers=bearer(admin))
        assert (response.status_code, response.json()["error"]["code"]) == (400, code), domain


async def test_only_admins_see_and_change_the_sso_settings(client):
    admin = await signup(client)
    coach = await signup(client, invite_code=await invite(client, admin, "coach"))
    assert (await client.get("/api/orgs/sso", headers=bearer(coach))).status_code == 403
    assert (await client.put("/api/orgs/sso", json={"sso_required": True}, headers=bearer(coach))).status_code == 403
    settings = await client.get("/api/orgs/sso", headers=bearer(admin))
    assert settings.status_code == 200
    assert settings.json() == {"sso_required": False, "domains": [], "providers": [
        {"id": "fake", "name": "Fake IdP", "login_url": "/api/auth/sso/fake/login"}]}


async def test_an_org_that_requires_sso_refuses_password_logins_with_403(client, oidc, base_url, sql):
    domain = _domain()
    admin = await _admin_verified_on(base_url, oidc, domain)
    member_email = f"pat@{domain}"
    member = await signup(client, email=member_email, invite_code=await invite(client, admin, "trainee"))
    # Through the web app's cookies and CSRF header, as the admin page does it (the admin signs in
    # through the provider again: the linked account's password was cleared).
    async with httpx.AsyncClient(base_url=base_url, follow_redirects=False) as browser:
        assert login_error(await sso_login(browser)) is None
        turned_on = await browser.put("/api/orgs/sso", json={"sso_required": True}, headers=csrf(browser))
    assert turned_on.status_code == 200 and turned_on.json()["sso_required"] is True
    assert await sql.fetchval("SELECT sso_required FROM org_settings WHERE org_id = $1",
                              uuid.UUID(admin["org"]["id"])) is True
    refused = await client.post("/api/auth/login", json={"email": member_email, "password": PASSWORD})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "sso_required"
    assert "single sign-on" in refused.json()["error"]["message"]
    wrong = await client.post("/api/auth/login", json={"email": member_email, "password": "not-the-password"})
    assert wrong.status_code == 401, "a wrong password learns nothing about the org"
    joining = await client.post("/api/auth/signup", json={
        "email": f"new@{domain}", "password": PASSWORD, "name": "New",
        "invite_code": await invite(client, admin, "trainee")})
    assert joining.status_code == 403 and joining.json()["error"]["code"] == "sso_required"
    # SSO still signs the member in (their verified email links the password account).
    oidc.user = FakeUser(f"sub-{uuid.uuid4().hex[:8]}", member_email)
    async with httpx.AsyncClient(base_url=base_url, follow_redirects=False) as browser:
        assert login_error(await sso_login(browser)) is None
        assert (await browser.get("/api/me")).json()["user"]["id"] == member["user"]["id"]


async def test_requiring_sso_needs_a_configured_provider(module_database_url):
    from gateway.app import create_app, serve_app
    from tests.conftest import make_settings
    from tests.servers import run_asgi

    with run_asgi(serve_app(create_app(make_settings(module_database_url)))) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            admin = await signup(client)
            response = await client.put("/api/orgs/sso", json={"sso_required": True}, headers=bearer(admin))
            providers = await client.get("/api/auth/providers")
    assert response.status_code == 409 and response.json()["error"]["code"] == "no_sso_provider"
    assert providers.json() == {"items": []}
