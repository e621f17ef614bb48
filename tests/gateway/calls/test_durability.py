"""Nothing a client saw is ever lost: an event reaches the rep only once it is durable (committed
to Postgres with no Redis), a gateway killed mid-call loses nothing the rep had, its successor never
renumbers a seq the rep holds, a resume from beyond the log is refused, and a Postgres restart
mid-call holds events back until they are written, then delivers each exactly once."""

import asyncio
import tempfile
from pathlib import Path

import httpx
import pytest

from gateway.app import create_app, serve_app
from storage.embedded import start_embedded_postgres
from tests.conftest import make_settings
from tests.gateway.accounts_helpers import bearer, signup
from tests.gateway.calls.test_watch import numbered
from tests.gateway.live_client import LiveClient
from tests.gateway.stored import stored_events
from tests.processes import gateway_process
from tests.servers import run_asgi


async def stored_frames(database_url: str, session_id: str) -> dict[int, dict]:
    return {event["seq"]: event for event in await stored_events(database_url, session_id)}


async def new_call(url: str, rep: dict) -> str:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        created = await client.post("/api/sessions", json={"persona_id": "skeptical-cfo"}, headers=bearer(rep))
    assert created.status_code == 201, created.text
    return created.json()["id"]


async def test_a_gateway_killed_mid_call_loses_nothing_the_rep_saw_and_its_successor_never_renumbers(
        module_database_url):
    with gateway_process(module_database_url) as first:  # no REDIS_URL: the in-process bus
        async with httpx.AsyncClient(base_url=first.url, timeout=30) as client:
            rep = await signup(client)
        session_id = await new_call(first.url, rep)
        call = await LiveClient(first.url, session_id, rep["access_token"]).open()
        await call.wait_for(lambda e: e["type"] == "transcript.final" and e["speaker"] == "persona")
        await call.talk("How does your month end close process work today?")
        await call.send({"type": "text", "text": "What does a late close cost your team?"})
        await call.wait_for(lambda e: e["type"] == "persona.reply.delta")
        first.kill()  # SIGKILL mid-reply: no graceful shutdown, nothing flushed on the way out
        await call.wait_closed()
    seen = numbered(call.events)
    stored = await stored_frames(module_database_url, session_id)
    assert seen, "the rep got events before the crash"
    for event in seen:
        assert stored.get(event["seq"]) == event, f"seq {event['seq']} reached the rep but is not in Postgres"

    last_seq = seen[-1]["seq"]
    with gateway_process(module_database_url) as second:
        beyond = await LiveClient(second.url, session_id, rep["access_token"]).open(last_seq=max(stored) + 50)
        code, reason = await beyond.wait_closed()
        assert code == 4400 and f"last_seq {max(stored) + 50} is ahead" in reason, "refused, never renumbered"

        resumed = await LiveClient(second.url, session_id, rep["access_token"]).open(last_seq=last_seq)
        started = await resumed.wait_for(lambda e: e["type"] == "session.started" and e["resumed"], timeout=30)
        answer = await resumed.talk("And who else feels that pain?")
        await resumed.send({"type": "end"})
        await resumed.wait_closed()
    after = numbered(resumed.events)
    assert [e["seq"] for e in after] == list(range(last_seq + 1, after[-1]["seq"] + 1)), "continues, no gap"
    assert started["seq"] > max(stored) and answer["seq"] > started["seq"]
    final = await stored_frames(module_database_url, session_id)
    assert list(final) == list(range(1, max(final) + 1))
    for event in seen + after:
        assert final[event["seq"]] == event, "no seq the rep holds was reused for another event"


@pytest.fixture(scope="module")
def restartable_postgres():
    """A Postgres of this module's own, so it can be stopped and started mid-call."""
    url, server = start_embedded_postgres(Path(tempfile.mkdtemp(prefix="sparring-restart-pg-")) / "data")
    yield url, server
    server.cleanup()


async def test_postgres_restarted_mid_call_holds_events_back_then_delivers_each_once(restartable_postgres):
    url, server = restartable_postgres
    with run_asgi(serve_app(create_app(make_settings(url)))) as base_url:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            rep = await signup(client)
        session_id = await new_call(base_url, rep)
        call = await LiveClient(base_url, session_id, rep["access_token"]).open()
        await call.wait_for(lambda e: e["type"] == "transcript.final" and e["speaker"] == "persona")
        before = numbered(call.events)[-1]["seq"]

        await asyncio.to_thread(server.stop)
        try:
            await call.send({"type": "text", "text": "How does your month end close process work today?"})
            await asyncio.sleep(1.5)  # the pipeline answers meanwhile; nothing of it is durable yet
            assert numbered(call.events)[-1]["seq"] == before, "no event reached the rep before it was written"
        finally:
            await asyncio.to_thread(server.ensure_postgres_running)
        answer = await call.wait_for(lambda e: e["type"] == "transcript.final" and e["speaker"] == "persona"
                                     and e["seq"] > before, timeout=30)
        assert "eight days" in answer["text"]
        await call.send({"type": "end"})
        await call.wait_closed()
    seen = numbered(call.events)
    assert [e["seq"] for e in seen] == list(range(1, seen[-1]["seq"] + 1)), "none lost, none duplicated"
    assert seen[-1]["type"] == "session.ended"
    stored = await stored_frames(url, session_id)
    call_events = {seq: e for seq, e in stored.items() if e["type"] != "score.ready"}  # the scorecard follows
    assert [stored[e["seq"]] for e in seen] == seen and len(call_events) == len(seen)
