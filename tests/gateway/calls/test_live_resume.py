"""Drops, resumes, restarts and limits of live calls."""

import asyncio

import asyncpg
import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from gateway.app import create_app, serve_app
from tests.conftest import make_settings
from tests.gateway.accounts_helpers import bearer, eventually, signup
from tests.gateway.live_client import LiveClient
from tests.servers import run_asgi


async def new_session(client, auth) -> str:
    response = await client.post("/api/sessions", json={"persona_id": "skeptical-cfo"}, headers=bearer(auth))
    return response.json()["id"]


def numbered(events):
    return [e for e in events if "seq" in e]


@pytest.fixture(scope="module")
def base_url(module_database_url):
    settings = make_settings(module_database_url, resume_grace_seconds="8", max_live_sessions_per_user="2")
    with run_asgi(serve_app(create_app(settings))) as url:
        yield url


async def test_reconnect_with_last_seq_replays_exactly_the_missed_events(base_url, client):
    rep = await signup(client)
    session_id = await new_session(client, rep)
    first = await LiveClient(base_url, session_id, rep["access_token"]).open()
    await first.greeting()
    await first.send({"type": "text", "text": "How does your month end close process work?"})
    await first.wait_for(lambda e: e["type"] == "transcript.final" and e["speaker"] == "rep")
    last_seq = numbered(first.events)[-1]["seq"]
    await first.close()  # a drop: the persona's reply goes on without the rep
    watcher_view = await eventually(
        lambda: _events(client, rep, session_id, after=last_seq, until="transcript.final"), timeout=20)
    assert watcher_view, "the reply went on while the rep was away"
    second = await LiveClient(base_url, session_id, rep["access_token"]).open(last_seq=last_seq)
    resumed = await second.wait_for(lambda e: e["type"] == "session.started")
    assert resumed["resumed"] is True
    replayed = numbered(second.events)[: second.events.index(resumed)]
    assert [e["seq"] for e in replayed] == list(range(last_seq + 1, resumed["seq"]))
    stored = (await client.get(f"/api/sessions/{session_id}/events", params={"after_seq": last_seq, "limit": 1000},
                               headers=bearer(rep))).json()["items"]
    assert replayed == stored[: len(replayed)], "replayed frames are the events as first sent"
    mark = len(second.events)
    await second.send({"type": "text", "text": "What did it cost you when invoices were wrong?"})
    after = await second.wait_for(lambda e: e["type"] == "transcript.final", after=mark)
    assert after["seq"] == resumed["seq"] + 1, "live events follow the replay with no gap"
    await second.close()


async def test_a_resume_ahead_of_the_log_is_refused_4400_whether_the_call_runs_or_never_started(base_url, client):
    rep = await signup(client)
    session_id = await new_session(client, rep)
    first = await LiveClient(base_url, session_id, rep["access_token"]).open()
    await first.greeting()
    last_seq = numbered(first.events)[-1]["seq"]
    await first.close()  # dropped: the call stays live here for the grace period
    ahead = await LiveClient(base_url, session_id, rep["access_token"]).open(last_seq=last_seq + 50)
    code, reason = await ahead.wait_closed()
    assert code == 4400 and f"last_seq {last_seq + 50} is ahead" in reason, "refused, never renumbered"
    honest = await LiveClient(base_url, session_id, rep["access_token"]).open(last_seq=last_seq)
    resumed = await honest.wait_for(lambda e: e["type"] == "session.started")
    assert resumed["resumed"] is True and resumed["seq"] > last_seq, "the refusal took nothing away"
    await honest.send({"type": "end"})
    await honest.wait_closed()
    unstarted = await new_session(client, rep)
    never = await LiveClient(base_url, unstarted, rep["access_token"]).open(last_seq=3)
    code, reason = await never.wait_closed()
    assert code == 4400 and "last_seq 3 is ahead" in reason
    detail = (await client.get(f"/api/sessions/{unstarted}", headers=bearer(rep))).json()
    assert detail["status"] == "created", "a refused resume does not start the call"


async def _events(client, rep, session_id, *, after, until):
    items = (await client.get(f"/api/sessions/{session_id}/events", params={"after_seq": after},
                              headers=bearer(rep))).json()["items"]
    return [e for e in items if e["type"] == until and e.get("speaker") == "persona"]


async def test_a_drop_longer_than_the_grace_period_ends_the_call(base_url, client):
    rep = await signup(client)
    session_id = await new_session(client, rep)
    call = await LiveClient(base_url, session_id, rep["access_token"]).open()
    await call.wait_for(lambda e: e["type"] == "session.started")
    await call.close()

    async def ended():
        detail = (await client.get(f"/api/sessions/{session_id}", headers=bearer(rep))).json()
        return detail if detail["status"] == "ended" else None

    detail = await eventually(ended, timeout=30)
    assert detail and detail["end_reason"] == "client_disconnected"


