"""The live call socket against the running app with the zero-config providers: local speech
recognition and synthesis, the scripted persona, real Postgres."""

import asyncio
import io
import uuid
import wave

import asyncpg
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed

from tests.fixtures.speech import silence, speech_pcm, word_error_rate
from tests.gateway.accounts_helpers import bearer, eventually, invite, signup
from tests.gateway.live_client import LiveClient

# Long enough that one misheard word is not a fifth of the words (WER is a rate, not a match).
QUESTION = "How does your finance team run the month end close process today, and how long does it take?"


@pytest.fixture
async def rep(client):
    return await signup(client)


async def new_session(client, auth, persona_id="skeptical-cfo") -> str:
    response = await client.post("/api/sessions", json={"persona_id": persona_id}, headers=bearer(auth))
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def open_call(base_url, client, auth, **kwargs) -> tuple[str, LiveClient]:
    session_id = await new_session(client, auth)
    call = await LiveClient(base_url, session_id, auth["access_token"]).open(**kwargs)
    return session_id, call


def seqs(events):
    return [e["seq"] for e in events if e["type"] != "transcript.partial"]


async def test_spoken_question_is_transcribed_and_the_persona_answers_in_voice(base_url, client, rep):
    session_id, call = await open_call(base_url, client, rep)
    started = await call.wait_for(lambda e: e["type"] == "session.started")
    assert started["seq"] == 1 and started["protocol"] == 1
    assert started["output_audio"] == {"encoding": "pcm_s16le", "sample_rate": 24000, "channels": 1}
    greeting = await call.wait_for(lambda e: e["type"] == "transcript.final" and e["speaker"] == "persona")
    assert greeting["text"] == "Dana Whitfield. I have a few minutes. What is this about?"
    mark = len(call.events)
    await call.stream(silence(200) + speech_pcm(QUESTION) + silence(900), speed=1.0)
    final = await call.wait_for(lambda e: e["type"] == "transcript.final" and e["speaker"] == "rep", after=mark)
    assert word_error_rate(QUESTION, final["text"]) <= 0.2, final["text"]
    assert final["end_ms"] > final["start_ms"]
    assert call.of_type("transcript.partial"), "partials came while the rep spoke"
    assert all("seq" not in e for e in call.of_type("transcript.partial"))
    reply = await call.wait_for(lambda e: e["type"] == "persona.reply", after=mark)
    assert "eight days" in reply["text"]  # the pain a discovery question earns
    end = await call.wait_for(lambda e: e["type"] == "persona.audio.end" and e["reply_id"] == reply["reply_id"],
                              after=mark)
    assert end["interrupted"] is False
    audio = np.frombuffer(b"".join(call.audio_frames), dtype=np.int16).astype(np.float32)
    assert call.audio[reply["reply_id"]] > 24000 * 2  # over a second of speech
    assert np.sqrt(np.mean(audio ** 2)) > 300, "persona audio is not silence"
    assert seqs(call.events) == list(range(1, len(seqs(call.events)) + 1)), "seq is gap-free from 1"
    await call.close()


async def test_typed_turn_takes_the_same_path_as_speech(base_url, client, rep):
    _, call = await open_call(base_url, client, rep)
    # The greeting is over once what the persona said of it is logged (it follows its audio end).
    await call.wait_for(lambda e: e["type"] == "transcript.final" and e["speaker"] == "persona")
    mark = len(call.events)
    await call.send({"type": "text", "text": "What does pricing look like for a team like yours? How much is budget?"})
    rep_final = await call.wait_for(lambda e: e["type"] == "transcript.final" and e["speaker"] == "rep", after=mark)
    assert rep_final["text"].startswith("What does pricing")
    reply = await call.wait_for(lambda e: e["type"] == "persona.reply", after=mark)
    assert "payback period" in reply["text"]  # price came up: the price objection
    said = await call.wait_for(lambda e: e["type"] == "transcript.final" and e["speaker"] == "persona", after=mark)
    assert said["text"] == reply["text"]
    await call.close()


