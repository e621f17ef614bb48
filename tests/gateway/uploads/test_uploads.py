"""Recorded calls through the running app with the local model: synthesized two-voice calls,
stereo and mono, WAV and compressed, uploaded, transcribed, their speakers labelled, scored and
streamed; the review's data; speakers swapped and rescored; access, listing, deletion, export."""

import uuid

import asyncpg
import httpx
import pytest

from gateway.app import create_app, serve_app
from tests.conftest import make_settings
from tests.fixtures.recordings import dialogue, mix, stereo, write_audio
from tests.fixtures.speech import word_error_rate
from tests.gateway.accounts_helpers import bearer, invite, signup
from tests.gateway.uploads.helpers import job_done, sse, upload_file
from tests.servers import run_asgi

KEYS = ["opening", "discovery", "listening", "value", "objections", "closing"]


@pytest.fixture(scope="module")
def base_url(module_database_url):
    settings = make_settings(module_database_url, stt_provider="local", tts_provider="local", llm_provider="scripted",
                             hints_llm="off", scorer="heuristic", rate_limit_upload="1000/hour")
    with run_asgi(serve_app(create_app(settings))) as url:
        yield url


@pytest.fixture(scope="module")
def call():
    return dialogue()


@pytest.fixture
async def team(client):
    admin = await signup(client)
    rep = await signup(client, invite_code=await invite(client, admin, "trainee"))
    other = await signup(client, invite_code=await invite(client, admin, "trainee"))
    coach = await signup(client, invite_code=await invite(client, admin, "coach"))
    return {"admin": admin, "rep": rep, "other": other, "coach": coach}


def said(transcript, speaker):
    return " ".join(s["text"] for s in transcript if s["speaker"] == speaker)


def script_of(script, speaker):
    return " ".join(text for who, text in script if who == speaker)


async def test_a_stereo_flac_is_split_by_channel_transcribed_scored_and_streamed_to_the_end(
        client, team, call, tmp_path):
    rep, buyer, script = call
    path = write_audio(tmp_path / "call.flac", stereo(buyer, rep), "flac")  # the rep on the right
    response = await upload_file(client, team["rep"], path, name="call.bin", declared="application/octet-stream",
                                 title="Dana at Acme", rep_channel="right")
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["status"] == "uploaded" and set(created) == {"id", "job_id", "status"}

    events = await sse(client, team["rep"], f"/api/analyze/{created['job_id']}/stream")
    statuses = [d for k, d in events if k == "status"]
    stages = [s["stage"] for s in statuses]
    # the stream sends the job's state each time it looks, so a stage that passes between two looks
    # (labelling a stereo file is one statement) may not be seen; what is seen comes in pipeline order
    order = [None, "received", "transcribing", "labelling", "scoring", "done"]
    seen = [stage for i, stage in enumerate(stages) if i == 0 or stages[i - 1] != stage]
    assert all(stage in order for stage in seen) and seen == sorted(seen, key=order.index), stages
    assert "transcribing" in seen and seen[-1] == "done", stages
    percents = [s["percent"] for s in statuses if s.get("percent") is not None]
    assert percents == sorted(percents) and percents[-1] == 100, percents
    assert {d["key"] for k, d in events if k == "dimension"} == set(KEYS)
    kind, done = events[-1]
    assert kind == "done" and done["upload_id"] == created["id"] and [d["key"] for d in done["dimensions"]] == KEYS

    detail = (await client.get(f"/api/uploads/{created['id']}", headers=bearer(team["rep"]))).json()
    assert detail["status"] == "scored" and detail["title"] == "Dana at Acme" and detail["channels"] == 2
    assert detail["speakers"] == {"mode": "channels", "method": "channels", "rep_channel": "right"}
    length_ms = len(rep) // 2 * 1000 // 16000  # the synthesized voices vary a little from run to run
    assert detail["content_type"] == "audio/flac" and abs(detail["duration_ms"] - length_ms) <= 50
    assert not any(s["inferred"] for s in detail["transcript"])
    assert word_error_rate(script_of(script, "rep"), said(detail["transcript"], "rep")) <= 0.2
    assert word_error_rate(script_of(script, "buyer"), said(detail["transcript"], "buyer")) <= 0.2

    score = await client.get(f"/api/uploads/{created['id']}/score", headers=bearer(team["rep"]))
    assert score.status_code == 200 and score.json() == done
    segment_ids = {s["segment_id"] for s in detail["transcript"]}
    for dimension in done["dimensions"]:
        for check in dimension["checks"]:
            assert check["evidence"]["segment_id"] in segment_ids
    audio = await client.get(f"/api/uploads/{created['id']}/recording", headers=bearer(team["rep"]))
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/flac"
    assert audio.content == path.read_bytes()


