"""Issue 12 through the public interface: revocation reaches open sockets, logout kills the access
token, two tabs refreshing at once stay signed in, CSRF is bound to the login, abuse limits and the
client address behind a trusted proxy."""

import asyncio
import time

import asyncpg
import httpx
import pytest

from gateway.app import create_app, serve_app
from gateway.auth.tokens import hash_secret
from tests.conftest import make_settings
from tests.gateway.accounts.revocation_helpers import rep_and_coach, typed_turn_has_no_effect, whisper_has_no_effect
from tests.gateway.accounts_helpers import PASSWORD, bearer, signup, unique_email
from tests.gateway.calls.test_watch import team
from tests.gateway.live_client import LiveClient
from tests.servers import run_asgi


@pytest.fixture(scope="module")
def base_url(module_database_url):
    settings = make_settings(module_database_url, rate_limit_login="3/minute", rate_limit_login_address="8/minute",
                             rate_limit_signup="25/minute", trusted_proxies="127.0.0.1")
    with run_asgi(serve_app(create_app(settings))) as url:
        yield url


def _from(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


# --- 1. revocation reaches open sockets ----------------------------------------------------------

@pytest.mark.parametrize("change", ["demoted to trainee", "removed from the org"])
async def test_a_coach_demoted_or_removed_is_closed_and_cannot_whisper(base_url, client, change):
    admin, coach, rep, session_id = await team(client)
    call, watch = await rep_and_coach(base_url, base_url, session_id, rep, coach)
    member = f"/api/orgs/members/{coach['user']['id']}"
    if change == "demoted to trainee":
        assert (await client.patch(member, json={"role": "trainee"}, headers=bearer(admin))).status_code == 200
    else:
        assert (await client.delete(member, headers=bearer(admin))).status_code == 204
    await whisper_has_no_effect(watch, call)
    await call.close()


async def test_a_rep_removed_from_the_org_loses_their_live_call(base_url, client):
    admin, _, rep, session_id = await team(client)
    call = await LiveClient(base_url, session_id, rep["access_token"]).open()
    await call.greeting()
    removed = await client.delete(f"/api/orgs/members/{rep['user']['id']}", headers=bearer(admin))
    assert removed.status_code == 204
    await typed_turn_has_no_effect(call)


async def test_deleting_an_account_closes_its_live_call_and_its_watching_sockets(base_url, client):
    admin, coach, rep, session_id = await team(client)
    call, watch = await rep_and_coach(base_url, base_url, session_id, rep, coach)
    other = (await client.post("/api/sessions", json={"persona_id": "skeptical-cfo"}, headers=bearer(rep))).json()
    assert (await client.post("/api/user/delete", headers=bearer(coach))).status_code == 204
    code, reason = await watch.wait_closed(timeout=5)
    assert code == 4403 and reason
    assert (await client.post("/api/user/delete", headers=bearer(rep))).status_code == 204
    await typed_turn_has_no_effect(call)
    again = await LiveClient(base_url, other["id"], rep["access_token"]).open()
    assert (await again.wait_closed(timeout=5))[0] == 4401, "the deleted account's token opens nothing"
    assert (await client.get("/api/health")).status_code == 200


async def test_logout_closes_the_sockets_of_that_login(base_url, client):
    _, coach, rep, session_id = await team(client)
    call = await LiveClient(base_url, session_id, rep["access_token"]).open()
    await call.wait_for(lambda e: e["type"] == "session.started")
    assert (await client.post("/api/auth/logout", headers=bearer(rep))).status_code == 204
    code, _ = await call.wait_closed(timeout=5)
    assert code == 4401


# --- 2. logout revokes the access token -------------------------------------------------------

async def test_logout_revokes_the_access_token_at_once(client):
    auth = await signup(client)
    assert (await client.get("/api/me", headers=bearer(auth))).status_code == 200
    assert (await client.post("/api/auth/logout", headers=bearer(auth))).status_code == 204
    after = await client.get("/api/me", headers=bearer(auth))
    assert after.status_code == 401 and after.json()["error"]["code"] == "token_revoked"


# --- 3. two tabs refreshing at once -----------------------------------------------------------

async def _refresh(base_url, token):
    async with httpx.AsyncClient(base_url=base_url, cookies={"sparring_refresh": token}) as tab:
        return await tab.post("/api/auth/refresh")


async def test_two_tabs_refreshing_at_once_both_stay_signed_in(base_url, client):
    await signup(client)
    token = client.cookies.get("sparring_refresh")
    first, second = await asyncio.gather(_refresh(base_url, token), _refresh(base_url, token))
    assert [first.status_code, second.status_code] == [200, 200], (first.text, second.text)
    successor = first.cookies["sparring_refresh"]
    assert second.cookies["sparring_refresh"] == successor != token, "both tabs hold the same new refresh token"
    for answer in (first, second):
        me = await client.get("/api/me", headers={"Authorization": f"Bearer {answer.json()['access_token']}"})
        assert me.status_code == 200
    # One chain: the successor rotates once more (the other tab's copy of it within the grace, too).
    assert (await _refresh(base_url, successor)).status_code == 200


async def test_a_replay_after_the_grace_window_revokes_the_family(base_url, client, module_database_url):
    await signup(client)
    token = client.cookies.get("sparring_refresh")
    rotated = await _refresh(base_url, token)
    assert rotated.status_code == 200
    conn = await asyncpg.connect(module_database_url)  # age the rotation past the 10 s window
    try:
        await conn.execute("UPDATE refresh_tokens SET used_at = now() - interval '1 minute' WHERE token_hash = $1",
                           hash_secret(token))
    finally:
        await conn.close()
    replay = await _refresh(base_url, token)
    assert replay.status_code == 401 and replay.json()["error"]["code"] == "refresh_token_reused"
    assert (await _refresh(base_url, rotated.cookies["sparring_refresh"])).status_code == 401
    me = await client.get("/api/me", headers={"Authorization": f"Bearer {rotated.json()['access_token']}"})
    assert me.status_code == 401, "the replay ended the login's access tokens too"


# --- 4. CSRF bound to the login ------------------------------------------------------------------

async def test_a_planted_csrf_cookie_and_header_pair_is_refused(base_url, client):
    auth = await signup(client)
    access = client.cookies.get("sparring_access")
    bound = client.cookies.get("sparring_csrf")
    planted = "planted-by-a-sibling-subdomain"
    async with httpx.AsyncClient(base_url=base_url, cookies={"sparring_access": access, "sparring_csrf": planted},
                                 headers={"X-CSRF-Token": planted}) as browser:
        refused = await browser.post("/api/orgs/invites", json={"role": "trainee"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
    async with httpx.AsyncClient(base_url=base_url, cookies={"sparring_access": access, "sparring_csrf": bound},
                                 headers={"X-CSRF-Token": bound}) as browser:
        assert (await browser.post("/api/orgs/invites", json={"role": "trainee"})).status_code == 201
    assert auth["role"] == "admin"


# --- 5. abuse limits and the client address ---------------------------------------------------

async def test_successful_logins_do_not_consume_the_per_email_limit(client):
    auth = await signup(client, email=unique_email("ok"))
    email = auth["user"]["email"]
    for _ in range(5):  # RATE_LIMIT_LOGIN is 3/minute, failures only
        ok = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD},
                               headers=_from("203.0.113.10"))
        assert ok.status_code == 200, ok.text
    for _ in range(3):
        bad = await client.post("/api/auth/login", json={"email": email, "password": "wrong password!"},
                                headers=_from("203.0.113.10"))
        assert bad.status_code == 401
    limited = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD},
                                headers=_from("203.0.113.10"))
    assert limited.status_code == 429
    elsewhere = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD},
                                  headers=_from("203.0.113.11"))
    assert elsewhere.status_code == 200, "the client address comes from X-Forwarded-For of a trusted proxy"


