"""The per-transaction tenant context that every row-level security policy reads."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy

from storage.database import acquire

__all__ = ["Role", "Tenant", "set_tenant", "tenant_tx"]

Role = Literal["trainee", "coach", "admin", "system", "platform"]


class Tenant(msgspec.Struct, frozen=True, kw_only=True):
    """Who a unit of work acts for. Background work uses role `system` with an explicit org."""

    org_id: uuid.UUID | None
    user_id: uuid.UUID | None = None
    role: Role


async def set_tenant(conn: asyncpg.Connection | PoolConnectionProxy, tenant: Tenant) -> None:
    """Sets the context for the current transaction only (`set_config(..., true)`), so it never
    reaches the connection's next user. Must run inside a transaction."""
    await conn.execute(
        "SELECT set_config('app.org_id', $1, true), set_config('app.user_id', $2, true),"
        " set_config('app.role', $3, true)",
        str(tenant.org_id) if tenant.org_id else "",
        str(tenant.user_id) if tenant.user_id else "",
        tenant.role,
    )


@asynccontextmanager
async def tenant_tx(pool: asyncpg.Pool, tenant: Tenant) -> AsyncIterator[asyncpg.Connection]:
    """Acquires a connection, opens a transaction and sets the tenant context in it."""
    async with acquire(pool) as conn, conn.transaction():
        await set_tenant(conn, tenant)
        yield conn
