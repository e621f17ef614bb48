"""VAPI tenancy against the running app: call ids and inbox dedupe keys belong to the endpoint that
verified the delivery, unsigned org endpoints only when the operator allows them, VAPI calls whose
`ended` never arrives are ended, and calls the webhook created never hold a person's limit."""

import uuid

import asyncpg
import httpx
import pytest

from gateway.app import create_app, serve_app
from tests.conftest import make_settings
from tests.gateway.accounts_helpers import bearer, eventually, signup
from tests.gateway.live_client import LiveClient
from tests.gateway.stored import stored_events
from tests.gateway.vapi_helpers import SECRET, deliver, payload
from tests.servers import run_asgi

ORG_SECRET = "org-own-secret-for-tenancy-0123456789"


def _serve(database_url: str, **env: str):
    return run_asgi(serve_app(create_app(make_settings(database_url, vapi_webhook_secret=SECRET,
                                                       site_url="http://sparring.test", **env))))


@pytest.fixture(scope="module")
def base_url(module_database_url):
    with _serve(module_database_url) as url:
        yield url


@pytest.fixture(scope="module")
def lenient_url(module_database_url):
    """An operator who allows unsigned org endpoints (VAPI_ALLOW_UNSIGNED_ORG_WEBHOOKS=true)."""
    with _serve(module_database_url, vapi_allow_unsigned_org_webhooks="true") as url:
        yield url


@pytest.fixture(scope="module")
def quick_url(module_database_url):
    """VAPI calls are ended 10 s after they start."""
    with _serve(module_database_url, max_call_seconds="10", vapi_timeout_grace_seconds="0") as url:
        yield url


@pytest.fixture
async def lenient(lenient_url):
    async with httpx.AsyncClient(base_url=lenient_url, timeout=30) as client:
        yield client


@pytest.fixture
async def quick(quick_url):
    async with httpx.AsyncClient(base_url=quick_url, timeout=30) as client:
        yield client


async def vapi_session(client, rep) -> str:
    response = await client.post("/api/sessions", json={"persona_id": "skeptical-cfo", "transport": "vapi"},
                                 headers=bearer(rep))
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def org_sessions(database_url, org_id) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT id FROM roleplay_sessions WHERE org_id = $1", uuid.UUID(org_id))
    finally:
        await conn.close()
    return [str(r["id"]) for r in rows]


async def unsigned(client, body: bytes, org_id: str) -> httpx.Response:
    return await client.post(f"/api/vapi/webhook/{org_id}", content=body, headers={"content-type": "application/json"})


# --- 1. call ids and dedupe keys are the verifying endpoint's ---------------------------------------

async def test_an_org_claiming_a_call_id_first_never_receives_the_platforms_deliveries(lenient, module_database_url):
    attacker = await signup(lenient)
    org_e = attacker["org"]["id"]
    saved = await lenient.put("/api/orgs/vapi", json={"auth_mode": "none"}, headers=bearer(attacker))
    assert saved.status_code == 200, saved.text
    victim = await signup(lenient)
    sid = await vapi_session(lenient, victim)
    call_id = f"call-{uuid.uuid4().hex[:10]}"
    # The attacker claims the call id (and its status-update dedupe key) on its own unsigned endpoint.
    assert (await unsigned(lenient, payload("status-update-in-progress", call_id=call_id), org_e)).status_code == 200
    planted = await org_sessions(module_database_url, org_e)
    assert len(planted) == 1
    # The platform's correctly signed deliveries for that call id.
    for body in (payload("status-update-in-progress", call_id=call_id, session_id=sid),
                 payload("transcript-final-user", call_id=call_id, session_id=sid),
                 payload("end-of-call-report-legacy", call_id=call_id)):  # by call id alone
        response = await deliver(lenient, body)
        assert response.status_code == 200, response.text
    kinds = [e["type"] for e in await stored_events(module_database_url, sid) if e["type"] != "score.ready"]
    assert kinds[0] == "session.started" and "transcript.final" in kinds and kinds[-1] == "session.ended", kinds
    assert [e["type"] for e in await stored_events(module_database_url, planted[0])] == ["session.started"]
    detail = (await lenient.get(f"/api/sessions/{planted[0]}", headers=bearer(attacker))).json()
    assert detail["transcript"] == [], "another org's transcript is never read through a claimed call id"
    assert await org_sessions(module_database_url, org_e) == planted