async def test_login_is_limited_per_address_across_emails(client):
    answers = [(await client.post("/api/auth/login", json={"email": unique_email(), "password": "x" * 12},
                                  headers=_from("198.51.100.7"))).status_code for _ in range(9)]
    assert answers[:8] == [401] * 8 and answers[8] == 429


async def test_signup_is_limited_and_a_taken_email_costs_a_hash(base_url, client):
    auth = await signup(client)

    async def timed(path: str, body: dict, address: str) -> tuple[float, int]:
        start = time.perf_counter()
        response = await client.post(path, json=body, headers=_from(address))
        return time.perf_counter() - start, response.status_code

    # Medians of three, against a request that hashes nothing (a body missing its password): a
    # password hash costs tens of times such a request, so a loaded machine does not blur it.
    taken = [await timed("/api/auth/signup", {"email": auth["user"]["email"], "password": PASSWORD,
                                              "name": "X", "org_name": "Y"}, "192.0.2.9") for _ in range(3)]
    cheap = [await timed("/api/auth/login", {"email": unique_email()}, "192.0.2.99") for _ in range(3)]
    assert [code for _, code in taken] == [409] * 3 and [code for _, code in cheap] == [400] * 3
    taken_s, cheap_s = sorted(t for t, _ in taken)[1], sorted(t for t, _ in cheap)[1]
    assert taken_s > cheap_s * 4, "a taken email is answered without the password hash"
    codes = [(await client.post("/api/auth/signup", json={"email": unique_email(), "password": PASSWORD,
                                                          "name": "X", "org_name": "Y"},
                                headers=_from("192.0.2.10"))).status_code for _ in range(26)]
    assert codes[:25] == [201] * 25 and codes[25] == 429
