"""What Postgres holds of a call, read as a test (not the app) sees it. With Redis as the bus an
event is durable once Redis has it, so a rep may hold an event a moment before Postgres commits
it: these reads wait until the store reaches the seq the client was sent."""

import asyncpg

from tests.gateway.accounts_helpers import eventually


async def stored_events(database_url: str, session_id: str, *, through_seq: int,
                        timeout: float = 10.0) -> list[asyncpg.Record]:
    """The session's stored events (seq, type, payload) in order, once the highest stored seq
    reaches `through_seq`; an empty list if it never does within `timeout`."""
    conn = await asyncpg.connect(database_url)
    try:
        async def caught_up():
            rows = await conn.fetch("SELECT seq, type, payload FROM session_events WHERE session_id = $1"
                                    " ORDER BY seq", session_id)
            return rows if rows and rows[-1]["seq"] >= through_seq else None

        return await eventually(caught_up, timeout=timeout) or []
    finally:
        await conn.close()
