"""Call ownership: the lease in Redis and the fence in Postgres shut a stale owner out, so two
instances never both number a call's events; the in-process coordinator behaves the same."""

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis

from coaching.session_log import LogEntry, Segment
from gateway.fanout.coordinator import StreamEntry
from gateway.fanout.memory import MemoryCoordinator
from gateway.fanout.redis import RedisCoordinator
from storage.event_writer import EventWriter
from storage.sessions import claim_session
from storage.tenancy import Tenant, tenant_tx


class FakeClock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def elapse(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(params=["redis", "memory"])
async def coordinators(request):
    """(a, b, elapse): two owners' coordinators and how to let `seconds` pass for their TTLs —
    the fake clock for the in-process one, a real wait for Redis."""
    if request.param == "memory":
        clock = FakeClock()
        shared = MemoryCoordinator("a", clock=clock)
        yield shared, shared, clock.elapse  # one process: both "owners" see the same state
        return
    client = aioredis.from_url("redis://127.0.0.1:6379/0")
    yield RedisCoordinator(client, "a"), RedisCoordinator(client, "b"), asyncio.sleep
    await client.aclose()


async def test_once_another_owner_holds_the_lease_the_old_one_can_publish_nothing(coordinators):
    a, b, elapse = coordinators
    session = str(uuid.uuid4())
    assert await a.try_lease(session, "a|1", 300)
    assert await a.publish(session, "a|1", [StreamEntry(1, "session.started", b"one")], 300)
    assert not await b.try_lease(session, "b|1", 300), "held: nobody else takes it"
    assert await a.lease_holder(session) == "a|1"

    await elapse(0.4)  # a misses its heartbeats: the lease expires
    assert await b.try_lease(session, "b|1", 5000)
    assert not await a.publish(session, "a|1", [StreamEntry(2, "transcript.final", b"stale")], 300)
    assert await a.renew({session: "a|1"}, 300) == {session}
    assert await b.publish(session, "b|1", [StreamEntry(2, "transcript.final", b"two")], 5000)
    assert await b.renew({session: "b|1"}, 5000) == set()
    assert [(e.seq, e.frame) for e in await a.read(session, 0, block_ms=0)] == [(1, b"one"), (2, b"two")]
    assert [e.seq for e in await a.read(session, 1, block_ms=0)] == [2]

    await b.release(session, "a|1")
    assert await b.lease_holder(session) == "b|1", "only the holder's token lets go"
    await b.release(session, "b|1")
    assert await b.lease_holder(session) is None


async def test_a_retried_batch_is_not_appended_twice(coordinators):
    a, _, _ = coordinators
    session = str(uuid.uuid4())
    batch = [StreamEntry(1, "x", b"1"), StreamEntry(2, "x", b"2")]
    assert await a.publish(session, "a|1", batch, 1000)
    assert await a.publish(session, "a|1", [*batch, StreamEntry(3, "x", b"3")], 1000)
    assert [e.seq for e in await a.read(session, 0, block_ms=0)] == [1, 2, 3]


async def test_a_reader_blocks_until_the_next_entry_is_published(coordinators):
    a, b, _ = coordinators
    session = str(uuid.uuid4())
    reader = asyncio.create_task(b.read(session, 0, block_ms=3000))
    await asyncio.sleep(0.1)
    assert not reader.done()
    await a.publish(session, "a|1", [StreamEntry(1, "x", b"1")], 1000)
    assert [e.seq for e in await asyncio.wait_for(reader, 2)] == [1]


async def test_one_read_returns_every_watched_stream_past_its_own_position(coordinators):
    a, b, _ = coordinators
    first, second, quiet = (str(uuid.uuid4()) for _ in range(3))
    assert await a.publish(first, "a|1", [StreamEntry(n, "x", b"%d" % n) for n in (1, 2, 3)], 1000)
    assert await a.publish(second, "a|2", [StreamEntry(1, "x", b"1")], 1000)
    found = await b.read_many({first: 1, second: 0, quiet: 0}, block_ms=0)
    assert {s: [(e.seq, e.frame) for e in entries] for s, entries in found.items()} == {
        first: [(2, b"2"), (3, b"3")], second: [(1, b"1")]}, "a stream with nothing new is left out"

    reader = asyncio.create_task(b.read_many({first: 3, second: 1}, block_ms=5000))
    await asyncio.sleep(0.1)
    assert not reader.done()
    await a.publish(second, "a|2", [StreamEntry(2, "x", b"2")], 1000)
    assert {s: [e.seq for e in entries] for s, entries in (await asyncio.wait_for(reader, 2)).items()} == {second: [2]}


async def test_a_waiting_read_ends_when_its_instance_is_woken(coordinators):
    a, b, _ = coordinators
    session = str(uuid.uuid4())
    reader = asyncio.create_task(b.read_many({session: 0}, block_ms=10_000))
    await asyncio.sleep(0.1)
    assert not reader.done()
    await b.wake()
    assert await asyncio.wait_for(reader, 2) == {}, "woken with nothing: the caller reads again with its new session"
    assert await a.publish(session, "a|1", [StreamEntry(1, "x", b"1")], 1000)
    assert [e.seq for e in (await b.read_many({session: 0}, block_ms=1000))[session]] == [1]


async def test_a_live_call_entry_lapses_unless_its_owner_renews_it(coordinators):
    a, b, elapse = coordinators
    org, kept, lapsed = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    await a.set_present([(org, kept, b'{"id":"kept"}'), (org, lapsed, b'{"id":"lapsed"}')], 500)
    assert sorted(await b.live(org)) == [b'{"id":"kept"}', b'{"id":"lapsed"}']
    await elapse(0.3)
    await a.set_present([(org, kept, b'{"id":"kept"}')], 500)  # only one call's heartbeat renews it
    await elapse(0.3)
    assert await b.live(org) == [b'{"id":"kept"}']
    await a.set_absent(org, kept)
    assert await b.live(org) == []


async def live_session(db) -> tuple[uuid.UUID, uuid.UUID]:
    """A new organization with one rep and one live session: (org id, session id)."""
    org, user = uuid.uuid4(), uuid.uuid4()
    await db.execute("INSERT INTO organizations (id, name) VALUES ($1, 'Acme')", org)
    await db.execute("INSERT INTO users (id, email, name) VALUES ($1, $2, 'Rep')", user, f"{user}@example.com")
    session = await db.fetchval(
        "INSERT INTO roleplay_sessions (org_id, user_id, persona_id, persona_snapshot, status)"
        " VALUES ($1, $2, 'cfo', '{}', 'live') RETURNING id", org, user)
    return org, session


async def test_postgres_drops_the_rows_of_an_owner_whose_fence_was_overtaken(app_pool, db):
    org, session = await live_session(db)
    system = Tenant(org_id=org, role="system")
    async with tenant_tx(app_pool, system) as conn:
        old_fence = await claim_session(conn, session)
    async with EventWriter(app_pool) as writer:
        writer.add(org, session, old_fence, LogEntry(1, "session.started", b'{"type":"session.started"}'))
        await writer.flush()
        async with tenant_tx(app_pool, system) as conn:
            new_fence = await claim_session(conn, session)  # another instance takes the call over
        assert new_fence == old_fence + 1
        writer.add(org, session, old_fence, LogEntry(2, "transcript.final", b'{"who":"stale"}',
                                                     Segment("s-stale", "rep", "stale", 0, 10, 2)))
        writer.add(org, session, new_fence, LogEntry(2, "transcript.final", b'{"who":"new"}',
                                                     Segment("s-new", "rep", "new", 0, 10, 2)))
        await writer.flush()
    rows = await db.fetch("SELECT seq, payload::text FROM session_events WHERE session_id = $1 ORDER BY seq", session)
    assert [(r["seq"], r["payload"]) for r in rows] == [(1, '{"type": "session.started"}'), (2, '{"who": "new"}')]
    assert [r["segment_id"] for r in await db.fetch(
        "SELECT segment_id FROM transcript_segments WHERE session_id = $1", session)] == ["s-new"]
    # The row's last seq follows what was stored (a VAPI batch reads it with the row's lock).
    assert await db.fetchval("SELECT last_seq FROM roleplay_sessions WHERE id = $1", session) == 2


async def test_a_retried_write_stores_nothing_twice_and_never_moves_the_last_seq_back(app_pool, db):
    org, session = await live_session(db)
    async with tenant_tx(app_pool, Tenant(org_id=org, role="system")) as conn:
        fence = await claim_session(conn, session)
    final = LogEntry(2, "transcript.final", b'{"n":2}', Segment("s-2", "rep", "two", 0, 10, 2))
    async with EventWriter(app_pool) as writer:
        for entry in (LogEntry(1, "session.started", b'{"n":1}'), final, LogEntry(3, "transcript.partial", b'{"n":3}')):
            writer.add(org, session, fence, entry)
        await writer.flush()
        writer.add(org, session, fence, final)  # again, as after a write whose commit was not seen
        await writer.flush()
    assert [r["seq"] for r in await db.fetch(
        "SELECT seq FROM session_events WHERE session_id = $1 ORDER BY seq", session)] == [1, 2, 3]
    assert await db.fetchval("SELECT count(*) FROM transcript_segments WHERE session_id = $1", session) == 1
    assert await db.fetchval("SELECT last_seq FROM roleplay_sessions WHERE id = $1", session) == 3


async def test_an_ended_calls_stream_is_let_go_a_minute_after_its_end_in_the_in_process_bus():
    clock = FakeClock()
    bus = MemoryCoordinator("a", clock=clock)
    ended, running = str(uuid.uuid4()), str(uuid.uuid4())
    for session in (ended, running):
        assert await bus.publish(session, "a|1", [StreamEntry(1, "session.started", b"1")], 1000)
    assert await bus.publish(ended, "a|1", [StreamEntry(2, "session.ended", b"2")], 1000)
    await clock.elapse(30)
    assert [e.seq for e in await bus.read(ended, 0, block_ms=0)] == [1, 2], "watchers still reading finish"
    await clock.elapse(32)
    assert await bus.read(ended, 0, block_ms=0) == [], "later watchers read Postgres instead"
    assert [e.seq for e in await bus.read(running, 0, block_ms=0)] == [1], "a running call's stays for the hour"


async def test_an_ended_calls_stream_expires_a_minute_after_its_end_in_redis():
    client = aioredis.from_url("redis://127.0.0.1:6379/0")
    try:
        bus = RedisCoordinator(client, "a")
        session = str(uuid.uuid4())
        key = f"sparring:call:{session}:events"
        assert await bus.publish(session, "a|1", [StreamEntry(1, "session.started", b"1")], 1000)
        assert 3000 < await client.ttl(key) <= 3600
        assert await bus.publish(session, "a|1", [StreamEntry(2, "session.ended", b"2")], 1000)
        assert 0 < await client.ttl(key) <= 60
        await client.delete(key, f"sparring:call:{session}:lease")
    finally:
        await client.aclose()
