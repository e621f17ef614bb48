"""Issue 12's input probes through HTTP against the running app: non-finite VAPI timestamps are
refused, a NUL in the org VAPI settings is a 400 naming the field that stores nothing, and a signed
VAPI delivery whose text holds a NUL is accepted with the NUL stripped from what is stored."""

import json
import uuid

import asyncpg
import pytest

from gateway.app import create_app, serve_app
from tests.conftest import make_settings
from tests.gateway.accounts_helpers import bearer, eventually, signup
from tests.gateway.vapi_helpers import SECRET, deliver, payload, signed
from tests.servers import run_asgi

_LLM_KEY = "custom-llm-key-for-tests"
_PHONE = "555000123"  # each case stores its number (without the NUL), and a number belongs to one org: one each


@pytest.fixture(scope="module")
def base_url(module_database_url):
    with run_asgi(serve_app(create_app(make_settings(module_database_url, vapi_webhook_secret=SECRET,
                                                        vapi_llm_api_key=_LLM_KEY,
                                                        site_url="http://sparring.test")))) as url:
        yield url


async def _fetch(database_url: str, query: str, *args) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def _documented(client, method: str, path: str) -> set[int]:
    """The statuses the running app's OpenAPI declares for one operation."""
    schema = (await client.get("/schema/openapi.json")).json()
    return {int(status) for status in schema["paths"][path][method.lower()]["responses"]}


async def _vapi_session(client) -> str:
    rep = await signup(client)
    response = await client.post("/api/sessions", json={"persona_id": "skeptical-cfo", "transport": "vapi"},
                                 headers=bearer(rep))
    assert response.status_code == 201, response.text
    return response.json()["id"]


@pytest.mark.parametrize("stamp", ["nan", "NaN", "inf", "-inf", "Infinity"])
async def test_a_correctly_signed_delivery_with_a_non_finite_timestamp_is_refused_401(client, module_database_url,
                                                                                    stamp):
    sid = await _vapi_session(client)
    call_id = f"call-{uuid.uuid4().hex[:10]}"
    body = payload("status-update-in-progress", call_id=call_id, session_id=sid)
    # Signed over the very timestamp sent: only the finite check can refuse it (nan passed the
    # +-300 s window, since every comparison with nan is false; inf failed it by chance).
    response = await client.post("/api/vapi/webhook", content=body, headers=signed(body, timestamp=stamp))
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["code"] == "webhook_unverified" and "finite" in error["message"], error
    assert not await _fetch(module_database_url, "SELECT 1 FROM webhook_inbox WHERE dedupe_key LIKE $1",
                            f"%{call_id}%")
    assert not await _fetch(module_database_url, "SELECT 1 FROM roleplay_sessions WHERE vapi_call_id = $1", call_id)
    # The same delivery with a real timestamp is accepted: the refusal was the timestamp's.
    assert (await deliver(client, body)).status_code == 200


@pytest.mark.parametrize(("body", "field"), [
    ({"auth_mode": "hmac", "webhook_secret": "s" * 20 + "\u0000" + "s" * 4}, "webhook_secret"),
    ({"default_persona_id": "skeptical-cfo\u0000"}, "default_persona_id"),
    ({"phone_numbers": {f"+1{_PHONE}1": "skeptical-cfo\u0000"}}, f"phone_numbers.+1{_PHONE}1"),
    ({"phone_numbers": {f"+1{_PHONE[:4]}\u0000{_PHONE[4:]}2": "skeptical-cfo"}}, f"phone_numbers.+1{_PHONE}2"),
])
async def test_a_nul_in_the_org_vapi_settings_is_a_400_naming_the_field_and_stores_nothing(
        client, module_database_url, body, field):
    admin = await signup(client)
    org_id = uuid.UUID(admin["org"]["id"])
    stored = ("SELECT vapi_auth_mode, vapi_webhook_secret, vapi_default_persona_id FROM org_settings"
              " WHERE org_id = $1")
    before = [tuple(r) for r in await _fetch(module_database_url, stored, org_id)]
    response = await client.put("/api/orgs/vapi", json=body, headers=bearer(admin))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "nul_character" and error["field"] == field, error
    assert [tuple(r) for r in await _fetch(module_database_url, stored, org_id)] == before
    assert not await _fetch(module_database_url, "SELECT 1 FROM vapi_phone_numbers WHERE org_id = $1", org_id)
    settings = (await client.get("/api/orgs/vapi", headers=bearer(admin))).json()
    assert settings["secret_set"] is False and settings["phone_numbers"] == {}, settings
    # Without the NUL the same settings are stored: the refusal was the NUL's.
    clean = json.loads(json.dumps(body).replace("\\u0000", ""))
    assert (await client.put("/api/orgs/vapi", json=clean, headers=bearer(admin))).status_code == 200


