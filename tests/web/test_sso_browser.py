"""Single sign-on in real Chromium: the invite link's "Sign up with …" button goes to the (fake)
provider, which approves at once and sends the browser back; the app signs the person in. A
refused login comes back to the log-in page with its reason in words; the admin page shows the
organization's SSO settings."""

from __future__ import annotations

import uuid

import httpx
import pytest

from gateway.app import create_app, serve_app
from tests.conftest import make_settings
from tests.fakes.oidc_server import FakeOidcProvider, FakeUser
from tests.gateway.accounts_helpers import invite, signup
from tests.servers import run_asgi


@pytest.fixture(scope="module")
def oidc_server():
    with FakeOidcProvider().serve() as fake:
        yield fake


@pytest.fixture(scope="module")
def base_url(module_database_url, oidc_server):
    settings = make_settings(module_database_url, oidc_providers="fake", oidc_fake_issuer=oidc_server.issuer,
                             oidc_fake_client_id=oidc_server.client_id,
                             oidc_fake_client_secret=oidc_server.client_secret, oidc_fake_name="Acme Login",
                             llm_provider="scripted", hints_llm="off")
    with run_asgi(serve_app(create_app(settings))) as url:
        yield url


async def test_sso_signup_from_an_invite_link_and_a_refused_login(base_url, oidc_server, pages,
                                                                  browser_without_microphone):
    domain = f"globex-{uuid.uuid4().hex[:6]}.test"
    async with httpx.AsyncClient(base_url=base_url) as api:
        admin = await signup(api, org_name="Globex Sales", email=f"ann@{domain}")
        code = await invite(api, admin, "trainee")
    oidc_server.user = FakeUser(f"sub-{uuid.uuid4().hex[:8]}", f"riley-{uuid.uuid4().hex[:6]}@globex.test",
                                name="Riley Rep")

    page = await pages.open(browser_without_microphone, "signup")
    await page.goto(f"/#/signup?invite={code}")
    button = page.get_by_role("link", name="Sign up with Acme Login")
    await button.wait_for()
    await button.click()
    await page.wait_for_url(f"{base_url}/#/practice")
    await page.locator(".who-name", has_text="Riley Rep").wait_for()
    assert "Globex Sales" in await page.locator(".who-org").inner_text()
    assert "trainee" in await page.locator(".who-org").inner_text()

    oidc_server.user = FakeUser(f"sub-{uuid.uuid4().hex[:8]}", f"unverified-{uuid.uuid4().hex[:6]}@globex.test",
                                email_verified=False)
    login = await pages.open(browser_without_microphone, "login")
    await login.goto("/#/login")
    await login.get_by_role("link", name="Log in with Acme Login").click()
    await login.wait_for_url("**/#/login?sso_error=email_unverified")
    alert = login.get_by_role("alert").filter(has_text="has not verified your email")
    await alert.wait_for()
    assert await login.locator(".who-name").count() == 0

    # The admin signs in through the provider too (their verified email links their password
    # account), which lets them claim their domain on the admin page.
    oidc_server.user = FakeUser(f"sub-{uuid.uuid4().hex[:8]}", admin["user"]["email"], name="Ann Admin")
    admin_page = await pages.open(browser_without_microphone, "admin")
    await admin_page.goto("/#/login")
    await admin_page.get_by_role("link", name="Log in with Acme Login").click()
    await admin_page.wait_for_url(f"{base_url}/#/practice")
    await admin_page.goto("/#/admin")
    card = admin_page.locator("section.sso-settings")
    await card.get_by_text("Members must log in with single sign-on").wait_for()
    assert "Acme Login" in await card.inner_text()
    await card.get_by_label("Email domain").fill(domain.upper())
    await card.get_by_role("button", name="Claim domain").click()
    await card.get_by_text(f"{domain} is claimed.").wait_for()
    await card.locator(f'li[data-domain="{domain}"]').wait_for()
    await admin_page.locator("#sso-required").check()
    await card.get_by_role("button", name="Save").click()
    await card.get_by_text("Saved: members now log in with single sign-on.").wait_for()
