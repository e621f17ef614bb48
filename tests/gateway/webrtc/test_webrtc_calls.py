"""Live calls over a real WebRTC peer connection on loopback (an aiortc client, no STUN) against
the running app with the zero-config providers: local speech recognition and synthesis, the
scripted persona, real Postgres."""

import asyncio

import asyncpg
import numpy as np
import pytest

from tests.fixtures.speech import silence, speech_pcm, word_error_rate
from tests.gateway.accounts_helpers import bearer, eventually, invite, signup, unique_email
from tests.gateway.live_client import LiveClient
from tests.gateway.webrtc.conftest import RESUME_GRACE_S
from tests.gateway.webrtc.rtc_client import RtcClient

# Long enough that one misheard word is not a fifth of the words (WER is a rate, not a match).
QUESTION = "How does your finance team run the month end close process today, and how long does it take?"


@pytest.fixture
async def rep(client):
    return await signup(client)


async def new_session(client, auth) -> str:
    response = await client.post("/api/sessions", json={"persona_id": "skeptical-cfo", "transport": "webrtc"},
                                 headers=bearer(auth))
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def open_call(base_url, client, auth) -> tuple[str, RtcClient]:
    session_id = await new_session(client, auth)
    return session_id, await RtcClient(base_url, session_id, auth).connect(client)


async def ended_detail(client, auth, session_id, timeout=30):
    async def ended():
        detail = (await client.get(f"/api/sessions/{session_id}", headers=bearer(auth))).json()
        return detail if detail["status"] == "ended" else None
    return await eventually(ended, timeout=timeout)


async def test_spoken_question_over_webrtc_is_transcribed_and_answered_in_voice(base_url, client, rep):
    session_id, call = await open_call(base_url, client, rep)
    assert call.answer["type"] == "answer" and call.answer["ice_servers"] == []
    assert "a=candidate" in call.answer["sdp"], "the answer holds its candidates (gathering was complete)"
    started = await call.wait_for(lambda e: e["type"] == "session.started")
    assert started["seq"] == 1 and started["resumed"] is False
    await call.greeting()
    mark = len(call.events)
    call.mic.say(silence(200) + speech_pcm(QUESTION) + silence(900))
    final = await call.wait_for(lambda e: e["type"] == "transcript.final" and e["speaker"] == "rep", after=mark)
    wer = word_error_rate(QUESTION, final["text"])
    print(f"WER over WebRTC: {wer:.2f} ({final['text']!r})")
    assert wer <= 0.2, final["text"]
    reply = await call.wait_for(lambda e: e["type"] == "persona.reply", after=mark)
    assert "eight days" in reply["text"]
    end = await call.wait_for(lambda e: e["type"] == "persona.audio.end" and e["reply_id"] == reply["reply_id"],
                              after=mark)
    assert end["interrupted"] is False
    assert call.voiced_ms() > 1000, "over a second of the persona's voice came on the track"
    audio = np.frombuffer(bytes(call.audio), dtype=np.int16).astype(np.float32)
    assert np.abs(audio).max() > 1000, "persona audio is not silence"
    seqs = [e["seq"] for e in call.numbered()]
    assert seqs == list(range(1, len(seqs) + 1)), "seq is gap-free from 1"
    stored = (await client.get(f"/api/sessions/{session_id}/events", params={"limit": 1000},
                               headers=bearer(rep))).json()["items"]
    sent = [e for e in call.numbered()]
    assert stored[: len(sent)] == sent, "the data channel carries the stored events exactly"
    await call.close()


async def test_typed_turns_ping_and_end_take_the_socket_path_and_persist(base_url, client, rep):
    session_id, call = await open_call(base_url, client, rep)
    await call.greeting()
    call.send({"type": "ping"})
    pong = await call.wait_for(lambda e: e["type"] == "pong")
    assert "seq" not in pong
    call.send({"type": "dance"})
    notice = await call.wait_for(lambda e: e["type"] == "notice")
    assert notice["code"] == "bad_message"
    mark = len(call.events)
    call.send({"type": "text", "text": "What does pricing look like for a team like yours? How much is budget?"})
    said = await call.wait_for(lambda e: e["type"] == "transcript.final" and e["speaker"] == "persona", after=mark)
    assert said["text"]
    call.send({"type": "end"})
    ended = await call.wait_for(lambda e: e["type"] == "session.ended")
    assert ended["reason"] == "rep_ended"
    await asyncio.wait_for(call.channel_closed.wait(), 10)  # the server closes after session.ended
    detail = await ended_detail(client, rep, session_id)
    assert detail["end_reason"] == "rep_ended"
    stored = (await client.get(f"/api/sessions/{session_id}/events", params={"limit": 1000},
                               headers=bearer(rep))).json()["items"]
    assert [e for e in stored if e["type"] != "score.ready"] == call.numbered()
    await call.close()


