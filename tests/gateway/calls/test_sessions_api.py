"""The sessions and personas HTTP API."""

import pytest

from tests.gateway.accounts_helpers import bearer, invite, signup


@pytest.fixture
async def team(client):
    admin = await signup(client)
    coach = await signup(client, invite_code=await invite(client, admin, "coach"))
    rep = await signup(client, invite_code=await invite(client, admin, "trainee"))
    other = await signup(client, invite_code=await invite(client, admin, "trainee"))
    return {"admin": admin, "coach": coach, "rep": rep, "other": other}


CUSTOM = {
    "name": "Olive Ortega", "title": "Head of Facilities", "company": "Campus Co", "industry": "Education",
    "difficulty": 3, "situation": "Runs facilities for three campuses.", "personality": "Calm and practical.",
    "goals": ["Cut energy costs"],
    "pains": [{"id": "energy", "keywords": ["energy", "bills"], "reveal": "Our energy bills doubled."}],
    "objections": [{"id": "price", "triggers": ["price"], "text": "What does it cost?",
                    "resolved_by": ["save"], "resolved_reply": "Savings I like."}],
    "next_step": {"min_pains": 1, "accept": "Send an invite.", "decline": "Not yet."},
    "opening_line": "Facilities, Olive speaking.", "closing_line": "Bye now.", "fillers": ["Mm-hm."],
}


async def test_session_is_created_with_a_persona_snapshot_and_a_socket_path(client, team):
    response = await client.post("/api/sessions", json={"persona_id": "busy-it-director"}, headers=bearer(team["rep"]))
    assert response.status_code == 201
    body = response.json()
    assert (body["persona_id"], body["status"]) == ("busy-it-director", "created")
    assert body["ws_url"] == f"/ws/sessions/{body['id']}"
    detail = (await client.get(f"/api/sessions/{body['id']}", headers=bearer(team["rep"]))).json()
    assert detail["persona"]["name"] == "Marcus Chen" and detail["transcript"] == []


async def test_unknown_persona_is_400_naming_the_field(client, team):
    response = await client.post("/api/sessions", json={"persona_id": "nobody"}, headers=bearer(team["rep"]))
    assert response.status_code == 400
    assert response.json()["error"] == {"code": "unknown_persona", "message": "there is no persona 'nobody'",
                                        "field": "persona_id"}


async def test_trainees_list_their_own_sessions_and_coaches_the_orgs(client, team):
    mine = (await client.post("/api/sessions", json={"persona_id": "skeptical-cfo"},
                              headers=bearer(team["rep"]))).json()
    theirs = (await client.post("/api/sessions", json={"persona_id": "skeptical-cfo"},
                                headers=bearer(team["other"]))).json()
    listed = (await client.get("/api/sessions", headers=bearer(team["rep"]))).json()["items"]
    assert [s["id"] for s in listed] == [mine["id"]]
    everyone = (await client.get("/api/sessions", headers=bearer(team["coach"]))).json()["items"]
    assert {s["id"] for s in everyone} == {mine["id"], theirs["id"]}
    assert (await client.get(f"/api/sessions/{theirs['id']}", headers=bearer(team["rep"]))).status_code == 404
    by_rep = (await client.get("/api/sessions", params={"user_id": team["other"]["user"]["id"]},
                               headers=bearer(team["coach"]))).json()["items"]
    assert [s["id"] for s in by_rep] == [theirs["id"]]
    live = (await client.get("/api/sessions", params={"status": "live"}, headers=bearer(team["coach"]))).json()
    assert live["items"] == []
    bad = await client.get("/api/sessions", params={"status": "paused"}, headers=bearer(team["coach"]))
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "status"


async def test_another_orgs_session_is_404_everywhere(client, team):
    session = (await client.post("/api/sessions", json={"persona_id": "skeptical-cfo"},
                                 headers=bearer(team["rep"]))).json()
    stranger = await signup(client)
    for path in (f"/api/sessions/{session['id']}", f"/api/sessions/{session['id']}/events",
                 f"/api/sessions/{session['id']}/recording"):
        assert (await client.get(path, headers=bearer(stranger))).status_code == 404
    assert (await client.delete(f"/api/sessions/{session['id']}", headers=bearer(stranger))).status_code == 404