async def test_a_signed_vapi_transcript_holding_nul_is_accepted_and_stored_without_it(client, module_database_url):
    sid = await _vapi_session(client)
    call_id = f"call-{uuid.uuid4().hex[:10]}"
    text = "How does your month end close work today?"
    body = payload("transcript-final-user", call_id=call_id, session_id=sid)
    assert text.encode() in body
    body = body.replace(text.encode(), b"How does your\\u0000 month end\\u0000 close work today?")
    assert b"\\u0000" in body
    response = await deliver(client, body)
    assert response.status_code == 200, response.text

    async def segments():
        return await _fetch(module_database_url, "SELECT text FROM transcript_segments WHERE session_id = $1",
                            uuid.UUID(sid))

    assert [r["text"] for r in await eventually(segments)] == [text]
    events = await _fetch(module_database_url, "SELECT payload::text AS payload FROM session_events"
                          " WHERE session_id = $1 AND type = 'transcript.final'", uuid.UUID(sid))
    assert [json.loads(r["payload"])["text"] for r in events] == [text]
    # The inbox keeps the delivery (so a re-delivery is recognised) without the NUL as well.
    kept = await _fetch(module_database_url, "SELECT payload::text AS payload FROM webhook_inbox"
                        " WHERE payload -> 'message' -> 'call' ->> 'id' = $1", call_id)
    assert len(kept) == 1 and "\\u0000" not in kept[0]["payload"]
    assert json.loads(kept[0]["payload"])["message"]["transcript"] == text
    again = await deliver(client, body)
    assert again.status_code == 200, again.text
    assert len(await segments()) == 1
    # What a delivery answers is what the schema says it answers (it said 201).
    assert {200, 400, 401, 429} <= await _documented(client, "POST", "/api/vapi/webhook")
    assert 201 not in await _documented(client, "POST", "/api/vapi/webhook")


async def test_json_nested_too_deep_is_a_400_on_every_door_that_reads_json(client):
    """Sign-up, login, a correctly signed VAPI delivery and the custom LLM: msgspec's decoder
    raises RecursionError past its depth limit, even in a field it skips."""
    deep = "[" * 5000 + "]" * 5000
    bodies = {
        "/api/auth/signup": deep,
        "/api/auth/login": '{"email": "a@example.com", "password": "x", "extra": ' + deep + "}",
        "/api/vapi/webhook": '{"message": {"type": "status-update", "status": "ended", "x": ' + deep + "}}",
        "/api/vapi/llm/chat/completions": '{"messages": [], "x": ' + deep + "}",
    }
    for path, text in bodies.items():
        body = text.encode()
        headers = {"content-type": "application/json"}
        if path == "/api/vapi/webhook":
            headers = signed(body)
        elif path.startswith("/api/vapi/llm"):
            headers["authorization"] = f"Bearer {_LLM_KEY}"
        response = await client.post(path, content=body, headers=headers)
        assert response.status_code == 400, (path, response.status_code, response.text[:200])
        assert response.json()["error"]["message"], path