async def _persona_answering_a_typed_question(call):
    """After the greeting, a typed question whose spoken reply has begun: (mark, persona.reply)."""
    await call.greeting()
    mark = len(call.events)
    call.send({"type": "text", "text": "Before we start, how much budget do you have for this?"})
    reply = await call.wait_for(lambda e: e["type"] == "persona.reply", after=mark)
    await call.wait_for(lambda e: e["type"] == "persona.audio.start", after=mark)
    return mark, reply


async def test_barge_in_over_webrtc_interrupts_the_persona(base_url, client, rep):
    _, call = await open_call(base_url, client, rep)
    mark, reply = await _persona_answering_a_typed_question(call)
    heard = call.voiced_ms()
    await call.wait_audio(heard / 1000 + 1.0)  # a second of the reply was heard on the track
    call.mic.say(speech_pcm("Sorry, let me stop you there.") + silence(900))
    end = await call.wait_for(lambda e: e["type"] == "persona.audio.end" and e["reply_id"] == reply["reply_id"],
                              after=mark)
    assert end["interrupted"] is True
    said = await call.wait_for(lambda e: e["type"] == "transcript.final" and e["speaker"] == "persona", after=mark)
    assert said["text"] and len(said["text"]) < len(reply["text"])
    assert reply["text"].startswith(said["text"])
    await call.close()


async def test_closing_the_peer_connection_ends_the_call_after_the_grace(base_url, client, rep):
    session_id, call = await open_call(base_url, client, rep)
    await call.wait_for(lambda e: e["type"] == "session.started")
    await call.close()
    detail = await ended_detail(client, rep, session_id, timeout=RESUME_GRACE_S + 20)
    assert detail["end_reason"] == "client_disconnected"


async def test_a_new_offer_with_last_seq_resumes_and_replays_the_missed_events(base_url, client, rep):
    session_id, first = await open_call(base_url, client, rep)
    await first.greeting()
    first.send({"type": "text", "text": "How does your month end close process work?"})
    await first.wait_for(lambda e: e["type"] == "transcript.final" and e["speaker"] == "rep")
    last_seq = first.numbered()[-1]["seq"]
    await first.close()  # a drop: the persona's reply goes on without the rep
    second = await RtcClient(base_url, session_id, rep).connect(client, last_seq=last_seq)
    resumed = await second.wait_for(lambda e: e["type"] == "session.started")
    assert resumed["resumed"] is True
    replayed = second.numbered()[: second.events.index(resumed)]
    assert [e["seq"] for e in replayed] == list(range(last_seq + 1, resumed["seq"]))
    stored = (await client.get(f"/api/sessions/{session_id}/events", params={"after_seq": last_seq, "limit": 1000},
                               headers=bearer(rep))).json()["items"]
    assert replayed == stored[: len(replayed)], "replayed frames are the events as first sent"
    mark = len(second.events)
    second.send({"type": "text", "text": "What did it cost you when invoices were wrong?"})
    await second.wait_for(lambda e: e["type"] == "transcript.final" and e["speaker"] == "rep", after=mark)
    # The persona may still be answering the first question (its events come first): whatever
    # comes, the numbers run on from the replay with no gap and no repeat.
    seqs = [e["seq"] for e in second.numbered()]
    assert seqs == list(range(last_seq + 1, seqs[-1] + 1)), "live events follow the replay with no gap"
    second.send({"type": "end"})
    await second.wait_for(lambda e: e["type"] == "session.ended")
    await second.close()


