"""Issue 16 over HTTP, against the running app: reps get a persona's public view (who the buyer is and the
scenario brief, never its pains, objections or what wins them), coaches and admins the whole persona; the
brief is in the API; the persona builder's saves answer 400 naming the field; invites can be listed and
revoked."""

import pytest

from tests.gateway.accounts_helpers import bearer, invite, signup, unique_email

HIDDEN = {"pains", "objections", "next_step", "fillers", "personality", "goals", "situation", "opening_line",
          "closing_line"}
BRIEF_KEYS = {"sells", "call_type", "goal", "background", "good_outcome"}
CUSTOM = {
    "name": "Olive Ortega", "title": "Head of Facilities", "company": "Campus Co", "industry": "Education",
    "difficulty": 3, "situation": "Runs facilities for three campuses.", "personality": "Calm and practical.",
    "goals": ["Cut energy costs"],
    "pains": [{"id": "energy", "keywords": ["energy", "bills"], "reveal": "Our energy bills doubled."}],
    "objections": [{"id": "price", "triggers": ["price"], "text": "What does it cost?",
                    "resolved_by": ["save"], "resolved_reply": "Savings I like."}],
    "next_step": {"min_pains": 1, "accept": "Send an invite.", "decline": "Not yet."},
    "opening_line": "Facilities, Olive speaking.", "closing_line": "Bye now.", "fillers": ["Mm-hm."],
    "brief": {"sells": "Smart thermostats", "call_type": "cold call", "goal": "Book a site visit.",
              "background": "Olive runs facilities for three campuses.", "good_outcome": "A site visit is booked."},
}


@pytest.fixture
async def team(client):
    admin = await signup(client)
    coach = await signup(client, invite_code=await invite(client, admin, "coach"), email=unique_email("coach"))
    rep = await signup(client, invite_code=await invite(client, admin, "trainee"))
    return {"admin": admin, "coach": coach, "rep": rep}


async def test_a_rep_gets_the_public_view_of_every_persona(client, team):
    items = (await client.get("/api/personas", headers=bearer(team["rep"]))).json()["items"]
    assert len(items) >= 8
    for p in items:
        assert not HIDDEN & set(p), f"{p['id']} leaks {HIDDEN & set(p)}"
        assert {"id", "name", "title", "company", "industry", "difficulty", "brief", "built_in"} <= set(p)
        assert set(p["brief"]) == BRIEF_KEYS and all(p["brief"][k] for k in BRIEF_KEYS), p["id"]
        assert p["brief"]["call_type"] in ("cold call", "discovery", "demo", "negotiation")
    one = (await client.get("/api/personas/skeptical-cfo", headers=bearer(team["rep"]))).json()
    assert one["name"] == "Dana Whitfield" and not HIDDEN & set(one)
    assert "payback" not in str(one) and "eight days" not in str(one)


@pytest.mark.parametrize("who", ["coach", "admin"])
async def test_coaches_and_admins_get_the_whole_persona_with_its_brief(client, team, who):
    items = (await client.get("/api/personas", headers=bearer(team[who]))).json()["items"]
    cfo = next(p for p in items if p["id"] == "skeptical-cfo")
    assert HIDDEN <= set(cfo) and cfo["objections"] and cfo["pains"]
    assert cfo["brief"]["call_type"] == "cold call" and "Northwind" in cfo["brief"]["background"]
    one = (await client.get("/api/personas/skeptical-cfo", headers=bearer(team[who]))).json()
    assert one["objections"] == cfo["objections"]


async def test_the_session_detail_gives_a_rep_the_public_view_and_a_coach_the_snapshot(client, team):
    created = (await client.post("/api/sessions", json={"persona_id": "skeptical-cfo"},
                                 headers=bearer(team["rep"]))).json()
    mine = (await client.get(f"/api/sessions/{created['id']}", headers=bearer(team["rep"]))).json()
    assert mine["persona"]["name"] == "Dana Whitfield" and not HIDDEN & set(mine["persona"])
    assert mine["persona"]["brief"]["goal"]
    coach = (await client.get(f"/api/sessions/{created['id']}", headers=bearer(team["coach"]))).json()
    assert coach["persona"]["objections"] and coach["persona"]["brief"] == mine["persona"]["brief"]


async def test_an_org_persona_with_a_brief_is_public_to_reps_and_whole_to_coaches(client, team):
    created = await client.post("/api/personas", json=CUSTOM, headers=bearer(team["coach"]))
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    assert created.json()["brief"] == CUSTOM["brief"]
    rep_view = (await client.get(f"/api/personas/{pid}", headers=bearer(team["rep"]))).json()
    assert rep_view["brief"] == CUSTOM["brief"] and not HIDDEN & set(rep_view) and rep_view["built_in"] is False
    # A persona saved without a brief gets one: the background is the situation.
    bare = {k: v for k, v in CUSTOM.items() if k != "brief"}
    made = (await client.post("/api/personas", json=bare, headers=bearer(team["coach"]))).json()
    seen = (await client.get(f"/api/personas/{made['id']}", headers=bearer(team["rep"]))).json()
    assert seen["brief"]["background"] == CUSTOM["situation"] and seen["brief"]["call_type"] == "discovery"


