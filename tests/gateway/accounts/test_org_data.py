"""Isolation, audit, export, deletion and curriculum through the running app."""

import uuid

import asyncpg
import pytest

from tests.gateway.accounts_helpers import PASSWORD, bearer, invite, signup


@pytest.fixture
async def db(module_database_url):
    conn = await asyncpg.connect(module_database_url)
    yield conn
    await conn.close()


async def add_session(db, auth: dict, *, text: str = "hello there") -> uuid.UUID:
    """A finished practice call with an event, a transcript segment and a score, as the live call
    path will write them (that path lands with the live-session issue)."""
    org, user = uuid.UUID(auth["org"]["id"]), uuid.UUID(auth["user"]["id"])
    session = await db.fetchval(
        "INSERT INTO roleplay_sessions (org_id, user_id, persona_id, persona_snapshot, status)"
        " VALUES ($1, $2, 'skeptical-cfo', '{\"name\": \"Dana\"}', 'ended') RETURNING id", org, user)
    await db.execute(
        "INSERT INTO session_events (session_id, seq, org_id, type, payload)"
        " VALUES ($1, 1, $2, 'transcript.final', $3)",
        session, org, f'{{"text": "{text}"}}')
    await db.execute(
        "INSERT INTO transcript_segments (org_id, session_id, segment_id, speaker, text, start_ms, end_ms)"
        " VALUES ($1, $2, 's1', 'rep', $3, 0, 900)", org, session, text)
    await db.execute(
        "INSERT INTO session_scores (org_id, user_id, session_id, opening_rapport, discovery, active_listening,"
        " value_articulation, objection_handling, closing_next_steps, overall, scorer, version)"
        " VALUES ($1, $2, $3, 70, 60, 50, 40, 30, 20, 45, 'rules', 1)", org, user, session)
    return session


async def test_one_orgs_admin_never_sees_another_orgs_members_or_audit(client):
    a = await signup(client, org_name="Org A")
    b = await signup(client, org_name="Org B")
    members_b = (await client.get("/api/orgs/members", headers=bearer(b))).json()["items"]
    assert [m["user_id"] for m in members_b] == [b["user"]["id"]]
    audit_b = (await client.get("/api/audit", headers=bearer(b))).json()["items"]
    assert audit_b and all(a["org"]["id"] not in str(entry) and a["user"]["id"] not in str(entry) for entry in audit_b)
    # Another org's member is "not found", never "forbidden".
    cross = await client.patch(f"/api/orgs/members/{a['user']['id']}", json={"role": "coach"}, headers=bearer(b))
    assert cross.status_code == 404
    assert (await client.delete(f"/api/orgs/members/{a['user']['id']}", headers=bearer(b))).status_code == 404


async def test_trainee_is_refused_org_wide_views_with_403(client):
    admin = await signup(client)
    trainee = await signup(client, invite_code=await invite(client, admin, "trainee"))
    for path in ("/api/orgs/members", "/api/audit"):
        response = await client.get(path, headers=bearer(trainee))
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "forbidden"


async def test_audit_pages_through_signups_invites_and_role_changes(client):
    admin = await signup(client)
    coach = await signup(client, invite_code=await invite(client, admin, "coach"))
    await client.patch(f"/api/orgs/members/{coach['user']['id']}", json={"role": "trainee"}, headers=bearer(admin))
    first = await client.get("/api/audit", params={"limit": 3}, headers=bearer(admin))
    page = first.json()
    assert len(page["items"]) == 3 and page["next_before_id"]
    rest = (await client.get("/api/audit", params={"before_id": page["next_before_id"], "limit": 100},
                             headers=bearer(admin))).json()
    entries = page["items"] + rest["items"]
    seen = [(e["table_name"], e["action"]) for e in reversed(entries)]
    for expected in [("organizations", "insert"), ("users", "insert"), ("memberships", "insert"),
                     ("invites", "insert"), ("memberships", "update")]:
        assert expected in seen
    role_change = next(e for e in entries if e["table_name"] == "memberships" and e["action"] == "update")
    assert role_change["actor_id"] == admin["user"]["id"]
    assert (role_change["old_data"]["role"], role_change["new_data"]["role"]) == ("coach", "trainee")
    assert "password_hash" not in str(entries) and admin["user"]["email"] not in str(entries)
    bad = await client.get("/api/audit", params={"limit": 0}, headers=bearer(admin))
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "limit"


