"""One fake OpenID Connect provider and one app configured for it, per test module; a helper that
walks a browser's redirects through a login."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest

from gateway.app import create_app, serve_app
from tests.conftest import make_settings
from tests.fakes.oidc_server import FakeOidcProvider, FakeUser
from tests.servers import run_asgi

PROVIDER = "fake"


@pytest.fixture(scope="module")
def oidc_server():
    with FakeOidcProvider().serve() as fake:
        yield fake


def oidc_env(fake: FakeOidcProvider) -> dict[str, str]:
    return {"oidc_providers": PROVIDER, "oidc_fake_issuer": fake.issuer, "oidc_fake_client_id": fake.client_id,
            "oidc_fake_client_secret": fake.client_secret, "oidc_fake_name": "Fake IdP"}


@pytest.fixture(scope="module")
def base_url(module_database_url, oidc_server):
    # Every test signs in from 127.0.0.1, and callbacks count against the login limits (per address,
    # and failures per address and provider): raised here so that the module's many sign-ins pass.
    settings = make_settings(module_database_url, rate_limit_login_address="1000/minute",
                             rate_limit_login="1000/minute", **oidc_env(oidc_server))
    with run_asgi(serve_app(create_app(settings))) as url:
        yield url


@pytest.fixture
def oidc(oidc_server):
    """The module's fake provider, reset for this test (it approves a fresh user by default)."""
    oidc_server.user = FakeUser(f"sub-{uuid.uuid4().hex[:8]}", f"sam-{uuid.uuid4().hex[:8]}@example.com")
    oidc_server.deny = False
    oidc_server.claim_overrides = {}
    yield oidc_server
    oidc_server.claim_overrides = {}


@pytest.fixture
async def visitor(base_url):
    """A cookie-keeping client that does not follow redirects (each hop is asserted)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30, follow_redirects=False) as client:
        yield client


@pytest.fixture
async def sql(module_database_url):
    conn = await asyncpg.connect(module_database_url)
    yield conn
    await conn.close()


async def start_login(client: httpx.AsyncClient, *, invite: str | None = None) -> httpx.Response:
    """GET the login route: the 302 to the provider's authorization endpoint."""
    response = await client.get(f"/api/auth/sso/{PROVIDER}/login", params={"invite": invite} if invite else None)
    assert response.status_code == 302, response.text
    return response


async def sso_login(client: httpx.AsyncClient, *, invite: str | None = None) -> httpx.Response:
    """The whole round trip as a browser makes it; returns the callback's answer."""
    to_provider = await start_login(client, invite=invite)
    at_provider = await client.get(to_provider.headers["location"])
    assert at_provider.status_code == 302, at_provider.text
    back = at_provider.headers["location"]
    assert urlsplit(back).path == f"/api/auth/sso/{PROVIDER}/callback", back
    return await client.get(back)


def login_error(response: httpx.Response) -> str | None:
    """The `sso_error` of a redirect back to the log-in page (None: not one)."""
    location = response.headers.get("location", "")
    fragment = urlsplit(location).fragment
    if response.status_code != 302 or not fragment.startswith("/login?"):
        return None
    return parse_qs(fragment.split("?", 1)[1]).get("sso_error", [None])[0]


def csrf(client: httpx.AsyncClient) -> dict[str, str]:
    return {"X-CSRF-Token": client.cookies.get("sparring_csrf") or ""}
