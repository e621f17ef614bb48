"""The live-call limit at `POST /api/sessions`, ending one's own stray calls, never-started calls kept
out of the default list, and `/api/live`'s `started_at` (issue 16, "Found when tried as a new user would")."""

import asyncio
from datetime import datetime, timedelta

import asyncpg
import pytest

from gateway.app import create_app, serve_app
from tests.conftest import make_settings
from tests.gateway.accounts_helpers import bearer, eventually, invite, signup
from tests.gateway.live_client import LiveClient
from tests.servers import run_asgi


@pytest.fixture(scope="module")
def base_url(module_database_url):
    # A long grace (dropped calls stay live, as stray calls do) and a short TTL (heartbeats every second).
    settings = make_settings(module_database_url, resume_grace_seconds="60", max_live_sessions_per_user="2",
                             live_ttl_seconds="3")
    with run_asgi(serve_app(create_app(settings))) as url:
        yield url


async def create(client, auth, persona_id="skeptical-cfo"):
    return await client.post("/api/sessions", json={"persona_id": persona_id}, headers=bearer(auth))


async def started_call(base_url, client, auth) -> tuple[str, LiveClient]:
    response = await create(client, auth)
    assert response.status_code == 201, response.text
    session_id = response.json()["id"]
    call = await LiveClient(base_url, session_id, auth["access_token"]).open()
    await call.wait_for(lambda e: e["type"] == "session.started")
    return session_id, call


async def status_of(client, auth, session_id) -> dict:
    return (await client.get(f"/api/sessions/{session_id}", headers=bearer(auth))).json()


async def test_over_the_limit_post_is_409_naming_the_count_and_how_to_end_them(base_url, client):
    rep = await signup(client)
    first, a = await started_call(base_url, client, rep)
    second, b = await started_call(base_url, client, rep)
    await a.close()  # dropped: still live, still counting (a stray call)
    refused = await create(client, rep)
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "live_call_limit"
    assert "2 live calls" in error["message"] and "limit is 2" in error["message"]
    assert "/end" in error["message"] and "Your live calls" in error["message"]
    assert (await client.get("/api/sessions", params={"status": "created"}, headers=bearer(rep))).json()["items"] \
        == [], "a refused start leaves no phantom session"

    ended = await client.post(f"/api/sessions/{first}/end", headers=bearer(rep))  # the stray one, nobody connected
    assert ended.status_code == 200, ended.text
    assert (ended.json()["status"], ended.json()["end_reason"]) == ("ended", "rep_ended")
    events = (await client.get(f"/api/sessions/{first}/events", params={"limit": 1000},
                               headers=bearer(rep))).json()["items"]
    events = [e for e in events if e["type"] != "score.ready"]  # the scorecard may follow the call already
    assert events[-1]["type"] == "session.ended" and events[-1]["reason"] == "rep_ended"
    assert (await create(client, rep)).status_code == 201, "ending a stray call frees its place"

    # The connected one: the rep's socket gets session.ended and closes 1000.
    assert (await client.post(f"/api/sessions/{second}/end", headers=bearer(rep))).status_code == 200
    ending = await b.wait_for(lambda e: e["type"] == "session.ended")
    assert ending["reason"] == "rep_ended"
    code, _ = await b.wait_closed()
    assert code == 1000
    again = await client.post(f"/api/sessions/{second}/end", headers=bearer(rep))
    assert again.status_code == 200 and again.json()["end_reason"] == "rep_ended", "ending twice changes nothing"


async def test_only_the_rep_ends_their_call(base_url, client):
    admin = await signup(client)
    coach = await signup(client, invite_code=await invite(client, admin, "coach"))
    rep = await signup(client, invite_code=await invite(client, admin, "trainee"))
    other = await signup(client, invite_code=await invite(client, admin, "trainee"))
    session_id, call = await started_call(base_url, client, rep)
    assert (await client.post(f"/api/sessions/{session_id}/end", headers=bearer(coach))).status_code == 403
    assert (await client.post(f"/api/sessions/{session_id}/end", headers=bearer(other))).status_code == 404
    assert (await status_of(client, rep, session_id))["status"] == "live"
    await call.send({"type": "end"})
    await call.wait_closed()


async def test_a_never_started_call_can_be_ended_and_is_never_scored(base_url, client):
    rep = await signup(client)
    session_id = (await create(client, rep)).json()["id"]
    ended = await client.post(f"/api/sessions/{session_id}/end", headers=bearer(rep))
    assert ended.status_code == 200 and ended.json()["status"] == "ended" and ended.json()["started_at"] is None


async def test_never_started_calls_leave_the_default_list_after_five_minutes(base_url, client, module_database_url):
    rep = await signup(client)
    fresh = (await create(client, rep)).json()["id"]
    stale = (await create(client, rep)).json()["id"]
    ran, call = await started_call(base_url, client, rep)
    await call.send({"type": "end"})
    await call.wait_closed()
    conn = await asyncpg.connect(module_database_url)
    try:  # the phantom and the finished call were made six minutes ago
        await conn.execute("UPDATE roleplay_sessions SET created_at = now() - interval '6 minutes'"
                           " WHERE id = any($1::uuid[])", [stale, ran])
    finally:
        await conn.close()
    listed = [s["id"] for s in (await client.get("/api/sessions", headers=bearer(rep))).json()["items"]]
    assert listed == [fresh, ran], "a just-created call may still start; an old never-started one is gone"
    created = (await client.get("/api/sessions", params={"status": "created"}, headers=bearer(rep))).json()["items"]
    assert {s["id"] for s in created} == {fresh, stale}, "status=created still lists them all"


async def test_the_live_list_reports_when_the_call_started_not_the_last_heartbeat(base_url, client):
    admin = await signup(client)
    rep = await signup(client, invite_code=await invite(client, admin, "trainee"))
    session_id, call = await started_call(base_url, client, rep)
    started_at = datetime.fromisoformat((await status_of(client, rep, session_id))["started_at"])
    await asyncio.sleep(3.5)  # three heartbeats renew the entry

    async def listed():
        calls = (await client.get("/api/live", headers=bearer(admin))).json()["calls"]
        return [c for c in calls if c["session_id"] == session_id]

    entry = (await eventually(listed, timeout=10))[0]
    assert abs(datetime.fromisoformat(entry["started_at"]) - started_at) < timedelta(milliseconds=500)
    assert datetime.fromisoformat(entry["last_activity_at"]) > started_at
    # After a drop and a resume the start stays the call's start.
    await call.close()
    again = await LiveClient(base_url, session_id, rep["access_token"]).open(last_seq=0)
    await again.wait_for(lambda e: e["type"] == "session.started" and e.get("resumed"))
    await asyncio.sleep(1.5)
    entry = (await eventually(listed, timeout=10))[0]
    assert abs(datetime.fromisoformat(entry["started_at"]) - started_at) < timedelta(milliseconds=500)
    await again.send({"type": "end"})
    await again.wait_closed()
