"""Two real gateway processes sharing Postgres and Redis, as behind a load balancer: coaches watch
and whisper across instances, reps resume on another instance, the live list and rate limits hold
across both, and a killed instance's calls leave the live list within the TTL."""

import asyncio
import time

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from tests.gateway.accounts_helpers import bearer, eventually, signup, unique_email
from tests.gateway.calls.test_watch import numbered, team, watcher
from tests.gateway.live_client import LiveClient
from tests.gateway.stored import stored_events
from tests.gateway.vapi_helpers import SECRET, deliver, payload
from tests.processes import gateway_process

TTL_S = 2
REDIS_URL = "redis://127.0.0.1:6379/0"


def instance_env(name: str) -> dict[str, str]:
    return {"instance_id": name, "redis_url": REDIS_URL, "live_ttl_seconds": str(TTL_S),
            "rate_limit_login": "5/minute", "resume_grace_seconds": "5", "vapi_webhook_secret": SECRET,
            "site_url": "http://sparring.test",
            "rate_limit_signup": "100000/minute"}


@pytest.fixture(scope="module")
def pair(module_database_url):
    with gateway_process(module_database_url, **instance_env("gw-a")) as a, \
            gateway_process(module_database_url, **instance_env("gw-b")) as b:
        yield a, b


@pytest.fixture
async def client(pair):
    async with httpx.AsyncClient(base_url=pair[0].url, timeout=30) as client:
        yield client


async def test_coach_on_b_watches_a_call_on_a_from_its_start_and_whispers_to_the_rep(pair, client):
    a, b = pair
    _, coach, rep, session_id = await team(client)
    call = await LiveClient(a.url, session_id, rep["access_token"]).open()
    await call.greeting()
    await call.talk("How does your month end close process work today?")

    watch = await watcher(b.url, session_id, coach["access_token"]).open(start=False)
    history_end = numbered(call.events)[-1]["seq"]
    await watch.wait_for(lambda e: e.get("seq") == history_end)
    answer = await call.talk("What does a late close cost your team?")
    await watch.wait_for(lambda e: e.get("seq") == answer["seq"])

    await watch.send({"type": "whisper", "text": "Ask who else feels that pain."})
    whisper = await call.wait_for(lambda e: e["type"] == "whisper")
    assert whisper["from"] == {"id": coach["user"]["id"], "name": "Coach Kim"}
    assert (await watch.wait_for(lambda e: e["type"] == "whisper"))["seq"] == whisper["seq"]
    assert whisper["seq"] > answer["seq"], "numbered by the owner, after what it had published"

    seen = numbered(watch.events)
    assert [e["seq"] for e in seen] == list(range(1, whisper["seq"] + 1)), "history then live: no gap, no duplicate"
    assert seen == numbered(call.events)[: whisper["seq"]], "exactly what the rep's socket got"
    await watch.close()
    await call.close()


async def test_the_live_list_on_either_instance_shows_a_call_running_on_the_other(pair, client):
    a, b = pair
    admin, coach, rep, session_id = await team(client)
    call = await LiveClient(a.url, session_id, rep["access_token"]).open()
    await call.wait_for(lambda e: e["type"] == "session.started")
    async with httpx.AsyncClient(base_url=b.url, timeout=10) as on_b:
        listed = (await on_b.get("/api/live", headers=bearer(coach))).json()["calls"]
        assert [c["session_id"] for c in listed] == [session_id]
        entry = listed[0]
        assert entry["rep"] == {"id": rep["user"]["id"], "name": rep["user"]["name"]}
        assert entry["persona"]["id"] == "skeptical-cfo" and entry["persona"]["name"]
        assert entry["instance"] == "gw-a" and entry["transport"] == "websocket"
        assert entry["started_at"] and entry["last_activity_at"]
        assert (await on_b.get("/api/live", headers=bearer(rep))).status_code == 403
        other_org = await signup(on_b)
        assert (await on_b.get("/api/live", headers=bearer(other_org))).json()["calls"] == []
        await call.send({"type": "end"})
        await call.wait_closed()
        assert (await on_b.get("/api/live", headers=bearer(admin))).json()["calls"] == []
    await call.close()