async def test_events_are_persisted_exactly_as_sent_in_seq_order(base_url, client, rep):
    session_id, call = await open_call(base_url, client, rep)
    await call.greeting()
    await call.send({"type": "text", "text": "How does your month end close process work?"})
    await call.wait_for(lambda e: e["type"] == "transcript.final" and e["speaker"] == "persona", after=6)
    await call.send({"type": "end"})
    assert (await call.wait_closed())[0] == 1000
    ended = call.of_type("session.ended")[0]
    assert ended["reason"] == "rep_ended" and ended["duration_ms"] > 0
    sent = [e for e in call.events if e["type"] not in ("transcript.partial", "pong")]
    stored = (await client.get(f"/api/sessions/{session_id}/events", params={"limit": 1000},
                               headers=bearer(rep))).json()["items"]
    assert stored[:len(sent)] == sent
    assert [e["type"] for e in stored[len(sent):]] in ([], ["score.ready"]), "only the scorecard may follow the call"
    detail = (await client.get(f"/api/sessions/{session_id}", headers=bearer(rep))).json()
    assert detail["status"] == "ended" and detail["end_reason"] == "rep_ended"
    assert [(s["speaker"], s["text"]) for s in detail["transcript"]] == [
        (e["speaker"], e["text"]) for e in sent if e["type"] == "transcript.final"]


async def test_barge_in_stops_persona_audio_and_keeps_only_what_was_said(base_url, client, rep):
    _, call = await open_call(base_url, client, rep)
    await call.greeting()
    mark = len(call.events)
    # Two sentences: about five seconds of persona audio to interrupt.
    await call.send({"type": "text", "text": "Before we start, how much budget do you have for this?"})
    reply = await call.wait_for(lambda e: e["type"] == "persona.reply", after=mark)
    await call.wait_for(lambda e: e["type"] == "persona.audio.start", after=mark)
    await asyncio.sleep(1.2)
    await call.stream(speech_pcm("Sorry, let me stop you there.") + silence(900), speed=1.0)
    end = await call.wait_for(lambda e: e["type"] == "persona.audio.end" and e["reply_id"] == reply["reply_id"],
                              after=mark)
    assert end["interrupted"] is True
    said = await call.wait_for(lambda e: e["type"] == "transcript.final" and e["speaker"] == "persona", after=mark)
    assert said["text"] and len(said["text"]) < len(reply["text"])
    assert reply["text"].startswith(said["text"])
    end_index = call.events.index(end)
    rep_final = await call.wait_for(lambda e: e["type"] == "transcript.final" and e["speaker"] == "rep",
                                    after=end_index)
    assert "stop" in rep_final["text"].lower()
    await call.close()


async def test_call_recording_is_stereo_wav_with_both_sides(base_url, client, rep):
    session_id, call = await open_call(base_url, client, rep)
    await call.stream(silence(3000), speed=2)  # the rep's microphone runs during the greeting
    await call.greeting()
    await call.stream(speech_pcm(QUESTION) + silence(900), speed=2)
    await call.wait_for(lambda e: e["type"] == "transcript.final" and e["speaker"] == "rep")
    await call.send({"type": "end"})
    await call.wait_closed()
    response = await client.get(f"/api/sessions/{session_id}/recording", headers=bearer(rep))
    assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(response.content)) as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getsampwidth()) == (2, 16000, 2)
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16).reshape(-1, 2)
    assert np.abs(frames[:, 0]).max() > 1000, "the rep is on the left"
    assert np.abs(frames[:, 1]).max() > 1000, "the persona is on the right"


async def test_socket_without_token_is_closed_4401(base_url, client, rep):
    session_id = await new_session(client, rep)
    call = LiveClient(base_url, session_id, "")
    call.url = call.url.split("?")[0]
    await call.open(start=False)
    assert (await call.wait_closed())[0] == 4401


async def test_another_orgs_session_is_4404_and_a_coachs_is_4403(base_url, client, rep):
    session_id = await new_session(client, rep)
    stranger = await signup(client)
    call = await LiveClient(base_url, session_id, stranger["access_token"]).open()
    assert (await call.wait_closed())[0] == 4404
    admin = await signup(client)
    trainee = await signup(client, invite_code=await invite(client, admin, "trainee"))
    theirs = await new_session(client, trainee)
    call = await LiveClient(base_url, theirs, admin["access_token"]).open()
    code, reason = await call.wait_closed()
    assert code == 4403 and "watch" in reason
    missing = await LiveClient(base_url, str(uuid.uuid4()), rep["access_token"]).open()
    assert (await missing.wait_closed())[0] == 4404


