"""Accounts through the running app: sign-up, login, refresh rotation, logout, invites, Supabase."""

import time
import uuid

import asyncpg
import httpx
import jwt
import pytest

from gateway.app import create_app, serve_app
from gateway.auth.tokens import hash_secret
from tests.conftest import TEST_JWT_SECRET, make_settings
from tests.gateway.accounts_helpers import PASSWORD, bearer, invite, signup, unique_email
from tests.servers import run_asgi

SUPABASE_SECRET = "supabase-project-jwt-secret-" + "s" * 20


@pytest.fixture(scope="module")
def base_url(module_database_url):
    settings = make_settings(module_database_url, supabase_jwt_secret=SUPABASE_SECRET)
    with run_asgi(serve_app(create_app(settings))) as url:
        yield url


async def test_signup_with_org_name_makes_the_creator_admin_and_signs_them_in(client):
    email = unique_email()
    response = await client.post("/api/auth/signup", json={
        "email": email, "password": PASSWORD, "name": "Ann Admin", "org_name": "Acme Sales"})
    assert response.status_code == 201
    body = response.json()
    assert body["user"]["email"] == email and body["user"]["name"] == "Ann Admin"
    assert body["org"]["name"] == "Acme Sales"
    assert (body["role"], body["token_type"], body["expires_in"]) == ("admin", "bearer", 900)
    refresh_cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith("sparring_refresh="))
    assert "HttpOnly" in refresh_cookie and "SameSite=strict" in refresh_cookie and "Path=/api/auth" in refresh_cookie
    me = await client.get("/api/me", headers=bearer(body))
    assert me.status_code == 200
    assert me.json() == {"user": body["user"], "org": body["org"], "role": "admin"}


@pytest.mark.parametrize(
    ("change", "status", "code", "field"),
    [
        ({"password": "short"}, 400, "weak_password", "password"),
        ({"email": "not-an-email"}, 400, "invalid_field", "email"),
        ({"invite_code": "abc"}, 400, "org_or_invite", "invite_code"),
        ({"org_name": None}, 400, "org_or_invite", "org_name"),
        ({"name": ""}, 400, "invalid_field", "name"),
        ({"password": 12345678901}, 400, "invalid_field", "password"),
    ],
)
async def test_signup_with_bad_input_names_the_field(client, change, status, code, field):
    body = {"email": unique_email(), "password": PASSWORD, "name": "N", "org_name": "O", **change}
    body = {k: v for k, v in body.items() if v is not None}
    response = await client.post("/api/auth/signup", json=body)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["field"] == field


async def test_signup_with_a_taken_email_in_any_case_is_409(client):
    email = unique_email()
    await signup(client, email=email)
    response = await client.post("/api/auth/signup", json={
        "email": email.upper(), "password": PASSWORD, "name": "Twin", "org_name": "Other"})
    assert response.status_code == 409
    assert response.json()["error"] == {"code": "email_taken",
                                        "message": "an account with this email exists; log in instead",
                                        "field": "email"}


