"""What Postgres holds of a call, read as a test (not the app) sees it. With Redis as the bus an
event is durable once Redis has it, so a rep may hold an event a moment before Postgres commits
it: `through_seq` waits until the store reaches the seq the client was sent."""

import json
import uuid

import asyncpg

from tests.gateway.accounts_helpers import eventually


async def stored_events(database_url: str, session_id: str | uuid.UUID, *, through_seq: int = 0,
                        timeout: float = 10.0) -> list[dict]:
    """The session's stored events (their payloads) in seq order; with `through_seq`, once the
    highest stored seq reaches it (an empty list if it never does within `timeout`)."""
    conn = await asyncpg.connect(database_url)
    try:
        async def read():
            rows = await conn.fetch("SELECT payload::text FROM session_events WHERE session_id = $1 ORDER BY seq",
                                    uuid.UUID(str(session_id)))
            return [json.loads(r["payload"]) for r in rows]

        if through_seq <= 0:
            return await read()

        async def caught_up():
            events = await read()
            return events if events and events[-1]["seq"] >= through_seq else None

        return await eventually(caught_up, timeout=timeout) or []
    finally:
        await conn.close()