@pytest.mark.parametrize("fmt", ["mp3", "ogg", "wav", "m4a"])
async def test_a_mono_recording_gets_inferred_speakers_from_the_voices(client, team, call, tmp_path, fmt):
    rep, buyer, script = call
    path = write_audio(tmp_path / f"call.{fmt}", mix(rep, buyer), fmt)
    response = await upload_file(client, team["rep"], path, name="call.wav")
    assert response.status_code == 201, response.text
    detail = await job_done(client, team["rep"], response.json()["id"])
    assert detail["job"]["status"] == "done" and detail["status"] == "scored", detail["job"]
    assert detail["channels"] == 1 and detail["speakers"]["mode"] == "inferred"
    assert detail["speakers"]["method"] == "voice-clustering"
    assert all(s["inferred"] for s in detail["transcript"])
    transcript = detail["transcript"]
    assert word_error_rate(" ".join(t for _, t in script), " ".join(s["text"] for s in transcript)) <= 0.2
    assert word_error_rate(script_of(script, "rep"), said(transcript, "rep")) <= 0.2
    assert word_error_rate(script_of(script, "buyer"), said(transcript, "buyer")) <= 0.2


async def test_swapping_the_speakers_rescores_the_call_and_keeps_the_history(client, team, call, tmp_path):
    rep, buyer, _ = call
    path = write_audio(tmp_path / "call.mp3", mix(rep, buyer), "mp3")
    upload_id = (await upload_file(client, team["rep"], path)).json()["id"]
    before = await job_done(client, team["rep"], upload_id)
    first = (await client.get(f"/api/uploads/{upload_id}/score", headers=bearer(team["rep"]))).json()

    refused = await client.patch(f"/api/uploads/{upload_id}/speakers", json={"swap": True},
                                 headers=bearer(team["other"]))
    assert refused.status_code == 404
    response = await client.patch(f"/api/uploads/{upload_id}/speakers", json={"swap": True},
                                  headers=bearer(team["rep"]))
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    events = await sse(client, team["rep"], f"/api/analyze/{job_id}/stream")
    assert events[-1][0] == "done"
    after = await job_done(client, team["rep"], upload_id)
    assert [s["speaker"] for s in after["transcript"]] == [
        {"rep": "buyer", "buyer": "rep"}[s["speaker"]] for s in before["transcript"]]
    assert after["speakers"]["mode"] == "confirmed" and not any(s["inferred"] for s in after["transcript"])
    second = (await client.get(f"/api/uploads/{upload_id}/score", headers=bearer(team["rep"]))).json()
    assert second["id"] != first["id"] and second == events[-1][1]

    one = after["transcript"][0]
    fixed = await client.patch(f"/api/uploads/{upload_id}/speakers",
                               json={"segments": {one["segment_id"]: "rep" if one["speaker"] == "buyer" else "buyer"}},
                               headers=bearer(team["rep"]))
    assert fixed.status_code == 202
    bad = await client.patch(f"/api/uploads/{upload_id}/speakers", json={"segments": {"nope": "rep"}},
                             headers=bearer(team["rep"]))
    assert bad.status_code in (400, 409) and bad.json()["error"]["code"] in ("invalid_field", "busy")


async def test_uploads_are_listed_for_their_rep_and_staff_only_and_deleting_removes_the_audio(
        client, team, call, tmp_path, module_database_url):
    rep, buyer, _ = call
    path = write_audio(tmp_path / "call.wav", mix(rep, buyer), "wav")
    upload_id = (await upload_file(client, team["rep"], path)).json()["id"]
    mine = (await client.get("/api/uploads", headers=bearer(team["rep"]))).json()["items"]
    assert [u["id"] for u in mine] == [upload_id]
    assert (await client.get("/api/uploads", headers=bearer(team["other"]))).json()["items"] == []
    assert (await client.get(f"/api/uploads/{upload_id}", headers=bearer(team["other"]))).status_code == 404
    staff = (await client.get("/api/uploads", headers=bearer(team["coach"]))).json()["items"]
    assert upload_id in [u["id"] for u in staff]
    await job_done(client, team["rep"], upload_id)

    exported = (await client.post("/api/user/export", headers=bearer(team["rep"]))).json()
    assert [u["id"] for u in exported["uploads"]] == [upload_id] and exported["uploads"][0]["transcript"]
    assert exported["uploads"][0]["scores"]

    assert (await client.delete(f"/api/uploads/{upload_id}", headers=bearer(team["other"]))).status_code == 404
    assert (await client.delete(f"/api/uploads/{upload_id}", headers=bearer(team["rep"]))).status_code == 204
    assert (await client.get(f"/api/uploads/{upload_id}", headers=bearer(team["rep"]))).status_code == 404
    conn = await asyncpg.connect(module_database_url)
    try:
        uid = uuid.UUID(upload_id)
        assert await conn.fetchval("SELECT count(*) FROM call_uploads WHERE id = $1", uid) == 0
        assert await conn.fetchval("SELECT count(*) FROM transcript_segments WHERE upload_id = $1", uid) == 0
        assert await conn.fetchval("SELECT count(*) FROM jobs WHERE upload_id = $1", uid) == 0
        owner = uuid.UUID(team["rep"]["user"]["id"]) if "user" in team["rep"] else None
        if owner is not None:
            assert await conn.fetchval("SELECT count(*) FROM blobs WHERE owner_id = $1", owner) == 0
    finally:
        await conn.close()


