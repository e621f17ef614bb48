"""The asyncpg pool the app queries through: as the RLS-bound app role, with the pgvector codec."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

import asyncpg
from pgvector.asyncpg import register_vector

__all__ = ["APP_ROLE", "acquire", "connect", "create_pool"]

APP_ROLE = "sparring_app"


async def _as_app_role(conn: asyncpg.Connection) -> None:
    # SET ROLE outlives asyncpg's RESET ALL on release ("role" is exempt from RESET ALL), so
    # every pooled connection stays the RLS-bound role whatever DATABASE_URL connects as.
    await conn.execute(f"SET ROLE {APP_ROLE}")
    await register_vector(conn)


async def _no_session_state(conn: asyncpg.Connection) -> None:
    """What a released connection needs reset: nothing beyond asyncpg's own rollback of a
    transaction left open. The app keeps no session state on pooled connections: the tenant
    context is transaction-local (`set_tenant`), and no advisory lock, cursor or setting outlives
    its transaction; the one LISTEN (gateway/jobs/notifications.py) is removed by its holder. So
    asyncpg's default reset query (advisory unlock, CLOSE ALL, UNLISTEN *, RESET ALL), a round
    trip on every release, is skipped."""


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose connections run as `sparring_app`. Run the migrations first (they create the
    role and the vector extension the codec needs)."""
    return await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_as_app_role, reset=_no_session_state, command_timeout=30
    )


async def connect(dsn: str) -> asyncpg.Connection:
    """One connection as DATABASE_URL's own user: for migrations and instance secrets only."""
    return await asyncpg.connect(dsn, command_timeout=60)


@asynccontextmanager
async def acquire(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """One pooled connection, for work that sets its tenant itself (or needs none)."""
    async with pool.acquire() as conn:
        # The pool hands out a proxy that forwards every Connection method to the connection it
        # wraps; asyncpg-stubs types it separately, so it is yielded as the Connection it stands for.
        yield cast(asyncpg.Connection, conn)