@pytest.mark.parametrize(("change", "field"), [
    ({"name": ""}, "name"),
    ({"difficulty": 9}, "difficulty"),
    ({"brief": {"call_type": "webinar"}}, "brief.call_type"),
    ({"pains": [{"id": "energy", "keywords": [], "reveal": "x"}]}, "pains[0].keywords"),
    ({"objections": [{"id": "price", "triggers": ["price"], "text": "What does it cost?", "resolved_by": ["save"]}]},
     "objections[0].resolved_reply"),
    ({"pains": []}, "pains"),
])
async def test_the_persona_builder_gets_400_naming_the_field(client, team, change, field):
    response = await client.post("/api/personas", json={**CUSTOM, **change}, headers=bearer(team["coach"]))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_persona" and error["field"] == field, error
    assert error["message"]


async def test_put_replaces_an_org_persona_and_validates_it(client, team):
    pid = (await client.post("/api/personas", json=CUSTOM, headers=bearer(team["coach"]))).json()["id"]
    changed = {**CUSTOM, "name": "Olive O.", "brief": {**CUSTOM["brief"], "call_type": "demo"}, "built_in": False}
    out = await client.put(f"/api/personas/{pid}", json=changed, headers=bearer(team["coach"]))
    assert out.status_code == 200, out.text
    assert (out.json()["name"], out.json()["brief"]["call_type"], out.json()["id"]) == ("Olive O.", "demo", pid)
    bad = await client.put(f"/api/personas/{pid}", json={**CUSTOM, "fillers": []}, headers=bearer(team["coach"]))
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "fillers"
    assert (await client.put(f"/api/personas/{pid}", json=CUSTOM, headers=bearer(team["rep"]))).status_code == 403
    built_in = await client.put("/api/personas/skeptical-cfo", json=CUSTOM, headers=bearer(team["coach"]))
    assert built_in.status_code == 403


async def test_pending_invites_are_listed_and_a_revoked_one_no_longer_signs_anyone_up(client, team):
    admin = bearer(team["admin"])
    made = (await client.post("/api/orgs/invites", json={"role": "coach"}, headers=admin)).json()
    pending = (await client.get("/api/orgs/invites", headers=admin)).json()["items"]
    listed = next(i for i in pending if i["id"] == made["id"])
    assert listed["role"] == "coach" and listed["uses"] == 0 and "code" not in listed
    assert all("code" not in i and "code_hash" not in i for i in pending)
    used = [i["id"] for i in pending]
    # The two invites the fixture used are no longer pending.
    assert len(used) == 1
    assert (await client.get("/api/orgs/invites", headers=bearer(team["rep"]))).status_code == 403
    assert (await client.delete(f"/api/orgs/invites/{made['id']}", headers=bearer(team["rep"]))).status_code == 403
    # Coaches may revoke trainee invites only.
    assert (await client.delete(f"/api/orgs/invites/{made['id']}", headers=bearer(team["coach"]))).status_code == 403
    assert (await client.delete(f"/api/orgs/invites/{made['id']}", headers=admin)).status_code == 204
    assert (await client.get("/api/orgs/invites", headers=admin)).json()["items"] == []
    assert (await client.delete(f"/api/orgs/invites/{made['id']}", headers=admin)).status_code == 404
    refused = await client.post("/api/auth/signup", json={"email": unique_email(), "password": "correct horse battery",
                                                          "name": "Late", "invite_code": made["code"]})
    assert refused.status_code in (400, 403, 404), refused.text
    trainee = (await client.post("/api/orgs/invites", json={"role": "trainee"}, headers=bearer(team["coach"]))).json()
    assert (await client.delete(f"/api/orgs/invites/{trainee['id']}", headers=bearer(team["coach"]))).status_code == 204


async def test_a_vapi_call_without_site_url_is_refused_409_before_any_session_exists(client, team, module_database_url):
    """Without SITE_URL, VAPI would run the persona on its own model and the browser would carry the
    persona's whole prompt: the server refuses instead, and leaves no phantom call in history."""
    response = await client.post("/api/sessions", json={"persona_id": "skeptical-cfo", "transport": "vapi"},
                                 headers=bearer(team["rep"]))
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "vapi_needs_site_url" and "SITE_URL" in error["message"]
    history = (await client.get("/api/sessions", headers=bearer(team["rep"]))).json()["items"]
    assert history == []