async def test_login_answers_like_signup(client):
    created = await signup(client)
    response = await client.post("/api/auth/login", json={"email": created["user"]["email"], "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert (body["user"], body["org"], body["role"]) == (created["user"], created["org"], "admin")
    assert (await client.get("/api/me", headers=bearer(body))).status_code == 200


async def test_wrong_password_and_unknown_email_get_the_same_401(client):
    created = await signup(client)
    wrong = await client.post("/api/auth/login", json={"email": created["user"]["email"], "password": "nope-nope-nope"})
    unknown = await client.post("/api/auth/login", json={"email": unique_email(), "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {
        "error": {"code": "invalid_credentials", "message": "wrong email or password"}}


async def test_refresh_rotates_and_reusing_an_old_token_revokes_the_whole_login(base_url, module_database_url):
    async with httpx.AsyncClient(base_url=base_url) as client:
        await signup(client)
        first = client.cookies.get("sparring_refresh")
        rotated = await client.post("/api/auth/refresh")
        assert rotated.status_code == 200
        second = client.cookies.get("sparring_refresh")
        assert second and second != first
        assert (await client.get("/api/me", headers=bearer(rotated.json()))).status_code == 200
    db = await asyncpg.connect(module_database_url)  # past the grace window for two tabs refreshing at once
    try:
        await db.execute("UPDATE refresh_tokens SET used_at = now() - interval '1 minute' WHERE token_hash = $1",
                         hash_secret(first))
    finally:
        await db.close()
    async with httpx.AsyncClient(base_url=base_url, cookies={"sparring_refresh": first}) as thief:
        reused = await thief.post("/api/auth/refresh")
    assert reused.status_code == 401
    assert reused.json()["error"]["code"] == "refresh_token_reused"
    async with httpx.AsyncClient(base_url=base_url, cookies={"sparring_refresh": second}) as owner:
        after = await owner.post("/api/auth/refresh")
    assert after.status_code == 401, "the newest token of a reused family is revoked too"


async def test_logout_revokes_the_refresh_token_and_clears_cookies(base_url):
    async with httpx.AsyncClient(base_url=base_url) as client:
        await signup(client)
        token = client.cookies.get("sparring_refresh")
        response = await client.post("/api/auth/logout")
        assert response.status_code == 204
        assert any(h.startswith('sparring_refresh=""') or "Max-Age=0" in h
                   for h in response.headers.get_list("set-cookie"))
    async with httpx.AsyncClient(base_url=base_url, cookies={"sparring_refresh": token}) as client:
        assert (await client.post("/api/auth/refresh")).status_code == 401


async def test_refresh_without_a_cookie_is_401(client):
    response = await client.post("/api/auth/refresh")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "no_refresh_token"


@pytest.mark.parametrize("role", ["trainee", "coach", "admin"])
async def test_admin_invite_joins_its_org_with_its_role(client, role):
    admin = await signup(client)
    joined = await signup(client, invite_code=await invite(client, admin, role))
    assert joined["org"] == admin["org"]
    assert joined["role"] == role


async def test_coach_invites_trainees_only_and_trainees_cannot_invite(client):
    admin = await signup(client)
    coach = await signup(client, invite_code=await invite(client, admin, "coach"))
    trainee = await signup(client, invite_code=await invite(client, coach, "trainee"))
    assert trainee["role"] == "trainee"
    for role in ("coach", "admin"):
        refused = await client.post("/api/orgs/invites", json={"role": role}, headers=bearer(coach))
        assert refused.status_code == 403
    refused = await client.post("/api/orgs/invites", json={"role": "trainee"}, headers=bearer(trainee))
    assert refused.status_code == 403
    bad_role = await client.post("/api/orgs/invites", json={"role": "owner"}, headers=bearer(admin))
    assert bad_role.status_code == 400 and bad_role.json()["error"]["field"] == "role"


async def test_an_invite_code_works_once(client):
    admin = await signup(client)
    code = await invite(client, admin, "trainee")
    await signup(client, invite_code=code)
    again = await client.post("/api/auth/signup", json={
        "email": unique_email(), "password": PASSWORD, "name": "Late", "invite_code": code})
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "invalid_invite"


async def test_missing_or_bad_token_is_401(client):
    assert (await client.get("/api/me")).status_code == 401
    response = await client.get("/api/me", headers={"Authorization": "Bearer not.a.jwt"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"
    forged = jwt.encode({"sub": str(uuid.uuid4()), "org": str(uuid.uuid4()), "role": "admin", "typ": "access",
                         "aud": "sparring", "iss": "sparring", "iat": int(time.time()), "exp": int(time.time()) + 60},
                        "some-other-secret-that-is-long-enough-for-hs256", algorithm="HS256")
    assert (await client.get("/api/me", headers={"Authorization": f"Bearer {forged}"})).status_code == 401


def supabase_token(sub: str, *, secret: str = SUPABASE_SECRET, aud: str = "authenticated") -> str:
    now = int(time.time())
    return jwt.encode({"sub": sub, "aud": aud, "role": "authenticated", "email": "x@example.com",
                       "iat": now, "exp": now + 3600}, secret, algorithm="HS256")


async def test_supabase_access_token_maps_to_the_user_by_external_id(client, module_database_url):
    created = await signup(client)
    external_id = str(uuid.uuid4())
    db = await asyncpg.connect(module_database_url)
    try:
        await db.execute("UPDATE users SET external_id = $1 WHERE id = $2",
                         external_id, uuid.UUID(created["user"]["id"]))
    finally:
        await db.close()
    me = await client.get("/api/me", headers={"Authorization": f"Bearer {supabase_token(external_id)}"})
    assert me.status_code == 200
    assert me.json()["user"]["id"] == created["user"]["id"] and me.json()["role"] == "admin"
    unknown = await client.get("/api/me", headers={"Authorization": f"Bearer {supabase_token(str(uuid.uuid4()))}"})
    assert unknown.status_code == 401 and unknown.json()["error"]["code"] == "unknown_account"
    wrong_aud = await client.get(
        "/api/me", headers={"Authorization": f"Bearer {supabase_token(external_id, aud='anon')}"})
    assert wrong_aud.status_code == 401
    wrong_key = await client.get(
        "/api/me", headers={"Authorization": f"Bearer {supabase_token(external_id, secret='x' * 40)}"})
    assert wrong_key.status_code == 401


async def test_supabase_tokens_are_refused_when_no_supabase_secret_is_set(module_database_url):
    with run_asgi(serve_app(create_app(make_settings(module_database_url)))) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            response = await client.get("/api/me", headers={"Authorization": f"Bearer {supabase_token('abc')}"})
    assert response.status_code == 401


async def test_role_change_applies_to_existing_tokens_at_once(client):
    admin = await signup(client)
    coach = await signup(client, invite_code=await invite(client, admin, "coach"))
    demoted = await client.patch(f"/api/orgs/members/{coach['user']['id']}", json={"role": "trainee"},
                                 headers=bearer(admin))
    assert demoted.status_code == 200 and demoted.json()["role"] == "trainee"
    me = await client.get("/api/me", headers=bearer(coach))
    assert me.json()["role"] == "trainee"
    assert (await client.get("/api/orgs/members", headers=bearer(coach))).status_code == 403


async def test_the_last_admin_cannot_be_demoted(client):
    admin = await signup(client)
    response = await client.patch(f"/api/orgs/members/{admin['user']['id']}", json={"role": "coach"},
                                  headers=bearer(admin))
    assert response.status_code == 409 and response.json()["error"]["code"] == "last_admin"


async def test_access_token_signed_with_the_test_secret_is_what_the_app_issues(client):
    created = await signup(client)
    claims = jwt.decode(created["access_token"], TEST_JWT_SECRET, algorithms=["HS256"], audience="sparring")
    assert claims["sub"] == created["user"]["id"] and claims["org"] == created["org"]["id"]
    assert claims["exp"] - claims["iat"] == 900


async def test_without_jwt_secret_every_instance_shares_the_generated_one(database_url):
    settings = make_settings(database_url)
    settings = type(settings)(**{**{f: getattr(settings, f) for f in settings.__struct_fields__}, "jwt_secret": None})
    with run_asgi(serve_app(create_app(settings))) as first, run_asgi(serve_app(create_app(settings))) as second:
        async with httpx.AsyncClient(base_url=first) as client:
            auth = await signup(client)
        async with httpx.AsyncClient(base_url=second) as client:
            me = await client.get("/api/me", headers=bearer(auth))
    assert me.status_code == 200
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(auth["access_token"], TEST_JWT_SECRET, algorithms=["HS256"], audience="sparring")
