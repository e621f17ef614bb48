"""Scoring after the call, through the running app: the job queued when a call ends, the
scorecard it stores, its progress streamed as Server-Sent Events, rescoring, the org's settings,
progress and team rollups."""

import json
import uuid

import asyncpg
import pytest

from tests.gateway.accounts_helpers import bearer, eventually, invite, signup
from tests.gateway.live_client import LiveClient
from tests.gateway.sse_client import sse

KEYS = ["opening", "discovery", "listening", "value", "objections", "closing"]
LINES = [
    "Hi Dana, this is Sam from Ledgerly. I'm calling because finance teams like yours tell us month end is slow."
    " Do you have two minutes?",
    "How does your month end close work today?",
    "What does that delay cost the team?",
    "It sounds like the reconciliations eat most of that time. Who else would be involved in a decision?",
    "Could we book thirty minutes next Tuesday at 10 with your controller to walk through it?",
]


@pytest.fixture
async def team(client):
    admin = await signup(client)
    coach = await signup(client, invite_code=await invite(client, admin, "coach"))
    rep = await signup(client, invite_code=await invite(client, admin, "trainee"))
    other = await signup(client, invite_code=await invite(client, admin, "trainee"))
    return {"admin": admin, "coach": coach, "rep": rep, "other": other}


async def practice_call(base_url, client, auth, lines=LINES) -> str:
    """A typed practice call with the scripted persona, ended by the rep; returns the session id."""
    response = await client.post("/api/sessions", json={"persona_id": "skeptical-cfo"}, headers=bearer(auth))
    assert response.status_code == 201, response.text
    sid = response.json()["id"]
    call = await LiveClient(base_url, sid, auth["access_token"]).open()
    try:
        await call.greeting()
        for line in lines:
            await call.talk(line)
        await call.send({"type": "end"})
        await call.wait_for(lambda e: e["type"] == "session.ended")
    finally:
        await call.close()
    return sid


async def scorecard(client, auth, sid, timeout=30.0) -> dict:
    async def ready():
        response = await client.get(f"/api/sessions/{sid}/score", headers=bearer(auth))
        return response.json() if response.status_code == 200 else None
    card = await eventually(ready, timeout=timeout)
    assert card, "no scorecard appeared"
    return card


async def test_an_ended_practice_call_is_scored_once_with_six_dimensions_and_evidence(
        base_url, client, team, module_database_url):
    sid = await practice_call(base_url, client, team["rep"])
    card = await scorecard(client, team["rep"], sid)
    assert [d["key"] for d in card["dimensions"]] == KEYS
    assert card["scorer"] == "heuristic" and card["session_id"] == sid and card["pass_mark"] == 70
    transcript = (await client.get(f"/api/sessions/{sid}", headers=bearer(team["rep"]))).json()["transcript"]
    segment_ids = {s["segment_id"] for s in transcript}
    for dimension in card["dimensions"]:
        assert 0 <= dimension["score"] <= 100 and dimension["checks"]
        for check in dimension["checks"]:
            assert check["evidence"]["segment_id"] in segment_ids
            assert (check["feedback"] is None) == check["passed"]
    assert {"talk_ratio", "longest_monologue_s", "questions_asked", "next_step_agreed"} <= set(card["metrics"])

    # The call's log carries score.ready after session.ended, numbered like every event.
    events = (await client.get(f"/api/sessions/{sid}/events?limit=1000", headers=bearer(team["rep"]))).json()["items"]
    kinds = [e["type"] for e in events]
    assert kinds[-2:] == ["session.ended", "score.ready"], kinds[-3:]
    assert events[-1]["seq"] == events[-2]["seq"] + 1 and events[-1]["score_id"] == card["id"]
    assert events[-1]["overall"] == card["overall"]

    listed = (await client.get("/api/sessions", headers=bearer(team["rep"]))).json()["items"]
    assert listed[0]["id"] == sid and listed[0]["score"] == card["overall"] and listed[0]["passed"] == card["passed"]
    assert listed[0]["duration_ms"] > 0
    conn = await asyncpg.connect(module_database_url)
    try:
        rows = await conn.fetchval("SELECT count(*) FROM session_scores WHERE session_id = $1", uuid.UUID(sid))
        job = await conn.fetchrow("SELECT status, attempts FROM jobs WHERE session_id = $1", uuid.UUID(sid))
    finally:
        await conn.close()
    assert rows == 1 and (job["status"], job["attempts"]) == ("done", 1)