async def test_a_delivery_verified_for_one_org_never_touches_another_orgs_session(lenient, module_database_url):
    attacker = await signup(lenient)
    org_e = attacker["org"]["id"]
    saved = await lenient.put("/api/orgs/vapi", json={"auth_mode": "none"}, headers=bearer(attacker))
    assert saved.status_code == 200
    victim = await signup(lenient)
    sid = await vapi_session(lenient, victim)
    call_id = f"call-{uuid.uuid4().hex[:10]}"
    started = await deliver(lenient, payload("status-update-in-progress", call_id=call_id, session_id=sid))
    assert started.status_code == 200
    # The attacker's endpoint, naming the victim's call id (and even its session with its token).
    for body in (payload("transcript-final-user", call_id=call_id),
                 payload("transcript-final-user", call_id=call_id, session_id=sid),
                 payload("status-update-ended", call_id=call_id)):
        assert (await unsigned(lenient, body, org_e)).status_code == 200
    assert [e["type"] for e in await stored_events(module_database_url, sid)] == ["session.started"]


# --- 2. unsigned org endpoints only when the operator allows them ---------------------------------

async def test_auth_mode_none_is_refused_unless_the_operator_allows_it(client, lenient, module_database_url):
    admin = await signup(client)
    org_id = admin["org"]["id"]
    shown = (await client.get("/api/orgs/vapi", headers=bearer(admin))).json()
    assert shown["unsigned_allowed"] is False
    refused = await client.put("/api/orgs/vapi", json={"auth_mode": "none"}, headers=bearer(admin))
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["code"] == "unsigned_not_allowed" and error["field"] == "auth_mode"
    assert "VAPI_ALLOW_UNSIGNED_ORG_WEBHOOKS" in error["message"]
    # A `none` stored before (or while the operator allowed it) no longer opens the endpoint.
    conn = await asyncpg.connect(module_database_url)
    try:
        await conn.execute("INSERT INTO org_settings (org_id, vapi_auth_mode) VALUES ($1, 'none')"
                           " ON CONFLICT (org_id) DO UPDATE SET vapi_auth_mode = 'none'", uuid.UUID(org_id))
    finally:
        await conn.close()
    body = payload("status-update-in-progress")
    delivered = await unsigned(client, body, org_id)
    assert delivered.status_code == 401 and "VAPI_ALLOW_UNSIGNED_ORG_WEBHOOKS" in delivered.json()["error"]["message"]
    assert await org_sessions(module_database_url, org_id) == []
    # Where the operator allows it, the same endpoint takes it.
    assert (await lenient.get("/api/orgs/vapi", headers=bearer(admin))).json()["unsigned_allowed"] is True
    assert (await unsigned(lenient, body, org_id)).status_code == 200
    assert len(await org_sessions(module_database_url, org_id)) == 1


# --- 3. VAPI calls that never end --------------------------------------------------------------

async def test_a_vapi_call_whose_end_never_arrives_is_ended_after_the_max_call_time(quick, module_database_url):
    rep = await signup(quick)
    sid = await vapi_session(quick, rep)
    call_id = f"call-{uuid.uuid4().hex[:10]}"
    for name in ("status-update-in-progress", "transcript-final-user"):
        assert (await deliver(quick, payload(name, call_id=call_id, session_id=sid))).status_code == 200

    async def ended():
        detail = (await quick.get(f"/api/sessions/{sid}", headers=bearer(rep))).json()
        return detail if detail["status"] == "ended" else None

    detail = await eventually(ended, timeout=30, interval=0.5)
    assert detail and detail["end_reason"] == "vapi_timeout"
    events = await stored_events(module_database_url, sid)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), "numbered through the session log"
    call_events = [e for e in events if e["type"] != "score.ready"]  # the scorecard follows the call
    assert call_events[-1]["type"] == "session.ended" and call_events[-1]["reason"] == "vapi_timeout"
    assert call_events[-1]["duration_ms"] >= 10_000


async def test_calls_the_webhook_created_never_count_against_the_first_admins_limit(base_url, client):
    admin = await signup(client)
    org_id = admin["org"]["id"]
    saved = await client.put("/api/orgs/vapi", json={"auth_mode": "hmac", "webhook_secret": ORG_SECRET},
                             headers=bearer(admin))
    assert saved.status_code == 200
    for _ in range(2):  # the default limit is 2 live calls per person
        body = payload("status-update-in-progress", call_id=f"call-{uuid.uuid4().hex[:10]}")
        assert (await deliver(client, body, path=f"/api/vapi/webhook/{org_id}", secret=ORG_SECRET)).status_code == 200
    live = (await client.get("/api/sessions?status=live", headers=bearer(admin))).json()
    assert len(live["items"]) == 2
    created = await client.post("/api/sessions", json={"persona_id": "skeptical-cfo"}, headers=bearer(admin))
    assert created.status_code == 201, created.text
    call = await LiveClient(base_url, created.json()["id"], admin["access_token"]).open()
    started = await call.wait_for(lambda e: e["type"] == "session.started")
    assert started, (call.close_code, call.close_reason)
    await call.send({"type": "end"})
    await call.wait_closed()
