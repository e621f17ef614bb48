"""SSO logins are held to the password login's rate limits: the callbacks one address makes count
against the per-address login limit, and failed sign-ins against the failed-login limit."""

import pytest

from gateway.app import create_app, serve_app
from tests.conftest import make_settings
from tests.fakes.oidc_server import FakeUser
from tests.gateway.sso.conftest import PROVIDER, login_error, oidc_env, sso_login
from tests.servers import run_asgi


@pytest.fixture(scope="module")
def base_url(module_database_url, oidc_server):
    settings = make_settings(module_database_url, rate_limit_login_address="4/minute", rate_limit_login="2/minute",
                             **oidc_env(oidc_server))
    with run_asgi(serve_app(create_app(settings))) as url:
        yield url


async def test_failed_sso_sign_ins_from_one_address_are_limited_like_failed_password_logins(visitor, oidc):
    oidc.user = FakeUser(oidc.user.sub, oidc.user.email, email_verified=False)
    answers = [await sso_login(visitor) for _ in range(3)]
    assert [login_error(a) for a in answers[:2]] == ["email_unverified", "email_unverified"]
    assert answers[2].status_code == 429, answers[2].text
    assert answers[2].json()["error"]["code"] == "rate_limited"


async def test_callbacks_from_one_address_are_limited_like_logins(visitor):
    statuses = [(await visitor.get(f"/api/auth/sso/{PROVIDER}/callback?code=x&state=y")).status_code
                for _ in range(6)]
    assert 429 in statuses and statuses.index(429) <= 4, statuses
    refused = await visitor.get(f"/api/auth/sso/{PROVIDER}/callback?code=x&state=y")
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 61
