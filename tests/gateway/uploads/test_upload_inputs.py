"""Every bad upload gets its status and a message saying what was wrong (never a 500), the
format comes from the bytes (a text file named .wav is 415), the upload rate limit applies, and
nothing is left behind by a refused upload."""

import io
import uuid
import wave

import asyncpg
import pytest

from gateway.app import create_app, serve_app
from tests.conftest import make_settings
from tests.fixtures.recordings import write_audio
from tests.fixtures.speech import silence, speech_pcm
from tests.gateway.accounts_helpers import bearer, signup
from tests.gateway.uploads.helpers import upload_file
from tests.servers import run_asgi

MAX_BYTES = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def base_url(module_database_url):
    settings = make_settings(module_database_url, stt_provider="local", tts_provider="local", llm_provider="scripted",
                             hints_llm="off", scorer="heuristic", max_upload_bytes=str(MAX_BYTES),
                             max_upload_seconds="60", rate_limit_upload="3/hour")
    with run_asgi(serve_app(create_app(settings))) as url:
        yield url


def wav_bytes(pcm: bytes, rate: int = 16000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return out.getvalue()


def flac_bytes(tmp_path, pcm: bytes) -> bytes:
    return write_audio(tmp_path / "x.flac", pcm, "flac").read_bytes()


SPEECH = speech_pcm("How does your month end close work today?")


@pytest.mark.parametrize(("case", "status", "code", "words"), [
    ("text_named_wav", 415, "unsupported_audio", "not audio"),
    ("png", 415, "unsupported_audio", "not audio"),
    ("empty", 400, "empty_file", "empty"),
    ("truncated_wav", 400, "undecodable_audio", "truncated"),
    ("truncated_flac", 400, "undecodable_audio", "truncated"),
    ("garbage_after_header", 400, "undecodable_audio", "decoded"),
    ("too_short", 400, "audio_too_short", "at least 2 s"),
    ("too_long", 400, "audio_too_long", "60"),
    ("too_large", 413, "upload_too_large", "larger than 2 MB"),
    ("no_file_field", 400, "missing_field", "file"),
    ("bad_rep_channel", 400, "invalid_field", "left or right"),
    ("not_multipart", 400, "bad_request", "multipart"),
])
async def test_a_bad_upload_gets_its_status_and_a_message(client, tmp_path, module_database_url, case, status, code,
                                                           words):
    auth = await signup(client)
    fields: dict = {}
    if case == "text_named_wav":
        content = b"Dear customer, this is a letter and not a recording at all.\n" * 20
    elif case == "png":
        content = b"\x89PNG\r\n\x1a\n" + bytes(2000)
    elif case == "empty":
        content = b""
    elif case == "truncated_wav":
        content = wav_bytes(SPEECH + silence(3000))[:20000]
    elif case == "truncated_flac":
        whole = flac_bytes(tmp_path, SPEECH + silence(3000))
        content = whole[: len(whole) // 3]
    elif case == "garbage_after_header":
        content = b"RIFF\x24\x00\x10\x00WAVEjunk" + bytes(range(256)) * 40
    elif case == "too_short":
        content = wav_bytes(speech_pcm("Hi."))
    elif case == "too_long":
        content = wav_bytes(silence(61_000, rate=8000), rate=8000)
    elif case == "too_large":
        content = wav_bytes(silence(70_000))  # 2.2 MB
    elif case == "bad_rep_channel":
        content, fields = wav_bytes(SPEECH + silence(2000)), {"rep_channel": "middle"}
    if case == "no_file_field":
        response = await client.post("/api/analyze/upload", data={"title": "x"}, files={"other": ("a", b"b")},
                                     headers=bearer(auth))
    elif case == "not_multipart":
        response = await client.post("/api/analyze/upload", content=wav_bytes(SPEECH),
                                     headers={**bearer(auth), "Content-Type": "audio/wav"})
    else:
        response = await upload_file(client, auth, content=content, name="call.wav", **fields)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and words in error["message"], error
    conn = await asyncpg.connect(module_database_url)
    try:
        owner = uuid.UUID(auth["user"]["id"])
        assert await conn.fetchval("SELECT count(*) FROM call_uploads WHERE user_id = $1", owner) == 0
        assert await conn.fetchval("SELECT count(*) FROM blobs WHERE owner_id = $1", owner) == 0
    finally:
        await conn.close()


async def test_uploads_over_the_rate_limit_are_refused_with_retry_after(client):
    auth = await signup(client)
    for _ in range(3):
        assert (await upload_file(client, auth, content=b"", name="a.wav")).status_code == 400
    refused = await upload_file(client, auth, content=b"", name="a.wav")
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["retry-after"]) > 0


async def test_an_upload_without_a_token_is_401(client):
    response = await upload_file(client, {"access_token": "not-a-token"}, content=b"RIFF")
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_token"


async def test_a_malformed_or_overlong_form_is_400_not_500(client):
    auth = await signup(client)
    boundary = "xyz"
    truncated = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\n"
                 "RIFF....WAVE").encode()
    headers = {**bearer(auth), "Content-Type": f"multipart/form-data; boundary={boundary}"}
    response = await client.post("/api/analyze/upload", content=truncated, headers=headers)
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_request"
    many = "".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"f{i}\"\r\n\r\nx\r\n" for i in range(20))
    body = (many + f"--{boundary}--\r\n").encode()
    response = await client.post("/api/analyze/upload", content=body, headers=headers)
    assert response.status_code == 400, response.text