async def test_events_paging_is_bounded(client, team):
    session = (await client.post("/api/sessions", json={"persona_id": "skeptical-cfo"},
                                 headers=bearer(team["rep"]))).json()
    ok = await client.get(f"/api/sessions/{session['id']}/events", params={"after_seq": 0, "limit": 1000},
                          headers=bearer(team["rep"]))
    assert ok.status_code == 200 and ok.json() == {"items": []}
    too_many = await client.get(f"/api/sessions/{session['id']}/events", params={"limit": 1001},
                                headers=bearer(team["rep"]))
    assert too_many.status_code == 400 and too_many.json()["error"]["field"] == "limit"


async def test_deleted_session_is_gone_from_reads(client, team):
    session = (await client.post("/api/sessions", json={"persona_id": "skeptical-cfo"},
                                 headers=bearer(team["rep"]))).json()
    assert (await client.delete(f"/api/sessions/{session['id']}", headers=bearer(team["coach"]))).status_code == 403
    assert (await client.delete(f"/api/sessions/{session['id']}", headers=bearer(team["rep"]))).status_code == 204
    assert (await client.get(f"/api/sessions/{session['id']}", headers=bearer(team["rep"]))).status_code == 404
    assert session["id"] not in str((await client.get("/api/sessions", headers=bearer(team["rep"]))).json())


async def test_persona_library_has_the_eight_classic_buyers(client, team):
    items = (await client.get("/api/personas", headers=bearer(team["rep"]))).json()["items"]
    ids = {p["id"] for p in items if p["built_in"]}
    assert {"skeptical-cfo", "busy-it-director", "friendly-champion", "procurement-gatekeeper", "happy-with-incumbent",
            "price-sensitive-smb", "technical-evaluator", "two-minute-executive"} <= ids
    cfo = next(p for p in items if p["id"] == "skeptical-cfo")
    assert 1 <= cfo["difficulty"] <= 5 and "objections" not in cfo, "a rep sees the public view"
    full = (await client.get("/api/personas", headers=bearer(team["coach"]))).json()["items"]
    cfo = next(p for p in full if p["id"] == "skeptical-cfo")
    assert cfo["voices"]["elevenlabs"] and cfo["objections"]


async def test_coaches_add_org_personas_that_other_orgs_never_see(client, team):
    created = await client.post("/api/personas", json=CUSTOM, headers=bearer(team["coach"]))
    assert created.status_code == 201
    persona = created.json()
    assert persona["id"].startswith("olive-ortega-") and persona["built_in"] is False
    listed = (await client.get("/api/personas", headers=bearer(team["rep"]))).json()["items"]
    assert persona["id"] in {p["id"] for p in listed}
    session = await client.post("/api/sessions", json={"persona_id": persona["id"]}, headers=bearer(team["rep"]))
    assert session.status_code == 201
    changed = await client.patch(f"/api/personas/{persona['id']}", json={"difficulty": 5},
                                 headers=bearer(team["admin"]))
    assert changed.status_code == 200 and changed.json()["difficulty"] == 5
    stranger = await signup(client)
    assert persona["id"] not in str((await client.get("/api/personas", headers=bearer(stranger))).json())
    assert (await client.get(f"/api/personas/{persona['id']}", headers=bearer(stranger))).status_code == 404
    assert (await client.delete(f"/api/personas/{persona['id']}", headers=bearer(team["coach"]))).status_code == 204
    assert (await client.get(f"/api/personas/{persona['id']}", headers=bearer(team["rep"]))).status_code == 404


async def test_persona_writes_need_coach_or_admin_and_valid_data(client, team):
    assert (await client.post("/api/personas", json=CUSTOM, headers=bearer(team["rep"]))).status_code == 403
    bad = await client.post("/api/personas", json={**CUSTOM, "difficulty": 9}, headers=bearer(team["coach"]))
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid_persona" and bad.json()["error"]["field"] == "difficulty"
    built_in = await client.patch("/api/personas/skeptical-cfo", json={"difficulty": 1}, headers=bearer(team["admin"]))
    assert built_in.status_code == 403
