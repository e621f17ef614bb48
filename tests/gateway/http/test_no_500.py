"""No input answers a 500 (issue 12): NUL characters, deep JSON, out-of-range integers, security headers."""

import math

from gateway.vapi.auth import AuthFailed, HmacScheme, WebhookAuth, sign_hmac, verify
from tests.gateway.accounts_helpers import bearer, signup, unique_email


def _error(response, status, field=None):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] and error["message"]
    if field is not None:
        assert error["field"] == field, error
    return error


async def test_nul_in_a_json_string_is_a_400_naming_the_field(client):
    response = await client.post("/api/auth/signup", json={"email": unique_email(), "password": "x" * 20,
                                                           "name": "Pat\u0000", "org_name": "Org"})
    _error(response, 400, "name")
    rep = await signup(client)
    _error(await client.post("/api/sessions", json={"persona_id": "skeptical-cfo\u0000"}, headers=bearer(rep)),
           400, "persona_id")
    _error(await client.post("/api/personas", json={"name": "A", "traits": ["ok", "b\u0000d"]}, headers=bearer(rep)),
           400, "traits[1]")


async def test_deep_json_is_a_400(client):
    rep = await signup(client)
    deep = "[" * 5000 + "]" * 5000
    for path in ("/api/sessions", "/api/personas", "/api/vapi/webhook"):
        response = await client.post(path, content=deep, headers={**bearer(rep), "Content-Type": "application/json"})
        # Refused at the door for the unsigned webhook (401), read and refused elsewhere (400).
        assert response.status_code == (401 if path == "/api/vapi/webhook" else 400), (path, response.text)
        assert response.json()["error"]["code"]


async def test_integers_beyond_64_bits_are_a_400_naming_the_parameter(client):
    rep = await signup(client)
    session = (await client.post("/api/sessions", json={"persona_id": "skeptical-cfo"}, headers=bearer(rep))).json()
    for name in ("after_seq", "limit"):
        response = await client.get(f"/api/sessions/{session['id']}/events",
                                    params={name: "99999999999999999999999"}, headers=bearer(rep))
        _error(response, 400, name)
    _error(await client.get(f"/api/sessions/{session['id']}/events", params={"after_seq": "-1"},
                            headers=bearer(rep)), 400)


def test_non_finite_vapi_timestamps_are_refused():
    auth = WebhookAuth(mode="hmac", secret="s" * 32, hmac=HmacScheme())
    for stamp in ("nan", "inf", "-inf"):
        headers = {"x-timestamp": stamp, "x-signature": sign_hmac(auth.hmac, "s" * 32, b"{}", stamp)}
        try:
            verify(auth, headers, b"{}", now=1_700_000_000)
        except AuthFailed as failed:
            assert "finite" in str(failed)
        else:
            raise AssertionError(f"{stamp} passed")
    assert not math.isnan(1.0)


async def test_every_response_carries_the_security_headers(client):
    for path in ("/", "/api/health", "/schema/openapi.json", "/no-such-page", "/api/sessions"):
        response = await client.get(path)
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
    assert (await client.get("/schema/openapi.json")).json()["openapi"]


async def test_watch_socket_closes_1008_for_an_after_seq_beyond_64_bits(base_url, client):
    from tests.gateway.calls.test_watch import team, watcher

    _, coach, _, session_id = await team(client)
    for value in ("99999999999999999999999", "²"):
        watch = await watcher(base_url, session_id, coach["access_token"], after_seq=value).open(start=False)
        code, reason = await watch.wait_closed()
        assert code == 1008 and "after_seq" in reason
