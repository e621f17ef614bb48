"""A gateway shutting down gracefully keeps a WebRTC call live, as it does a socket's
(tests/gateway/calls/test_live_resume.py): the rep gets a `restarting` notice on the events
channel before the peer closes, and a new offer with `last_seq` to the next gateway resumes."""

import asyncio
import contextlib

import asyncpg
import httpx

from gateway.app import create_app, serve_app
from tests.conftest import make_settings
from tests.gateway.accounts_helpers import bearer, signup
from tests.gateway.webrtc.rtc_client import RtcClient
from tests.servers import run_asgi


def _settings(database_url):
    return make_settings(database_url, webrtc_calls="true", webrtc_host_addresses="127.0.0.1", hints_llm="off",
                         llm_provider="scripted")


async def test_a_gateway_shutting_down_tells_the_webrtc_rep_restarting_and_the_call_resumes_elsewhere(
        module_database_url):
    settings = _settings(module_database_url)
    with contextlib.ExitStack() as first:
        url = first.enter_context(run_asgi(serve_app(create_app(settings))))
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            rep = await signup(client)
            session_id = (await client.post("/api/sessions", json={"persona_id": "skeptical-cfo"},
                                            headers=bearer(rep))).json()["id"]
            call = await RtcClient(url, session_id, rep).connect(client)
        await call.greeting()
        mark = len(call.events)
        call.send({"type": "text", "text": "How does your month end close process work?"})
        await call.wait_for(lambda e: e["type"] == "transcript.final" and e["speaker"] == "persona", after=mark)
        # Shut the gateway down from another thread, so this loop keeps answering the peer meanwhile.
        await asyncio.to_thread(first.close)
    notices = [e for e in call.events if e["type"] == "notice"]
    assert [n["code"] for n in notices] == ["restarting"], [e["type"] for e in call.events]
    assert "reconnect" in notices[0]["message"]
    await asyncio.wait_for(call.channel_closed.wait(), 10)
    assert not call.of_type("session.ended"), "the call was suspended, not ended"
    last_seq = call.numbered()[-1]["seq"]
    await call.close()
    conn = await asyncpg.connect(module_database_url)
    try:
        status = await conn.fetchval("SELECT status FROM roleplay_sessions WHERE id = $1::uuid", session_id)
    finally:
        await conn.close()
    assert status == "live"

    with run_asgi(serve_app(create_app(settings))) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            resumed = await RtcClient(url, session_id, rep).connect(client, last_seq=last_seq)
            started = await resumed.wait_for(lambda e: e["type"] == "session.started")
            assert started["resumed"] is True
            replayed = resumed.numbered()[: resumed.events.index(started)]
            assert [e["seq"] for e in replayed] == list(range(last_seq + 1, started["seq"]))
            resumed.send({"type": "end"})
            ended = await resumed.wait_for(lambda e: e["type"] == "session.ended")
            assert ended["reason"] == "rep_ended"
            await resumed.close()
