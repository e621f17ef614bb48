"""The offer route's refusals: bad SDP (400 naming the problem), someone else's session (404), a
second offer while a peer is connected (409), no login (401), a cookie login without the CSRF
header (403); never a 500. And the resources a call holds are all released once it is over."""

import asyncio

import httpx
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from gateway.transports import webrtc
from tests.gateway.accounts_helpers import bearer, eventually, invite, signup, unique_email
from tests.gateway.webrtc.conftest import RESUME_GRACE_S
from tests.gateway.webrtc.rtc_client import RtcClient


@pytest.fixture
async def rep(client):
    return await signup(client)


async def new_session(client, auth) -> str:
    response = await client.post("/api/sessions", json={"persona_id": "skeptical-cfo"}, headers=bearer(auth))
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def offer_sdp(*, audio: bool = True, channel: bool = True) -> str:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    if audio:
        pc.addTransceiver("audio", direction="recvonly")
    if channel:
        pc.createDataChannel("events")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


def offer_url(session_id: str) -> str:
    return f"/api/sessions/{session_id}/webrtc/offer"


@pytest.mark.parametrize(("sdp", "says"), [
    ("hello", "must start with v=0"),
    ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio notaport UDP/TLS/RTP/SAVPF 111\r\n",
     "could not be parsed"),
    ("v=0\r\n" + "a=" + "x" * 5000 + "\r\n", "no audio m-line"),
])
async def test_an_offer_with_bad_sdp_is_refused_400_naming_the_problem(client, rep, sdp, says):
    session_id = await new_session(client, rep)
    response = await client.post(offer_url(session_id), json={"sdp": sdp, "type": "offer"}, headers=bearer(rep))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "bad_sdp" and says in error["message"]


async def test_an_offer_without_the_events_channel_or_audio_is_refused_400(client, rep):
    session_id = await new_session(client, rep)
    for sdp, says in [(await offer_sdp(channel=False), "no data channel"), (await offer_sdp(audio=False), "no audio")]:
        response = await client.post(offer_url(session_id), json={"sdp": sdp, "type": "offer"}, headers=bearer(rep))
        assert response.status_code == 400 and says in response.json()["error"]["message"], response.text


async def test_an_offer_that_parses_but_cannot_be_negotiated_is_400_not_500(client, rep):
    session_id = await new_session(client, rep)
    sdp = (await offer_sdp()).replace("a=fingerprint:", "a=fingerprint-gone:")  # no DTLS fingerprint
    response = await client.post(offer_url(session_id), json={"sdp": sdp, "type": "offer"}, headers=bearer(rep))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "bad_sdp"


@pytest.mark.parametrize("body", [
    {"sdp": "v=0", "type": "answer"}, {"type": "offer"}, {"sdp": "", "type": "offer"}, {"sdp": 5, "type": "offer"},
    {"sdp": "v=0", "type": "offer", "last_seq": -1}, [], "offer",
])
async def test_a_malformed_offer_body_is_400(client, rep, body):
    session_id = await new_session(client, rep)
    response = await client.post(offer_url(session_id), json=body, headers=bearer(rep))
    assert response.status_code == 400, response.text
    assert set(response.json()["error"]) >= {"code", "message"}


async def test_an_offer_for_another_users_session_is_404(client, rep):
    other = await signup(client, invite_code=await invite(client, rep, "trainee"), email=unique_email())
    coach = await signup(client, invite_code=await invite(client, rep, "coach"), email=unique_email("coach"))
    elsewhere = await signup(client)
    session_id = await new_session(client, rep)
    body = {"sdp": await offer_sdp(), "type": "offer"}
    for caller in (other, coach, elsewhere):
        response = await client.post(offer_url(session_id), json=body, headers=bearer(caller))
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "not_found"


async def test_an_offer_without_login_is_401_and_a_cookie_one_without_csrf_is_403(base_url, rep):
    async with httpx.AsyncClient(base_url=base_url) as anonymous:
        response = await anonymous.post(offer_url("00000000-0000-0000-0000-000000000000"),
                                        json={"sdp": "v=0", "type": "offer"})
        assert response.status_code == 401, response.text
    async with httpx.AsyncClient(base_url=base_url) as browser:
        auth = await signup(browser)  # the login cookies stay with this client
        session_id = await new_session(browser, auth)
        response = await browser.post(offer_url(session_id), json={"sdp": await offer_sdp(), "type": "offer"})
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "csrf_failed"