async def test_a_rep_ends_their_stray_call_on_a_from_b_and_it_ends_there_as_rep_ended(pair, client,
                                                                                     module_database_url):
    """The practice page's "Your live calls" on one instance ends a call another instance runs."""
    a, b = pair
    _, _, rep, session_id = await team(client)
    call = await LiveClient(a.url, session_id, rep["access_token"]).open()
    await call.greeting()
    async with httpx.AsyncClient(base_url=b.url, timeout=10) as on_b:
        response = await on_b.post(f"/api/sessions/{session_id}/end", headers=bearer(rep))
        assert response.status_code == 200, response.text
    ended = await call.wait_for(lambda e: e["type"] == "session.ended")
    assert ended["reason"] == "rep_ended"
    conn = await asyncpg.connect(module_database_url)
    try:
        # With Redis as the bus an event is durable once Redis has it, so the rep may hold
        # session.ended a moment before Postgres commits it (and the session's end with it).
        async def stored():
            row = await conn.fetchrow("SELECT status, end_reason FROM roleplay_sessions WHERE id = $1::uuid",
                                      session_id)
            return (row["status"], row["end_reason"]) if row["status"] == "ended" else None

        assert await eventually(stored) == ("ended", "rep_ended")
    finally:
        await conn.close()
    await call.close()


async def test_a_rep_dropped_on_a_resumes_on_b_with_no_gap_and_a_stops_writing(pair, client, module_database_url):
    a, b = pair
    _, _, rep, session_id = await team(client)
    first = await LiveClient(a.url, session_id, rep["access_token"]).open()
    await first.greeting()
    await first.talk("How does your month end close process work today?")
    last_seq = numbered(first.events)[-1]["seq"]
    await first.close()  # dropped; A keeps the call for the grace period

    second = await LiveClient(b.url, session_id, rep["access_token"]).open(last_seq=last_seq)
    resumed = await second.wait_for(lambda e: e["type"] == "session.started", timeout=TTL_S + 15)
    assert resumed["resumed"] is True
    replayed = numbered(second.events)[: second.events.index(resumed)]
    assert [e["seq"] for e in replayed] == list(range(last_seq + 1, resumed["seq"]))
    answer = await second.talk("And what does a late close cost you?")
    assert answer["seq"] > resumed["seq"]
    await second.send({"type": "end"})
    await second.wait_closed()

    last = numbered(second.events)[-1]
    assert last["type"] == "session.ended"
    seqs = [r["seq"] for r in await stored_events(module_database_url, session_id, through_seq=last["seq"])]
    assert seqs, "the store catches up with what the rep was sent"
    conn = await asyncpg.connect(module_database_url)
    try:
        fence = await conn.fetchval("SELECT owner_fence FROM roleplay_sessions WHERE id = $1", session_id)
        status = await conn.fetchval("SELECT status FROM roleplay_sessions WHERE id = $1", session_id)
    finally:
        await conn.close()
    assert seqs == list(range(1, seqs[-1] + 1)), "one writer at a time: no gap, no clash"
    assert seqs[-1] == last["seq"]
    assert fence == 2, "taken once by A, once by B"
    assert status == "ended"
    live_on_a = (await client.get("/api/live", headers=bearer(await signup(client)))).json()["calls"]
    assert session_id not in [c["session_id"] for c in live_on_a]


