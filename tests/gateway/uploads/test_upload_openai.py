"""Uploads transcribed by OpenAI `whisper-1` (the in-process fake speaking its wire protocol):
verbose_json with word timestamps is asked for, a 500 is retried and the job succeeds, and a
transcriber that always fails ends the job `failed` after 3 attempts with the reason."""

import uuid

import asyncpg
import pytest

from gateway.app import create_app, serve_app
from tests.conftest import make_settings
from tests.fakes.openai_server import FakeOpenAI
from tests.fixtures.recordings import dialogue, mix, write_audio
from tests.gateway.accounts_helpers import bearer, signup
from tests.gateway.uploads.helpers import job_done, sse, upload_file
from tests.servers import run_asgi


@pytest.fixture(scope="module")
def fake():
    fake = FakeOpenAI()
    with run_asgi(fake.app()) as url:
        yield fake, url + "/v1"


@pytest.fixture(scope="module")
def base_url(module_database_url, fake):
    settings = make_settings(module_database_url, openai_api_key="sk-test", openai_base_url=fake[1],
                             stt_provider="openai", tts_provider="local", llm_provider="scripted", hints_llm="off",
                             scorer="heuristic", rate_limit_upload="1000/hour")
    with run_asgi(serve_app(create_app(settings))) as url:
        yield url


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    rep, buyer, _ = dialogue(turns=2)
    return write_audio(tmp_path_factory.mktemp("rec") / "call.mp3", mix(rep, buyer), "mp3")


async def test_a_server_error_is_retried_and_the_upload_is_transcribed_and_scored(client, fake, recording):
    openai, _ = fake
    openai.transcriptions.clear()
    openai.transcription_failing, openai.transcription_failures = False, 1
    auth = await signup(client)
    created = (await upload_file(client, auth, recording)).json()
    events = await sse(client, auth, f"/api/analyze/{created['job_id']}/stream")
    assert events[-1][0] == "done", events[-3:]
    assert len(openai.transcriptions) == 2  # the 500, then the answer
    form = openai.transcriptions[-1]
    assert form["model"] == "whisper-1" and form["response_format"] == "verbose_json"
    assert set(form["timestamp_granularities[]"]) == {"segment", "word"}
    detail = (await client.get(f"/api/uploads/{created['id']}", headers=bearer(auth))).json()
    assert detail["status"] == "scored" and openai.transcript.split()[0].rstrip(",") in detail["transcript"][0]["text"]


async def test_a_transcriber_that_always_fails_ends_the_job_failed_with_the_reason(
        client, fake, recording, module_database_url):
    openai, _ = fake
    openai.transcriptions.clear()
    openai.transcription_failing = True
    try:
        auth = await signup(client)
        created = (await upload_file(client, auth, recording)).json()
        detail = await job_done(client, auth, created["id"], timeout=60)
    finally:
        openai.transcription_failing = False
    assert detail["job"]["status"] == "failed" and detail["status"] == "failed"
    assert "HTTP 500" in detail["job"]["error"] and "3 attempts" in detail["job"]["error"], detail["job"]
    assert detail["error"] and "HTTP 500" in detail["error"]
    assert len(openai.transcriptions) == 3
    score = await client.get(f"/api/uploads/{created['id']}/score", headers=bearer(auth))
    assert score.status_code == 404
    body = score.json()["error"]
    assert body["code"] == "score_not_ready" and body["job"]["status"] == "failed" and "HTTP 500" in body["message"]
    events = await sse(client, auth, f"/api/analyze/{created['job_id']}/stream")
    assert events[-1][0] == "status" and events[-1][1]["status"] == "failed"
    conn = await asyncpg.connect(module_database_url)
    try:
        attempts = await conn.fetchval("SELECT attempts FROM jobs WHERE id = $1", uuid.UUID(created["job_id"]))
    finally:
        await conn.close()
    assert attempts == 1  # retried within the attempt (3 requests), then failed for good

    # Asking again queues a new transcription that now succeeds.
    again = await client.post("/api/analyze/transcribe", json={"upload_id": created["id"]}, headers=bearer(auth))
    assert again.status_code == 202 and again.json()["job_id"] != created["job_id"]
    assert (await job_done(client, auth, created["id"]))["status"] == "scored"