async def test_a_third_live_call_is_refused_with_the_limit_in_the_reason(base_url, client):
    rep = await signup(client)
    # All three created first: POST /api/sessions refuses a third once two are live
    # (tests/gateway/calls/test_live_limit_api.py); the socket still checks when a call starts.
    ids = [await new_session(client, rep) for _ in range(3)]
    calls = []
    for session_id in ids[:2]:
        calls.append(await LiveClient(base_url, session_id, rep["access_token"]).open())
        await calls[-1].wait_for(lambda e: e["type"] == "session.started")
    third = await LiveClient(base_url, ids[2], rep["access_token"]).open()
    code, reason = await third.wait_closed()
    assert code == 4429 and "2 live calls" in reason
    for call in calls:
        await call.send({"type": "end"})
        await call.wait_closed()


async def test_idle_and_overlong_calls_end_with_their_reason(module_database_url):
    settings = make_settings(module_database_url, idle_timeout_seconds="5", max_call_seconds="10")
    with run_asgi(serve_app(create_app(settings))) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            rep = await signup(client)
            idle = await LiveClient(url, await new_session(client, rep), rep["access_token"]).open()
            ended = await idle.wait_for(lambda e: e["type"] == "session.ended", timeout=30)
            assert ended["reason"] == "idle_timeout"
            busy_id = await new_session(client, rep)
            busy = await LiveClient(url, busy_id, rep["access_token"]).open()
            await busy.wait_for(lambda e: e["type"] == "session.started")
            for i in range(6):  # keep talking so only the length limit applies
                if busy.close_code is not None:
                    break  # the limit came while talking (a slow machine)
                try:
                    await busy.send({"type": "text", "text": f"Point number {i}."})
                except ConnectionClosed:
                    break
                await asyncio.sleep(2)
            await busy.wait_closed()
    # What the call ended with, as stored (the socket may close before a slow client reads the event).
    conn = await asyncpg.connect(module_database_url)
    try:
        reason = await conn.fetchval("SELECT end_reason FROM roleplay_sessions WHERE id = $1", busy_id)
    finally:
        await conn.close()
    assert reason == "max_duration"


async def test_a_restarted_gateway_rebuilds_the_call_from_its_events(module_database_url):
    settings = make_settings(module_database_url)
    with run_asgi(serve_app(create_app(settings))) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            rep = await signup(client)
            session_id = await new_session(client, rep)
        call = await LiveClient(url, session_id, rep["access_token"]).open()
        await call.greeting()
        for question in ("How does your month end close process work?",
                         "Have you tried fixing this before with another vendor?"):
            mark = len(call.events)
            await call.send({"type": "text", "text": question})
            await call.wait_for(lambda e: e["type"] == "transcript.final" and e["speaker"] == "persona", after=mark)
        last_seq = numbered(call.events)[-1]["seq"]
    # The first gateway is gone (its shutdown kept the call live); a new one takes over.
    assert (await call.wait_closed())[0] == 1012
    with run_asgi(serve_app(create_app(settings))) as url:
        resumed = await LiveClient(url, session_id, rep["access_token"]).open(last_seq=last_seq)
        started = await resumed.wait_for(lambda e: e["type"] == "session.started")
        assert started["resumed"] is True
        # Events the first gateway published after our snapshot (a hint right behind the last
        # final, say) come back first; then the seq goes on with no gap.
        replayed = numbered(resumed.events)[: resumed.events.index(started)]
        assert [e["seq"] for e in replayed] == list(range(last_seq + 1, started["seq"]))
        mark = len(resumed.events)
        await resumed.send({"type": "text", "text": "Can we book a meeting Thursday?"})
        reply = await resumed.wait_for(lambda e: e["type"] == "persona.reply", after=mark)
        # Two pains came out before the restart, so the rebuilt buyer agrees to the next step.
        assert reply["text"].startswith("Fine. Put thirty minutes on my calendar")
        await resumed.send({"type": "end"})
        await resumed.wait_closed()
    conn = await asyncpg.connect(module_database_url)
    try:
        stored = [r["seq"] for r in await conn.fetch(
            "SELECT seq FROM session_events WHERE session_id = $1 ORDER BY seq", __import__("uuid").UUID(session_id))]
    finally:
        await conn.close()
    assert stored == list(range(1, len(stored) + 1))


async def test_a_call_left_live_by_a_dead_process_is_ended_once_nobody_resumes_it(module_database_url):
    settings = make_settings(module_database_url, resume_grace_seconds="1", live_ttl_seconds="1")
    with run_asgi(serve_app(create_app(settings))) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            rep = await signup(client)
            session_id = await new_session(client, rep)
            conn = await asyncpg.connect(module_database_url)
            try:
                # As a crashed gateway leaves it: live, no owner, silent for a minute.
                await conn.execute("UPDATE roleplay_sessions SET status = 'live',"
                                   " started_at = now() - interval '2 minutes',"
                                   " last_activity_at = now() - interval '1 minute' WHERE id = $1::uuid", session_id)

                async def ended():
                    return await conn.fetchrow("SELECT status, end_reason FROM roleplay_sessions WHERE id = $1::uuid"
                                               " AND status = 'ended'", session_id)

                row = await eventually(ended, timeout=20)
            finally:
                await conn.close()
            assert row is not None and row["end_reason"] == "owner_lost"
            events = (await client.get(f"/api/sessions/{session_id}/events", headers=bearer(rep))).json()["items"]
            assert [(e["seq"], e["type"], e["reason"]) for e in events] == [(1, "session.ended", "owner_lost")]