async def test_the_login_limit_holds_across_both_instances(pair):
    email = unique_email("limited")
    statuses, answers = [], []
    async with httpx.AsyncClient(timeout=10) as http:
        for i in range(12):
            url = pair[i % 2].url
            response = await http.post(f"{url}/api/auth/login", json={"email": email, "password": "wrong-password"})
            statuses.append(response.status_code)
            answers.append(response)
        other = await http.post(f"{pair[1].url}/api/auth/login",
                                json={"email": unique_email("other"), "password": "x" * 12})
    assert statuses.count(401) == 5 and statuses.count(429) == 7, statuses
    now = time.time()
    for response in answers:  # the headers of the tightest limit in play (per email, or per address)
        assert response.headers["X-RateLimit-Limit"] in ("5", "30")
        assert int(response.headers["X-RateLimit-Remaining"]) >= 0
        assert now - 5 < int(response.headers["X-RateLimit-Reset"]) <= now + 61
    refused = answers[-1]
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 61
    assert other.status_code == 401, "the limit is per email (and address), not global"


async def test_a_killed_instance_calls_leave_the_live_list_within_the_ttl_and_end(pair, client, module_database_url):
    _, b = pair
    admin, coach, rep, session_id = await team(client)
    with gateway_process(module_database_url, **instance_env("gw-doomed")) as doomed:
        call = await LiveClient(doomed.url, session_id, rep["access_token"]).open()
        await call.wait_for(lambda e: e["type"] == "session.started")
        watch = await watcher(b.url, session_id, coach["access_token"]).open(start=False)
        await watch.wait_for(lambda e: e["type"] == "session.started")
        async with httpx.AsyncClient(base_url=b.url, timeout=10) as on_b:
            async def listed():
                calls = (await on_b.get("/api/live", headers=bearer(coach))).json()["calls"]
                return [c["session_id"] for c in calls]
            assert await listed() == [session_id]
            doomed.kill()
            killed_at = time.monotonic()
            await eventually(lambda: _empty(listed), timeout=TTL_S + 5, interval=0.1)
            gone_after = time.monotonic() - killed_at
            # Nobody resumes it: once silent past the grace, a surviving instance ends it.
            ended = await watch.wait_for(lambda e: e["type"] == "session.ended", timeout=40)
            assert ended["reason"] == "owner_lost"
            detail = (await on_b.get(f"/api/sessions/{session_id}", headers=bearer(admin))).json()
            assert detail["status"] == "ended" and detail["end_reason"] == "owner_lost"
        await call.close()
    assert gone_after <= TTL_S + 1.0, gone_after
    seqs = [e["seq"] for e in numbered(watch.events)]
    assert seqs == list(range(1, seqs[-1] + 1))


async def _empty(listed) -> bool:
    return await listed() == []


async def test_a_coach_on_b_sees_a_vapi_call_whose_webhooks_land_on_both_instances(pair, client):
    a, b = pair
    _, coach, rep, _ = await team(client)
    sid = (await client.post("/api/sessions", json={"persona_id": "skeptical-cfo", "transport": "vapi"},
                             headers=bearer(rep))).json()["id"]
    watch = await watcher(b.url, sid, coach["access_token"]).open(start=False)
    call_id = f"call-{time.time_ns()}"
    async with (httpx.AsyncClient(base_url=a.url, timeout=10) as on_a,
                httpx.AsyncClient(base_url=b.url, timeout=10) as on_b):
        for i, name in enumerate(("status-update-in-progress", "transcript-final-user", "transcript-final-assistant")):
            target = (on_a, on_b)[i % 2]
            assert (await deliver(target, payload(name, call_id=call_id, session_id=sid))).status_code == 200
        said = await watch.wait_for(lambda e: e["type"] == "transcript.final" and e["speaker"] == "persona")
        assert said["text"] == "It takes us eight days and the team hates it."
        assert [e["type"] for e in numbered(watch.events)][:3] == ["session.started", "transcript.final",
                                                                     "transcript.final"]
        assert [e["seq"] for e in numbered(watch.events)] == list(range(1, len(numbered(watch.events)) + 1))
        assert (await deliver(on_a, payload("status-update-ended", call_id=call_id, session_id=sid))).status_code == 200
    assert (await watch.wait_closed())[0] == 1000


