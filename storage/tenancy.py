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

__all__ = ["Role", "Tenant", "savepoint", "set_tenant", "tenant_tx"]

Role = Literal["trainee", "coach", "admin", "system", "platform"]


class Tenant(msgspec.Struct, frozen=True, kw_only=True):
    """Who a unit of work acts for. Background work uses role `system` with an explicit org."""

    org_id: uuid.UUID | None
    user_id: uuid.UUID | None = None
    role: Role


async def set_tenant(conn: asyncpg.Connection | PoolConnectionProxy, tenant: Tenant) -> None:
    """Sets the context for the current transaction only (`set_config(..., true)`), so it never
    reaches the connection's next user. Must run inside a transaction."""
    await conn.execute(_context(tenant))


def _context(tenant: Tenant) -> str:
    """The statement that sets the tenant context, its values quoted in (no parameters), so that
    `tenant_tx` can send it in one simple query with its BEGIN."""
    return (f"SELECT set_config('app.org_id', {_literal(str(tenant.org_id) if tenant.org_id else '')}, true),"
            f" set_config('app.user_id', {_literal(str(tenant.user_id) if tenant.user_id else '')}, true),"
            f" set_config('app.role', {_literal(tenant.role)}, true)")


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"  # standard_conforming_strings is on (the default)


@asynccontextmanager
async def tenant_tx(pool: asyncpg.Pool, tenant: Tenant) -> AsyncIterator[asyncpg.Connection]:
    """Acquires a connection, opens a transaction and sets the tenant context in it.

    BEGIN and the context go in one round trip (two statements in one simple query), where
    `conn.transaction()` and `set_tenant` take two: under load every round trip waits a turn of
    the event loop (bench/README.md, 2026-12-04: eight per VAPI batch at ~2 ms each). So the
    transaction is asyncpg's "manually started" kind: inside it, use `savepoint`, not
    `conn.transaction()`. A connection released with it still open is rolled back by the pool.
    """
    async with acquire(pool) as conn:
        await conn.execute("BEGIN; " + _context(tenant))
        try:
            yield conn
        except BaseException:
            await _quietly(conn, "ROLLBACK")
            raise
        await conn.execute("COMMIT")


@asynccontextmanager
async def savepoint(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """A savepoint inside `tenant_tx`: what fails within it is undone, the rest of the
    transaction stays."""
    await conn.execute("SAVEPOINT sparring")
    try:
        yield
    except BaseException:
        await _quietly(conn, "ROLLBACK TO SAVEPOINT sparring; RELEASE SAVEPOINT sparring")
        raise
    await conn.execute("RELEASE SAVEPOINT sparring")


async def _quietly(conn: asyncpg.Connection, undo: str) -> None:
    """Undoes on the way out of a failure, whose own error is the one raised. A connection that
    cannot take the statement (closed, or a query cut short by a cancellation) is left to the
    pool, which rolls back or drops it on release."""
    if conn.is_closed():
        return
    try:
        await conn.execute(undo)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
        pass