async def test_deleting_the_account_removes_its_uploads_and_their_audio(client, call, tmp_path, module_database_url):
    rep_auth = await signup(client)
    rep, buyer, _ = call
    path = write_audio(tmp_path / "call.ogg", mix(rep, buyer), "ogg")
    upload_id = (await upload_file(client, rep_auth, path)).json()["id"]
    await job_done(client, rep_auth, upload_id)
    conn = await asyncpg.connect(module_database_url)
    try:
        blob_id = await conn.fetchval("SELECT blob_id FROM call_uploads WHERE id = $1", uuid.UUID(upload_id))
        assert blob_id is not None
        assert (await client.post("/api/user/delete", headers=bearer(rep_auth))).status_code == 204
        assert await conn.fetchval("SELECT count(*) FROM call_uploads WHERE id = $1", uuid.UUID(upload_id)) == 0
        assert await conn.fetchval("SELECT count(*) FROM blobs WHERE id = $1", blob_id) == 0
        assert await conn.fetchval("SELECT count(*) FROM blob_chunks WHERE blob_id = $1", blob_id) == 0
    finally:
        await conn.close()


async def test_a_job_stopped_mid_transcription_resumes_after_its_last_chunk_on_restart(
        database_url, call, tmp_path):
    rep, buyer, _ = call
    long_call = mix(rep, buyer) * 3  # about 90 s: nine 10 s chunks
    path = write_audio(tmp_path / "long.wav", long_call, "wav")
    settings = make_settings(database_url, stt_provider="local", tts_provider="local", llm_provider="scripted",
                             hints_llm="off", scorer="heuristic", upload_chunk_seconds="10")
    conn = await asyncpg.connect(database_url)
    try:
        with run_asgi(serve_app(create_app(settings))) as url:
            async with httpx.AsyncClient(base_url=url, timeout=60) as client:
                auth = await signup(client)
                created = (await upload_file(client, auth, path)).json()

                async def started():
                    row = await conn.fetchrow("SELECT progress ->> 'transcribed_ms' AS at, status FROM jobs"
                                              " WHERE id = $1", uuid.UUID(created["job_id"]))
                    return row["at"] is not None and int(row["at"]) > 0
                from tests.gateway.accounts_helpers import eventually
                assert await eventually(started, timeout=120, interval=0.05)
        # The instance stopped with the job running: its lease runs out (here: at once).
        row = await conn.fetchrow("SELECT status, progress ->> 'transcribed_ms' AS at FROM jobs WHERE id = $1",
                                  uuid.UUID(created["job_id"]))
        assert row["status"] == "running", "the job finished before the instance stopped; make the call longer"
        stopped_at = int(row["at"])
        await conn.execute("UPDATE jobs SET locked_until = now() - interval '1 second' WHERE id = $1",
                           uuid.UUID(created["job_id"]))
        with run_asgi(serve_app(create_app(settings))) as url:
            async with httpx.AsyncClient(base_url=url, timeout=60) as client:
                detail = await job_done(client, auth, created["id"])
        job = await conn.fetchrow("SELECT status, attempts, progress FROM jobs WHERE id = $1",
                                  uuid.UUID(created["job_id"]))
        import json
        progress = json.loads(job["progress"])
        assert job["status"] == "done" and job["attempts"] == 2
        assert progress["resumed_from_ms"] >= stopped_at > 0 and progress["score_id"]
        starts = [s["start_ms"] for s in detail["transcript"]]
        assert starts == sorted(starts) and len({s["segment_id"] for s in detail["transcript"]}) == len(starts)
        assert detail["transcript"][-1]["end_ms"] > 80_000
    finally:
        await conn.close()


async def test_a_scored_upload_is_in_the_reps_progress_trend_and_counts_in_the_team_rollup(client, team, call,
                                                                                         tmp_path):
    rep, buyer, _ = call
    path = write_audio(tmp_path / "trend.mp3", mix(rep, buyer), "mp3")
    created = (await upload_file(client, team["rep"], path, title="Trend call")).json()
    detail = await job_done(client, team["rep"], created["id"])
    assert detail["status"] == "scored", detail
    card = (await client.get(f"/api/uploads/{created['id']}/score", headers=bearer(team["rep"]))).json()

    trend = (await client.get("/api/progress", headers=bearer(team["rep"]))).json()["trend"]
    assert [(t["kind"], t["upload_id"], t["session_id"]) for t in trend] == [("upload", created["id"], None)]
    assert trend[0]["persona_name"] == "Trend call" and trend[0]["overall"] == card["overall"]
    assert trend[0]["dimensions"] == {d["key"]: d["score"] for d in card["dimensions"]}

    rollup = (await client.get("/api/team", params={"period": "month"}, headers=bearer(team["coach"]))).json()
    rows = {r["user_id"]: r for r in rollup["reps"]}
    mine = rows[team["rep"]["user"]["id"]]
    assert (mine["calls"], mine["scored"], mine["average"]) == (1, 1, round(card["overall"], 1))
    assert rows[team["other"]["user"]["id"]]["scored"] == 0