async def test_export_holds_everything_the_caller_owns_and_nothing_of_others(client, db):
    admin = await signup(client)
    rep = await signup(client, invite_code=await invite(client, admin, "trainee"))
    mine = await add_session(db, rep, text="my own words")
    await add_session(db, admin, text="the admin's words")
    await client.post("/api/curriculum/discovery/complete", headers=bearer(rep))
    response = await client.post("/api/user/export", headers=bearer(rep))
    assert response.status_code == 200
    export = response.json()
    assert export["profile"]["email"] == rep["user"]["email"] and "password_hash" not in export["profile"]
    assert [m["role"] for m in export["memberships"]] == ["trainee"]
    assert [s["id"] for s in export["sessions"]] == [str(mine)]
    session = export["sessions"][0]
    assert session["events"][0]["payload"] == {"text": "my own words"}
    assert session["transcript"][0]["text"] == "my own words"
    assert session["scores"][0]["overall"] == 45
    assert export["uploads"] == []
    assert [p["module_id"] for p in export["curriculum_progress"]] == ["discovery"]
    assert "the admin's words" not in response.text


async def test_coach_export_is_only_their_own_data(client, db):
    admin = await signup(client)
    coach = await signup(client, invite_code=await invite(client, admin, "coach"))
    await add_session(db, admin)
    export = (await client.post("/api/user/export", headers=bearer(coach))).json()
    assert export["sessions"] == []


async def test_deleted_account_loses_its_data_keeps_an_anonymous_audit_row_and_cannot_log_in(client, db):
    admin = await signup(client)
    rep = await signup(client, invite_code=await invite(client, admin, "trainee"))
    session = await add_session(db, rep)
    blob = await db.fetchval(
        "INSERT INTO blobs (org_id, owner_id, content_type) VALUES ($1, $2, 'audio/wav') RETURNING id",
        uuid.UUID(rep["org"]["id"]), uuid.UUID(rep["user"]["id"]))
    await db.execute("INSERT INTO blob_chunks (blob_id, idx, org_id, data) VALUES ($1, 0, $2, 'pcm')",
                     blob, uuid.UUID(rep["org"]["id"]))
    response = await client.post("/api/user/delete", headers=bearer(rep))
    assert response.status_code == 204
    user_id = uuid.UUID(rep["user"]["id"])
    for sql in ("SELECT count(*) FROM users WHERE id = $1", "SELECT count(*) FROM memberships WHERE user_id = $1",
                "SELECT count(*) FROM roleplay_sessions WHERE user_id = $1",
                "SELECT count(*) FROM blobs WHERE owner_id = $1",
                "SELECT count(*) FROM refresh_tokens WHERE user_id = $1"):
        assert await db.fetchval(sql, user_id) == 0, sql
    assert await db.fetchval("SELECT count(*) FROM session_events WHERE session_id = $1", session) == 0
    assert await db.fetchval("SELECT count(*) FROM blob_chunks WHERE blob_id = $1", blob) == 0
    deletion = await db.fetchrow(
        "SELECT * FROM audit_log WHERE table_name = 'users' AND action = 'delete' AND row_id = $1", str(user_id))
    assert deletion is not None and deletion["actor_id"] == user_id
    assert rep["user"]["email"] not in deletion["old_data"] and "Pat Rep" not in deletion["old_data"]
    login = await client.post("/api/auth/login", json={"email": rep["user"]["email"], "password": PASSWORD})
    assert login.status_code == 401
    assert (await client.get("/api/me", headers=bearer(rep))).status_code == 401


async def test_only_admin_with_other_members_cannot_delete_themselves(client):
    admin = await signup(client)
    await signup(client, invite_code=await invite(client, admin, "trainee"))
    response = await client.post("/api/user/delete", headers=bearer(admin))
    assert response.status_code == 409 and response.json()["error"]["code"] == "last_admin"


async def test_sole_member_deleting_themselves_removes_the_org(client, db):
    alone = await signup(client)
    assert (await client.post("/api/user/delete", headers=bearer(alone))).status_code == 204
    assert await db.fetchval("SELECT count(*) FROM organizations WHERE id = $1", uuid.UUID(alone["org"]["id"])) == 0


async def test_curriculum_lists_modules_with_my_progress(client):
    admin = await signup(client)
    rep = await signup(client, invite_code=await invite(client, admin, "trainee"))
    items = (await client.get("/api/curriculum", headers=bearer(rep))).json()["items"]
    assert len(items) >= 6
    assert {"cold-call-opening", "discovery", "active-listening", "objection-handling", "value-articulation",
            "closing"} <= {m["id"] for m in items}
    assert all(m["status"] == "not_started" for m in items)
    done = await client.post("/api/curriculum/objection-handling/complete", headers=bearer(rep))
    assert done.status_code == 200
    assert done.json()["status"] == "completed" and done.json()["completed_at"]
    again = await client.post("/api/curriculum/objection-handling/complete", headers=bearer(rep))
    assert again.json()["completed_at"] == done.json()["completed_at"]
    mine = {m["id"]: m["status"] for m in (await client.get("/api/curriculum", headers=bearer(rep))).json()["items"]}
    assert mine["objection-handling"] == "completed"
    theirs = {m["id"]: m["status"]
              for m in (await client.get("/api/curriculum", headers=bearer(admin))).json()["items"]}
    assert theirs["objection-handling"] == "not_started"
    missing = await client.post("/api/curriculum/juggling/complete", headers=bearer(rep))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