async def test_a_second_offer_while_a_peer_is_connected_is_409(base_url, client, rep):
    session_id = await new_session(client, rep)
    first = await RtcClient(base_url, session_id, rep).connect(client)
    await first.wait_for(lambda e: e["type"] == "session.started")
    second = RtcClient(base_url, session_id, rep)
    response = await second.post_offer(client)
    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "peer_connected"
    await second.close()
    first.send({"type": "end"})
    await first.wait_for(lambda e: e["type"] == "session.ended")
    await first.close()
    response = await RtcClient(base_url, session_id, rep).post_offer(client)
    assert response.status_code == 410 and response.json()["error"]["code"] == "ended"


async def test_a_resume_with_last_seq_beyond_the_call_is_400(base_url, client, rep):
    session_id = await new_session(client, rep)
    first = await RtcClient(base_url, session_id, rep).connect(client)
    started = await first.wait_for(lambda e: e["type"] == "session.started")
    await first.close()
    late = RtcClient(base_url, session_id, rep)
    response = await eventually(lambda: _refused(late, client, started["seq"] + 1000), timeout=10)
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_message", response.text
    await late.close()


async def _refused(late, client, last_seq):
    response = await late.post_offer(client, last_seq=last_seq)
    return response if response.status_code != 409 else None  # until the dropped peer is let go


async def test_a_finished_call_releases_its_tracks_decoders_and_tasks(base_url, client, rep, server_resources):
    before = server_resources()
    session_id = await new_session(client, rep)
    call = await RtcClient(base_url, session_id, rep).connect(client)
    await call.greeting()
    during = server_resources()
    assert during["peers"] == before["peers"] + 1 and during["decoders"] >= 1 and during["library_tasks"] > 0
    call.send({"type": "end"})
    await call.wait_for(lambda e: e["type"] == "session.ended")
    await call.close()

    async def released():
        now = server_resources()
        return now if all(now[k] <= before[k] for k in now) else None

    after = await eventually(released, timeout=15)
    assert after, f"still held after the call: {server_resources()} (before: {before})"
    await asyncio.sleep(0)


async def test_a_data_channel_not_labelled_events_is_closed_and_the_call_goes_on(base_url, client, rep):
    session_id = await new_session(client, rep)
    call = RtcClient(base_url, session_id, rep)
    sidecar = call.pc.createDataChannel("sidecar")
    closed = asyncio.Event()
    sidecar.on("close", closed.set)
    await call.connect(client)
    await asyncio.wait_for(closed.wait(), 10)
    notice = await call.wait_for(lambda e: e["type"] == "notice")
    assert notice["code"] == "bad_channel" and "sidecar" in notice["message"], notice
    call.send({"type": "ping"})
    await call.wait_for(lambda e: e["type"] == "pong")
    assert call.channel.readyState == "open", "the events channel stays open"
    call.send({"type": "end"})
    await call.wait_for(lambda e: e["type"] == "session.ended")
    await call.close()


async def test_a_peer_that_never_opens_the_events_channel_is_a_drop_at_the_connect_timeout(
        base_url, client, rep, monkeypatch, server_resources):
    monkeypatch.setattr(webrtc, "CONNECT_TIMEOUT_S", 3)  # the server runs in this process
    before = server_resources()
    session_id = await new_session(client, rep)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("audio", direction="recvonly")
    wrong = pc.createDataChannel("chat")  # SDP has no labels: the offer cannot be told from a good one
    closed = asyncio.Event()
    wrong.on("close", closed.set)
    await pc.setLocalDescription(await pc.createOffer())
    response = await client.post(offer_url(session_id), json={"sdp": pc.localDescription.sdp, "type": "offer"},
                                 headers=bearer(rep))
    assert response.status_code == 200, response.text
    await pc.setRemoteDescription(RTCSessionDescription(sdp=response.json()["sdp"], type="answer"))
    await asyncio.wait_for(closed.wait(), 10)

    async def ended():
        detail = (await client.get(f"/api/sessions/{session_id}", headers=bearer(rep))).json()
        return detail if detail["status"] == "ended" else None

    detail = await eventually(ended, timeout=RESUME_GRACE_S + 20, interval=0.5)
    assert detail["end_reason"] == "client_disconnected"

    async def released():
        now = server_resources()
        return now if all(now[k] <= before[k] for k in now) else None

    assert await eventually(released, timeout=15), f"still held: {server_resources()} (before: {before})"
    await pc.close()