async def test_watching_many_calls_on_one_instance_holds_one_redis_reader_and_each_watcher_gets_its_call(
        pair, client):
    a, b = pair
    _, coach, rep, _ = await team(client)
    calls = []
    for _ in range(4):
        sid = (await client.post("/api/sessions", json={"persona_id": "skeptical-cfo", "transport": "vapi"},
                                 headers=bearer(rep))).json()["id"]
        watch = await watcher(b.url, sid, coach["access_token"]).open(start=False)
        calls.append((sid, f"call-{time.time_ns()}", watch))
    redis = aioredis.from_url(REDIS_URL)
    try:
        async def blocked_on_b() -> int:
            return sum(1 for c in await redis.client_list()
                       if c.get("name") == "sparring:gw-b" and c.get("cmd") == "xread" and "b" in c.get("flags", ""))
        async def waiting() -> bool:
            return await blocked_on_b() > 0
        assert await eventually(waiting)
        async with httpx.AsyncClient(base_url=a.url, timeout=10) as on_a:
            for sid, call_id, _ in calls:
                for name in ("status-update-in-progress", "transcript-final-user"):
                    assert (await deliver(on_a, payload(name, call_id=call_id, session_id=sid))).status_code == 200
            for _sid, _, watch in calls:
                said = await watch.wait_for(lambda e: e["type"] == "transcript.final")
                assert said["speaker"] == "rep"
                assert [e["type"] for e in numbered(watch.events)][:2] == ["session.started", "transcript.final"]
            samples = []
            for _ in range(10):
                samples.append(await blocked_on_b())
                await asyncio.sleep(0.05)
            assert max(samples) == 1, f"one reader for the four calls, not one per call: {samples}"
            for sid, call_id, _ in calls:
                assert (await deliver(on_a, payload("status-update-ended", call_id=call_id,
                                                    session_id=sid))).status_code == 200
        for _, _, watch in calls:
            assert (await watch.wait_closed())[0] == 1000
            types = [e["type"] for e in numbered(watch.events)]
            assert types.count("transcript.final") == 1 and types[-1] == "session.ended", types
    finally:
        await redis.aclose()


async def stored_hints(database_url: str, session_id: str, through_seq: int) -> list[str]:
    rows = await stored_events(database_url, session_id, through_seq=through_seq)
    assert rows, "the store catches up with what the rep was sent"
    return [e["kind"] for e in rows if e["type"] == "hint"]


async def test_a_call_rebuilt_on_another_instance_raises_exactly_the_hints_of_an_uninterrupted_one(
        pair, client, module_database_url):
    a, b = pair
    rep = await signup(client)

    async def practice(*, move_to_b: bool) -> list[str]:
        session = await client.post("/api/sessions", json={"persona_id": "busy-it-director"}, headers=bearer(rep))
        session_id = session.json()["id"]
        call = await LiveClient(a.url, session_id, rep["access_token"]).open()
        await call.wait_for(lambda e: e["type"] == "transcript.final" and e["speaker"] == "persona")  # the greeting
        objection = await call.talk("Our pricing for a team of forty engineers comes to about fifty thousand a year.")
        assert "Budget is locked" in objection["text"]
        await call.wait_for(lambda e: e["type"] == "hint" and e["kind"] == "objection_price")
        if move_to_b:
            last_seq = numbered(call.events)[-1]["seq"]
            await call.close()  # dropped on A; the rep comes back on B, which rebuilds the call from its log
            call = await LiveClient(b.url, session_id, rep["access_token"]).open(last_seq=last_seq)
            await call.wait_for(lambda e: e["type"] == "session.started" and e["resumed"], timeout=TTL_S + 15)
        # The buyer mentions budget again within a minute: the price hint must not repeat.
        resolved = await call.talk("We could start with a small pilot billed per month so you can see the value first.")
        assert "pilot might fit the discretionary budget" in resolved["text"]
        await call.send({"type": "end"})
        await call.wait_closed()
        return await stored_hints(module_database_url, session_id, numbered(call.events)[-1]["seq"])

    uninterrupted = await practice(move_to_b=False)
    rebuilt = await practice(move_to_b=True)
    assert uninterrupted.count("objection_price") == 1
    assert rebuilt == uninterrupted