async def test_coaches_see_the_webrtc_transport_in_the_live_list(base_url, client):
    admin = await signup(client)
    coach = await signup(client, invite_code=await invite(client, admin, "coach"), email=unique_email("coach"))
    rep = await signup(client, invite_code=await invite(client, admin, "trainee"), email=unique_email("rep"))
    session_id, call = await open_call(base_url, client, rep)
    await call.wait_for(lambda e: e["type"] == "session.started")

    async def listed():
        calls = (await client.get("/api/live", headers=bearer(coach))).json()["calls"]
        return [c for c in calls if c["session_id"] == session_id]

    entry = (await eventually(listed, timeout=10))[0]
    assert entry["transport"] == "webrtc"
    call.send({"type": "end"})
    await call.wait_for(lambda e: e["type"] == "session.ended")
    await call.close()


async def test_closing_only_the_data_channel_is_a_drop_that_ends_the_call_after_the_grace(base_url, client, rep):
    session_id, call = await open_call(base_url, client, rep)
    await call.wait_for(lambda e: e["type"] == "session.started")
    call.channel.close()
    detail = await ended_detail(client, rep, session_id, timeout=RESUME_GRACE_S + 20)
    assert detail["end_reason"] == "client_disconnected"
    await call.close()


async def test_the_stored_session_says_which_transport_carries_the_call(base_url, client, rep):
    response = await client.post("/api/sessions", json={"persona_id": "skeptical-cfo"}, headers=bearer(rep))
    session_id = response.json()["id"]
    assert response.json()["transport"] == "websocket"
    call = await RtcClient(base_url, session_id, rep).connect(client)
    await call.wait_for(lambda e: e["type"] == "session.started")

    async def stored_transport():
        detail = (await client.get(f"/api/sessions/{session_id}", headers=bearer(rep))).json()
        listed = (await client.get("/api/sessions", params={"status": "live"}, headers=bearer(rep))).json()["items"]
        return detail["transport"], [s["transport"] for s in listed if s["id"] == session_id]

    assert await stored_transport() == ("webrtc", ["webrtc"])
    last_seq = call.numbered()[-1]["seq"]
    await call.close()  # a drop; the rep comes back on the socket
    socket = await eventually(lambda: _resumed_on_socket(base_url, session_id, rep, last_seq), timeout=10)
    assert await stored_transport() == ("websocket", ["websocket"])
    await socket.send({"type": "end"})
    await socket.wait_for(lambda e: e["type"] == "session.ended")
    await socket.wait_closed()
    history = (await client.get("/api/sessions", headers=bearer(rep))).json()["items"]
    assert [s["transport"] for s in history if s["id"] == session_id] == ["websocket"]


async def _resumed_on_socket(base_url, session_id, auth, last_seq):
    socket = await LiveClient(base_url, session_id, auth["access_token"]).open(last_seq=last_seq)
    try:
        await socket.wait_for(lambda e: e["type"] == "session.started", timeout=10)
    except AssertionError:
        return None
    return socket


async def test_a_barge_in_silences_the_track_at_once_but_its_event_waits_for_the_commit(
        base_url, client, rep, module_database_url):
    session_id, call = await open_call(base_url, client, rep)
    mark, reply = await _persona_answering_a_typed_question(call)
    await call.wait_audio(call.voiced_ms() / 1000 + 1.0)  # the reply is playing, ~300 ms buffered ahead
    db = await asyncpg.connect(module_database_url)
    hold = db.transaction()
    await hold.start()
    # The session's row locked: none of the call's events can commit until the hold is let go.
    await db.execute("SELECT id FROM roleplay_sessions WHERE id = $1::uuid FOR UPDATE", session_id)
    try:
        before = call.voiced_ms()
        # A typed turn of spaces interrupts the persona and asks nothing (empty turns are dropped),
        # so no new reply's voice can follow.
        call.send({"type": "text", "text": " "})
        await asyncio.sleep(1.5)
        after_ms = call.voiced_ms() - before
        print(f"persona audio after the barge-in: {after_ms:.0f} ms")
        assert after_ms <= 200, f"{after_ms} ms of the persona still played after the barge-in"
        assert not [e for e in call.events[mark:] if e["type"] == "persona.audio.end"], \
            "the interruption's event reached the client before it was durable"
    finally:
        await hold.rollback()
        await db.close()
    end = await call.wait_for(lambda e: e["type"] == "persona.audio.end" and e["reply_id"] == reply["reply_id"],
                              after=mark)
    assert end["interrupted"] is True
    await call.close()