async def test_the_score_stream_reports_progress_then_the_scorecard_also_to_a_late_subscriber(
        base_url, client, team):
    sid = await practice_call(base_url, client, team["rep"])
    live = await sse(client, team["rep"], f"/api/sessions/{sid}/score/stream")
    kinds = [k for k, _ in live]
    assert kinds[0] == "status" and kinds[-1] == "done", kinds
    assert {d["key"] for k, d in live if k == "dimension"} == set(KEYS)
    done = live[-1][1]
    assert [d["key"] for d in done["dimensions"]] == KEYS

    late = await sse(client, team["rep"], f"/api/sessions/{sid}/score/stream")
    assert late[0] == ("status", {"job_id": late[0][1]["job_id"], "status": "done", "stage": "done", "error": None})
    assert {d["key"] for k, d in late if k == "dimension"} == set(KEYS)
    assert late[-1] == ("done", done)
    # The job stream is the same stream, by job id.
    by_job = await sse(client, team["coach"], f"/api/analyze/{late[0][1]['job_id']}/stream")
    assert by_job[-1] == ("done", done)


async def test_rescoring_keeps_history_and_only_the_rep_or_staff_may_ask(base_url, client, team):
    sid = await practice_call(base_url, client, team["rep"])
    first = await scorecard(client, team["rep"], sid)
    assert (await client.post("/api/analyze/score", json={"session_id": sid},
                              headers=bearer(team["other"]))).status_code == 404  # not theirs to see
    response = await client.post("/api/analyze/score", json={"session_id": sid}, headers=bearer(team["coach"]))
    assert response.status_code == 202 and response.json()["status"] == "queued"
    stream = await sse(client, team["coach"], f"/api/analyze/{response.json()['job_id']}/stream")
    assert stream[-1][0] == "done" and stream[-1][1]["id"] != first["id"]
    history = (await client.get(f"/api/sessions/{sid}/scores", headers=bearer(team["rep"]))).json()["items"]
    assert [s["id"] for s in history] == [stream[-1][1]["id"], first["id"]]
    latest = (await client.get(f"/api/sessions/{sid}/score", headers=bearer(team["rep"]))).json()
    assert latest["id"] == stream[-1][1]["id"]
    assert latest["dimensions"] == first["dimensions"], "the heuristic scorer is deterministic"


async def test_a_call_not_ended_cannot_be_scored_and_says_why(client, team):
    sid = (await client.post("/api/sessions", json={"persona_id": "skeptical-cfo"},
                             headers=bearer(team["rep"]))).json()["id"]
    response = await client.post("/api/analyze/score", json={"session_id": sid}, headers=bearer(team["rep"]))
    assert response.status_code == 409 and response.json()["error"]["code"] == "call_not_ended"
    missing = await client.get(f"/api/sessions/{sid}/score", headers=bearer(team["rep"]))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_scored"
    gone = await client.get(f"/api/sessions/{uuid.uuid4()}/score", headers=bearer(team["rep"]))
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
    bad = await client.post("/api/analyze/score", json={"session_id": "nope"}, headers=bearer(team["rep"]))
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "session_id"


async def test_a_call_where_the_rep_said_nothing_is_not_scored_and_says_so(base_url, client, team):
    sid = await practice_call(base_url, client, team["rep"], lines=[])

    async def settled():
        response = await client.get(f"/api/sessions/{sid}/score", headers=bearer(team["rep"]))
        body = response.json()
        return body if (body["error"].get("job") or {}).get("status") == "done" else None
    body = await eventually(settled, timeout=20)
    assert body and "nothing the rep said" in body["error"]["message"]
    assert body["error"]["job"]["status"] == "done"


async def test_the_orgs_pass_mark_and_weights_apply_to_the_next_score(base_url, client, team):
    refused = await client.put("/api/orgs/scoring", json={"pass_mark": 10}, headers=bearer(team["coach"]))
    assert refused.status_code == 403
    bad = await client.put("/api/orgs/scoring", json={"pass_mark": 101}, headers=bearer(team["admin"]))
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "pass_mark"
    unknown = await client.put("/api/orgs/scoring", json={"weights": {"charm": 2}}, headers=bearer(team["admin"]))
    assert unknown.status_code == 400
    zero = await client.put("/api/orgs/scoring", json={"weights": {k: 0 for k in KEYS}}, headers=bearer(team["admin"]))
    assert zero.status_code == 400 and zero.json()["error"]["field"] == "weights"
    weights = {"opening": 0, "discovery": 3}
    saved = await client.put("/api/orgs/scoring", json={"weights": weights, "pass_mark": 1},
                             headers=bearer(team["admin"]))
    assert saved.status_code == 200
    assert saved.json() == {"weights": {"opening": 0, "discovery": 3, "listening": 1, "value": 1, "objections": 1,
                                        "closing": 1}, "pass_mark": 1}
    assert (await client.get("/api/orgs/scoring", headers=bearer(team["coach"]))).json() == saved.json()
    assert (await client.get("/api/orgs/scoring", headers=bearer(team["rep"]))).status_code == 403

    sid = await practice_call(base_url, client, team["rep"])
    card = await scorecard(client, team["rep"], sid)
    scores = {d["key"]: d["score"] for d in card["dimensions"]}
    expected = (3 * scores["discovery"] + sum(scores[k] for k in KEYS[2:])) / 7
    assert card["overall"] == pytest.approx(expected, abs=0.051)
    assert card["pass_mark"] == 1 and card["passed"] is (card["overall"] >= 1)