async def test_malformed_or_unknown_messages_get_a_notice_that_is_never_stored_and_the_call_goes_on(
        base_url, client, rep, module_database_url):
    session_id, call = await open_call(base_url, client, rep)
    await call.greeting()
    await call.send("{not json")
    await call.send({"type": "dance"})
    await call.send('{"type": "text", "text": "hi", "extra": ' + "[" * 5000 + "]" * 5000 + "}")  # too deep
    await call.wait_for(lambda e: e["type"] == "notice" and len(call.of_type("notice")) == 3)
    notices = call.of_type("notice")
    assert all(n["code"] == "bad_message" and n["message"] and "seq" not in n for n in notices)
    await call.send({"type": "ping"})
    await call.wait_for(lambda e: e["type"] == "pong")
    mark = len(call.events)
    await call.send({"type": "text", "text": "Are you there?"})
    await call.wait_for(lambda e: e["type"] == "persona.reply", after=mark)
    await call.close()
    conn = await asyncpg.connect(module_database_url)
    try:
        kinds = [r["type"] for r in await conn.fetch("SELECT type FROM session_events WHERE session_id = $1",
                                                      uuid.UUID(session_id))]
    finally:
        await conn.close()
    assert "error" not in kinds and "notice" not in kinds, "bad client messages are answered, not logged"


async def test_a_socket_sending_only_garbage_is_closed_1008_past_a_small_budget(base_url, client, rep):
    _, call = await open_call(base_url, client, rep)
    await call.wait_for(lambda e: e["type"] == "session.started")
    for i in range(100):
        try:
            await call.send(f"garbage {i}")
        except ConnectionClosed:
            break
    code, reason = await call.wait_closed()
    assert code == 1008 and "could not read" in reason
    assert 10 <= len(call.of_type("notice")) <= 25


async def test_a_first_message_nested_too_deep_is_refused_1008_not_an_internal_error(base_url, client, rep):
    session_id = await new_session(client, rep)
    call = await LiveClient(base_url, session_id, rep["access_token"]).open(start=False)
    await call.send('{"type": "start", "protocol": 1, "x": ' + "[" * 5000 + "]" * 5000 + "}")
    code, reason = await call.wait_closed()
    assert code == 1008 and "nested too deeply" in reason


@pytest.mark.parametrize(
    ("first", "frame", "code"),
    [
        (None, b"\x00\x00" * 160, 1003),          # audio before start
        ("start", b"\x00" * 321, 1007),           # odd byte count
        ("start", b"\x00\x00" * 1601, 1007),      # over 100 ms at 16 kHz
    ],
    ids=["audio-before-start", "odd-bytes", "oversized-frame"],
)
async def test_bad_audio_closes_with_a_reason_and_loses_nothing(base_url, client, rep, first, frame, code):
    session_id = await new_session(client, rep)
    call = await LiveClient(base_url, session_id, rep["access_token"]).open(start=first == "start")
    if first == "start":
        await call.wait_for(lambda e: e["type"] == "session.started")
        await call.send({"type": "text", "text": "Hello Dana, this is Sam from Acme."})
        await call.wait_for(lambda e: e["type"] == "transcript.final" and e["speaker"] == "rep")
    await call.send(frame)
    closed_code, reason = await call.wait_closed()
    assert closed_code == code and reason
    if first == "start":
        # A drop, not an end: the call is still live and what was said is stored.
        async def stored():
            detail = (await client.get(f"/api/sessions/{session_id}", headers=bearer(rep))).json()
            said = any(s["text"] == "Hello Dana, this is Sam from Acme." for s in detail["transcript"])
            return detail if said else None

        detail = await eventually(stored)
        assert detail, "the rep's turn was persisted"
        assert detail["status"] == "live"


async def test_an_ended_call_cannot_be_rejoined(base_url, client, rep):
    session_id, call = await open_call(base_url, client, rep)
    await call.wait_for(lambda e: e["type"] == "session.started")
    await call.send({"type": "end"})
    await call.wait_closed()
    again = await LiveClient(base_url, session_id, rep["access_token"]).open()
    code, reason = await again.wait_closed()
    assert code == 4410 and "ended" in reason


async def test_org_that_turned_recording_off_gets_no_recording(base_url, client, module_database_url):
    import asyncpg

    admin = await signup(client)
    db = await asyncpg.connect(module_database_url)
    try:
        await db.execute("UPDATE org_settings SET settings = settings || '{\"recording\": false}' WHERE org_id = $1",
                         uuid.UUID(admin["org"]["id"]))
    finally:
        await db.close()
    session_id, call = await open_call(base_url, client, admin)
    await call.stream(silence(1000), speed=4)
    await call.send({"type": "end"})
    await call.wait_closed()
    detail = (await client.get(f"/api/sessions/{session_id}", headers=bearer(admin))).json()
    assert detail["has_recording"] is False
    response = await client.get(f"/api/sessions/{session_id}/recording", headers=bearer(admin))
    assert response.status_code == 404 and response.json()["error"]["code"] == "no_recording"