async def test_progress_shows_the_curriculum_best_scores_and_trend_and_team_rolls_reps_up(base_url, client, team):
    sid = await practice_call(base_url, client, team["rep"])
    card = await scorecard(client, team["rep"], sid)
    scores = {d["key"]: d["score"] for d in card["dimensions"]}
    progress = (await client.get("/api/progress", headers=bearer(team["rep"]))).json()
    assert [p["session_id"] for p in progress["trend"]] == [sid]
    assert progress["trend"][0]["dimensions"] == scores
    for module in progress["modules"]:
        assert module["dimension"] in KEYS
        assert module["best_score"] == scores[module["dimension"]]
        assert module["status"] == ("completed" if scores[module["dimension"]] >= 70 else "in_progress")
    assert (await client.get("/api/progress", params={"user_id": team["other"]["user"]["id"]},
                             headers=bearer(team["rep"]))).status_code == 403
    theirs = (await client.get("/api/progress", params={"user_id": team["rep"]["user"]["id"]},
                               headers=bearer(team["coach"]))).json()
    assert theirs["trend"] == progress["trend"]

    assert (await client.get("/api/team", headers=bearer(team["rep"]))).status_code == 403
    rollup = (await client.get("/api/team", params={"period": "month"}, headers=bearer(team["coach"]))).json()
    rows = {r["user_id"]: r for r in rollup["reps"]}
    mine = rows[team["rep"]["user"]["id"]]
    assert (mine["calls"], mine["scored"], mine["average"]) == (1, 1, card["overall"])
    assert mine["dimensions"] == {k: float(v) for k, v in scores.items()}
    assert mine["weakest"] == min(KEYS, key=lambda k: (scores[k], KEYS.index(k)))
    assert rows[team["other"]["user"]["id"]]["scored"] == 0 and rows[team["other"]["user"]["id"]]["weakest"] is None
    filtered = (await client.get("/api/sessions", params={"min_score": card["overall"] + 0.1},
                                 headers=bearer(team["rep"]))).json()["items"]
    assert sid not in [s["id"] for s in filtered]
    kept = (await client.get("/api/sessions", params={"max_score": card["overall"]},
                             headers=bearer(team["rep"]))).json()["items"]
    assert sid in [s["id"] for s in kept]


async def test_live_analytics_are_served_for_the_transcript_so_far(base_url, client, team):
    sid = (await client.post("/api/sessions", json={"persona_id": "skeptical-cfo"},
                             headers=bearer(team["rep"]))).json()["id"]
    call = await LiveClient(base_url, sid, team["rep"]["access_token"]).open()
    try:
        await call.greeting()
        await call.talk("How does your month end close work today?")

        async def counted():
            body = (await client.get(f"/api/sessions/{sid}/analytics", headers=bearer(team["coach"]))).json()
            return body if any(m["value"] for m in body["metrics"].values()) else None
        body = await eventually(counted, timeout=10)
        assert body, "analytics of a live call"
        for metric in body["metrics"].values():
            assert metric["verdict"] in ("good", "watch", "off", "n/a")
    finally:
        await call.close()
    stranger = await signup(client)
    assert (await client.get(f"/api/sessions/{sid}/analytics", headers=bearer(stranger))).status_code == 404


async def test_a_scoring_job_left_running_by_a_dead_instance_is_resumed_by_a_live_one(
        base_url, client, team, module_database_url):
    sid = await practice_call(base_url, client, team["rep"])
    first = await scorecard(client, team["rep"], sid)
    conn = await asyncpg.connect(module_database_url)
    try:
        org = await conn.fetchval("SELECT org_id FROM roleplay_sessions WHERE id = $1", uuid.UUID(sid))
        job = await conn.fetchval(
            "INSERT INTO jobs (org_id, kind, payload, session_id, status, attempts, locked_by, locked_until)"
            " VALUES ($1, 'score_session', $2::jsonb, $3, 'running', 1, 'crashed-instance',"
            " now() + interval '1 second') RETURNING id",
            org, json.dumps({"session_id": sid}), uuid.UUID(sid))

        async def resumed():
            return await conn.fetchrow("SELECT status, attempts FROM jobs WHERE id = $1 AND status = 'done'", job)
        row = await eventually(resumed, timeout=20)
        assert row and row["attempts"] == 2
        scored = await conn.fetchval("SELECT count(*) FROM session_scores WHERE job_id = $1", job)
    finally:
        await conn.close()
    assert scored == 1
    latest = await scorecard(client, team["rep"], sid)
    assert latest["id"] != first["id"]
